"""``course grade``: run learners' lab notebooks headlessly and collect every exercise's verdict.

For instructors; no lesson teaches it (the labs' checks are :mod:`course_utils.checks`).

>>> results = grade(["no-such-notebook.ipynb"], log=None)        # doctest: +SKIP
>>> print(summary(results))                                      # doctest: +SKIP

**How a submission is run** (:mod:`.execution`). Each notebook is executed by a worker process
(:mod:`course_utils.grading.worker`) that starts its own Jupyter kernel: the learner's code never runs
in the grader's process. Where Linux allows (the probe of :func:`course_utils.sandbox.isolation`),
the worker and its kernel get their own network namespace (only a loopback interface: nothing outside
the machine, and none of its servers, can be reached) and PID namespace (everything they started dies
with them). Each cell has a time limit (it is interrupted, and the run goes on) and the whole notebook
has one (the worker is killed; what it did so far is kept). HOME, the temporary folder and Jupyter's
folders are fresh ones per notebook, so one submission cannot leave start-up files for the next.
The file system is otherwise shared: grade submissions you do not trust with your files as a throwaway
user or in a container.

**Why a printed "✅" never counts** (what was taken from nbgrader and otter-grader). nbgrader overwrites
the test cells of a submission with the instructor's copy before it autogrades (``OverwriteCells``,
matched by cell id, with checksums of the read-only cells) and can put deleted grade cells back
(``add_missing_cells``); otter-grader runs its tests in the learner's environment *after* the learner's
code, and reads results from its own channel, not from what the notebook printed. Here:

* the check list comes from the lab in ``labs/`` (:mod:`.notebooks`), never from the submission: a
  check whose verdict cannot be produced is reported as "missing", not left out;
* the learner's own check calls are taken out; the lab's own calls run in cells the grader adds, right
  after the cells that define what they need (so deleted, reordered or edited check calls change nothing,
  and a notebook that lacks the answer gets "missing: ``ask`` is not defined");
* those cells fetch the real check from its module (a ``check_ask`` the notebook redefined is not
  used) and send the verdict as a display output of a private MIME type with a nonce that only the
  grader's cells contain; nothing else is read (:mod:`.kernel`);
* a fingerprint of the course's code, taken before the first learner cell and again with each check,
  turns a verdict into "tampered" when the notebook replaced a check or a function it relies on; so
  does an IPython event callback the notebook registered (a ``pre_run_cell`` hook sees the grader's
  cell, nonce included, before it runs) or a swapped display function;
* a check cell that sent more than one verdict (the real check sends one) is "tampered" too.

What this cannot stop: code in the same kernel as the check can, with enough effort, subvert it
(patching ``numpy``, the classes IPython's display goes through, or the interpreter). Like nbgrader and otter-grader, this is a
grader for honest mistakes and casual fakes, with the executed notebooks kept (``keep=``) for a look.
"""

from __future__ import annotations

import csv
import io
import os
import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import DataError
from ..paths import atomic_write_text, project_root
from .execution import Execution, confinement, execute
from .kernel import HOOKS
from .notebooks import Lab, Plan, course_labs, identify, prepare

PASSED, FAILED, NOT_DONE, MISSING, TAMPERED, ERROR = "passed", "failed", "not done", "missing", "tampered", "error"
NOTEBOOK = "(notebook)"  # the exercise column of a row about the whole notebook
CSV_COLUMNS = ("learner_file", "lab", "exercise", "status", "message")


@dataclass(frozen=True)
class Row:
    learner: str
    lab: str
    exercise: str
    status: str
    message: str = ""


@dataclass
class Graded:
    """One submission: a row per exercise of its lab, and what went wrong with the notebook as a whole."""

    learner: str
    lab: str  # the lab's file stem, "?" when it is none of the course's labs
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str = ""  # why the notebook could not be run to the end (or at all)
    seconds: float = 0.0

    @property
    def passed(self) -> int:
        return sum(r.status == PASSED for r in self.rows)

    @property
    def score(self) -> str:
        return f"{self.passed}/{len(self.rows)}" if self.rows else "-"


