"""PatternCloud: rotatable 3-D scatter of the PCA embedding (WebGL2)."""

from __future__ import annotations

import traitlets

from ..atlas import Atlas
from . import _packing
from ._bundles import bundle_path
from .base import AtlasWidget, _option
from .traits import AnyButNone, Enum, Float, NDArray, Unicode, refuses_bad_values

CLOUD_MODES = ("patterns", "heads")
CATEGORY_COLORS = ("layer", "model", "cluster", "known_class")
UNSELECTED = ("fade", "hide", "show")


class CloudTraits(traitlets.HasTraits):
    """Points of the cloud (see _packing.cloud) and how they are drawn.

    cloud_mode: "patterns" (one point per (head, prompt), the first 3 PCs) or "heads" (one
    point per head, from the head map). color_by: "layer", "model", "cluster",
    "known_class", a head-type score name (per pattern in pattern mode) or a numeric
    head_stats column of an atlas with circuits (stat_names: "ov_copying", "effect", ...; per
    head). point_size: px
    (0 = automatic). unselected: with a selection, the other points "fade" (default), "hide"
    or "show". hidden_categories: legend labels of a categorical colouring (model, cluster
    family, known class) whose points are hidden (a click on a legend entry toggles it).
    size_by / opacity_by: a head-type score (per pattern in pattern mode) or head_stats column
    that sets each point's size (0.5x to 2.5x point_size, lowest to highest) / opacity (0.15 to
    1); "" = none.
    """

    pattern_points = NDArray("float32", 2).tag(sync=True)  # [H * P, 3]
    pattern_scores = NDArray(("float16", "float32"), 2).tag(sync=True)  # [H * P, S]
    head_points = NDArray("float32", 2).tag(sync=True)  # [H, 3]
    prompt_ids = traitlets.List(traitlets.Unicode()).tag(sync=True)
    prompt_kinds = traitlets.List(traitlets.Unicode()).tag(sync=True)
    pattern_axis_labels = traitlets.List(traitlets.Unicode()).tag(sync=True)
    head_axis_labels = traitlets.List(traitlets.Unicode()).tag(sync=True)

    cloud_mode = _option(Enum(CLOUD_MODES, "patterns"))
    color_by = _option(Unicode("layer"))
    point_size = _option(Float(0.0, min=0.0, max=40.0))  # px, 0 = automatic
    unselected = _option(Enum(UNSELECTED, "fade"))
    size_by = _option(Unicode(""))
    opacity_by = _option(Unicode(""))
    hidden_categories = _option(AnyButNone([], expected="a list of legend labels ([] = show all)"))

    @traitlets.validate("size_by", "opacity_by")
    @refuses_bad_values
    def _validate_encoding(self, proposal):
        value = proposal["value"]
        allowed = list(self._atlas.head_scores().columns) + list(self.stat_names)
        if value and value not in allowed:
            raise ValueError(f"{proposal['trait'].name} must be '' (none) or one of {allowed}, got {value!r}")
        return value

    @traitlets.validate("hidden_categories")
    @refuses_bad_values
    def _validate_hidden_categories(self, proposal):
        value = proposal["value"]
        if isinstance(value, str) or not hasattr(value, "__iter__") or isinstance(value, dict):
            raise ValueError(f"hidden_categories must be a list of legend labels, got {value!r}")
        value = [str(v) for v in value]
        return list(dict.fromkeys(value))

    @traitlets.observe("color_by")
    def _color_by_shows_all(self, change):
        # legend labels belong to one colouring: a new one starts with every category shown
        self.hidden_categories = []

    @traitlets.validate("color_by")
    @refuses_bad_values
    def _validate_color_by(self, proposal):
        value = proposal["value"]
        allowed = list(CATEGORY_COLORS) + list(self._atlas.head_scores().columns) + list(self.stat_names)
        if value not in allowed:
            raise ValueError(f"color_by must be one of {allowed}, got {value!r}")
        return value


class PatternCloud(CloudTraits, AtlasWidget):
    """Rotatable 3-D scatter of an Atlas's PCA embedding, drawn with WebGL2.

    Pattern mode shows one point per (head, prompt) pattern (the first three principal
    components); head mode one point per head (the atlas's head map, Isomap by default).
    Drag to rotate, wheel to zoom; hover for the head, prompt and colour value; click selects
    a head and highlights all its points; shift-click adds or removes a head; shift-drag (or
    the lasso button) selects the heads inside the lasso: in head mode those whose point is
    inside, in pattern mode those with at least half of their points inside (the lasso
    button's tooltip says so). Interactive with
    200k points.

    Args:
        atlas: the Atlas to show.
        head_map: method of the head map for head mode ("isomap", "umap", "tsne", "pca").
        n_clusters: clusters for color_by="cluster" (Atlas.clusters; None = chosen by
            silhouette); the legend names each by its family (Atlas.families).
        selected_head, selection: the initial selection.
        **options: cloud_mode ("patterns" / "heads"), color_by ("layer", "model", "cluster",
            "known_class" or a score name such as "induction"), point_size, title.
    """

    _esm = bundle_path("cloud")

    def __init__(self, atlas: Atlas, *, head_map: str = "isomap", **kwargs):
        if head_map not in _packing.HEAD_MAP_METHODS:
            raise ValueError(f"head_map must be one of {_packing.HEAD_MAP_METHODS}, got {head_map!r}")
        self._head_map = head_map
        super().__init__(atlas, **kwargs)

    def _payload(self, atlas: Atlas) -> dict:
        return _packing.cloud(atlas, self._head_map)

    def _head_map_name(self) -> str | None:
        return self._head_map if len(self._atlas.head_ids) >= 5 else None
