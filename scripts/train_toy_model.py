#!/usr/bin/env python
"""Train a tiny 2-layer attention-only transformer that forms induction heads.

The model is a TransformerLens ``HookedTransformer`` (2 layers, 4 heads of
width 16, d_model 64, vocab 1000, LayerNorm, learned positional embeddings,
no MLPs).  It is trained on sequences

    [BOS] + s + s + filler

where ``s`` is uniform random tokens (ids 1..999; id 0 is reserved for BOS and
never sampled), the half-length ``L`` of ``s`` is drawn per sample uniformly
in [8, 40] (a fixed length teaches a positional shortcut instead of
induction), and ``filler`` is uniform random tokens up to ``n_ctx``.

Loss: next-token cross-entropy restricted to the *predictable* part of the
second copy of ``s``, i.e. the targets s[1..L-1] of the second copy (the first
token of the second copy follows s[L-1], which never preceded it before, so it
is not predictable and is excluded).  Nothing else (first copy, filler) is
trained on, which is what makes the model learn induction rather than
unigram statistics.

Recipe (measured, see /work/shared/reference/environment.md): batch 32,
AdamW lr 1e-3, one torch thread.  The repeated-half loss plateaus near
log(1000) ~= 6.9 for ~1,500 steps and then drops below 1.0 around step
2,000-2,450; the default of 3,000 steps passes that phase with margin.

At the end the model is evaluated on fresh probes ``[BOS] + s + s`` (half
length 20 and 30, 64 sequences each) and per-head previous-token, induction
and BOS attention scores are printed and stored in the checkpoint:

    {"config": {HookedTransformerConfig kwargs}, "state_dict": ..., "meta": {...}}

which loads with ``torch.load(path, weights_only=True)``; rebuild with
``HookedTransformer(HookedTransformerConfig(**ckpt["config"]))`` and
``model.load_state_dict(ckpt["state_dict"])``.

Usage:
    python scripts/train_toy_model.py [--seed 0] [--steps 3000] \
        [--out src/motif_widgets/data/toy_induction.pt]
"""

from __future__ import annotations

import argparse
import math
import os
import random
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

D_VOCAB = 1000
BOS = 0
MIN_HALF, MAX_HALF = 8, 40
N_CTX = 1 + 2 * MAX_HALF  # 81: the longest [BOS] + s + s fits exactly
BATCH = 32
LR = 1e-3
PROBE_HALF_LENGTHS = (20, 30)
PROBE_N = 64

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "src" / "motif_widgets" / "data" / "toy_induction.pt"


def model_config(seed: int) -> dict:
    """Plain (JSON-able) kwargs for HookedTransformerConfig."""
    return {
        "n_layers": 2,
        "d_model": 64,
        "n_heads": 4,
        "d_head": 16,
        "d_vocab": D_VOCAB,
        "n_ctx": N_CTX,
        "attn_only": True,
        "normalization_type": "LN",
        "positional_embedding_type": "standard",
        "act_fn": "relu",  # irrelevant: attn_only has no MLPs
        "seed": seed,
        "device": "cpu",
        "default_prepend_bos": False,
    }


def make_batch(gen: torch.Generator, batch: int = BATCH):
    """Return tokens [batch, N_CTX] and a bool loss mask over target positions.

    mask[b, p] is True if the prediction made at position p (target token at
    p + 1) belongs to the predictable part of the second copy of s.
    """
    half = torch.randint(MIN_HALF, MAX_HALF + 1, (batch,), generator=gen)
    tokens = torch.randint(1, D_VOCAB, (batch, N_CTX), generator=gen)  # s and filler
    tokens[:, 0] = BOS
    pos = torch.arange(N_CTX)
    for b in range(batch):
        L = int(half[b])
        tokens[b, L + 1 : 2 * L + 1] = tokens[b, 1 : L + 1]
    # second copy occupies positions L+1 .. 2L; predictable targets are L+2 .. 2L,
    # which are predicted from positions L+1 .. 2L-1.
    p = pos[: N_CTX - 1].unsqueeze(0)
    L = half.unsqueeze(1)
    mask = (p >= L + 1) & (p <= 2 * L - 1)
    return tokens, mask


def repeated_half_loss(model, tokens, mask):
    logits = model(tokens, return_type="logits")  # [b, pos, vocab]
    logp = F.log_softmax(logits[:, :-1].float(), dim=-1)
    nll = -logp.gather(-1, tokens[:, 1:].unsqueeze(-1)).squeeze(-1)
    return nll[mask].mean()


