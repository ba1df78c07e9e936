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
    pos = torch.arange(n_max, device=dev)
    valid_row = pos[None, :] < lengths[:, None]  # [B, N]
    query = valid_row & (pos[None, :] >= 1)
    qf = query.to(dt)[:, None, :]  # [B, 1, N]

    def below(d: int) -> torch.Tensor:  # [B, H, N]: A[i, i - d], 0 for i < d
        band = torch.diagonal(a, offset=-d, dim1=2, dim2=3)
        return torch.cat([band.new_zeros(band.shape[:-1] + (min(d, n_max),)), band], -1)

    diag = below(0)
    prev = below(1)
    first = a[..., 0]
    # keys i-1..i-4, first token excluded: each band's entry at i = d is key 0
    recent = sum(below(d) * (pos >= d + 1).to(dt) for d in range(1, RECENT_WINDOW + 1))
    diffuse = -torch.xlogy(a, a).sum(-1) / torch.log(pos.to(dt) + 1).clamp(min=torch.finfo(dt).tiny)

    positional = torch.stack([prev, diag, first, recent, diffuse], -1)  # [B, H, N, 5]
    sums = [(positional * qf[..., None]).sum(2)]
    n_query = query.to(dt).sum(1)
    rows = [n_query[:, None].expand(b, positional.shape[-1])]

    if token_ids is not None:
        tok = token_ids
        i, j = pos[:, None], pos[None, :]
        earlier = ((j < i) & (j >= 1))[None] & valid_row[:, None, :] & valid_row[:, :, None]
        dup = earlier & (tok[:, None, :] == tok[:, :, None])
        prev_tok = torch.cat([torch.full_like(tok[:, :1], -1), tok[:, :-1]], 1)  # token before key j
        ind = earlier & (prev_tok[:, None, :] == tok[:, :, None])
        for keys in (dup, ind):
            has = keys.any(-1)  # [B, N] rows with an eligible key
            # the eligible (b, i, j) cells are few: gather them for every head and add up per (b, i)
            bb, ii, jj = torch.nonzero(keys, as_tuple=True)
            mass = a.new_zeros((b * n_max, a.shape[1]))
            mass.index_add_(0, bb * n_max + ii, a[bb, :, ii, jj])
            mass = mass.view(b, n_max, -1).transpose(1, 2)  # [B, H, N]
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


#: Other names of the models in data/known_heads.json: TransformerLens's official names and
#: aliases, and Hugging Face repository names (compared case-insensitively, org prefix dropped).
MODEL_ALIASES: dict[str, str] = {
    "gpt2": "gpt2-small",
    "gpt2-small": "gpt2-small",
    "openai-community/gpt2": "gpt2-small",
    "openai-gpt2-small": "gpt2-small",
}


def canonical_model_name(model_name: str) -> str:
    """The name known_heads.json files a model under ("gpt2" -> "gpt2-small"); other names
    are returned as given."""
    known = _known_heads()["models"]
    if model_name in known:
        return model_name
    key = str(model_name).strip().lower()
    for candidate in (key, key.rsplit("/", 1)[-1]):
        if candidate in MODEL_ALIASES:
            return MODEL_ALIASES[candidate]
    return model_name


def known_classes(model_name: str, layer: int, head: int) -> list[str]:
    """Literature classes of a head ("source:Class"), for models with published labels
    (gpt2-small, also found as "gpt2" or "openai-community/gpt2": IOI, the SAE survey and
    greater-than; see data/known_heads.json)."""
    model = _known_heads()["models"].get(canonical_model_name(model_name))
    if model is None:
        return []
    return list(model.get(f"L{layer}H{head}", []))


def known_class_groups() -> dict[str, dict]:
    """Group of each known class: {class: {"group": name, "color": "#rrggbb"}}."""
    return _known_heads()["groups"]
