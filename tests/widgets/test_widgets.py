"""The views' Python side: traits, options, the selection state and its two-way sync with
the browser (through the widget comm), linking, and the exports."""

from __future__ import annotations

import base64
import gzip
import json
import re

import numpy as np
import pytest

from motif_widgets.widgets import (
    HeadExplorer,
    PatternCloud,
    PatternGrid,
    SimilarHeads,
    link_selection,
)


class FakeComm:
    """Stands in for the kernel's widget comm: records what Python sends to the browser."""

    kernel = "fake"
    comm_id = "fake-comm"

    def __init__(self):
        self.sent = []

    def send(self, data=None, buffers=None, **kwargs):
        self.sent.append((data, buffers))

    def on_msg(self, callback):
        self.callback = callback

    def updates(self, key):
        """Values of `key` in 'update' messages, in order."""
        return [d["state"][key] for d, _ in self.sent if d.get("method") == "update" and key in d["state"]]


def from_browser(widget, **state):
    """Deliver a state update from the front end, as the comm does."""
    widget._handle_msg({"content": {"data": {"method": "update", "state": state, "buffer_paths": []}}, "buffers": []})


# ------------------------------------------------------------------ construction and options
@pytest.mark.parametrize(
    "cls, bundle", [(PatternGrid, "grid"), (PatternCloud, "cloud"), (SimilarHeads, "similar"), (HeadExplorer, "explorer")]
)
def test_each_view_carries_its_own_bundle(cls, bundle, multi_atlas):
    from motif_widgets.widgets.base import bundle_path

    view = cls(multi_atlas)
    assert view._esm == bundle_path(bundle).read_text(encoding="utf-8")
    assert view.head_ids == multi_atlas.head_ids
    assert view.head_scores.shape == (24, len(multi_atlas.head_scores().columns))


def test_views_hold_only_what_they_show(multi_atlas):
    grid, cloud, similar = PatternGrid(multi_atlas), PatternCloud(multi_atlas), SimilarHeads(multi_atlas)
    assert "thumbnails" in grid.keys and "pattern_points" not in grid.keys and "neighbor_index" not in grid.keys
    assert "pattern_points" in cloud.keys and "thumbnails" not in cloud.keys
    assert {"neighbor_index", "thumbnails"} <= set(similar.keys) and "pattern_points" not in similar.keys
    explorer = HeadExplorer(multi_atlas)
    assert set(grid.keys) | set(cloud.keys) | set(similar.keys) <= set(explorer.keys)


def test_unknown_options_are_refused_with_a_suggestion(multi_atlas):
    with pytest.raises(ValueError, match="unknown option 'colour_by'.*Did you mean 'color_by'"):
        HeadExplorer(multi_atlas, colour_by="layer")
    with pytest.raises(ValueError, match="unknown option 'top_k'"):
        PatternGrid(multi_atlas, top_k=3)  # an option of another view


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda a: HeadExplorer(42), "needs an Atlas, a model or a model name"),
        (lambda a: PatternGrid("atlas"), "needs an Atlas"),
        (lambda a: HeadExplorer(a, prompts=["x"]), "built already"),
        (lambda a: PatternCloud(a, color_by="colour"), "color_by must be one of"),
        (lambda a: PatternCloud(a, head_map="mds"), "head_map must be one of"),
        (lambda a: SimilarHeads(a, top_k=50), r"top_k must be in 1\.\.20"),
        (lambda a: SimilarHeads(a, n_neighbors=0), "n_neighbors must be a positive integer"),
        (lambda a: SimilarHeads(a, neighbor_model="gpt2"), "unknown model 'gpt2'"),
        (lambda a: PatternGrid(a, heads=["L9H9"]), "unknown head"),
        (lambda a: PatternGrid(a, prompts=["p05"]), "no kept thumbnails"),
        (lambda a: PatternGrid(a, cell_size=4), "cell_size"),
        (lambda a: PatternGrid(a, grid_layer=3), r"grid_layer must be in 0\.\.2"),
        (lambda a: PatternGrid(a, pattern_encoding="int8"), "pattern_encoding"),
        (lambda a: PatternGrid(a, scale_exponent=0), "scale_exponent"),
        (lambda a: HeadExplorer(a, selected_head="model7:L0H0"), "unknown head"),
        (lambda a: HeadExplorer(a, n_clusters=0), "n_clusters"),
        (lambda a: HeadExplorer(a, cloud_mode="3d"), "cloud_mode"),
        (lambda a: HeadExplorer(a, top_k="ten"), "top_k"),
        (lambda a: PatternGrid(a, colormap="jet"), "colormap"),
        (lambda a: HeadExplorer(a, thumbnail_budget_mb=0), "thumbnail_budget_mb must be a positive number"),
        (lambda a: HeadExplorer(a, focus_prompt="nope"), "focus_prompt 'nope' is not a prompt of the atlas"),
        (lambda a: HeadExplorer(a).run_text("hello"), r"run_text needs the model: HeadExplorer\(atlas, model=model\)"),
        (lambda a: HeadExplorer(a).pattern("model0:L0H0", "p00"), "pattern needs the model"),
    ],
)
def test_bad_input_raises_value_error(make, message, multi_atlas):
    with pytest.raises(ValueError, match=message):
        make(multi_atlas)


