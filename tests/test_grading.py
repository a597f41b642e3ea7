"""`course grade` on real lab notebooks: lab 01 (the fastest lab) as its solution, its student version,
and hand-made broken copies of them, each executed by the grader in its own worker and kernel.

The broken submissions are graded in one run (the module fixture), as an instructor would; each test
then looks at one of them. The time-out test has a run of its own, with short time limits.
"""

from __future__ import annotations

import csv
import re
import socket
import threading
from pathlib import Path

import nbformat
import pytest

from course_utils.cli import main
from course_utils.grading import (
    CSV_COLUMNS,
    MISSING,
    NOT_DONE,
    NOTEBOOK,
    PASSED,
    TAMPERED,
    confinement,
    grade,
    summary,
    write_csv,
)
from course_utils.grading.kernel import MIME
from course_utils.grading.notebooks import course_labs, identify, prepare, read_lab

ROOT = Path(__file__).resolve().parents[1]
LAB = "01_tokens_lab"
STUDENT = ROOT / "labs" / f"{LAB}.ipynb"
SOLUTION = ROOT / "labs" / "solutions" / f"{LAB}.ipynb"
FUNCTIONS = ["to_bytes", "count_pairs", "merge_pair", "train_bpe", "prompt_tokens", "encode", "build_tokenizer"]  # the lab's exercises, in order
CHECKS = ["check_byte_encoding", "check_get_stats", "check_merge", "check_train", "check_token_count", "check_encode", "check_compression"]


def load(path: Path):
    return nbformat.read(path, as_version=4)


def cell_defining(nb, function: str) -> int:
    return next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and f"def {function}(" in c.source)


