// Attention patterns as pixel-exact heatmaps: one canvas pixel per (query, key) cell, scaled up
// by CSS with `image-rendering: pixelated`, so every cell stays a crisp square.

import { float16Values } from "./codecs.js";
import { colormapLut, relativeMax, weightScale } from "./colors.js";

/** Colour settings of a view from the model: {lut, scale, key}. */
export function colorSettings(store) {
  const map = store.get("colormap") || "blues";
  const kind = store.get("color_scale") || "relative";
  const exponent = store.get("scale_exponent") ?? 0.5;
  return { lut: colormapLut(map), scale: weightScale(kind, exponent), key: `${map}|${kind}|${exponent}`, relative: kind === "relative" };
}

const palettes = new Map();
const UINT8_WEIGHTS = Float32Array.from({ length: 256 }, (_, c) => (c / 255) ** 2);

/**
 * Packed RGBA (a Uint32Array over RGBA bytes, the layout of ImageData) for every code of a
 * pattern encoding: 65536 float16 bit patterns, or 256 uint8 square-root codes. Painting a
 * pattern is then one table lookup per cell, with no float decoding.
 */
export function palette(dtype, colors) {
  const key = `${dtype}|${colors.key}`;
  if (palettes.has(key)) return palettes.get(key);
  const n = dtype === "float16" ? 65536 : 256;
  const weight = dtype === "float16" ? float16Values() : Float32Array.from({ length: 256 }, (_, c) => (c / 255) ** 2);
  const bytes = new Uint8Array(n * 4);
  for (let c = 0; c < n; c++) {
    const w = weight[c];
    const i = Math.round((Number.isNaN(w) ? 0 : colors.scale(w)) * 255) * 3;
    bytes[c * 4] = colors.lut[i];
    bytes[c * 4 + 1] = colors.lut[i + 1];
    bytes[c * 4 + 2] = colors.lut[i + 2];
    bytes[c * 4 + 3] = 255;
  }
  const packed = new Uint32Array(bytes.buffer);
  palettes.set(key, packed);
  return packed;
}

function context2d(canvas, m) {
  if (canvas.width !== m) canvas.width = m;
  if (canvas.height !== m) canvas.height = m;
  // many small canvases: keep them in CPU memory (cheap to create and fill)
  return canvas.getContext("2d", { willReadFrequently: true });
}

const packedLuts = new Map();

/** The colour map as 256 packed RGBA values (ImageData layout). */
function packedLut(lut) {
  if (packedLuts.has(lut)) return packedLuts.get(lut);
  const bytes = new Uint8Array(256 * 4);
  for (let i = 0; i < 256; i++) {
    bytes.set([lut[i * 3], lut[i * 3 + 1], lut[i * 3 + 2], 255], i * 4);
  }
  const packed = new Uint32Array(bytes.buffer);
  packedLuts.set(lut, packed);
  return packed;
}

/** Paint an m x m pattern (Float32Array of weights, row = query) into `canvas` (resized to m x m). */
export function paintPattern(canvas, values, m, { lut, scale, relative }) {
  if (m === 0) return;
  const ctx = context2d(canvas, m);
  const image = ctx.createImageData(m, m);
  const px = image.data;
  const ref = relative ? relativeMax(m, (q, k) => values[q * m + k]) : 1;
  for (let i = 0; i < m * m; i++) {
    const c = Math.round(scale(values[i] / ref) * 255) * 3;
    px[i * 4] = lut[c];
    px[i * 4 + 1] = lut[c + 1];
    px[i * 4 + 2] = lut[c + 2];
    px[i * 4 + 3] = 255;
  }
  ctx.putImageData(image, 0, 0);
}

/** Paint thumbnail t of head h straight from its encoded values into `canvas`. */
export function paintThumbnail(canvas, store, head, t, colors) {
  const thumbs = store.array("thumbnails");
  const [, T, K] = thumbs.shape;
  const m = store.patternSize(head, t);
  if (m === 0) return;
  const table = palette(thumbs.dtype, colors);
  const ctx = context2d(canvas, m);
  const image = ctx.createImageData(m, m);
  const px = new Uint32Array(image.data.buffer);
  const raw = thumbs.data;
  const base = (head * T + t) * K * K;
  if (colors.relative) {
    // weight / the pattern's reference weight (colors.relativeMax), one colour-map lookup a cell
    const weight = thumbs.dtype === "float16" ? float16Values() : UINT8_WEIGHTS;
    const inv = 255 / relativeMax(m, (q, k) => weight[raw[base + q * K + k]]);
    const colorsOf = packedLut(colors.lut);
    for (let q = 0; q < m; q++) {
      const row = base + q * K;
      for (let k = 0; k < m; k++) {
        const w = weight[raw[row + k]];
        px[q * m + k] = colorsOf[w > 0 ? Math.min(255, Math.round(w * inv)) : 0];
      }
    }
  } else {
    for (let q = 0; q < m; q++) {
      const row = base + q * K;
      for (let k = 0; k < m; k++) px[q * m + k] = table[raw[row + k]];
    }
  }
  ctx.putImageData(image, 0, 0);
}

/** A canvas showing thumbnail t of head h at `cssSize` pixels (`reuse`: repaint that canvas). */
export function patternCanvas(store, head, t, cssSize, colors, className = "mw-heatmap", reuse = null) {
  const canvas = reuse || document.createElement("canvas");
  canvas.className = className;
  canvas.style.width = `${cssSize}px`;
  canvas.style.height = `${cssSize}px`;
  paintThumbnail(canvas, store, head, t, colors);
  canvas.dataset.head = String(head);
  canvas.dataset.thumb = String(t);
  return canvas;
}

/** (query, key) cell under a point of a pattern canvas drawn at cssSize for an m x m pattern. */
export function cellAt(x, y, cssSize, m) {
  const q = Math.floor((y / cssSize) * m);
  const k = Math.floor((x / cssSize) * m);
  if (q < 0 || k < 0 || q >= m || k >= m) return null;
  return [q, k];
}
