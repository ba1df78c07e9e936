// SimilarHeads: the selected head's nearest heads (any model, or one model) with their distance,
// a few pattern thumbnails, head-type badges and known classes. Clicking a neighbour selects it.
// Neighbours come from the binary neighbour table, so the panel updates without the kernel.

import { scaleLegend } from "./colors.js";
import { colorSettings, patternCanvas } from "./heatmap.js";
import { CHANNEL_LABEL, coalesce, formatNumber, formatPercentile, scoreLabel } from "./store.js";
import { h, selectBox } from "./dom.js";

/** Score badges of head h: [{name, value}] for scores >= threshold, strongest first. */
export function scoreBadges(store, head, threshold) {
  const names = store.scoreNames();
  const out = [];
  names.forEach((name, s) => {
    const v = store.score(head, s);
    if (v >= threshold) out.push({ name, value: v });
  });
  return out.sort((a, b) => b.value - a.value);
}

export function badgeElements(store, head, threshold) {
  return scoreBadges(store, head, threshold).map(({ name, value }) =>
    h("span", { class: `mw-badge mw-badge-${name}`, title: `${scoreLabel(name)} score ${formatNumber(value)}` }, `${scoreLabel(name)} ${formatNumber(value, 2)}`),
  );
}

export function classChips(store, head) {
  return store.knownClasses(head).map((c) =>
    h("span", { class: "mw-chip", style: { borderColor: store.classColor(c) }, title: c }, h("i", { style: { background: store.classColor(c) } }), c),
  );
}

/** Distance of a neighbour with its percentile among all head pairs (the bar: relative to the farthest listed). */
function distanceCell(distance, percentile, maxDistance, by) {
  const pct = formatPercentile(percentile);
  return h(
    "span",
    {
      class: "mw-distance",
      title: `distance ${formatNumber(distance, 4)} (${CHANNEL_LABEL[by] || by})` +
        (pct ? `; percentile ${pct} of all head pairs (closer than ${(100 - percentile).toFixed(1)}% of them)` : ""),
    },
    h("i", { style: { width: `${Math.round((30 * distance) / maxDistance)}px` } }),
    h("span", { class: "mw-distance-value" }, formatNumber(distance, 2)),
    pct ? h("span", { class: "mw-percentile" }, pct) : "",
  );
}

/** What the thumbnails' colour means (the grid's colour bar says it in the explorer). */
function scaleNoteElement(store) {
  const kind = store.get("color_scale") || "relative";
  const [, , meaning] = scaleLegend(kind, store.get("scale_exponent") ?? 0.5);
  return h("span", { class: "mw-small mw-scale-note", title: meaning }, `thumbnails: ${kind === "relative" ? "relative scale (per pattern)" : `${kind} scale`}`);
}

/** Search box: type a head ("L5H1", "model:L5H1") and press Enter to select it. */
export function headSearch(store) {
  const input = h("input", { class: "mw-input", type: "search", placeholder: "go to head: L5H1", "aria-label": "go to head", spellcheck: false });
  input.addEventListener("keydown", (event) => {
    if (event.key !== "Enter") return;
    const head = store.findHead(input.value);
    input.classList.toggle("mw-invalid", head < 0);
    if (head >= 0) store.select(head);
  });
  return input;
}

/** The similar_by channel in use (one the atlas has). */
function byOf(store) {
  const by = store.get("similar_by") || "pattern";
  return store.channels().includes(by) ? by : "pattern";
}

