"""Keep every notebook and its paired text source (jupytext percent format) in step.

Each ``.ipynb`` has a reviewable twin under ``src/`` beside it:

    notebooks/07_rag.ipynb            <->  notebooks/src/07_rag.py
    labs/07_rag_lab.ipynb             <->  labs/src/07_rag_lab.py
    labs/solutions/07_rag_lab.ipynb   <->  labs/solutions/src/07_rag_lab.py

Authors edit the ``.py`` (a normal diff in review), then

    .venv/bin/python tools/notebook_sources.py --to-ipynb   # .py -> .ipynb, keeping the stored outputs
    .venv/bin/course run NN --in-place                      # re-store the outputs (and the .py twin)

``--to-py`` writes the ``.py`` files from the notebooks (after editing in JupyterLab), ``--check``
(what the tests run) lists every pair that differs and exits 1.

Face layer (an authoring tool; needs jupytext, from the ``dev`` extra).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import jupytext

from .paths import project_root

FOLDERS = ("notebooks", "labs", "labs/solutions")
FORMAT = "py:percent"
KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}
JUPYTEXT_META = {"cell_metadata_filter": "tags,-all", "main_language": "python", "notebook_metadata_filter": "-all"}


def pairs(root: Path | None = None) -> list[tuple[Path, Path]]:
    """(notebook, text source) for every notebook in the course folders."""
    root = root or project_root()
    found = []
    for folder in FOLDERS:
        for nb in sorted((root / folder).glob("[0-9][0-9]_*.ipynb")):
            found.append((nb, twin_of(nb)))
    return found


def as_text(nb_path: Path) -> str:
    """The percent-format text of a notebook, as committed."""
    nb = jupytext.read(nb_path)
    for cell in nb.cells:  # an empty tag list carries no meaning and clutters the text
        if cell.metadata.get("tags") == []:
            del cell.metadata["tags"]
    return jupytext.writes(nb, fmt=FORMAT)


def to_py(nb_path: Path, py_path: Path) -> None:
    py_path.parent.mkdir(parents=True, exist_ok=True)
    py_path.write_text(as_text(nb_path), encoding="utf-8")


def to_ipynb(py_path: Path, nb_path: Path) -> bool:
    """Write the notebook from its text, keeping outputs of unchanged cells and the run metadata.

    A notebook that already matches its text is left alone (False), byte for byte: rewriting it would
    only churn metadata that papermill adds (empty tag lists).
    """
    if nb_path.exists() and as_text(nb_path) == py_path.read_text(encoding="utf-8"):
        return False
    new = jupytext.read(py_path, fmt=FORMAT)
    if nb_path.exists():
        old = jupytext.read(nb_path)
        from jupytext.combine import combine_inputs_with_outputs

        new = combine_inputs_with_outputs(new, old, fmt=FORMAT)
        for key, value in old.metadata.items():  # keep e.g. the run metadata (machine, load)
            new.metadata.setdefault(key, value)
    new.metadata.pop("papermill", None)  # papermill's own run record is not committed
    new.metadata["kernelspec"] = KERNELSPEC
    new.metadata["jupytext"] = JUPYTEXT_META
    new.metadata.setdefault("language_info", {"name": "python"})
    jupytext.write(new, nb_path, fmt="ipynb")
    return True


def check(root: Path | None = None) -> list[str]:
    """Pairs that are missing or differ."""
    root = root or project_root()
    problems = []
    for nb, py in pairs(root):
        if not py.exists():
            problems.append(f"{py.relative_to(root)} is missing (run tools/notebook_sources.py --to-py)")
        elif py.read_text(encoding="utf-8") != as_text(nb):
            problems.append(f"{nb.relative_to(root)} and {py.relative_to(root)} differ")
    for folder in FOLDERS:
        for py in sorted((root / folder / "src").glob("*.py")):
            if not (py.parent.parent / f"{py.stem}.ipynb").exists():
                problems.append(f"{py.relative_to(root)} has no notebook (run --to-ipynb)")
    return problems


def twin_of(nb_path: Path) -> Path:
    """The text source paired with a notebook."""
    return nb_path.parent / "src" / f"{nb_path.stem}.py"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--to-py", action="store_true", help="write src/*.py from the notebooks")
    mode.add_argument("--to-ipynb", action="store_true", help="write the notebooks from src/*.py (outputs kept)")
    mode.add_argument("--check", action="store_true", help="exit 1 if any pair differs")
    parser.add_argument("only", nargs="*", help="notebook stems to handle (default: all)")
    args = parser.parse_args(argv)
    root = project_root()
    chosen = [(nb, py) for nb, py in pairs() if not args.only or nb.stem in args.only or nb.stem[:2] in args.only]
    if args.to_ipynb:  # a new lesson exists only as .py at first
        for folder in FOLDERS:
            for py in sorted((root / folder / "src").glob("[0-9][0-9]_*.py")):
                nb = py.parent.parent / f"{py.stem}.ipynb"
                if (nb, py) not in chosen and (not args.only or py.stem in args.only or py.stem[:2] in args.only):
                    chosen.append((nb, py))
    if args.check:
        problems = check()
        print("\n".join(problems) or "all notebooks and their sources agree")
        return 1 if problems else 0
    for nb, py in chosen:
        if args.to_py:
            to_py(nb, py)
            print(f"wrote {py.relative_to(root)}")
        else:
            print(f"{'updated' if to_ipynb(py, nb) else 'unchanged'} {nb.relative_to(root)}")
    return 0
