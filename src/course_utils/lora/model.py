"""LoRA in a whole model: inject adapters by layer name, count parameters, switch them off, merge them.

>>> import torch
>>> net = torch.nn.Sequential()
>>> net.add_module("q_proj", torch.nn.Linear(8, 8))
>>> inject_lora(net, targets=("q_proj",), r=2)
['q_proj']
>>> print(count_parameters(net))                  # 2 * (8 + 8) adapter weights are trainable
32 trainable of 104 parameters (30.77%)

Taught in: lesson 08 (LoRA and QLoRA on SmolLM2).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..errors import InvalidOption
from .layer import LoRALinear, check_rank, is_lora

ATTENTION_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj")


def inject_lora(
    model: nn.Module,
    targets: Sequence[str] = ATTENTION_PROJECTIONS,
    r: int = 8,
    alpha: float = 16.0,
    dropout: float = 0.0,
) -> list[str]:
    """Freeze every weight of ``model`` and wrap each layer named ``targets`` with a LoRA update.

    Works **in place** (like ``peft.get_peft_model``): deep-copy the model first if you still need
    the original. A module matches when the last part of its name is in ``targets``
    (``model.layers.3.self_attn.q_proj`` matches ``"q_proj"``). Returns the wrapped names.
    """
    check_rank(r, alpha, dropout)
    if isinstance(targets, str):
        targets = (targets,)
    if any(is_lora(m) for m in model.modules()):
        raise InvalidOption("this model already has LoRA layers", fix="inject once; to start again, load a fresh model (or deep-copy the original)")
    names = [name for name, module in model.named_modules() if name.rpartition(".")[2] in targets and _is_linear_like(module)]
    if not names:
        found = sorted({n.rpartition(".")[2] for n, m in model.named_modules() if _is_linear_like(m)})
        raise InvalidOption(f"no linear layer of the model is named {list(targets)}", fix=f"pick targets among {found}")
    for p in model.parameters():
        p.requires_grad_(False)
    for name in names:
        parent, child = _parent(model, name)
        setattr(parent, child, LoRALinear(getattr(parent, child), r=r, alpha=alpha, dropout=dropout))
    return names


def _is_linear_like(module: Any) -> bool:
    return hasattr(module, "in_features") and hasattr(module, "out_features") and not is_lora(module)


def _parent(model: Any, name: str) -> tuple[Any, str]:
    parent_name, _, child = name.rpartition(".")
    return (model.get_submodule(parent_name) if parent_name else model), child


def lora_layers(model: nn.Module) -> dict[str, Any]:
    """Every LoRA layer of ``model`` by module name."""
    return {name: m for name, m in model.named_modules() if is_lora(m)}


@dataclass(frozen=True)
class ParameterCount:
    trainable: int
    total: int

    @property
    def fraction(self) -> float:
        return self.trainable / self.total if self.total else 0.0

    def __str__(self) -> str:
        return f"{self.trainable:,} trainable of {self.total:,} parameters ({100 * self.fraction:.2f}%)"


def count_parameters(model: nn.Module) -> ParameterCount:
    """Trainable and total parameters (each shared tensor once; buffers such as int codes excluded)."""
    params = list(model.parameters())  # .parameters() already yields a tied weight only once
    return ParameterCount(sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params))


def lora_parameter_count(model: nn.Module, targets: Sequence[str] = ATTENTION_PROJECTIONS, r: int = 8) -> int:
    """What :func:`inject_lora` would add, by the formula ``r * (in + out)`` per targeted layer."""
    return sum(
        r * (m.in_features + m.out_features)
        for name, m in model.named_modules()
        if name.rpartition(".")[2] in targets and (_is_linear_like(m) or is_lora(m))
    )


@contextlib.contextmanager
def lora_disabled(model: nn.Module) -> Iterator[nn.Module]:
    """Run the model as if it had no adapters (the base model), e.g. for before/after comparisons."""
    layers = list(lora_layers(model).values())
    saved = [layer.enabled for layer in layers]
    for layer in layers:
        layer.enabled = False
    try:
        yield model
    finally:
        for layer, state in zip(layers, saved, strict=True):
            layer.enabled = state


def merge_lora(model: nn.Module) -> nn.Module:
    """Fold every adapter into its layer and remove the LoRA wrappers (in place; returns ``model``).

    Afterwards the model has exactly the original architecture (plain ``nn.Linear`` layers), so it
    can be saved with ``save_pretrained`` or exported to GGUF. A quantized base (QLoRA) becomes a
    full-precision ``nn.Linear`` holding ``dequantized W + update``.
    """
    layers = lora_layers(model)
    if not layers:
        raise InvalidOption("the model has no LoRA layers to merge", fix="inject_lora(model) and train it first (or load_adapter)")
    for name, layer in layers.items():
        parent, child = _parent(model, name)
        base = layer.base
        if isinstance(getattr(base, "weight", None), nn.Parameter):
            layer.merge()
            merged = base
        else:  # quantized base: its weight is computed from int codes on the fly
            merged = nn.Linear(layer.in_features, layer.out_features, bias=getattr(base, "bias", None) is not None)
            with torch.no_grad():
                weight = base.weight.to(torch.float32)
                merged.weight.copy_(weight + layer.delta_weight().to(torch.float32))
                if base.bias is not None:
                    merged.bias.copy_(base.bias)
        merged.weight.requires_grad_(False)
        setattr(parent, child, merged)
    return model
