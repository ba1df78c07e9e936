// Small DOM helpers shared by the views: element builder, tooltip, select boxes, styles.

import css from "./styles.css";

const STYLE_ID = "motif-widgets-style";

/** Add the widget style sheet to the document of `el` once (updated if the bundle changed). */
export function ensureStyles(el) {
  const doc = el.ownerDocument || document;
  let tag = doc.getElementById(STYLE_ID);
  if (!tag) {
    tag = doc.createElement("style");
    tag.id = STYLE_ID;
    doc.head.appendChild(tag);
  }
  if (tag.textContent !== css) tag.textContent = css;
}

/** h("div", {class: "x", onclick: fn}, child, "text", [more]) */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "style" && typeof v === "object") Object.assign(el.style, v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k in el && k !== "list" && typeof v !== "string") el[k] = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c == null || c === false) continue;
    el.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** A <select> of [value, label] options with `value` chosen; onchange gets the new value. */
export function selectBox(options, value, onchange, attrs = {}) {
  const s = h(
    "select",
    { class: "mw-select", ...attrs },
    options.map(([v, label]) => h("option", { value: v, selected: String(v) === String(value) }, label)),
  );
  s.value = String(value);
  s.addEventListener("change", () => onchange(s.value));
  return s;
}

/** A floating tooltip inside `container` (position: relative). */
export function tooltip(container) {
  const tip = h("div", { class: "mw-tooltip", role: "tooltip" });
  tip.style.display = "none";
  container.appendChild(tip);
  return {
    el: tip,
    show(x, y, lines) {
      tip.replaceChildren(...lines.map((l) => (l instanceof Node ? l : h("div", {}, l))));
      tip.style.display = "block";
      // beside the pointer, flipped to the other side where it would leave the container
      const box = container.getBoundingClientRect();
      const w = tip.offsetWidth;
      const ht = tip.offsetHeight;
      const left = x + 14 + w > box.width ? Math.max(0, x - 14 - w) : x + 14;
      const top = y + 12 + ht > box.height ? Math.max(0, y - 12 - ht) : y + 12;
      tip.style.left = `${left}px`;
      tip.style.top = `${top}px`;
    },
    hide() {
      tip.style.display = "none";
    },
  };
}

/** Mouse position relative to an element's top-left corner, in CSS pixels. */
export function localPoint(event, el) {
  const r = el.getBoundingClientRect();
  return [event.clientX - r.left, event.clientY - r.top];
}

/** Save a canvas (or a composite of stacked canvases of one size) as a PNG download. */
export function downloadPng(canvases, filename) {
  const [first] = canvases;
  const out = document.createElement("canvas");
  out.width = first.width;
  out.height = first.height;
  const ctx = out.getContext("2d");
  for (const c of canvases) ctx.drawImage(c, 0, 0, out.width, out.height);
  const a = document.createElement("a");
  a.download = filename;
  a.href = out.toDataURL("image/png");
  document.body.appendChild(a);
  a.click();
  a.remove();
  return a.href.length;
}
