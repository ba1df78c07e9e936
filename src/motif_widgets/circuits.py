"""Circuits and interventions per attention head: weight statistics (OV copying, QK/OV norms
and effective ranks, Q/K/V composition), exact ablations, attribution patching, runs with
frozen attention patterns, and how much of a head's effect its best pattern template keeps.

Definitions follow *A Mathematical Framework for Transformer Circuits* (Elhage et al. 2021)
in the row-vector convention of TransformerLens (a residual vector x is a row, x @ W):
W_QK = W_Q W_K^T, W_OV = W_V W_O, full OV circuit W_E W_OV W_U.

Head ids are "model:L{layer}H{head}" with the model's name as
:func:`motif_widgets.sources.source_for` gives it ("smollm2-135m:L18H6"); "L18H6" is accepted
for the one model at hand. Functions take any model :func:`~motif_widgets.sources.source_for`
accepts; :func:`frozen_run` and :func:`motif_sufficiency` need a TransformerLens model
(HookedTransformer or TransformerBridge, for ``hook_pattern``); the others also take a Hugging
Face causal LM (z = the input of ``o_proj``).

Losses are mean next-token cross-entropies: per prompt the mean over its n - 1 predictions,
and over prompts the mean of the per-prompt losses (every prompt weighs the same).
"""

from __future__ import annotations

import contextlib
import functools
import math
import re
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch

from ._checks import check_choice, check_int
from .prompts import Prompt, as_prompts
from .sources import TokenizedPrompt, pad_token_batch, source_for

TEMPLATES = ("previous_token", "first_token", "self", "uniform", "induction", "recent")
ABLATION_METHODS = ("mean", "zero")
COMPOSITION_KINDS = ("q", "k", "v")
RECENT_WINDOW = 4
#: which predictions the loss averages: "all", or "repeated" — those made at a token that
#: occurred earlier in the prompt (the second copy of a repeated sequence: where induction helps)
LOSS_ON = ("all", "repeated")
#: logits held at once ([rows, positions, vocab] float32 elements) when batching ablations
_MAX_LOGIT_ELEMENTS = 2**28
_HEAD_RE = re.compile(r"^(?:(?P<model>.+):)?L(?P<layer>\d+)H(?P<head>\d+)$")


# ---------------------------------------------------------------------------------------
# model access
# ---------------------------------------------------------------------------------------
def _is_tl(model) -> bool:
    return hasattr(model, "run_with_hooks") and hasattr(model, "cfg")


def _is_bridge(model) -> bool:
    return _is_tl(model) and "original_model" in vars(model)


def _unwrap(module):
    """The wrapped original module of a TransformerBridge component (the module itself otherwise)."""
    for _ in range(8):
        inner = getattr(module, "_modules", {}).get("_original_component")
        if inner is None:
            inner = getattr(module, "original_component", None)
        if inner is None or inner is module:
            return module
        module = inner
    return module


def _hf_decoder_layers(hf) -> list:
    base = hf.base_model
    layers = getattr(base, "layers", None)
    if layers is None:
        raise ValueError(f"cannot find the decoder layers of {type(hf).__name__} (expected model.layers)")
    return list(layers)


def _n_layers_heads(model) -> tuple[int, int]:
    if _is_tl(model):
        return int(model.cfg.n_layers), int(model.cfg.n_heads)
    cfg = model.config
    cfg = getattr(cfg, "text_config", None) or cfg
    return int(cfg.num_hidden_layers), int(cfg.num_attention_heads)


def _model_name(model, tokenizer=None) -> str:
    return source_for(model, tokenizer=tokenizer).name


def head_id(name: str, layer: int, head: int) -> str:
    return f"{name}:L{layer}H{head}"


def parse_heads(model, heads, name: str | None = None) -> list[tuple[int, int]]:
    """(layer, head) pairs of head ids ("name:L5H1", "L5H1") or (layer, head) pairs; None = all heads.

    Raises ValueError naming a head the model lacks (or a head id of another model)."""
    n_layers, n_heads = _n_layers_heads(model)
    name = name or _model_name(model)
    if heads is None:
        return [(l, h) for l in range(n_layers) for h in range(n_heads)]
    if isinstance(heads, (str, tuple)) and not (isinstance(heads, tuple) and heads and isinstance(heads[0], (str, tuple))):
        heads = [heads]
    out = []
    for item in heads:
        if isinstance(item, str):
            m = _HEAD_RE.match(item.strip())
            if m is None:
                raise ValueError(f"head {item!r} is not a head id like '{name}:L0H0' or 'L0H0'")
            if m.group("model") is not None and m.group("model") != name:
                raise ValueError(f"head {item!r} is not a head of model {name!r}")
            layer, head = int(m.group("layer")), int(m.group("head"))
        elif isinstance(item, tuple) and len(item) == 2:
            layer = check_int("head layer", item[0], minimum=0)
            head = check_int("head index", item[1], minimum=0)
            item = f"L{layer}H{head}"
        else:
            raise ValueError(f"head {item!r} is not a head id like '{name}:L0H0' or a (layer, head) pair")
        if layer >= n_layers or head >= n_heads:
            raise ValueError(f"model {name!r} has no head {item!r} ({n_layers} layers x {n_heads} heads)")
        if (layer, head) not in out:
            out.append((layer, head))
    if not out:
        raise ValueError("no heads given")
    return out


# ---------------------------------------------------------------------------------------
# 1. weight statistics
# ---------------------------------------------------------------------------------------
@dataclass
class HeadWeights:
    """Per-head weight matrices (float64, row-vector convention), norm weights folded in.

    W_Q, W_K, W_V: [layers, heads, d_model, d_head] (K and V repeated per query head under
    grouped-query attention); W_O: [layers, heads, d_head, d_model]; unembed_embed: the
    [d_model, d_model] matrix W_U W_E (W_U centred over the vocabulary, final-norm weight folded).
    """

    W_Q: torch.Tensor
    W_K: torch.Tensor
    W_V: torch.Tensor
    W_O: torch.Tensor
    unembed_embed: torch.Tensor
    folded: tuple[str, ...]
    #: the folded norm scales per layer (ones where a model has no such norm): "input" [L, D]
    #: (into W_Q, W_K, W_V), "q" / "k" [L, d] (q/k norms), "post" [L, D] (post-attention norm, into W_O)
    scales: dict[str, torch.Tensor] | None = None


def _norm_scale(module) -> torch.Tensor | None:
    """The per-channel scale of a (RMS/Layer) norm: weight, or 1 + weight for Gemma norms."""
    if module is None:
        return None
    module = _unwrap(module)
    w = getattr(module, "weight", None)
    if w is None:
        w = getattr(module, "w", None)
    if not isinstance(w, torch.Tensor):
        return None
    w = w.detach().to(torch.float64)
    return 1.0 + w if "Gemma" in type(module).__name__ else w


