"""The package's layers only point down, read from every import in its source (also those inside
functions), and no module reaches into another's private names.

    face      cli, runner, report, doctor, sources, checks/,    what a learner or instructor runs
              grading/
    apps      agents/, app/, serving, synth, ...                built from the tools below
    tools     tokenizer/, quant/, rag/, lora/, evaluation/, ... what the lessons teach
    backends  backends/, server                                 one interface to every engine
    core      config, errors, paths, timing, machine, ...       needs nothing above it

A package (``tokenizer/``, ``quant/``, ``lora/``, ``rag/``, ...) has one layer for all its modules, which may import
each other's public names. A new module must be given its layer here: that is the moment to decide where it belongs.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "course_utils"
ORDER = ("core", "backends", "tools", "apps", "face")
LAYERS = {
    "core": {"config", "errors", "paths", "timing", "machine", "plots", "assets", "datafiles", "evaldata", "python_docs", "notebook",
             "sampling"},  # sampling: plain functions on logits, used by the transformers backend's own loop
    "backends": {"backends", "server"},
    "tools": {"tokenizer", "transformer", "prompting", "quant", "embeddings", "bm25", "rag", "lora", "export", "evaluate",
              "evaluation", "tasks", "guard", "sandbox", "speech", "text_safety", "metrics", "merging", "specialists", "diffusion", "denoisers", "digits",
              "gguf_convert", "calibration", "closed_book", "judging"},
    "apps": {"agents", "app", "serving", "synth", "serve", "multi_agent"},
    "face": {"cli", "runner", "report", "doctor", "sources", "checks", "grading"},
}
LAYER_OF = {name: layer for layer, names in LAYERS.items() for name in names}


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py" or p.parent != PACKAGE)


def top_name(path: Path) -> str:
    """The first component under course_utils: ``rag/store.py`` -> ``rag``, ``quant.py`` -> ``quant``."""
    rel = path.relative_to(PACKAGE)
    return rel.parts[0].removesuffix(".py")


def imports(path: Path) -> list[tuple[str, list[str], int]]:
    """(imported course_utils module, names imported from it, line) for every import in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package_parts = ("course_utils", *path.relative_to(PACKAGE).parent.parts)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package_parts[: len(package_parts) - node.level + 1]
                target = ".".join((*base, node.module)) if node.module else ".".join(base)
            else:
                target = node.module or ""
            names = [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("course_utils"):
                    found.append((alias.name, [], node.lineno))
            continue
        else:
            continue
        if target == "course_utils":  # `from course_utils import rag` / `from . import x`
            for name in names:
                found.append((f"course_utils.{name}", [], node.lineno))
        elif target.startswith("course_utils."):
            found.append((target, names, node.lineno))
    return found


def test_every_module_has_a_layer():
    unplaced = sorted({top_name(p) for p in modules()} - set(LAYER_OF))
    assert not unplaced, f"give these modules a layer in tests/test_architecture.py: {unplaced}"


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down_and_stay_public(path):
    here = top_name(path)
    problems = []
    for target, names, line in imports(path):
        parts = target.split(".")
        there = parts[1] if len(parts) > 1 else ""
        private = [n for n in names if n.startswith("_") and n != "__version__"] + [p for p in parts[2:] if p.startswith("_") and p != "__init__"]
        if private:  # also between modules of one package (gpt4all_backend reaching into llamacpp)
            problems.append(f"line {line}: uses {target}'s private {private}: make it public where it lives")
        if there != here and there in LAYER_OF and here in LAYER_OF and ORDER.index(LAYER_OF[there]) > ORDER.index(LAYER_OF[here]):
            problems.append(f"line {line}: {here} ({LAYER_OF[here]}) imports {target} ({LAYER_OF[there]}), a layer above")
    assert not problems, "\n".join(problems)


def test_the_checker_sees_an_upward_import(tmp_path, monkeypatch):
    """The test above would catch a core module importing the face (and a private helper crossing over)."""
    fake = tmp_path / "course_utils"
    fake.mkdir()
    (fake / "config.py").write_text("def f():\n    from .runner import lessons\n    from .backends.llamacpp import _quiet\n")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", fake)
    with pytest.raises(AssertionError, match=r"config \(core\) imports course_utils.runner \(face\)[\s\S]*private \['_quiet'\]"):
        test_imports_point_down_and_stay_public(fake / "config.py")


MAX_LINES = 400  # one concept, readable in one sitting (CONTRIBUTING.md)
NOT_SPLIT_YET: set[str] = set()  # modules allowed over the limit while they wait to be split


def test_modules_stay_readable():
    """No module grows past MAX_LINES: a concept that needs more becomes a package (as tokenizer/, quant/, lora/)."""
    long = {str(p.relative_to(PACKAGE)): n for p in modules() if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    too_long = {name: n for name, n in long.items() if name not in NOT_SPLIT_YET}
    assert not too_long, f"split these modules into a package of smaller ones (at most {MAX_LINES} lines each): {too_long}"
