// PatternGrid: heads x prompts grid of attention heatmaps (rows "L{l}H{h}", columns thumbnail
// prompts), hover for query / key tokens and the weight, click to select a head, and the large
// single-pattern view of the selected head.

import { gradientCss, scaleLegend } from "./colors.js";
import { cellAt, colorSettings, paintPattern, patternCanvas } from "./heatmap.js";
import { renderPatternView } from "./pattern_view.js";
import { TEXT_PROMPT, coalesce, formatNumber, showToken } from "./store.js";
import { h, localPoint, selectBox, tooltip } from "./dom.js";

export const MAX_ROWS = 48;
/** Columns shown when grid_prompts does not choose them (spread evenly over the kept prompts). */
export const MAX_COLUMNS = 16;
/** Column of the user's text (dataset.thumb of its heatmaps). */
const TEXT_COLUMN = "text";

/** Head indices of the grid rows, from grid_rows: auto | layer | selection | heads. */
export function gridRows(store) {
  const mode = store.get("grid_rows") || "auto";
  const t = store.heads();
  if (mode === "selection") {
    const sel = store.selectionIndices();
    const focus = store.selectedIndex();
    return sel.length ? sel : focus >= 0 ? [focus] : [];
  }
  if (mode === "heads") return (store.get("grid_heads") || []).map((id) => store.headIndex(id)).filter((i) => i >= 0);
  if (mode === "filter") return filteredHeads(store, store.get("grid_filter") || {});
  if (mode === "layer") {
    const m = Math.max(0, t.modelNames.indexOf(store.get("grid_model")));
    return store.layerHeads(m, store.get("grid_layer") || 0);
  }
  const focus = store.selectedIndex();
  return focus >= 0 ? store.layerHeads(t.model[focus], t.layer[focus]) : store.layerHeads(0, 0);
}

/**
 * Heads that pass a grid_filter {layers: [first, last], score, min_score, family} (each
 * optional), strongest score first (head order among equals): grid.filtered_heads in Python.
 */
export function filteredHeads(store, spec) {
  const t = store.heads();
  const s = spec.score ? store.scoreNames().indexOf(spec.score) : -1;
  const clusters = store.clusters();
  const out = [];
  for (let h = 0; h < t.count; h++) {
    if (spec.layers && (t.layer[h] < spec.layers[0] || t.layer[h] > spec.layers[1])) continue;
    if (s >= 0 && !(store.score(h, s) >= Math.fround(spec.min_score ?? 0))) continue;
    if (spec.family && clusters && store.clusterName(clusters[h]) !== spec.family) continue;
    out.push(h);
  }
  if (s >= 0) out.sort((a, b) => store.score(b, s) - store.score(a, s) || a - b);
  return out;
}

/** The filter's controls: layer range, score with its minimum, family. */
function filterControls(store) {
  const spec = store.get("grid_filter") || {};
  const t = store.heads();
  const nLayers = Math.max(1, ...t.modelLayers);
  const set = (changes) => {
    const next = { ...spec, ...changes };
    for (const k of Object.keys(next)) if (next[k] == null || next[k] === "") delete next[k];
    store.set({ grid_filter: next });
  };
  const layers = spec.layers || [0, nLayers - 1];
  const layerBox = (i) => h("input", {
    class: "mw-input mw-filter-layer", type: "number", min: 0, max: nLayers - 1, value: String(layers[i]),
    "aria-label": i ? "last layer" : "first layer", style: { width: "52px" },
    onchange: (e) => {
      const v = Math.max(0, Math.min(nLayers - 1, Math.round(+e.target.value || 0)));
      const next = [...layers];
      next[i] = v;
      if (next[0] > next[1]) next[1 - i] = v;
      set({ layers: next });
    },
  });
  const families = [...new Set(store.get("cluster_names") || [])];
  return h("span", { class: "mw-row mw-filter" },
    h("span", { class: "mw-label" }, "layers"), layerBox(0), "–", layerBox(1),
    selectBox([["", "any score"], ...store.scoreNames().map((n) => [n, n.replace(/_/g, " ")])], spec.score || "",
      (v) => set({ score: v || null, min_score: v ? spec.min_score ?? 0.3 : null }), { "aria-label": "filter score" }),
    spec.score ? h("input", {
      class: "mw-input mw-filter-min", type: "number", step: 0.05, min: 0, max: 1, value: String(spec.min_score ?? 0),
      "aria-label": "minimum score", style: { width: "60px" }, onchange: (e) => set({ min_score: +e.target.value || 0 }),
    }) : "",
    families.length ? selectBox([["", "any family"], ...families.map((f) => [f, f])], spec.family || "",
      (v) => set({ family: v || null }), { "aria-label": "filter family" }) : "",
  );
}

