"""Two specialists of one base model for lesson 12 (merging): trained once, cached, scored fast.

Taught in lesson 12 (merging models) and used by its lab. Each *task* is a course data set of
instruction/answer pairs in the format of lesson 08 (``data/README.md``):

* ``"dates"``: a date in a sentence -> ``YYYY-MM-DD`` (``data/lora_dates.jsonl``, lesson 08's task);
* ``"units"``: a quantity in words -> number and SI symbol, ``23 kg`` (``data/lora_units.jsonl``).

:func:`specialist` fine-tunes the base model on one task with lesson 08's LoRA recipe
(:class:`Recipe`) and merges the adapter into full weights. Each adapter (3.7 MB) is identified by a
key made of the data file, the recipe and the base model (:func:`cache_key`), and found, in order:

1. in ``data/merging_adapters/<task>-<key>/``: the course ships the two adapters of the default
   recipe on the bundled SmolLM2 (made by ``data/make_merging_adapters.py``), so lesson 12 needs no
   long training, even with an empty cache;
2. in ``<COURSE_CACHE>/merging/<task>-<key>/``, where any other recipe or base model is saved the
   first time it is trained;
3. nowhere: then it is trained (a few minutes on 2 cores) and saved to the cache.

:func:`score` measures a model on a task's held-out examples: **greedy exact match** and the loss
of the reference answers, both from one forward pass. Greedy decoding reproduces the reference
exactly when, at every answer position, the most likely next token *is* the reference's token (up
to and including the end-of-turn token that stops generation): so teacher forcing gives the same
verdict as generating, at the cost of one forward pass instead of one per answer token.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import lora
from .errors import DataError, InvalidOption

TASKS = {"dates": "lora_dates.jsonl", "units": "lora_units.jsonl"}


def _check_task(task: str) -> str:
    if task not in TASKS:
        raise InvalidOption(f"task={task!r} is not a course task", fix=f"use one of {sorted(TASKS)}")
    return task


def examples(task: str, split: str = "test") -> list[lora.Example]:
    """The task's ``"train"`` (400) or held-out ``"test"`` (100) examples."""
    from .paths import data_path

    return lora.load_examples(split, path=data_path(TASKS[_check_task(task)]))


# ----------------------------------------------------------------------------- training, cached
@dataclass(frozen=True)
class Recipe:
    """How a specialist is trained: lesson 08's LoRA recipe, run longer (steps of ``batch_size``)."""

    steps: int = 40
    batch_size: int = 8
    lr: float = 3e-3
    r: int = 8
    alpha: float = 16.0
    targets: tuple[str, ...] = lora.ATTENTION_PROJECTIONS
    seed: int = 0


@dataclass
class Specialist:
    task: str
    model: Any  # the base model with the adapter merged in: plain full weights
    adapter_dir: Path
    trained_now: bool  # False: the adapter came from data/ (shipped) or from the cache
    train_result: lora.TrainResult | None = field(default=None, repr=False)

    @property
    def shipped(self) -> bool:
        """True when the adapter is the one that ships with the course in ``data/``."""
        return self.adapter_dir.parent == shipped_dir()


def shipped_dir() -> Path:
    """``data/merging_adapters/``: the adapters made by ``data/make_merging_adapters.py``."""
    from .paths import data_path

    return data_path("merging_adapters")


def base_id_of(model: Any) -> str:
    """A name of the base model that is the same on every machine (it goes into :func:`cache_key`).

    The bundled model is loaded from the course cache's conversion of its GGUF,
    ``<COURSE_CACHE>/hf/<gguf name>-<hash of where it is installed>``: its id is the GGUF's name
    (without that hash) and its parameter count. Any other model is named by ``name_or_path``.

    >>> from types import SimpleNamespace
    >>> from course_utils.config import settings
    >>> fake = SimpleNamespace(config=SimpleNamespace(name_or_path=str(settings().cache_dir / "hf" / "Tiny.Q4_1-0123456789")),
    ...                        num_parameters=lambda: 1000)
    >>> base_id_of(fake)
    'Tiny.Q4_1 (1000 parameters)'
    """
    from .config import settings

    path = Path(str(getattr(model.config, "name_or_path", "") or "model"))
    if path.parent == settings().cache_dir / "hf":
        return f"{path.name.rsplit('-', 1)[0]} ({model.num_parameters()} parameters)"
    return str(path)


def cache_key(task: str, recipe: Recipe, base_id: str) -> str:
    """A short hash of everything that determines the adapter: data file, recipe, base model."""
    from .paths import data_path

    digest = hashlib.sha1(data_path(TASKS[_check_task(task)]).read_bytes())
    digest.update(json.dumps({"recipe": asdict(recipe), "base": base_id}, sort_keys=True).encode())
    return digest.hexdigest()[:12]


