"""The course's own data files in ``data/`` (JSONL), read with clear errors. Core layer.

>>> rows = read_jsonl(data_path("embeddings_queries.jsonl"))
>>> sorted(rows[0])
['query', 'relevant']
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .errors import DataError, InvalidOption
from .paths import data_path

__all__ = ["data_path", "read_jsonl"]


def read_jsonl(path: str | os.PathLike, required: Iterable[str] = ()) -> list[dict[str, Any]]:
    """One dict per non-blank line; each must hold the ``required`` keys (any collection of names).

    A missing file, a line that is not JSON or a record without a required key raises DataError
    naming the file and line.
    """
    keys = None if isinstance(required, str) else tuple(required)
    if keys is None or not all(isinstance(k, str) for k in keys):
        raise InvalidOption(f"required must be a collection of key names, got {required!r}", fix='pass e.g. required={"id", "text"}')
    required = frozenset(keys)
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read the course data file {path} ({type(exc).__name__})",
                        fix="run from inside the course checkout (git checkout -- data/ restores it)") from None
    rows = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path.name} line {number} is not JSON ({exc.msg})", fix=f"fix or restore {path}") from None
        if not isinstance(row, dict) or not required <= set(row):
            raise DataError(f"{path.name} line {number} needs the keys {sorted(required)}", fix=f"fix or restore {path}")
        rows.append(row)
    return rows
