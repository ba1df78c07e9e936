"""Inputs of the feature kernels (compute_features, pad_patterns, check_patterns): each bad
kind of input raises a TypeError / ValueError that names the argument and what was expected;
reduced-precision (bfloat16 / float16) patterns and tensors that require grad are accepted."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from motif_widgets import compute_features
from motif_widgets.features import check_patterns, pad_patterns
from motif_widgets.features.batch import PatternBatch, row_sum_tol, upper_tol

LENGTHS = (1, 2, 7, 33, 64, 150)


def softmax_patterns(dtype: torch.dtype, by_hand: bool = False, lengths=LENGTHS, seed: int = 1) -> list[torch.Tensor]:
    """Causal softmax patterns of random scores, computed in `dtype` (torch.softmax, or
    exp / sum / divide all in `dtype` when by_hand) from the same float64 scores."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for n in lengths:
        s = torch.randn(n, n, generator=g, dtype=torch.float64) * 2
        s = s.masked_fill(torch.triu(torch.ones(n, n, dtype=torch.bool), 1), float("-inf")).to(dtype)
        if by_hand:
            e = torch.exp(s - s.amax(-1, keepdim=True))
            out.append(e / e.sum(-1, keepdim=True))
        else:
            out.append(torch.softmax(s, -1))
    return out


def good(n: int = 3) -> np.ndarray:
    return np.tril(np.ones((n, n))) / np.arange(1, n + 1)[:, None]


# ------------------------------------------------------------------ bad inputs: one per class
@pytest.mark.parametrize(
    "bad, error, message",
    [
        (np.zeros((0, 3, 3)), ValueError, r"patterns has shape \(0, 3, 3\): no patterns given"),
        (torch.zeros((0, 3, 3)), ValueError, r"patterns has shape \(0, 3, 3\): no patterns given"),
        (None, TypeError, r"patterns must be a \[n, n\] or \[B, n, n\] array .*; got NoneType"),
        ("L17H3", TypeError, r"patterns must be a \[n, n\] or \[B, n, n\] array .*; got str"),
        ({"p": good()}, TypeError, r"patterns must be a \[n, n\] or \[B, n, n\] array .*; got dict"),
        (42, TypeError, r"patterns must be .*; got int"),
        ([[1.0], [0.5, 0.5]], ValueError, r"patterns is a ragged nested list \(rows of lengths \[1, 2\]\)"),
        ([[[1.0], [0.5, 0.5]]], ValueError, r"patterns\[0\] is a ragged nested sequence"),
        (np.ones(3) / 3, ValueError, r"patterns has shape \(3,\); expected \[n, n\], \[B, n, n\]"),
        ([np.ones(3) / 3], ValueError, r"patterns\[0\] has shape \(3,\); expected a non-empty square \[n, n\]"),
        (np.ones((2, 3)) / 3, ValueError, r"patterns has shape \(2, 3\); expected a non-empty square \[n, n\]"),
        ([good(), np.ones((2, 3)) / 3], ValueError, r"patterns\[1\] has shape \(2, 3\); expected a non-empty square"),
        ([good(), "abc"], TypeError, r"patterns\[1\] must be a \[n, n\] numpy array, torch tensor or nested list"),
        ([np.array([["a", "b"], ["c", "d"]])], TypeError, r"patterns\[0\] must hold numbers, got dtype <U1"),
        ([np.ones((2, 2, 2, 2))], ValueError, r"patterns\[0\] has shape \(2, 2, 2, 2\); expected a non-empty square"),
    ],
)
def test_compute_features_names_patterns_and_what_was_expected(bad, error, message):
    with pytest.raises(error, match=message):
        compute_features(bad)


def test_invalid_pattern_values_name_the_pattern_in_patterns():
    leaky = good(3).T.copy()  # attends to future tokens
    with pytest.raises(ValueError, match=r"patterns\[1\] \(n = 3\) is not causal: entries above the diagonal exceed 1e-06"):
        compute_features([good(5), leaky])
    with pytest.raises(ValueError, match=r"patterns\[0\] \(n = 3\) has rows that do not sum to 1 \(tolerance 0\.001"):
        compute_features(np.stack([good(3) * 1.1, good(3)]))
    with pytest.raises(ValueError, match=r"patterns\[0\] \(n = 2\) contains NaN"):
        compute_features([[[1.0, 0.0], [np.nan, 0.5]]])