def _unembed_embed(
    W_E: torch.Tensor,
    W_U_rows: torch.Tensor,
    final_scale,
    embed_scale: float = 1.0,
    chunk: int = 16384,
    dtype: torch.dtype = torch.float32,
):
    """W_U W_E [d_model, d_model] (float64 result), W_U centred over the vocabulary (each
    residual direction's mean logit removed: softmax-invariant), the final norm's scale folded in.

    W_E: [vocab, d_model]; W_U_rows: the unembedding as [vocab, d_model] (lm_head.weight, W_U^T).
    Each vocabulary chunk's product is computed in ``dtype`` (float32 by default: the weights
    are float32 or narrower, and a float64 product of a 262k vocabulary dominated the cost)
    and accumulated into float64; the unembedding rows are centred before the product (their
    mean from a first pass). With tied embeddings (W_U = W_E) the product is the Gram matrix of
    the centred embeddings, of which only the upper-triangle blocks are computed."""
    D = W_E.shape[1]
    tied = W_U_rows.shape == W_E.shape and W_U_rows.data_ptr() == W_E.data_ptr() and W_U_rows.stride() == W_E.stride()
    n = W_E.shape[0]
    # pass 1: the mean unembedding row (float64 sums of chunks), so that the products below are
    # of centred rows: no large uncentred sum that the centring would cancel (float32-safe)
    sum_u = torch.zeros(D, dtype=torch.float64)
    for s in range(0, n, chunk):
        sum_u += W_U_rows[s : s + chunk].detach().to(dtype).sum(0).double()
    mean_u = (sum_u / n).to(dtype)
    P = torch.zeros(D, D, dtype=torch.float64)
    half = D // 2
    for s in range(0, n, chunk):
        e = W_E[s : s + chunk].detach().to(dtype)
        if tied:  # sum_v (e_v - mu)^T e_v = sum_v (e_v - mu)^T (e_v - mu): a Gram matrix, upper blocks only
            c = e - mean_u
            a, b = c[:, :half], c[:, half:]
            P[:half, :half] += (a.T @ a).double()
            P[:half, half:] += (a.T @ b).double()
            P[half:, half:] += (b.T @ b).double()
        else:
            u = W_U_rows[s : s + chunk].detach().to(dtype) - mean_u
            P += (u.T @ e).double()
    if tied:
        P[half:, :half] = P[:half, half:].T
    P *= embed_scale
    if final_scale is not None:
        P = final_scale[:, None] * P
    return P


def _unit_scales(L: int, D: int, d: int) -> dict[str, torch.Tensor]:
    one = lambda n: torch.ones(L, n, dtype=torch.float64)  # noqa: E731
    return {"input": one(D), "q": one(d), "k": one(d), "post": one(D)}


def _tl_weights(model, dtype: torch.dtype = torch.float32) -> HeadWeights:
    W_Q = model.W_Q.detach().to(torch.float64).clone()
    W_K = model.W_K.detach().to(torch.float64).clone()
    W_V = model.W_V.detach().to(torch.float64).clone()
    W_O = model.W_O.detach().to(torch.float64).clone()
    folded = []
    L, _, D, d = W_Q.shape
    scales = _unit_scales(L, D, d)
    for l, block in enumerate(model.blocks):
        g = _norm_scale(getattr(block, "ln1", None))
        if g is not None:
            scales["input"][l] = g
            W_Q[l] *= g[None, :, None]
            W_K[l] *= g[None, :, None]
            W_V[l] *= g[None, :, None]
            folded.append(f"blocks.{l}.ln1")
        for attr, key, W in (("q_norm", "q", W_Q), ("k_norm", "k", W_K)):  # Gemma-3-style q/k norms over d_head
            s = _norm_scale(getattr(block.attn, attr, None))
            if s is not None and s.shape == (d,):
                scales[key][l] = s
                W[l] *= s[None, None, :]
                folded.append(f"blocks.{l}.attn.{attr}")
        s = _norm_scale(getattr(block, "ln1_post", None))  # Gemma: a norm on the attention output
        if s is not None:
            scales["post"][l] = s
            W_O[l] *= s[None, None, :]
            folded.append(f"blocks.{l}.ln1_post")
    g_final = _norm_scale(getattr(model, "ln_final", None))
    if g_final is not None:
        folded.append("ln_final")
    P = _unembed_embed(model.W_E, model.W_U.T, g_final, dtype=dtype)
    return HeadWeights(W_Q, W_K, W_V, W_O, P, tuple(folded), scales)


