"""Turning next-token logits into a choice: temperature, top-k, top-p and repetition penalty.

Each function takes a 1-D tensor of logits (one score per vocabulary entry) and returns a new one;
filtered-out entries get ``-inf`` so that softmax gives them probability 0. The transformers
backend uses exactly these functions, so what the lesson shows is what the backend does.

>>> import torch
>>> logits = torch.tensor([2.0, 1.0, 0.0, -1.0])
>>> top_k_filter(logits, 2)
tensor([2., 1., -inf, -inf])
>>> int(choose_token(logits, temperature=0.0))
0
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def apply_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Divide by T: T < 1 sharpens the distribution, T > 1 flattens it (T must be > 0)."""
    return logits / temperature


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the k highest logits; k <= 0 or k >= vocabulary size keeps everything."""
    if k <= 0 or k >= logits.numel():
        return logits
    kth_best = torch.topk(logits, k).values[-1]
    return logits.masked_fill(logits < kth_best, float("-inf"))


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Nucleus sampling: keep the smallest set of tokens whose probabilities add up to >= p."""
    if p >= 1.0:
        return logits
    sorted_logits, order = torch.sort(logits, descending=True)
    cumulative = torch.softmax(sorted_logits, dim=-1).cumsum(dim=-1)
    # drop a token when the tokens *before* it already reach p (so the first token always stays)
    drop_sorted = (cumulative - torch.softmax(sorted_logits, dim=-1)) >= p
    drop = torch.zeros_like(drop_sorted).scatter(0, order, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))


def apply_repetition_penalty(
    logits: torch.Tensor, previous_ids: Sequence[int], penalty: float
) -> torch.Tensor:
    """Make already-seen tokens less likely (CTRL paper, Keskar et al. 2019).

    A seen token's positive logit is divided by ``penalty``, a negative one multiplied by it, so
    the token always loses probability when penalty > 1.
    """
    if penalty == 1.0 or len(previous_ids) == 0:
        return logits
    ids = torch.as_tensor(sorted(set(previous_ids)), dtype=torch.long)
    seen = logits[ids]
    logits = logits.clone()
    logits[ids] = torch.where(seen > 0, seen / penalty, seen * penalty)
    return logits


def choose_token(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    repeat_penalty: float = 1.0,
    previous_ids: Sequence[int] = (),
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Pick the next token id. Temperature 0 means greedy: always the most likely token."""
    logits = apply_repetition_penalty(logits.float(), previous_ids, repeat_penalty)
    if temperature == 0.0:
        return torch.argmax(logits)
    logits = top_p_filter(top_k_filter(apply_temperature(logits, temperature), top_k), top_p)
    probs = torch.softmax(logits, dim=-1)
    return torch.multinomial(probs, num_samples=1, generator=generator)[0]
