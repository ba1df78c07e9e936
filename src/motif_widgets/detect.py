"""Head-type scores from collected patterns, and the literature's known head classes.

Every score is the mean, over the query rows where it is defined, of the attention a
row puts on the keys the head type looks at. They are computed per (head, prompt) while
patterns stream past (as a sum and a row count, so that any prompt subset aggregates
exactly) and need no extra model run:

- previous_token: weight on key i-1 (rows i >= 1).
- self: weight on key i (the diagonal; rows i >= 1).
- first_token: weight on key 0, the BOS / attention sink (rows i >= 1).
- recent: weight on keys i-4..i-1, first token excluded (rows i >= 1).
- diffuse: row entropy / log(i + 1): 1 for uniform attention (rows i >= 1).
- duplicate_token: weight on earlier positions holding the same token (rows that have one).
- induction: weight on the token right after an earlier occurrence of the current token
  (rows that have one; on repeated-random-token probes this is the classic induction score).
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

import torch

SCORE_DOCS: dict[str, str] = {
    "previous_token": "attention to the previous token",
    "self": "attention of a token to itself",
    "first_token": "attention to the first (BOS) token: the attention sink",
    "recent": "attention to the 4 tokens before the query (first token excluded)",
    "diffuse": "normalised row entropy: 1 = uniform over the visible tokens",
    "duplicate_token": "attention to earlier copies of the current token",
    "induction": "attention to the token after an earlier copy of the current token",
}
SCORE_NAMES: tuple[str, ...] = tuple(SCORE_DOCS)
TOKEN_SCORES = ("duplicate_token", "induction")
RECENT_WINDOW = 4


def score_sums(
    patterns: torch.Tensor, lengths: torch.Tensor, token_ids: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-(prompt, head) score sums over eligible rows, and the number of eligible rows.

    Args:
        patterns: [B, H, N, N], right-padded (cells beyond the prompt length are ignored).
        lengths: [B] true lengths.
        token_ids: [B, N] token ids (padding ignored), or None: the token scores then get 0 rows.
    Returns:
        sums [B, H, S] and rows [B, S] (float, pattern dtype), S = len(SCORE_NAMES).
    """
    a = patterns
    b, _, n_max, _ = a.shape
    dt, dev = a.dtype, a.device
    zero = torch.zeros((), dtype=dt, device=dev)
    pos = torch.arange(n_max, device=dev)
    valid_row = pos[None, :] < lengths[:, None]  # [B, N]
    query = valid_row & (pos[None, :] >= 1)
    qf = query.to(dt)[:, None, :]  # [B, 1, N]
    i, j = pos[:, None], pos[None, :]
    lower = (j <= i)[None]  # [1, N, N]

    diag = torch.diagonal(a, dim1=2, dim2=3)  # [B, H, N]
    prev = torch.cat([torch.zeros_like(diag[..., :1]), torch.diagonal(a, offset=-1, dim1=2, dim2=3)], -1)
    first = a[..., 0]
    recent_keys = ((i - j) >= 1) & ((i - j) <= RECENT_WINDOW) & (j >= 1)
    recent = (a * recent_keys.to(dt)).sum(-1)
    plogp = torch.where(a > 0, a * torch.log(torch.where(a > 0, a, 1.0)), zero)
    diffuse = -plogp.sum(-1) / torch.log(pos.to(dt) + 1).clamp(min=torch.finfo(dt).tiny)

    positional = torch.stack([prev, diag, first, recent, diffuse], -1)  # [B, H, N, 5]
    sums = [(positional * qf[..., None]).sum(2)]
    n_query = query.to(dt).sum(1)
    rows = [n_query[:, None].expand(b, positional.shape[-1])]

    if token_ids is not None:
        tok = token_ids
        earlier = lower & (j < i)[None] & (j >= 1)[None] & valid_row[:, None, :] & valid_row[:, :, None]
        dup = earlier & (tok[:, None, :] == tok[:, :, None])
        prev_tok = torch.cat([torch.full_like(tok[:, :1], -1), tok[:, :-1]], 1)  # token before key j
        ind = earlier & (prev_tok[:, None, :] == tok[:, :, None])
        for keys in (dup, ind):
            has = keys.any(-1)  # [B, N] rows with an eligible key
            mass = (a * keys[:, None].to(dt)).sum(-1)  # [B, H, N]
            sums.append((mass * has[:, None].to(dt)).sum(-1)[..., None])
            rows.append(has.to(dt).sum(-1)[:, None])
    else:
        sums.append(torch.zeros((b, a.shape[1], len(TOKEN_SCORES)), dtype=dt, device=dev))
        rows.append(torch.zeros((b, len(TOKEN_SCORES)), dtype=dt, device=dev))
    return torch.cat(sums, -1), torch.cat(rows, -1)


@lru_cache(maxsize=1)
def _known_heads() -> dict:
    path = resources.files("motif_widgets") / "data" / "known_heads.json"
    return json.loads(path.read_text(encoding="utf-8"))


def known_classes(model_name: str, layer: int, head: int) -> list[str]:
    """Literature classes of a head ("source:Class"), for models with published labels
    (gpt2-small: IOI, the SAE survey and greater-than; see data/known_heads.json)."""
    model = _known_heads()["models"].get(model_name)
    if model is None:
        return []
    return list(model.get(f"L{layer}H{head}", []))


def known_class_groups() -> dict[str, dict]:
    """Group of each known class: {class: {"group": name, "color": "#rrggbb"}}."""
    return _known_heads()["groups"]
