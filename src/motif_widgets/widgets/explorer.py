"""HeadExplorer: the pattern cloud, the similar-heads panel, a head card and the pattern grid
over one atlas, linked by one selection state."""

from __future__ import annotations

from typing import Mapping, Sequence

import pandas as pd
import traitlets

from ..atlas import Atlas
from . import _packing
from ._bundles import bundle_path
from ._live import TEXT_MAX_TOKENS, LivePatterns
from ._serialization import array_to_json
from .base import AtlasWidget, check_pattern_encoding
from .cloud import CloudTraits
from .grid import TEXT_PROMPT, GridTraits, grid_rows_options
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
    Python updates every view. One rule for clicks and Python alike: a new ``selected_head``
    outside the selection replaces the selection; one already in it only moves the focus
    (shift-click, the lasso and ``select([...])`` build multi-selections). The views live in
    one widget (one ES module, one copy of the data), so they stay linked in the offline HTML
    export too.

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
        model: the model the atlas was built from (taken from `source` when that is a model or a
            model name): the head card then offers "ablate", which runs
            :func:`motif_widgets.circuits.ablate` on the selected heads in the kernel (see
            :meth:`ablate`) and shows the exact loss change.
        ablate_prompts: how many of the atlas's prompts the card's ablations run on.
        thumbnail_budget_mb: most megabytes of thumbnails sent to the browser (the atlas's are
            cut to fewer tokens, then fewer prompts, to fit; see _packing.thumbnail_plan).
        selected_head, selection: the initial selection.
        **options: view options: cloud_mode, color_by, point_size, unselected,
            hidden_categories, size_by, opacity_by, top_k, neighbor_model, similar_by,
            badge_threshold, n_thumbnails, grid_rows, grid_filter, grid_prompts, focus_prompt,
            cell_size, color_scale, scale_exponent, colormap, title.

    Every (head, prompt) point opens its own pattern: a click on a point of the cloud's
    pattern mode sets ``focus_prompt`` to that prompt, and the large view shows the head on
    it: the thumbnail (the prompt's first K tokens) and, with a model attached, the
    full-resolution pattern computed in the kernel on demand (:meth:`pattern`: one forward
    pass of the prompt, cached). The view's title says which prompt and at what resolution.
    With a model, the "your text" box runs :meth:`run_text` (one forward pass) and shows every
    head's pattern on the text in the same views, with the text's tokens coloured by
    attention to / from the hovered token.

    The head card shows the head's scores, family, known classes and, when the atlas has
    circuits (Atlas.add_circuits), its OV copying, strongest K-composition partner and
    ablation-effect estimates, with Atlas.describe's plain-language account.

    Example:
        >>> explorer = HeadExplorer(load_model("smollm2-135m"))   # doctest: +SKIP
        >>> explorer.selected_head = "L18H6"; explorer.selection_df()   # doctest: +SKIP
    """

    _esm = bundle_path("explorer")

    #: True when a model is attached: the card's "ablate" button runs ablations in the kernel.
    can_ablate = traitlets.Bool(False).tag(sync=True)
    #: The last ablation: {"status": "running" | "done" | "error", "heads": {id: delta_loss},
    #: "clean_loss", "method", "prompts": [ids], "error": text}; {} before any.
    ablation = traitlets.Dict().tag(sync=True)
    #: True when a model is attached: the large view fetches full-resolution patterns and the
    #: "your text" box runs the model (show_pattern / run_text).
    can_run_model = traitlets.Bool(False).tag(sync=True)
    #: The last full-resolution pattern sent: {"status": "done" | "error", "head": id,
    #: "prompt": id, "n": tokens, "pattern": float16 [n, n] (encoded), "error": text}; {} before any.
    full_pattern = traitlets.Dict().tag(sync=True)
    #: Every head's pattern on the user's text (run_text): {"status", "text", "tokens" [n],
    #: "heads" [R] head indices, "pattern": float16 [R, n, n] (encoded), "ms": forward pass,
    #: "error"}; {} before any.
    text_patterns = traitlets.Dict().tag(sync=True)

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
        model=None,
        ablate_prompts: int = 8,
        thumbnail_budget_mb: float = _packing.MAX_THUMBNAIL_BYTES / 1e6,
        **kwargs,
    ):
        if head_map not in _packing.HEAD_MAP_METHODS:
            raise ValueError(f"head_map must be one of {_packing.HEAD_MAP_METHODS}, got {head_map!r}")
        self._check_options({k: v for k, v in kwargs.items() if k not in ("selected_head", "selection", "n_clusters")})
        self._pattern_encoding = check_pattern_encoding(pattern_encoding)
        self._head_map = head_map
        self._n_neighbors_arg = n_neighbors
        if isinstance(source, str):
            from ..models import load_model

            source = load_model(source)
        if model is None and not isinstance(source, Atlas) and callable(getattr(source, "forward", None)):
            model = source
        if model is not None and not callable(getattr(model, "forward", None)):
            raise ValueError(f"model must be a model (TransformerLens / Hugging Face), got {type(model).__name__}")
        if isinstance(ablate_prompts, bool) or not isinstance(ablate_prompts, int) or ablate_prompts < 1:
            raise ValueError(f"ablate_prompts must be a positive integer, got {ablate_prompts!r}")
        if isinstance(thumbnail_budget_mb, bool) or not isinstance(thumbnail_budget_mb, (int, float)) or not thumbnail_budget_mb > 0:
            raise ValueError(f"thumbnail_budget_mb must be a positive number, got {thumbnail_budget_mb!r}")
        self._model = model
        self._ablate_prompts = ablate_prompts
        self._thumbnail_bytes = float(thumbnail_budget_mb) * 1e6
        atlas = atlas_of(source, prompts, atlas_options, progress)
        self._live = None
        if model is not None:
            from ..circuits import _is_tl

            if _is_tl(model):  # circuits.patterns reads TransformerLens hook_pattern
                self._live = LivePatterns(atlas, model)
        rows = grid_rows_options(atlas, heads) if heads is not None else {}
        kwargs.setdefault("title", _title(atlas))
        super().__init__(atlas, **{**rows, **kwargs})
        self.on_msg(self._on_message)

    def _payload(self, atlas: Atlas) -> dict:
        return {
            **_packing.thumbnails(atlas, self._pattern_encoding, self._thumbnail_bytes),
            **_packing.cloud(atlas, self._head_map),
            **self._similar_payload(atlas, self._n_neighbors_arg),
            **_packing.descriptions(atlas),
            "can_ablate": self._model is not None,
            "can_run_model": self._live is not None,
        }

    # ------------------------------------------------------------------ patterns from the model
    def _need_live(self, what: str) -> LivePatterns:
        if self._live is None:
            if self._model is None:
                raise ValueError(f"{what} needs the model: HeadExplorer(atlas, model=model)")
            raise ValueError(f"{what} needs a TransformerLens model (motif_widgets.load_model), got {type(self._model).__name__}")
        return self._live

    def pattern(self, head, prompt: str):
        """Full-resolution attention pattern of `head` on atlas prompt `prompt`: float32 [n, n]
        (row = query; n = the prompt's tokens in the atlas), to float16 precision (~3
        significant digits, what the views show). One forward pass of that prompt (all heads
        of the model at once, cached per prompt as float16). Needs a model; for exact values
        use :func:`motif_widgets.circuits.patterns`."""
        live = self._need_live("pattern")
        return live.pattern(self._atlas.head_index(head), str(prompt))

    def show_pattern(self, head=None, prompt: str | None = None) -> dict:
        """Send the full-resolution pattern of `head` (default: the selected head) on `prompt`
        (default: focus_prompt) to the large view (the ``full_pattern`` trait); returns it."""
        head_id = self._head_id(head if head is not None else self.selected_head)
        prompt = prompt or self.focus_prompt or self.thumbnail_prompts[0]
        try:
            values = self.pattern(head_id, prompt)
        except Exception as err:
            self.full_pattern = {"status": "error", "head": head_id, "prompt": prompt, "error": f"{type(err).__name__}: {err}"}
            raise
        self.full_pattern = {
            "status": "done", "head": head_id, "prompt": prompt, "n": int(values.shape[0]),
            "pattern": array_to_json(values.astype("float16")),
        }
        return self.full_pattern

    def run_text(self, text: str, max_tokens: int = TEXT_MAX_TOKENS) -> dict:
        """Run the model on the user's `text` (one forward pass; longer texts cut to
        max_tokens) and show every head's pattern on it in the views (the ``text_patterns``
        trait; the large view switches to it). Returns {"tokens", "rows", "patterns" float16
        [R, n, n], "seconds"} (rows: atlas head indices of the model's heads)."""
        live = self._need_live("run_text")
        try:
            out = live.text(text, max_tokens)
        except Exception as err:
            self.text_patterns = {"status": "error", "text": str(text), "error": f"{type(err).__name__}: {err}"}
            raise
        with self.hold_sync():
            self.text_patterns = {
                "status": "done", "text": text, "tokens": out["tokens"], "n": len(out["tokens"]),
                "heads": [int(r) for r in out["rows"]], "pattern": array_to_json(out["patterns"]),
                "ms": round(out["seconds"] * 1000, 1),
            }
            self.focus_prompt = TEXT_PROMPT
        return out

    # ------------------------------------------------------------------ ablations
    def ablation_prompts(self) -> list:
        """The atlas prompts the card's ablations run on: up to ablate_prompts of them, spread
        evenly over the atlas's prompts (texts and probes alike)."""
        prompts = list(self._atlas.prompts)
        n = min(self._ablate_prompts, len(prompts))
        step = len(prompts) / n
        return [prompts[int(i * step)] for i in range(n)]

    def ablate(self, heads=None, method: str = "mean") -> pd.DataFrame:
        """Exact loss change when each of `heads` (default: the selected heads) is ablated on
        its own (:func:`motif_widgets.circuits.ablate` over :meth:`ablation_prompts`); the result
        also goes to the ``ablation`` trait, which the head card shows. Needs a model
        (``HeadExplorer(atlas, model=model)``)."""
        if self._model is None:
            raise ValueError("ablate needs the model: HeadExplorer(atlas, model=model)")
        from .. import circuits

        ids = self._validate_selection({"value": self.selected_heads if heads is None else heads})
        if not ids:
            raise ValueError("no heads to ablate: select heads or pass heads=")
        prompts = self.ablation_prompts()
        self.ablation = {"status": "running", "heads": {}, "method": method, "prompts": [p.id for p in prompts]}
        try:
            local = [h.rsplit(":", 1)[-1] for h in ids] if len(self._atlas.model_names) == 1 else ids
            table = circuits.ablate(self._model, prompts, local, method=method)
        except Exception as err:
            self.ablation = {"status": "error", "error": f"{type(err).__name__}: {err}", "heads": {}, "method": method}
            raise
        deltas = {h: _finite(v) for h, v in zip(ids, table["delta_loss"].to_numpy())}  # rows follow `heads`
        self.ablation = {
            "status": "done", "heads": deltas, "method": method, "prompts": [p.id for p in prompts],
            "clean_loss": _finite(table.attrs.get("clean_loss")),
        }
        return table

    def _on_message(self, widget, content, buffers):
        if not isinstance(content, dict):
            return
        kind = content.get("type")
        try:  # errors land in the trait the view shows (ablation, full_pattern, text_patterns)
            if kind == "ablate":
                self.ablate(content.get("heads") or None)
            elif kind == "pattern":
                self.show_pattern(content.get("head"), content.get("prompt"))
            elif kind == "run_text":
                self.run_text(content.get("text", ""))
        except Exception:
            pass

    def _head_map_name(self) -> str | None:
        return self._head_map if len(self._atlas.head_ids) >= 5 else None


def _finite(x) -> float | None:
    """A float for JSON (None for NaN / missing)."""
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    return x if x == x and abs(x) != float("inf") else None


def _title(atlas: Atlas) -> str:
    models = ", ".join(atlas.model_names)
    return f"{models}: {len(atlas.head_ids)} heads, {len(atlas.prompts)} prompts"
