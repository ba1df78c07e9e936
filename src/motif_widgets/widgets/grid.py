"""PatternGrid: heads x prompts grid of attention-pattern heatmaps."""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np
import traitlets

from ..atlas import Atlas
from . import _packing
from ._bundles import bundle_path
from .base import AtlasWidget, ThumbnailTraits, _as_head_list, _option, check_pattern_encoding
from .traits import AnyButNone, Enum, Int, Unicode, refuses_bad_values

GRID_ROWS = ("auto", "layer", "selection", "heads", "filter")
#: focus_prompt of the user's own text (HeadExplorer.run_text).
TEXT_PROMPT = "@text"


class GridTraits(ThumbnailTraits):
    """Which heads (rows) and prompts (columns) the grid shows, and how.

    grid_rows: "auto" (the layer of the selected head), "layer" (grid_model's layer
    grid_layer), "selection", "heads" (the list grid_heads) or "filter" (the heads that pass
    grid_filter: {"layers": [first, last], "score": name, "min_score": x, "family": name},
    each key optional; see filter_heads). grid_prompts: thumbnail prompt
    ids shown as columns ([] = all). focus_prompt: the prompt of the large single-pattern view.
    """

    grid_rows = _option(Enum(GRID_ROWS, "auto"))
    grid_model = _option(Unicode(""))
    grid_layer = _option(Int(0, min=0))  # below the largest model's layer count: checked below
    grid_heads = _option(AnyButNone([], expected="a list of heads and layers"))
    grid_prompts = _option(AnyButNone([], expected="a list of thumbnail prompt ids ([] = all)"))
    focus_prompt = _option(Unicode(""))
    cell_size = _option(Int(64, min=16, max=256))  # px
    grid_filter = _option(AnyButNone({}, expected="a dict of layers / score / min_score / family"))

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
        return expand_heads(self._atlas, [value] if isinstance(value, str) else value)

    @traitlets.validate("grid_filter")
    @refuses_bad_values
    def _validate_grid_filter(self, proposal):
        return check_filter(self._atlas, proposal["value"], self.cluster_names)

    def filter_heads(self, layers=None, score: str | None = None, min_score: float = 0.0, family: str | None = None) -> list[str]:
        """Show the heads of layers `layers` ((first, last), inclusive, or one layer) whose
        head-type `score` is at least `min_score` (strongest first) and whose family is
        `family` as the grid's rows (grid_rows "filter", at most MAX_ROWS shown); returns all
        matching head ids in that order."""
        spec = {"layers": layers, "score": score, "min_score": min_score, "family": family}
        spec = check_filter(self._atlas, {k: v for k, v in spec.items() if v is not None}, self.cluster_names)
        with self.hold_sync():
            self.grid_filter = spec
            self.grid_rows = "filter"
        return filtered_heads(self._atlas, spec, self.clusters, self.cluster_names)

    @traitlets.validate("grid_prompts")
    @refuses_bad_values
    def _validate_grid_prompts(self, proposal):
        value = proposal["value"] or []
        value = [value] if isinstance(value, str) else [str(p) for p in value]
        kept = list(self.thumbnail_prompts)  # what this view shipped (may be fewer than the atlas keeps)
        missing = [p for p in value if p not in kept]
        if missing:
            raise ValueError(f"prompts {missing[:5]} have no kept thumbnails; choose among {kept}")
        return list(dict.fromkeys(value))

    @traitlets.validate("focus_prompt")
    @refuses_bad_values
    def _validate_focus_prompt(self, proposal):
        value = proposal["value"]
        ids = self._atlas.prompt_ids
        if value and value != TEXT_PROMPT and value not in ids:
            raise ValueError(f"focus_prompt {value!r} is not a prompt of the atlas; choose among {ids[:8]}...")
        return value

    def show_heads(self, heads) -> None:
        """Choose the grid rows: None (the selected head's layer), "selection", a layer
        ("L17", 17 or (model name, 17)), a layer range ("L5-L7"), a head ("L17H3") or a list
        of heads and layers (see grid_rows_options)."""
        with self.hold_sync():
            for name, value in grid_rows_options(self._atlas, heads).items():
                setattr(self, name, value)

    def show_prompts(self, prompts: Sequence[str] | None) -> None:
        """Choose the grid columns: thumbnail prompt ids (None = all)."""
        self.grid_prompts = list(prompts or [])


FILTER_KEYS = ("layers", "score", "min_score", "family")


