"""PatternGrid: heads x prompts grid of attention-pattern heatmaps."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import traitlets

from ..atlas import Atlas
from . import _packing
from .base import (
    AtlasWidget,
    ThumbnailTraits,
    _as_head_list,
    _option,
    bundle_path,
    check_pattern_encoding,
)
from .traits import Enum, Int, Unicode, refuses_bad_values

GRID_ROWS = ("auto", "layer", "selection", "heads")


class GridTraits(ThumbnailTraits):
    """Which heads (rows) and prompts (columns) the grid shows, and how.

    grid_rows: "auto" (the layer of the selected head), "layer" (grid_model's layer
    grid_layer), "selection", or "heads" (the list grid_heads). grid_prompts: thumbnail prompt
    ids shown as columns ([] = all). focus_prompt: the prompt of the large single-pattern view.
    """

    grid_rows = _option(Enum(GRID_ROWS, "auto"))
    grid_model = _option(Unicode(""))
    grid_layer = _option(Int(0))
    grid_heads = _option(traitlets.Any([]))
    grid_prompts = _option(traitlets.Any([]))
    focus_prompt = _option(Unicode(""))
    cell_size = _option(Int(64))

    @traitlets.validate("grid_model")
    @refuses_bad_values
    def _validate_grid_model(self, proposal):
        name = proposal["value"]
        if name and name not in self._atlas.model_names:
            raise ValueError(f"unknown model {name!r}; the atlas has {self._atlas.model_names}")
        return name

    @traitlets.validate("grid_layer")
    @refuses_bad_values
    def _validate_grid_layer(self, proposal):
        layer = int(proposal["value"])
        n = max(self._atlas.data.models[m].n_layers for m in self._atlas.model_names)
        if not 0 <= layer < n:
            raise ValueError(f"grid_layer must be in 0..{n - 1}, got {layer}")
        return layer

    @traitlets.validate("grid_heads")
    @refuses_bad_values
    def _validate_grid_heads(self, proposal):
        value = proposal["value"] or []
        return _as_head_list(self._atlas, [value] if isinstance(value, str) else value)

    @traitlets.validate("grid_prompts")
    @refuses_bad_values
    def _validate_grid_prompts(self, proposal):
        value = proposal["value"] or []
        value = [value] if isinstance(value, str) else [str(p) for p in value]
        kept = [self._atlas.prompt_ids[int(k)] for k in self._atlas.data.thumbnail_prompts]
        missing = [p for p in value if p not in kept]
        if missing:
            raise ValueError(f"prompts {missing[:5]} have no kept thumbnails; choose among {kept}")
        return list(dict.fromkeys(value))

    @traitlets.validate("focus_prompt")
    @refuses_bad_values
    def _validate_focus_prompt(self, proposal):
        value = proposal["value"]
        kept = [self._atlas.prompt_ids[int(k)] for k in self._atlas.data.thumbnail_prompts]
        if value and value not in kept:
            raise ValueError(f"focus_prompt {value!r} has no kept thumbnail; choose among {kept}")
        return value

    @traitlets.validate("cell_size")
    @refuses_bad_values
    def _validate_cell_size(self, proposal):
        v = int(proposal["value"])
        if not 16 <= v <= 256:
            raise ValueError(f"cell_size must be in 16..256 pixels, got {v}")
        return v

    def show_heads(self, heads) -> None:
        """Choose the grid rows: None (the selected head's layer), "selection", a layer number
        (of the first model), (model name, layer), or a list of heads."""
        with self.hold_sync():
            for name, value in grid_rows_options(self._atlas, heads).items():
                setattr(self, name, value)

    def show_prompts(self, prompts: Sequence[str] | None) -> None:
        """Choose the grid columns: thumbnail prompt ids (None = all)."""
        self.grid_prompts = list(prompts or [])


def grid_rows_options(atlas: Atlas, heads) -> dict:
    """Trait values for a `heads=` argument (see GridTraits.show_heads)."""
    if heads is None:
        return {"grid_rows": "auto"}
    if isinstance(heads, str) and heads == "selection":
        return {"grid_rows": "selection"}
    if isinstance(heads, (int, np.integer)) and not isinstance(heads, bool):
        return {"grid_rows": "layer", "grid_model": atlas.model_names[0], "grid_layer": int(heads)}
    if isinstance(heads, tuple) and len(heads) == 2 and isinstance(heads[0], str) and heads[0] in atlas.model_names:
        return {"grid_rows": "layer", "grid_model": heads[0], "grid_layer": int(heads[1])}
    if isinstance(heads, str):
        heads = [heads]
    if not hasattr(heads, "__iter__"):
        raise ValueError(f"heads must be None, 'selection', a layer, (model, layer) or a list of heads; got {heads!r}")
    return {"grid_rows": "heads", "grid_heads": _as_head_list(atlas, list(heads))}


class PatternGrid(GridTraits, AtlasWidget):
    """Heads x prompts grid of attention-pattern heatmaps over an Atlas.

    Rows are heads (labelled ``L{l}H{h}``), columns the prompts whose thumbnails the atlas
    kept (the first K = 64 tokens of each). Hover a heatmap for the query token, key token and
    weight; click it to select its head (shift-click adds to the selection) and enlarge it,
    with token labels on both axes. Patterns cross to the browser as float16 (or uint8)
    buffers.

    Args:
        atlas: the Atlas to show.
        heads: rows: None (the selected head's layer, default), "selection", a layer number,
            (model name, layer), or a list of heads ("L5H1", "model:L5H1", (5, 1)).
        prompts: thumbnail prompt ids to show as columns (None = all).
        pattern_encoding: "float16" (default) or "uint8" (half the size, square-root code).
        selected_head, selection: the initial selection.
        **options: color_scale ("linear", "power", "log"), scale_exponent, colormap ("blues",
            "viridis", "magma"), cell_size (px), focus_prompt, title.
    """

    _esm = bundle_path("grid")

    def __init__(
        self, atlas: Atlas, heads=None, prompts: Sequence[str] | None = None, *, pattern_encoding: str = "float16", **kwargs
    ):
        self._pattern_encoding = check_pattern_encoding(pattern_encoding)
        if not isinstance(atlas, Atlas):
            raise ValueError(f"PatternGrid needs an Atlas, got {type(atlas).__name__}")
        rows = grid_rows_options(atlas, heads)
        clash = set(rows) & set(kwargs)
        if clash and heads is not None:
            raise ValueError(f"give the rows either as heads= or as {sorted(clash)}, not both")
        super().__init__(atlas, **{**rows, **kwargs}, **({"grid_prompts": list(prompts)} if prompts else {}))

    def _payload(self, atlas: Atlas) -> dict:
        return _packing.thumbnails(atlas, self._pattern_encoding)