def test_kernel_patterns_refuse_bad_input(toy_view_atlas, toy_model, multi_atlas):
    explorer = HeadExplorer(toy_view_atlas, model=toy_model)
    with pytest.raises(ValueError, match="'nope' is not an atlas prompt"):
        explorer.pattern("L1H3", "nope")
    with pytest.raises(ValueError, match="unknown head|no head"):
        explorer.pattern("L7H0", "rand-17")
    with pytest.raises(ValueError, match="text must be a non-empty string"):
        explorer.run_text("   ")
    assert explorer.text_patterns["status"] == "error"  # and the view hears it
    with pytest.raises(ValueError, match="none of the atlas's models"):
        HeadExplorer(multi_atlas, model=toy_model)


def test_grid_rows_from_heads_argument(multi_atlas, toy_view_atlas):
    assert PatternGrid(multi_atlas).grid_rows == "auto"
    g = PatternGrid(multi_atlas, heads=2)
    assert (g.grid_rows, g.grid_model, g.grid_layer) == ("layer", "model0", 2)
    g = PatternGrid(multi_atlas, heads=("model1", 1))
    assert (g.grid_rows, g.grid_model, g.grid_layer) == ("layer", "model1", 1)
    g = PatternGrid(toy_view_atlas, heads=["L1H2", (0, 3), "L1H2"])
    assert g.grid_rows == "heads" and g.grid_heads == ["toy-induction:L1H2", "toy-induction:L0H3"]
    assert PatternGrid(multi_atlas, heads="selection").grid_rows == "selection"
    g.show_heads(1)
    assert (g.grid_rows, g.grid_layer) == ("layer", 1)
    g.show_prompts(["probe-00"])
    assert g.grid_prompts == ["probe-00"]


# ------------------------------------------------------------------ the selection state
def test_selected_head_is_normalised_to_the_full_id(toy_view_atlas):
    e = HeadExplorer(toy_view_atlas)
    assert e.selected_head is None and e.selection == []
    for ref in ("L1H2", "toy-induction:L1H2", (1, 2), 6, np.int64(6)):
        e.selected_head = ref
        assert e.selected_head == "toy-induction:L1H2"
    e.selected_head = ""
    assert e.selected_head is None
    e.selection = ["L0H0", (1, 1), "L0H0", 7]
    assert e.selection == ["toy-induction:L0H0", "toy-induction:L1H1", "toy-induction:L1H3"]
    for bad in ("L5H0", 99, 1.5, True):
        with pytest.raises(ValueError):
            e.selected_head = bad
    with pytest.raises(ValueError, match="power"):
        e.color_scale = "sqrt"
    assert e.selected_head is None  # a refused value leaves the state as it was
    with pytest.raises(ValueError, match="unknown head"):
        e.selection = ["L0H0", "L3H3"]
    assert e.selection == ["toy-induction:L0H0", "toy-induction:L1H1", "toy-induction:L1H3"]


