// The large single-pattern view: one head's pattern on one prompt (any atlas prompt, or the
// user's own text), token labels on both axes, hover for the exact cell; below it the prompt's
// full text with tokens coloured by attention from / to the hovered token, a strip of the
// selected heads (hover: preview, click: lock), and, with a model attached, the text box.
//
// Which pattern: the kernel's full-resolution one when it has sent it (full_pattern), else the
// thumbnail (the prompt's first K tokens), while the view asks the kernel for the full one
// (message {type: "pattern"}) when a model is attached. The title says which it shows.

import { paintPattern } from "./heatmap.js";
import { TEXT_PROMPT, formatNumber, showToken } from "./store.js";
import { downloadPng, h, localPoint, selectBox, tooltip } from "./dom.js";

const LEFT = 92; // px for query labels
const TOP = 74; // px for key labels
const LABEL_CHARS = 11;
const STRIP_HEADS = 16;

function shortToken(tok) {
  const s = showToken(tok);
  return s.length > LABEL_CHARS ? `${s.slice(0, LABEL_CHARS - 1)}\u2026` : s;
}

/** The prompt of the large view: focus_prompt, else the first thumbnail prompt. */
export function focusPrompt(store) {
  const p = store.get("focus_prompt");
  if (p === TEXT_PROMPT) return store.text() ? p : store.thumbnailPrompts()[0] || store.promptIds()[0];
  return p || store.thumbnailPrompts()[0] || store.promptIds()[0];
}

/**
 * Render into `el`; returns {update(head, colors), destroy}. `head` = -1 shows a hint.
 */
