// HeadExplorer: the three views and the head card over one model, so one selection state links
// them: a click in any view sets `selected_head` / `selection`, and every view redraws from the
// model's change events (including changes made in Python).

import { renderCard } from "./card.js";
import { renderCloud } from "./cloud.js";
import { renderGrid } from "./grid.js";
import { renderSimilar } from "./similar.js";
import { h } from "./dom.js";

export const NARROW_PX = 760;

export function renderExplorer(store, el) {
  const title = store.get("title") || "";
  const cloudHost = h("section", { class: "mw-panel mw-explorer-cloud", "aria-label": "pattern cloud" });
  const cardHost = h("section", { class: "mw-panel mw-explorer-card", "aria-label": "head card" });
  const similarHost = h("section", { class: "mw-panel mw-explorer-similar", "aria-label": "similar heads" });
  const gridHost = h("section", { class: "mw-panel mw-explorer-grid", "aria-label": "pattern grid" });
  const root = h(
    "div",
    { class: "mw-explorer" },
    title ? h("div", { class: "mw-explorer-title" }, title) : "",
    h("div", { class: "mw-explorer-top" }, cloudHost, h("div", { class: "mw-explorer-side" }, cardHost, similarHost)),
    gridHost,
  );
  el.appendChild(root);
  // Layout follows the widget's own width (a notebook cell, a side panel), not the window's:
  // below NARROW_PX the cloud and the side column stack.
  const resize = new ResizeObserver((entries) => {
    const width = entries[entries.length - 1].contentRect.width;
    if (width > 0) root.classList.toggle("mw-narrow", width < NARROW_PX);
  });
  resize.observe(root);
  const views = [renderCloud(store, cloudHost, { height: null }), renderCard(store, cardHost), renderSimilar(store, similarHost, { scaleNote: false }), renderGrid(store, gridHost)];
  return {
    destroy() {
      resize.disconnect();
      views.forEach((v) => v.destroy());
      root.remove();
    },
  };
}