def test_a_click_in_the_browser_updates_python(toy_view_atlas):
    e = HeadExplorer(toy_view_atlas)
    seen = []
    e.observe(lambda change: seen.append(change["new"]), "selected_head")
    from_browser(e, selected_head="toy-induction:L1H3", selection=["toy-induction:L1H3"])
    assert e.selected_head == "toy-induction:L1H3" and e.selection == ["toy-induction:L1H3"]
    assert seen == ["toy-induction:L1H3"]
    # the browser's own gestures: shift-click, then clearing
    from_browser(e, selection=["toy-induction:L1H3", "toy-induction:L0H0"], selected_head="toy-induction:L0H0")
    assert e.selected_heads == ["toy-induction:L1H3", "toy-induction:L0H0"]
    from_browser(e, selection=[], selected_head=None)
    assert e.selected_head is None and e.selected_heads == []


def test_one_selection_rule_for_python_and_clicks(toy_view_atlas):
    """A new selected_head outside the selection replaces it (as a plain click does); one in it
    only moves the focus; setting the selection keeps the selected head."""
    e = HeadExplorer(toy_view_atlas)
    e.selection = ["L0H0", "L0H1"]
    e.selected_head = "L0H1"  # in the selection: focus moves, selection kept
    assert e.selection == ["toy-induction:L0H0", "toy-induction:L0H1"]
    e.selected_head = "L1H2"  # outside: replaces the selection
    assert e.selection == ["toy-induction:L1H2"] and e.selected_heads == ["toy-induction:L1H2"]
    from_browser(e, selection=["toy-induction:L1H3"], selected_head="toy-induction:L1H3")  # a click
    assert e.selection == ["toy-induction:L1H3"]
    e.selected_head = None
    assert e.selection == ["toy-induction:L1H3"]  # clearing the focus keeps the selection
    e.select([])
    assert e.selection == [] and e.selected_head is None


def test_python_changes_are_sent_to_the_browser(toy_view_atlas):
    e = HeadExplorer(toy_view_atlas)
    comm = FakeComm()
    e.comm = comm
    e.selected_head = "L0H1"
    e.selection = [(1, 0), "L0H1"]
    assert comm.updates("selected_head") == ["toy-induction:L0H1"]
    # a selected head outside the selection replaces it (as a click does)
    assert comm.updates("selection") == [["toy-induction:L0H1"], ["toy-induction:L1H0", "toy-induction:L0H1"]]
    e.select(["L1H1", "L1H2"])  # both traits in one message
    last = comm.sent[-1][0]["state"]
    assert last == {"selection": ["toy-induction:L1H1", "toy-induction:L1H2"], "selected_head": "toy-induction:L1H1"}
    # a value that came from the browser is echoed, not sent back as a new update
    comm.sent.clear()
    from_browser(e, selected_head="toy-induction:L0H2", selection=["toy-induction:L0H2"])
    assert [d["method"] for d, _ in comm.sent] == ["echo_update"]
    # heavy data goes out as binary buffers, never JSON lists
    comm.sent.clear()
    e.send_state()
    data, buffers = comm.sent[0]
    assert ["thumbnails", "data"] in data["buffer_paths"] and len(buffers) == len(data["buffer_paths"])
    assert all(isinstance(b, memoryview) for b in buffers)


def test_an_invalid_browser_value_is_refused_and_corrected(toy_view_atlas, caplog):
    e = HeadExplorer(toy_view_atlas, selected_head="L1H0", selection=["L1H0"])
    comm = FakeComm()
    e.comm = comm
    # one update with a valid and a refused value: both are rolled back
    from_browser(e, selection=["toy-induction:L0H0"], selected_head="toy-induction:L7H7")
    assert e.selected_head == "toy-induction:L1H0" and e.selection == ["toy-induction:L1H0"]
    assert "unknown head 'toy-induction:L7H7'" in caplog.text  # ipywidgets logs the error
    # the browser got the proposal echoed; Python sends its own values back
    assert comm.updates("selected_head") == ["toy-induction:L1H0"]
    assert comm.updates("selection") == [["toy-induction:L1H0"]]


