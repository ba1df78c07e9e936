"""SimilarHeads: the selected head's nearest heads, with thumbnails, badges and known classes."""

from __future__ import annotations

import traitlets

from ..atlas import Atlas
from . import _packing
from ._bundles import bundle_path
from .base import AtlasWidget, ThumbnailTraits, _option, check_pattern_encoding
from .traits import Float, Int, NDArray, Unicode, refuses_bad_values


class SimilarTraits(ThumbnailTraits):
    """The nearest-neighbour tables (see _packing.neighbors) and how the panel shows them.

    top_k: neighbours listed (<= n_neighbors, the number shipped). neighbor_model: "" for
    any model, else only that model's heads. badge_threshold: a head-type score at or above it
    gets a badge. n_thumbnails: pattern thumbnails per neighbour. similar_by: the evidence
    behind the distances, one of ``similar_channels`` ("pattern"; with circuits also
    "circuits", "effects", "combined"; see Atlas.similar_heads); the panel switches between
    the shipped neighbour tables without the kernel, and shows each distance with its
    percentile among all head pairs of that channel.
    """

    neighbor_index = NDArray("int32", 2).tag(sync=True)  # [H, k]
    neighbor_distance = NDArray("float32", 2).tag(sync=True)  # [H, k]
    model_neighbor_index = NDArray("int32", 3).tag(sync=True)  # [M, H, k] or None
    model_neighbor_distance = NDArray("float32", 3).tag(sync=True)
    n_neighbors = traitlets.Int(_packing.DEFAULT_N_NEIGHBORS).tag(sync=True)
    # evidence channels (see _packing.channel_neighbors): "pattern" uses neighbor_index
    similar_channels = traitlets.List(traitlets.Unicode()).tag(sync=True)
    channel_neighbor_index = NDArray("int32", 3).tag(sync=True)  # [C - 1, H, k] or None
    channel_neighbor_distance = NDArray("float32", 3).tag(sync=True)
    distance_quantiles = NDArray("float32", 2).tag(sync=True)  # [C, 1001] of all head pairs

    top_k = _option(Int(10, min=1))  # at most n_neighbors: checked against the shipped table
    neighbor_model = _option(Unicode(""))
    badge_threshold = _option(Float(0.4, min=0.0, max=1.0))  # head-type scores lie in [0, 1]
    n_thumbnails = _option(Int(3, min=0, max=16))
    similar_by = _option(Unicode("pattern"))

    @traitlets.validate("similar_by")
    @refuses_bad_values
    def _validate_similar_by(self, proposal):
        value = proposal["value"] or "pattern"
        channels = self.similar_channels or ["pattern"]
        if value not in channels:
            raise ValueError(
                f"similar_by must be one of {channels} (the evidence this atlas has; add circuits with "
                f"atlas.add_circuits(model)), got {value!r}"
            )
        return value

    @traitlets.validate("top_k")
    @refuses_bad_values
    def _validate_top_k(self, proposal):
        k = int(proposal["value"])
        limit = self._shipped_neighbors
        if not 1 <= k <= limit:
            raise ValueError(f"top_k must be in 1..{limit} (n_neighbors shipped to the browser), got {k}")
        return k

    @traitlets.validate("neighbor_model")
    @refuses_bad_values
    def _validate_neighbor_model(self, proposal):
        name = proposal["value"] or ""
        if name and name not in self._atlas.model_names:
            raise ValueError(f"unknown model {name!r}; the atlas has {self._atlas.model_names}")
        return name

    def _similar_payload(self, atlas: Atlas, n_neighbors: int) -> dict:
        if not isinstance(n_neighbors, int) or isinstance(n_neighbors, bool) or n_neighbors < 1:
            raise ValueError(f"n_neighbors must be a positive integer, got {n_neighbors!r}")
        shipped = max(1, min(n_neighbors, len(atlas.head_ids) - 1))
        self._shipped_neighbors = shipped
        # top_k here is the default; a top_k option given by the caller overrides it
        return {
            **_packing.neighbors(atlas, shipped), **_packing.channel_neighbors(atlas, shipped),
            "n_neighbors": shipped, "top_k": min(10, shipped),
        }

    def similar_heads(self, head=None, k: int | None = None):
        """Atlas.similar_heads of `head` (default: the selected head), top_k rows by default,
        restricted to neighbor_model when one is chosen, by the similar_by evidence."""
        head = self.selected_head if head is None else head
        if head is None:
            raise ValueError("no head selected: pass head= or set selected_head")
        return self._atlas.similar_heads(head, k=k or self.top_k, models=self.neighbor_model or None, by=self.similar_by)


class SimilarHeads(SimilarTraits, AtlasWidget):
    """The selected head's top-k nearest heads (any model, or one model), each with its
    distance, a few pattern thumbnails, head-type badges and known classes; clicking a
    neighbour makes it the selected head. The k nearest heads of every head are shipped as a
    binary table, so the panel follows a click without a kernel round trip.

    Args:
        atlas: the Atlas to show.
        n_neighbors: neighbours shipped per head (the panel lists up to this many).
        pattern_encoding: "float16" (default) or "uint8" thumbnails.
        selected_head, selection: the initial selection.
        **options: top_k, neighbor_model, badge_threshold, n_thumbnails, similar_by, color_scale,
            scale_exponent, colormap, title.
    """

    _esm = bundle_path("similar")

    def __init__(
        self, atlas: Atlas, *, n_neighbors: int = _packing.DEFAULT_N_NEIGHBORS, pattern_encoding: str = "float16", **kwargs
    ):
        self._n_neighbors_arg = n_neighbors
        self._pattern_encoding = check_pattern_encoding(pattern_encoding)
        super().__init__(atlas, **kwargs)

    def _payload(self, atlas: Atlas) -> dict:
        return {**_packing.thumbnails(atlas, self._pattern_encoding), **self._similar_payload(atlas, self._n_neighbors_arg)}
