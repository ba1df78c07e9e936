// One store per rendered view: decodes the model's binary traits once, answers questions about
// heads (labels, scores, classes, neighbours, thumbnails) and implements the selection gestures.
// Python is the source of truth: gestures set `selected_head` / `selection` on the model and
// save them; every view redraws from the model's change events (its own gestures included).

import { decodeArray, float16Values, toFloat32 } from "./codecs.js";

/** Run `fn` once at the end of the current task, however often it is scheduled before. */
export function coalesce(fn) {
  let queued = false;
  return () => {
    if (queued) return;
    queued = true;
    queueMicrotask(() => {
      queued = false;
      fn();
    });
  };
}

export function createStore(model) {
  const subscriptions = [];
  const decoded = new Map();
  let heads = null;

  /** A decoded binary trait (cached while the trait keeps the same value), or null. */
  function array(name) {
    const raw = model.get(name);
    if (raw == null) return null;
    const hit = decoded.get(name);
    if (hit && hit.raw === raw) return hit.value;
    const value = decodeArray(raw);
    decoded.set(name, { raw, value });
    return value;
  }

  function float32(name) {
    const raw = model.get(name);
    if (raw == null) return null;
    const key = `${name}:f32`;
    const hit = decoded.get(key);
    if (hit && hit.raw === raw) return hit.value;
    const value = toFloat32(array(name));
    decoded.set(key, { raw, value });
    return value;
  }

  function headTable() {
    const ids = model.get("head_ids") || [];
    if (heads && heads.ids === ids) return heads;
    const index = new Map(ids.map((id, i) => [id, i]));
    heads = {
      ids,
      index,
      count: ids.length,
      model: array("head_model").data,
      layer: array("head_layer").data,
      number: array("head_number").data,
      modelNames: model.get("model_names") || [],
      modelLayers: model.get("model_layers") || [],
    };
    return heads;
  }

  const store = {
    model,
    get: (name) => model.get(name),
    array,
    float32,

    /** Set traits locally (views update at once) and send them to the kernel. */
    set(changes) {
      for (const [k, v] of Object.entries(changes)) model.set(k, v);
      model.save_changes();
    },

    /** Call cb on changes of any of the trait names; returns an unsubscribe function. */
    on(names, cb) {
      const list = Array.isArray(names) ? names : [names];
      for (const n of list) {
        model.on(`change:${n}`, cb);
        subscriptions.push([`change:${n}`, cb]);
      }
      return () => list.forEach((n) => model.off(`change:${n}`, cb));
    },

    destroy() {
      for (const [event, cb] of subscriptions.splice(0)) model.off(event, cb);
      decoded.clear();
    },

    // ---------------------------------------------------------------- heads
    heads: headTable,
    get headCount() {
      return headTable().count;
    },
    get multiModel() {
      return headTable().modelNames.length > 1;
    },
    headIndex(id) {
      const i = headTable().index.get(id);
      return i === undefined ? -1 : i;
    },
    headId(h) {
      return headTable().ids[h];
    },
    /** "L{layer}H{head}" (TransformerLens naming). */
    label(h) {
      const t = headTable();
      return `L${t.layer[h]}H${t.number[h]}`;
    },
    modelName(h) {
      const t = headTable();
      return t.modelNames[t.model[h]];
    },
    /** Head label with its model when the atlas has several. */
    longLabel(h) {
      return store.multiModel ? `${store.modelName(h)}:${store.label(h)}` : store.label(h);
    },
    /** Indices of the heads of one layer of one model, in head order. */
    layerHeads(modelIndex, layer) {
      const t = headTable();
      const out = [];
      for (let h = 0; h < t.count; h++) if (t.model[h] === modelIndex && t.layer[h] === layer) out.push(h);
      return out;
    },
    /** Index of a head from user text: a full id, "L5H1" (first model) or "model:L5H1". */
    findHead(text) {
      const q = String(text || "").trim();
      if (!q) return -1;
      const direct = store.headIndex(q);
      if (direct >= 0) return direct;
      const t = headTable();
      const m = /^(?:(.+):)?L(\d+)H(\d+)$/i.exec(q);
      if (!m) return -1;
      const modelIndex = m[1] ? t.modelNames.indexOf(m[1]) : 0;
      if (modelIndex < 0) return -1;
      for (let h = 0; h < t.count; h++) {
        if (t.model[h] === modelIndex && t.layer[h] === +m[2] && t.number[h] === +m[3]) return h;
      }
      return -1;
    },

    // ---------------------------------------------------------------- selection
    selectedIndex() {
      const id = model.get("selected_head");
      return id == null ? -1 : store.headIndex(id);
    },
    selectionIndices() {
      return (model.get("selection") || []).map((id) => store.headIndex(id)).filter((i) => i >= 0);
    },
    /** Plain click: select one head. Toggle (shift-click): add it to / remove it from the selection. */
    select(h, { toggle = false } = {}) {
      const ids = headTable().ids;
      const id = ids[h];
      if (id === undefined) return;
      if (!toggle) {
        store.set({ selection: [id], selected_head: id });
        return;
      }
      const current = model.get("selection") || [];
      if (current.includes(id)) {
        const rest = current.filter((x) => x !== id);
        const focus = model.get("selected_head") === id ? (rest.length ? rest[rest.length - 1] : null) : model.get("selected_head");
        store.set({ selection: rest, selected_head: focus });
      } else {
        store.set({ selection: [...current, id], selected_head: id });
      }
    },
    /** Lasso / box: select many heads (added to the selection when `add`). */
    selectMany(indices, { add = false } = {}) {
      const ids = headTable().ids;
      const chosen = indices.map((h) => ids[h]);
      const next = add ? [...new Set([...(model.get("selection") || []), ...chosen])] : [...new Set(chosen)];
      const focus = model.get("selected_head");
      store.set({ selection: next, selected_head: next.includes(focus) ? focus : next.length ? next[0] : null });
    },
    clearSelection() {
      store.set({ selection: [], selected_head: null });
    },

    // ---------------------------------------------------------------- scores and classes
    scoreNames() {
      return model.get("score_names") || [];
    },
    /** [H * S] float32 head-type scores, row-major. */
    headScores() {
      return float32("head_scores");
    },
    score(h, s) {
      return store.headScores()[h * store.scoreNames().length + s];
    },
    clusters() {
      const c = array("clusters");
      return c ? c.data : null;
    },
    /** Family name of cluster c (1-based), or "cluster c" without names. */
    clusterName(c) {
      const names = model.get("cluster_names") || [];
      return names[c - 1] || `cluster ${c}`;
    },
    knownClasses(h) {
      return (model.get("known_classes") || {})[String(h)] || [];
    },
    classColor(name) {
      return (model.get("known_class_colors") || {})[name] || "#888888";
    },

    // ---------------------------------------------------------------- thumbnails
    thumbnailPrompts() {
      return model.get("thumbnail_prompts") || [];
    },
    /** Tokens shown in thumbnail t of head h (its model's tokenization, cut to the thumbnail size). */
    tokens(h, t) {
      const perModel = model.get("thumbnail_tokens") || [];
      const m = headTable().model[h];
      return (perModel[m] && perModel[m][t]) || [];
    },
    /** Side of thumbnail t of head h: the prompt length cut to the thumbnail size. */
    patternSize(h, t) {
      const lengths = array("thumbnail_lengths");
      const thumbs = array("thumbnails");
      const k = thumbs.shape[3];
      if (!lengths) return k;
      return Math.min(k, lengths.data[headTable().model[h] * lengths.shape[1] + t]);
    },
    /** The m x m attention weights of thumbnail t of head h (Float32Array, row = query). */
    pattern(h, t) {
      const thumbs = array("thumbnails");
      const [, T, K] = thumbs.shape;
      const m = store.patternSize(h, t);
      const out = new Float32Array(m * m);
      const raw = thumbs.data;
      const base = (h * T + t) * K * K;
      if (thumbs.dtype === "float16") {
        const table = float16Values();
        for (let q = 0; q < m; q++) for (let k = 0; k < m; k++) out[q * m + k] = table[raw[base + q * K + k]];
      } else {
        // uint8: square-root code, weight = (code / 255) ** 2
        for (let q = 0; q < m; q++) {
          for (let k = 0; k < m; k++) {
            const c = raw[base + q * K + k] / 255;
            out[q * m + k] = c * c;
          }
        }
      }
      return { values: out, size: m };
    },

    // ---------------------------------------------------------------- any (head, prompt) pattern
    /** All atlas prompt ids (the cloud's points; thumbnails may cover fewer). */
    promptIds() {
      return model.get("prompt_ids") || store.thumbnailPrompts();
    },
    /** Slot of prompt id p among the thumbnails, or -1. */
    thumbSlot(p) {
      return store.thumbnailPrompts().indexOf(p);
    },
    /** Every token of prompt p (an id) in head h's model ([] when unknown). */
    promptTokens(h, p) {
      const perModel = model.get("prompt_tokens") || [];
      const k = store.promptIds().indexOf(p);
      const m = headTable().model[h];
      if (k >= 0 && perModel[m] && perModel[m][k]) return perModel[m][k];
      const t = store.thumbSlot(p);
      return t >= 0 ? store.tokens(h, t) : [];
    },
    /** The model's last run on the user's text (text_patterns), decoded, or null. */
    text() {
      const tp = model.get("text_patterns");
      if (!tp || tp.status !== "done" || !tp.pattern) return null;
      const hit = decoded.get("text_patterns");
      if (hit && hit.raw === tp) return hit.value;
      const arr = decodeArray(tp.pattern);
      const rows = new Map((tp.heads || []).map((head, r) => [head, r]));
      const value = { text: tp.text, tokens: tp.tokens || [], n: tp.n, rows, arr, ms: tp.ms };
      decoded.set("text_patterns", { raw: tp, value });
      return value;
    },
    /**
     * The pattern of head h on prompt p (an atlas prompt id, or TEXT_PROMPT for the user's text),
     * best first: the kernel's full-resolution pattern, else the thumbnail (the first K tokens).
     * Returns {values, size, total, tokens, source: "full" | "thumbnail" | "text"} or
     * {values: null, total, tokens, source: "none"}.
     */
    patternFor(h, p) {
      if (p === TEXT_PROMPT) {
        const t = store.text();
        const r = t ? t.rows.get(h) : undefined;
        if (!t || r === undefined) return { values: null, size: 0, total: t ? t.n : 0, tokens: t ? t.tokens : [], source: "none" };
        const n = t.n;
        return { values: float16Block(t.arr.data, r * n * n, n * n), size: n, total: n, tokens: t.tokens, source: "text" };
      }
      const tokens = store.promptTokens(h, p);
      const fp = model.get("full_pattern");
      if (fp && fp.status === "done" && fp.head === headTable().ids[h] && fp.prompt === p && fp.pattern) {
        const key = "full_pattern";
        let hit = decoded.get(key);
        if (!hit || hit.raw !== fp) {
          const arr = decodeArray(fp.pattern);
          hit = { raw: fp, value: float16Block(arr.data, 0, fp.n * fp.n) };
          decoded.set(key, hit);
        }
        return { values: hit.value, size: fp.n, total: tokens.length || fp.n, tokens, source: "full" };
      }
      const t = store.thumbSlot(p);
      if (t < 0) return { values: null, size: 0, total: tokens.length, tokens, source: "none" };
      const { values, size } = store.pattern(h, t);
      return { values, size, total: Math.max(tokens.length, size), tokens: tokens.length ? tokens : store.tokens(h, t), source: "thumbnail" };
    },

    // ---------------------------------------------------------------- what heads do
    /** Numeric head_stats columns (circuits, effects); [] without circuits. */
    statNames() {
      return model.get("stat_names") || [];
    },
    /** Value of stat column s of head h (NaN when unknown). */
    stat(h, s) {
      const values = float32("head_stats");
      return values ? values[h * store.statNames().length + s] : NaN;
    },
    statByName(h, name) {
      const s = store.statNames().indexOf(name);
      return s < 0 ? NaN : store.stat(h, s);
    },
    /** Head index of h's strongest composition partner, kind "q" | "k" | "v", or -1. */
    partner(h, kind) {
      const p = array("comp_partners");
      return p ? p.data[h * 3 + "qkv".indexOf(kind)] : -1;
    },
    /** Atlas.describe(head) text, or "". */
    description(h) {
      return (model.get("head_descriptions") || [])[h] || "";
    },

    // ---------------------------------------------------------------- neighbours
    /** Evidence channels of the neighbour tables ("pattern" first). */
    channels() {
      const c = model.get("similar_channels");
      return c && c.length ? c : ["pattern"];
    },
    /** Percentile (0-100) of distance d among all head pairs under channel `by`, or null. */
    percentile(d, by = "pattern") {
      const q = array("distance_quantiles");
      const c = store.channels().indexOf(by);
      if (!q || c < 0 || Number.isNaN(d)) return null;
      const n = q.shape[1];
      const row = q.data.subarray(c * n, (c + 1) * n);
      let lo = 0;
      let hi = n - 1;
      if (d <= row[0]) return 0;
      if (d >= row[hi]) return 100;
      while (hi - lo > 1) {
        const mid = (lo + hi) >> 1;
        if (row[mid] <= d) lo = mid;
        else hi = mid;
      }
      const f = row[hi] > row[lo] ? (d - row[lo]) / (row[hi] - row[lo]) : 0;
      return (100 * (lo + f)) / (n - 1);
    },
    /**
     * Nearest heads of h (itself excluded), nearest first: [{head, distance}], at most k.
     * modelName: null for all models, else only that model's heads.
     */
    neighbors(h, k, modelName = null, by = "pattern") {
      let idx;
      let dist;
      let row;
      const channel = store.channels().indexOf(by);
      if (channel > 0) {
        // another evidence channel: its table over all heads, filtered to the model when one is chosen
        idx = array("channel_neighbor_index");
        dist = array("channel_neighbor_distance");
        if (!idx) return [];
        const [, H, width] = idx.shape;
        const t = headTable();
        const m = modelName == null || !store.multiModel ? -1 : t.modelNames.indexOf(modelName);
        const out = [];
        for (let j = 0; j < width && out.length < k; j++) {
          const n = idx.data[((channel - 1) * H + h) * width + j];
          if (n < 0) break;
          if (m >= 0 && t.model[n] !== m) continue;
          out.push({ head: n, distance: dist.data[((channel - 1) * H + h) * width + j] });
        }
        return out;
      }
      if (modelName == null || !store.multiModel) {
        idx = array("neighbor_index");
        dist = array("neighbor_distance");
        row = h;
      } else {
        const m = headTable().modelNames.indexOf(modelName);
        idx = array("model_neighbor_index");
        dist = array("model_neighbor_distance");
        if (m < 0 || !idx) return [];
        row = m * headTable().count + h;
      }
      if (!idx) return [];
      const width = idx.shape[idx.shape.length - 1];
      const out = [];
      for (let j = 0; j < Math.min(k, width); j++) {
        const n = idx.data[row * width + j];
        if (n < 0) break;
        out.push({ head: n, distance: dist.data[row * width + j] });
      }
      return out;
    },
  };
  return store;
}