def test_link_selection_links_separate_views(multi_atlas, toy_view_atlas):
    grid, cloud, panel = PatternGrid(multi_atlas), PatternCloud(multi_atlas), SimilarHeads(multi_atlas)
    links = link_selection(grid, cloud, panel)
    from_browser(cloud, selected_head="model1:L0H2", selection=["model1:L0H2"])
    assert grid.selected_head == panel.selected_head == "model1:L0H2"
    assert grid.selection == panel.selection == ["model1:L0H2"]
    panel.selected_head = "model0:L2H2"
    assert cloud.selected_head == grid.selected_head == "model0:L2H2"
    for link in links:
        link.unlink()
    grid.selected_head = "model0:L0H0"
    assert cloud.selected_head == "model0:L2H2"
    with pytest.raises(ValueError, match="same atlas"):
        link_selection(grid, PatternGrid(toy_view_atlas))
    with pytest.raises(ValueError, match="at least two"):
        link_selection(grid)


# ------------------------------------------------------------------ exports
def test_selection_df(multi_atlas):
    e = HeadExplorer(multi_atlas)
    empty = e.selection_df()
    assert len(empty) == 0 and "induction" in empty.columns
    from_browser(e, selection=["model0:L1H0", "model1:L2H3"], selected_head="model1:L2H3")
    df = e.selection_df(k=4)
    assert df.index.tolist() == ["model0:L1H0", "model1:L2H3"]
    table = multi_atlas.head_table()
    columns = ("model", "layer", "head_index", "previous_token", "induction", "cluster", "pc.0", "pc.2", "isomap.0")
    for col in columns:
        assert col in df.columns
        assert df[col].tolist() == table.loc[df.index, col].tolist()
    assert df["known_classes"].tolist() == [[], []]
    assert df["selected_head"].tolist() == [False, True]
    near = multi_atlas.similar_heads("model1:L2H3", k=4)
    assert df.loc["model1:L2H3", "neighbors"] == near["head"].tolist()
    assert np.allclose(df.loc["model1:L2H3", "neighbor_distances"], near["distance"])
    # the selected head is included even when the multi-selection does not hold it
    e.selected_head, e.selection = "model0:L0H1", ["model0:L0H0"]
    assert e.selection_df().index.tolist() == ["model0:L0H0", "model0:L0H1"]


def test_to_dataframe_marks_the_selected_rows(toy_view_atlas):
    e = HeadExplorer(toy_view_atlas, selection=["L1H1", "L0H0"])
    df = e.to_dataframe()
    assert len(df) == len(toy_view_atlas.to_dataframe())
    marked = df.loc[df["selected"], ["layer", "head_index"]].drop_duplicates().apply(tuple, axis=1).tolist()
    assert sorted(marked) == [(0, 0), (1, 1)]
    assert df["selected"].sum() == 2 * len(toy_view_atlas.prompts)


def test_save_html_is_self_contained(toy_view_atlas, tmp_path):
    from motif_widgets.widgets.base import bundle_path

    e = HeadExplorer(toy_view_atlas, selected_head="L1H0")
    path = e.save_html(tmp_path / "sub" / "explorer.html", title="Toy <heads>")
    text = path.read_text(encoding="utf-8")
    assert "<title>Toy &lt;heads&gt;</title>" in text
    # nothing is fetched: no external scripts, styles or imports
    assert not re.search(r"""(src|href)\s*=\s*["']?https?:""", text)
    assert not re.search(r"""(import|from)\s*\(?\s*["']https?:""", text)
    from motif_widgets.widgets.export import unpack_state

    state_text = re.search(r'<script type="application/octet-stream" id="motif-widgets-state" data-encoding="gzip\+base64">(.*?)</script>', text, re.S).group(1)
    doc, binary = unpack_state(gzip.decompress(base64.b64decode(state_text)))
    assert doc["state"]["selected_head"] == "toy-induction:L1H0"
    assert doc["state"]["_esm"] == bundle_path("explorer").read_text(encoding="utf-8")
    assert ["thumbnails", "data"] in [b["path"] for b in doc["buffers"]]
    # thumbnails travel as uint8 square-root codes, points quantized (the loader widens them)
    assert doc["state"]["thumbnails"]["dtype"] == "uint8"
    assert doc["state"]["pattern_points"]["packed"]["dtype"] == "uint16"
    assert "layout" not in doc["state"]
    with pytest.raises(ValueError, match=".html"):
        e.save_html(tmp_path / "explorer.png")


