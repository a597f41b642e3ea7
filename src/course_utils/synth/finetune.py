"""Closing the loop: train a LoRA adapter on the synthetic records, then measure it on questions people wrote.

The records become lesson 08's ``Example(prompt, response)`` pairs (:func:`to_lora_examples`): the
prompt holds the passage and the question, the response is the answer span. The adapter is trained
the lesson-08 way (:mod:`course_utils.lora`) and cached, keyed by everything that produced it
(:func:`cached_adapter`): the same records give the same adapter without training again.

The held-out measure is SQuAD (:func:`course_utils.evaluation.tasks.squad`): other passages, and
questions written by people, not by the pipeline; token F1 and exact match as SQuAD scores them
(:mod:`course_utils.evaluation.extractive`), the base model and the adapter on the same items.

Taught in: lesson 11 (section 6, "Feeding the LoRA lesson").
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import DataError, InvalidOption
from ..paths import atomic_file

if TYPE_CHECKING:
    from ..evaluation.tasks import ReadingItem
    from ..lora import Example
    from ..specialists import Recipe

INSTRUCTION = "Answer from the passage with a few words copied from it."


def lora_prompt(record: Mapping[str, Any]) -> str:
    """The instruction a fine-tuned model would see: the passage, then the question.

    >>> print(lora_prompt({"passage": "Ada was born in 1815.", "question": "When was Ada born?"}))
    Answer from the passage with a few words copied from it.
    <BLANKLINE>
    Passage: Ada was born in 1815.
    <BLANKLINE>
    Question: When was Ada born?
    """
    return f"{INSTRUCTION}\n\nPassage: {record['passage'].strip()}\n\nQuestion: {record['question'].strip()}"


def to_lora_examples(records: Sequence[Mapping[str, Any]]) -> list[Example]:
    """Valid records as :class:`course_utils.lora.Example` (prompt, response): what lesson 08 trains on."""
    from ..lora import Example

    return [Example(lora_prompt(r), r["answer"].strip(), i) for i, r in enumerate(records)]


def write_jsonl(records: Sequence[Mapping[str, Any]], path: str | os.PathLike, test_fraction: float = 0.2) -> Path:
    """Write valid records in the JSONL format of ``data/lora_dates.jsonl`` (id, split, prompt, response),
    so that ``course_utils.lora.load_examples(split, path=...)`` reads them. Written atomically.
    """
    if not 0.0 <= test_fraction < 1.0:
        raise InvalidOption(f"test_fraction must be in [0, 1), got {test_fraction}", fix="use e.g. 0.2")
    examples = to_lora_examples(records)
    n_test = int(round(len(examples) * test_fraction))
    path = Path(path)
    with atomic_file(path) as f:  # a failed write leaves neither a half file nor a stray .tmp
        for i, ex in enumerate(examples):
            split = "test" if i >= len(examples) - n_test else "train"
            f.write(json.dumps({"id": i, "split": split, "prompt": ex.prompt, "response": ex.response}, ensure_ascii=False) + "\n")
    return path


def adapter_recipe(**changes: Any) -> Recipe:
    """Lesson 08's LoRA recipe (:class:`course_utils.specialists.Recipe`) sized for lesson 11: 8 steps of 4."""
    from ..specialists import Recipe

    return Recipe(**{"steps": 8, "batch_size": 4, **changes})


def adapter_key(model: Any, examples: Sequence[Example], recipe: Recipe) -> str:
    """A hash of the base model, every training example and the recipe: the adapter's cache name."""
    from ..specialists import base_id_of

    digest = hashlib.sha256(json.dumps({"base": base_id_of(model), "recipe": asdict(recipe)}, sort_keys=True).encode())
    for ex in examples:
        digest.update(f"\x00{ex.prompt}\x01{ex.response}".encode())
    return digest.hexdigest()[:16]


@dataclass
class AdapterRun:
    """A model with the adapter loaded, where it came from, and the training losses (empty when cached)."""

    model: Any
    folder: Path
    cached: bool
    losses: list[float]
    seconds: float


def cached_adapter(base: Any, tokenizer: Any, examples: Sequence[Example], settings: Recipe | None = None,
                   cache_dir: str | os.PathLike | None = None) -> AdapterRun:
    """A copy of ``base`` with a LoRA adapter trained on ``examples``: loaded from the cache when these
    exact examples and settings trained one before, else trained now and saved (atomically).

    ``base`` is not changed. A damaged cached adapter raises :class:`~course_utils.errors.DataError`
    (with the folder to delete) instead of being overwritten.
    """
    from ..config import settings as course_settings
    from ..specialists import adapted_copy, base_id_of

    settings = settings or adapter_recipe()
    if len(examples) < settings.batch_size:
        raise DataError(f"{len(examples)} examples cannot fill a batch of {settings.batch_size}",
                        fix="generate more records (more passages) or use a smaller batch_size")
    root = Path(cache_dir) if cache_dir is not None else course_settings().cache_dir / "synth-lora"
    folder = root / adapter_key(base, examples, settings)
    started = time.perf_counter()
    model, result = adapted_copy(base, tokenizer, examples, settings, folder, base_id=base_id_of(base))
    losses = [] if result is None else result.losses
    return AdapterRun(model.eval(), folder, result is None, losses, time.perf_counter() - started)


@dataclass(frozen=True)
class ReadingScores:
    """One model's answers to held-out reading questions, scored per item."""

    answers: list[str]
    f1: list[float]
    exact: list[float]

    @property
    def mean_f1(self) -> float:
        return sum(self.f1) / len(self.f1)

    @property
    def mean_exact(self) -> float:
        return sum(self.exact) / len(self.exact)


def answer_reading(model: Any, tokenizer: Any, items: Sequence[ReadingItem], max_new_tokens: int = 16) -> ReadingScores:
    """Greedy answers to each item's passage + question (the training prompt's format), scored by token F1
    and exact match against the item's reference answers."""
    from ..evaluation.extractive import squad_exact, squad_f1
    from ..lora import generate

    if not items:
        raise DataError("no held-out questions to answer", fix="pass e.g. squad(limit=40, max_passage_chars=400)")
    prompts = [lora_prompt({"passage": it.passage, "question": it.question}) for it in items]
    answers = generate(model, tokenizer, prompts, max_new_tokens=max_new_tokens)
    return ReadingScores(answers, [squad_f1(a, it.answers) for a, it in zip(answers, items, strict=True)],
                         [squad_exact(a, it.answers) for a, it in zip(answers, items, strict=True)])
