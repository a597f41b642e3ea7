"""The loss and a short training loop: next-token cross-entropy on the answer tokens, AdamW on the
trainable (adapter) parameters only.

Taught in: lesson 08 (and ``benchmarks/lora.py``, which times full fine-tuning, LoRA and QLoRA).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InvalidOption
from .data import IGNORE_INDEX, Batch


def lm_loss(model: nn.Module, batch: Batch, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy of each next token where ``labels != -100`` (mean, or sum with ``reduction="sum"``).

    Position t predicts token t + 1, so logits and labels are shifted by one against each other.
    """
    logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
    return F.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]).float(), batch.labels[:, 1:].reshape(-1),
        ignore_index=IGNORE_INDEX, reduction=reduction,
    )


@dataclass
class TrainResult:
    losses: list[float] = field(default_factory=list)  # training loss of each step (nats per answer token)
    seconds: float = 0.0
    tokens: int = 0  # real tokens processed (prompt + answer, no padding)
    targets: int = 0  # answer tokens the loss was taken on

    @property
    def steps(self) -> int:
        return len(self.losses)

    @property
    def seconds_per_step(self) -> float:
        return self.seconds / self.steps if self.steps else float("nan")

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else float("nan")


def train(
    model: nn.Module,
    batches: Iterable[Batch],
    steps: int,
    lr: float = 2e-3,
    max_seconds: float | None = None,
    max_grad_norm: float = 1.0,
    log_every: int = 0,
) -> TrainResult:
    """A plain training loop: AdamW on the trainable parameters, one batch per step.

    Stops after ``steps`` steps or when ``max_seconds`` have passed. The learning rate decays
    linearly to 10% of ``lr`` over ``steps`` (a short, stable schedule for small runs); gradients
    are clipped to norm ``max_grad_norm``. Returns the loss of every step and the time taken.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise InvalidOption(f"steps={steps!r} must be a whole number >= 1", fix="use e.g. steps=20")
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise InvalidOption("the model has no trainable parameters", fix="inject_lora(model) first (it freezes the base and adds trainable adapters)")
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 - 0.9 * step / max(steps - 1, 1))
    result = TrainResult()
    source = iter(batches)
    was_training = model.training
    model.train()
    started = time.perf_counter()
    try:
        for step in range(steps):
            batch = next(source)
            loss = lm_loss(model, batch)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            result.losses.append(loss.item())
            result.tokens += batch.n_tokens
            result.targets += batch.n_targets
            result.seconds = time.perf_counter() - started
            if log_every and (step % log_every == 0 or step == steps - 1):
                print(f"step {step:>3}  loss {result.losses[-1]:.3f}  {result.seconds:5.1f} s")
            if max_seconds is not None and result.seconds >= max_seconds:
                break
    finally:
        model.train(was_training)
    return result