@pytest.mark.parametrize(
    "bad, error, message",
    [
        (None, TypeError, r"patterns must be a sequence of \[n, n\] arrays or tensors, got NoneType"),
        ("abc", TypeError, r"patterns must be a sequence of \[n, n\] arrays or tensors, got str"),
        ({"p": good()}, TypeError, r"patterns must be a sequence of \[n, n\] arrays or tensors, got dict"),
        ([], ValueError, r"no patterns given: patterns must hold at least one \[n, n\] pattern"),
        (np.zeros((0, 3, 3)), ValueError, r"no patterns given"),
        ([np.ones(4) / 4], ValueError, r"patterns\[0\] has shape \(4,\); expected a non-empty square \[n, n\]"),
        ([good(), np.ones((3, 2))], ValueError, r"patterns\[1\] has shape \(3, 2\); expected a non-empty square"),
        ([[[1.0], [0.5, 0.5]]], ValueError, r"patterns\[0\] is a ragged nested sequence"),
        ([good(), None], TypeError, r"patterns\[1\] must be a \[n, n\] numpy array, torch tensor or nested list.*NoneType"),
    ],
)
def test_pad_patterns_names_patterns_and_what_was_expected(bad, error, message):
    with pytest.raises(error, match=message):
        pad_patterns(bad)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.int64, "float32", np.float64])
def test_compute_dtype_must_be_float32_or_float64(dtype):
    # float16 used to die inside numba with the paper set; now the argument is refused up front
    with pytest.raises(ValueError, match=r"dtype must be torch\.float64 or torch\.float32 .*got"):
        compute_features([good()], "paper", dtype=dtype)


def test_pad_patterns_refuses_a_non_float_batch_dtype():
    with pytest.raises(ValueError, match=r"dtype must be a floating torch dtype .*got torch\.int32"):
        pad_patterns([good()], dtype=torch.int32)


# ------------------------------------------------------------------ reduced precision
def test_low_precision_tolerances_follow_the_source_dtype():
    assert row_sum_tol(torch.float64, 4096) == row_sum_tol(torch.float32, 4096) == 1e-3
    assert upper_tol(torch.float64) == upper_tol(torch.float32) == 1e-6
    bf16_eps, fp16_eps = torch.finfo(torch.bfloat16).eps, torch.finfo(torch.float16).eps
    assert row_sum_tol(torch.bfloat16, 64) == pytest.approx(bf16_eps * 6)
    assert row_sum_tol(torch.float16, 64) == pytest.approx(fp16_eps * 6)
    assert upper_tol(torch.bfloat16) == pytest.approx(4 * bf16_eps)
    lengths = torch.tensor([1, 64, 1024])
    assert torch.allclose(row_sum_tol(torch.bfloat16, lengths), torch.tensor([4.25, 6, 12], dtype=torch.float64) * bf16_eps)


@pytest.mark.parametrize("by_hand", [False, True])
def test_check_patterns_uses_the_source_dtype(by_hand):
    pats = softmax_patterns(torch.bfloat16, by_hand)
    worst = max(float((p.double().sum(-1) - 1).abs().max()) for p in pats)
    assert worst > 1e-3  # bfloat16 rows really fail the float32 / float64 tolerance ...
    batch = pad_patterns(pats)  # float64, as the collector converts them
    with pytest.raises(ValueError, match=r"do not sum to 1 \(tolerance 0\.001 for torch\.float64\)"):
        check_patterns(batch)
    check_patterns(batch, source_dtype=torch.bfloat16)  # ... and pass with the model's dtype
    check_patterns(pad_patterns(pats, dtype=torch.bfloat16))  # the batch's own dtype is the default
    # float16 rows err by up to ~0.7 eps = 7e-4: within the float64 floor, and within their own
    fp16 = pad_patterns(softmax_patterns(torch.float16, by_hand))
    check_patterns(fp16)
    check_patterns(fp16, source_dtype=torch.float16)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_tolerance_still_refuses_broken_patterns(dtype):
    p = softmax_patterns(dtype, lengths=(16,))[0].double()
    off = p.clone()
    off[5] *= 1.2  # a row summing to 1.2: far outside any rounding
    with pytest.raises(ValueError, match=r"pattern 0 \(n = 16\) has rows that do not sum to 1"):
        check_patterns(pad_patterns([off]), source_dtype=dtype)
    leaky = p.clone()
    leaky[2, 9] = 0.1  # a future token
    with pytest.raises(ValueError, match="is not causal"):
        check_patterns(pad_patterns([leaky]), source_dtype=dtype)
    with pytest.raises(TypeError, match="source_dtype must be a torch dtype"):
        check_patterns(pad_patterns([p]), source_dtype="bfloat16")


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("by_hand", [False, True])
def test_low_precision_patterns_give_features_close_to_float64(dtype, by_hand):
    """bf16 / fp16 softmax patterns are accepted, and upcast. Tolerances (measured worst case
    in brackets): motif features within 0.01 absolute for bfloat16 [0.0025] and 0.005 for
    float16 [0.0017]; the paper's diag / first_tok statistics within 1e-3 + 5% (bf16) [1.6%]
    or 1e-3 + 2% (fp16) [0.6%] relative, with NaN where float64 has NaN. (The paper's
    histogram features move by thousands, as in float32 mode: rounding moves matrix entries
    across bin edges, so they are not compared.)"""
    ref_pats = softmax_patterns(torch.float64)
    pats = softmax_patterns(dtype, by_hand)
    motif_tol = 0.01 if dtype == torch.bfloat16 else 0.005
    got, want = compute_features(pats).to_numpy(), compute_features(ref_pats).to_numpy()
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, want, rtol=0, atol=motif_tol)
    rtol = 0.05 if dtype == torch.bfloat16 else 0.02
    got, want = compute_features(pats, "paper").to_numpy(), compute_features(ref_pats, "paper").to_numpy()
    np.testing.assert_array_equal(np.isnan(got[:, :28]), np.isnan(want[:, :28]))
    np.testing.assert_allclose(got[:, :28], want[:, :28], rtol=rtol, atol=1e-3)
    # the float32 compute mode takes them too
    assert np.isfinite(compute_features(pats, dtype=torch.float32).to_numpy()).all()


