"""Every notebook has a reviewable text twin (jupytext percent format) that says the same thing,
and the metadata plain papermill / nbconvert need to run it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from course_utils import sources as notebook_sources

ROOT = Path(__file__).resolve().parents[1]

NOTEBOOKS = [nb for nb, _ in notebook_sources.pairs(ROOT)]


def test_every_notebook_and_its_text_source_agree():
    problems = notebook_sources.check(ROOT)
    assert not problems, "\n".join(problems) + "\nFix: .venv/bin/python tools/notebook_sources.py --to-ipynb (after editing src/*.py)"


def test_a_changed_source_is_noticed(tmp_path):
    (tmp_path / "notebooks" / "src").mkdir(parents=True)
    nb, py = notebook_sources.pairs(ROOT)[0]
    (tmp_path / "notebooks" / nb.name).write_text(nb.read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "notebooks" / "src" / py.name).write_text(py.read_text(encoding="utf-8") + "\n# %%\nprint('new cell')\n", encoding="utf-8")
    assert notebook_sources.check(tmp_path) == [f"notebooks/{nb.name} and notebooks/src/{py.name} differ"]


def test_to_ipynb_leaves_a_matching_notebook_byte_for_byte_and_rewrites_a_changed_one(tmp_path):
    lab = next(nb for nb, _ in notebook_sources.pairs(ROOT) if nb.parent.name == "labs")  # executed: papermill's empty tags
    stored, text = lab.read_bytes(), notebook_sources.twin_of(lab).read_text(encoding="utf-8")
    assert b'"tags": []' in stored  # what a rewrite would drop
    nb, py = tmp_path / lab.name, tmp_path / "src.py"
    nb.write_bytes(stored)
    py.write_text(text, encoding="utf-8")
    assert notebook_sources.to_ipynb(py, nb) is False
    assert nb.read_bytes() == stored
    py.write_text(text + "\n# %%\nprint('new cell')\n", encoding="utf-8")
    assert notebook_sources.to_ipynb(py, nb) is True
    assert "print('new cell')" in nb.read_text(encoding="utf-8")
    assert notebook_sources.as_text(nb) == py.read_text(encoding="utf-8")


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_notebook_metadata_lets_plain_tools_run_it(nb):
    meta = json.loads(nb.read_text(encoding="utf-8"))["metadata"]
    assert meta.get("kernelspec", {}).get("name") == "python3", "plain papermill fails with 'No kernel name found in notebook'"
    assert "papermill" not in meta, "papermill's run metadata must not be committed"


def test_a_lesson_runs_with_plain_papermill(tmp_path):
    """What an instructor's CI does: `papermill in.ipynb out.ipynb`, no course runner involved."""
    out = tmp_path / "00_setup.ipynb"
    papermill = Path(sys.executable).with_name("papermill")
    done = subprocess.run([str(papermill), str(ROOT / "notebooks" / "00_setup.ipynb"), str(out), "--cwd", str(ROOT / "notebooks")],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    executed = json.loads(out.read_text(encoding="utf-8"))
    errors = [o for c in executed["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors and executed["metadata"]["papermill"]["exception"] is None


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_prose_is_in_markdown_cells_and_no_cell_is_empty(nb):
    """Two slips of editing a text twin: `# %% [markdown]` right above `# %%` (an empty Markdown cell), and a
    heading or paragraph typed as `# ...` comments at the end of a code cell (a heading the reader never sees)."""
    cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
    problems = []
    for i, cell in enumerate(cells):
        source = "".join(cell["source"])
        if not source.strip():
            problems.append(f"cell {i} ({cell['cell_type']}) is empty")
        elif cell["cell_type"] == "code":
            headings = [line for line in source.splitlines() if line.startswith("# #")]
            if headings:
                problems.append(f"cell {i} is code but holds a Markdown heading as a comment: {headings[0]!r}")
    assert not problems, "\n".join(problems)
