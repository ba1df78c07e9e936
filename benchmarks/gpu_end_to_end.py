"""The atlas end to end on a model of realistic size vs bare forward passes (issue 12, part 3).

A Llama-architecture model built from a config with random weights (about 1.1B parameters:
16 layers, d_model 2048, 32 query / 8 KV heads, MLP 8192, vocabulary 32,000; nothing is
downloaded), random-token prompts of --lengths tokens, batches as large as --batch allows.
For each length it times, on the same batches:

- bare forward: ``model.base_model(...)`` without patterns, with SDPA attention (what the model
  costs anyway) and with eager attention (the attention the atlas needs to see patterns);
- atlas: ``Atlas.from_model`` with the default ``motifs`` features, float32 kernels (``--dtype``)
  on the model's device: the same forward plus every layer's patterns reduced as they arrive;
- atlas, compiled: the same with the motifs block through ``torch.compile``
  (MOTIF_WIDGETS_COMPILE=1; its compilation happens in the untimed warm-up run).

Ratios atlas / forward are printed from one run (goal <= 1.2x vs the eager forward on a GPU).
Needs CUDA for the real measurement; ``--tiny`` runs the same code on a 2-layer model on the
CPU to check the script itself.

    python benchmarks/gpu_end_to_end.py                 # on a CUDA machine
    python benchmarks/gpu_end_to_end.py --tiny          # anywhere, seconds
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from motif_widgets import Atlas
from motif_widgets.features.kernels import use_compile
from motif_widgets.prompts import token_prompt


def build_model(tiny: bool, device: str, dtype: torch.dtype):
    from transformers import LlamaConfig, LlamaForCausalLM

    if tiny:
        config = LlamaConfig(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                             num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048)
    else:
        config = LlamaConfig(vocab_size=32000, hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
                             num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=4096)
    config.bos_token_id, config.pad_token_id = 1, 0
    torch.manual_seed(0)
    with torch.device(device):
        model = LlamaForCausalLM(config).to(dtype).eval()
    return model


def timed(fn, device: str, repeats: int = 3) -> float:
    """Median seconds of fn() over `repeats` runs after one warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tiny", action="store_true", help="a 2-layer model on the CPU (checks the script)")
    ap.add_argument("--lengths", type=int, nargs="+", default=[512, 1024])
    ap.add_argument("--prompts", type=int, default=64, help="prompts per length")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--model-dtype", default="bfloat16")
    ap.add_argument("--dtype", default="float32", help="feature kernel precision")
    args = ap.parse_args()
    device = "cuda" if torch.cuda.is_available() and not args.tiny else "cpu"
    if device == "cpu" and not args.tiny:
        raise SystemExit("no CUDA device: this benchmark measures the GPU (use --tiny to check the script on a CPU)")
    if args.tiny:
        args.lengths, args.prompts, args.batch, args.model_dtype = sorted({min(x, 128) for x in args.lengths}), 8, 4, "float32"
    model = build_model(args.tiny, device, getattr(torch, args.model_dtype))
    n_params = sum(p.numel() for p in model.parameters())
    name = torch.cuda.get_device_name() if device == "cuda" else "CPU"
    print(f"Llama-architecture, random weights, {n_params / 1e9:.2f}B parameters, {args.model_dtype}, on {name}")
    rng = np.random.default_rng(0)
    for n in args.lengths:
        prompts = [token_prompt(rng.integers(2, model.config.vocab_size, size=n - 1), id=f"r{k}") for k in range(args.prompts)]
        ids = torch.tensor([[1] + list(p.token_ids) for p in prompts], device=device)
        mask = torch.ones_like(ids)

        def forward(implementation: str):
            model.config._attn_implementation = implementation
            with torch.no_grad():
                for s in range(0, len(ids), args.batch):
                    model.base_model(input_ids=ids[s : s + args.batch], attention_mask=mask[s : s + args.batch], use_cache=False)

        t_sdpa = timed(lambda: forward("sdpa"), device)
        t_eager = timed(lambda: forward("eager"), device)
        model.config._attn_implementation = "sdpa"
        def atlas():
            return Atlas.from_model(model, prompts, batch_size=args.batch, max_tokens=None, prepend_bos=True,
                                    bos_token_id=1, dtype=getattr(torch, args.dtype), progress=False, validate=False)

        t_atlas = timed(atlas, device, repeats=1)
        with use_compile(True):
            t_compiled = timed(atlas, device, repeats=1)
        peak = f", peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB" if device == "cuda" else ""
        print(f"{args.prompts} prompts x {n} tokens, batch {args.batch}: forward sdpa {t_sdpa:.2f} s, eager "
              f"{t_eager:.2f} s, atlas {t_atlas:.2f} s -> atlas / eager forward {t_atlas / t_eager:.2f}x, "
              f"/ sdpa forward {t_atlas / t_sdpa:.2f}x; compiled motifs: atlas {t_compiled:.2f} s -> "
              f"{t_compiled / t_eager:.2f}x / {t_compiled / t_sdpa:.2f}x{peak}")


if __name__ == "__main__":
    main()