def _hf_weights(hf, dtype: torch.dtype = torch.float32) -> HeadWeights:
    cfg = getattr(hf.config, "text_config", None) or hf.config
    H = int(cfg.num_attention_heads)
    KV = int(getattr(cfg, "num_key_value_heads", None) or H)
    D = int(cfg.hidden_size)
    d = int(getattr(cfg, "head_dim", None) or D // H)
    rep = H // KV
    Ws = {k: [] for k in ("Q", "K", "V", "O")}
    folded = []
    scales = _unit_scales(int(cfg.num_hidden_layers), D, d)
    for l, layer in enumerate(_hf_decoder_layers(hf)):
        layer = _unwrap(layer)
        attn = _unwrap(layer.self_attn)
        wq = _unwrap(attn.q_proj).weight.detach().to(torch.float64)  # [H*d, D]
        wk = _unwrap(attn.k_proj).weight.detach().to(torch.float64)  # [KV*d, D]
        wv = _unwrap(attn.v_proj).weight.detach().to(torch.float64)
        wo = _unwrap(attn.o_proj).weight.detach().to(torch.float64)  # [D, H*d]
        q = wq.reshape(H, d, D).transpose(1, 2)  # [H, D, d]
        k = wk.reshape(KV, d, D).transpose(1, 2).repeat_interleave(rep, dim=0)
        v = wv.reshape(KV, d, D).transpose(1, 2).repeat_interleave(rep, dim=0)
        o = wo.T.reshape(H, d, D)  # [H, d, D]
        g = _norm_scale(getattr(layer, "input_layernorm", None))
        if g is not None:
            scales["input"][l] = g
            q, k, v = q * g[None, :, None], k * g[None, :, None], v * g[None, :, None]
            folded.append(f"layers.{l}.input_layernorm")
        for attr, tgt in (("q_norm", "q"), ("k_norm", "k")):
            s = _norm_scale(getattr(attn, attr, None))
            if s is not None:
                scales[tgt][l] = s
                if tgt == "q":
                    q = q * s[None, None, :]
                else:
                    k = k * s[None, None, :]
                folded.append(f"layers.{l}.self_attn.{attr}")
        if hasattr(layer, "pre_feedforward_layernorm"):  # Gemma: post_attention_layernorm is on the attention output
            s = _norm_scale(getattr(layer, "post_attention_layernorm", None))
            if s is not None:
                scales["post"][l] = s
                o = o * s[None, None, :]
                folded.append(f"layers.{l}.post_attention_layernorm")
        for key, val in zip("QKVO", (q, k, v, o)):
            Ws[key].append(val)
    emb = _unwrap(hf.get_input_embeddings())
    embed_scale = float(getattr(emb, "scalar_embed_scale", 1.0) or 1.0)
    out_emb = hf.get_output_embeddings()
    lm_head = _unwrap(out_emb) if out_emb is not None else emb
    g_final = _norm_scale(getattr(hf.base_model, "norm", None))
    if g_final is not None:
        folded.append("norm")
    P = _unembed_embed(emb.weight, lm_head.weight, g_final, embed_scale, dtype=dtype)
    stack = {k: torch.stack(v) for k, v in Ws.items()}
    return HeadWeights(stack["Q"], stack["K"], stack["V"], stack["O"], P, tuple(folded), scales)


#: precision of the vocabulary-sized W_U W_E product in weight_stats (accumulated in float64 either way)
PRECISIONS = ("float32", "float64")


def head_weights(model, precision: str = "float32") -> HeadWeights:
    """The per-head matrices of a model (see :class:`HeadWeights`); ``precision``: of the
    vocabulary-sized product W_U W_E (chunks in that precision, accumulated in float64)."""
    dtype = {"float32": torch.float32, "float64": torch.float64}[check_choice("precision", precision, PRECISIONS)]
    if _is_tl(model) and not _is_bridge(model):
        return _tl_weights(model, dtype)
    from transformers import PreTrainedModel

    hf = model.original_model if _is_bridge(model) else model
    if not isinstance(hf, PreTrainedModel):
        raise ValueError(f"unsupported model type {type(model).__name__} for weight statistics")
    return _hf_weights(hf, dtype)


def _effective_rank(s: torch.Tensor) -> torch.Tensor:
    """exp(entropy of s / sum(s)) along the last axis (0 log 0 = 0)."""
    p = s / s.sum(-1, keepdim=True).clamp_min(1e-300)
    ent = -(torch.where(p > 0, p * torch.log(p.clamp_min(1e-300)), torch.zeros_like(p))).sum(-1)
    return torch.exp(ent)


def _small_batched(fn, x: torch.Tensor):
    """fn (a batched small eigen/singular-value decomposition) over x [n, ...], the batch
    split across torch's CPU threads, each part run single-threaded: torch's own
    multi-threaded batched eigh/svdvals on CPU was up to 100x slower in our measurements."""
    from concurrent.futures import ThreadPoolExecutor

    workers = max(1, min(torch.get_num_threads(), x.shape[0]))
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        parts = torch.tensor_split(x, workers)
        if workers == 1:
            return fn(x)
        with ThreadPoolExecutor(workers) as pool:
            outs = list(pool.map(fn, parts))
    finally:
        torch.set_num_threads(before)
    if isinstance(outs[0], tuple):
        return tuple(torch.cat(o) for o in zip(*outs))
    return torch.cat(outs)


def _r(M: torch.Tensor) -> torch.Tensor:
    """A d x d factor R of M [..., D, d] with R^T R = M^T M, so ||M X||_F = ||R X||_F and
    M X has the singular values of R X: the Cholesky factor of the Gram matrix (much faster
    than a batched QR of the tall M), or its symmetric square root (eigh) where the Gram
    matrix is singular."""
    G = M.transpose(-1, -2) @ M
    L, info = _small_batched(torch.linalg.cholesky_ex, G)
    R = L.transpose(-1, -2)
    bad = info != 0
    if bad.any():
        w, U = _small_batched(torch.linalg.eigh, G[bad])
        R[bad] = w.clamp_min(0).sqrt()[..., :, None] * U.transpose(-1, -2)
    return R


def _gram_blocks(D: int, n_blocks: int = 4) -> list[tuple[slice, slice, float]]:
    """The upper-triangle blocks (rows, cols, weight) of a symmetric D x D matrix: the
    Frobenius inner product of two symmetric matrices is the weighted sum of their blocks'
    inner products (weight 2 off the diagonal)."""
    edges = np.linspace(0, D, min(n_blocks, D) + 1).astype(int)
    cuts = [slice(int(edges[i]), int(edges[i + 1])) for i in range(len(edges) - 1)]
    return [(cuts[i], cuts[j], 1.0 if i == j else 2.0) for i in range(len(cuts)) for j in range(i, len(cuts))]


def _packed_gram(X: torch.Tensor, blocks, weighted: bool = False, chunk: int = 64) -> torch.Tensor:
    """The upper-triangle blocks of the Gram matrices X^T X (X [n, d, D]) side by side, [n, P];
    with weighted (used on one side of an inner product only) the off-diagonal blocks are
    doubled, so inner products of rows are Frobenius inner products of the full Gram
    matrices. Only the blocks are computed."""
    n = X.shape[0]
    sizes = [(r.stop - r.start) * (c.stop - c.start) for r, c, _ in blocks]
    out = torch.empty(n, sum(sizes), dtype=X.dtype)
    for s in range(0, n, chunk):
        x = X[s : s + chunk]
        off = 0
        for (r, c, w), size in zip(blocks, sizes):
            G = x[:, :, r].transpose(1, 2) @ x[:, :, c]
            out[s : s + chunk, off : off + size] = G.reshape(x.shape[0], size) * (w if weighted else 1.0)
            off += size
    return out


def _composition_matrices(W: HeadWeights) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Composition scores of every head B (rows) with every head A (columns) of an earlier
    layer ({"q", "k", "v"} -> [n, n] float64, flat head order layer-major, NaN where A is not
    in an earlier layer), and the factors used.

    Q: ||W_OV^A W_QK^B||_F, K: ||W_OV^A W_QK^B^T||_F, V: ||W_OV^A W_OV^B||_F, each over
    ||W_OV^A||_F ||W^B||_F (TransformerLens's all_composition_scores). The squared numerator is
    the Frobenius inner product <W_OV^A^T W_OV^A, M^B M^B^T> of two d_model x d_model Gram
    matrices built from d_head-sized factors; all pairs come from one matrix product."""
    L, H, D, d = W.W_Q.shape
    n = L * H
    Q, K, V, O = (x.reshape(n, *x.shape[2:]) for x in (W.W_Q, W.W_K, W.W_V, W.W_O))
    R_Q, R_K, R_V = _r(Q), _r(K), _r(V)
    R_O = _r(O.transpose(1, 2))  # O^T = Q_O R_O, so O O^T = R_O^T R_O
    X = R_V @ O  # [n, d, D]: X^T X = W_OV^T W_OV
    Y = {"q": Q @ R_K.transpose(1, 2), "k": K @ R_Q.transpose(1, 2), "v": V @ R_O.transpose(1, 2)}  # [n, D, d]
    blocks = _gram_blocks(D)
    left = _packed_gram(X[: (L - 1) * H], blocks, weighted=True)  # writers: never in the last layer
    norm_left = X.flatten(1).norm(dim=1)
    norm_right = {kind: Yk.flatten(1).norm(dim=1) for kind, Yk in Y.items()}
    scores = {kind: torch.full((n, n), float("nan"), dtype=torch.float64) for kind in Y}
    per = max(1, 144 // (3 * H))  # reader layers per product: big enough to be compute-bound
    for l0 in range(1, L, per):
        l1 = min(L, l0 + per)
        rows = slice(l0 * H, l1 * H)
        right = _packed_gram(torch.cat([Y[k][rows] for k in Y]).transpose(1, 2), blocks)
        sq = (right @ left[: (l1 - 1) * H].T).clamp_min(0).reshape(len(Y), (l1 - l0) * H, (l1 - 1) * H)
        for i, kind in enumerate(Y):
            sc = sq[i].sqrt() / (norm_right[kind][rows, None] * norm_left[None, : (l1 - 1) * H]).clamp_min(1e-300)
            for lb in range(l0, l1):  # keep writers of earlier layers only
                r = slice((lb - l0) * H, (lb - l0 + 1) * H)
                scores[kind][lb * H : (lb + 1) * H, : lb * H] = sc[r, : lb * H]
    return scores, {"R_Q": R_Q, "R_K": R_K, "R_V": R_V, "R_O": R_O}


def composition_baseline(
    d_model: int, d_head: int, n_samples: int = 24, seed: int = 0, scales: dict[str, torch.Tensor] | None = None
) -> dict[str, float]:
    """Mean Q/K/V composition score of independent Gaussian heads of the same shapes (the
    value a head pair gets by chance; about 1 / sqrt(d_model)). Cached per shape.

    With ``scales`` (:attr:`HeadWeights.scales` of a model) the Gaussian heads get that model's
    folded norm scales: writer i those of a random layer a_i, reader i those of a random later
    layer b_i (the chance level of heads whose norms weigh the residual channels as the
    model's do: uneven scales alone move the scores away from 1 / sqrt(d_model))."""
    if scales is None:
        return dict(_composition_baseline(d_model, d_head, n_samples, seed))
    return _baseline_scores(d_model, d_head, n_samples, seed, scales)


@functools.lru_cache(maxsize=16)
def _composition_baseline(d_model: int, d_head: int, n_samples: int, seed: int) -> dict[str, float]:
    return _baseline_scores(d_model, d_head, n_samples, seed, None)


def _baseline_scores(d_model: int, d_head: int, n_samples: int, seed: int, scales) -> dict[str, float]:
    g = torch.Generator().manual_seed(seed)
    shape = (2, n_samples, d_model, d_head)  # layer 0: writers A, layer 1: readers B
    Q, K, V = (torch.randn(shape, generator=g).double() for _ in range(3))  # drawn in float32 (faster)
    O = torch.randn((2, n_samples, d_head, d_model), generator=g).double()
    if scales is not None:
        L = scales["input"].shape[0]
        if L < 2:
            raise ValueError("a scale-matched composition baseline needs a model with >= 2 layers")
        b = torch.randint(1, L, (n_samples,), generator=g)
        a = (torch.rand(n_samples, generator=g) * b).long()  # a < b
        for row, lay in ((0, a), (1, b)):
            s_in = scales["input"][lay][:, :, None]  # [n, D, 1]
            Q[row] *= s_in * scales["q"][lay][:, None, :]
            K[row] *= s_in * scales["k"][lay][:, None, :]
            V[row] *= s_in
            O[row] *= scales["post"][lay][:, None, :]
    W = HeadWeights(Q, K, V, O, torch.eye(d_model, dtype=torch.float64), ())
    scores, _ = _composition_matrices(W)
    a = torch.arange(n_samples)
    return {k: float(v[a + n_samples, a].mean()) for k, v in scores.items()}  # disjoint pairs (B, A)


def weight_stats(model, baseline_samples: int = 24, *, precision: str = "float32") -> pd.DataFrame:
    """Weight-based statistics of every attention head, one row per head id (index "head").

    Columns:
        layer, head_index;
        ov_copying: copying score of the full OV circuit W_E W_V W_O W_U, sum(lambda) /
            sum(|lambda|) over its eigenvalues in [-1, 1] (near 1: the head copies the token it
            attends to). Computed exactly from the d_head x d_head matrix W_O (W_U W_E) W_V,
            which has the same non-zero eigenvalues (cyclic permutation): the vocab x vocab
            matrix is never formed;
        ov_norm, qk_norm: Frobenius norms of W_OV = W_V W_O and W_QK = W_Q W_K^T;
        ov_rank, qk_rank: effective ranks, exp(entropy of the normalised singular values);
        q_comp_max, k_comp_max, v_comp_max: the largest Q/K/V composition score with a head of
            an earlier layer (NaN in layer 0), and q/k/v_comp_partner: that head's id.
    ``DataFrame.attrs``: q/k/v_comp_baseline (mean score of random Gaussian heads of the same
    shapes), q/k/v_comp_baseline_scaled (the same heads given the model's own folded norm
    scales, layer pairs drawn at random: the fairer chance level where norm weights are uneven,
    as in Gemma-3, whose scores sit at ~0.4x the plain baseline and at the scaled one), folded
    (the norm weights folded in).

    Norms: only their per-channel weights are folded in (the input norm into W_Q, W_K, W_V;
    Gemma's q/k norms into W_Q / W_K and its post-attention norm into W_O; the final norm into
    W_U); the normalisation itself (division by the RMS / centring, LayerNorm biases) is
    ignored, and so are biases (Qwen2's q/k/v biases, b_U). W_U is centred over the vocabulary
    (softmax-invariant, as TransformerLens's center_unembed), so a HookedTransformer and the
    Hugging Face model it came from give the same values. Gemma's embedding scale is included.
    RoPE: W_QK here describes the content part of attention only; the positional preference
    lives in the rotation, which the weights alone do not show.
    Computed in float64 on the model's weights (batched torch), except the vocabulary-sized
    product W_U W_E, whose chunks are multiplied in ``precision`` ("float32", the default:
    ~2x faster; or "float64") and summed in float64. On SmolLM2 and Gemma-3-270M float32
    changes ov_copying by < 1e-6 relative (benchmarks/circuits_speed.py prints it); the other
    columns do not use the product.
    """
    baseline_samples = check_int("baseline_samples", baseline_samples, minimum=1)
    name = _model_name(model)
    W = head_weights(model, precision)
    L, H, D, d = W.W_Q.shape
    n = L * H
    Q, K, V, O = (x.reshape(n, *x.shape[2:]) for x in (W.W_Q, W.W_K, W.W_V, W.W_O))
    M = O @ W.unembed_embed @ V  # [n, d, d]
    lam = _small_batched(torch.linalg.eigvals, M)
    copying = lam.real.sum(-1) / lam.abs().sum(-1).clamp_min(1e-300)
    scores, R = _composition_matrices(W)
    A_qk, A_ov = R["R_Q"] @ R["R_K"].transpose(1, 2), R["R_V"] @ R["R_O"].transpose(1, 2)
    s_qk, s_ov = _small_batched(torch.linalg.svdvals, A_qk), _small_batched(torch.linalg.svdvals, A_ov)
    layer = torch.arange(n) // H
    ids = [head_id(name, l, h) for l in range(L) for h in range(H)]
    df = pd.DataFrame(
        {
            "layer": layer.numpy(),
            "head_index": (torch.arange(n) % H).numpy(),
            "ov_copying": copying.numpy(),
            "ov_norm": s_ov.norm(dim=-1).numpy(),
            "qk_norm": s_qk.norm(dim=-1).numpy(),
            "ov_rank": _effective_rank(s_ov).numpy(),
            "qk_rank": _effective_rank(s_qk).numpy(),
        },
        index=pd.Index(ids, name="head"),
    )
    earlier = layer[None, :] < layer[:, None]  # [B, A]
    for kind in COMPOSITION_KINDS:
        s = torch.where(earlier, scores[kind].nan_to_num(-1.0), torch.tensor(-1.0, dtype=torch.float64))
        best, arg = s.max(dim=1)
        has = layer > 0
        df[f"{kind}_comp_max"] = np.where(has.numpy(), best.numpy(), np.nan)
        df[f"{kind}_comp_partner"] = [ids[a] if ok else None for a, ok in zip(arg.tolist(), has.tolist())]
    base = composition_baseline(D, d, baseline_samples)
    base_scaled = composition_baseline(D, d, baseline_samples, scales=W.scales)
    for kind in COMPOSITION_KINDS:
        df.attrs[f"{kind}_comp_baseline"] = base[kind]
        df.attrs[f"{kind}_comp_baseline_scaled"] = base_scaled[kind]
    df.attrs["folded"] = list(W.folded)
    return df


def composition_scores(model, kind: str = "k") -> pd.DataFrame:
    """Square DataFrame of Q/K/V composition scores: rows the reading (later) head, columns the
    writing (earlier) head; NaN where the column head is not in an earlier layer."""
    kind = check_choice("kind", kind, COMPOSITION_KINDS)
    name = _model_name(model)
    W = head_weights(model)
    L, H = W.W_Q.shape[:2]
    scores, _ = _composition_matrices(W)
    layer = torch.arange(L * H) // H
    s = scores[kind]
    ids = [head_id(name, l, h) for l in range(L) for h in range(H)]
    return pd.DataFrame(s.numpy(), index=pd.Index(ids, name="head"), columns=pd.Index(ids, name="earlier_head"))


# ---------------------------------------------------------------------------------------
# running with edits
# ---------------------------------------------------------------------------------------
ZEdit = Callable[[torch.Tensor], torch.Tensor]  # z [B, N, H, d] -> z
PatternEdit = Callable[[torch.Tensor], torch.Tensor]  # pattern [B, H, N, N] -> pattern


@dataclass
class _Batch:
    prompts: list[TokenizedPrompt]
    ids: torch.Tensor  # [B, N]
    lengths: torch.Tensor  # [B]
    loss_mask: torch.Tensor  # [B, N - 1] bool: which predictions count in the loss

    @property
    def prompt_ids(self) -> list[str]:
        return [p.prompt.id for p in self.prompts]


@contextlib.contextmanager
def _frozen_parameters(model):
    """Parameters with requires_grad=False for the duration (restored after)."""
    params = [p for p in model.parameters() if p.requires_grad]
    try:
        for p in params:
            p.requires_grad_(False)
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


class _Runner:
    """Forward passes with per-layer edits of z / attention patterns, residual capture and
    runs that start at a layer from a cached residual (earlier layers skipped)."""

    def __init__(self, model, tokenizer=None):
        self.model = model
        self.source = source_for(model, tokenizer=tokenizer)
        self.name = self.source.name
        self.tl = _is_tl(model)
        self.n_layers, self.n_heads = _n_layers_heads(model)
        if self.tl:
            self.layers = list(model.blocks)
        else:
            self.layers = _hf_decoder_layers(model)
            self.o_proj = [m.o_proj for m in self.source.attention_modules]
        self.device = self.source.device

    def batch(self, prompts, max_tokens, loss_on: str = "all") -> _Batch:
        loss_on = check_choice("loss_on", loss_on, LOSS_ON)
        tok = self.source.tokenize(as_prompts(prompts), max_tokens=max_tokens)
        for p in tok:
            if len(p.ids) < 2:
                raise ValueError(f"prompt {p.prompt.id!r} has {len(p.ids)} token(s): too short for a loss (needs >= 2)")
        ids, lengths = pad_token_batch(tok, self.source.pad_token_id, self.device)
        mask = torch.arange(ids.shape[1] - 1, device=ids.device)[None, :] < (lengths - 1)[:, None]
        if loss_on == "repeated":
            rep = torch.zeros_like(mask)
            for b, p in enumerate(tok):
                seen = set()
                for i, t in enumerate(p.ids[:-1]):
                    rep[b, i] = t in seen
                    seen.add(t)
                if not rep[b].any():
                    raise ValueError(f"prompt {p.prompt.id!r} repeats no token: no predictions for loss_on='repeated'")
            mask = mask & rep
        return _Batch(tok, ids, lengths, mask)

    @contextlib.contextmanager
    def _skip_layers(self, start: int, resid: torch.Tensor):
        """Layers < start return their input unchanged; layer `start` receives `resid`."""
        saved = []

        def identity(*args, **kwargs):
            return args[0] if args else kwargs.get("hidden_states", kwargs.get("resid_pre"))

        def feed(module, args, kwargs):
            if args:
                return (resid,) + tuple(args[1:]), kwargs
            key = "hidden_states" if "hidden_states" in kwargs else "resid_pre"
            return args, {**kwargs, key: resid}

        # object.__setattr__: TransformerBridge components forward attribute writes elsewhere
        handle = self.layers[start].register_forward_pre_hook(feed, with_kwargs=True)
        try:
            for layer in self.layers[:start]:
                saved.append((layer, layer.__dict__.get("forward")))
                object.__setattr__(layer, "forward", identity)
            yield
        finally:
            handle.remove()
            for layer, old in saved:
                if old is None:
                    layer.__dict__.pop("forward", None)
                else:
                    object.__setattr__(layer, "forward", old)

    def forward(
        self,
        ids: torch.Tensor,
        lengths: torch.Tensor,
        z_edits: dict[int, ZEdit] | None = None,
        pattern_edits: dict[int, PatternEdit] | None = None,
        capture_resid: list | None = None,
        capture_z: dict | None = None,
        start: tuple[int, torch.Tensor] | None = None,
        grad: bool = False,
    ) -> torch.Tensor:
        """Logits [B, N, V]. capture_resid (a list) receives each layer's input; capture_z (a
        dict) each layer's z [B, N, H, d]. With grad, the first layer's z (after its edit) is
        a leaf that requires grad, later z depend on it, and the parameters are frozen for the
        run: the graph holds only what dL/dz needs."""
        z_edits, pattern_edits = z_edits or {}, pattern_edits or {}
        if pattern_edits and not self.tl:
            raise ValueError(
                "editing attention patterns needs a TransformerLens model (hook_pattern): load it with "
                "motif_widgets.load_model(name) (a TransformerBridge) rather than as a Hugging Face model"
            )
        mask = (torch.arange(ids.shape[1], device=ids.device)[None, :] < lengths[:, None]).long()
        handles, stack = [], contextlib.ExitStack()
        z_layers = sorted(set(z_edits) | (set(range(self.n_layers)) if capture_z is not None else set()))

        def z_fn(layer):
            def f(z):
                if layer in z_edits:
                    z = z_edits[layer](z)
                if grad and layer == z_layers[0]:  # the graph starts here; later z stay in it (total derivatives)
                    z = z.detach().requires_grad_(True)
                if capture_z is not None:
                    capture_z[layer] = z
                return z

            return f

        try:
            if capture_resid is not None:
                for layer in self.layers:
                    handles.append(layer.register_forward_pre_hook(
                        lambda m, args, kwargs: capture_resid.append(args[0] if args else next(iter(kwargs.values()))),
                        with_kwargs=True,
                    ))
            if grad:  # the graph starts at the z leaves: no parameter gradients, nothing upstream
                if capture_z is None:
                    raise ValueError("forward(grad=True) needs capture_z (the leaves to differentiate)")
                stack.enter_context(_frozen_parameters(self.model))
            if start is not None:
                stack.enter_context(self._skip_layers(*start))
            with stack, (torch.enable_grad() if grad else torch.no_grad()):
                if self.tl:
                    hooks = []
                    for layer in z_layers:
                        f = z_fn(layer)
                        hooks.append((f"blocks.{layer}.attn.hook_z", lambda z, hook, f=f: f(z)))
                    for layer, fn in pattern_edits.items():
                        hooks.append((f"blocks.{layer}.attn.hook_pattern", lambda p, hook, fn=fn: fn(p)))
                    return self.model.run_with_hooks(ids, return_type="logits", fwd_hooks=hooks, attention_mask=mask)
                for layer in z_layers:
                    f = z_fn(layer)
                    H = self.n_heads

                    def pre(m, args, f=f, H=H):
                        x = args[0]
                        z = f(x.reshape(*x.shape[:-1], H, x.shape[-1] // H))
                        return (z.reshape(x.shape),) + tuple(args[1:])

                    handles.append(self.o_proj[layer].register_forward_pre_hook(pre))
                return self.model(input_ids=ids, attention_mask=mask, use_cache=False).logits
        finally:
            for h in handles:
                h.remove()


def _per_prompt_loss(logits: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy of each row over the predictions of mask [B, N - 1]: [B]."""
    B, N, V = logits.shape
    target = torch.nn.functional.pad(ids[:, 1:], (0, 1), value=-100)  # the last position predicts nothing
    target = target.masked_fill(~torch.nn.functional.pad(mask, (0, 1), value=False), -100)
    # all N positions, no [:, :-1] slice: no copy of the logits (nor of their gradient)
    nll = torch.nn.functional.cross_entropy(logits.reshape(B * N, V).float(), target.reshape(-1), reduction="none")
    return nll.reshape(B, N).sum(1) / mask.sum(1)


@dataclass
class _Clean:
    loss: torch.Tensor  # [B]
    resid: list[torch.Tensor]  # input of each layer [B, N, D]
    z_mean: torch.Tensor  # [L, H, d] over prompts and real positions


def _clean_run(runner: _Runner, batch: _Batch) -> _Clean:
    resid, zs = [], {}
    logits = runner.forward(batch.ids, batch.lengths, capture_resid=resid, capture_z=zs)
    loss = _per_prompt_loss(logits, batch.ids, batch.loss_mask)
    del logits
    real = (torch.arange(batch.ids.shape[1], device=batch.ids.device)[None, :] < batch.lengths[:, None]).to(zs[0].dtype)
    z_mean = torch.stack([(zs[l] * real[:, :, None, None]).sum((0, 1)) / real.sum() for l in range(runner.n_layers)])
    return _Clean(loss, resid, z_mean)


def _rows_per_forward(batch: _Batch, vocab: int) -> int:
    return max(1, _MAX_LOGIT_ELEMENTS // (batch.ids.shape[1] * vocab))


def _variant_losses(
    runner: _Runner,
    batch: _Batch,
    clean: _Clean,
    layer: int,
    variants: list[dict],
    reuse: bool = True,
) -> torch.Tensor:
    """Per-prompt losses [n_variants, B] of runs that differ from the clean one at `layer`
    only. A variant is {"z": {head: vector [d] or None (zero)}, "pattern": {head: [B, N, N]}};
    variants are stacked along the batch, as many per forward as the logit budget allows,
    and with reuse the run starts at `layer` from the clean residual."""
    B = batch.ids.shape[0]
    per = max(1, _rows_per_forward(batch, runner.source.vocab_size) // B)
    real = torch.arange(batch.ids.shape[1], device=batch.ids.device)[None, :] < batch.lengths[:, None]
    real2 = (real[:, :, None] & real[:, None, :])[:, None]  # [B, 1, N, N]
    out = []
    for s in range(0, len(variants), per):
        chunk = variants[s : s + per]
        k = len(chunk)
        ids, lengths = batch.ids.repeat(k, 1), batch.lengths.repeat(k)
        z_edit = pattern_edit = None
        if any(v.get("z") for v in chunk):
            def z_edit(z, chunk=chunk):
                z = z.clone()
                for c, v in enumerate(chunk):
                    for h, value in (v.get("z") or {}).items():
                        z[c * B : (c + 1) * B, :, h] = 0.0 if value is None else value.to(z.device, z.dtype)
                return z
        if any(v.get("pattern") for v in chunk):
            def pattern_edit(p, chunk=chunk):
                p = p.clone()
                for c, v in enumerate(chunk):
                    for h, pat in (v.get("pattern") or {}).items():
                        rows = slice(c * B, (c + 1) * B)
                        p[rows, h] = torch.where(real2[:, 0], pat.to(p.device, p.dtype), p[rows, h])
                return p
        start = (layer, clean.resid[layer].repeat(k, 1, 1)) if reuse and layer > 0 else None
        logits = runner.forward(
            ids, lengths,
            z_edits={layer: z_edit} if z_edit else None,
            pattern_edits={layer: pattern_edit} if pattern_edit else None,
            start=start,
        )
        out.append(_per_prompt_loss(logits, ids, batch.loss_mask.repeat(k, 1)).reshape(k, B))
        del logits
    return torch.cat(out)


def _effect_frame(runner, batch, heads, delta: np.ndarray, clean_loss: torch.Tensor, method: str, how: str) -> pd.DataFrame:
    df = pd.DataFrame(
        {
            "layer": [l for l, _ in heads],
            "head_index": [h for _, h in heads],
            "delta_loss": delta.mean(1),
        },
        index=pd.Index([head_id(runner.name, l, h) for l, h in heads], name="head"),
    )
    per = pd.DataFrame(delta, index=df.index, columns=[f"delta_loss[{p}]" for p in batch.prompt_ids])
    df = pd.concat([df, per], axis=1)
    df.attrs.update(
        {
            "clean_loss": float(clean_loss.mean()),
            "clean_loss_per_prompt": dict(zip(batch.prompt_ids, map(float, clean_loss))),
            "method": method,
            "estimate": how,
            "prompt_ids": list(batch.prompt_ids),
        }
    )
    return df


# ---------------------------------------------------------------------------------------
# 2. ablations and attribution patching
# ---------------------------------------------------------------------------------------
def ablate(
    model,
    prompts,
    heads=None,
    method: str = "mean",
    *,
    tokenizer=None,
    max_tokens: int | None = 128,
    reuse_residual: bool = True,
    loss_on: str = "all",
) -> pd.DataFrame:
    """Exact loss change when each head is ablated on its own, per prompt and averaged.

    Args:
        heads: head ids ("name:L5H1" / "L5H1") or (layer, head) pairs; None = every head.
        method: "mean" — the head's output z (its attention-weighted values, before W_O) is
            replaced at every position by its mean over all prompts and all their positions (one
            d_head vector per head, BOS position included); "zero" — z set to 0.
        reuse_residual: run each ablation from the ablated layer only, on the clean residual
            cached at that layer's input (exact: earlier layers do not see the head), several
            ablations stacked in one batch; False reruns the whole model per batch of ablations.
        loss_on: "all" predictions, or "repeated": only predictions made at a token that
            occurred earlier in the prompt (the second copy of a repeated sequence, where
            induction heads matter); see :data:`LOSS_ON`.

    Returns:
        DataFrame indexed by head id: layer, head_index, delta_loss (ablated - clean mean loss,
        > 0: the head helps) and one column "delta_loss[<prompt id>]" per prompt. attrs:
        clean_loss, clean_loss_per_prompt, method, prompt_ids.
    """
    method = check_choice("method", method, ABLATION_METHODS)
    runner = _Runner(model, tokenizer)
    heads = parse_heads(model, heads, runner.name)
    batch = runner.batch(prompts, max_tokens, loss_on)
    clean = _clean_run(runner, batch)
    delta = np.zeros((len(heads), len(batch.prompts)))
    for layer in sorted({l for l, _ in heads}):
        rows = [k for k, (l, _) in enumerate(heads) if l == layer]
        variants = [
            {"z": {heads[k][1]: clean.z_mean[layer, heads[k][1]] if method == "mean" else None}} for k in rows
        ]
        losses = _variant_losses(runner, batch, clean, layer, variants, reuse=reuse_residual)
        delta[rows] = (losses - clean.loss[None, :]).cpu().numpy()
    return _effect_frame(runner, batch, heads, delta, clean.loss.cpu(), method, "exact")


ESTIMATES = ("atp", "integrated")


def head_effects(
    model,
    prompts,
    method: str = "mean",
    *,
    estimate: str = "atp",
    steps: int = 4,
    refine: int = 0,
    tokenizer=None,
    max_tokens: int | None = 128,
    loss_on: str = "all",
) -> pd.DataFrame:
    """Estimated loss change of ablating each head (every head at once), from gradients.

    Same ablations (``method``: "mean", the mean over this run's prompts and real positions,
    or "zero"), the same ``loss_on`` and the same DataFrame layout as :func:`ablate`.

    Args:
        estimate: "atp" — attribution patching: one clean forward and one backward give
            dL/dz [B, N, H, d] for every head, and effect ~ sum over positions of
            (z_ablated - z_clean) . dL/dz (first order: exact for small changes, poor for heads
            whose ablation changes the loss a lot). Costs about 2-3 forward passes.
            "integrated" — integrated gradients along the path that ablates every head
            together by a fraction alpha (each layer's z, as computed in that run, moved to
            z + alpha (z_ablated - z); the mean from a clean no-grad run first): head h gets
            the integral over alpha of dL/dz_h . (z_ablated - z_h), by the midpoint rule on
            ``steps`` points. The heads' estimates add up to the loss change of ablating all
            heads at once (up to the quadrature error). Costs one forward plus ``steps``
            forward+backward passes.
        steps: interpolation steps of "integrated" (ignored by "atp").
        refine: then ablate exactly (as :func:`ablate`) the ``refine`` heads whose estimate
            is least trustworthy — the largest sum over positions of |(z_ablated - z) . dL/dz|
            ("atp": large per-position terms that may cancel) or of |estimate| ("integrated")
            — and report their exact values (AtP* uses attribution this way, as a
            prefilter for exact patching). Costs about half a forward pass per refined head.

    attrs: estimate ("attribution" or "integrated"), steps, refined (the head ids given
    exact values; column "refined" says the same per head), plus those of :func:`ablate`.
    Gradients are taken with respect to z only (parameters frozen; the graph starts at the
    first layer's z).
    """
    method = check_choice("method", method, ABLATION_METHODS)
    estimate = check_choice("estimate", estimate, ESTIMATES)
    steps = check_int("steps", steps, minimum=1)
    runner = _Runner(model, tokenizer)
    heads = parse_heads(model, None, runner.name)
    refine = check_int("refine", refine, minimum=0, maximum=len(heads))
    batch = runner.batch(prompts, max_tokens, loss_on)
    B, N = batch.ids.shape
    real = (torch.arange(N, device=batch.ids.device)[None, :] < batch.lengths[:, None])[:, :, None, None]

    def ablated_value(z):  # [B, N, H, d] -> broadcastable z_ablated
        if method == "zero":
            return torch.zeros((), dtype=z.dtype, device=z.device)
        m = real.to(z.dtype)
        return ((z * m).sum((0, 1)) / m.sum())[None, None]

    def grads_at(z_edits):  # one forward with grad + one backward: per-prompt losses, z, dL/dz
        zs = {}
        logits = runner.forward(batch.ids, batch.lengths, z_edits=z_edits, capture_z=zs, grad=True)
        per_prompt = _per_prompt_loss(logits, batch.ids, batch.loss_mask)
        del logits
        grads = torch.autograd.grad(per_prompt.sum(), [zs[l] for l in range(runner.n_layers)])  # dL_b/dz, rows separate
        return per_prompt.detach(), {l: zs[l].detach() for l in zs}, grads

    L = runner.n_layers
    if estimate == "atp":
        clean_loss, zs, grads = grads_at(None)
        with torch.no_grad():
            terms = [((ablated_value(zs[l]) - zs[l]) * real * grads[l]).sum(3) for l in range(L)]  # [B, N, H]
            delta = torch.cat([t.sum(1).T for t in terms])
            doubt = torch.cat([t.abs().sum(1).T for t in terms]).mean(1)  # [L*H]
        del zs, grads, terms
    else:
        with torch.no_grad():
            zs = {}
            logits = runner.forward(batch.ids, batch.lengths, capture_z=zs)
            clean_loss = _per_prompt_loss(logits, batch.ids, batch.loss_mask)
            del logits
            target = {l: ablated_value(zs[l]) for l in zs}
        del zs
        delta = 0.0
        for k in range(steps):
            alpha = (k + 0.5) / steps
            pre = {}

            def edit(z, l, alpha=alpha, pre=pre):  # this run's z (earlier layers already moved) moved by alpha
                pre[l] = z.detach()
                return torch.where(real, z + alpha * (target[l] - z), z)

            _, _, g = grads_at({l: (lambda z, l=l: edit(z, l)) for l in range(L)})
            with torch.no_grad():  # dL/dalpha = sum over layers of dL/dz_l . (target_l - z_l before the edit)
                delta = delta + torch.cat([((target[l] - pre[l]) * real * g[l]).sum((1, 3)).T for l in range(L)]) / steps
        doubt = delta.abs().mean(1)
    delta = delta.double().cpu()
    refined = sorted(torch.argsort(doubt.cpu(), descending=True)[:refine].tolist())
    if refined:  # exact values for the least trustworthy estimates
        clean = _clean_run(runner, batch)
        for layer in sorted({heads[k][0] for k in refined}):
            rows = [k for k in refined if heads[k][0] == layer]
            variants = [{"z": {heads[k][1]: clean.z_mean[layer, heads[k][1]] if method == "mean" else None}} for k in rows]
            losses = _variant_losses(runner, batch, clean, layer, variants)
            delta[rows] = (losses - clean.loss[None, :]).double().cpu()
    df = _effect_frame(runner, batch, heads, delta.numpy(), clean_loss.cpu(), method, "attribution" if estimate == "atp" else "integrated")
    df.insert(3, "refined", np.isin(np.arange(len(heads)), refined))
    df.attrs["steps"] = steps if estimate == "integrated" else 1
    df.attrs["refined"] = [df.index[k] for k in refined]
    return df


# ---------------------------------------------------------------------------------------
# 3. frozen patterns and templates
# ---------------------------------------------------------------------------------------
def template_pattern(name: str, ids: Sequence[int]) -> np.ndarray:
    """An [n, n] causal attention pattern of a template for token ids (rows sum to 1):
    "previous_token" (row 0 on itself), "first_token", "self", "uniform" (over 0..i),
    "induction" (the token after the latest earlier occurrence of the current token; rows
    without one -> first token), "recent" (uniform over the last 4 positions, itself included)."""
    if not isinstance(name, str) or name not in TEMPLATES:
        raise ValueError(f"unknown template {name!r}; choose one of {list(TEMPLATES)}")
    ids = [int(t) for t in ids]
    n = len(ids)
    a = np.zeros((n, n))
    rows = np.arange(n)
    if name == "previous_token":
        a[rows, np.maximum(rows - 1, 0)] = 1.0
    elif name == "first_token":
        a[:, 0] = 1.0
    elif name == "self":
        a[rows, rows] = 1.0
    elif name == "uniform":
        a = np.tril(np.ones((n, n)))
    elif name == "recent":
        i, j = np.indices((n, n))
        a = ((j <= i) & (j > i - RECENT_WINDOW)).astype(float)
    elif name == "induction":
        last: dict[int, int] = {}
        for i, t in enumerate(ids):
            a[i, last[t] + 1 if t in last else 0] = 1.0
            last[t] = i
    return a / a.sum(1, keepdims=True)


def patterns(model, prompts, heads=None, *, tokenizer=None, max_tokens: int | None = 128) -> dict[str, list[np.ndarray]]:
    """Attention patterns of heads: {head id: [one [n, n] float64 array per prompt]} — the
    form :func:`frozen_run` takes to freeze heads to the patterns of this run."""
    runner = _Runner(model, tokenizer)
    if not runner.tl:
        raise ValueError("patterns() needs a TransformerLens model (hook_pattern); use motif_widgets.load_model")
    heads = parse_heads(model, heads, runner.name)
    batch = runner.batch(prompts, max_tokens)
    return _patterns_of(runner, batch, heads)


def _patterns_of(runner, batch, heads) -> dict[str, list[np.ndarray]]:
    kept: dict[int, torch.Tensor] = {}
    layers = {l for l, _ in heads}

    def keep(layer):
        def f(p):
            kept[layer] = p.detach()
            return p

        return f

    runner.forward(batch.ids, batch.lengths, pattern_edits={l: keep(l) for l in layers})
    n = batch.lengths.tolist()
    return {
        head_id(runner.name, l, h): [kept[l][b, h, : n[b], : n[b]].to(torch.float64).cpu().numpy() for b in range(len(n))]
        for l, h in heads
    }


@dataclass
class FrozenRun:
    """The result of :func:`frozen_run`: loss (mean over prompts), per_prompt (Series by
    prompt id) and logits (one [n, vocab] tensor per prompt, when asked for)."""

    loss: float
    per_prompt: pd.Series
    logits: list[torch.Tensor] | None = None


def _as_pattern_list(head: str, value, batch: _Batch, runner: _Runner) -> list[torch.Tensor]:
    """A freeze value as one [n_b, n_b] float tensor per prompt."""
    n = batch.lengths.tolist()
    if isinstance(value, str):
        if value not in TEMPLATES:
            raise ValueError(f"unknown template {value!r} for head {head}; choose one of {list(TEMPLATES)}")
        return [torch.as_tensor(template_pattern(value, p.ids)) for p in batch.prompts]
    if isinstance(value, (Prompt, dict)):
        other = value["prompt"] if isinstance(value, dict) and "prompt" in value else value
        ob = runner.batch([other], max_tokens=None)
        l, h = parse_heads(runner.model, [head], runner.name)[0]
        pat = torch.as_tensor(_patterns_of(runner, ob, [(l, h)])[head_id(runner.name, l, h)][0])
        value = pat
    if isinstance(value, (list, tuple)):
        if len(value) != len(n):
            raise ValueError(f"head {head}: {len(value)} patterns given for {len(n)} prompts")
        arrays = [torch.as_tensor(np.asarray(v.detach().cpu() if hasattr(v, "detach") else v, dtype=np.float64)) for v in value]
    else:
        arr = torch.as_tensor(np.asarray(value.detach().cpu() if hasattr(value, "detach") else value, dtype=np.float64))
        if arr.ndim == 2:
            arrays = [arr] * len(n)
        elif arr.ndim == 3 and arr.shape[0] == len(n):
            arrays = list(arr)
        else:
            raise ValueError(
                f"pattern for head {head} has shape {tuple(arr.shape)}; expected [n, n], [{len(n)}, n, n] "
                "or a list of one [n, n] per prompt"
            )
    for b, a in enumerate(arrays):
        if a.shape != (n[b], n[b]):
            raise ValueError(
                f"pattern for head {head} has size {tuple(a.shape)} but prompt {batch.prompt_ids[b]!r} has "
                f"{n[b]} tokens: expected ({n[b]}, {n[b]})"
            )
        if not torch.isfinite(a).all():
            raise ValueError(f"pattern for head {head} has non-finite values")
    return arrays


def _padded(arrays: list[torch.Tensor], N: int) -> torch.Tensor:
    out = torch.zeros(len(arrays), N, N, dtype=torch.float64)
    for b, a in enumerate(arrays):
        out[b, : a.shape[0], : a.shape[1]] = a
    return out


def frozen_run(
    model,
    prompts,
    freeze: dict,
    *,
    return_logits: bool = False,
    tokenizer=None,
    max_tokens: int | None = 128,
    loss_on: str = "all",
) -> FrozenRun:
    """Rerun the model with chosen heads' attention patterns replaced (via ``hook_pattern``).

    Args:
        freeze: {head id: what}, what being a template name (see :data:`TEMPLATES` and
            :func:`template_pattern`), an array [n, n] (every prompt, all of n tokens),
            [n_prompts, n, n], a list of one [n_b, n_b] per prompt (e.g. from :func:`patterns`,
            the patterns of another run), or a :class:`~motif_widgets.prompts.Prompt` /
            ``{"prompt": text or ids}`` (that prompt's pattern of this head; it must have as
            many tokens as each prompt).
        return_logits: also return the logits (one [n, vocab] tensor per prompt).
        loss_on: "all" or "repeated" predictions (see :func:`ablate`).

    Raises ValueError for an unknown head or template and for a pattern of the wrong size.
    """
    runner = _Runner(model, tokenizer)
    if not runner.tl:
        raise ValueError("frozen_run needs a TransformerLens model (hook_pattern); use motif_widgets.load_model")
    if not isinstance(freeze, dict) or not freeze:
        raise ValueError("freeze must be a non-empty dict {head id: template name / pattern(s)}")
    batch = runner.batch(prompts, max_tokens, loss_on)
    N = batch.ids.shape[1]
    real2 = (torch.arange(N, device=batch.ids.device)[None, :] < batch.lengths[:, None])
    real2 = (real2[:, :, None] & real2[:, None, :])
    by_layer: dict[int, dict[int, torch.Tensor]] = {}
    for key, value in freeze.items():
        (l, h), = parse_heads(model, [key], runner.name)
        by_layer.setdefault(l, {})[h] = _padded(_as_pattern_list(str(key), value, batch, runner), N)

    def edit(layer):
        def f(p):
            p = p.clone()
            for h, pat in by_layer[layer].items():
                p[:, h] = torch.where(real2, pat.to(p.device, p.dtype), p[:, h])
            return p

        return f

    logits = runner.forward(batch.ids, batch.lengths, pattern_edits={l: edit(l) for l in by_layer})
    per = _per_prompt_loss(logits, batch.ids, batch.loss_mask)
    out_logits = [logits[b, :n].clone() for b, n in enumerate(batch.lengths.tolist())] if return_logits else None
    return FrozenRun(float(per.mean()), pd.Series(per.cpu().numpy().astype(float), index=batch.prompt_ids, name="loss"), out_logits)


def motif_sufficiency(
    model,
    prompts,
    heads,
    templates: Sequence[str] = TEMPLATES,
    method: str = "mean",
    *,
    tokenizer=None,
    max_tokens: int | None = 128,
    loss_on: str = "all",
) -> pd.DataFrame:
    """How much of each head's ablation effect its best-matching pattern template recovers.

    For each head (alone): L_clean, L_ablated (``method`` ablation as in :func:`ablate`) and
    L_t for each template t (the head's pattern replaced by t, everything else as in the
    clean run). The best template is the one with the smallest loss; sufficiency =
    (L_ablated - L_best) / (L_ablated - L_clean): 1 = the template does the head's job, 0 =
    no better than ablating it, > 1 better than the head itself, < 0 worse than ablating.
    NaN when the ablation changes nothing (|L_ablated - L_clean| < 1e-9).

    Returns a DataFrame indexed by head id: layer, head_index, clean_loss, ablated_loss,
    ablation_effect, best_template, template_loss, sufficiency and one "loss[<template>]"
    column per template. Runs start at the head's layer from the cached clean residual.
    """
    method = check_choice("method", method, ABLATION_METHODS)
    templates = [templates] if isinstance(templates, str) else list(templates)
    if not templates:
        raise ValueError("no templates given")
    for t in templates:
        if not isinstance(t, str) or t not in TEMPLATES:
            raise ValueError(f"unknown template {t!r}; choose from {list(TEMPLATES)}")
    runner = _Runner(model, tokenizer)
    if not runner.tl:
        raise ValueError("motif_sufficiency needs a TransformerLens model (hook_pattern); use motif_widgets.load_model")
    heads = parse_heads(model, heads, runner.name)
    batch = runner.batch(prompts, max_tokens, loss_on)
    clean = _clean_run(runner, batch)
    N = batch.ids.shape[1]
    pats = {t: _padded([torch.as_tensor(template_pattern(t, p.ids)) for p in batch.prompts], N) for t in templates}
    rows = []
    clean_loss = float(clean.loss.mean())
    for l, h in heads:
        variants = [{"z": {h: clean.z_mean[l, h] if method == "mean" else None}}]
        variants += [{"pattern": {h: pats[t]}} for t in templates]
        losses = _variant_losses(runner, batch, clean, l, variants).mean(1).cpu().numpy()
        abl, tl = float(losses[0]), losses[1:]
        best = int(np.argmin(tl))
        effect = abl - clean_loss
        row = {
            "layer": l, "head_index": h, "clean_loss": clean_loss, "ablated_loss": abl, "ablation_effect": effect,
            "best_template": templates[best], "template_loss": float(tl[best]),
            "sufficiency": (abl - float(tl[best])) / effect if abs(effect) >= 1e-9 else float("nan"),
        }
        row.update({f"loss[{t}]": float(x) for t, x in zip(templates, tl)})
        rows.append(row)
    df = pd.DataFrame(rows, index=pd.Index([head_id(runner.name, l, h) for l, h in heads], name="head"))
    df.attrs.update({"method": method, "select": "loss", "prompt_ids": list(batch.prompt_ids)})
    return df