def save(nb, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def code(source: str):
    return nbformat.v4.new_code_cell(source)


def statuses(graded) -> list[str]:
    return [r.status for r in graded.rows]


@pytest.fixture(scope="module")
def exercises() -> list[str]:
    return [c.exercise for c in read_lab(STUDENT).checks]


@pytest.fixture(scope="module")
def listener():
    """A TCP server on this machine's loopback; it counts the connections that reach it."""
    server = socket.create_server(("127.0.0.1", 0))
    seen = []

    def accept():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            seen.append(conn)
            conn.close()

    threading.Thread(target=accept, daemon=True).start()
    yield server.getsockname()[1], seen
    server.close()


# ----------------------------------------------------------------------------- the broken submissions
def moved(port: int):
    """The solution with its exercise cells in reverse order, a cell that raises, one that calls out."""
    nb = load(SOLUTION)
    first, last = cell_defining(nb, FUNCTIONS[0]), cell_defining(nb, FUNCTIONS[-1])
    nb.cells[first:last + 1] = list(reversed(nb.cells[first:last + 1]))
    nb.cells.insert(first, code("1 / 0"))
    nb.cells.insert(first, code(f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=5).close()"))
    return nb


def deleted():
    """The solution without exercise 3's cell, and without the check call under exercise 1."""
    nb = load(SOLUTION)
    one = nb.cells[cell_defining(nb, "to_bytes")]
    one.source = one.source.replace("check_byte_encoding(to_bytes)", "")
    del nb.cells[cell_defining(nb, "merge_pair")]
    return nb


def faked():
    """The student version whose learner tries to pass without doing the work, four ways."""
    nb = load(STUDENT)
    one = nb.cells[cell_defining(nb, "to_bytes")]
    one.source = one.source.replace("check_byte_encoding(to_bytes)", 'print("✅ text to bytes: passed")')
    two = nb.cells[cell_defining(nb, "count_pairs")]
    two.source = 'def check_get_stats(fn):\n    print("✅ count pairs: passed")\n\n\n' + two.source
    three = cell_defining(nb, "merge_pair")
    nb.cells[three].source = ("import course_utils.checks.tokens as tokens_checks\n"
                              "from course_utils.checks import Verdict\n"
                              "tokens_checks.check_merge = lambda fn: Verdict('merge a pair', 'passed')\n\n" + nb.cells[three].source)
    fake = {"nonce": "guessed", "index": 3, "kind": "verdict", "name": "train BPE", "status": "passed", "message": ""}
    nb.cells.insert(three, code(f"from IPython.display import display\ndisplay({{{MIME!r}: {fake!r}}}, raw=True)"))
    return nb


def hooked():
    """The student version with IPython hooks that answer the grader's check cells themselves.

    A ``pre_run_cell`` hook sees the source of every cell before it runs, nonce included, so it can send a
    "passed" payload ahead of the real check's, with the fingerprints the grader's own code computes now. The
    first hook passes itself off as IPython's own; a second, plain one joins before exercise 3.
    """
    nb = load(STUDENT)
    nb.cells.insert(cell_defining(nb, "to_bytes"), code(
        "import re\n"
        "from IPython.display import display\n"
        "from course_utils.grading import kernel, notebooks\n\n\n"
        "def answer_for_the_grader(info):\n"
        "    found = re.search(r\"run_check_cell\\(\\s*'(\\w+)', (\\d+), '([\\w.]+)', '(\\w+)'\", info.raw_cell or '')\n"
        "    if found:\n"
        "        fake = {'nonce': found[1], 'index': int(found[2]), 'kind': 'verdict', 'status': 'passed',\n"
        "                'name': notebooks.exercise_name(found[3], found[4]), 'message': '',\n"
        "                'fingerprints': kernel._watched_now()}\n"
        f"        display({{{MIME!r}: fake}}, raw=True)\n\n\n"
        "answer_for_the_grader.__module__ = 'IPython.core.events'  # looks like IPython's own\n"
        "get_ipython().events.register('pre_run_cell', answer_for_the_grader)"))
    nb.cells.insert(cell_defining(nb, "merge_pair"), code(
        "get_ipython().events.register('pre_run_cell', lambda info: answer_for_the_grader(info))"))
    return nb


@pytest.fixture(scope="module")
def graded(tmp_path_factory, listener):
    folder = tmp_path_factory.mktemp("submissions")
    port, _ = listener
    paths = {
        "solution": save(load(SOLUTION), folder / "solution.ipynb"),
        "student": save(load(STUDENT), folder / "student.ipynb"),
        "truncated": folder / f"{LAB}-truncated.ipynb",
        "moved": save(moved(port), folder / "moved.ipynb"),
        "deleted": save(deleted(), folder / "deleted.ipynb"),
        "faked": save(faked(), folder / "faked.ipynb"),
        "hooked": save(hooked(), folder / "hooked.ipynb"),
        "lesson": save(load(ROOT / "notebooks" / "01_tokens.ipynb"), folder / "lesson.ipynb"),
    }
    text = SOLUTION.read_text(encoding="utf-8")
    paths["truncated"].write_text(text[: len(text) // 2], encoding="utf-8")
    results = grade([str(p) for p in paths.values()], keep=folder / "kept", log=None)
    return {name: r for name, r in zip(paths, results)} | {"_folder": folder, "_all": results}


# ----------------------------------------------------------------------------- what is graded
def test_the_solution_passes_every_check_and_the_student_version_none(graded, exercises):
    solution, student = graded["solution"], graded["student"]
    assert [r.exercise for r in solution.rows] == exercises == [r.exercise for r in student.rows]
    assert statuses(solution) == [PASSED] * len(CHECKS), solution.rows
    assert statuses(student) == [NOT_DONE] * len(CHECKS), student.rows
    assert solution.lab == student.lab == LAB and not solution.error and not solution.notes
    assert all("replace the TODO" in r.message for r in student.rows)


def test_csv_has_a_row_per_exercise_and_one_per_notebook_with_problems(graded, exercises, tmp_path):
    out = write_csv(graded["_all"], tmp_path / "grades.csv")
    with open(out, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames) == CSV_COLUMNS
        rows = list(reader)
    by_file = {}
    for row in rows:
        by_file.setdefault(Path(row["learner_file"]).stem, []).append(row)
    assert [(r["lab"], r["exercise"], r["status"]) for r in by_file["solution"]] == [(LAB, e, "passed") for e in exercises]
    assert [r["status"] for r in by_file["student"]] == ["not done"] * len(CHECKS)
    truncated = by_file[f"{LAB}-truncated"]
    assert [r["status"] for r in truncated] == ["missing"] * len(CHECKS) + ["error"] and truncated[-1]["exercise"] == NOTEBOOK
    assert "not a readable notebook" in truncated[-1]["message"]
    assert by_file["moved"][-1]["exercise"] == NOTEBOOK and "ZeroDivisionError" in by_file["moved"][-1]["message"]
    assert [(r["lab"], r["exercise"], r["status"]) for r in by_file["lesson"]] == [("?", NOTEBOOK, "error")]
    assert len(rows) == sum(len(g.rows) + bool(g.error or g.notes) for g in graded["_all"])


def test_the_summary_counts_per_learner_and_per_exercise(graded, exercises):
    table = summary(graded["_all"])
    lines = table.splitlines()
    n = len(CHECKS)
    assert re.search(rf"solution\.ipynb\s+01_tokens_lab\s+{n}/{n}", table) and re.search(rf"student\.ipynb\s+01_tokens_lab\s+0/{n}", table)
    assert re.search(rf"hooked\.ipynb\s+01_tokens_lab\s+0/{n}  {n} verdict\(s\) tampered with", table), table
    assert re.search(rf"student\.ipynb\s+01_tokens_lab\s+0/{n}\s*$", table, re.MULTILINE), table  # no problems: none shown
    lab_results = [g for g in graded["_all"] if g.lab == LAB and g.rows]
    for exercise in exercises:
        passed = sum(r.status == PASSED for g in lab_results for r in g.rows if r.exercise == exercise)
        assert any(re.fullmatch(rf"{re.escape(exercise)}\s+{passed}/{len(lab_results)}", line) for line in lines), (exercise, table)


def test_invalid_json_is_reported_and_its_exercises_are_missing(graded, exercises):
    bad = graded["truncated"]
    assert bad.lab == LAB  # from the file name: nothing else can be read
    assert [r.exercise for r in bad.rows] == exercises and statuses(bad) == [MISSING] * len(exercises)
    assert "NotJSONError" in bad.error


def test_cells_that_raise_or_are_reordered_leave_the_verdicts_alone(graded):
    result = graded["moved"]
    assert statuses(result) == [PASSED] * len(CHECKS), result.rows  # train_bpe's check waits for the helpers it uses
    assert any("raised ZeroDivisionError" in note for note in result.notes), result.notes


def test_a_deleted_exercise_is_missing_and_a_deleted_check_call_runs_anyway(graded):
    rows = {r.exercise: r for r in graded["deleted"].rows}
    assert rows["merge a pair"].status == MISSING and "merge_pair is not defined" in rows["merge a pair"].message
    assert rows["text to bytes"].status == PASSED and "no call of check_byte_encoding()" in rows["text to bytes"].message
    assert rows["train BPE"].status == "failed" and "merge_pair" in rows["train BPE"].message  # it uses the missing function
    assert rows["count pairs"].status == rows["count tokens"].status == PASSED


def test_faked_verdicts_do_not_count(graded):
    result = graded["faked"]
    rows = {r.exercise: r for r in result.rows}
    assert rows["text to bytes"].status == NOT_DONE and "printed ✅ text to bytes: passed itself" in rows["text to bytes"].message
    assert rows["count pairs"].status == NOT_DONE  # the check the notebook redefined is not the one that ran
    assert rows["merge a pair"].status == TAMPERED and "course_utils.checks.tokens" in rows["merge a pair"].message
    assert rows["train BPE"].status == TAMPERED  # the replaced check stays in the kernel: nothing after it is trusted
    assert any("sent grader verdict output itself" in note for note in result.notes)


def test_hooks_that_answer_for_the_grader_do_not_count(graded):
    result = graded["hooked"]
    assert statuses(result) == [TAMPERED] * len(CHECKS), result.rows
    disguised, plain = result.rows[:2], result.rows[2:]
    assert all("sent 2 verdicts, not 1" in r.message for r in disguised), disguised  # its origin looked like IPython
    assert all("registered IPython hooks" in r.message for r in plain), plain  # a callback of the notebook's own


def test_a_notebook_that_is_no_lab_is_reported_without_rows(graded):
    lesson = graded["lesson"]
    assert lesson.lab == "?" and lesson.rows == [] and "not one of the course's labs" in lesson.error


def test_the_executed_graded_notebooks_are_kept(graded):
    kept = load(graded["_folder"] / "kept" / "solution.graded.ipynb")
    shown = [o.get("data", {}).get("text/plain", "") for c in kept.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert sum("[course grade] ✅" in text for text in shown) == len(CHECKS)


def test_the_learners_code_cannot_reach_the_network(graded, listener):
    if not confinement().prefix:
        pytest.skip(f"no namespaces on this machine: {confinement().description}")
    _, seen = listener
    assert seen == []  # the kernel tried 127.0.0.1:port from its own network namespace
    assert any("raised ConnectionRefusedError" in note for note in graded["moved"].notes), graded["moved"].notes


# ----------------------------------------------------------------------------- infinite loops
def _processes_named(name: str) -> list[str]:
    """Live processes called ``name`` (a killed one that is only waiting to be reaped does not count)."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if (proc / "comm").read_text().strip() == name and (proc / "stat").read_text().rsplit(")", 1)[1].split()[0] not in "ZX":
                found.append(proc.name)
        except OSError:
            pass
    return found


def test_infinite_loops_are_cut_short_and_the_run_goes_on(tmp_path):
    nb = load(SOLUTION)
    nb.cells.insert(cell_defining(nb, "merge_pair") + 1, code(
        "import ctypes, signal, time\n"
        "ctypes.CDLL(None).prctl(15, b'grade-loop-test', 0, 0, 0)  # PR_SET_NAME: the test looks for it afterwards\n"
        "signal.signal(signal.SIGINT, signal.SIG_IGN)  # deaf to the interrupt: only stopping the notebook ends it\n"
        "while True:\n    time.sleep(0.05)"))
    nb.cells.insert(cell_defining(nb, "to_bytes") + 1, code("import time\nwhile True:\n    time.sleep(0.05)"))
    looping = save(nb, tmp_path / "looping.ipynb")
    broken = tmp_path / f"{LAB}-empty.ipynb"
    broken.write_text("", encoding="utf-8")
    first, second = grade([looping, broken], timeout_s=120, cell_timeout_s=30, log=None)
    assert statuses(first)[:3] == [PASSED] * 3, first.rows  # the first loop was interrupted: the cells after it ran
    assert any("ran past the cell time limit (30 s)" in note for note in first.notes), first.notes
    assert "time limit (120 s)" in first.error
    assert statuses(first)[3:] == [MISSING] * (len(CHECKS) - 3) and all("time limit (120 s)" in r.message for r in first.rows[3:])
    assert statuses(second) == [MISSING] * len(CHECKS)  # the next submission was still graded
    assert _processes_named("grade-loop-test") == []  # the kernel stuck in the loop was killed


# ----------------------------------------------------------------------------- no execution needed
def test_every_lab_has_its_check_list():
    labs = course_labs(ROOT)
    assert len(labs) == len(list((ROOT / "labs").glob("[0-9][0-9]_*_lab.ipynb"))) >= 12
    for stem, lab in labs.items():
        written = re.findall(r"^(check_\w+)\(", (ROOT / "labs" / "src" / f"{stem}.py").read_text(encoding="utf-8"), re.MULTILINE)
        assert [c.function for c in lab.checks] == written, stem
        assert len({c.exercise for c in lab.checks}) == len(lab.checks), f"{stem}: two checks with one name"
        for check in lab.checks:
            assert callable(getattr(__import__(check.module, fromlist=[check.function]), check.function))


def test_the_notebook_tells_which_lab_it_is_before_the_file_name():
    labs = course_labs(ROOT)
    lab00 = load(ROOT / "labs" / "00_setup_lab.ipynb")
    found = identify(lab00, f"{LAB}.ipynb", labs)
    assert found.lab.stem == "00_setup_lab" and found.how == "title"
    assert any("file name says 01_tokens_lab" in note for note in found.notes)
    lab00.cells[0].source = "# My homework"
    assert identify(lab00, "homework.ipynb", labs).how == "imported checks"
    lab00.cells = [c for c in lab00.cells if "course_utils.checks" not in c.source]
    assert identify(lab00, "00_mine.ipynb", labs).how == "file name"
    assert identify(lab00, "mine.ipynb", labs).lab is None


def test_the_labs_own_checks_run_after_what_they_need():
    lab = read_lab(STUDENT)
    nb = load(SOLUTION)
    first, last = cell_defining(nb, FUNCTIONS[0]), cell_defining(nb, FUNCTIONS[-1])
    nb.cells[first:last + 1] = list(reversed(nb.cells[first:last + 1]))
    edited = nb.cells[cell_defining(nb, "count_pairs")]
    edited.source = edited.source.replace("check_get_stats(count_pairs)", "check_get_stats(lambda ids: {})")
    plan = prepare(nb, lab, "nonce")
    where = {name: plan.roles.index(("learner", cell_defining(nb, name))) for name in FUNCTIONS}
    for k, (function, check) in enumerate(zip(FUNCTIONS, CHECKS)):
        cell = plan.notebook.cells[plan.cell_of_check(k)]
        assert f"{check!r}" in cell.source and f"__course_check({function}" in cell.source
        assert plan.cell_of_check(k) > where[function]
    assert plan.cell_of_check(3) > max(where["to_bytes"], where["count_pairs"], where["merge_pair"])  # train_bpe uses them
    assert "was edited" in plan.notes[1]
    assert not any(re.search(r"^check_\w+\(", c.source, re.MULTILINE) for c in plan.notebook.cells if c.cell_type == "code")  # learner's calls gone


def test_a_notebook_of_another_lab_is_not_run_as_this_one(tmp_path, exercises):
    other = save(load(ROOT / "labs" / "00_setup_lab.ipynb"), tmp_path / f"{LAB}.ipynb")
    (result,) = grade([other], lab="01", log=None)
    assert result.lab == LAB and statuses(result) == [MISSING] * len(exercises) and [r.exercise for r in result.rows] == exercises
    assert "Lab 00" in result.error and all("00_setup_lab" in r.message for r in result.rows)


def test_course_grade_writes_the_csv_and_prints_the_summary(tmp_path, capsys):
    bad = tmp_path / "00_setup_lab.ipynb"
    bad.write_text("{not json", encoding="utf-8")
    out = tmp_path / "out" / "grades.csv"
    assert main(["grade", str(bad), "--out", str(out)]) == 0
    with open(out, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert {r["lab"] for r in rows} == {"00_setup_lab"} and rows[-1]["status"] == "error"
    assert [r["status"] for r in rows[:-1]] == ["missing"] * len(read_lab(ROOT / "labs" / "00_setup_lab.ipynb").checks)
    shown = capsys.readouterr().out
    assert "1 submission(s) graded" in shown and "isolation:" in shown and "exercise (00_setup_lab)" in shown


def test_course_grade_says_what_is_wrong_with_its_arguments(tmp_path, capsys):
    empty = tmp_path / "nothing"
    empty.mkdir()
    out = tmp_path / "grades.csv"
    assert main(["grade", str(empty), "--out", str(out)]) == 2
    assert main(["grade", str(empty), "--lab", "99", "--out", str(out)]) == 2
    assert main(["grade", str(empty), "--timeout", "0", "--out", str(out)]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 3 and all(line.startswith("error: ") and "Fix:" in line for line in errors), errors
    assert "no notebooks" in errors[0] and "'99'" in errors[1] and "--timeout 0" in errors[2]
    assert not out.exists()