def check_filter(atlas: Atlas, value, families: Sequence[str]) -> dict:
    """grid_filter in its canonical form ({"layers": [first, last], "score", "min_score",
    "family"}, keys only when given), or a ValueError naming what is wrong."""
    if not isinstance(value, dict):
        raise ValueError(f"grid_filter must be a dict with keys {FILTER_KEYS}, got {type(value).__name__}")
    unknown = set(value) - set(FILTER_KEYS)
    if unknown:
        raise ValueError(f"grid_filter has unknown keys {sorted(unknown)}; use {FILTER_KEYS}")
    out = {}
    layers = value.get("layers")
    if layers is not None:
        if isinstance(layers, (int, np.integer)) and not isinstance(layers, bool):
            layers = [int(layers), int(layers)]
        if not (isinstance(layers, (list, tuple)) and len(layers) == 2 and all(isinstance(x, (int, np.integer)) and not isinstance(x, bool) for x in layers)):
            raise ValueError(f"grid_filter layers must be a layer or (first, last), got {layers!r}")
        n = max(atlas.data.models[m].n_layers for m in atlas.model_names)
        first, last = int(layers[0]), int(layers[1])
        if not 0 <= first <= last < n:
            raise ValueError(f"grid_filter layers must satisfy 0 <= first <= last <= {n - 1}, got {layers!r}")
        out["layers"] = [first, last]
    score = value.get("score")
    if score:
        names = list(atlas.head_scores().columns)
        if score not in names:
            raise ValueError(f"grid_filter score {score!r} is not a head-type score; choose among {names}")
        out["score"] = score
        min_score = value.get("min_score", 0.0)
        if isinstance(min_score, bool) or not isinstance(min_score, (int, float, np.number)) or not np.isfinite(min_score):
            raise ValueError(f"grid_filter min_score must be a finite number, got {min_score!r}")
        out["min_score"] = float(min_score)
    family = value.get("family")
    if family:
        if family not in families:
            raise ValueError(f"grid_filter family {family!r} is not a family of this atlas; choose among {sorted(set(families))}")
        out["family"] = family
    return out


def filtered_heads(atlas: Atlas, spec: dict, clusters, families: Sequence[str]) -> list[str]:
    """Head ids that pass a checked grid_filter (check_filter), strongest `score` first
    (atlas order among equals and without a score)."""
    heads = atlas.heads
    keep = np.ones(len(heads), bool)
    if "layers" in spec:
        layer = heads["layer"].to_numpy()
        keep &= (layer >= spec["layers"][0]) & (layer <= spec["layers"][1])
    values = None
    if "score" in spec:
        values = atlas.head_scores()[spec["score"]].to_numpy(np.float32)  # as the browser has them
        keep &= values >= np.float32(spec["min_score"])
    if "family" in spec and clusters is not None:
        names = np.asarray([families[c - 1] for c in np.asarray(clusters)])
        keep &= names == spec["family"]
    index = np.flatnonzero(keep)
    if values is not None:
        index = index[np.argsort(-values[index], kind="stable")]
    return [atlas.head_ids[i] for i in index]


#: "L17" (a layer), "L5-L7" / "L5-7" (layers 5 to 7), optionally after "model:".
_LAYER_SPEC = re.compile(r"^(?:(?P<model>.+):)?L(?P<first>\d+)(?:-L?(?P<last>\d+))?$")
HEADS_HELP = (
    "heads must be None (the selected head's layer), 'selection', a layer ('L17', 17 or (model, 17)), "
    "a layer range ('L5-L7'), a head ('L17H3', 'model:L17H3', (17, 3)) or a list of heads and layers"
)


def _layer_spec(atlas: Atlas, text: str) -> tuple[str | None, list[int]] | None:
    """(model or None, layers) of "L17" / "L5-L7" / "model:L17", checked against the atlas;
    None when `text` is not a layer spec (e.g. a head id "L17H3")."""
    match = _LAYER_SPEC.match(text.strip())
    if match is None:
        return None
    model = match["model"]
    if model is not None and model not in atlas.model_names:
        raise ValueError(f"heads={text!r}: unknown model {model!r}; the atlas has {atlas.model_names}")
    first = int(match["first"])
    last = int(match["last"]) if match["last"] is not None else first
    if last < first:
        raise ValueError(f"heads={text!r}: the layer range runs backwards (write 'L{last}-L{first}')")
    models = [model] if model is not None else atlas.model_names
    n = max(atlas.data.models[m].n_layers for m in models)
    if last >= n:
        which = f"model {model!r}" if model is not None else "the atlas"
        raise ValueError(f"heads={text!r}: unknown layer {last}; {which} has layers 0..{n - 1}")
    return model, list(range(first, last + 1))