@torch.no_grad()
def head_scores(model, seed: int) -> dict:
    """Per-head previous-token, induction and BOS attention scores on fresh probes."""
    gen = torch.Generator().manual_seed(seed + 12345)
    n_layers, n_heads = model.cfg.n_layers, model.cfg.n_heads
    acc = {k: torch.zeros(n_layers, n_heads) for k in ("prev_token", "induction", "bos")}
    losses = []
    for L in PROBE_HALF_LENGTHS:
        s = torch.randint(1, D_VOCAB, (PROBE_N, L), generator=gen)
        tokens = torch.cat([torch.full((PROBE_N, 1), BOS), s, s], dim=1)  # [n, 2L+1]
        T = tokens.shape[1]
        logits, cache = model.run_with_cache(tokens, names_filter=lambda n: n.endswith("attn.hook_pattern"))
        logp = F.log_softmax(logits[:, :-1], dim=-1)
        nll = -logp.gather(-1, tokens[:, 1:].unsqueeze(-1)).squeeze(-1)
        losses.append(nll[:, L + 1 : 2 * L].mean().item())
        i_all = torch.arange(1, T)
        i_ind = torch.arange(L + 1, T)  # every position of the second copy
        for layer in range(n_layers):
            pat = cache["pattern", layer]  # [n, head, q, k]
            acc["prev_token"][layer] += pat[:, :, i_all, i_all - 1].mean(dim=(0, 2))
            acc["induction"][layer] += pat[:, :, i_ind, i_ind - L + 1].mean(dim=(0, 2))
            acc["bos"][layer] += pat[:, :, i_all, 0].mean(dim=(0, 2))
    n = len(PROBE_HALF_LENGTHS)
    out = {k: [[round(float(x), 4) for x in row] for row in (v / n)] for k, v in acc.items()}
    out["probe_repeated_half_loss"] = round(float(np.mean(losses)), 4)
    return out


def print_scores(scores: dict) -> None:
    print("\nPer-head attention scores on probes [BOS]+s+s, half-length %s, %d seqs each:"
          % ("/".join(map(str, PROBE_HALF_LENGTHS)), PROBE_N))
    print(f"{'head':>6} {'prev_token':>11} {'induction':>10} {'bos':>8}")
    for layer, row in enumerate(scores["prev_token"]):
        for h in range(len(row)):
            print(f"{f'L{layer}H{h}':>6} {scores['prev_token'][layer][h]:>11.3f} "
                  f"{scores['induction'][layer][h]:>10.3f} {scores['bos'][layer][h]:>8.3f}")
    print(f"probe loss on predictable second half: {scores['probe_repeated_half_loss']:.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--log-every", type=int, default=100)
    args = ap.parse_args()

    torch.set_num_threads(1)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)

    # TL 3.x marks HookedTransformer deprecated in favour of TransformerBridge; it still works.
    warnings.filterwarnings("ignore", message="HookedTransformer is deprecated")
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    config = model_config(args.seed)
    model = HookedTransformer(HookedTransformerConfig(**config))
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=LR)
    gen = torch.Generator().manual_seed(args.seed)

    print(f"training: seed={args.seed} steps={args.steps} batch={BATCH} lr={LR} n_ctx={N_CTX} "
          f"half-length U[{MIN_HALF},{MAX_HALF}] threads={torch.get_num_threads()}", flush=True)
    t0 = time.time()
    window: list[float] = []
    first_below_1 = None
    for step in range(1, args.steps + 1):
        tokens, mask = make_batch(gen)
        loss = repeated_half_loss(model, tokens, mask)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        lv = loss.item()
        window.append(lv)
        if first_below_1 is None and lv < 1.0:
            first_below_1 = step
        if step % args.log_every == 0 or step == args.steps:
            print(f"step {step:5d}  loss(repeated half) {np.mean(window):.4f} "
                  f"(last {lv:.4f})  {time.time() - t0:6.1f}s", flush=True)
            window = []
    train_s = time.time() - t0
    model.eval()
    with torch.no_grad():
        # final loss: mean over 8 fresh batches (held-out generator)
        egen = torch.Generator().manual_seed(args.seed + 999)
        final_loss = float(np.mean([repeated_half_loss(model, *make_batch(egen)).item() for _ in range(8)]))
    print(f"training done in {train_s:.1f}s; first batch loss < 1.0 at step {first_below_1}; "
          f"held-out repeated-half loss {final_loss:.4f}")

    scores = head_scores(model, args.seed)
    print_scores(scores)

    ckpt = {
        "config": config,
        "state_dict": {k: v.detach().clone().cpu() for k, v in model.state_dict().items()},
        "meta": {
            "seed": args.seed,
            "steps": args.steps,
            "batch_size": BATCH,
            "lr": LR,
            "half_length_range": [MIN_HALF, MAX_HALF],
            "final_loss": round(final_loss, 4),
            "first_step_loss_below_1": first_below_1,
            "train_seconds": round(train_s, 1),
            "scores": scores,
            "description": (
                "2-layer attention-only HookedTransformer (d_model 64, 4 heads x d_head 16, vocab 1000, "
                f"n_ctx {N_CTX}, LN) trained on [BOS=0]+s+s+filler, s uniform in 1..999 with per-sample "
                f"half-length U[{MIN_HALF},{MAX_HALF}]; loss = next-token CE on the predictable part of the "
                "second copy. Layer 0 has previous-token heads, layer 1 induction heads; per-head "
                "scores in meta['scores'] (prev_token: attn i->i-1; induction: attn i->i-L+1 over the "
                "second copy; bos: attn i->0), measured on [BOS]+s+s probes with L in "
                f"{list(PROBE_HALF_LENGTHS)}. Built by scripts/train_toy_model.py."
            ),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(args.out.suffix + ".tmp")
    torch.save(ckpt, tmp)
    os.replace(tmp, args.out)
    # sanity: loads with weights_only=True and reproduces the model
    loaded = torch.load(args.out, weights_only=True)
    m2 = HookedTransformer(HookedTransformerConfig(**loaded["config"]))
    m2.load_state_dict(loaded["state_dict"])
    print(f"saved {args.out} ({args.out.stat().st_size / 1024:.1f} KiB); reload with weights_only=True OK; "
          f"total {time.time() - t0:.1f}s")


if __name__ == "__main__":
    main()
