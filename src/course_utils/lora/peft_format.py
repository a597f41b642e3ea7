"""Saving and loading adapters in ``peft``'s file format (``adapter_model.safetensors`` + its config).

Only the adapters are saved (a few MB), under the tensor names ``peft`` uses, so
``PeftModel.from_pretrained(base, folder)`` loads what :func:`save_adapter` wrote, and
:func:`load_adapter` reads folders written by ``peft``.

Taught in: lesson 08.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from torch import nn

from ..errors import DataError, InvalidOption
from ..paths import atomic_folder
from .model import inject_lora, lora_layers

ADAPTER_WEIGHTS = "adapter_model.safetensors"
ADAPTER_CONFIG = "adapter_config.json"


def peft_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The adapter weights under the names ``peft`` uses in its files.

    ``model.layers.0.self_attn.q_proj`` -> ``base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight``
    (``peft`` wraps the model twice, hence ``base_model.model.``). ``peft.set_peft_model_state_dict``
    accepts this dictionary.
    """
    out = {}
    for name, layer in lora_layers(model).items():
        out[f"base_model.model.{name}.lora_A.weight"] = layer.lora_A.detach().contiguous()
        out[f"base_model.model.{name}.lora_B.weight"] = layer.lora_B.detach().contiguous()
    if not out:
        raise InvalidOption("the model has no LoRA layers", fix="inject_lora(model) first")
    return out


def save_adapter(model: nn.Module, folder: str | os.PathLike, base_model: str = "") -> Path:
    """Save only the adapters (a few MB), in ``peft``'s format, atomically; returns the folder.

    ``PeftModel.from_pretrained(base, folder)`` and :func:`load_adapter` both read it.
    """
    from safetensors.torch import save_file

    layers = lora_layers(model)
    tensors = peft_state_dict(model)
    first = next(iter(layers.values()))
    if any(layer.merged for layer in layers.values()):
        raise InvalidOption("the adapters are merged into the weights", fix="save before merging, or unmerge first")
    if any((layer.r, layer.alpha) != (first.r, first.alpha) for layer in layers.values()):
        raise InvalidOption("the adapters have different ranks or alphas", fix="use one r and alpha for every layer")
    config = {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": str(base_model),
        "r": first.r,
        "lora_alpha": first.alpha,
        "lora_dropout": float(getattr(first.dropout, "p", 0.0)),
        "target_modules": sorted({name.rpartition(".")[2] for name in layers}),
        "bias": "none",
        "fan_in_fan_out": False,
        "inference_mode": True,
        "init_lora_weights": True,
    }
    folder = Path(folder)

    def write(tmp: Path) -> None:
        save_file(tensors, str(tmp / ADAPTER_WEIGHTS))
        (tmp / ADAPTER_CONFIG).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")

    return atomic_folder(folder, write)


def load_adapter(model: nn.Module, folder: str | os.PathLike) -> list[str]:
    """Inject LoRA layers as described in ``folder``'s config and load their weights (in place).

    Reads folders written by :func:`save_adapter` or by ``peft``'s ``save_pretrained``.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(folder)
    try:
        config = json.loads((folder / ADAPTER_CONFIG).read_text(encoding="utf-8"))
        tensors = load_file(str(folder / ADAPTER_WEIGHTS))
    except (OSError, ValueError, SafetensorError) as err:  # SafetensorError: a damaged weights file
        raise DataError(f"no readable LoRA adapter in {folder} ({err})", fix="pass a folder written by save_adapter() or peft's save_pretrained()") from None
    if config.get("peft_type") != "LORA":
        raise DataError(f"{folder} holds a {config.get('peft_type')!r} adapter, not LoRA", fix="pass a LoRA adapter folder")
    names = inject_lora(model, targets=tuple(config["target_modules"]), r=int(config["r"]), alpha=float(config["lora_alpha"]))
    layers = lora_layers(model)
    missing = []
    for name in names:
        for part in ("lora_A", "lora_B"):
            key = f"base_model.model.{name}.{part}.weight"
            if key not in tensors:
                missing.append(key)
                continue
            param = getattr(layers[name], part)
            if tuple(tensors[key].shape) != tuple(param.shape):
                raise DataError(f"{key} has shape {tuple(tensors[key].shape)}, the model needs {tuple(param.shape)}",
                                fix="load the adapter into the base model it was trained on")
            param.data.copy_(tensors[key])
    if missing:
        raise DataError(f"the adapter lacks {len(missing)} tensors, e.g. {missing[0]}", fix="load the adapter into the base model it was trained on")
    return names