# ----------------------------------------------------------------------------- from outputs to verdicts
def _where(plan: Plan, cell: int) -> str:
    role, index = plan.roles[cell]
    return {"baseline": "the grader's first cell", "learner": f"cell {index + 1}", "check": f"the check of exercise {index + 1}"}[role]


def interpret(graded: Graded, lab: Lab, plan: Plan, run: Execution, nonce: str) -> None:
    """Fill ``graded`` with a row per exercise of ``lab`` from what the worker recorded."""
    cells = {r["cell"]: r for r in run.records if "cell" in r}
    ours = lambda r: [p for p in r.get("payloads", []) if isinstance(p, dict) and p.get("nonce") == nonce]  # noqa: E731
    base = next((p["fingerprints"] for p in ours(cells.get(0, {})) if p.get("kind") == "baseline"), None)
    learner = [(plan.roles[i][1], r) for i, r in sorted(cells.items()) if plan.roles[i][0] == "learner"]
    printed = [line for _, r in learner for line in r.get("printed", [])]
    errors = [f"cell {i + 1} " + (r["error"][1] if r["error"][0] == "CellTimeout" else f"raised {r['error'][0]}: {r['error'][1]}")
              for i, r in learner if r.get("error")]
    graded.notes += errors[:5] + ([f"and {len(errors) - 5} more cells raised"] if len(errors) > 5 else [])
    if any(r.get("payloads") for _, r in learner):
        graded.notes.append("a learner cell sent grader verdict output itself: ignored")
    if run.problem:
        code = [i for i, c in enumerate(plan.notebook.cells) if c.cell_type == "code" and c.source.strip()]
        stopped = next((i for i in code if i not in cells), None)
        graded.error = run.problem + (f" in {_where(plan, stopped)}" if stopped is not None and run.timed_out else "")
    for k, check in enumerate(lab.checks):
        cell = plan.cell_of_check(k)
        record = cells.get(cell)
        sent = ours(record or {})
        payload = next((p for p in sent if p.get("index") == k), None)
        status, message, name = _verdict(payload, record, graded.error, base)
        if len(sent) > 1 and status != TAMPERED:  # the real check sends one: something else in the kernel answered too
            status, message = TAMPERED, f"the check's cell sent {len(sent)} verdicts, not 1: code in the notebook sent its own, so none can be trusted"
        name = name or check.exercise
        fake = f"✅ {name}:"
        if status != PASSED and any(line.lstrip().startswith(fake) for line in printed):
            message += f" (the notebook printed {fake} passed itself: only the grader's own check counts)"
        if k in plan.notes:
            message += f" ({plan.notes[k]})"
        graded.rows.append(Row(graded.learner, lab.stem, name, status, message.strip()))


def _verdict(payload: dict[str, Any] | None, record: dict[str, Any] | None, stopped: str, base: dict[str, str] | None) -> tuple[str, str, str]:
    """(status, message, exercise name or "") for one check from its cell's record."""
    if payload is None:
        if record is None:
            return MISSING, f"not run: {stopped or 'the check cell did not run'}", ""
        error = record.get("error") or ["", "no verdict came back"]
        if error[0] == "CellTimeout":
            return FAILED, f"the check {error[1]}: does the code loop forever? (or is this machine too slow for the lab: raise --cell-timeout)", ""
        return ERROR, f"the check cell failed: {error[0]}: {error[1]}".replace(": :", ":"), ""
    if base is not None:
        changed = sorted(m for m, digest in payload.get("fingerprints", {}).items() if base.get(m) != digest)
        changed += sorted(set(base) - set(payload.get("fingerprints", {})))
        if changed:
            what = [f"changed the course's own code ({', '.join(m for m in changed[:3] if m != HOOKS)})"] if set(changed) - {HOOKS} else []
            what += ["registered IPython hooks or replaced the display functions, which run inside the grader's cells"] if HOOKS in changed else []
            return TAMPERED, f"the notebook {' and '.join(what)}: this verdict cannot be trusted", payload.get("name", "")
    if payload.get("kind") == "missing":
        return MISSING, f"{payload.get('message', '')}: the exercise's code is missing or did not run", ""
    if payload.get("kind") != "verdict":
        return ERROR, str(payload.get("message", "")), ""
    status = payload.get("status")
    return (status if status in (PASSED, FAILED, NOT_DONE) else ERROR), str(payload.get("message", "")), str(payload.get("name", ""))


