"""Feature kernels: exactness against the reference fixtures and plain per-pattern
implementations, batching, the motif set's guarantees, the registry and bad input."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import PATTERN_KINDS, causal_pattern
from motif_widgets import FeatureSet, compute_features, get_feature_set, register_feature_set
from motif_widgets.features import MOTIF_FEATURE_NAMES, PAPER_FEATURE_NAMES, pad_patterns, paper_features
from motif_widgets.features.matrices import LOG_BIN_EDGES, log_bin_counts, symmetric_log_bin_counts
from motif_widgets.features.motifs import SINK_SMOOTHING
from motif_widgets.features.plain import histogram_densities_plain, paper_features_plain


def assert_features_close(got: np.ndarray, want: np.ndarray, rtol=1e-6, atol=1e-12, names=PAPER_FEATURE_NAMES):
    """Relative rtol (absolute atol near 0), and NaN exactly where expected."""
    got, want = np.asarray(got, float), np.asarray(want, float)
    nan_got, nan_want = np.isnan(got), np.isnan(want)
    bad_nan = np.nonzero(nan_got != nan_want)[-1]
    assert not len(bad_nan), f"NaN mismatch at {[names[k] for k in bad_nan[:5]]}"
    both = ~nan_got & ~nan_want
    err = np.abs(got - want)
    ok = (err <= atol) | (err <= rtol * np.maximum(np.abs(got), np.abs(want)))
    bad = np.nonzero(~ok & both)
    assert not len(bad[-1]), f"{len(bad[-1])} values differ, first {names[bad[-1][0]]}: {got[bad][0]} vs {want[bad][0]}"


# ---------------------------------------------------------------------------- paper set
def test_paper_features_equal_reference_fixtures(shared_fixtures):
    expected = json.loads((shared_fixtures / "expected.json").read_text())
    assert tuple(expected["feature_names"]) == PAPER_FEATURE_NAMES
    patterns = np.load(shared_fixtures / "patterns.npz")
    keys = sorted(patterns.files, key=lambda k: int(k[1:]))
    got = compute_features([patterns[k].astype(np.float64) for k in keys], "paper").to_numpy()
    for row, key in zip(got, keys):
        want = [math.nan if v is None else v for v in (expected["patterns"][key]["features"][n] for n in PAPER_FEATURE_NAMES)]
        assert_features_close(row, want, rtol=1e-9)


@pytest.mark.parametrize("kind", PATTERN_KINDS)
def test_paper_features_equal_plain_implementation(kind):
    rng = np.random.default_rng(PATTERN_KINDS.index(kind))
    lengths = [1, 2, 3, 5, 8, 13, 31, 64, 100, 128, 177, 200]
    patterns = [causal_pattern(rng, n, kind) for n in lengths]
    got = compute_features(patterns, "paper").to_numpy()
    for n, pattern, row in zip(lengths, patterns, got):
        try:
            want = paper_features_plain(pattern)
        except ValueError:  # numpy cannot bin a range of a few ulps; the reference raises too
            continue
        assert_features_close(row, want)


def test_paper_histograms_match_numpy_counts_at_large_n():
    """Beyond n ~ 200 the log-gram self-cosines lie within ulps of 1, so the reference's own
    result depends on summation order; there we require the same histogram up to a handful
    of entries moving between neighbouring bins."""
    rng = np.random.default_rng(7)
    for n in (256, 300):
        a = causal_pattern(rng, n, "softmax")
        x = torch.as_tensor(a)
        want = np.histogram((x @ x.T).numpy(), bins=LOG_BIN_EDGES)[0]
        got = log_bin_counts((x @ x.T).reshape(1, -1))[0].numpy()
        assert np.abs(got - want).sum() <= 4
        row = compute_features([a], "paper").to_numpy()[0]
        plain = paper_features_plain(a)
        assert_features_close(row[:28], plain[:28])  # diag / first_tok: exact
        assert_features_close(row[28:], plain[28:], rtol=2e-3, names=PAPER_FEATURE_NAMES[28:])


@pytest.mark.parametrize("kernel", ["numba", "torch"])  # the CPU kernel and the one CUDA uses
def test_log_bin_counts_follow_numpy_histogram_rules(kernel):
    edges = LOG_BIN_EDGES.astype(np.float64)
    values = np.concatenate(
        [edges, np.nextafter(edges, -1), np.nextafter(edges, 2), [-1.0, -1e-300, -0.0, 0.0, 1.0, 1.5, 2.0, np.inf, np.nan]]
    )
    got = log_bin_counts(torch.as_tensor(values + 0.0)[None], kernel=kernel)[0].numpy()  # callers turn -0.0 into +0.0
    want = np.histogram(values[~np.isnan(values)], bins=LOG_BIN_EDGES)[0]
    assert np.array_equal(got, want)
    rng = np.random.default_rng(0)
    many = rng.random((3, 5000)) ** 4 * 1.1 - 0.01
    got = log_bin_counts(torch.as_tensor(many), kernel=kernel).numpy()
    for row_got, row in zip(got, many):
        assert np.array_equal(row_got, np.histogram(row, bins=LOG_BIN_EDGES)[0])
    dens = histogram_densities_plain(many[0])
    assert np.allclose(dens, np.histogram(many[0], bins=LOG_BIN_EDGES, density=True)[0])


def test_binning_kernels_agree_and_check_their_arguments():
    rng = np.random.default_rng(1)
    values = torch.as_tensor(rng.random((12, 4096)) ** 6 * 1.05)
    assert torch.equal(log_bin_counts(values, kernel="numba"), log_bin_counts(values, kernel="torch"))
    with pytest.raises(ValueError, match="kernel must be"):
        log_bin_counts(values, kernel="fast")


def test_symmetric_kernels_equal_full_binning_of_symmetric_grams():
    rng = np.random.default_rng(2)
    x = torch.as_tensor(rng.random((5, 40, 40)) ** 3)
    grams = torch.tril(x @ x.mT)
    grams = grams + torch.tril(grams, -1).mT  # exactly symmetric, as numpy's A @ A.T
    want = log_bin_counts(grams.reshape(5, -1), kernel="torch")
    assert torch.equal(symmetric_log_bin_counts(grams), want)
    norms = torch.diagonal(grams, dim1=1, dim2=2).sqrt()
    cosines = grams / (norms[:, :, None] * norms[:, None, :] + 1e-10) + 0.0
    assert torch.equal(symmetric_log_bin_counts(grams, cosine=True), log_bin_counts(cosines.reshape(5, -1), kernel="torch"))


def test_negative_zero_entries_count_as_zero():
    rng = np.random.default_rng(11)
    a = causal_pattern(rng, 9, "one_hot")
    signed = np.where(a == 0, -0.0, a)
    assert np.signbit(signed).any()
    assert_features_close(compute_features([signed], "paper").to_numpy()[0], paper_features_plain(a))


def test_batched_equals_one_by_one():
    rng = np.random.default_rng(1)
    patterns = [causal_pattern(rng, n, PATTERN_KINDS[n % len(PATTERN_KINDS)]) for n in (1, 4, 9, 30, 30, 61, 90, 2)]
    for fs in ("paper", "motifs"):
        batched = compute_features(patterns, fs).to_numpy()
        single = np.stack([compute_features([p], fs).to_numpy()[0] for p in patterns])
        assert_features_close(batched, single, rtol=1e-12, names=get_feature_set(fs).feature_names)
        padded = pad_patterns(patterns)  # one padded batch straight into the kernel
        direct = get_feature_set(fs).compute(padded).numpy()
        assert_features_close(direct, single, rtol=1e-12, names=get_feature_set(fs).feature_names)


def test_float32_fast_mode_is_close_to_float64():
    rng = np.random.default_rng(2)
    patterns = [causal_pattern(rng, n, "softmax") for n in (20, 50, 90)]
    f64 = compute_features(patterns, "motifs").to_numpy()
    f32 = compute_features(patterns, "motifs", dtype=torch.float32).to_numpy()
    assert np.allclose(f32, f64, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------------------- motifs set
def motifs_plain(a: np.ndarray) -> dict[str, float]:
    """The motif features of one pattern, row by row (the definitions in motifs.py)."""
    n = a.shape[0]
    rows = list(range(1, n)) if n > 1 else [0]
    w = np.array([1.0 / max(i, 4) for i in rows])
    w = w / w.sum()  # row weights 1 / max(i, 4)

    def wmean(values):
        return float(np.dot(w, values))

    sink = wmean([a[i, 0] for i in rows])

    def mass(d):  # share of the non-sink attention at offset d (first token excluded)
        return wmean([a[i, i - d] if i - d >= 1 else 0.0 for i in rows]) / (1 - sink + SINK_SMOOTHING)

    def entropy(i):
        p = a[i, : i + 1]
        p = p[p > 0]
        return float(-(p * np.log(p)).sum() / np.log(i + 1)) if i >= 1 else 0.0

    expected = [float((a[i] * (i - np.arange(n))).sum()) for i in range(n)]
    older = [sum(a[i, j] for j in range(1, n) if 2 * j < i) for i in rows]  # offsets d > i / 2
    col = np.mean([a[i] for i in rows], axis=0)  # column mass: rows weighted equally
    pos = col[col > 0]
    top = int(math.ceil(0.1 * (n - 1)))

    def mean_cos(vectors):  # pairs of distinct rows, weighted w_p w_q
        if len(vectors) == 1:
            return 1.0
        u = [v / np.linalg.norm(v) for v in vectors]
        pairs = [(p, q) for p in range(len(u)) for q in range(len(u)) if p != q]
        return float(sum(w[p] * w[q] * (u[p] @ u[q]) for p, q in pairs) / sum(w[p] * w[q] for p, q in pairs))

    offsets = [np.array([a[i, i - d] if d <= i else 0.0 for d in range(n)]) for i in rows]
    stripes = [np.mean([a[i, i - d] for i in range(d + 1, n)]) for d in range(2, (n - 1) // 2 + 1)]
    return {
        "sink": sink,
        "self": mass(0), "prev": mass(1), "offset2": mass(2), "offset3": mass(3),
        "near": sum(mass(d) for d in range(4, 9)), "far": wmean(older) / (1 - sink + SINK_SMOOTHING),
        "entropy": wmean([entropy(i) for i in rows]),
        "max_weight": wmean([a[i].max() for i in rows]),
        "distance": wmean([expected[i] / i if i else 0.0 for i in rows]),
        "log_distance": wmean([np.log1p(expected[i]) / np.log1p(i) if i else 0.0 for i in rows]),
        "key_spread": float(np.exp(-(pos * np.log(pos)).sum()) / n),
        "bar_mass": float(np.sort(col[1:])[::-1][:top].sum()),
        "row_similarity": mean_cos([a[i] for i in rows]),
        "offset_similarity": mean_cos(offsets),
        "stripe": max(stripes) if stripes else 0.0,
    }


@pytest.mark.parametrize("kind", PATTERN_KINDS)
def test_motif_features_equal_plain_definitions(kind):
    rng = np.random.default_rng(10 + PATTERN_KINDS.index(kind))
    lengths = [1, 2, 3, 4, 7, 12, 40, 97]
    patterns = [causal_pattern(rng, n, kind) for n in lengths]
    got = compute_features(patterns, "motifs")
    assert list(got.columns) == list(MOTIF_FEATURE_NAMES)
    for pattern, (_, row) in zip(patterns, got.iterrows()):
        want = motifs_plain(pattern)
        assert_features_close(row.to_numpy(), [want[k] for k in MOTIF_FEATURE_NAMES], rtol=1e-9, atol=1e-12,
                              names=MOTIF_FEATURE_NAMES)


def test_motif_features_are_bounded_and_never_nan():
    rng = np.random.default_rng(3)
    patterns = [causal_pattern(rng, n, kind) for kind in PATTERN_KINDS for n in (1, 2, 3, 10, 150)]
    f = compute_features(patterns, "motifs")
    assert np.isfinite(f.to_numpy()).all()
    assert (f >= -1e-12).all().all() and (f <= 1 + 1e-12).all().all()  # log_distance too, since revision 3
    shares = ["self", "prev", "offset2", "offset3", "near"]
    # the offset shares split the non-sink attention (what is left is the band of offsets > 8)
    rest = 1 - (f["sink"] + (1 - f["sink"] + SINK_SMOOTHING) * f[shares].sum(axis=1))
    assert (rest >= -1e-12).all()
    assert np.allclose(rest[[k for k, p in enumerate(patterns) if p.shape[0] <= 9]], 0.0)  # no offset > 8 there


IDEAL_KINDS = ("prev", "diag", "uniform", "bos", "mixture")


def test_motif_features_are_length_robust():
    """The same ideal motif (previous token, self, uniform, sink + uniform, a mixture) at 32,
    64 and 256 tokens gives nearly the same value of every feature. Revision 2 (equal row
    weights, far = offsets > 8, log_distance in log tokens) moved log_distance by up to 1.9
    and far / near by up to 0.8 between 32 and 256 tokens on these patterns."""
    rng = np.random.default_rng(4)
    for kind in IDEAL_KINDS:
        f = compute_features([causal_pattern(rng, n, kind) for n in (32, 64, 256)], "motifs")
        assert np.abs(f.iloc[1] - f.iloc[2]).max() < 0.1, (kind, (f.iloc[1] - f.iloc[2]).abs().idxmax())
        assert np.abs(f.iloc[0] - f.iloc[2]).max() < 0.15, (kind, (f.iloc[0] - f.iloc[2]).abs().idxmax())
        assert np.abs(f.iloc[0] - f.iloc[2]).mean() < 0.06, kind


def test_motif_far_and_log_distance_are_relative_to_the_context():
    """far of a uniform head moves little with length (0.30 at 16 tokens, 0.41 at 512; the
    share beyond offset 8 of revision 2 goes from 0.11 to 0.87); a previous-token head
    has far = 0; log_distance is 0 for self and 1 for attention on the sink."""
    rng = np.random.default_rng(6)
    f = compute_features([causal_pattern(rng, n, "uniform") for n in (16, 64, 512)], "motifs")
    assert f["far"].between(0.25, 0.45).all() and np.ptp(f["far"]) < 0.15
    f = compute_features([causal_pattern(rng, 100, k) for k in ("prev", "diag")] + [np.eye(100)[[0] * 100]], "motifs")
    assert f["far"].iloc[0] == 0 and f["log_distance"].iloc[1] == 0 and f["log_distance"].iloc[2] == pytest.approx(1.0)


def test_motif_row_weights_favour_early_positions():
    """Rows weigh 1 / max(i, 4): a 256-token prompt keeps about 72% of its weight on the first 64 rows."""
    from motif_widgets.features.motifs import row_weights

    w = row_weights(pad_patterns([torch.eye(256, dtype=torch.float64), torch.eye(1, dtype=torch.float64)]))
    assert torch.allclose(w.sum(1), torch.ones(2, dtype=torch.float64))
    assert w[0, 0] == 0 and w[1, 0] == 1 and float(w[0, 1:64].sum()) == pytest.approx(0.72, abs=0.01)
    assert w[0, 1] == w[0, 4] == 2 * w[0, 8]


def test_motif_features_separate_the_visible_motifs():
    rng = np.random.default_rng(5)
    f = compute_features([causal_pattern(rng, 80, k) for k in ("prev", "diag", "bos", "uniform")], "motifs")
    f.index = ["prev", "diag", "sink", "uniform"]
    # row 1's previous token is the first token, and row 1 weighs ~ 0.06 (prev share 0.949)
    assert f.loc["prev", "prev"] > 0.94 and f.loc["diag", "self"] > 0.95 and f.loc["sink", "sink"] > 0.5
    assert f.loc["uniform", "entropy"] > 0.99 and f.loc["prev", "entropy"] < 0.01
    assert f.loc["prev", "offset_similarity"] > 0.95 and f.loc["prev", "row_similarity"] < 0.05
    # an induction-like stripe: every second-half token attends 20 tokens back
    a = np.eye(41)
    for i in range(21, 41):
        a[i] = 0
        a[i, i - 19] = 1.0
    stripe = compute_features([a], "motifs")["stripe"].iloc[0]
    assert stripe > 0.9


# ---------------------------------------------------------------------------- registry / API
def test_registry_accepts_user_features():
    mine = get_feature_set("motifs").extended("motifs+corner")
    last_row = lambda b: b.patterns[torch.arange(b.size), b.lengths - 1, 0]  # noqa: E731 (patterns are padded)
    mine.add("corner", last_row, "weight of the last row on the first token")
    register_feature_set(mine, overwrite=True)
    rng = np.random.default_rng(6)
    pats = [causal_pattern(rng, n, "softmax") for n in (5, 9)]
    f = compute_features(pats, "motifs+corner")
    assert list(f.columns) == list(MOTIF_FEATURE_NAMES) + ["corner"]
    assert f["corner"].tolist() == pytest.approx([p[-1, 0] for p in pats])
    with pytest.raises(ValueError, match="already has"):
        mine.add("corner", lambda b: b.lengths.double())
    with pytest.raises(ValueError, match="already registered"):
        register_feature_set(FeatureSet("motifs").add("x", lambda b: b.lengths.double()))
    with pytest.raises(ValueError, match="unknown feature set"):
        compute_features(pats, "nope")
    broken = FeatureSet("broken").add_block(["a", "b"], lambda b: b.lengths[:, None].double())
    with pytest.raises(ValueError, match="returned shape"):
        compute_features(pats, broken)


def test_compute_features_accepts_arrays_tensors_and_stacks():
    rng = np.random.default_rng(8)
    p = causal_pattern(rng, 12, "softmax")
    as_list = compute_features([p, torch.as_tensor(p)])
    stacked = compute_features(np.stack([p, p]))
    single = compute_features(p)
    assert isinstance(as_list, pd.DataFrame) and as_list.shape == (2, len(MOTIF_FEATURE_NAMES))
    assert np.allclose(as_list.to_numpy(), stacked.to_numpy()) and np.allclose(single.to_numpy(), stacked.to_numpy()[:1])


@pytest.mark.parametrize(
    "bad, message",
    [
        ([np.triu(np.ones((3, 3))) / 3], "not causal"),
        ([np.tril(np.ones((3, 3)))], "do not sum to 1"),
        ([np.full((2, 2), np.nan)], "NaN"),
        ([np.array([[1.0, 0.0], [-0.5, 1.5]])], "negative"),
        ([np.ones((2, 3))], "square"),
        (np.ones((2, 2, 2, 2)), "expected"),
        ([], "no patterns"),
        ([np.zeros((0, 0))], "non-empty"),
    ],
)
def test_bad_patterns_raise_clear_errors(bad, message):
    with pytest.raises(ValueError, match=message):
        compute_features(bad, "paper")


def test_paper_features_kernel_runs_on_padded_mixed_batch():
    rng = np.random.default_rng(9)
    pats = [causal_pattern(rng, n, "sink") for n in (3, 17, 5)]
    batch = pad_patterns(pats)
    out = paper_features(batch).numpy()
    for row, p in zip(out, pats):
        assert_features_close(row, paper_features_plain(p))


def test_slices_are_sized_by_device_and_do_not_change_features():
    """CUDA slices a batch far less than the CPU (each slice costs hundreds of launches there);
    slicing never changes the features."""
    from motif_widgets.features.registry import CHUNK_ELEMENTS, CUDA_CHUNK_ELEMENTS, chunk_elements, feature_matrix

    assert chunk_elements("cpu") == CHUNK_ELEMENTS and chunk_elements(torch.device("cuda")) == CUDA_CHUNK_ELEMENTS
    assert CUDA_CHUNK_ELEMENTS // (512 * 512) == 256  # 16 prompts x 32 heads at 512 tokens: 2 slices
    rng = np.random.default_rng(4)
    batch = pad_patterns([causal_pattern(rng, n, PATTERN_KINDS[n % len(PATTERN_KINDS)]) for n in (3, 9, 17, 30, 30, 12)])
    fs = get_feature_set("motifs")
    whole = feature_matrix(fs, batch)
    sliced = feature_matrix(fs, batch, max_elements=2 * 30 * 30)  # three slices of two patterns
    assert torch.allclose(whole, sliced, rtol=0, atol=1e-15)


def test_compiled_motif_features_equal_eager(monkeypatch):
    """MOTIF_WIDGETS_COMPILE=1 runs the motifs block through torch.compile (fused passes): the
    same features to float rounding, at two lengths (dynamic shapes: no wrong reuse)."""
    from motif_widgets.features.kernels import COMPILE_ENV, compile_enabled, use_compile

    rng = np.random.default_rng(8)
    for lengths in ((5, 12, 40), (64, 64)):
        patterns = [causal_pattern(rng, n, PATTERN_KINDS[k % len(PATTERN_KINDS)]) for k, n in enumerate(lengths)]
        eager = compute_features(patterns, "motifs", dtype=torch.float32).to_numpy()
        with use_compile(True):
            compiled = compute_features(patterns, "motifs", dtype=torch.float32).to_numpy()
        np.testing.assert_allclose(compiled, eager, rtol=1e-5, atol=2e-6)
    monkeypatch.setenv(COMPILE_ENV, "yes")
    with pytest.raises(ValueError, match=COMPILE_ENV):
        compile_enabled()
    with pytest.raises(ValueError, match="on must be True or False"):
        with use_compile("1"):
            pass
