"""Key numbers a lesson produces, collected into the course report by ``course run``.

A notebook calls :func:`record` for each headline figure ("int8 perplexity", "decode tokens/s").
The value is shown in the notebook; when the notebook runs under ``course run`` (which sets
``COURSE_REPORT_FILE``) it is also appended to that JSON-lines file.

>>> record("answer", 42, note="the only number that matters")
answer = 42  (the only number that matters)
42
"""

from __future__ import annotations

import json
import os
from typing import Any

REPORT_ENV = "COURSE_REPORT_FILE"


def record(key: str, value: Any, note: str = "", fmt: str | None = None) -> Any:
    """Show ``key = value`` and save it for the course report. Returns ``value`` unchanged."""
    shown = format(value, fmt) if fmt else str(value)
    print(f"{key} = {shown}" + (f"  ({note})" if note else ""))
    path = os.environ.get(REPORT_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"key": key, "value": shown, "note": note}) + "\n")
    return value


def read_records(path: str | os.PathLike) -> list[dict[str, str]]:
    """Records written by :func:`record` to ``path`` (missing file -> empty list)."""
    try:
        with open(path, encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]
    except FileNotFoundError:
        return []
