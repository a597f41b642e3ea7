"""Size accounting: the bytes a saved model holds (shared tensors once), and where they go.

Taught in: lesson 05 (measured sizes against the formula) and lab 05.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .linear import QuantLinear
from .tensor import tensor_bytes


def stored_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """The tensors a saved copy of ``model`` holds (its state_dict), each shared tensor once.

    Tied weights (SmolLM2's ``lm_head.weight`` is ``embed_tokens.weight``) appear once, under the
    first name. Tensors packed in tuples (PyTorch's dynamically quantized layers) are included.
    """
    seen: set[tuple[int, int, tuple[int, ...]]] = set()
    unique: dict[str, torch.Tensor] = {}

    def add(name: str, value: Any) -> None:
        if isinstance(value, (tuple, list)):
            for i, item in enumerate(value):
                add(f"{name}.{i}", item)
        elif isinstance(value, torch.Tensor) and value.numel():
            key = (value.untyped_storage().data_ptr(), value.storage_offset(), tuple(value.shape))
            if key not in seen:
                seen.add(key)
                unique[name] = value

    for name, value in model.state_dict(keep_vars=False).items():
        add(name, value)
    return unique


def model_size_bytes(model: nn.Module) -> int:
    """Bytes needed to store ``model``: every stored tensor at its dtype, shared ones once."""
    return sum(tensor_bytes(t) for t in stored_tensors(model).values())


def size_breakdown(model: nn.Module) -> dict[str, int]:
    """Where the bytes go: quantized codes, scales, zero-points, and every other (unquantized) tensor.

    The values add up to :func:`model_size_bytes`.
    """
    parts = {"codes": 0, "scales": 0, "zero_points": 0, "unquantized": 0}
    quantized = {f"{name}.{part}" if name else part: part for name, m in model.named_modules()
                 if isinstance(m, QuantLinear) for part in ("codes", "scales", "zero_points")}
    for name, t in stored_tensors(model).items():
        parts[quantized.get(name, "unquantized")] += tensor_bytes(t)
    return parts


def expected_linear_bytes(shape: tuple[int, int], bits: int, group_size: int | None = None,
                          scheme: str = "absmax", granularity: str | None = None, scale_bytes: int = 2) -> int:
    """Bytes of one quantized ``(out, in)`` weight by the formula: codes at ``bits`` (packed), one
    scale per group, and one zero-point (1 byte) or minimum (``scale_bytes``) per group.

    >>> expected_linear_bytes((576, 576), bits=4, group_size=32)   # 165,888 code bytes + 10,368 scales * 2
    186624
    """
    n = shape[0] * shape[1]
    granularity = granularity or ("group" if group_size else "channel")
    groups = {"tensor": 1, "channel": shape[0], "group": n // (group_size or n), "block": n // (group_size or n)}[granularity]
    codes = (n * bits + 7) // 8
    offsets = {"absmax": 0, "zeropoint": 1, "minmax": scale_bytes}[scheme]
    return codes + groups * (scale_bytes + offsets)
