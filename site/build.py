"""Build the course website: ``make site`` (or ``python site/build.py``) -> build/site/index.html.

The pages are put together in a staging folder, then Sphinx (myst-nb, sphinx-book-theme) renders them:

- the front page is the README (the lesson table, how to run, Colab, teaching a class), its links
  to lessons turned into links to their pages;
- each lesson as executed by ``course run`` (``build/course/NN_x.ipynb``), or with the outputs stored in
  ``notebooks/`` when it has not been run; the labs and their solutions with their stored outputs;
- one page per ``course_utils`` module, generated from its docstrings.

Nothing is fetched from the internet: remote images in Markdown (the Colab badge) become plain links,
MathJax 3 is copied from the ``django-static-mathjax`` package, and the theme ships its own assets.
The finished site replaces ``build/site`` in one rename, so a failed build leaves the last good one.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import pkgutil
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from course_utils.errors import DataError  # noqa: E402
from course_utils.paths import atomic_folder, atomic_write_text  # noqa: E402

REPOSITORY = "https://github.com/local-llm-lab/local-llm-lab"
SITE_CONFIG = ROOT / "site"
LINK = re.compile(r"(?<!!)\[(?P<text>[^\]]*)\]\((?P<target>[^)\s]+)\)")
LINKED_REMOTE_IMAGE = re.compile(r"\[!\[(?P<alt>[^\]]*)\]\(https?://[^)]+\)\]\((?P<target>[^)\s]+)\)")
REMOTE_IMAGE = re.compile(r"!\[(?P<alt>[^\]]*)\]\((?P<target>https?://[^)\s]+)\)")
# The parts of MathJax 3 (the django-static-mathjax package's copy) that TeX input with CHTML output loads
MATHJAX_PARTS = ("LICENSE", "es5/tex-chtml.js", "es5/input", "es5/output/chtml", "es5/ui", "es5/a11y", "es5/adaptors")


@dataclass(frozen=True)
class Page:
    """One notebook of the site: where it goes in the site, where it comes from."""

    dest: str  # e.g. "notebooks/00_setup.ipynb"
    source: Path
    executed: bool  # True: from build/course (this machine's run); False: outputs stored in the repo


# ----------------------------------------------------------------------------- which pages
def notebook_pages(root: Path = ROOT, course_dir: Path | None = None) -> list[Page]:
    """Lessons (executed copy if ``course_dir`` has one), then labs, then lab solutions, in order."""
    course_dir = course_dir if course_dir is not None else root / "build" / "course"
    pages = []
    for nb in sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        executed = course_dir / nb.name
        use = executed if executed.is_file() and _has_outputs(executed) else nb
        pages.append(Page(f"notebooks/{nb.name}", use, use is executed))
    # build/course/NN_x_lab.ipynb may be a student lab or a solution (`course run --all` runs both under
    # one name), so labs always show the outputs stored with them.
    for folder in ("labs", "labs/solutions"):
        pages += [Page(f"{folder}/{nb.name}", nb, False) for nb in sorted((root / folder).glob("[0-9][0-9]_*.ipynb"))]
    if not any(p.dest.startswith("notebooks/") for p in pages):
        raise DataError(f"no lesson notebooks in {root / 'notebooks'}", fix="run the site build from the course checkout")
    return pages


def _has_outputs(path: Path) -> bool:
    try:
        cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
    except (OSError, json.JSONDecodeError):
        return False  # a half-written or broken run: fall back to the stored notebook
    return any(c.get("outputs") for c in cells if c.get("cell_type") == "code")


def module_names() -> list[str]:
    """Every module of course_utils (subpackages included), in name order."""
    import course_utils

    found = ["course_utils"] + [m.name for m in pkgutil.walk_packages(course_utils.__path__, "course_utils.")]
    return sorted(found)


# ----------------------------------------------------------------------------- Markdown rewriting
def rewrite_markdown(text: str, here: str, documents: set[str]) -> str:
    """Make a Markdown text self-contained for the site.

    ``here`` is the folder of the page in the site ("" for the front page), ``documents`` the site's
    pages (paths from the site root). A remote image becomes a link (no request to another server when
    the page loads); a relative link to a page stays; a relative link to any other repository file goes
    to that file on GitHub.

    >>> rewrite_markdown("[![Open In Colab](https://x/badge.svg)](https://colab/nb)", "notebooks", set())
    '[Open In Colab](https://colab/nb)'
    >>> rewrite_markdown("see [lab](../labs/a_lab.ipynb) and [code](../src/x.py#L3)", "notebooks", {"labs/a_lab.ipynb"})
    'see [lab](../labs/a_lab.ipynb) and [code](https://github.com/local-llm-lab/local-llm-lab/blob/main/src/x.py#L3)'
    """
    text = LINKED_REMOTE_IMAGE.sub(lambda m: f"[{m['alt']}]({m['target']})", text)
    text = REMOTE_IMAGE.sub(lambda m: f"[{m['alt']}]({m['target']})", text)

    def fix(match: re.Match) -> str:
        target = match["target"]
        if re.match(r"^([a-z][a-z0-9+.-]*:|#|\*)", target):  # a URL, an anchor, or not a link (f(**kw))
            return match[0]
        path, _, anchor = target.partition("#")
        resolved = os.path.normpath(os.path.join(here, path)).replace(os.sep, "/")
        if resolved in documents or resolved.startswith(".."):
            return match[0]
        return f"[{match['text']}]({REPOSITORY}/blob/main/{resolved}{'#' + anchor if anchor else ''})"

    return LINK.sub(fix, text)


def rewrite_notebook(source: Path, dest: Path, here: str, documents: set[str]) -> None:
    """Copy a notebook with its Markdown cells made self-contained (:func:`rewrite_markdown`)."""
    nb = json.loads(source.read_text(encoding="utf-8"))
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "markdown":
            cell["source"] = rewrite_markdown("".join(cell.get("source", "")), here, documents)
    atomic_write_text(dest, json.dumps(nb, ensure_ascii=False, indent=1))


# ----------------------------------------------------------------------------- the staging folder
def stage(folder: Path, root: Path = ROOT, course_dir: Path | None = None) -> list[Page]:
    """Fill ``folder`` with everything Sphinx renders; returns the notebook pages used."""
    pages = notebook_pages(root, course_dir)
    extra = {"CONTRIBUTING.md": root / "CONTRIBUTING.md", "data/README.md": root / "data" / "README.md"}
    extra = {k: v for k, v in extra.items() if v.is_file()}
    documents = {p.dest for p in pages} | set(extra) | {"index.md"}

    front = (root / "README.md").read_text(encoding="utf-8")
    (folder / "index.md").write_text(rewrite_markdown(front, "", documents) + "\n" + _toctrees(pages, extra), encoding="utf-8")
    for dest, source in extra.items():
        (folder / dest).parent.mkdir(parents=True, exist_ok=True)
        (folder / dest).write_text(rewrite_markdown(source.read_text(encoding="utf-8"), str(Path(dest).parent).strip("."), documents), encoding="utf-8")
    for page in pages:
        target = folder / page.dest
        target.parent.mkdir(parents=True, exist_ok=True)
        rewrite_notebook(page.source, target, str(Path(page.dest).parent), documents)
    _api_pages(folder / "api")
    _copy_mathjax(folder / "_static" / "mathjax")
    return pages


def _toctrees(pages: list[Page], extra: dict[str, Path]) -> str:
    def tree(caption: str, entries: list[str]) -> str:
        return "```{toctree}\n:hidden:\n:maxdepth: 1\n:caption: " + caption + "\n\n" + "\n".join(entries) + "\n```\n\n"

    groups = {"Lessons": "notebooks/", "Labs": "labs/", "Lab solutions": "labs/solutions/"}
    out = ""
    for caption, prefix in groups.items():
        entries = [p.dest for p in pages if p.dest.startswith(prefix) and "/" not in p.dest[len(prefix):]]
        out += tree(caption, entries)
    return out + tree("Reference", ["api/index", *extra])


def _api_pages(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    names = module_names()
    for name in names:
        title = f"``{name}``"
        (folder / f"{name}.rst").write_text(f"{title}\n{'=' * len(title)}\n\n.. automodule:: {name}\n", encoding="utf-8")
    listing = "\n".join(f"   {name}" for name in names)
    (folder / "index.rst").write_text(
        "The ``course_utils`` package\n============================\n\n"
        "One page per module, generated from its docstrings. Each module's docstring says which lesson teaches it.\n\n"
        f".. toctree::\n   :maxdepth: 1\n\n{listing}\n", encoding="utf-8")


def _copy_mathjax(dest: Path) -> None:
    spec = importlib.util.find_spec("mathjax")
    static = Path(spec.submodule_search_locations[0]) / "static" / "mathjax" if spec and spec.submodule_search_locations else None
    if static is None or not (static / "es5" / "tex-chtml.js").is_file():
        raise DataError("MathJax is not installed (the site serves its own copy)", fix="pip install -e '.[site]' (it brings django-static-mathjax)")
    for part in MATHJAX_PARTS:
        source, target = static / part, dest / part
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target)
        else:
            shutil.copy2(source, target)


# ----------------------------------------------------------------------------- build
def build_site(out: Path | None = None, root: Path = ROOT, course_dir: Path | None = None,
               work: Path | None = None, jobs: int | None = None, quiet: bool = True) -> Path:
    """Stage the pages and run Sphinx; the finished site replaces ``out`` (default build/site).

    ``work`` holds the staging folder, Sphinx's cache and ``site-build.log`` (default build/).
    """
    out = out or root / "build" / "site"
    work = work or root / "build"
    staging = work / "site-src"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    stage(staging, root, course_dir)

    def render(tmp: Path) -> None:
        command = [sys.executable, "-m", "sphinx", "-b", "html", "-c", str(SITE_CONFIG), "-j", str(jobs or min(2, os.cpu_count() or 1)),
                   "-d", str(work / "site-doctrees"), str(staging), str(tmp)]
        if quiet:
            command.append("-q")
        env = {**os.environ, "COURSE_SITE_ROOT": str(root), "COURSE_SITE_STAGING": str(staging), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
               "PYTHONPATH": os.pathsep.join([str(root / "src"), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        log = done.stdout + done.stderr
        (work / "site-build.log").write_text(log, encoding="utf-8")
        if done.returncode != 0:
            raise DataError(f"the site build failed (sphinx exit {done.returncode}): {log.strip().splitlines()[-1:]}",
                            fix=f"read {work / 'site-build.log'}")

    return atomic_folder(out, render)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="output folder (default build/site)")
    parser.add_argument("--course", type=Path, default=None, help="executed lessons (default build/course)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    out = build_site(args.out, course_dir=args.course, quiet=False)
    pages = notebook_pages(ROOT, args.course)
    executed = [p.dest for p in pages if p.executed]
    print(f"site: {out / 'index.html'} in {time.perf_counter() - started:.0f} s; "
          f"{len(executed)} lesson(s) from build/course, the rest with their stored outputs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