export function renderPatternView(store, el, { maxSide = 420 } = {}) {
  const root = h("div", { class: "mw-pattern-view" });
  const title = h("div", { class: "mw-pattern-title" });
  const promptBox = h("span");
  const status = h("div", { class: "mw-small mw-pattern-status" });
  const canvas = h("canvas", { class: "mw-pattern-canvas" });
  const body = h("div", { class: "mw-pattern-body" }, canvas);
  const tip = tooltip(body);
  const tokenMode = h("span", { class: "mw-row mw-token-mode" });
  const tokenBox = h("div", { class: "mw-tokens", "aria-label": "prompt text" });
  const strip = h("div", { class: "mw-row mw-text-heads" });
  const textHost = h("div", { class: "mw-text-box" });
  const png = h("button", {
    class: "mw-button mw-png", title: "save this pattern as a PNG image",
    onclick: () => state && downloadPng([canvas], `${store.label(state.head)}-${state.prompt === TEXT_PROMPT ? "your-text" : state.prompt}.png`),
  }, "PNG");
  root.append(h("div", { class: "mw-row mw-pattern-head" }, title, promptBox, png), status, body,
    h("div", { class: "mw-token-panel" }, tokenMode, tokenBox), strip, textHost);
  el.appendChild(root);

  const pixels = document.createElement("canvas"); // m x m heatmap, drawn scaled
  let state = null; // {head, prompt, values, m, cell, tokens, total, source}
  let last = { head: -1, colors: null };
  let preview = -1; // head hovered in the strip
  let pending = null; // "head|prompt" asked of the kernel
  let hoverToken = -1;
  let lockedToken = -1;
  let direction = "row"; // colour tokens by attention from (row) or to (column) the token

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

  function promptOptions() {
    const ids = store.promptIds();
    const kinds = store.get("prompt_kinds") || [];
    const opts = ids.map((p, k) => [p, `${p}${kinds[k] ? ` (${kinds[k]})` : ""}${store.thumbSlot(p) < 0 ? " \u00b7 no thumbnail" : ""}`]);
    const text = store.text();
    if (text) opts.unshift([TEXT_PROMPT, `\u270e your text (${text.n} tokens)`]);
    return opts;
  }

  function resolutionNote(s, head, prompt) {
    const total = s.total;
    if (s.source === "full") return `full resolution: all ${s.size} tokens (computed in the kernel)`;
    if (s.source === "text") {
      const t = store.text();
      return `your text: ${s.size} tokens, one forward pass${t && t.ms != null ? ` (${t.ms} ms in the kernel)` : ""}`;
    }
    const live = store.get("can_run_model");
    const fp = store.get("full_pattern") || {};
    const failed = fp.status === "error" && fp.head === store.headId(head) && fp.prompt === prompt;
    const asking = live && !failed ? "; fetching the full pattern from the kernel\u2026" : "";
    const error = failed ? `; the kernel could not compute it: ${fp.error}` : "";
    if (s.source === "thumbnail") {
      const whole = s.size >= total;
      return `thumbnail: ${whole ? `all ${s.size}` : `the first ${s.size} of ${total}`} tokens${asking}${error}`;
    }
    if (prompt === TEXT_PROMPT) return "this head is not a head of the model that ran your text";
    return `no thumbnail of this prompt kept${live ? asking : " (attach a model, HeadExplorer(atlas, model=model), to compute it)"}${error}`;
  }

  function askKernel(head, prompt, s) {
    if (!store.get("can_run_model") || prompt === TEXT_PROMPT || s.source === "full") return;
    const key = `${store.headId(head)}|${prompt}`;
    const fp = store.get("full_pattern") || {};
    if (pending === key || (fp.status === "error" && `${fp.head}|${fp.prompt}` === key)) return;
    pending = key;
    store.model.send({ type: "pattern", head: store.headId(head), prompt });
  }

  function shownHead() {
    return preview >= 0 ? preview : last.head;
  }

  function redraw() {
    const head = shownHead();
    const colors = last.colors;
    promptBox.replaceChildren(
      selectBox(promptOptions(), focusPrompt(store) ?? "", (v) => store.set({ focus_prompt: v }), {
        title: "prompt of the large view", "aria-label": "prompt",
      }),
    );
    drawTextBox();
    drawStrip();
    if (head < 0 || !colors) {
      state = null;
      title.textContent = "Click a heatmap or a point to enlarge its pattern";
      status.textContent = "";
      canvas.style.display = "none";
      tokenMode.replaceChildren();
      tokenBox.replaceChildren();
      return;
    }
    const prompt = focusPrompt(store);
    const s = store.patternFor(head, prompt);
    const label = prompt === TEXT_PROMPT ? "your text" : prompt;
    title.replaceChildren(h("b", {}, store.longLabel(head)), ` on ${label}`, preview >= 0 ? h("span", { class: "mw-small" }, " (preview)") : "");
    status.textContent = resolutionNote(s, head, prompt);
    status.dataset.source = s.source;
    askKernel(head, prompt, s);
    if (!s.values) {
      state = null;
      canvas.style.display = "none";
      drawTokens(null, s.tokens);
      return;
    }
    const m = s.size;
    const cell = Math.max(3, Math.min(14, Math.floor((maxSide - LEFT) / Math.max(m, 1))));
    state = { head, prompt, values: s.values, m, cell, tokens: s.tokens, total: s.total, source: s.source };
    canvas.style.display = "";
    paintPattern(pixels, s.values, m, colors);
    draw();
    drawTokens(state, s.tokens);
    if (s.source === "text") root.dispatchEvent(new CustomEvent("mw-text-shown", { bubbles: true, detail: { head, n: m } }));
  }

  // ---------------------------------------------------------------- the prompt's text, coloured
  function drawTokens(s, tokens) {
    tokenMode.replaceChildren(
      h("span", { class: "mw-label" }, "Text"),
      selectBox([["row", "attention from the hovered token"], ["col", "attention to the hovered token"]], direction, (v) => {
        direction = v;
        colourTokens();
      }, { "aria-label": "token colouring" }),
      h("span", { class: "mw-small" }, lockedToken >= 0 ? `token ${lockedToken} locked (click it again to unlock)` : "hover a token; click to lock it"),
    );
    tokenBox.replaceChildren(
      ...tokens.map((tok, i) =>
        h("span", {
          class: `mw-token${s && i >= s.m ? " mw-token-out" : ""}`,
          dataset: { i: String(i) },
          title: s && i >= s.m ? `token ${i}: beyond the ${s.m} tokens of this pattern` : `token ${i}`,
        }, showToken(tok).replace(/\u00b7/g, " ")),
      ),
    );
    colourTokens();
  }

  function colourTokens() {
    const spans = tokenBox.children;
    const focus = lockedToken >= 0 ? lockedToken : hoverToken;
    const s = state;
    const weights = new Float32Array(spans.length);
    let max = 0;
    if (s && focus >= 0 && focus < s.m) {
      for (let j = 0; j < Math.min(spans.length, s.m); j++) {
        const w = direction === "row" ? (j <= focus ? s.values[focus * s.m + j] : 0) : (j >= focus ? s.values[j * s.m + focus] : 0);
        weights[j] = w;
        if (j > 0 && j !== focus && w > max) max = w; // first token and itself excluded, as the relative scale does
      }
    }
    const lut = last.colors ? last.colors.lut : null;
    for (let j = 0; j < spans.length; j++) {
      const span = spans[j];
      span.classList.toggle("mw-token-focus", j === focus);
      if (!lut || !(focus >= 0) || !s || focus >= s.m || j >= s.m) {
        span.style.background = "";
        span.style.color = "";
        continue;
      }
      const v = Math.min(1, max > 0 ? weights[j] / max : weights[j]);
      const c = Math.round(v * 255) * 3;
      span.style.background = `rgb(${lut[c]}, ${lut[c + 1]}, ${lut[c + 2]})`;
      span.style.color = v > 0.55 ? "#fff" : "#111";
      span.dataset.weight = weights[j].toFixed(4);
    }
  }
  tokenBox.addEventListener("mouseover", (event) => {
    const i = event.target.dataset ? event.target.dataset.i : undefined;
    if (i === undefined) return;
    hoverToken = +i;
    if (lockedToken < 0) colourTokens();
    if (state && +i < state.m) draw([+i, +i]);
  });
  tokenBox.addEventListener("mouseleave", () => {
    hoverToken = -1;
    if (lockedToken < 0) colourTokens();
    if (state) draw();
  });
  tokenBox.addEventListener("click", (event) => {
    const i = event.target.dataset ? event.target.dataset.i : undefined;
    if (i === undefined) return;
    lockedToken = lockedToken === +i ? -1 : +i;
    if (state) drawTokens(state, state.tokens);
  });

  // ---------------------------------------------------------------- heads strip: hover previews, click locks
  function drawStrip() {
    const heads = store.selectionIndices();
    const focus = store.selectedIndex();
    if (focus >= 0 && !heads.includes(focus)) heads.push(focus);
    if (heads.length < 2) {
      strip.replaceChildren();
      return;
    }
    strip.replaceChildren(
      h("span", { class: "mw-label" }, "Heads"),
      ...heads.slice(0, STRIP_HEADS).map((head) =>
        h("button", {
          class: `mw-chip mw-strip-head${head === focus ? " mw-is-selected" : ""}`,
          dataset: { head: String(head) },
          title: "hover: preview this head; click: lock it (the selected head)",
          onmouseenter: () => {
            if (preview === head) return;
            preview = head;
            redraw();
          },
          onmouseleave: () => {
            if (preview < 0) return;
            preview = -1;
            redraw();
          },
          onclick: () => {
            preview = -1;
            store.set({ selected_head: store.headId(head) });
          },
        }, store.longLabel(head)),
      ),
      heads.length > STRIP_HEADS ? h("span", { class: "mw-small" }, `+${heads.length - STRIP_HEADS}`) : "",
    );
  }

  // ---------------------------------------------------------------- your text (with a model)
  let textInput = null;
  let textStatus = null;
  function drawTextBox() {
    if (!store.get("can_run_model")) {
      textHost.replaceChildren();
      textInput = null;
      return;
    }
    if (!textInput) {
      textInput = h("textarea", { class: "mw-text-input", rows: 3, placeholder: "Type or paste a prompt; Run (or ctrl+Enter) shows every head's pattern on it", "aria-label": "your text" });
      textInput.addEventListener("keydown", (event) => {
        if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
          event.preventDefault();
          run();
        }
      });
      textStatus = h("span", { class: "mw-small mw-text-status" });
      const button = h("button", { class: "mw-button mw-text-run", onclick: run }, "Run");
      textHost.replaceChildren(h("div", { class: "mw-label" }, "Your text"), textInput, h("div", { class: "mw-row" }, button, textStatus));
    }
    const tp = store.get("text_patterns") || {};
    if (tp.status === "error") textStatus.textContent = `error: ${tp.error}`;
    else if (tp.status === "done") textStatus.textContent = `${tp.n} tokens, forward pass ${tp.ms} ms`;
  }
  function run() {
    const text = textInput.value;
    if (!text.trim()) {
      textStatus.textContent = "type a prompt first";
      return;
    }
    textStatus.textContent = "running the model\u2026";
    root.dataset.textAskedAt = String(performance.now());
    store.model.send({ type: "run_text", text });
  }

  function update(head, colors) {
    last = { head, colors };
    if (preview >= 0 && !store.selectionIndices().includes(preview)) preview = -1;
    redraw();
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
      h("div", { class: "mw-tip-title" }, `${store.longLabel(state.head)} \u00b7 ${state.prompt === TEXT_PROMPT ? "your text" : state.prompt}`),
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

  const off = store.on(["full_pattern", "text_patterns", "can_run_model"], () => {
    const fp = store.get("full_pattern") || {};
    if (pending === `${fp.head}|${fp.prompt}`) pending = null;
    if (last.colors) redraw();
  });

  return {
    update,
    destroy() {
      off();
      root.remove();
    },
  };
}
