// PatternCloud: rotatable 3-D scatter of the PCA embedding (one point per (head, prompt) pattern)
// or of the head map (one point per head), coloured by model, layer, cluster, known class or a
// head-type score. Drag rotates, wheel zooms, click selects a head (all its points light up),
// shift-click adds / removes, shift-drag or the lasso tool selects many.

import { CATEGORICAL, MISSING_COLOR, colormapLut, gradientCss, hexToRgb } from "./colors.js";
import { DEFAULT_CAMERA, PointCloudRenderer } from "./scatter_gl.js";
import { coalesce, formatNumber, scoreLabel, statLabel } from "./store.js";
import { downloadPng, h, localPoint, selectBox, tooltip } from "./dom.js";

const SELECTION_RING = [0.96, 0.55, 0.1];
/** Pattern mode: the lasso selects a head when at least this share of its points lie inside. */
export const LASSO_SHARE = 0.5;

/** Heads chosen by a lasso around `pointIndices`: in pattern mode those with >= LASSO_SHARE of their points inside. */
export function lassoHeads(points, pointIndices) {
  const counts = new Map();
  for (const i of pointIndices) {
    const head = points.headOf(i);
    counts.set(head, (counts.get(head) || 0) + 1);
  }
  return [...counts].filter(([, n]) => n >= LASSO_SHARE * points.perHead).map(([head]) => head);
}
const FOCUS_RING = [0.91, 0.12, 0.39];

/** Points of the current mode: {positions, count, perHead, headOf(i), promptOf(i)}. */
export function cloudPoints(store) {
  const mode = store.get("cloud_mode") || "patterns";
  if (mode === "heads") {
    const positions = store.float32("head_points");
    return { mode, positions, count: positions.length / 3, perHead: 1, headOf: (i) => i, promptOf: () => -1 };
  }
  const positions = store.float32("pattern_points");
  const perHead = (store.get("prompt_ids") || []).length || 1;
  return {
    mode,
    positions,
    count: positions.length / 3,
    perHead,
    headOf: (i) => Math.floor(i / perHead),
    promptOf: (i) => i % perHead,
  };
}

/** Scores and circuit numbers: the size and opacity choices, [value, label]. */
function numericChoices(store) {
  return colorChoices(store).filter(([v]) => !["layer", "model", "cluster", "known_class"].includes(v));
}

/** Colour-by choices: [value, label]. */
export function colorChoices(store) {
  const out = [["layer", "layer"], ["model", "model"]];
  if (store.clusters()) out.push(["cluster", "family (cluster)"]);
  out.push(["known_class", "known class"]);
  for (const s of store.scoreNames()) out.push([s, `score: ${scoreLabel(s)}`]);
  for (const s of store.statNames()) out.push([s, `circuit: ${statLabel(s)}`]);
  return out;
}

/**
 * Per-point colours for color_by: {rgba: Uint8Array [N * 4], legend: {kind, ...}, valueOf(i)}.
 * valueOf gives the text shown in the tooltip.
 */
