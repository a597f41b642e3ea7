"""LoRA from scratch: low-rank adapters, injected into a model, trained, merged and saved.

Fine-tuning all 134.5 million weights of SmolLM2 means keeping gradients and two AdamW moments for
each of them (four copies of the model). **LoRA** (Hu et al., 2021) freezes the weights and learns a
*low-rank update* next to chosen linear layers instead::

    y = x W^T + (alpha / r) * x A^T B^T        A: (r, in)   B: (out, r)   r << in, out

Only ``A`` and ``B`` are trained: ``r * (in + out)`` numbers per layer instead of ``in * out``.
``B`` starts at zero, so before training the model computes exactly what it computed before.
``alpha / r`` (the *scaling*) keeps the size of the update comparable when you change ``r``.
After training the update can be **merged**, ``W' = W + (alpha / r) B A``, and the model is an
ordinary model again: same size, same speed, no adapter code needed to run it.

This package is the course's own implementation; lesson 08 checks it against ``peft`` (same
weights, same outputs to 1e-4) and :func:`save_adapter` writes ``peft``'s file format, so
``PeftModel.from_pretrained`` loads our adapters.

>>> import torch
>>> layer = LoRALinear(torch.nn.Linear(6, 4), r=2, alpha=4)
>>> x = torch.randn(3, 6)
>>> torch.equal(layer(x), layer.base(x))          # B = 0: nothing changes yet
True

One module per concept: the adapter first, then what training needs::

    layer.py        LoRALinear: the frozen layer + (alpha / r) B A, merge / unmerge
    model.py        inject_lora, count_parameters, lora_disabled, merge_lora (a whole model)
    peft_format.py  save_adapter, load_adapter, peft_state_dict (peft's file format)
    data.py         the lesson's instruction data, chat-formatted, answer-only labels, batches
    training.py     lm_loss and train (AdamW, linear decay, clipped gradients)
    scoring.py      response_loss (held out), generate (batched greedy), exact_match

Every name is importable from here: ``from course_utils import lora`` then ``lora.inject_lora(...)``.

Taught in: lesson 08 and lab 08 (lesson 11 reuses the data format).
"""

from __future__ import annotations

from .data import (
    DATA_FILE,
    IGNORE_INDEX,
    Batch,
    Example,
    batches,
    chat_prompt,
    encode_example,
    end_of_turn,
    load_examples,
    make_batch,
)
from .layer import LoRALinear, check_rank, is_lora
from .model import (
    ATTENTION_PROJECTIONS,
    ParameterCount,
    count_parameters,
    inject_lora,
    lora_disabled,
    lora_layers,
    lora_parameter_count,
    merge_lora,
)
from .peft_format import (
    ADAPTER_CONFIG,
    ADAPTER_WEIGHTS,
    load_adapter,
    peft_state_dict,
    save_adapter,
)
from .scoring import exact_match, generate, response_loss
from .training import TrainResult, lm_loss, train

__all__ = [
    "ADAPTER_CONFIG", "ADAPTER_WEIGHTS", "ATTENTION_PROJECTIONS", "DATA_FILE", "IGNORE_INDEX",
    "Batch", "Example", "LoRALinear", "ParameterCount", "TrainResult",
    "batches", "chat_prompt", "check_rank", "count_parameters", "encode_example", "end_of_turn", "exact_match",
    "generate", "inject_lora", "is_lora", "lm_loss", "load_adapter", "load_examples", "lora_disabled", "lora_layers",
    "lora_parameter_count", "make_batch", "merge_lora", "peft_state_dict", "response_loss", "save_adapter", "train",
]
