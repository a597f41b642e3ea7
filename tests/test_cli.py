"""The `course` command: list, run (papermill + report) and doctor."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from course_utils import runner
from course_utils.cli import main
from course_utils.errors import DataError

ROOT = Path(__file__).resolve().parents[1]


def make_notebook(path: Path, code: str, title: str = "# 99 · Tiny") -> Path:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("N = 2")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell(title), params, nbformat.v4.new_code_cell(code)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def test_list_shows_every_lesson(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for lesson in runner.lessons(ROOT):
        assert lesson.stem in out
        assert runner.notebook_title(lesson) in out


def test_select_by_number_and_name():
    lessons = runner.lessons(ROOT)
    assert runner.select(lessons, ["00"])[0].stem == "00_setup"
    assert runner.select(lessons, ["0"])[0].stem == "00_setup"
    assert runner.select(lessons, ["00_setup"]) == runner.select(lessons, ["00"])
    with pytest.raises(DataError, match="no notebook matches '42'"):
        runner.select(lessons, ["42"])


def test_run_writes_outputs_report_and_records(tmp_path):
    ok = make_notebook(tmp_path / "98_ok.ipynb", "from course_utils import record\nrecord('doubled', N * 2)")
    bad = make_notebook(tmp_path / "99_bad.ipynb", "raise ValueError('broken on purpose')")
    runs = runner.run_notebooks([ok, bad], tmp_path / "out", parameters={"N": 21}, progress=False)
    assert [r.status for r in runs] == ["ok", "failed"]  # a failure does not stop the run
    assert "broken on purpose" in runs[1].error
    assert runs[0].records == [{"key": "doubled", "value": "42", "note": ""}]  # the parameter reached the notebook
    executed = nbformat.read(tmp_path / "out" / "98_ok.ipynb", as_version=4)
    assert any("doubled = 42" in o.get("text", "") for c in executed.cells for o in c.get("outputs", []))
    report = runner.write_report(runs, tmp_path / "out" / "report.md").read_text()
    assert "1/2 notebooks ran without error" in report
    assert "[98_ok](98_ok.ipynb) | ok" in report and "doubled = 42" in report
    assert "**FAILED**" in report and "broken on purpose" in report


def test_run_into_a_relative_out_folder(tmp_path, monkeypatch):
    """`course run 01 --out build/x` from the project root: the notebook runs in its own folder, so a relative
    out folder must not be resolved from there (its records file was looked for in the wrong place)."""
    (tmp_path / "lessons").mkdir()
    ok = make_notebook(tmp_path / "lessons" / "98_ok.ipynb", "from course_utils import record\nrecord('doubled', N * 2)")
    monkeypatch.chdir(tmp_path)
    runs = runner.run_notebooks([ok], Path("build/out"), parameters={"N": 21}, progress=False)
    assert runs[0].status == "ok", runs[0].error
    assert runs[0].records == [{"key": "doubled", "value": "42", "note": ""}]
    assert (tmp_path / "build" / "out" / "98_ok.ipynb").is_file()


def test_run_command_exit_code_reflects_failures(tmp_path, monkeypatch):
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "pyproject.toml").write_text("")
    make_notebook(tmp_path / "notebooks" / "01_fine.ipynb", "x = N")
    monkeypatch.chdir(tmp_path)
    assert main(["run", "01", "--out", str(tmp_path / "o")]) == 0
    assert (tmp_path / "o" / "report.md").is_file()
    make_notebook(tmp_path / "notebooks" / "02_fails.ipynb", "1/0")
    assert main(["run", "--out", str(tmp_path / "o")]) == 1
    assert main(["run", "77", "--out", str(tmp_path / "o")]) == 2  # CourseError -> one line, exit 2


QUIET = runner.Machine(cores=2, load_1min=0.3, cpu="Quiet CPU", flags=())
BUSY = runner.Machine(cores=2, load_1min=6.5, cpu="Busy CPU", flags=())


def _pretend_machine(monkeypatch, m):
    monkeypatch.setattr(runner, "machine", lambda: m)


def test_in_place_records_the_machine_the_run_time_and_the_text_twin(tmp_path, monkeypatch):
    _pretend_machine(monkeypatch, QUIET)
    nb = make_notebook(tmp_path / "98_lesson.ipynb", "print(N * 3)", title="# 98 · Tiny\n\n**Run time:** about a week")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "98_lesson.py").write_text("# %%\nprint('stale twin')\n")
    runs = runner.run_notebooks([nb], tmp_path / "out", in_place=True, progress=False)
    assert runs[0].status == "ok"
    stored = nbformat.read(nb, as_version=4)
    meta = stored.metadata["course_run"]
    assert (meta["cores"], meta["load_1min"], meta["cpu"], meta["forced"]) == (2, 0.3, "Quiet CPU", False)
    assert meta["seconds"] == round(runs[0].seconds, 1) and "papermill" not in stored.metadata
    assert any("6" in o.get("text", "") for c in stored.cells for o in c.get("outputs", []))
    first = stored.cells[0].source
    assert "about a week" not in first and f"**Run time:** {runner.format_seconds(runs[0].seconds)} on a 2-core CPU (Quiet CPU)" in first
    twin = (tmp_path / "src" / "98_lesson.py").read_text()
    assert "**Run time:** " in twin and "about a week" not in twin  # the reviewable text says the same


def test_in_place_refuses_a_busy_machine_unless_forced(tmp_path, monkeypatch):
    _pretend_machine(monkeypatch, BUSY)
    nb = make_notebook(tmp_path / "98_lesson.ipynb", "print(N)")
    original = nb.read_bytes()
    with pytest.raises(DataError, match=r"busy \(load 6.5 on 2 cores\).*Fix: .*--force"):
        runner.run_notebooks([nb], tmp_path / "out", in_place=True, progress=False, quiet_wait_s=0)
    assert nb.read_bytes() == original
    runner.run_notebooks([nb], tmp_path / "out", in_place=True, progress=False, quiet_wait_s=0, force=True)
    assert nbformat.read(nb, as_version=4).metadata["course_run"]["forced"] is True  # and the notebook says so


def test_in_place_refuses_a_run_time_line_that_a_rewrite_would_cut_in_half(tmp_path, monkeypatch):
    _pretend_machine(monkeypatch, QUIET)
    nb = make_notebook(tmp_path / "98_lesson.ipynb", "print(N)",
                       title="# 98 · Tiny\n\n**Run time:** about 2 min. The adapters\nship with the course.")
    original = nb.read_bytes()
    with pytest.raises(DataError, match=r"98_lesson.ipynb: .*continued by 'ship with the course.'.*Fix: .*blank line"):
        runner.run_notebooks([nb], tmp_path / "out", in_place=True, progress=False)
    assert nb.read_bytes() == original and not (tmp_path / "out" / "98_lesson.ipynb").exists()  # refused before running


def test_in_place_keeps_the_original_when_the_run_fails(tmp_path, monkeypatch):
    _pretend_machine(monkeypatch, QUIET)
    nb = make_notebook(tmp_path / "98_lesson.ipynb", "1 / 0")
    original = nb.read_bytes()
    assert runner.run_notebooks([nb], tmp_path / "out", in_place=True, progress=False)[0].status == "failed"
    assert nb.read_bytes() == original


def test_readme_run_times_come_from_the_run(tmp_path, monkeypatch):
    _pretend_machine(monkeypatch, QUIET)
    readme = tmp_path / "README.md"
    readme.write_text("| # | lesson | what | run time (2 cores) |\n|---|---|---|---|\n"
                      "| 00 | [Setup](notebooks/00_setup.ipynb) | first chat | ~30 s |\n"
                      "| 01 | [Tokens](notebooks/01_tokens.ipynb) | BPE | ~30 s |\n\nRun times: guessed.\n")
    runs = [runner.NotebookRun(Path("notebooks/00_setup.ipynb"), Path("x"), "ok", 41.6),
            runner.NotebookRun(Path("notebooks/01_tokens.ipynb"), Path("y"), "failed", 3.0)]
    assert runner.update_readme_run_times(runs, readme) == ["00"]
    text = readme.read_text()
    assert "| 00 | [Setup](notebooks/00_setup.ipynb) | first chat | 42 s |" in text
    assert "| 01 | [Tokens](notebooks/01_tokens.ipynb) | BPE | ~30 s |" in text  # a failed run measures nothing
    assert "guessed" not in text and "Run times: measured by `course run --readme`" in text and "Quiet CPU" in text


@pytest.mark.parametrize("nb", runner.lessons(ROOT, include_labs=True) + sorted((ROOT / "labs").glob("[0-9][0-9]_*.ipynb")),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_committed_outputs_were_stored_on_a_quiet_machine(nb):
    meta = nbformat.read(nb, as_version=4).metadata.get("course_run")
    assert meta, "stored without `course run --in-place`, so nobody knows what machine made these outputs"
    assert not meta["forced"] and meta["load_1min"] <= meta["cores"], f"stored under load: {meta}"


@pytest.mark.parametrize("nb", runner.lessons(ROOT, include_labs=True) + sorted((ROOT / "labs").glob("[0-9][0-9]_*.ipynb")),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_the_run_time_line_is_a_paragraph_of_its_own(nb):
    first = next(c.source for c in nbformat.read(nb, as_version=4).cells if c.cell_type == "markdown")
    assert runner.RUN_TIME_LINE.search(first), "the first cell says how long the notebook runs (`course run --in-place` measures it)"
    assert "not measured yet" not in first, "stored without measuring its run time: `course run --in-place`"
    assert runner.run_time_paragraph_problem(first) is None, runner.run_time_paragraph_problem(first)


def test_doctor_reports_working_backends():
    out = subprocess.run([sys.executable, "-m", "course_utils.cli", "doctor", "--backend", "llamacpp"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "✓ llamacpp" in out.stdout and "Berlin" in out.stdout
    assert "Verdict: ready" in out.stdout
    assert "SmolLM2 GGUF" in out.stdout and "llama_cpp_python" in out.stdout


def test_doctor_fails_when_no_backend_works(tmp_path):
    env = {**__import__("os").environ, "COURSE_MODEL": str(tmp_path / "missing.gguf")}
    out = subprocess.run([sys.executable, "-m", "course_utils.cli", "doctor"], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 1
    assert "Verdict: NOT ready" in out.stdout
    assert out.stdout.count("✗") >= 2 and "missing.gguf" in out.stdout


def test_record_appends_json_lines(tmp_path, monkeypatch, capsys):
    from course_utils.report import read_records, record

    target = tmp_path / "r.jsonl"
    monkeypatch.setenv("COURSE_REPORT_FILE", str(target))
    assert record("tps", 12.345, note="fast", fmt=".1f") == 12.345
    assert "tps = 12.3  (fast)" in capsys.readouterr().out
    assert read_records(target) == [{"key": "tps", "value": "12.3", "note": "fast"}]
    assert json.loads(target.read_text())["key"] == "tps"