def test_explorer_from_a_model_computes_the_atlas(toy_model, toy_prompts):
    e = HeadExplorer(toy_model, prompts=toy_prompts, progress=False, atlas_options={"thumbnails": 3})
    assert len(e.head_ids) == 8 and len(e.thumbnail_prompts) == 3
    assert e.atlas.prompt_ids == [p.id for p in toy_prompts]
    e.selected_head = "L1H0"
    assert e.similar_heads(k=2)["head"].tolist() == e.atlas.similar_heads("L1H0", k=2)["head"].tolist()
    with pytest.raises(ValueError, match="unknown option"):
        HeadExplorer(toy_model, prompts=toy_prompts, progress=False, colorby="x")


def test_uint8_patterns_halve_the_thumbnails(toy_view_atlas):
    f16 = HeadExplorer(toy_view_atlas)
    u8 = HeadExplorer(toy_view_atlas, pattern_encoding="uint8")
    assert u8.thumbnails.dtype == np.uint8 and u8.thumbnails.nbytes * 2 == f16.thumbnails.nbytes


# ------------------------------------------------------------------ bounded traits
@pytest.mark.parametrize(
    "make, name, bad, message",
    [
        (SimilarHeads, "badge_threshold", float("nan"), r"badge_threshold must be a finite number in \[0\.0, 1\.0\], got nan"),
        (SimilarHeads, "badge_threshold", float("inf"), r"badge_threshold must be a finite number in \[0\.0, 1\.0\], got inf"),
        (SimilarHeads, "badge_threshold", 1.5, r"badge_threshold must be a finite number in \[0\.0, 1\.0\], got 1\.5"),
        (SimilarHeads, "badge_threshold", -0.1, r"badge_threshold must be a finite number in \[0\.0, 1\.0\]"),
        (SimilarHeads, "n_thumbnails", 17, r"n_thumbnails must be in 0\.\.16, got 17"),
        (SimilarHeads, "n_thumbnails", -1, r"n_thumbnails must be in 0\.\.16, got -1"),
        (SimilarHeads, "n_thumbnails", True, r"'n_thumbnails' trait .* expected an int"),
        (SimilarHeads, "top_k", 0, r"top_k must be >= 1, got 0"),
        (PatternGrid, "cell_size", 300, r"cell_size must be in 16\.\.256, got 300"),
        (PatternGrid, "grid_layer", -1, r"grid_layer must be >= 0, got -1"),
        (PatternGrid, "scale_exponent", float("nan"), r"scale_exponent must be a finite number in \[0\.05, 5\.0\], got nan"),
        (PatternGrid, "scale_exponent", 6, r"scale_exponent must be a finite number in \[0\.05, 5\.0\], got 6"),
        (PatternCloud, "point_size", float("nan"), r"point_size must be a finite number in \[0\.0, 40\.0\], got nan"),
        (PatternCloud, "point_size", 41.0, r"point_size must be a finite number in \[0\.0, 40\.0\], got 41\.0"),
    ],
)
def test_bounded_traits_refuse_out_of_range_and_nan(make, name, bad, message, multi_atlas):
    import traitlets

    # as a constructor option ...
    with pytest.raises(traitlets.TraitError, match=message):
        make(multi_atlas, **{name: bad})
    # ... and as an assignment, which leaves the value as it was
    view = make(multi_atlas)
    before = getattr(view, name)
    with pytest.raises(traitlets.TraitError, match=message):
        setattr(view, name, bad)
    with pytest.raises(ValueError, match=message):  # still a ValueError for callers
        setattr(view, name, bad)
    assert getattr(view, name) == before


