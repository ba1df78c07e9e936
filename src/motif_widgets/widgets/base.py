"""The base of every view: one Atlas, the shared selection state, option checking, exports.

Selection state (synced both ways with the browser):

- ``selected_head``: the focused head id ("model:L5H1") or None. Assign any form
  ``Atlas.head_index`` accepts ("L5H1" in a one-model atlas, (5, 1), an int); it is stored as
  the full id. A click in the browser sets it.
- ``selection``: the multi-selection, a list of head ids (shift-click, lasso). A plain click
  sets it to the clicked head.

One rule, in the browser and in Python: a new ``selected_head`` that is not in the selection
replaces it (the selection becomes that one head, as a plain click does); a head already in
the selection only moves the focus and keeps the selection. Setting ``selection`` keeps
``selected_head`` as it is (see ``selected_heads``); ``select(heads)`` sets both at once.

Python is the source of truth: the browser proposes values, the validators here accept
(normalised) or reject them, and every rendered view follows the stored value.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Iterable, Sequence

import anywidget
import numpy as np
import pandas as pd
import traitlets

from ..atlas import Atlas
from ..distance import nearest_heads as _nearest_heads
from . import _packing
from ._bundles import STATIC, bundle_path  # noqa: F401  (STATIC / bundle_path: public here too)
from ._serialization import PATTERN_ENCODINGS
from .export import save_html as _save_html
from .traits import AnyButNone, Enum, Float, NDArray, Unicode, refuses_bad_values


def _option(trait: traitlets.TraitType) -> traitlets.TraitType:
    """Mark a synced trait as a view option that constructors accept as a keyword."""
    return trait.tag(sync=True, option=True)


class AtlasWidget(anywidget.AnyWidget):
    """Base of the views: holds one Atlas and the selection state; subclasses add traits.

    Subclasses return the trait values of the data they show from ``_payload`` (packed by
    ``_packing`` from the atlas's own results) and set ``_esm`` to their bundle.
    """

    # identity of the heads (see _packing.head_identity)
    head_ids = traitlets.List(traitlets.Unicode()).tag(sync=True)
    model_names = traitlets.List(traitlets.Unicode()).tag(sync=True)
    model_layers = traitlets.List(traitlets.Int()).tag(sync=True)
    head_model = NDArray("uint16", 1).tag(sync=True)
    head_layer = NDArray("uint16", 1).tag(sync=True)
    head_number = NDArray("uint16", 1).tag(sync=True)
    # what the atlas says about each head
    score_names = traitlets.List(traitlets.Unicode()).tag(sync=True)
    head_scores = NDArray("float32", 2).tag(sync=True)
    known_classes = traitlets.Dict().tag(sync=True)
    known_class_colors = traitlets.Dict().tag(sync=True)
    clusters = NDArray("uint16", 1).tag(sync=True)
    cluster_names = traitlets.List(traitlets.Unicode()).tag(sync=True)  # [n] family name of cluster c + 1
    # what the heads do (Atlas.add_circuits; empty / None without) and plain-language accounts
    stat_names = traitlets.List(traitlets.Unicode()).tag(sync=True)
    head_stats = NDArray("float32", 2).tag(sync=True)  # [H, len(stat_names)], NaN = unknown
    comp_partners = NDArray("int32", 2).tag(sync=True)  # [H, 3] q / k / v partner head, -1 = none
    head_descriptions = traitlets.List(traitlets.Unicode()).tag(sync=True)  # [H] Atlas.describe, or []
    title = _option(Unicode(""))

    # the selection, shared by every view of this widget
    selected_head = traitlets.Any(None, allow_none=True).tag(sync=True)
    selection = AnyButNone([], expected="a list of heads (assign [] to clear it)").tag(sync=True)

    def __init__(
        self,
        atlas: Atlas,
        *,
        selected_head=None,
        selection: Iterable = (),
        n_clusters: int | None = None,
        **options,
    ):
        if not isinstance(atlas, Atlas):
            raise ValueError(f"{type(self).__name__} needs an Atlas, got {type(atlas).__name__}")
        self._check_options(options)
        if n_clusters is not None and (isinstance(n_clusters, bool) or not isinstance(n_clusters, (int, np.integer)) or n_clusters < 1):
            raise ValueError(f"n_clusters must be a positive integer or None (chosen by silhouette), got {n_clusters!r}")
        self._atlas = atlas
        self._n_clusters = None if n_clusters is None else int(n_clusters)
        payload = {
            **_packing.head_identity(atlas),
            **_packing.head_scores(atlas),
            **_packing.known_classes(atlas),
            **_packing.clusters(atlas, self._n_clusters),
            **_packing.head_stats(atlas),
            **self._payload(atlas),
        }
        if isinstance(selection, tuple) and not selection:
            selection = []  # the default
        # one state message when the comm opens: data, options and the initial selection
        super().__init__(**{**payload, **options}, selection=selection, selected_head=selected_head)

    def _payload(self, atlas: Atlas) -> dict:
        """Trait values of the data this view shows (subclass hook)."""
        return {}

    # ------------------------------------------------------------------ options
    @classmethod
    def option_names(cls) -> list[str]:
        """Keyword options of this view (synced traits marked as options)."""
        return sorted(cls.class_trait_names(option=True))

    def _check_options(self, options: dict) -> None:
        allowed = self.option_names()
        for name in options:
            if name not in allowed:
                close = difflib.get_close_matches(name, allowed, n=1)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                raise ValueError(f"{type(self).__name__} got an unknown option {name!r}.{hint} Options: {', '.join(allowed)}")

    def set_state(self, sync_data):
        """Apply a state update from the browser. ipywidgets echoes a proposal before it is
        validated: when a value is refused, send the kept values back so that the browser
        shows what Python holds (Python is the source of truth)."""
        try:
            super().set_state(sync_data)
        except traitlets.TraitError:
            self.send_state(key=[k for k in sync_data if k in self.keys])
            raise

    # ------------------------------------------------------------------ selection
    @property
    def atlas(self) -> Atlas:
        """The Atlas this view shows."""
        return self._atlas

    def _head_id(self, head) -> str:
        if isinstance(head, (bool, np.bool_)) or isinstance(head, (float, np.floating)):
            raise ValueError(f"not a head: {head!r}")
        return self._atlas.head_ids[self._atlas.head_index(head)]

    @traitlets.validate("selected_head")
    @refuses_bad_values
    def _validate_selected_head(self, proposal):
        head = proposal["value"]
        if head is None or (isinstance(head, str) and not head.strip()):
            return None
        return self._head_id(head)

    @traitlets.validate("selection")
    @refuses_bad_values
    def _validate_selection(self, proposal):
        value = proposal["value"]
        if value is None:  # select(None); the trait itself refuses None before this
            raise ValueError("selection must be a list of heads (assign [] to clear it), got None")
        if isinstance(value, (str, int, np.integer)) or _is_layer_head_pair(value):
            value = [value]
        if not hasattr(value, "__iter__") or isinstance(value, dict):
            raise ValueError(f"selection must be a list of heads, got {type(value).__name__}")
        return list(dict.fromkeys(self._head_id(h) for h in value))

    @traitlets.observe("selected_head")
    def _selected_head_joins_selection(self, change):
        # the one selection rule (module docstring): a head outside the selection replaces it
        head = change["new"]
        if head is not None and head not in self.selection:
            self.selection = [head]

    @property
    def selected_heads(self) -> list[str]:
        """The selection, with the selected head appended when it is not part of it."""
        heads = list(self.selection)
        if self.selected_head is not None and self.selected_head not in heads:
            heads.append(self.selected_head)
        return heads

    def select(self, heads) -> None:
        """Select heads from Python: the first becomes ``selected_head``, all form the selection."""
        ids = self._validate_selection({"value": heads})
        with self.hold_sync():
            self.selection = ids
            self.selected_head = ids[0] if ids else None

    # ------------------------------------------------------------------ export
    def selection_df(self, k: int = 5) -> pd.DataFrame:
        """One row per selected head (``selected_heads``), indexed by head id: model, layer,
        head index, head-type scores, known classes, cluster, mean PCA coordinates (pc.0-2),
        head-map coordinates, whether it is the selected head, and its k nearest heads
        (``neighbors``: ids, ``neighbor_distances``), as ``Atlas.similar_heads`` ranks them."""
        if k < 0:
            raise ValueError(f"k must be >= 0, got {k}")
        heads = self.selected_heads
        table = self._atlas.head_table(map_method=self._head_map_name(), n_clusters=self._n_clusters)
        rows = table.loc[heads].copy() if heads else table.iloc[:0].copy()
        rows["selected_head"] = [h == self.selected_head for h in rows.index]
        ids = self._atlas.head_ids
        if k and len(ids) > 1:
            rows_idx = [self._atlas.head_index(h) for h in heads]
            index, dist = _nearest_heads(self._atlas.distances, min(k, len(ids) - 1), rows=rows_idx)
            dist = dist.astype(np.float32)  # as shipped to the panel
            rows["neighbors"] = [[ids[j] for j in index[r] if j >= 0] for r in range(len(rows_idx))]
            rows["neighbor_distances"] = [[float(x) for x in dist[r] if np.isfinite(x)] for r in range(len(rows_idx))]
        rows.index.name = "head"
        return rows

    def _head_map_name(self) -> str | None:
        return "isomap" if len(self._atlas.head_ids) >= 5 else None

    def to_dataframe(self) -> pd.DataFrame:
        """``Atlas.to_dataframe()`` (one row per (head, prompt): features and PCs) with a
        ``selected`` column marking the rows of the selected heads."""
        df = self._atlas.to_dataframe()
        df["selected"] = df["head"].isin(set(self.selected_heads)).to_numpy()
        return df

    def save_html(self, path: str | Path, title: str | None = None) -> Path:
        """Write this view as one self-contained HTML file: it opens offline in a browser (no
        kernel, no network) with the same interactions. Returns the path."""
        return _save_html(self, path, title=title)


COLOR_SCALES = ("relative", "linear", "power", "log")


class PatternColorTraits(traitlets.HasTraits):
    """Colour settings of attention heatmaps (grid, thumbnails, large view).

    color_scale: "relative" (default): each pattern coloured by weight / its largest weight
    off the first-token column (at least 0.1), so structure beside an attention sink shows
    (the sink column saturates; compare shapes, not strengths, across heads); "linear":
    weight 0 to 1; "power": weight ** scale_exponent; "log": log10 of the weight from 1e-3
    to 1. The grid's colour bar says which; tooltips always show the exact weight.
    """

    color_scale = _option(Enum(list(COLOR_SCALES), "relative"))
    scale_exponent = _option(Float(0.5, min=0.05, max=5.0))
    colormap = _option(Enum(["blues", "viridis", "magma"], "blues"))


class ThumbnailTraits(PatternColorTraits):
    """The kept pattern thumbnails of every head (see _packing.thumbnails)."""

    thumbnails = NDArray(PATTERN_ENCODINGS, 4).tag(sync=True)  # [H, T, K, K]
    thumbnail_prompts = traitlets.List(traitlets.Unicode()).tag(sync=True)
    thumbnail_tokens = traitlets.List().tag(sync=True)
    thumbnail_lengths = NDArray("uint16", 2).tag(sync=True)
    prompt_tokens = traitlets.List().tag(sync=True)  # [M][P][n] every prompt's tokens, per model


def check_pattern_encoding(encoding: str) -> str:
    if encoding not in PATTERN_ENCODINGS:
        raise ValueError(f"pattern_encoding must be one of {PATTERN_ENCODINGS}, got {encoding!r}")
    return encoding


def link_selection(*views: AtlasWidget) -> list[traitlets.link]:
    """Link the selection of separately displayed views of the same atlas (both ways, through
    the kernel). HeadExplorer links its own views in the browser and needs none of this.

    Returns the links; call ``.unlink()`` on them to undo.
    """
    if len(views) < 2:
        raise ValueError("link_selection needs at least two views")
    for v in views:
        if not isinstance(v, AtlasWidget):
            raise ValueError(f"link_selection links motif-widgets views, got {type(v).__name__}")
    first = views[0]
    for v in views[1:]:
        if v.head_ids != first.head_ids:
            raise ValueError(f"{type(v).__name__} shows other heads than {type(first).__name__}: link views of the same atlas")
    links = []
    for v in views[1:]:
        links.append(traitlets.link((first, "selection"), (v, "selection")))
        links.append(traitlets.link((first, "selected_head"), (v, "selected_head")))
    return links


def _is_layer_head_pair(value) -> bool:
    """(layer, head): one head, not a list of two heads."""
    return (
        isinstance(value, tuple) and len(value) == 2
        and all(isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_)) for x in value)
    )


def _as_head_list(atlas: Atlas, heads: Sequence) -> list[str]:
    return list(dict.fromkeys(atlas.head_ids[atlas.head_index(h)] for h in heads))
