"""The README's switch works for every lesson: `COURSE_BACKEND=transformers` and `COURSE_BACKEND=gpt4all`.

Each lesson is executed with papermill, with the environment variable set (what `make course` and
Jupyter see) and the `BACKEND` parameter set to the same name (what `papermill -p BACKEND ...`
does), on a kernel started from that environment. A cell that fails (an exception, a failed
assert, a CourseError shown as one line) fails the test. Where a backend lacks a capability
(GPT4All: no grammar, no seeded sampling), the lesson must hand that cell to a backend that has it
and say so; the test checks it said so. The executed copies are kept in
build/test-artifacts/backends/ to look at.

Lessons that never start the backend the switch chooses (02, 04, 05, 06, 08, 09 open theirs by name:
they are about PyTorch's insides, or compare every engine) are skipped with that reason: their run
under the switch would be the very run nbval already makes. A scan of the code decides, so a lesson
that starts reading BACKEND is run here from then on.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
LESSONS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
BACKENDS = ("transformers", "gpt4all")
ARTIFACTS = ROOT / "build" / "test-artifacts" / "backends"
FALLBACK_NOTE = "backend cannot"  # what course_utils.backends.backend_with prints when it hands a cell over
# code that starts "the" backend, i.e. reads COURSE_BACKEND: get_backend(BACKEND...), get_backend("auto"...),
# get_backend(), a backend name read from the settings, or launch_app / course app given a name
READS_THE_SWITCH = re.compile(r"""get_backend\(\s*(BACKEND\b|["']auto["']|\)|model=)|settings\(\)\.backend|cfg\.backend|launch_app\(\s*(BACKEND|["'])""")


def reads_the_switch(code: str) -> bool:
    """Whether notebook code starts the backend that COURSE_BACKEND / BACKEND chooses."""
    return bool(READS_THE_SWITCH.search(code))


def code_of(lesson: Path) -> str:
    return "\n".join(c.source for c in nbformat.read(lesson, as_version=4).cells if c.cell_type == "code")


def run_lesson(lesson: Path, backend: str, monkeypatch: pytest.MonkeyPatch) -> nbformat.NotebookNode:
    """Execute ``lesson`` with ``backend`` chosen both ways; return the executed notebook (kept as an artifact)."""
    import papermill as pm

    monkeypatch.setenv("COURSE_BACKEND", backend)  # the kernel inherits this process's environment
    monkeypatch.delenv("COURSE_MODEL", raising=False)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    out = ARTIFACTS / f"{lesson.stem}.{backend}.ipynb"
    try:
        pm.execute_notebook(str(lesson), str(out), parameters={"BACKEND": backend}, cwd=str(lesson.parent),
                            kernel_name="python3", progress_bar=False, request_save_on_cell_execute=False)
    except pm.PapermillExecutionError as err:
        pytest.fail(f"{lesson.name} with COURSE_BACKEND={backend}: cell {err.exec_count} raised {err.ename}: {err.evalue}"
                    f" (executed copy: {out.relative_to(ROOT)})", pytrace=False)
    return nbformat.read(out, as_version=4)


def printed(nb: nbformat.NotebookNode) -> str:
    return "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
                     if o.get("output_type") == "stream")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("lesson", LESSONS, ids=lambda p: p.stem)
def test_lesson_runs_with_the_backend_switch(lesson, backend, monkeypatch):
    if not reads_the_switch(code_of(lesson)):
        pytest.skip(f"{lesson.stem} opens its backends by name (the lesson is about them), never the one COURSE_BACKEND picks: "
                    "this run would repeat the default run that nbval already checks")
    nb = run_lesson(lesson, backend, monkeypatch)
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, errors[0]
    assert nb.metadata["papermill"]["parameters"]["BACKEND"] == backend
    text, source = printed(nb), "".join(c.source for c in nb.cells)
    if backend == "transformers":  # it has a grammar and a seeded sampler: no cell needs another backend
        assert FALLBACK_NOTE not in text
    elif "backend_with(" in source:  # GPT4All has neither: such a cell ran elsewhere, and must say so
        assert f"the gpt4all {FALLBACK_NOTE}" in text, "a cell fell back without saying why"


def test_the_scan_finds_code_that_reads_the_switch():
    assert reads_the_switch("llm = get_backend(BACKEND, model=MODEL)")
    assert reads_the_switch('with get_backend("auto") as llm:') and reads_the_switch("get_backend()")
    assert reads_the_switch("get_backend(model=MODEL)") and reads_the_switch("name = cfg.backend")
    assert reads_the_switch('launch_app("auto")')
    assert not reads_the_switch('get_backend("llamacpp", model=MODEL)') and not reads_the_switch("get_backend(name, model=MODEL)")
    assert not reads_the_switch("launch_app(backend, documents=notes)")

