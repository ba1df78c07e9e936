// Colour maps (256-entry RGB lookup tables), weight scales and the categorical palette.

const STOPS = {
  // ColorBrewer Blues: white for zero attention, dark blue for all of it.
  blues: ["#f7fbff", "#deebf7", "#c6dbef", "#9ecae1", "#6baed6", "#4292c6", "#2171b5", "#08519c", "#08306b"],
  viridis: ["#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89", "#35b779", "#6ece58", "#b5de2b", "#fde725"],
  magma: ["#000004", "#1c1044", "#4f127b", "#812581", "#b5367a", "#e55964", "#fb8761", "#fec287", "#fcfdbf"],
};
export const COLORMAPS = Object.keys(STOPS);

// Tableau 10 then a paler second round: categories beyond 20 cycle.
export const CATEGORICAL = [
  "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
  "#a0cbe8", "#ffbe7d", "#ff9d9a", "#86bcb6", "#8cd17d", "#f1ce63", "#d4a6c8", "#fabfd2", "#d7b5a6", "#79706e",
];
export const MISSING_COLOR = "#c8c8c8";

export function hexToRgb(hex) {
  const h = hex.replace("#", "");
  return [parseInt(h.slice(0, 2), 16), parseInt(h.slice(2, 4), 16), parseInt(h.slice(4, 6), 16)];
}

const luts = new Map();

/** Uint8Array[256 * 3]: RGB of the colour map at t = i / 255. */
export function colormapLut(name) {
  const key = STOPS[name] ? name : "blues";
  if (luts.has(key)) return luts.get(key);
  const stops = STOPS[key].map(hexToRgb);
  const lut = new Uint8Array(256 * 3);
  for (let i = 0; i < 256; i++) {
    const x = (i / 255) * (stops.length - 1);
    const k = Math.min(Math.floor(x), stops.length - 2);
    const f = x - k;
    for (let c = 0; c < 3; c++) lut[i * 3 + c] = Math.round(stops[k][c] * (1 - f) + stops[k + 1][c] * f);
  }
  luts.set(key, lut);
  return lut;
}

export const LOG_FLOOR = 1e-3;
/**
 * The "relative" scale (the default) colours each pattern by weight / its reference weight:
 * the pattern's largest weight off the first-token column (the attention sink most models
 * have), at least RELATIVE_FLOOR. Structure beside a sink then shows at full contrast; the
 * first-token column saturates. The exact weight stays in the tooltips.
 */
export const RELATIVE_FLOOR = 0.1;

/** Reference weight of the relative scale for an m x m pattern; weightAt(q, k) gives a weight. */
export function relativeMax(m, weightAt) {
  let max = 0;
  for (let q = 1; q < m; q++) for (let k = 1; k <= q; k++) {
    const w = weightAt(q, k);
    if (w > max) max = w;
  }
  return Math.max(max, RELATIVE_FLOOR);
}

/** Words for the colour bar of a scale: [low end, high end, what colour means]. */
export function scaleLegend(kind, exponent = 0.5) {
  if (kind === "relative") {
    return ["0", "max*", "colour = weight / the pattern's largest weight off the first token (at least " +
      `${RELATIVE_FLOOR}); the first-token column saturates. Per pattern: compare shapes, not strengths`];
  }
  if (kind === "power") return ["0", "1", `colour = weight^${exponent} (small weights lifted)`];
  if (kind === "log") return [`${LOG_FLOOR}`, "1", `colour = log10 of the weight, ${LOG_FLOOR} to 1`];
  return ["0", "1", "colour = attention weight, 0 to 1"];
}

/**
 * Map an attention weight in [0, 1] to a colour-map position in [0, 1].
 * linear: w; power: w ** exponent (exponent < 1 lifts small weights); log: log10 with the
 * floor LOG_FLOOR (weights below it share the bottom colour).
 */
export function weightScale(kind, exponent = 0.5) {
  if (kind === "power") return (w) => (w > 0 ? Math.min(1, w) ** exponent : 0);
  if (kind === "log") {
    const lo = Math.log10(LOG_FLOOR);
    return (w) => (w > LOG_FLOOR ? Math.min(1, (Math.log10(Math.min(1, w)) - lo) / -lo) : 0);
  }
  // linear, and relative once a weight is divided by its pattern's reference (heatmap.js)
  return (w) => (w > 0 ? Math.min(1, w) : 0);
}

export function rgbCss(lut, t) {
  const i = Math.max(0, Math.min(255, Math.round(t * 255))) * 3;
  return `rgb(${lut[i]},${lut[i + 1]},${lut[i + 2]})`;
}

/** A CSS linear-gradient of a colour map (legends and colour bars). */
export function gradientCss(name, direction = "to right") {
  const lut = colormapLut(name);
  const stops = [];
  for (let k = 0; k <= 8; k++) stops.push(rgbCss(lut, k / 8));
  return `linear-gradient(${direction}, ${stops.join(", ")})`;
}
