"""The sampling functions against hand-computed distributions."""

from __future__ import annotations

import torch

from course_utils.sampling import (
    apply_repetition_penalty,
    apply_temperature,
    choose_token,
    top_k_filter,
    top_p_filter,
)


def probs(logits):
    return torch.softmax(logits, dim=-1)


def test_temperature_sharpens_and_flattens():
    logits = torch.tensor([2.0, 1.0, 0.0])
    cold, warm = probs(apply_temperature(logits, 0.5)), probs(apply_temperature(logits, 2.0))
    assert cold[0] > probs(logits)[0] > warm[0]


def test_top_k_keeps_k():
    logits = torch.tensor([0.1, 3.0, 2.0, -1.0])
    kept = top_k_filter(logits, 2)
    assert torch.isfinite(kept).tolist() == [False, True, True, False]
    assert torch.equal(top_k_filter(logits, 0), logits)


def test_top_p_keeps_the_smallest_nucleus():
    p = torch.tensor([0.5, 0.3, 0.15, 0.05])
    logits = p.log()
    assert torch.isfinite(top_p_filter(logits, 0.5)).tolist() == [True, False, False, False]
    assert torch.isfinite(top_p_filter(logits, 0.8)).tolist() == [True, True, False, False]
    assert torch.isfinite(top_p_filter(logits, 0.81)).tolist() == [True, True, True, False]
    shuffled = logits[[2, 0, 3, 1]]  # order of the vocabulary must not matter
    assert torch.isfinite(top_p_filter(shuffled, 0.8)).tolist() == [False, True, False, True]


def test_repetition_penalty_lowers_seen_tokens_both_signs():
    logits = torch.tensor([2.0, -2.0, 1.0])
    out = apply_repetition_penalty(logits, [0, 1], 2.0)
    assert out.tolist() == [1.0, -4.0, 1.0]
    assert logits.tolist() == [2.0, -2.0, 1.0]  # input untouched


def test_greedy_and_seeded_sampling():
    logits = torch.tensor([0.0, 5.0, 1.0])
    assert int(choose_token(logits, temperature=0.0)) == 1

    def draws(seed):
        generator = torch.Generator().manual_seed(seed)
        return [int(choose_token(logits, temperature=3.0, generator=generator)) for _ in range(30)]

    assert draws(3) == draws(3)
    assert draws(3) != draws(4)
    counts = torch.bincount(torch.stack([choose_token(torch.zeros(4), temperature=1.0) for _ in range(400)]), minlength=4)
    assert counts.min() > 60  # uniform logits -> every token drawn about 100 times
