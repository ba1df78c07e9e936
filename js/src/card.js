// Head card: the selected head's identity, cluster, head-type scores, known classes and its
// pattern thumbnails; with circuits (Atlas.add_circuits) what it does: OV copying, its strongest
// K-composition partner, ablation-effect estimates and Atlas.describe's account; with a model
// attached, an "ablate" button that runs exact ablations of the selected heads in the kernel.
// Plus the size of the multi-selection.

import { colorSettings, patternCanvas } from "./heatmap.js";
import { coalesce, formatNumber, scoreLabel, statLabel } from "./store.js";
import { classChips } from "./similar.js";
import { h } from "./dom.js";

/** Card rows of what a head does: [label, value text, title, partner head or -1]. */
export function circuitFacts(store, head) {
  const rows = [];
  const value = (name) => store.statByName(head, name);
  const copying = value("ov_copying");
  if (!Number.isNaN(copying)) rows.push([statLabel("ov_copying"), formatNumber(copying, 2), "how much the head's OV circuit copies the tokens it reads (1 = a pure copy)", -1]);
  const k = value("k_comp_max");
  if (!Number.isNaN(k)) {
    const partner = store.partner(head, "k");
    rows.push([statLabel("k_comp_max"), formatNumber(k, 2), "strongest K-composition with an earlier head's output (its partner)", partner]);
  }
  for (const name of ["effect", "effect_repeated"]) {
    const v = value(name);
    if (!Number.isNaN(v)) {
      rows.push([statLabel(name), `${v >= 0 ? "+" : ""}${formatNumber(v, 4)} nats`,
        "loss change when the head is mean-ablated (attribution-patching estimate; > 0: the head helps)", -1]);
    }
  }
  return rows;
}

export function renderCard(store, el) {
  const root = h("div", { class: "mw-card" });
  el.appendChild(root);

  function ablationBlock(focus) {
    if (!store.get("can_ablate")) return "";
    const heads = [...new Set([...store.selectionIndices(), focus])].map((i) => store.headId(i));
    const result = store.get("ablation") || {};
    const lines = [];
    if (result.status === "running") lines.push(h("div", { class: "mw-muted mw-ablation-status" }, "ablating\u2026"));
    else if (result.status === "error") lines.push(h("div", { class: "mw-ablation-error" }, result.error || "the ablation failed"));
    else if (result.status === "done") {
      const entries = Object.entries(result.heads || {});
      lines.push(h("div", { class: "mw-small" }, `exact loss change, ${result.method || "mean"}-ablated, on ${(result.prompts || []).length} prompts` +
        (result.clean_loss != null ? ` (clean loss ${formatNumber(result.clean_loss, 3)})` : "")));
      for (const [id, delta] of entries) {
        const i = store.headIndex(id);
        lines.push(h("div", { class: "mw-ablation-row", dataset: { head: id } },
          h("span", { class: "mw-ablation-head" }, i >= 0 ? store.longLabel(i) : id),
          h("span", { class: "mw-ablation-delta" }, delta == null ? "\u2013" : `${delta >= 0 ? "+" : ""}${formatNumber(delta, 4)}`)));
      }
    }
    return h(
      "div",
      { class: "mw-ablation" },
      h("button", {
        class: "mw-button mw-ablate",
        title: `run an exact ablation of ${heads.length === 1 ? "this head" : `the ${heads.length} selected heads`} in the kernel (a few of the atlas's prompts)`,
        disabled: result.status === "running",
        onclick: () => store.model.send({ type: "ablate", heads }),
      }, heads.length === 1 ? "ablate" : `ablate ${heads.length} heads`),
      lines,
    );
  }

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
    const facts = circuitFacts(store, focus);
    const description = store.description(focus);
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
            { class: `mw-score${v >= threshold ? " mw-strong" : ""}`, title: `${scoreLabel(name)} score (${name}): ${formatNumber(v, 4)}` },
            h("span", { class: "mw-score-name" }, scoreLabel(name)),
            h("span", { class: "mw-score-bar" }, h("i", { style: { width: `${Math.round(Math.max(0, Math.min(1, v)) * 100)}%` } })),
            h("span", { class: "mw-score-value" }, formatNumber(v, 2)),
          );
        }),
      ),
      facts.length
        ? h("div", { class: "mw-circuits" }, facts.map(([label, text, title, partner]) =>
            h("div", { class: "mw-circuit", title },
              h("span", { class: "mw-score-name" }, label),
              h("span", { class: "mw-circuit-value" }, text,
                partner >= 0
                  ? [" with ", h("button", { class: "mw-link", title: `select ${store.headId(partner)}`, onclick: () => store.select(partner) }, store.longLabel(partner))]
                  : ""))))
        : "",
      description ? h("div", { class: "mw-description" }, description) : "",
      h("div", { class: "mw-card-classes" }, classes.length ? classes : h("span", { class: "mw-muted" }, "no known classes")),
      h("div", { class: "mw-thumbs mw-card-thumbs" }, prompts.map((p, k) => {
        const c = patternCanvas(store, focus, k, 48, colors, "mw-heatmap mw-thumb");
        c.title = p;
        return c;
      })),
      ablationBlock(focus),
      selectionLine,
    );
  }

  const schedule = coalesce(refresh);
  store.on(["selected_head", "selection", "badge_threshold", "color_scale", "scale_exponent", "colormap", "ablation", "can_ablate"], schedule);
  refresh();
  return { refresh, destroy: () => root.remove() };
}