/** focus_prompt of the user's own text (grid.TEXT_PROMPT in Python). */
export const TEXT_PROMPT = "@text";

/** Float32Array of `count` float16 values (raw bits) from `offset`. */
function float16Block(bits, offset, count) {
  const table = float16Values();
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = table[bits[offset + i]];
  return out;
}

/** Visible form of a token: spaces as middle dots, newlines and tabs as symbols. */
export function showToken(tok) {
  if (tok == null) return "";
  return String(tok).replace(/ /g, "\u00b7").replace(/\n/g, "\u21b5").replace(/\t/g, "\u21e5").replace(/\r/g, "");
}

export function formatNumber(x, digits = 3) {
  if (x == null || Number.isNaN(x)) return "\u2013";
  return Number(x).toFixed(digits);
}

/** Display names of head-type scores: the same words in the card, badges, cloud menu and tooltips. */
export const SCORE_LABEL = {
  previous_token: "previous token",
  self: "self",
  first_token: "first token",
  recent: "recent",
  diffuse: "diffuse",
  duplicate_token: "duplicate token",
  induction: "induction",
};
export const scoreLabel = (name) => SCORE_LABEL[name] || String(name).replace(/_/g, " ");

/** Display names of the circuit / effect columns (Atlas.add_circuits). */
export const STAT_LABEL = {
  ov_copying: "OV copying",
  ov_norm: "OV norm",
  qk_norm: "QK norm",
  ov_rank: "OV rank",
  qk_rank: "QK rank",
  q_comp_max: "Q-composition",
  k_comp_max: "K-composition",
  v_comp_max: "V-composition",
  effect: "ablation effect, text (est.)",
  effect_repeated: "ablation effect, repeats (est.)",
};
export const statLabel = (name) => STAT_LABEL[name] || String(name).replace(/_/g, " ");

/** Names of the similar_by evidence channels. */
export const CHANNEL_LABEL = { pattern: "patterns", circuits: "circuits (weights)", effects: "effects (ablation)", combined: "combined" };

/** "3.2%" style percentile text (smaller = closer than most head pairs). */
export function formatPercentile(p) {
  if (p == null) return "";
  if (p < 0.1) return "<0.1%";
  return p < 10 ? `${p.toFixed(1)}%` : `${Math.round(p)}%`;
}