def test_bounded_traits_accept_their_range_and_numpy_numbers(multi_atlas):
    panel = SimilarHeads(multi_atlas, badge_threshold=1, n_thumbnails=np.int64(16))
    assert panel.badge_threshold == 1.0 and isinstance(panel.badge_threshold, float)
    assert panel.n_thumbnails == 16 and type(panel.n_thumbnails) is int
    panel.badge_threshold = np.float32(0.25)
    assert panel.badge_threshold == 0.25
    grid = PatternGrid(multi_atlas, cell_size=16, scale_exponent=5)
    assert (grid.cell_size, grid.scale_exponent) == (16, 5.0)


def test_a_nan_from_the_browser_is_refused_and_rolled_back(multi_atlas):
    panel = SimilarHeads(multi_atlas, badge_threshold=0.3)
    comm = FakeComm()
    panel.comm = comm
    from_browser(panel, badge_threshold=float("nan"), top_k=4)
    assert panel.badge_threshold == 0.3 and panel.top_k == 10  # both rolled back
    assert comm.updates("badge_threshold") == [0.3]


def test_selection_none_is_refused_not_stored(toy_view_atlas, caplog):
    import traitlets

    e = HeadExplorer(toy_view_atlas, selection=["L1H0"])
    with pytest.raises(traitlets.TraitError, match=r"selection must be a list of heads \(assign \[\] to clear it\), got None"):
        e.selection = None
    assert e.selection == ["toy-induction:L1H0"]
    assert list(e.selection_df().index) == ["toy-induction:L1H0"]  # used to raise TypeError
    with pytest.raises(traitlets.TraitError, match="selection must be a list of heads"):
        PatternGrid(toy_view_atlas, selection=None)
    from_browser(e, selection=None)  # refused (ipywidgets logs the error) and rolled back
    assert "selection must be a list of heads" in caplog.text
    assert e.selection == ["toy-induction:L1H0"]
    with pytest.raises(ValueError, match="selection must be a list of heads"):
        e.select(None)
    e.selection = []  # clearing is an empty list
    assert e.selection == [] and e.selection_df().empty
    assert SimilarHeads(toy_view_atlas, selection=("L1H2", "L0H0")).selection == ["toy-induction:L1H2", "toy-induction:L0H0"]
    assert SimilarHeads(toy_view_atlas, selection=(1, 2)).selection == ["toy-induction:L1H2"]  # (layer, head)
    assert SimilarHeads(toy_view_atlas, selection=(h for h in ["L0H1"])).selection == ["toy-induction:L0H1"]


# ------------------------------------------------------------------ heads= as a user writes it
def test_heads_string_selects_a_layer(toy_view_atlas, gpt2_like_atlas):
    # the README's PatternGrid(atlas, heads="L17"): all heads of that layer (used to raise "unknown head 'L1'")
    g = PatternGrid(toy_view_atlas, heads="L1")
    assert (g.grid_rows, g.grid_model, g.grid_layer) == ("layer", "toy-induction", 1)
    g = PatternGrid(gpt2_like_atlas, heads="gpt2-small:L2")
    assert (g.grid_rows, g.grid_model, g.grid_layer) == ("layer", "gpt2-small", 2)
    g = PatternGrid(toy_view_atlas, heads="L1H3")
    assert (g.grid_rows, g.grid_heads) == ("heads", ["toy-induction:L1H3"])
    g = PatternGrid(toy_view_atlas, heads="L0-L1")
    assert g.grid_rows == "heads" and g.grid_heads == [f"toy-induction:L{l}H{h}" for l in (0, 1) for h in range(4)]
    g = PatternGrid(gpt2_like_atlas, heads=["L2H5", "L1-2", "L0H0"])  # a list mixing heads and layers
    assert g.grid_heads[0] == "gpt2-small:L2H5" and g.grid_heads[-1] == "gpt2-small:L0H0"
    assert len(g.grid_heads) == 1 + 23 + 1 and len(set(g.grid_heads)) == len(g.grid_heads)
    g.show_heads("L0")
    assert (g.grid_rows, g.grid_layer) == ("layer", 0)
    g.grid_heads = "L1"  # the trait takes layer specs too
    assert g.grid_heads == [f"gpt2-small:L1H{h}" for h in range(12)]