def test_float16_numpy_and_stacked_low_precision_inputs():
    pats = softmax_patterns(torch.float64, lengths=(9, 9, 9))
    want = compute_features(pats).to_numpy()
    as_np16 = [p.numpy().astype(np.float16) for p in pats]
    np.testing.assert_allclose(compute_features(as_np16).to_numpy(), want, atol=0.005, rtol=0)
    np.testing.assert_allclose(compute_features(np.stack(as_np16)).to_numpy(), want, atol=0.005, rtol=0)
    stacked_bf16 = torch.stack(pats).to(torch.bfloat16)
    np.testing.assert_allclose(compute_features(stacked_bf16).to_numpy(), want, atol=0.01, rtol=0)
    batch = pad_patterns(list(stacked_bf16))
    assert batch.dtype == torch.float64 and torch.equal(batch.patterns[0], stacked_bf16[0].double())


# ------------------------------------------------------------------ autograd
@pytest.mark.parametrize("feature_set", ["motifs", "paper"])
def test_tensors_that_require_grad_are_detached(feature_set):
    leaf_scores = torch.randn(3, 12, 12, dtype=torch.float64, requires_grad=True)
    mask = torch.triu(torch.ones(12, 12, dtype=torch.bool), 1)
    pats = torch.softmax(leaf_scores.masked_fill(mask, float("-inf")), -1)  # non-leaf, has grad_fn
    assert pats.requires_grad
    want = compute_features(pats.detach(), feature_set).to_numpy()
    for given in (pats, list(pats), [p.detach().requires_grad_() for p in pats]):
        got = compute_features(given, feature_set).to_numpy()
        np.testing.assert_array_equal(got, want)
    batch = pad_patterns(list(pats))
    assert not batch.patterns.requires_grad and batch.patterns.grad_fn is None
    assert leaf_scores.grad is None  # nothing flowed back into the caller's graph


def test_pattern_batch_of_grad_tensor_checks_without_error():
    p = torch.tensor(good(4), requires_grad=True)
    check_patterns(pad_patterns([p]))
    check_patterns(PatternBatch(p.detach()[None], torch.tensor([4])))


def test_a_row_sum_that_overflows_is_not_called_infinite():
    """Finite entries whose row sum overflows (float16) are named for their sums, not as infinite."""
    from motif_widgets.features import PatternBatch, check_patterns

    a = torch.zeros(2, 3, 3, dtype=torch.float16)
    a[:, 0, 0] = a[:, 1, 0] = a[:, 2, 0] = 1.0
    a[1, 2, :] = torch.tensor([60000.0, 60000.0, 1.0])  # sum overflows to inf, every entry finite
    batch = PatternBatch(a, torch.tensor([3, 3]))
    with pytest.raises(ValueError, match=r"second \(n = 3\) has rows that do not sum to 1"):
        check_patterns(batch, iter(["first", "second"]))
    a[1, 2, 2] = float("inf")
    with pytest.raises(ValueError, match=r"second \(n = 3\) contains NaN or infinite values"):
        check_patterns(PatternBatch(a, torch.tensor([3, 3])), iter(["first", "second"]))