export function pointColors(store, points, colorBy) {
  const { count, headOf } = points;
  const t = store.heads();
  const rgba = new Uint8Array(count * 4);
  const put = (i, rgb) => {
    rgba[i * 4] = rgb[0];
    rgba[i * 4 + 1] = rgb[1];
    rgba[i * 4 + 2] = rgb[2];
    rgba[i * 4 + 3] = 255;
  };
  const category = (k) => hexToRgb(CATEGORICAL[k % CATEGORICAL.length]);
  if (colorBy === "model") {
    const rgbs = t.modelNames.map((_, m) => category(m));
    for (let i = 0; i < count; i++) put(i, rgbs[t.model[headOf(i)]]);
    return {
      rgba,
      legend: { kind: "categories", items: t.modelNames.map((name, m) => [name, CATEGORICAL[m % CATEGORICAL.length]]) },
      valueOf: (i) => `model ${t.modelNames[t.model[headOf(i)]]}`,
      categoryOf: (i) => t.modelNames[t.model[headOf(i)]],
    };
  }
  if (colorBy === "cluster" && store.clusters()) {
    const clusters = store.clusters();
    let max = 0;
    for (let c = 0; c < clusters.length; c++) max = Math.max(max, clusters[c]);
    for (let i = 0; i < count; i++) put(i, category(clusters[headOf(i)] - 1));
    const items = [];
    for (let c = 1; c <= max; c++) items.push([store.clusterName(c), CATEGORICAL[(c - 1) % CATEGORICAL.length]]);
    const name = (i) => store.clusterName(clusters[headOf(i)]);
    return { rgba, legend: { kind: "categories", items }, valueOf: name, categoryOf: name };
  }
  if (colorBy === "known_class") {
    const missing = hexToRgb(MISSING_COLOR);
    const seen = new Map();
    for (let i = 0; i < count; i++) {
      const classes = store.knownClasses(headOf(i));
      if (!classes.length) put(i, missing);
      else {
        const color = store.classColor(classes[0]);
        seen.set(classes[0], color);
        put(i, hexToRgb(color));
      }
    }
    const items = [...seen.entries()].sort();
    items.push(["no known class", MISSING_COLOR]);
    return {
      rgba,
      legend: { kind: "categories", items },
      valueOf: (i) => {
        const c = store.knownClasses(headOf(i));
        return c.length ? c.join(", ") : "no known class";
      },
      categoryOf: (i) => store.knownClasses(headOf(i))[0] || "no known class",
    };
  }
  const lut = colormapLut("viridis");
  const shade = (v) => {
    const k = Math.max(0, Math.min(255, Math.round(v * 255))) * 3;
    return [lut[k], lut[k + 1], lut[k + 2]];
  };
  const scoreIndex = store.scoreNames().indexOf(colorBy);
  if (scoreIndex >= 0) {
    const S = store.scoreNames().length;
    let values;
    if (points.mode === "patterns" && store.get("pattern_scores")) {
      const all = store.float32("pattern_scores");
      values = new Float32Array(count);
      for (let i = 0; i < count; i++) values[i] = all[i * S + scoreIndex];
    } else {
      const heads = store.headScores();
      values = new Float32Array(count);
      for (let i = 0; i < count; i++) values[i] = heads[headOf(i) * S + scoreIndex];
    }
    let max = 0;
    for (const v of values) if (v > max) max = v;
    max = max || 1;
    const missing = hexToRgb(MISSING_COLOR);
    for (let i = 0; i < count; i++) put(i, Number.isNaN(values[i]) ? missing : shade(values[i] / max));
    return {
      rgba,
      legend: { kind: "ramp", low: "0", high: formatNumber(max, 2), label: scoreLabel(colorBy) },
      valueOf: (i) => `${scoreLabel(colorBy)} ${points.mode === "patterns" ? "(this prompt) " : ""}${formatNumber(values[i])}`,
    };
  }
  const statIndex = store.statNames().indexOf(colorBy);
  if (statIndex >= 0) {
    // a numeric head_stats column (per head): its range, lowest to highest
    const values = new Float32Array(count);
    let lo = Infinity;
    let hi = -Infinity;
    for (let i = 0; i < count; i++) {
      const v = store.stat(headOf(i), statIndex);
      values[i] = v;
      if (!Number.isNaN(v)) {
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
    }
    const span = hi > lo ? hi - lo : 1;
    const missing = hexToRgb(MISSING_COLOR);
    for (let i = 0; i < count; i++) put(i, Number.isNaN(values[i]) ? missing : shade((values[i] - lo) / span));
    return {
      rgba,
      legend: { kind: "ramp", low: Number.isFinite(lo) ? formatNumber(lo, 3) : "\u2013", high: Number.isFinite(hi) ? formatNumber(hi, 3) : "\u2013", label: statLabel(colorBy) },
      valueOf: (i) => `${statLabel(colorBy)} ${formatNumber(values[i], 4)}`,
    };
  }
  // layer: depth within the model, 0 (first layer) to 1 (last layer)
  for (let i = 0; i < count; i++) {
    const head = headOf(i);
    const n = t.modelLayers[t.model[head]] || 1;
    put(i, shade(n > 1 ? t.layer[head] / (n - 1) : 0));
  }
  return {
    rgba,
    legend: { kind: "ramp", low: "first layer", high: "last layer", label: null },
    valueOf: (i) => `layer ${t.layer[headOf(i)]}`,
  };
}

/**
 * Per-point values of a head-type score (per pattern in pattern mode) or a head_stats column,
 * scaled to 0..1 (NaN where unknown), or null for "" / an unknown name: the size and opacity
 * encodings.
 */
export function encodingValues(store, points, name) {
  if (!name) return null;
  const { count, headOf } = points;
  const values = new Float32Array(count);
  const s = store.scoreNames().indexOf(name);
  const st = store.statNames().indexOf(name);
  if (s < 0 && st < 0) return null;
  if (s >= 0) {
    const S = store.scoreNames().length;
    const perPattern = points.mode === "patterns" && store.get("pattern_scores") ? store.float32("pattern_scores") : null;
    const heads = store.headScores();
    for (let i = 0; i < count; i++) values[i] = perPattern ? perPattern[i * S + s] : heads[headOf(i) * S + s];
  } else {
    for (let i = 0; i < count; i++) values[i] = store.stat(headOf(i), st);
  }
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) if (!Number.isNaN(v)) (lo = Math.min(lo, v)), (hi = Math.max(hi, v));
  const span = hi > lo ? hi - lo : 1;
  for (let i = 0; i < count; i++) values[i] = Number.isNaN(values[i]) ? NaN : (values[i] - lo) / span;
  return values;
}