def test_heads_string_in_a_multi_model_atlas(multi_atlas):
    g = PatternGrid(multi_atlas, heads="L1")  # every model's layer 1
    assert g.grid_rows == "heads" and g.grid_heads == [f"model{m}:L1H{h}" for m in (0, 1) for h in range(4)]
    g = PatternGrid(multi_atlas, heads="model1:L2")
    assert (g.grid_rows, g.grid_model, g.grid_layer) == ("layer", "model1", 2)


@pytest.mark.parametrize(
    "heads, message",
    [
        ("L17", r"heads='L17': unknown layer 17; the atlas has layers 0\.\.1"),
        ("L0-L5", r"heads='L0-L5': unknown layer 5; the atlas has layers 0\.\.1"),
        ("L1-L0", r"heads='L1-L0': the layer range runs backwards"),
        ("gpt2:L1", r"heads='gpt2:L1': unknown model 'gpt2'"),
        ("layer one", r"unknown head 'layer one'"),
        (["L0H0", "L9"], r"heads='L9': unknown layer 9"),
        (1.5, r"heads must be None .*got 1\.5"),
    ],
)
def test_bad_heads_strings_raise_clear_errors(heads, message, toy_view_atlas):
    with pytest.raises(ValueError, match=message):
        PatternGrid(toy_view_atlas, heads=heads)


def test_widget_modules_import_each_other_without_cycles():
    """base.py and export.py used to import each other (bundle_path / save_html); the bundle
    paths now sit in the leaf module _bundles. Every `from .x import` in widgets/, including
    those inside functions, must form an acyclic graph."""
    import ast
    from pathlib import Path

    import motif_widgets.widgets as pkg

    folder = Path(pkg.__file__).parent
    graph = {}
    for path in folder.glob("*.py"):
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                if node.module:
                    deps.add(node.module.split(".")[0])
                else:
                    deps.update(alias.name for alias in node.names)
        graph[path.stem] = {d for d in deps if (folder / f"{d}.py").exists()}
    assert graph["_bundles"] == set() and "_bundles" in graph["export"] and "base" not in graph["export"]

    def visit(node, stack):
        assert node not in stack, f"import cycle: {' -> '.join([*stack, node])}"
        for dep in graph[node]:
            visit(dep, [*stack, node])

    for name in graph:
        visit(name, [])


def test_export_packs_arrays_within_their_precision(multi_atlas):
    """save_html's container: uint8 thumbnails, quantized points and scores, narrowed integer
    tables; the values come back within the stated precision (the loader widens them)."""
    from motif_widgets.widgets._serialization import decode_patterns
    from motif_widgets.widgets.export import pack_state, unpack_state

    e = HeadExplorer(multi_atlas)
    doc, binary = unpack_state(pack_state(e))
    where = {b["path"][0]: b for b in doc["buffers"]}

    def stored(name, dtype):
        b = where[name]
        return np.frombuffer(binary[b["offset"] : b["offset"] + b["length"]], dtype=dtype)

    points = doc["state"]["pattern_points"]
    lo, step = np.array(points["packed"]["lo"]), np.array(points["packed"]["step"])
    back = lo + step * stored("pattern_points", np.uint16).reshape(-1, 3)
    assert np.abs(back - e.pattern_points).max() <= step.max() / 2 + 1e-6
    scores = doc["state"]["pattern_scores"]
    code = stored("pattern_scores", np.uint8).reshape(e.pattern_scores.shape)
    nan = np.isnan(e.pattern_scores.astype(np.float32))
    assert np.array_equal(code == 255, nan) if scores["packed"]["nan"] else not nan.any()
    thumbs = decode_patterns(stored("thumbnails", np.uint8).reshape(e.thumbnails.shape))
    assert np.abs(np.sqrt(thumbs) - np.sqrt(e.thumbnails.astype(np.float32))).max() <= 0.5 / 255 + 1e-3
    assert doc["state"]["neighbor_index"]["packed"]["dtype"] in ("uint8", "int8", "uint16", "int16")
    assert np.array_equal(stored("neighbor_index", np.dtype(doc["state"]["neighbor_index"]["packed"]["dtype"])).reshape(e.neighbor_index.shape), e.neighbor_index)
