"""The plain numpy/scipy paper features equal the reference outputs in tests/fixtures/.

The fixtures (41 patterns and the reference code's 94 features for each, float64 input) are a
copy of ../shared/fixtures kept in the repository, so a clean clone runs these tests.
"""

from __future__ import annotations

import json
import math
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"

try:
    from motif_widgets.features import plain
except ImportError:  # package not installed: import it from the source tree
    sys.path.insert(0, str(REPO / "src"))
    from motif_widgets.features import plain

N_PATTERNS = 41
PATTERN_KEYS = [f"p{i}" for i in range(N_PATTERNS)]
ABS_TOL = 1e-12
REL_TOL = 1e-9

# Bit patterns of torch.logspace(-3, 0, 32) (float32), which the reference uses as bin edges.
TORCH_LOGSPACE_BITS = [
    0x3A83126F, 0x3AA3C9ED, 0x3ACCAC04, 0x3AFFC28B, 0x3B1FCCCB, 0x3B47B001, 0x3B798806,
    0x3B9BE888, 0x3BC2D310, 0x3BF37455, 0x3C181C87, 0x3C3E1471, 0x3C6D8688, 0x3C946833,
    0x3CB97366, 0x3CE7BDB1, 0x3D10CAF7, 0x3D34EF37, 0x3D6218EB, 0x3D8D4443, 0x3DB08731,
    0x3DDC9753, 0x3E09D38B, 0x3E2C3AA3, 0x3E573810, 0x3E867846, 0x3EA808E3, 0x3ED1FA4B,
    0x3F0331EE, 0x3F23F148, 0x3F4CDD33, 0x3F800000,
]


def _require_fixtures() -> None:
    if not FIXTURES.is_dir():
        pytest.fail(f"reference fixtures missing from {FIXTURES}")


_cache: dict[str, object] = {}


def _expected() -> dict:
    _require_fixtures()
    if "expected" not in _cache:
        with open(FIXTURES / "expected.json") as f:
            _cache["expected"] = json.load(f)
    return _cache["expected"]  # type: ignore[return-value]


def _patterns():
    _require_fixtures()
    if "patterns" not in _cache:
        with np.load(FIXTURES / "patterns.npz") as z:
            _cache["patterns"] = {k: z[k] for k in z.files}
    return _cache["patterns"]


def _close(a: float, b: float) -> bool:
    d = abs(a - b)
    return d <= ABS_TOL or d <= REL_TOL * max(abs(a), abs(b))


def test_feature_names_match_fixture():
    assert len(plain.PAPER_FEATURE_NAMES) == 94
    assert list(plain.PAPER_FEATURE_NAMES) == _expected()["feature_names"]


def test_fixture_holds_the_expected_patterns():
    assert sorted(_patterns()) == sorted(PATTERN_KEYS)
    assert sorted(_expected()["patterns"]) == sorted(PATTERN_KEYS)


@pytest.mark.parametrize("key", PATTERN_KEYS)
def test_pattern_matches_reference(key):
    pattern = _patterns()[key].astype(np.float64)
    entry = _expected()["patterns"][key]
    assert pattern.shape == (entry["n"], entry["n"])

    got = plain.paper_features_plain(pattern)
    assert got.shape == (94,) and got.dtype == np.float64

    mismatches = []
    for name, value in zip(plain.PAPER_FEATURE_NAMES, got):
        ref = entry["features"][name]
        value = float(value)
        if ref is None:
            ok = math.isnan(value)
        elif ref == 0.0:  # the reference writes +0.0 (e.g. entropy of one full bin), never -0.0
            ok = _close(value, 0.0) and (value != 0.0 or math.copysign(1.0, value) > 0)
        else:
            ok = not math.isnan(value) and _close(value, float(ref))
        if not ok:
            mismatches.append(f"{name}: got {value!r}, reference {ref!r}")
    assert not mismatches, f"{key} ({entry['label']}):\n" + "\n".join(mismatches)


def test_float32_input_is_cast_to_float64():
    pattern = _patterns()["p5"]
    assert pattern.dtype == np.float32
    np.testing.assert_array_equal(
        plain.paper_features_plain(pattern), plain.paper_features_plain(pattern.astype(np.float64))
    )


def test_log_bin_edges_are_torch_float32_logspace():
    edges = plain.LOG_BIN_EDGES
    assert edges.dtype == np.float32 and edges.shape == (33,)
    assert edges[0] == 0.0
    assert edges[1:].view(np.uint32).tolist() == TORCH_LOGSPACE_BITS
    try:
        import torch
    except ImportError:
        return
    np.testing.assert_array_equal(edges[1:], torch.logspace(-3, 0, 32).numpy())


def test_histogram_densities_semantics():
    e = plain.LOG_BIN_EDGES.astype(np.float64)
    # On an edge -> upper bin; 1.0 -> last (closed) bin; < 0, > 1 and NaN are dropped.
    values = np.array([e[5], 1.0, -1e-300, 1.0 + 2**-52, np.nan, 0.0])
    dens = plain.histogram_densities_plain(values)
    widths = np.diff(e)
    counts = np.zeros(32)
    counts[[5, 31, 0]] = 1
    np.testing.assert_array_equal(dens, counts / widths / 3)


def test_degenerate_patterns_give_nan_without_warnings():
    sink_pattern = np.zeros((4, 4))
    sink_pattern[:, 0] = 1.0  # every query attends only to position 0: constant first column
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        one = plain.paper_features_plain(np.ones((1, 1)))
        sink = plain.paper_features_plain(sink_pattern)
    names = np.array(plain.PAPER_FEATURE_NAMES)
    assert set(names[np.isnan(one)]) == {
        f"{p}.{s}" for p in ("diag", "first_tok")
        for s in ("variance", "skewness", "kurtosis", "linreg.slope", "linreg.intercept",
                  "linreg.r2")
    }
    assert set(names[np.isnan(sink)]) == {
        "first_tok.skewness", "first_tok.kurtosis", "first_tok.linreg.r2"
    }


def test_vector_stats_blocks():
    x = np.array([0.3, 0.1, 0.4, 0.1, 0.5, 0.9, 0.2])
    full = plain.vector_stats_plain(x, full=True)
    reduced = plain.vector_stats_plain(x, full=False)
    assert tuple(full) == plain.FULL_STAT_NAMES and len(full) == 14
    assert tuple(reduced) == plain.REDUCED_STAT_NAMES and len(reduced) == 11
    assert all(reduced[k] == full[k] for k in reduced)
    assert full["variance"] == pytest.approx(np.var(x, ddof=1), rel=1e-15)
    assert full["L2_norm"] == pytest.approx(np.linalg.norm(x) / x.size, rel=1e-15)


def test_entropy_histogram_raises_on_a_range_of_a_few_ulps():
    # np.histogram cannot build min(10, m) distinct equal-width bins over a range this narrow;
    # the reference code calls it the same way, so it has no value for such a vector either.
    with pytest.raises(ValueError, match="Too many bins"):
        plain.vector_stats_plain(np.array([1.0] * 7 + [1.0 - 2**-53]), full=True)
