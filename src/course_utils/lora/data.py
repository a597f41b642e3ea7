"""The instruction data for supervised fine-tuning: examples, chat-formatted, masked, batched.

Each example becomes ``chat prompt + answer + end-of-turn``; the labels are ``-100`` on the prompt,
so the loss counts only the answer tokens (the model learns to *answer*, not to repeat questions).

>>> examples = load_examples("test")
>>> len(examples), examples[0].response.count("-")
(100, 2)

Taught in: lesson 08 (the date-format data), lesson 11 (the app's synthetic data in the same format).
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ..errors import DataError, InvalidOption

DATA_FILE = "lora_dates.jsonl"
IGNORE_INDEX = -100  # label value that cross-entropy skips (prompt and padding positions)


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
    from ..datafiles import data_path, read_jsonl

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
