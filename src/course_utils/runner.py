"""Execute notebooks headlessly with papermill and write the course report.

``course run`` (and ``make course``) uses this: each notebook runs in a fresh kernel, its executed
copy goes to ``build/course/``, and ``report.md`` lists status, wall time and the key numbers the
notebook recorded with :func:`course_utils.report.record`.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import DataError
from .paths import project_root
from .report import REPORT_ENV, read_records


@dataclass
class NotebookRun:
    path: Path
    output: Path
    status: str = "not run"  # "ok" or "failed"
    seconds: float = 0.0
    error: str = ""
    records: list[dict[str, str]] = field(default_factory=list)


def lessons(root: Path | None = None, include_labs: bool = False) -> list[Path]:
    """Lesson notebooks in order (and lab solutions after them with ``include_labs``)."""
    root = root or project_root()
    found = sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if include_labs:
        found += sorted((root / "labs" / "solutions").glob("[0-9][0-9]_*.ipynb"))
    return found


def notebook_title(path: Path) -> str:
    """The first Markdown heading of a notebook."""
    cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
    for cell in cells:
        if cell.get("cell_type") == "markdown":
            for line in "".join(cell.get("source", "")).splitlines():
                if line.startswith("#"):
                    return line.lstrip("# ").strip()
    return path.stem


def select(paths: Sequence[Path], wanted: Sequence[str]) -> list[Path]:
    """Pick notebooks by number prefix ("01"), stem ("01_tokens") or path."""
    if not wanted:
        return list(paths)
    chosen = []
    for item in wanted:
        matches = [p for p in paths if p.stem.startswith(item.zfill(2)) or p.name == Path(item).name or p.stem == item]
        if not matches:
            names = ", ".join(p.stem for p in paths)
            raise DataError(f"no notebook matches {item!r}", fix=f"use a number or name from: {names}")
        chosen += [m for m in matches if m not in chosen]
    return chosen


def run_notebooks(
    paths: Sequence[Path],
    out_dir: Path,
    parameters: dict[str, Any] | None = None,
    in_place: bool = False,
    progress: bool = True,
) -> list[NotebookRun]:
    """Execute each notebook with papermill; never stops at the first failure."""
    import papermill as pm
    from tqdm.auto import tqdm

    out_dir.mkdir(parents=True, exist_ok=True)
    runs = [NotebookRun(p, p if in_place else out_dir / p.name) for p in paths]
    bar = tqdm(runs, desc="course", unit="notebook", disable=not progress)
    for run in bar:
        bar.set_postfix_str(run.path.stem)
        records_file = out_dir / f".{run.path.stem}.records.jsonl"
        records_file.unlink(missing_ok=True)
        env_before = os.environ.get(REPORT_ENV)
        os.environ[REPORT_ENV] = str(records_file)
        started = time.perf_counter()
        try:
            pm.execute_notebook(
                str(run.path), str(run.output), parameters=parameters or {}, cwd=str(run.path.parent),
                progress_bar=False, kernel_name="python3", language="python",
            )
            run.status = "ok"
        except Exception as err:  # papermill raises PapermillExecutionError with the cell's error
            run.status, run.error = "failed", _one_line(err)
        finally:
            run.seconds = time.perf_counter() - started
            os.environ.pop(REPORT_ENV) if env_before is None else os.environ.__setitem__(REPORT_ENV, env_before)
        run.records = read_records(records_file)
        records_file.unlink(missing_ok=True)
        if in_place:
            _strip_papermill_metadata(run.output)
        bar.write(f"{'✓' if run.status == 'ok' else '✗'} {run.path.stem:<28} {run.seconds:6.1f} s" + (f"  {run.error}" if run.error else ""))
    return runs


def _one_line(err: Exception) -> str:
    lines = [ln for ln in str(err).splitlines() if ln.strip()]
    last = next((ln for ln in reversed(lines) if re.match(r"^\w*(Error|Exception|Overflow|Unavailable|NotFound)\b", ln)), lines[-1] if lines else type(err).__name__)
    return re.sub(r"\x1b\[[0-9;]*m", "", last)[:300]


def _strip_papermill_metadata(path: Path) -> None:
    """Keep committed notebooks tidy: drop papermill's per-cell timing metadata."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    nb.metadata.pop("papermill", None)
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
    nbformat.write(nb, path)


def write_report(runs: Sequence[NotebookRun], path: Path) -> Path:
    """Markdown report: one row per notebook, then each notebook's key numbers."""
    total = sum(r.seconds for r in runs)
    ok = sum(r.status == "ok" for r in runs)
    lines = [
        "# Local LLM Lab: course run report",
        "",
        f"{ok}/{len(runs)} notebooks ran without error in {total:.0f} s ({time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPU cores).",
        "",
        "| notebook | status | wall time | key numbers |",
        "|---|---|---:|---|",
    ]
    for r in runs:
        link = os.path.relpath(r.output, path.parent)
        numbers = "; ".join(f"{rec['key']} = {rec['value']}" for rec in r.records) or "-"
        status = "ok" if r.status == "ok" else f"**FAILED**: {r.error}"
        lines.append(f"| [{r.path.stem}]({link}) | {status} | {r.seconds:.1f} s | {numbers} |")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
