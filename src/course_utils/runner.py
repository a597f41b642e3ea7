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
from .machine import Machine, describe, is_busy, machine  # noqa: F401  (Machine: part of the API)
from .paths import atomic_write_text, project_root
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
    force: bool = False,
    quiet_wait_s: float = 90.0,
) -> list[NotebookRun]:
    """Execute each notebook with papermill into ``out_dir``; never stops at the first failure.

    ``in_place`` (authors) then stores a notebook that ran without error back over the original,
    with the machine it ran on in its metadata, its measured run time in its first cell and its
    text twin updated; a failed run leaves the original untouched. Outputs are stored only from a
    quiet machine: if the load average is above the number of cores (after waiting up to
    ``quiet_wait_s`` for it to fall) the run is refused, unless ``force`` (which the metadata records).
    """
    import papermill as pm
    from tqdm.auto import tqdm

    if in_place:
        for path in paths:  # before anything runs: a rewrite must never leave half a paragraph behind
            check_run_time_paragraph(path)
    out_dir = Path(out_dir).resolve()  # notebooks run in their own folder: a relative out_dir would point elsewhere there
    out_dir.mkdir(parents=True, exist_ok=True)
    runs = [NotebookRun(p, out_dir / p.name) for p in paths]
    bar = tqdm(runs, desc="course", unit="notebook", disable=not progress)
    for run in bar:
        bar.set_postfix_str(run.path.stem)
        before = wait_until_quiet(quiet_wait_s) if in_place else machine()
        if in_place and is_busy(before) and not force:
            raise DataError(f"the machine is busy (load {before.load_1min:.1f} on {before.cores} cores): outputs stored now would show "
                            "slow, noisy timings", fix="wait until other work has finished, or pass --force (recorded in the notebook's metadata)")
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
        if in_place and run.status == "ok":
            store_in_place(run, before, forced=force and is_busy(before))
        bar.write(f"{'✓' if run.status == 'ok' else '✗'} {run.path.stem:<28} {run.seconds:6.1f} s" + (f"  {run.error}" if run.error else ""))
    return runs


def wait_until_quiet(max_wait_s: float, poll_s: float = 5.0) -> Machine:
    """This machine once its load has fallen to its core count, or after ``max_wait_s`` seconds."""
    deadline = time.monotonic() + max_wait_s
    now = machine()
    while is_busy(now) and time.monotonic() < deadline:
        time.sleep(poll_s)
        now = machine()
    return now


RUN_TIME_LINE = re.compile(r"^\*\*Run time:\*\*.*$", re.MULTILINE)


def run_time_paragraph_problem(markdown: str) -> str | None:
    """Why ``course run --in-place`` cannot rewrite this first cell's run-time line, or None.

    The line is replaced whole, so it must be a paragraph of its own: text that continues it on the
    next line would be left dangling after the new sentence.

    >>> run_time_paragraph_problem("# 00\\n\\n**Run time:** 18 s.\\n\\nMore text.") is None
    True
    >>> run_time_paragraph_problem("**Run time:** about 2 min. The adapters\\nship with the course.")
    "the '**Run time:**' line is continued by 'ship with the course.'"
    """
    found = RUN_TIME_LINE.search(markdown)
    if found is None:
        return None
    following = markdown[found.end():].split("\n")  # ['', next line, ...]: $ stops before the newline
    next_line = following[1].strip() if len(following) > 1 else ""
    return f"the '**Run time:**' line is continued by {next_line!r}" if next_line else None


def check_run_time_paragraph(path: Path) -> None:
    """Raise :class:`DataError` when ``path``'s first Markdown cell has a run-time line that is not a paragraph of its own."""
    cells = json.loads(Path(path).read_text(encoding="utf-8")).get("cells", [])
    first = next(("".join(c.get("source", "")) for c in cells if c.get("cell_type") == "markdown"), "")
    problem = run_time_paragraph_problem(first)
    if problem:
        raise DataError(f"{Path(path).name}: {problem}", fix="end the run-time sentence with a blank line and move the rest to its own paragraph")


