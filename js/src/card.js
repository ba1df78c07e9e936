// Head card: the selected head's identity, cluster, head-type scores, known classes and its
// pattern thumbnails, plus the size of the multi-selection.

import { colorSettings, patternCanvas } from "./heatmap.js";
import { coalesce, formatNumber } from "./store.js";
import { classChips } from "./similar.js";
import { h } from "./dom.js";

export function renderCard(store, el) {
  const root = h("div", { class: "mw-card" });
  el.appendChild(root);

  function refresh() {
    const focus = store.selectedIndex();
    // the selected heads: the selection and the selected head (as selection_df() counts them)
    const count = new Set([...store.selectionIndices(), ...(focus >= 0 ? [focus] : [])]).size;
    const selectionLine = h(
      "div",
      { class: "mw-row mw-selection-line" },
      h("span", { class: "mw-selection-count" }, `${count} head${count === 1 ? "" : "s"} selected`),
      count || focus >= 0 ? h("button", { class: "mw-button", onclick: () => store.clearSelection() }, "clear") : "",
    );
    if (focus < 0) {
      root.replaceChildren(h("div", { class: "mw-card-title mw-muted" }, "No head selected"), selectionLine);
      return;
    }
    const t = store.heads();
    const clusters = store.clusters();
    const names = store.scoreNames();
    const threshold = store.get("badge_threshold") ?? 0.4;
    const colors = colorSettings(store);
    const prompts = store.thumbnailPrompts();
    const classes = classChips(store, focus);
    root.replaceChildren(
      h("div", { class: "mw-card-title", dataset: { head: String(focus) } }, h("b", {}, store.label(focus)), h("span", { class: "mw-small" }, ` ${store.modelName(focus)}`)),
      h(
        "div",
        { class: "mw-card-facts" },
        `layer ${t.layer[focus]} \u00b7 head ${t.number[focus]}`,
        clusters ? ` \u00b7 ${store.clusterName(clusters[focus])} (cluster ${clusters[focus]})` : "",
      ),
      h(
        "div",
        { class: "mw-scores" },
        names.map((name, s) => {
          const v = store.score(focus, s);
          return h(
            "div",
            { class: `mw-score${v >= threshold ? " mw-strong" : ""}`, title: `${name}: ${formatNumber(v, 4)}` },
            h("span", { class: "mw-score-name" }, name),
            h("span", { class: "mw-score-bar" }, h("i", { style: { width: `${Math.round(Math.max(0, Math.min(1, v)) * 100)}%` } })),
            h("span", { class: "mw-score-value" }, formatNumber(v, 2)),
          );
        }),
      ),
      h("div", { class: "mw-card-classes" }, classes.length ? classes : h("span", { class: "mw-muted" }, "no known classes")),
      h("div", { class: "mw-thumbs mw-card-thumbs" }, prompts.map((p, k) => {
        const c = patternCanvas(store, focus, k, 48, colors, "mw-heatmap mw-thumb");
        c.title = p;
        return c;
      })),
      selectionLine,
    );
  }

  const schedule = coalesce(refresh);
  store.on(["selected_head", "selection", "badge_threshold", "color_scale", "scale_exponent", "colormap"], schedule);
  refresh();
  return { refresh, destroy: () => root.remove() };
}