/** Thumbnail slots shown as columns (grid_prompts; empty = up to MAX_COLUMNS spread evenly). */
export function gridColumns(store) {
  const all = store.thumbnailPrompts();
  const wanted = store.get("grid_prompts") || [];
  if (wanted.length) return wanted.map((p) => all.indexOf(p)).filter((t) => t >= 0);
  if (all.length <= MAX_COLUMNS) return all.map((_, t) => t);
  return [...new Set(Array.from({ length: MAX_COLUMNS }, (_, i) => Math.round((i * (all.length - 1)) / (MAX_COLUMNS - 1))))];
}

/** Columns with the user's text first when the model has run on it. */
function shownColumns(store) {
  const cols = gridColumns(store);
  return store.text() ? [TEXT_COLUMN, ...cols] : cols;
}

function rowsOptions(store) {
  const t = store.heads();
  const opts = [["auto", "layer of the selected head"]];
  t.modelNames.forEach((name, m) => {
    for (let l = 0; l < (t.modelLayers[m] || 0); l++) {
      opts.push([`layer:${m}:${l}`, store.multiModel ? `${name} L${l}` : `layer ${l}`]);
    }
  });
  opts.push(["selection", "the selection"]);
  opts.push(["filter", "filter: layers, score, family"]);
  if ((store.get("grid_heads") || []).length) opts.push(["heads", "chosen heads"]);
  return opts;
}

function rowsValue(store) {
  const mode = store.get("grid_rows") || "auto";
  if (mode !== "layer") return mode;
  const m = Math.max(0, store.heads().modelNames.indexOf(store.get("grid_model")));
  return `layer:${m}:${store.get("grid_layer") || 0}`;
}

