"""A quantized model: every ``nn.Linear`` swapped for a :class:`QuantLinear` that stores only codes,
scales and offsets and de-quantizes its weight on the fly (simulated quantization).

>>> layer = QuantLinear.from_linear(torch.nn.Linear(64, 8), bits=4, group_size=32)
>>> layer(torch.randn(2, 64)).shape
torch.Size([2, 8])

Taught in: lesson 05 (int8 and int4 SmolLM2, their size and perplexity); lesson 08 (QLoRA's frozen base).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from ..errors import InvalidOption
from .tensor import QTensor, check_quantize_args, dequantize, quantize


class QuantLinear(nn.Module):
    """A ``nn.Linear`` whose weight is stored as codes + scales (+ zero-points).

    The weight is de-quantized on the fly in each forward pass (see :mod:`course_utils.quant`), so
    the stored model is small and the arithmetic is that of the de-quantized weights.
    """

    def __init__(self, q: QTensor, bias: torch.Tensor | None = None) -> None:
        super().__init__()
        self.out_features, self.in_features = q.shape
        self.bits, self.scheme, self.granularity, self.group_size = q.bits, q.scheme, q.granularity, q.group_size
        self.weight_dtype = q.dtype
        self.register_buffer("codes", q.codes)
        self.register_buffer("scales", q.scales)
        self.register_buffer("zero_points", q.zero_points)  # None is allowed and not saved
        self.bias = nn.Parameter(bias.detach().clone(), requires_grad=False) if bias is not None else None

    @classmethod
    def from_linear(cls, linear: nn.Linear, **quant_kwargs: Any) -> QuantLinear:
        return cls(quantize(linear.weight.detach(), **quant_kwargs), linear.bias)

    def qtensor(self) -> QTensor:
        return QTensor(self.codes, self.scales, self.zero_points, (self.out_features, self.in_features),
                       self.bits, self.scheme, self.granularity, self.group_size, self.weight_dtype)

    @property
    def weight(self) -> torch.Tensor:
        """The de-quantized weight (built on demand, not stored)."""
        return dequantize(self.qtensor())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x, self.weight.to(x.dtype), None if self.bias is None else self.bias.to(x.dtype))

    def extra_repr(self) -> str:
        groups = f", {self.granularity} size {self.group_size}" if self.group_size else f", per-{self.granularity}"
        return f"in_features={self.in_features}, out_features={self.out_features}, int{self.bits} {self.scheme}{groups}"


def quantize_model(
    model: nn.Module,
    bits: int = 8,
    scheme: str = "absmax",
    granularity: str | None = None,
    group_size: int | None = None,
    skip: tuple[str, ...] = ("lm_head",),
    scale_dtype: Any = None,
    inplace: bool = False,
) -> nn.Module:
    """Replace every ``nn.Linear`` (except names ending in ``skip``) by a :class:`QuantLinear`.

    ``lm_head`` is skipped by default: in SmolLM2 it *is* the token-embedding table (tied weights),
    which stays in its original dtype here. Returns a quantized copy unless ``inplace=True``.
    """
    def wanted(name: str, module: nn.Module) -> bool:
        return isinstance(module, nn.Linear) and not any(name == s or name.endswith("." + s) for s in skip)

    names = [name for name, module in model.named_modules() if wanted(name, module)]
    if not names:
        raise InvalidOption("the model has no nn.Linear layer to quantize", fix="pass a PyTorch model (e.g. from load_hf_model()), or check `skip`")
    for name in names:  # check every layer first: a bad option fails before anything changes
        check_quantize_args(model.get_submodule(name).weight, bits, scheme, granularity, group_size)
    target = model if inplace else copy.deepcopy(model)
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = target.get_submodule(parent_name) if parent_name else target
        layer = QuantLinear.from_linear(target.get_submodule(name), bits=bits, scheme=scheme,
                                        granularity=granularity, group_size=group_size, scale_dtype=scale_dtype)
        setattr(parent, child, layer)
    return target
