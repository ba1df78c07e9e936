"""HeadExplorer: the pattern cloud, the similar-heads panel, a head card and the pattern grid
over one atlas, linked by one selection state."""

from __future__ import annotations

from typing import Mapping

from ..atlas import Atlas
from . import _packing
from ._bundles import bundle_path
from .base import AtlasWidget, check_pattern_encoding
from .cloud import CloudTraits
from .grid import GridTraits, grid_rows_options
from .similar import SimilarTraits


def atlas_of(source, prompts=None, atlas_options: Mapping | None = None, progress: bool = True) -> Atlas:
    """An Atlas from what HeadExplorer was given: an Atlas (used as is), a model name for
    motif_widgets.load_model, or a model (Atlas.from_model with a progress bar)."""
    options = dict(atlas_options or {})
    if isinstance(source, Atlas):
        if prompts is not None or options:
            raise ValueError("prompts= and atlas_options= apply when HeadExplorer builds the atlas; this one is built already")
        return source
    if isinstance(source, str):
        from ..models import load_model

        source = load_model(source)
    if source is None or not callable(getattr(source, "forward", None)):
        raise ValueError(f"HeadExplorer needs an Atlas, a model or a model name; got {type(source).__name__}")
    return Atlas.from_model(source, prompts, progress=progress, **options)


class HeadExplorer(GridTraits, CloudTraits, SimilarTraits, AtlasWidget):
    """Linked notebook views over one atlas: the 3-D pattern cloud, the similar-heads panel,
    a head card (scores, layer, cluster, known classes) and the pattern grid with its large
    single-pattern view.

    All four share one selection state, both ways: a click in any view sets
    ``explorer.selected_head`` and ``explorer.selection`` in Python, and assigning them in
    Python updates every view. The views live in one widget (one ES module, one copy of the
    data), so they stay linked in the offline HTML export too.

    Args:
        source: an Atlas; or a model (TransformerLens / Hugging Face, see Atlas.from_model) or
            a model name (motif_widgets.load_model), whose atlas is computed with a progress
            bar over `prompts` (default: the package's default prompts).
        prompts: prompts for a computed atlas.
        atlas_options: more Atlas.from_model keywords (tokenizer=, max_tokens=, ...).
        heads: the grid's rows (see PatternGrid).
        head_map: head-map method of the cloud's head mode.
        n_neighbors: neighbours shipped per head for the similar-heads panel.
        n_clusters: clusters of the card and of color_by="cluster" (None = chosen by
            silhouette; each shown with its family name).
        pattern_encoding: "float16" (default) or "uint8" pattern thumbnails.
        selected_head, selection: the initial selection.
        **options: view options: cloud_mode, color_by, point_size, top_k, neighbor_model,
            badge_threshold, n_thumbnails, grid_rows, grid_prompts, focus_prompt, cell_size,
            color_scale, scale_exponent, colormap, title.

    Example:
        >>> explorer = HeadExplorer(load_model("smollm2-135m"))   # doctest: +SKIP
        >>> explorer.selected_head = "L18H6"; explorer.selection_df()   # doctest: +SKIP
    """

    _esm = bundle_path("explorer")

    def __init__(
        self,
        source,
        *,
        prompts=None,
        atlas_options: Mapping | None = None,
        progress: bool = True,
        heads=None,
        head_map: str = "isomap",
        n_neighbors: int = _packing.DEFAULT_N_NEIGHBORS,
        pattern_encoding: str = "float16",
        **kwargs,
    ):
        if head_map not in _packing.HEAD_MAP_METHODS:
            raise ValueError(f"head_map must be one of {_packing.HEAD_MAP_METHODS}, got {head_map!r}")
        self._check_options({k: v for k, v in kwargs.items() if k not in ("selected_head", "selection", "n_clusters")})
        self._pattern_encoding = check_pattern_encoding(pattern_encoding)
        self._head_map = head_map
        self._n_neighbors_arg = n_neighbors
        atlas = atlas_of(source, prompts, atlas_options, progress)
        rows = grid_rows_options(atlas, heads) if heads is not None else {}
        kwargs.setdefault("title", _title(atlas))
        super().__init__(atlas, **{**rows, **kwargs})

    def _payload(self, atlas: Atlas) -> dict:
        return {
            **_packing.thumbnails(atlas, self._pattern_encoding),
            **_packing.cloud(atlas, self._head_map),
            **self._similar_payload(atlas, self._n_neighbors_arg),
        }

    def _head_map_name(self) -> str | None:
        return self._head_map if len(self._atlas.head_ids) >= 5 else None


def _title(atlas: Atlas) -> str:
    models = ", ".join(atlas.model_names)
    return f"{models}: {len(atlas.head_ids)} heads, {len(atlas.prompts)} prompts"