export function renderGrid(store, el, { showLarge = true } = {}) {
  const root = h("div", { class: "mw-grid-view" });
  const controls = h("div", { class: "mw-row mw-controls" });
  const body = h("div", { class: "mw-grid-body" });
  const table = h("div", { class: "mw-grid" });
  const note = h("div", { class: "mw-note" });
  const scroll = h("div", { class: "mw-grid-scroll" }, table, note);
  const largeHost = h("div", { class: "mw-grid-large" });
  body.append(scroll);
  if (showLarge) body.append(largeHost);
  root.append(controls, body);
  el.appendChild(root);
  const tip = tooltip(root); // on the root: the scrolling grid would clip it
  const large = showLarge ? renderPatternView(store, largeHost) : null;

  let rowKey = "";
  let controlsKey = "";
  let rowEls = new Map(); // head -> row label element
  let cellEls = [];
  const canvasPool = []; // heatmap canvases, repainted when the rows change

  function drawControls() {
    const kind = store.get("color_scale") || "relative";
    const [low, high, meaning] = scaleLegend(kind, store.get("scale_exponent") ?? 0.5);
    controls.replaceChildren(
      h("span", { class: "mw-label" }, "Rows"),
      selectBox(rowsOptions(store), rowsValue(store), (v) => {
        if (v.startsWith("layer:")) {
          const [, m, l] = v.split(":");
          store.set({ grid_rows: "layer", grid_model: store.heads().modelNames[+m], grid_layer: +l });
        } else store.set({ grid_rows: v });
      }, { "aria-label": "grid rows", class: "mw-select mw-grid-rows" }),
      store.get("grid_rows") === "filter" ? filterControls(store) : "",
      h("span", { class: "mw-label" }, "Scale"),
      selectBox([["relative", "relative (per pattern)"], ["linear", "linear"], ["power", `power ${store.get("scale_exponent") ?? 0.5}`], ["log", "log"]],
        kind, (v) => store.set({ color_scale: v }), { "aria-label": "colour scale", title: meaning }),
      selectBox([["blues", "blues"], ["viridis", "viridis"], ["magma", "magma"]], store.get("colormap") || "blues",
        (v) => store.set({ colormap: v }), { "aria-label": "colour map" }),
      h("span", { class: "mw-small mw-scale-low" }, low),
      h("span", { class: "mw-colorbar", style: { background: gradientCss(store.get("colormap") || "blues") }, title: meaning }),
      h("span", { class: "mw-small mw-scale-high", title: meaning }, high),
      h("span", { class: "mw-small mw-scale-meaning" }, kind === "relative" ? "* per pattern, sink column excluded" : ""),
    );
  }

  function drawGrid() {
    const rows = gridRows(store);
    const cols = shownColumns(store);
    const prompts = store.thumbnailPrompts();
    const size = store.get("cell_size") || 64;
    const colors = colorSettings(store);
    const shown = rows.slice(0, MAX_ROWS);
    table.style.gridTemplateColumns = `auto repeat(${cols.length}, ${size}px)`;
    const children = [h("div", { class: "mw-grid-corner" }, rows.length ? "" : "no heads")];
    for (const t of cols) {
      children.push(t === TEXT_COLUMN
        ? h("div", { class: "mw-grid-colhead mw-text-col", title: store.text().text }, "your text")
        : h("div", { class: "mw-grid-colhead", title: prompts[t] }, prompts[t]));
    }
    rowEls = new Map();
    cellEls = [];
    for (const head of shown) {
      const label = h(
        "button",
        {
          class: "mw-grid-rowhead",
          title: `${store.headId(head)} (click: select, shift-click: add to selection)`,
          dataset: { head: String(head) },
          onclick: (e) => store.select(head, { toggle: e.shiftKey }),
        },
        store.label(head),
        store.multiModel ? h("span", { class: "mw-small" }, ` ${store.modelName(head)}`) : "",
      );
      rowEls.set(head, label);
      children.push(label);
      for (const t of cols) {
        const canvas = t === TEXT_COLUMN
          ? textCanvas(head, size, colors, canvasPool[cellEls.length])
          : patternCanvas(store, head, t, size, colors, "mw-heatmap", canvasPool[cellEls.length]);
        canvas.tabIndex = 0;
        canvas.setAttribute("aria-label", `${store.longLabel(head)} on ${t === TEXT_COLUMN ? "your text" : prompts[t]}: Enter selects, arrow keys move`);
        canvasPool[cellEls.length] = canvas;
        cellEls.push(canvas);
        children.push(canvas);
      }
    }
    const focused = cellEls.length && document.activeElement instanceof HTMLCanvasElement && table.contains(document.activeElement)
      ? [+document.activeElement.dataset.head, +document.activeElement.dataset.thumb] : null;
    table.replaceChildren(...children);
    if (focused) {
      const again = cellEls.find((c) => +c.dataset.head === focused[0] && +c.dataset.thumb === focused[1]) || cellEls[0];
      if (again) again.focus({ preventScroll: true });
    }
    const nCols = gridColumns(store).length;
    const nAll = prompts.length;
    note.textContent = [
      rows.length > MAX_ROWS ? `showing ${MAX_ROWS} of ${rows.length} heads` : "",
      nCols < nAll ? `${nCols} of ${nAll} prompts as columns (grid_prompts / show_prompts choose; the large view opens any prompt)` : "",
    ].filter(Boolean).join("; ");
    markSelection();
  }

  /** A heatmap of head `head` on the user's text (blank when the head is another model's). */
  function textCanvas(head, size, colors, reuse) {
    const canvas = reuse || document.createElement("canvas");
    canvas.className = "mw-heatmap";
    canvas.style.width = `${size}px`;
    canvas.style.height = `${size}px`;
    const s = store.patternFor(head, TEXT_PROMPT);
    if (s.values) paintPattern(canvas, s.values, s.size, colors);
    else canvas.getContext("2d").clearRect(0, 0, canvas.width, canvas.height);
    canvas.dataset.head = String(head);
    canvas.dataset.thumb = TEXT_COLUMN;
    return canvas;
  }

  function markSelection() {
    const focus = store.selectedIndex();
    const sel = new Set(store.selectionIndices());
    for (const [head, label] of rowEls) {
      label.classList.toggle("mw-is-selected", head === focus);
      label.classList.toggle("mw-in-selection", sel.has(head));
    }
    for (const c of cellEls) c.classList.toggle("mw-is-selected", +c.dataset.head === focus);
  }

  function refresh() {
    const text = store.text();
    const key = JSON.stringify([gridRows(store), gridColumns(store), store.get("cell_size"), store.get("color_scale"),
      store.get("scale_exponent"), store.get("colormap"), text ? [text.text, text.n] : null]);
    const ck = JSON.stringify([rowsValue(store), (store.get("grid_heads") || []).length, store.get("grid_filter"), store.get("color_scale"),
      store.get("scale_exponent"), store.get("colormap")]);
    if (ck !== controlsKey) {
      controlsKey = ck;
      drawControls();
    }
    if (key !== rowKey) {
      rowKey = key;
      drawGrid();
    } else markSelection();
    if (large) large.update(largeHead(), colorSettings(store));
  }

  function largeHead() {
    const focus = store.selectedIndex();
    if (focus >= 0) return focus;
    const rows = gridRows(store);
    return rows.length ? rows[0] : -1;
  }

  // Hover and click on heatmaps, delegated from the grid.
  function cellEvent(event) {
    const c = event.target;
    if (!(c instanceof HTMLCanvasElement) || c.dataset.head === undefined) return null;
    const head = +c.dataset.head;
    const t = c.dataset.thumb === TEXT_COLUMN ? TEXT_COLUMN : +c.dataset.thumb;
    const prompt = t === TEXT_COLUMN ? TEXT_PROMPT : store.thumbnailPrompts()[t];
    const pat = t === TEXT_COLUMN ? store.patternFor(head, TEXT_PROMPT) : null;
    const m = pat ? pat.size : store.patternSize(head, t);
    const [x, y] = localPoint(event, c);
    const cell = m ? cellAt(x, y, c.getBoundingClientRect().width, m) : null;
    return { head, t, cell, m, prompt, pat };
  }
  table.addEventListener("mousemove", (event) => {
    const hit = cellEvent(event);
    if (!hit || !hit.cell) return tip.hide();
    const [q, k] = hit.cell;
    const { values } = hit.pat || store.pattern(hit.head, hit.t);
    const tokens = hit.pat ? hit.pat.tokens : store.tokens(hit.head, hit.t);
    const [x, y] = localPoint(event, root);
    tip.show(x, y, [
      h("div", { class: "mw-tip-title" }, `${store.longLabel(hit.head)} \u00b7 ${hit.t === TEXT_COLUMN ? "your text" : hit.prompt}`),
      `query ${q} \u201c${showToken(tokens[q])}\u201d`,
      `key ${k} \u201c${showToken(tokens[k])}\u201d`,
      `weight ${formatNumber(values[q * hit.m + k], 4)}`,
    ]);
  });
  table.addEventListener("mouseleave", () => tip.hide());
  table.addEventListener("click", (event) => {
    const hit = cellEvent(event);
    if (!hit) return;
    const prompt = hit.prompt;
    if (store.get("focus_prompt") !== prompt) store.set({ focus_prompt: prompt });
    store.select(hit.head, { toggle: event.shiftKey });
  });

  // Keyboard: arrow keys move between heatmaps (left / right: prompts, up / down: heads),
  // Enter or space selects the head and enlarges the pattern (as a click does; shift adds).
  table.addEventListener("keydown", (event) => {
    const c = event.target;
    if (!(c instanceof HTMLCanvasElement) || c.dataset.head === undefined) return;
    const i = cellEls.indexOf(c);
    const width = shownColumns(store).length || 1;
    const moves = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: width, ArrowUp: -width };
    if (event.key in moves) {
      event.preventDefault();
      const next = cellEls[i + moves[event.key]];
      if (next) next.focus();
    } else if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      const head = +c.dataset.head;
      const prompt = c.dataset.thumb === TEXT_COLUMN ? TEXT_PROMPT : store.thumbnailPrompts()[+c.dataset.thumb];
      if (store.get("focus_prompt") !== prompt) store.set({ focus_prompt: prompt });
      store.select(head, { toggle: event.shiftKey });
    }
  });

  const schedule = coalesce(refresh);
  store.on(
    ["selected_head", "selection", "grid_rows", "grid_model", "grid_layer", "grid_heads", "grid_filter", "grid_prompts", "cell_size",
      "color_scale", "scale_exponent", "colormap", "focus_prompt", "text_patterns"],
    schedule,
  );
  refresh();
  return {
    refresh,
    destroy() {
      if (large) large.destroy();
      root.remove();
    },
  };
}
