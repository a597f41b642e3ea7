"""Scoring a fine-tuned model: held-out loss, batched greedy answers, and exact match against references.

>>> exact_match(["2024-01-05", " 1999-12-31 "], ["2024-01-05", "1999-12-30"])
0.5

Taught in: lesson 08 (the base model against the fine-tuned one on 100 held-out examples).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ..errors import DataError
from .data import Example, chat_prompt, make_batch
from .training import lm_loss


def response_loss(model: nn.Module, tokenizer: Any, examples: Sequence[Example], batch_size: int = 16) -> float:
    """Mean cross-entropy per answer token (nats) on ``examples``: the held-out loss."""

    total, count = 0.0, 0
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for start in range(0, len(examples), batch_size):
                batch = make_batch(tokenizer, examples[start:start + batch_size])
                total += float(lm_loss(model, batch, reduction="sum"))
                count += batch.n_targets
    finally:
        model.train(was_training)
    if count == 0:
        raise DataError("no answer tokens to score", fix="pass some examples")
    return total / count


def generate(model: nn.Module, tokenizer: Any, prompts: Sequence[str], max_new_tokens: int = 16, batch_size: int = 16) -> list[str]:
    """Greedy answers to chat ``prompts``, several at a time (left-padded batches, KV cache)."""

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    answers = []
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(prompts), batch_size):
            encoded = [tokenizer.encode(chat_prompt(tokenizer, p), add_special_tokens=False) for p in prompts[start:start + batch_size]]
            length = max(len(ids) for ids in encoded)
            # left padding: every prompt ends at the last column, where generation continues
            input_ids = torch.tensor([[pad] * (length - len(ids)) + ids for ids in encoded])
            mask = torch.tensor([[0] * (length - len(ids)) + [1] * len(ids) for ids in encoded])
            with torch.inference_mode():
                out = model.generate(input_ids=input_ids, attention_mask=mask, max_new_tokens=max_new_tokens,
                                     do_sample=False, pad_token_id=pad, eos_token_id=tokenizer.eos_token_id)
            answers += [tokenizer.decode(row[length:], skip_special_tokens=True).strip() for row in out]
    finally:
        model.train(was_training)
    return answers


def exact_match(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Fraction of predictions equal to their reference (surrounding whitespace ignored)."""
    if len(predictions) != len(references) or not references:
        raise DataError(f"{len(predictions)} predictions for {len(references)} references", fix="pass one prediction per reference")
    return sum(p.strip() == r.strip() for p, r in zip(predictions, references, strict=True)) / len(references)