def _heads_of_layers(atlas: Atlas, model: str | None, layers: list[int]) -> list[str]:
    """Head ids of `layers` (of `model`, or of every model that has them), layer by layer."""
    heads = atlas.heads
    keep = heads["layer"].isin(layers).to_numpy()
    if model is not None:
        keep &= (heads["model"] == model).to_numpy()
    ids = np.asarray(atlas.head_ids)[keep]
    order = np.lexsort((np.nonzero(keep)[0], heads["layer"].to_numpy()[keep]))
    return [str(h) for h in ids[order]]


def expand_heads(atlas: Atlas, heads) -> list[str]:
    """Full head ids of a list of heads ("L5H1", "model:L5H1", (5, 1), an int) and layer specs
    ("L17", "L5-L7", "model:L17"), in order, without repeats."""
    if not hasattr(heads, "__iter__") or isinstance(heads, (dict, bytes)):
        raise ValueError(f"{HEADS_HELP}; got {heads!r}")
    out: list[str] = []
    for h in heads:
        spec = _layer_spec(atlas, h) if isinstance(h, str) else None
        out.extend(_heads_of_layers(atlas, *spec) if spec is not None else _as_head_list(atlas, [h]))
    return list(dict.fromkeys(out))


def grid_rows_options(atlas: Atlas, heads) -> dict:
    """Trait values for a `heads=` argument (see GridTraits.show_heads).

    "L17" (or 17) shows layer 17 (of the one model; in a multi-model atlas, 17 means the
    first model's layer and "L17" the heads of layer 17 of every model that has one),
    "model:L17" that model's layer, "L5-L7" the heads of layers 5 to 7, "L17H3" one head;
    lists may mix heads and layers. An unknown layer or head raises ValueError.
    """
    if heads is None:
        return {"grid_rows": "auto"}
    if isinstance(heads, str) and heads == "selection":
        return {"grid_rows": "selection"}
    if isinstance(heads, (int, np.integer)) and not isinstance(heads, (bool, np.bool_)):
        return {"grid_rows": "layer", "grid_model": atlas.model_names[0], "grid_layer": int(heads)}
    if isinstance(heads, tuple) and len(heads) == 2 and isinstance(heads[0], str) and heads[0] in atlas.model_names:
        return {"grid_rows": "layer", "grid_model": heads[0], "grid_layer": int(heads[1])}
    if isinstance(heads, str):
        spec = _layer_spec(atlas, heads)
        if spec is not None:
            model, layers = spec
            if len(layers) == 1 and (model is not None or len(atlas.model_names) == 1):
                return {"grid_rows": "layer", "grid_model": model or atlas.model_names[0], "grid_layer": layers[0]}
            return {"grid_rows": "heads", "grid_heads": _heads_of_layers(atlas, model, layers)}
        heads = [heads]
    if isinstance(heads, (bool, np.bool_, float, dict)) or not hasattr(heads, "__iter__"):
        raise ValueError(f"{HEADS_HELP}; got {heads!r}")
    return {"grid_rows": "heads", "grid_heads": expand_heads(atlas, list(heads))}


class PatternGrid(GridTraits, AtlasWidget):
    """Heads x prompts grid of attention-pattern heatmaps over an Atlas.

    Rows are heads (labelled ``L{l}H{h}``), columns the prompts whose thumbnails the atlas
    kept (the first K tokens of each: 32 by default, see Atlas.from_model). Hover a heatmap for the query token, key token and
    weight; click it to select its head (shift-click adds to the selection) and enlarge it,
    with token labels on both axes. Patterns cross to the browser as float16 (or uint8)
    buffers.

    Args:
        atlas: the Atlas to show.
        heads: rows: None (the selected head's layer, default), "selection", a layer
            ("L17", 17, "model:L17" or (model name, 17)), a range of layers ("L5-L7"), a head
            ("L5H1", "model:L5H1", (5, 1)) or a list of heads and layers.
        prompts: thumbnail prompt ids to show as columns (None = all).
        pattern_encoding: "float16" (default) or "uint8" (half the size, square-root code).
        selected_head, selection: the initial selection.
        **options: color_scale ("relative" per pattern, default; "linear", "power", "log"), scale_exponent, colormap ("blues",
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
