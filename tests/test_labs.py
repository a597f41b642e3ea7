"""Student labs run top to bottom and every check says "not done yet"; solutions pass every check.

Both are judged on the outputs of the run this test just did, never on the outputs stored in the
files (those could be stale). The executed copies are kept in build/test-artifacts/labs/ to look at.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
STUDENT_LABS = sorted((ROOT / "labs").glob("[0-9][0-9]_*_lab.ipynb"))
VERDICT_MARKS = ("✅", "❌", "⏳")


ARTIFACTS = ROOT / "build" / "test-artifacts" / "labs"


def execute(path: Path, kind: str):
    """Run a lab notebook in a fresh kernel; keep the executed copy as an artifact."""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:  # start from nothing: no stored output can count
        if cell.cell_type == "code":
            cell.outputs = []
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, ARTIFACTS / f"{path.stem}.{kind}.ipynb")
    return nb


def verdict_names(verdicts: list[str]) -> list[str]:
    return [v.split(":", 1)[0][2:].strip() for v in verdicts]


def verdict_lines(nb) -> list[str]:
    lines = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            text = output.get("text", "") or output.get("data", {}).get("text/plain", "")
            lines += [ln for ln in text.splitlines() if ln.startswith(VERDICT_MARKS)]
    return lines


def test_every_lesson_has_a_lab_and_a_solution():
    lessons = {p.name.split("_")[0] for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")}
    labs = {p.name.split("_")[0] for p in STUDENT_LABS}
    solutions = {p.name for p in (ROOT / "labs" / "solutions").glob("*.ipynb")}
    assert lessons <= labs, f"lessons without a lab: {sorted(lessons - labs)}"
    assert {p.name for p in STUDENT_LABS} == solutions


@pytest.mark.parametrize("lab", STUDENT_LABS, ids=lambda p: p.stem)
def test_student_lab_says_not_done_and_its_solution_passes(lab):
    student = verdict_lines(execute(lab, "student"))
    assert student, "the lab printed no check verdicts"
    assert all(v.startswith("⏳") and "not done yet" in v for v in student), student
    solution = verdict_lines(execute(ROOT / "labs" / "solutions" / lab.name, "solution"))
    assert solution and all(v.startswith("✅") for v in solution), solution
    assert verdict_names(solution) == verdict_names(student), "the solution and the student lab run different checks"