def adapter_dir(task: str, recipe: Recipe, base_id: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """Where the adapter of ``task`` trained with ``recipe`` on ``base_id`` is cached."""
    from .config import settings

    root = Path(cache_dir) if cache_dir is not None else settings().cache_dir / "merging"
    return root / f"{task}-{cache_key(task, recipe, base_id)}"


def specialist(task: str, base: Any, tokenizer: Any, recipe: Recipe | None = None, *, base_id: str | None = None,
               retrain: bool = False, cache_dir: str | os.PathLike | None = None, log_every: int = 0) -> Specialist:
    """The base model fine-tuned on ``task`` (LoRA, merged into the weights); ``base`` is not changed.

    The adapter is loaded from ``data/merging_adapters/`` or from the cache when either has it (see
    the module docstring); otherwise, or with ``retrain=True``, it is trained and saved to the cache
    atomically. ``base_id`` names the base model in the key (default: :func:`base_id_of`).
    """
    recipe = recipe or Recipe()
    base_id = base_id or base_id_of(base)
    folder = adapter_dir(task, recipe, base_id, cache_dir)
    shipped = adapter_dir(task, recipe, base_id, shipped_dir())
    if not retrain and not folder.exists() and shipped.is_dir():
        folder = shipped
    model, result = adapted_copy(base, tokenizer, examples(task, "train"), recipe, folder, base_id=base_id,
                                 retrain=retrain, log_every=log_every)
    if result is not None:
        save_training_log(result, recipe, folder / TRAINING_LOG)
    lora.merge_lora(model)
    return Specialist(task, model.eval(), folder, trained_now=result is not None, train_result=result)


def adapted_copy(base: Any, tokenizer: Any, train_examples: Sequence[lora.Example], recipe: Recipe, folder: Path, *,
                 base_id: str, retrain: bool = False, log_every: int = 0) -> tuple[Any, lora.TrainResult | None]:
    """A copy of ``base`` with the LoRA adapter of ``folder`` (not merged), and the training result.

    The adapter is loaded when ``folder`` holds one (the result is then None); otherwise, or with
    ``retrain=True``, it is trained on ``train_examples`` with ``recipe`` and saved there atomically
    (complete or absent). A damaged adapter is reported, never overwritten. Used by :func:`specialist`
    (lesson 12) and by lesson 11's adapter on synthetic data (``synth.cached_adapter``).
    """
    model = copy.deepcopy(base)
    if retrain or not folder.exists():
        result = train_on(model, tokenizer, train_examples, recipe, log_every)
        lora.save_adapter(model, folder, base_model=base_id)
        return model, result
    try:
        lora.load_adapter(model, folder)
    except DataError as err:
        raise DataError(f"damaged or unreadable adapter: {err.problem}", fix=f"delete {folder} and run again (it is retrained)") from None
    return model, None


def train(model: Any, tokenizer: Any, task: str, recipe: Recipe, log_every: int = 0) -> lora.TrainResult:
    """Inject LoRA adapters into ``model`` (in place) and train them on ``task``'s train split with ``recipe``."""
    return train_on(model, tokenizer, examples(task, "train"), recipe, log_every)


def train_on(model: Any, tokenizer: Any, train_examples: Sequence[lora.Example], recipe: Recipe,
             log_every: int = 0) -> lora.TrainResult:
    """Inject LoRA adapters into ``model`` (in place) and train them on ``train_examples`` with ``recipe``."""
    import torch

    torch.manual_seed(recipe.seed)
    lora.inject_lora(model, targets=recipe.targets, r=recipe.r, alpha=recipe.alpha)
    data = lora.batches(tokenizer, train_examples, recipe.batch_size, seed=recipe.seed)
    return lora.train(model, data, steps=recipe.steps, lr=recipe.lr, log_every=log_every)


TRAINING_LOG = "training.json"


def save_training_log(result: lora.TrainResult, recipe: Recipe, path: Path) -> None:
    """The recipe and the loss of every step, beside the adapter (lesson 12 plots the shipped ones)."""
    from .paths import atomic_write_text

    log = {"recipe": asdict(recipe), "losses": [round(x, 6) for x in result.losses], "seconds": round(result.seconds, 1)}
    atomic_write_text(path, json.dumps(log, indent=1) + "\n")


def training_log(adapter: str | os.PathLike) -> dict[str, Any]:
    """The ``training.json`` written beside an adapter when it was trained: ``recipe``, ``losses``, ``seconds``."""
    path = Path(adapter) / TRAINING_LOG
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise DataError(f"no readable training log at {path} ({err})", fix="train the adapter again (specialist(..., retrain=True))") from None


def save_model(model: Any, tokenizer: Any, folder: str | os.PathLike) -> Path:
    """``save_pretrained`` model and tokenizer into ``folder`` atomically (for mergekit); returns it."""
    from .paths import atomic_folder

    return atomic_folder(Path(folder), lambda tmp: (model.save_pretrained(tmp), tokenizer.save_pretrained(tmp)))


# ----------------------------------------------------------------------------- scoring
@dataclass(frozen=True)
class TaskScore:
    """A model on one task's held-out examples."""

    task: str
    correct: tuple[bool, ...]  # greedy answer == reference, per example
    loss: float  # mean cross-entropy per answer token (nats), end-of-turn included

    @property
    def n(self) -> int:
        return len(self.correct)

    @property
    def em(self) -> float:
        return sum(self.correct) / self.n

    @property
    def stderr(self) -> float:
        """Standard error of the exact match, sqrt(p (1 - p) / n)."""
        from .evaluation import binomial_stderr

        return binomial_stderr(self.em, self.n)

    def __str__(self) -> str:
        return f"{self.task}: exact match {self.em:.0%} ± {self.stderr:.0%} (n={self.n}), answer loss {self.loss:.3f}"


def score(model: Any, tokenizer: Any, items: Sequence[lora.Example], task: str = "", batch_size: int = 16) -> TaskScore:
    """Greedy exact match and answer loss of ``model`` on ``items`` (see the module docstring)."""
    import torch

    if not items:
        raise DataError("no examples to score", fix="pass e.g. specialists.examples('dates')[:24]")
    encoded = [lora.encode_example(tokenizer, ex) for ex in items]
    shared = _common_prefix([ids for ids, _ in encoded])
    correct: list[bool] = []
    total_loss, n_targets = 0.0, 0
    decoder, head = model.get_decoder(), model.get_output_embeddings()
    with torch.inference_mode():
        prefix_cache = decoder(input_ids=torch.tensor([shared]), cache=_new_cache(), use_cache=True).cache if shared else None
        for start in range(0, len(encoded), batch_size):
            chunk = encoded[start:start + batch_size]
            hidden = _suffix_hidden(decoder, [ids[len(shared):] for ids, _ in chunk], prefix_cache, len(shared))
            for row, (ids, labels) in enumerate(chunk):
                # position p predicts token p + 1; the answer tokens are those with a label
                where = [p - 1 - len(shared) for p in range(len(shared) + 1, len(ids)) if labels[p] != lora.IGNORE_INDEX]
                logits = head(hidden[row, where]).float()
                targets = torch.tensor([labels[p + 1 + len(shared)] for p in where])
                correct.append(bool((logits.argmax(-1) == targets).all()))
                total_loss += float(torch.nn.functional.cross_entropy(logits, targets, reduction="sum"))
                n_targets += len(where)
    return TaskScore(task, tuple(correct), total_loss / n_targets)


def _common_prefix(rows: list[list[int]]) -> list[int]:
    """The tokens every row starts with (the chat template's system prompt), minus one so that every
    row keeps at least the token that predicts its first answer token."""
    n = min(len(r) for r in rows) - 1
    for i in range(n):
        if any(r[i] != rows[0][i] for r in rows):
            return rows[0][:i]
    return rows[0][:n]


def _new_cache() -> Any:
    from transformers import DynamicCache

    return DynamicCache()


def _suffix_hidden(decoder: Any, rows: list[list[int]], prefix_cache: Any, n_prefix: int) -> Any:
    """Last hidden states of right-padded ``rows`` that continue a shared, cached prefix."""
    import torch
    from transformers import DynamicCache

    width = max(len(r) for r in rows)
    inputs = torch.zeros((len(rows), width), dtype=torch.long)
    mask = torch.zeros((len(rows), n_prefix + width), dtype=torch.long)
    mask[:, :n_prefix] = 1
    for i, row in enumerate(rows):
        inputs[i, :len(row)] = torch.tensor(row)
        mask[i, n_prefix:n_prefix + len(row)] = 1
    past = None
    if prefix_cache is not None:  # the prefix's keys and values, repeated for every row of the batch
        past = DynamicCache(ddp_cache_data=[(layer.keys.expand(len(rows), -1, -1, -1), layer.values.expand(len(rows), -1, -1, -1))
                                            for layer in prefix_cache.layers])
    positions = (n_prefix + torch.arange(width)).unsqueeze(0).expand(len(rows), -1)
    out = decoder(input_ids=inputs, attention_mask=mask, cache=past, position_ids=positions, use_cache=past is not None)
    return out.last_hidden_state


def skill_kept(merged: float, base: float, specialist: float) -> float:
    """How much of a specialist's gain over the base a merge keeps: ``(merged - base) / (specialist - base)``.

    >>> skill_kept(0.80, 0.10, 0.90)
    0.875
    """
    gain = specialist - base
    if gain <= 0:
        raise DataError(f"the specialist ({specialist:.0%}) is no better than the base ({base:.0%})",
                        fix="train the specialist longer (Recipe(steps=...)) before measuring what a merge keeps")
    return (merged - base) / gain
