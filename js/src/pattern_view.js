// The large single-pattern view: one head's pattern on one prompt, token labels on both axes
// (queries down the left, keys along the top), hover for the exact cell.

import { paintPattern } from "./heatmap.js";
import { formatNumber, showToken } from "./store.js";
import { h, localPoint, selectBox, tooltip } from "./dom.js";

const LEFT = 92; // px for query labels
const TOP = 74; // px for key labels
const LABEL_CHARS = 11;

function shortToken(tok) {
  const s = showToken(tok);
  return s.length > LABEL_CHARS ? `${s.slice(0, LABEL_CHARS - 1)}\u2026` : s;
}

/**
 * Render into `el`; returns {update(head, colors), destroy}. `head` = -1 shows a hint.
 * The prompt comes from the model's `focus_prompt` (a thumbnail prompt id).
 */
export function renderPatternView(store, el, { maxSide = 420 } = {}) {
  const root = h("div", { class: "mw-pattern-view" });
  const title = h("div", { class: "mw-pattern-title" });
  const promptBox = h("span");
  const canvas = h("canvas", { class: "mw-pattern-canvas" });
  const body = h("div", { class: "mw-pattern-body" }, canvas);
  const tip = tooltip(body);
  root.append(h("div", { class: "mw-row mw-pattern-head" }, title, promptBox), body);
  el.appendChild(root);

  const pixels = document.createElement("canvas"); // m x m heatmap, drawn scaled
  let state = null; // {head, t, values, m, cell, tokens}

  function promptIndex() {
    const prompts = store.thumbnailPrompts();
    const t = prompts.indexOf(store.get("focus_prompt"));
    return t >= 0 ? t : 0;
  }

  function draw(hover = null) {
    const ctx = canvas.getContext("2d");
    const dpr = window.devicePixelRatio || 1;
    const { m, cell, tokens } = state;
    const side = m * cell;
    const width = LEFT + side + 8;
    const height = TOP + side + 8;
    if (canvas.width !== Math.round(width * dpr)) canvas.width = Math.round(width * dpr);
    if (canvas.height !== Math.round(height * dpr)) canvas.height = Math.round(height * dpr);
    canvas.style.width = `${width}px`;
    canvas.style.height = `${height}px`;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, width, height);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(pixels, LEFT, TOP, side, side);
    ctx.strokeStyle = "#999";
    ctx.lineWidth = 1;
    ctx.strokeRect(LEFT - 0.5, TOP - 0.5, side + 1, side + 1);
    // Labels: every token when cells are tall enough for the font, else every step-th.
    const step = Math.max(1, Math.ceil(10 / cell));
    ctx.font = `${Math.min(11, Math.max(8, cell - 1))}px ui-monospace, SFMono-Regular, Menlo, monospace`;
    const fg = getComputedStyle(root).color || "#333"; // the theme's text colour (dark themes too)
    ctx.fillStyle = fg;
    ctx.textBaseline = "middle";
    ctx.textAlign = "right";
    for (let q = 0; q < m; q += step) {
      ctx.fillStyle = hover && hover[0] === q ? "#c2185b" : fg;
      ctx.fillText(shortToken(tokens[q]), LEFT - 4, TOP + (q + 0.5) * cell);
    }
    ctx.textAlign = "left";
    for (let k = 0; k < m; k += step) {
      ctx.save();
      ctx.translate(LEFT + (k + 0.5) * cell, TOP - 4);
      ctx.rotate(-Math.PI / 2);
      ctx.fillStyle = hover && hover[1] === k ? "#c2185b" : fg;
      ctx.fillText(shortToken(tokens[k]), 0, 0);
      ctx.restore();
    }
    if (hover) {
      ctx.strokeStyle = "#c2185b";
      ctx.lineWidth = 1.5;
      ctx.strokeRect(LEFT + hover[1] * cell, TOP + hover[0] * cell, cell, cell);
    }
  }

  function update(head, colors) {
    const prompts = store.thumbnailPrompts();
    promptBox.replaceChildren(
      prompts.length > 1
        ? selectBox(
            prompts.map((p) => [p, p]),
            prompts[promptIndex()] ?? "",
            (v) => store.set({ focus_prompt: v }),
            { title: "prompt of the large view", "aria-label": "prompt" },
          )
        : "",
    );
    if (head < 0 || !prompts.length) {
      state = null;
      title.textContent = "Click a heatmap to enlarge it";
      canvas.style.display = "none";
      return;
    }
    const t = promptIndex();
    const { values, size: m } = store.pattern(head, t);
    const cell = Math.max(3, Math.min(14, Math.floor((maxSide - LEFT) / Math.max(m, 1))));
    const tokens = store.tokens(head, t);
    state = { head, t, values, m, cell, tokens };
    title.replaceChildren(h("b", {}, store.longLabel(head)), ` on ${prompts[t]} (${m} tokens)`);
    canvas.style.display = "";
    paintPattern(pixels, values, m, colors);
    draw();
  }

  function onMove(event) {
    if (!state) return;
    const [x, y] = localPoint(event, canvas);
    const q = Math.floor((y - TOP) / state.cell);
    const k = Math.floor((x - LEFT) / state.cell);
    if (q < 0 || k < 0 || q >= state.m || k >= state.m) {
      tip.hide();
      draw();
      return;
    }
    draw([q, k]);
    const [bx, by] = localPoint(event, body);
    tip.show(bx, by, [
      h("div", { class: "mw-tip-title" }, `${store.longLabel(state.head)} \u00b7 ${store.thumbnailPrompts()[state.t]}`),
      `query ${q} \u201c${showToken(state.tokens[q])}\u201d`,
      `key ${k} \u201c${showToken(state.tokens[k])}\u201d`,
      `weight ${formatNumber(state.values[q * state.m + k], 4)}`,
    ]);
  }
  function onLeave() {
    tip.hide();
    if (state) draw();
  }
  canvas.addEventListener("mousemove", onMove);
  canvas.addEventListener("mouseleave", onLeave);

  return {
    update,
    destroy() {
      root.remove();
    },
  };
}