export function renderSimilar(store, el, { search = true, scaleNote = true } = {}) {
  const root = h("div", { class: "mw-similar-view" });
  const head = h("div", { class: "mw-row mw-controls" });
  const title = h("div", { class: "mw-similar-title" });
  let list = h("div", { class: "mw-neighbors", role: "list" });
  root.append(head, title, list);
  el.appendChild(root);

  let shownFocus = -1;

  function drawControls() {
    const models = store.heads().modelNames;
    const shipped = store.get("n_neighbors") || 20;
    const kOptions = [...new Set([3, 5, 10, 15, 20, store.get("top_k") || 10, shipped])].filter((k) => k <= shipped).sort((a, b) => a - b);
    head.replaceChildren(
      h("span", { class: "mw-label" }, "Nearest"),
      selectBox(kOptions.map((k) => [k, String(k)]), store.get("top_k") || 10, (v) => store.set({ top_k: +v }), { "aria-label": "number of neighbours" }),
      models.length > 1
        ? selectBox([["", "any model"], ...models.map((m) => [m, m])], store.get("neighbor_model") || "",
            (v) => store.set({ neighbor_model: v }), { "aria-label": "model of the neighbours" })
        : "",
      store.channels().length > 1
        ? h("span", { class: "mw-row mw-similar-by" }, h("span", { class: "mw-label" }, "by"),
            selectBox(store.channels().map((c) => [c, CHANNEL_LABEL[c] || c]), byOf(store),
              (v) => store.set({ similar_by: v }), { "aria-label": "similar by", title: "the evidence behind the distances" }))
        : "",
      search ? headSearch(store) : "",
      scaleNote ? scaleNoteElement(store) : "",
    );
  }

  function refresh() {
    drawControls();
    const focus = store.selectedIndex();
    if (focus < 0) {
      title.replaceChildren(h("span", { class: "mw-muted" }, "Select a head to see its nearest heads."));
      list.replaceChildren();
      return;
    }
    const k = store.get("top_k") || 10;
    const by = byOf(store);
    const neighbors = store.neighbors(focus, k, store.get("neighbor_model") || null, by);
    const threshold = store.get("badge_threshold") ?? 0.4;
    const nThumbs = Math.min(store.get("n_thumbnails") ?? 3, store.thumbnailPrompts().length);
    const colors = colorSettings(store);
    const maxDistance = neighbors.length ? Math.max(...neighbors.map((n) => n.distance)) || 1 : 1;
    const selection = new Set(store.selectionIndices());
    title.replaceChildren(
      "Nearest heads to ",
      h("b", { class: "mw-similar-target", dataset: { head: String(focus) } }, store.longLabel(focus)),
      store.multiModel ? "" : h("span", { class: "mw-small" }, ` (${store.modelName(focus)})`),
      by !== "pattern" ? h("span", { class: "mw-small" }, ` by ${CHANNEL_LABEL[by] || by}`) : "",
    );
    const hadFocus = list.contains(document.activeElement);
    if (focus !== shownFocus) {
      // a new head starts at its nearest neighbour: a fresh list is unscrolled (setting
      // scrollTop would force a layout of the whole page in the middle of the update)
      const fresh = list.cloneNode(false);
      list.replaceWith(fresh);
      list = fresh;
    }
    shownFocus = focus;
    list.replaceChildren(
      ...neighbors.map((n, rank) =>
        h(
          "div",
          {
            class: `mw-neighbor${selection.has(n.head) ? " mw-in-selection" : ""}`,
            role: "listitem",
            tabindex: 0,
            dataset: { head: String(n.head), rank: String(rank) },
            title: `${store.headId(n.head)}: click (or Enter) to select, shift-click to add to the selection; arrow keys move`,
            onclick: (e) => store.select(n.head, { toggle: e.shiftKey }),
          },
          h("span", { class: "mw-rank" }, String(rank + 1)),
          h("span", { class: "mw-neighbor-name" }, h("b", {}, store.label(n.head)), store.multiModel ? h("span", { class: "mw-small" }, store.modelName(n.head)) : ""),
          distanceCell(n.distance, store.percentile(n.distance, by), maxDistance, by),
          h("span", { class: "mw-thumbs" }, Array.from({ length: nThumbs }, (_, t) => patternCanvas(store, n.head, t, 36, colors, "mw-heatmap mw-thumb"))),
          h("span", { class: "mw-badges" }, badgeElements(store, n.head, threshold), classChips(store, n.head)),
        ),
      ),
    );
    // keyboard users keep their place: focus goes to the new list's first neighbour
    if (hadFocus && list.firstElementChild) list.firstElementChild.focus({ preventScroll: true });
    list.onkeydown = onListKey;
  }

  /** Arrow keys move between neighbours; Enter / space selects (shift adds to the selection). */
  function onListKey(event) {
    const row = event.target.closest && event.target.closest(".mw-neighbor");
    if (!row) return;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      const next = event.key === "ArrowDown" ? row.nextElementSibling : row.previousElementSibling;
      if (next) next.focus();
    } else if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      store.select(+row.dataset.head, { toggle: event.shiftKey });
    }
  }

  const schedule = coalesce(refresh);
  store.on(["selected_head", "selection", "top_k", "neighbor_model", "similar_by", "badge_threshold", "n_thumbnails", "color_scale", "scale_exponent", "colormap"], schedule);
  refresh();
  return { refresh, destroy: () => root.remove() };
}