# ----------------------------------------------------------------------------- grading
def expand(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Submission files: each path itself, or every ``*.ipynb`` under a folder (checkpoints left out)."""
    found: list[Path] = []
    for item in map(Path, paths):
        if item.is_dir():
            inside = sorted(p for p in item.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
            if not inside:
                raise DataError(f"no notebooks (*.ipynb) in the folder {item}", fix="pass the learners' .ipynb files or a folder holding them")
            found += inside
        else:
            found.append(item)
    return found


def grade_one(path: Path, labs: dict[str, Lab], *, root: Path, expected: Lab | None = None, timeout_s: float = 600.0,
              cell_timeout_s: float = 120.0, keep_as: Path | None = None) -> Graded:
    """Grade one submission as far as it can be; never raises for what is wrong with the notebook.

    ``keep_as``: where to write the executed graded notebook (None: nowhere).
    """
    import nbformat

    started = time.perf_counter()
    graded = Graded(str(path), expected.stem if expected else "?")
    try:
        nb = nbformat.reads(path.read_text(encoding="utf-8"), as_version=4)
        if not isinstance(nb.get("cells"), list):
            raise ValueError("it has no list of cells")
    except Exception as err:  # noqa: BLE001 - unreadable, not JSON, not a notebook: say so and go on
        lab = expected or identify({}, path.name, labs).lab
        graded.lab = lab.stem if lab else "?"
        graded.error = f"not a readable notebook ({type(err).__name__}: {str(err).splitlines()[0][:160] if str(err) else ''})"
        graded.rows = [Row(graded.learner, lab.stem, c.exercise, MISSING, "not run: the file is not a readable notebook") for c in (lab.checks if lab else ())]
        return graded
    found = identify(nb, path.name, labs)
    lab = found.lab
    if lab is None:
        graded.error = f"not one of the course's labs: {found.how}"
        return graded
    graded.notes += list(found.notes)
    if expected is not None and lab.stem != expected.stem:
        graded.error = f"this is the notebook of {lab.title!r}, not of {expected.title!r}"
        graded.rows = [Row(graded.learner, expected.stem, c.exercise, MISSING, f"not run: the submission is {lab.stem}") for c in expected.checks]
        return graded
    graded.lab = lab.stem
    nonce = secrets.token_hex(12)
    plan = prepare(nb, lab, nonce)
    run = execute(plan, timeout_s=timeout_s, cell_timeout_s=min(cell_timeout_s, timeout_s), root=root,
                  keep_as=keep_as)
    interpret(graded, lab, plan, run, nonce)
    graded.seconds = time.perf_counter() - started
    return graded


def grade(submissions: Sequence[str | os.PathLike], *, lab: str | None = None, timeout_s: float = 600.0,
          cell_timeout_s: float = 120.0, keep: str | os.PathLike | None = None, root: Path | None = None,
          log: Callable[[str], None] | None = print) -> list[Graded]:
    """Grade every submission in turn (files, or folders of them); a broken one never stops the run.

    ``lab``: the lab they should all be ("01", "01_tokens_lab"); by default each notebook is graded as
    the lab it is. ``keep``: a folder for the executed graded notebooks (to look at a learner's errors).
    """
    root = root or project_root()
    labs = course_labs(root)
    expected = _choose_lab(lab, labs) if lab else None
    paths = expand(submissions)
    if log:
        log(f"Grading {len(paths)} submission(s); isolation: {confinement().description}")
    results = []
    for path, kept in zip(paths, kept_names(paths)):
        graded = grade_one(path, labs, root=root, expected=expected, timeout_s=timeout_s, cell_timeout_s=cell_timeout_s,
                           keep_as=Path(keep) / kept if keep else None)
        results.append(graded)
        if log:
            log(f"  {graded.learner}: {graded.lab} {graded.score} passed ({graded.seconds:.0f} s)" + (f"; {graded.error}" if graded.error else ""))
    return results


def kept_names(paths: Sequence[Path]) -> list[str]:
    """A distinct file name per submission for its executed notebook: its path below the folder all share
    (a class hands in one ``01_tokens_lab.ipynb`` per learner's folder).

    >>> kept_names([Path("class/alice/01_tokens_lab.ipynb"), Path("class/bob/01_tokens_lab.ipynb")])
    ['alice__01_tokens_lab.graded.ipynb', 'bob__01_tokens_lab.graded.ipynb']
    >>> kept_names([Path("hand-in/x.ipynb"), Path("hand-in/x.ipynb")])
    ['x.graded.ipynb', 'x-2.graded.ipynb']
    """
    full = [p.resolve() for p in paths]
    common = Path(os.path.commonpath([p.parent for p in full])) if full else Path()
    names, seen = [], Counter()
    for path in full:
        stem = "__".join(path.relative_to(common).with_suffix("").parts)
        seen[stem] += 1
        names.append(f"{stem}{f'-{seen[stem]}' if seen[stem] > 1 else ''}.graded.ipynb")
    return names


def _choose_lab(wanted: str, labs: dict[str, Lab]) -> Lab:
    matches = [lab for stem, lab in labs.items() if stem == wanted or stem.startswith(wanted.zfill(2) + "_")]
    if len(matches) != 1:
        raise DataError(f"no single lab matches {wanted!r}", fix=f"use a number or name from: {', '.join(labs)}")
    return matches[0]


# ----------------------------------------------------------------------------- the CSV and the summary
def csv_rows(results: Iterable[Graded]) -> list[Row]:
    """Every exercise row, and a "(notebook)" row for a submission with problems of its own."""
    rows = []
    for g in results:
        rows += g.rows
        if g.error or g.notes:
            rows.append(Row(g.learner, g.lab, NOTEBOOK, ERROR if g.error else "warning", "; ".join(filter(None, [g.error, *g.notes]))))
    return rows


def write_csv(results: Iterable[Graded], path: str | os.PathLike) -> Path:
    """Write the grades (columns :data:`CSV_COLUMNS`) atomically."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    writer.writerows((r.learner, r.lab, r.exercise, r.status, r.message) for r in csv_rows(results))
    return atomic_write_text(path, out.getvalue())


def summary(results: Sequence[Graded]) -> str:
    """A table per learner (passed/total, problems) and per exercise (how many passed)."""
    width = max([len("learner file"), *(len(g.learner) for g in results)]) + 2
    lines = [f"{'learner file':<{width}}{'lab':<26}{'passed':>7}  problems"]
    for g in results:
        tampered = sum(r.status == TAMPERED for r in g.rows)
        problems = "; ".join(filter(None, [f"{tampered} verdict(s) tampered with" if tampered else "", g.error, *g.notes]))
        lines.append(f"{g.learner:<{width}}{g.lab:<26}{g.score:>7}  {problems[:160]}")
    for stem in dict.fromkeys(g.lab for g in results if g.rows):
        graded = [g for g in results if g.lab == stem and g.rows]
        lines += ["", f"{'exercise (' + stem + ')':<{width + 26}}{'passed':>7}"]
        for exercise in dict.fromkeys(r.exercise for g in graded for r in g.rows):
            passed = sum(r.status == PASSED for g in graded for r in g.rows if r.exercise == exercise)
            lines.append(f"{exercise:<{width + 26}}{f'{passed}/{len(graded)}':>7}")
    return "\n".join(lines)