/** The head's head-type scores, strongest first, as one tooltip line. */
export function headScoreLine(store, head) {
  const names = store.scoreNames();
  return names
    .map((name, s) => [name, store.score(head, s)])
    .filter(([, v]) => !Number.isNaN(v))
    .sort((a, b) => b[1] - a[1])
    .slice(0, 4)
    .map(([name, v]) => `${scoreLabel(name)} ${formatNumber(v, 2)}`)
    .join(" \u00b7 ");
}

/** The legend; categories toggle their points when `toggle` is given (hidden: labels off). */
function legendElement(legend, hidden = [], toggle = null) {
  if (legend.kind === "ramp") {
    return h(
      "div",
      { class: "mw-legend" },
      legend.label ? h("span", { class: "mw-small mw-legend-label" }, `${legend.label}:`) : "",
      h("span", { class: "mw-small" }, legend.low),
      h("span", { class: "mw-colorbar mw-colorbar-wide", style: { background: gradientCss("viridis") } }),
      h("span", { class: "mw-small" }, legend.high),
    );
  }
  const items = legend.items.slice(0, 24);
  return h(
    "div",
    { class: "mw-legend" },
    items.map(([label, color]) => h(toggle ? "button" : "span", {
      class: `mw-legend-item${hidden.includes(label) ? " mw-legend-off" : ""}`,
      title: toggle ? (hidden.includes(label) ? "click: show these points" : "click: hide these points") : null,
      "aria-pressed": toggle ? String(!hidden.includes(label)) : null,
      onclick: toggle ? () => toggle(label) : null,
    }, h("i", { style: { background: color } }), label)),
    legend.items.length > items.length ? h("span", { class: "mw-small" }, `+${legend.items.length - items.length} more`) : "",
  );
}

