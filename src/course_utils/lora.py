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

This module is the course's own implementation; lesson 08 checks it against ``peft`` (same
weights, same outputs to 1e-4) and :func:`save_adapter` writes ``peft``'s file format, so
``PeftModel.from_pretrained`` loads our adapters.

>>> import torch
>>> layer = LoRALinear(torch.nn.Linear(6, 4), r=2, alpha=4)
>>> x = torch.randn(3, 6)
>>> torch.equal(layer(x), layer.base(x))          # B = 0: nothing changes yet
True
>>> layer.r * (6 + 4) == sum(p.numel() for p in layer.parameters() if p.requires_grad)
True

The second half of the module is what training needs: the lesson's instruction data
(``data/lora_dates.jsonl``), chat-formatted examples whose loss counts only the answer tokens,
batches, a short training loop, held-out loss and batched greedy generation.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .errors import DataError, InvalidOption
from .paths import atomic_folder

ATTENTION_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj")
DATA_FILE = "lora_dates.jsonl"
IGNORE_INDEX = -100  # label value that cross-entropy skips (prompt and padding positions)
ADAPTER_WEIGHTS = "adapter_model.safetensors"
ADAPTER_CONFIG = "adapter_config.json"


# ----------------------------------------------------------------------------- the layer
class LoRALinear(nn.Module):
    """A frozen linear layer plus a trainable low-rank update ``(alpha / r) * B @ A``.

    ``base`` is an ``nn.Linear`` or anything with ``in_features``/``out_features`` that maps
    ``(..., in) -> (..., out)``, e.g. the course's int4 ``QuantLinear`` (that is QLoRA's idea).
    ``A`` gets the same random start as in ``peft`` (Kaiming-uniform), ``B`` starts at zero.
    """

    def __init__(self, base: nn.Module, r: int = 8, alpha: float = 16.0, dropout: float = 0.0) -> None:
        super().__init__()
        _check_rank(r, alpha, dropout)
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


def _check_rank(r: Any, alpha: Any, dropout: Any) -> None:
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


# ----------------------------------------------------------------------------- a whole model
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
    _check_rank(r, alpha, dropout)
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


# ----------------------------------------------------------------------------- saving adapters
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


# ----------------------------------------------------------------------------- data
@dataclass(frozen=True)
class Example:
    """One instruction: the user's message and the answer we want the model to give."""

    prompt: str
    response: str
    id: int = -1


def load_examples(split: str = "train", path: str | os.PathLike | None = None) -> list[Example]:
    """The lesson's instruction data: ``"train"`` (400) or ``"test"`` (100 held out) examples.

    Each asks for the date in a sentence and wants it back as ``YYYY-MM-DD`` (``data/README.md``).
    """
    if split not in ("train", "test"):
        raise InvalidOption(f"split={split!r} is not a split of the data", fix='use "train" or "test"')
    from .datafiles import data_path, read_jsonl

    path = path or data_path(DATA_FILE)
    rows = read_jsonl(path, required={"prompt", "response", "split"})
    try:
        examples = [Example(r["prompt"], r["response"], int(r.get("id", i))) for i, r in enumerate(rows) if r["split"] == split]
    except (ValueError, TypeError) as err:
        raise DataError(f"{path} has an example with a bad id ({err})", fix="restore the file from git") from None
    if not examples:
        raise DataError(f"{path} has no {split!r} examples", fix="restore the file from git")
    return examples


def chat_prompt(tokenizer: Any, prompt: str) -> str:
    """The text the model sees for a user message, up to where the assistant's answer starts.

    The same chat template is used in training and when the model is served, so the fine-tuned
    behaviour shows up in every chat client. (SmolLM2's template adds its default system prompt.)
    """
    return tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True)


def end_of_turn(tokenizer: Any) -> str:
    """The token that closes an assistant turn (``<|im_end|>`` for SmolLM2): the model must learn it to stop."""
    return tokenizer.eos_token or ""


def encode_example(tokenizer: Any, example: Example) -> tuple[list[int], list[int]]:
    """``(input_ids, labels)`` for supervised fine-tuning (SFT) on one example.

    ``input_ids`` = chat prompt + answer + end-of-turn token. ``labels`` equals ``input_ids`` on the
    answer and end-of-turn, and ``-100`` (ignored by the loss) on the prompt: the model is trained
    to *answer*, not to reproduce the question.
    """
    prompt_ids = tokenizer.encode(chat_prompt(tokenizer, example.prompt), add_special_tokens=False)
    answer_ids = tokenizer.encode(example.response + end_of_turn(tokenizer), add_special_tokens=False)
    return prompt_ids + answer_ids, [IGNORE_INDEX] * len(prompt_ids) + answer_ids


@dataclass
class Batch:
    input_ids: torch.Tensor  # (batch, length), right-padded
    attention_mask: torch.Tensor  # 1 = real token, 0 = padding
    labels: torch.Tensor  # -100 where no loss is taken

    @property
    def n_tokens(self) -> int:
        """Real (non-padding) tokens: what the model computed on."""
        return int(self.attention_mask.sum())

    @property
    def n_targets(self) -> int:
        """Tokens that count in the loss (the answers)."""
        return int((self.labels != IGNORE_INDEX).sum())


def make_batch(tokenizer: Any, examples: Sequence[Example]) -> Batch:
    """Encode examples and right-pad them into one batch."""

    if not examples:
        raise DataError("no examples to batch", fix="pass at least one Example")
    encoded = [encode_example(tokenizer, ex) for ex in examples]
    length = max(len(ids) for ids, _ in encoded)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    input_ids = torch.full((len(encoded), length), pad, dtype=torch.long)
    labels = torch.full((len(encoded), length), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(encoded), length), dtype=torch.long)
    for i, (ids, labs) in enumerate(encoded):
        input_ids[i, :len(ids)] = torch.tensor(ids)
        labels[i, :len(labs)] = torch.tensor(labs)
        mask[i, :len(ids)] = 1
    return Batch(input_ids, mask, labels)


def batches(tokenizer: Any, examples: Sequence[Example], batch_size: int = 8, seed: int = 0) -> Iterator[Batch]:
    """Endless batches: the examples shuffled (with ``seed``) each epoch, ``batch_size`` at a time."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidOption(f"batch_size={batch_size!r} must be a whole number >= 1", fix="use e.g. batch_size=8")
    if not examples:
        raise DataError("no examples to train on", fix="pass load_examples('train')")
    rng = random.Random(seed)
    order = list(range(len(examples)))
    while True:
        rng.shuffle(order)
        for start in range(0, len(order) - batch_size + 1 if len(order) >= batch_size else 1, batch_size):
            yield make_batch(tokenizer, [examples[i] for i in order[start:start + batch_size]])


# ----------------------------------------------------------------------------- loss and training
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