def store_in_place(run: NotebookRun, before: Machine, forced: bool) -> None:
    """Copy an executed notebook over its original: papermill's metadata dropped, the machine and
    the measured run time recorded, the text twin (``src/*.py``) rewritten to match."""
    import nbformat

    nb = nbformat.read(run.output, as_version=4)
    nb.metadata.pop("papermill", None)
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nb.metadata["course_run"] = {"stored": time.strftime("%Y-%m-%d"), "seconds": round(run.seconds, 1), **before.as_metadata(), "forced": forced}
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
    first = next((c for c in nb.cells if c.cell_type == "markdown"), None)
    if first is not None and RUN_TIME_LINE.search(first.source):
        first.source = RUN_TIME_LINE.sub(run_time_line(run.seconds, before), first.source, count=1)
    atomic_write_text(run.path, nbformat.writes(nb) + "\n")
    twin = run.path.parent / "src" / f"{run.path.stem}.py"
    if twin.exists():
        from .sources import to_py

        to_py(run.path, twin)


def run_time_line(seconds: float, m: Machine) -> str:
    """The first cell's run-time sentence, from a measurement."""
    return (f"**Run time:** {format_seconds(seconds)} on a {m.cores}-core CPU ({m.cpu}), measured by `course run` "
            f"on {time.strftime('%Y-%m-%d')}; a slower machine takes longer.")


def format_seconds(seconds: float) -> str:
    """A duration as a reader says it.

    >>> format_seconds(42.4), format_seconds(95)
    ('42 s', '1 min 35 s')
    """
    return f"{seconds:.0f} s" if seconds < 60 else f"{int(seconds // 60)} min {seconds % 60:.0f} s"


def _one_line(err: Exception) -> str:
    lines = [ln for ln in str(err).splitlines() if ln.strip()]
    last = next((ln for ln in reversed(lines) if re.match(r"^\w*(Error|Exception|Overflow|Unavailable|NotFound)\b", ln)), lines[-1] if lines else type(err).__name__)
    return re.sub(r"\x1b\[[0-9;]*m", "", last)[:300]


def write_report(runs: Sequence[NotebookRun], path: Path) -> Path:
    """Markdown report: one row per notebook, then each notebook's key numbers."""
    total = sum(r.seconds for r in runs)
    ok = sum(r.status == "ok" for r in runs)
    lines = [
        "# Local LLM Lab: course run report",
        "",
        f"{ok}/{len(runs)} notebooks ran without error in {total:.0f} s ({time.strftime('%Y-%m-%d %H:%M')}; machine: {describe()}).",
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


README_ROW = re.compile(r"^\| (?P<num>\d\d) \| \[(?P<title>[^\]]+)\]\((?P<link>notebooks/[^)]+\.ipynb)\) \|(?P<middle>.*)\| (?P<time>[^|]*) \|$")
README_NOTE = re.compile(r"^Run times: .*$", re.MULTILINE)


def update_readme_run_times(runs: Sequence[NotebookRun], readme: Path) -> list[str]:
    """Write the measured wall times of the lessons in ``runs`` into the README's lesson table (its last
    column) and its "Run times:" line. Returns the lesson numbers updated. Failed runs are skipped."""
    measured = {r.path.stem[:2]: r.seconds for r in runs if r.status == "ok" and r.path.parent.name == "notebooks"}
    text = readme.read_text(encoding="utf-8")
    lines, updated = [], []
    for line in text.splitlines():
        match = README_ROW.match(line)
        if match and match["num"] in measured:
            line = line[: match.start("time")] + format_seconds(measured[match["num"]]) + " |"
            updated.append(match["num"])
        lines.append(line)
    text = "\n".join(lines) + "\n"
    m = machine()
    note = (f"Run times: measured by `course run --readme` on {time.strftime('%Y-%m-%d')} ({m.cores} cores, {m.cpu}); "
            "with the course cache already filled (a first run also builds stores and converted models); a slower "
            "machine takes longer, and `make course` measures them on yours (build/course/report.md).")
    text = README_NOTE.sub(note, text, count=1) if README_NOTE.search(text) else text
    atomic_write_text(readme, text)
    return updated