export function renderCloud(store, el, { height = 460 } = {}) {
  const root = h("div", { class: "mw-cloud-view" });
  const controls = h("div", { class: "mw-row mw-controls" });
  const stage = h("div", { class: "mw-cloud-stage", style: height ? { height: `${height}px` } : {} });
  const canvas = h("canvas", {
    class: "mw-cloud-canvas",
    tabindex: 0,
    role: "application",
    "aria-label": "pattern cloud: arrow keys move between heads (left / right: next head, up / down: next layer), Enter selects, shift+Enter adds",
  });
  const overlay = h("canvas", { class: "mw-cloud-overlay" });
  const legendHost = h("div", { class: "mw-legend-host" });
  stage.append(canvas, overlay);
  root.append(controls, stage, legendHost);
  el.appendChild(root);
  const tip = tooltip(stage);

  let renderer;
  try {
    renderer = new PointCloudRenderer(canvas);
  } catch (err) {
    stage.replaceChildren(h("div", { class: "mw-note" }, `The 3-D cloud needs WebGL2: ${err.message}`));
    return { destroy: () => root.remove() };
  }

  let points = null;
  let colors = null;
  let dataKey = "";
  let colorKey = "";
  let lassoMode = false;
  let hover = -1;
  let lasso = null; // [[x, y], ...] while drawing
  let drag = null; // {x, y, moved, lasso, shift}

  // Frames. A full frame draws every point. While the view moves (drag, wheel) and a full frame
  // is slower than FRAME_BUDGET_MS (a software renderer: no GPU), frames draw a random sample
  // of the points whose size adapts to the measured frame interval; all points are drawn again
  // SETTLE_MS after the movement stops. Updates that do not move the view (selection, colours)
  // wait for the next frame on slow renderers, so the other panels paint first.
  const FRAME_BUDGET_MS = 30;
  const SETTLE_MS = 200;
  let moving = false;
  let settleTimer = null;
  let sample = Infinity; // points drawn per moving frame
  let lastMovingFrame = 0;
  let pending = false;

  function frame(now) {
    pending = false;
    if (renderer.fullFrameMs === null) renderer.measureFullFrame();
    const slow = renderer.fullFrameMs > FRAME_BUDGET_MS;
    if (moving && slow) {
      if (!Number.isFinite(sample)) sample = points.count * Math.min(1, FRAME_BUDGET_MS / renderer.fullFrameMs);
      else if (lastMovingFrame) {
        const interval = now - lastMovingFrame;
        sample *= interval > 1.5 * FRAME_BUDGET_MS ? 0.7 : interval < FRAME_BUDGET_MS ? 1.2 : 1;
      }
      sample = Math.max(Math.min(5000, points.count), Math.min(points.count, sample));
      lastMovingFrame = now;
      renderer.render({ budget: sample });
    } else {
      lastMovingFrame = 0;
      renderer.render();
    }
    drawOverlay();
  }

  function requestRender({ move = false } = {}) {
    if (move) {
      moving = true;
      clearTimeout(settleTimer);
      settleTimer = setTimeout(() => {
        moving = false;
        requestRender();
      }, SETTLE_MS);
    }
    if (pending) return;
    pending = true;
    const deferred = !move && renderer.fullFrameMs > FRAME_BUDGET_MS;
    requestAnimationFrame(deferred ? () => requestAnimationFrame(frame) : frame);
  }

  function drawControls() {
    controls.replaceChildren(
      h("span", { class: "mw-label" }, "Points"),
      selectBox([["patterns", "patterns (PCA)"], ["heads", "heads (map)"]], store.get("cloud_mode") || "patterns",
        (v) => store.set({ cloud_mode: v }), { "aria-label": "cloud mode" }),
      h("span", { class: "mw-label" }, "Colour"),
      selectBox(colorChoices(store), store.get("color_by") || "layer",
        (v) => store.set(store.get("hidden_categories") !== undefined ? { color_by: v, hidden_categories: [] } : { color_by: v }), { "aria-label": "colour by" }),
      h("button", {
        class: `mw-button${lassoMode ? " mw-active" : ""}`,
        title: points && points.mode === "patterns"
          ? `lasso: drag to select the heads with at least ${Math.round(LASSO_SHARE * 100)}% of their points inside (shift-drag also lassoes; hold shift to add)`
          : "lasso: drag to select the heads inside (shift-drag also lassoes; hold shift to add)",
        onclick: () => {
          lassoMode = !lassoMode;
          drawControls();
        },
      }, "lasso"),
      h("button", { class: "mw-button", title: "reset the view", onclick: () => { renderer.resetFocus(); renderer.setCamera({ ...DEFAULT_CAMERA }); requestRender(); } }, "reset"),
      h("button", {
        class: "mw-button mw-zoom-selection", title: "zoom to the selected heads' points", onclick: () => zoomToSelection(),
      }, "zoom to selection"),
      store.get("unselected") !== undefined ? selectBox([["fade", "fade others"], ["hide", "hide others"], ["show", "show others"]],
        store.get("unselected") || "fade", (v) => store.set({ unselected: v }), { "aria-label": "unselected points", title: "what happens to the points of unselected heads" }) : "",
      ...(store.get("size_by") !== undefined ? [
        h("span", { class: "mw-label" }, "Size"),
        selectBox([["", "\u2013"], ...numericChoices(store)], store.get("size_by") || "", (v) => store.set({ size_by: v }), { "aria-label": "size by" }),
        h("span", { class: "mw-label" }, "Opacity"),
        selectBox([["", "\u2013"], ...numericChoices(store)], store.get("opacity_by") || "", (v) => store.set({ opacity_by: v }), { "aria-label": "opacity by" }),
      ] : []),
      h("button", { class: "mw-button mw-png", title: "save the view as a PNG image", onclick: () => savePng() }, "PNG"),
      h("span", { class: "mw-small mw-count" }, `${points ? points.count.toLocaleString() : 0} points`),
    );
  }

  function updateData() {
    const key = `${store.get("cloud_mode")}`;
    if (key !== dataKey) {
      dataKey = key;
      points = cloudPoints(store);
      renderer.setPositions(points.positions);
      sample = Infinity;
      colorKey = "";
    }
    const hidden = store.get("hidden_categories") || [];
    const ck = `${key}|${store.get("color_by")}|${JSON.stringify(hidden)}|${store.get("size_by")}|${store.get("opacity_by")}`;
    if (ck !== colorKey) {
      colorKey = ck;
      colors = pointColors(store, points, store.get("color_by") || "layer");
      // hidden categories: alpha 0 (not drawn, not picked)
      renderer.hidden = null;
      if (colors.categoryOf && hidden.length) {
        const off = new Set(hidden);
        renderer.hidden = new Uint8Array(points.count);
        for (let i = 0; i < points.count; i++) {
          if (off.has(colors.categoryOf(i))) {
            renderer.hidden[i] = 1;
            colors.rgba[i * 4 + 3] = 0;
          }
        }
      }
      // opacity encoding: alpha 0.15 (lowest) .. 1 (highest); NaN: the lowest
      const opacity = encodingValues(store, points, store.get("opacity_by"));
      renderer.translucent = !!opacity;
      if (opacity) {
        for (let i = 0; i < points.count; i++) {
          if (colors.rgba[i * 4 + 3] === 0) continue;
          const v = Number.isNaN(opacity[i]) ? 0 : opacity[i];
          colors.rgba[i * 4 + 3] = Math.round(255 * (0.15 + 0.85 * v));
        }
      }
      renderer.setColors(colors.rgba);
      // size encoding: 0.5x (lowest) .. 2.5x (highest) the point size; NaN: 0.5x
      const size = encodingValues(store, points, store.get("size_by"));
      if (size) {
        const factors = new Float32Array(points.count);
        for (let i = 0; i < points.count; i++) factors[i] = 0.5 + 2 * (Number.isNaN(size[i]) ? 0 : size[i]);
        renderer.setSizes(factors);
      } else renderer.setSizes(null);
      const toggle = colors.categoryOf && store.get("hidden_categories") !== undefined
        ? (label) => store.set({ hidden_categories: hidden.includes(label) ? hidden.filter((x) => x !== label) : [...hidden, label] })
        : null;
      legendHost.replaceChildren(legendElement(colors.legend, hidden, toggle));
    }
    renderer.pointSize = store.get("point_size") || (points.mode === "heads" ? 8 : points.count > 50000 ? 2.5 : points.count > 5000 ? 4 : 6);
  }

  function selectedPoints() {
    const heads = store.selectionIndices();
    const focus = store.selectedIndex();
    if (focus >= 0 && !heads.includes(focus)) heads.push(focus);
    const out = [];
    for (const head of heads) for (let j = 0; j < points.perHead; j++) out.push(head * points.perHead + j);
    return out;
  }

  function zoomToSelection() {
    const chosen = selectedPoints();
    if (!chosen.length) return;
    renderer.focusOn(chosen);
    hover = -1;
    requestRender();
  }

  function savePng() {
    renderer.render(); // the drawing buffer is only readable in the task that drew it
    drawOverlay();
    return downloadPng([canvas, overlay], "pattern-cloud.png");
  }

  function updateHighlights() {
    const focus = store.selectedIndex();
    const selection = store.selectionIndices().filter((head) => head !== focus);
    const expand = (heads) => {
      const out = new Uint32Array(heads.length * points.perHead);
      let k = 0;
      for (const head of heads) for (let j = 0; j < points.perHead; j++) out[k++] = head * points.perHead + j;
      return out;
    };
    renderer.setHighlights([
      { indices: expand(selection), ring: SELECTION_RING, grow: 1 },
      { indices: expand(focus >= 0 ? [focus] : []), ring: FOCUS_RING, grow: 2.5 },
    ]);
    const unselected = store.get("unselected") || "fade";
    renderer.dim = focus >= 0 || selection.length ? { fade: 0.4, hide: 1, show: 0 }[unselected] ?? 0.4 : 0;
  }

  /** The theme's background (JupyterLab dark included) as the cloud's clear colour. */
  function followTheme() {
    const m = /rgba?\(([\d.]+),\s*([\d.]+),\s*([\d.]+)(?:,\s*([\d.]+))?/.exec(getComputedStyle(stage).backgroundColor || "");
    const rgb = m && (m[4] === undefined || +m[4] > 0) ? [+m[1] / 255, +m[2] / 255, +m[3] / 255] : [1, 1, 1];
    if (rgb.some((v, k) => v !== renderer.background[k])) {
      renderer.background = rgb;
      renderer.invalidate();
    }
  }

  function refresh() {
    followTheme();
    updateData();
    updateHighlights();
    drawControls();
    requestRender();
  }

  function drawOverlay() {
    const dpr = window.devicePixelRatio || 1;
    const { width, height: hgt } = renderer.cssSize();
    overlay.width = Math.round(width * dpr);
    overlay.height = Math.round(hgt * dpr);
    const ctx = overlay.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, width, hgt);
    // axis labels at the ends of the gizmo
    const labels = store.get(points.mode === "heads" ? "head_axis_labels" : "pattern_axis_labels") || [];
    const m = renderer.axisMatrix();
    ctx.font = "11px system-ui, sans-serif";
    ctx.fillStyle = "#666";
    [[1.2, 0, 0], [0, 1.2, 0], [0, 0, 1.2]].forEach((p, k) => {
      const [x, y] = renderer.projectPoint(p[0], p[1], p[2], m);
      if (labels[k]) ctx.fillText(labels[k], x + 2, y);
    });
    if (hover >= 0 && hover < points.count) {
      const { x, y } = renderer.projected();
      ctx.strokeStyle = "#111";
      ctx.lineWidth = 2;
      ctx.beginPath();
      ctx.arc(x[hover], y[hover], renderer.pointSize / 2 + 5, 0, 2 * Math.PI);
      ctx.stroke();
    }
    if (lasso && lasso.length > 1) {
      ctx.strokeStyle = "#c2185b";
      ctx.fillStyle = "rgba(194, 24, 91, 0.08)";
      ctx.setLineDash([4, 3]);
      ctx.lineWidth = 1.5;
      ctx.beginPath();
      lasso.forEach(([x, y], k) => (k ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
      ctx.closePath();
      ctx.fill();
      ctx.stroke();
    }
  }

  function showHover(x, y) {
    const i = renderer.pick(x, y);
    if (i !== hover) {
      hover = i;
      drawOverlay();
    }
    if (i < 0) return tip.hide();
    const head = points.headOf(i);
    const lines = [h("div", { class: "mw-tip-title" }, store.longLabel(head))];
    if (points.mode === "patterns") {
      const p = points.promptOf(i);
      const kinds = store.get("prompt_kinds") || [];
      lines.push(`prompt ${(store.get("prompt_ids") || [])[p]}${kinds[p] ? ` (${kinds[p]})` : ""}`);
      if (store.get("focus_prompt") !== undefined) lines.push(h("div", { class: "mw-small" }, "click: open this pattern"));
    }
    lines.push(colors.valueOf(i));
    lines.push(h("div", { class: "mw-tip-scores" }, headScoreLine(store, head)));
    const classes = store.knownClasses(head);
    if (classes.length && store.get("color_by") !== "known_class") lines.push(classes.join(", "));
    tip.show(x, y, lines);
  }

  canvas.addEventListener("pointerdown", (event) => {
    if (event.button !== 0) return;
    const [x, y] = localPoint(event, canvas);
    drag = { x, y, lastX: x, lastY: y, moved: false, lasso: lassoMode || event.shiftKey, shift: event.shiftKey };
    if (drag.lasso) lasso = [[x, y]];
    canvas.setPointerCapture(event.pointerId);
    tip.hide();
  });
  canvas.addEventListener("pointermove", (event) => {
    const [x, y] = localPoint(event, canvas);
    if (!drag) return showHover(x, y);
    if (Math.hypot(x - drag.x, y - drag.y) > 4) drag.moved = true;
    if (drag.lasso) {
      lasso.push([x, y]);
      drawOverlay();
    } else {
      renderer.setCamera({ yaw: renderer.camera.yaw + (x - drag.lastX) * 0.01, pitch: renderer.camera.pitch + (y - drag.lastY) * 0.01 });
      hover = -1;
      requestRender({ move: true });
    }
    drag.lastX = x;
    drag.lastY = y;
  });
  canvas.addEventListener("pointerup", (event) => {
    if (!drag) return;
    const [x, y] = localPoint(event, canvas);
    const d = drag;
    drag = null;
    const polygon = lasso;
    lasso = null;
    if (!d.moved) {
      const i = renderer.pick(x, y);
      if (i >= 0) {
        // a point of the pattern mode opens its own pattern: the large view follows its prompt
        const p = points.promptOf(i);
        const prompt = p >= 0 ? (store.get("prompt_ids") || [])[p] : undefined;
        if (prompt !== undefined && store.get("focus_prompt") !== undefined && store.get("focus_prompt") !== prompt) {
          store.set({ focus_prompt: prompt });
        }
        store.select(points.headOf(i), { toggle: event.shiftKey });
      }
    } else if (d.lasso && polygon && polygon.length > 2) {
      store.selectMany(lassoHeads(points, renderer.inside(polygon)), { add: d.shift });
    }
    drawOverlay();
  });
  canvas.addEventListener("pointerleave", () => {
    if (drag) return;
    hover = -1;
    tip.hide();
    drawOverlay();
  });
  canvas.addEventListener(
    "wheel",
    (event) => {
      event.preventDefault();
      renderer.setCamera({ zoom: renderer.camera.zoom * Math.exp(-event.deltaY * 0.0015) });
      hover = -1;
      requestRender({ move: true });
    },
    { passive: false },
  );

  // Keyboard: a cursor head (shown as the hover ring with its tooltip) moves with the arrow
  // keys, Enter selects it (shift+Enter adds it to / removes it from the selection).
  let cursor = -1;
  function moveCursor(step) {
    const t = store.heads();
    const n = t.count;
    if (!n) return;
    const base = cursor >= 0 ? cursor : store.selectedIndex();
    let next = base < 0 ? 0 : base;
    if (base >= 0 && step) {
      if (Math.abs(step) === 1) next = (base + step + n) % n;
      else {
        // the same head number in the next / previous layer of the same model
        const want = t.layer[base] + Math.sign(step);
        for (let j = 0; j < n; j++) {
          if (t.model[j] === t.model[base] && t.layer[j] === want && t.number[j] === t.number[base]) {
            next = j;
            break;
          }
        }
      }
    }
    cursor = next;
    const at = canvas.mwCloud.pointOfHead(cursor);
    const firstPoint = cursor * points.perHead;
    hover = at ? renderer.pick(at[0], at[1]) : firstPoint;
    drawOverlay();
    const lines = [h("div", { class: "mw-tip-title" }, store.longLabel(cursor)), h("div", {}, headScoreLine(store, cursor)), "Enter: select"];
    const { width, height: hgt } = renderer.cssSize();
    tip.show(at ? at[0] : width / 2, at ? at[1] : hgt / 2, lines);
  }
  canvas.addEventListener("keydown", (event) => {
    const steps = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: 2, ArrowUp: -2 };
    if (event.key in steps) {
      event.preventDefault();
      moveCursor(steps[event.key]);
    } else if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      if (cursor < 0) moveCursor(0);
      store.select(cursor, { toggle: event.shiftKey });
    } else if (event.key === "Escape") {
      cursor = -1;
      hover = -1;
      tip.hide();
      drawOverlay();
    }
  });
  canvas.addEventListener("blur", () => {
    if (cursor < 0) return;
    cursor = -1;
    hover = -1;
    tip.hide();
    drawOverlay();
  });

  const resize = new ResizeObserver(() => requestRender());
  resize.observe(stage);

  // For tests and benchmarks: where a head's point is on screen, and synchronous drawing.
  canvas.mwCloud = {
    renderer,
    get pointCount() {
      return points.count;
    },
    /** CSS px (relative to the canvas) of a visible point of head h that picking resolves to h. */
    pointOfHead(head) {
      const { x, y } = renderer.projected();
      const { width, height: hgt } = renderer.cssSize();
      for (let j = 0; j < points.perHead; j++) {
        const i = head * points.perHead + j;
        if (x[i] < 8 || y[i] < 8 || x[i] > width - 8 || y[i] > hgt - 8) continue;
        const hit = renderer.pick(x[i], y[i]);
        if (hit >= 0 && points.headOf(hit) === head) return [x[i], y[i]];
      }
      return null;
    },
    /** CSS px of point i (a (head, prompt) point in pattern mode) when picking resolves to it, else null. */
    pointOf(i) {
      const { x, y } = renderer.projected();
      const { width, height: hgt } = renderer.cssSize();
      if (!(i >= 0 && i < points.count) || x[i] < 8 || y[i] < 8 || x[i] > width - 8 || y[i] > hgt - 8) return null;
      return renderer.pick(x[i], y[i]) === i ? [x[i], y[i]] : null;
    },
    renderNow() {
      renderer.render();
      drawOverlay();
    },
    /** Turn the view as a drag does (benchmarks); returns the points the next frame draws. */
    rotate(dyaw) {
      renderer.setCamera({ yaw: renderer.camera.yaw + dyaw });
      requestRender({ move: true });
      return moving && renderer.fullFrameMs > FRAME_BUDGET_MS ? Math.floor(sample) : points.count;
    },
  };

  const schedule = coalesce(refresh);
  store.on(["selected_head", "selection", "cloud_mode", "color_by", "point_size", "unselected", "hidden_categories", "size_by", "opacity_by"], schedule);
  refresh();
  return {
    refresh,
    destroy() {
      resize.disconnect();
      clearTimeout(settleTimer);
      renderer.dispose();
      root.remove();
    },
  };
}
