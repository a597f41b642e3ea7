"""Sphinx configuration of the course website (built by ``make site``; see site/build.py).

The site is built from a staging folder that site/build.py fills (README as the front page, the
executed lessons, the labs, one page per course_utils module). Everything a page needs is served from
the site itself: no theme, template, font or script is fetched from the internet, at build time or
when a page loads (MathJax 3 comes from the ``django-static-mathjax`` package; require.js, which
myst-nb would load from a CDN for widget outputs, is switched off).
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

ROOT = Path(os.environ.get("COURSE_SITE_ROOT", Path(__file__).resolve().parents[1]))
STAGING = Path(os.environ.get("COURSE_SITE_STAGING", ROOT / "build" / "site-src"))  # filled by build.py
sys.path.insert(0, str(ROOT / "src"))  # the checkout's course_utils, for the API pages

project = "Local LLM Lab"
author = "Local LLM Lab authors"
copyright = "Local LLM Lab authors; code Apache-2.0, text and data CC-BY-4.0"
REPOSITORY = "https://github.com/local-llm-lab/local-llm-lab"

extensions = ["myst_nb", "sphinx.ext.autodoc", "sphinx.ext.viewcode"]
exclude_patterns = ["_build", "**.ipynb_checkpoints", "**/src/**"]
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}

# Notebooks are shown as executed by `course run` (or with their stored outputs); never re-run here.
nb_execution_mode = "off"
nb_ipywidgets_js = {}  # no require.js / widget manager from a CDN (tqdm bars fall back to text)
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

# MathJax 3 from the staging folder's _static/mathjax (copied from django-static-mathjax by build.py).
mathjax_path = "mathjax/es5/tex-chtml.js"

autodoc_default_options = {"members": True, "member-order": "bysource"}
autodoc_typehints = "description"
autodoc_mock_imports: list[str] = []

html_theme = "sphinx_book_theme"
html_title = "Local LLM Lab"
html_favicon = str(Path(__file__).with_name("favicon.svg"))  # else the browser asks for /favicon.ico
html_static_path = [str(STAGING / "_static")]
html_last_updated_fmt = None
html_show_sourcelink = False
html_copy_source = True  # the download button offers the page's .ipynb / .md
html_theme_options = {
    "repository_url": REPOSITORY,
    "use_repository_button": False,  # links only, but keep the header quiet and self-contained
    "use_download_button": True,
    "use_fullscreen_button": False,
    "show_toc_level": 2,
    "home_page_in_toc": True,
    "navigation_with_keys": False,
}
html_context = {"default_mode": "light"}
suppress_warnings = ["misc.highlighting_failure"]  # IPython's `!command` lines in the Colab cell

# The API pages: each module documents what it defines (re-exports through __all__ would appear twice).
autodoc_default_options["ignore-module-all"] = True


_EMPHASIS = re.compile(r"(?<![\w*])(\*\*?)(?=[\w`])(.+?)(?<=[\w`.])\1(?![\w*])")


def _plain_text(text: str) -> str:
    """``|`` and a ``*`` that starts no *emphasis* are characters (escaped for reST)."""
    kept = [(m.start(), m.end()) for m in _EMPHASIS.finditer(text)]
    out = []
    for i, char in enumerate(text):
        inside = any(a <= i < b for a, b in kept)
        out.append("\\" + char if char == "|" or (char == "*" and not inside) else char)
    return "".join(out)


def _plain_bars(app, what, name, obj, options, lines: list[str]) -> None:
    """Docstrings here are written to read well as plain text: a Markdown table (lines starting with
    ``|``) is shown as a preformatted block, and any other ``|`` is a character, not a reST substitution."""
    out, table = [], []

    def flush() -> None:
        if table:
            out.extend(["", ".. code-block:: text", "", *("   " + row for row in table), ""])
            table.clear()

    literal_indent = None  # inside a doctest or a ``::`` literal block: left exactly as written
    for line in lines:
        indent = len(line) - len(line.lstrip())
        if literal_indent is not None:
            if not line.strip() and literal_indent < 0:
                literal_indent = None  # a doctest block ends at a blank line
            elif line.strip() and literal_indent >= 0 and indent <= literal_indent:
                literal_indent = None  # a literal block ends where the text is indented as before
            else:
                out.append(line)
                continue
        if line.lstrip().startswith(">>>"):
            literal_indent = -1
            out.append(line)
            continue
        if line.rstrip().endswith("::"):
            literal_indent = indent
            out.append(line)
            continue
        if line.lstrip().startswith("|") and line.rstrip().endswith("|"):
            table.append(line.strip())
            continue
        flush()
        bullet = indent + 2 if line.lstrip().startswith("* ") else 0  # a list item's marker stays
        parts = line[bullet:].replace("```", "\\`\\`\\`").split("``")
        out.append(line[:bullet] + "``".join(p if i % 2 else _plain_text(p) for i, p in enumerate(parts)))
    flush()
    lines[:] = out


def setup(app) -> None:
    app.connect("autodoc-process-docstring", _plain_bars)
