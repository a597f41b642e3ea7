"""The LoRA layer: a frozen linear layer plus a trainable low-rank update ``(alpha / r) * B @ A``.

>>> import torch
>>> layer = LoRALinear(torch.nn.Linear(6, 4), r=2, alpha=4)
>>> x = torch.randn(3, 6)
>>> torch.equal(layer(x), layer.base(x))          # B = 0: nothing changes yet
True
>>> layer.r * (6 + 4) == sum(p.numel() for p in layer.parameters() if p.requires_grad)
True

Taught in: lesson 08 (lab 08 has the learner write its forward pass and compares).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ..errors import InvalidOption


class LoRALinear(nn.Module):
    """A frozen linear layer plus a trainable low-rank update ``(alpha / r) * B @ A``.

    ``base`` is an ``nn.Linear`` or anything with ``in_features``/``out_features`` that maps
    ``(..., in) -> (..., out)``, e.g. the course's int4 ``QuantLinear`` (that is QLoRA's idea).
    ``A`` gets the same random start as in ``peft`` (Kaiming-uniform), ``B`` starts at zero.
    """

    def __init__(self, base: nn.Module, r: int = 8, alpha: float = 16.0, dropout: float = 0.0) -> None:
        super().__init__()
        check_rank(r, alpha, dropout)
        in_features, out_features = _features(base)
        self.base = base
        for p in base.parameters():
            p.requires_grad_(False)
        self.r, self.alpha, self.scaling = r, float(alpha), float(alpha) / r
        dtype = _float_dtype(base)
        self.lora_A = nn.Parameter(torch.empty(r, in_features, dtype=dtype))
        self.lora_B = nn.Parameter(torch.zeros(out_features, r, dtype=dtype))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.merged = False  # True: the update lives inside base.weight
        self.enabled = True  # False: behave like the base layer (see lora_disabled)

    @property
    def in_features(self) -> int:
        return self.lora_A.shape[1]

    @property
    def out_features(self) -> int:
        return self.lora_B.shape[0]

    def delta_weight(self) -> torch.Tensor:
        """The update as a full ``(out, in)`` matrix: ``(alpha / r) * B @ A`` (rank <= r)."""
        return (self.lora_B @ self.lora_A) * self.scaling

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.base(x)
        if self.merged:
            return y if self.enabled else y - nn.functional.linear(x, self.delta_weight().to(x.dtype))
        if not self.enabled:
            return y
        # two thin matmuls, (.., in) -> (.., r) -> (.., out): the (out, in) matrix is never built
        update = (self.dropout(x).to(self.lora_A.dtype) @ self.lora_A.T) @ self.lora_B.T
        return y + (update * self.scaling).to(y.dtype)

    def merge(self) -> None:
        """Add the update into ``base.weight`` (undo with :meth:`unmerge`)."""
        if not self.merged:
            weight = self._base_weight()
            with torch.no_grad():
                weight += self.delta_weight().to(weight.dtype)
            self.merged = True

    def unmerge(self) -> None:
        """Subtract the update from ``base.weight`` again."""
        if self.merged:
            weight = self._base_weight()
            with torch.no_grad():
                weight -= self.delta_weight().to(weight.dtype)
            self.merged = False

    def _base_weight(self) -> torch.Tensor:
        weight = getattr(self.base, "weight", None)
        if not isinstance(weight, nn.Parameter):
            raise InvalidOption(
                f"cannot merge into a {type(self.base).__name__}: its weight is not stored as floats (quantized?)",
                fix="use merge_lora(model), which replaces the layer by a full-precision nn.Linear with the update added",
            )
        return weight

    def extra_repr(self) -> str:
        return f"r={self.r}, alpha={self.alpha:g}, scaling={self.scaling:g}, merged={self.merged}"


def is_lora(module: Any) -> bool:
    return isinstance(module, LoRALinear)


def check_rank(r: Any, alpha: Any, dropout: Any) -> None:
    if isinstance(r, bool) or not isinstance(r, int) or r < 1:
        raise InvalidOption(f"r={r!r} must be a whole number >= 1", fix="use a small rank such as r=8")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or alpha <= 0:
        raise InvalidOption(f"alpha={alpha!r} must be a positive number", fix="use e.g. alpha=2 * r")
    if not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise InvalidOption(f"dropout={dropout!r} must be in [0, 1)", fix="use dropout=0.0 (or e.g. 0.05)")


def _features(module: Any) -> tuple[int, int]:
    try:
        return int(module.in_features), int(module.out_features)
    except (AttributeError, TypeError):
        raise InvalidOption(
            f"LoRA wraps linear layers, not a {type(module).__name__}",
            fix="target nn.Linear modules, e.g. targets=('q_proj', 'v_proj')",
        ) from None


def _float_dtype(module: Any) -> Any:
    """dtype for the adapter: the base weight's if it is floating point, else float32."""
    for p in module.parameters():
        if p.is_floating_point():
            return p.dtype
    return getattr(module, "weight_dtype", torch.float32)
