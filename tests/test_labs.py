"""Student labs run top to bottom and every check says "not done yet"; solutions pass every check.

(The solutions are also executed and output-validated by nbval, via pytest's testpaths.)
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
STUDENT_LABS = sorted((ROOT / "labs").glob("[0-9][0-9]_*_lab.ipynb"))
VERDICT_MARKS = ("✅", "❌", "⏳")


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
def test_student_lab_runs_and_reports_not_done(lab):
    nb = nbformat.read(lab, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(lab.parent)}}).execute()
    verdicts = verdict_lines(nb)
    assert verdicts, "the lab printed no check verdicts"
    assert all(v.startswith("⏳") and "not done yet" in v for v in verdicts), verdicts


@pytest.mark.parametrize("lab", STUDENT_LABS, ids=lambda p: p.stem)
def test_solution_passes_every_check(lab):
    # Stored outputs of the solution (kept current by nbval, which re-runs it) must all be passes.
    solution = nbformat.read(ROOT / "labs" / "solutions" / lab.name, as_version=4)
    verdicts = verdict_lines(solution)
    assert verdicts and all(v.startswith("✅") for v in verdicts), verdicts
