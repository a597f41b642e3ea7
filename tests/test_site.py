"""The course website (``make site``): built offline with Sphinx, then read in Debian's headless Chromium.

The site is built once per test session into a temporary folder (about a minute on 2 cores), served by
a local HTTP server on 127.0.0.1, and every page is loaded in the browser: no console error, no request
to anything but that server, every image there. Every internal link is resolved against the built files.
Screenshots of the front page and of a lesson page go to build/test-artifacts/.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
import shutil
import sys
import threading
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urljoin, urlparse

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "build" / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytest.importorskip("sphinx", reason="the site tools are not installed (pip install -e '.[site]')")
pytest.importorskip("myst_nb", reason="the site tools are not installed (pip install -e '.[site]')")


def _load_build_module():
    spec = importlib.util.spec_from_file_location("course_site_build", ROOT / "site" / "build.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


site_build = _load_build_module()
LESSONS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


# ----------------------------------------------------------------------------- fast unit tests
def test_remote_images_become_links_and_repo_files_go_to_github():
    text = ("# T\n[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/x.ipynb)\n"
            "![plot](https://example.org/p.png) [lab](../labs/00_setup_lab.ipynb) [data](../data/x.jsonl#top) [web](https://a.b/c) f(**kw)")
    out = site_build.rewrite_markdown(text, "notebooks", {"labs/00_setup_lab.ipynb"})
    assert "![" not in out  # no image is fetched from another server any more
    assert "[Open In Colab](https://colab.research.google.com/x.ipynb)" in out
    assert "[lab](../labs/00_setup_lab.ipynb)" in out
    assert f"[data]({site_build.REPOSITORY}/blob/main/data/x.jsonl#top)" in out
    assert "[web](https://a.b/c)" in out and "f(**kw)" in out


def _fake_course(tmp_path: Path, name: str, text: str) -> Path:
    nb = json.loads((ROOT / "notebooks" / name).read_text(encoding="utf-8"))
    nb["cells"].append({"cell_type": "code", "execution_count": 1, "id": "fakerun", "metadata": {}, "source": "print(1)",
                        "outputs": [{"output_type": "stream", "name": "stdout", "text": text}]})
    course = tmp_path / "course"
    course.mkdir(exist_ok=True)
    (course / name).write_text(json.dumps(nb), encoding="utf-8")
    return course


def test_lessons_come_from_build_course_when_run_else_stored_outputs(tmp_path):
    name = LESSONS[0].name
    course = _fake_course(tmp_path, name, "executed here\n")
    (course / LESSONS[1].name).write_text("{not json", encoding="utf-8")  # a broken run is not used
    pages = {p.dest: p for p in site_build.notebook_pages(ROOT, course)}
    assert pages[f"notebooks/{name}"].source == course / name and pages[f"notebooks/{name}"].executed
    assert pages[f"notebooks/{LESSONS[1].name}"].source == LESSONS[1] and not pages[f"notebooks/{LESSONS[1].name}"].executed
    assert [d for d in pages if d.startswith("notebooks/")] == [f"notebooks/{p.name}" for p in LESSONS]
    assert sum(d.startswith("labs/solutions/") for d in pages) == len(list((ROOT / "labs" / "solutions").glob("[0-9][0-9]_*.ipynb")))


# ----------------------------------------------------------------------------- the built site
@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(site folder, staging folder, marker text of the executed lesson) for a site built from a fake run."""
    work = tmp_path_factory.mktemp("site-work")
    marker = "output of this machine's run: 4242"
    course = _fake_course(work, LESSONS[0].name, marker + "\n")
    out = site_build.build_site(work / "site", course_dir=course, work=work)
    return out, work, marker


def _html_pages(site: Path) -> list[Path]:
    """The site's pages (the theme's template fragments under _static/ are not pages)."""
    return sorted(p for p in site.rglob("*.html") if p.relative_to(site).parts[0] not in ("_sources", "_static"))


def test_front_page_is_the_readme_with_every_lesson_in_order(built):
    site, _, _ = built
    index = (site / "index.html").read_text(encoding="utf-8")
    assert "Local LLM Lab" in index and "The lessons" in index
    positions = [index.find(f'href="notebooks/{p.stem}.html"') for p in LESSONS]
    assert all(pos >= 0 for pos in positions), "a lesson of the README's table has no link to its page"
    assert positions == sorted(positions), "lessons are not in course order"
    for caption in ("Lessons", "Labs", "Lab solutions", "Reference"):
        assert caption in index


def test_lessons_labs_outputs_and_plots_are_rendered(built):
    site, _, marker = built
    first = (site / "notebooks" / f"{LESSONS[0].stem}.html").read_text(encoding="utf-8")
    assert marker in first  # build/course's executed copy was used
    for folder in ("notebooks", "labs", "labs/solutions"):
        for nb in (ROOT / folder).glob("[0-9][0-9]_*.ipynb"):
            assert (site / folder / f"{nb.stem}.html").is_file(), f"{folder}/{nb.name} has no page"
    plots = sum(json.dumps(json.loads(p.read_text())).count('"image/png"') for p in LESSONS)
    images = [img for p in (site / "notebooks").glob("*.html") for img in re.findall(r'<img[^>]+src="([^"]+)"', p.read_text())]
    assert plots and len([i for i in images if "_images/" in i]) >= plots  # every stored plot is on a page
    for img in images:
        if not img.startswith(("http", "data:")):
            assert (site / "notebooks" / unquote(img)).resolve().is_file(), img


def test_one_api_page_per_module_from_its_docstring(built):
    site, work, _ = built
    import course_utils.serving as serving

    names = site_build.module_names()
    assert {"course_utils.serving", "course_utils.backends.base", "course_utils.checks.rag"} <= set(names)
    for name in names:
        assert (site / "api" / f"{name}.html").is_file(), name
    page = (site / "api" / "course_utils.serving.html").read_text(encoding="utf-8")
    assert serving.__doc__.split()[0] in page and "load_test" in page and "kv_cache_bytes_per_token" in page
    log = (work / "site-build.log").read_text(encoding="utf-8")
    assert "ERROR:" not in log, [line for line in log.splitlines() if "ERROR:" in line][:5]


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("href"):
            self.hrefs.append(attrs["href"])
        if tag in ("link", "script", "img") and (attrs.get("href") or attrs.get("src")):
            self.hrefs.append(attrs.get("href") or attrs.get("src"))


@functools.cache
def _parse(path: Path) -> _Links:
    parser = _Links()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def test_every_internal_link_resolves(built):
    site, _, _ = built
    broken = []
    pages = _html_pages(site)
    assert len(pages) > 2 * len(LESSONS)
    for page in pages:
        base = "http://site/" + page.relative_to(site).as_posix()
        for href in _parse(page).hrefs:
            url = urlparse(urljoin(base, href))
            if url.scheme in ("mailto", "data", "javascript") or (url.scheme.startswith("http") and url.netloc != "site"):
                continue
            target = site / unquote(url.path.lstrip("/"))
            if target.is_dir():
                target = target / "index.html"
            if not target.is_file():
                broken.append(f"{page.relative_to(site)} -> {href}")
            elif url.fragment and target.suffix == ".html" and url.fragment not in _parse(target).ids:
                broken.append(f"{page.relative_to(site)} -> {href} (no such anchor)")
    assert not broken, broken[:10]


# ----------------------------------------------------------------------------- in a real browser
@pytest.fixture(scope="module")
def served(built):
    site, _, _ = built
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield site, f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.mark.skipif(not Path(CHROMIUM).is_file(), reason="Chromium is not installed (apt-get install chromium)")
def test_every_page_loads_in_chromium_with_nothing_from_outside(served):
    playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    site, url = served
    problems, outside, failed = [], [], []
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(20_000)
            page.on("console", lambda m: problems.append(f"{page.url}: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(f"{page.url}: {e}"))
            page.on("request", lambda r: None if r.url.startswith((url, "data:", "blob:")) else outside.append(r.url))
            # a failed load: an error status, or a request that did not complete (not one cut off by the next page)
            page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
            page.on("requestfailed", lambda r: None if "ERR_ABORTED" in (r.failure or "") else failed.append(f"{r.failure} {r.url}"))
            for html in _html_pages(site):
                page.goto(url + html.relative_to(site).as_posix(), wait_until="load")
                missing = page.evaluate("[...document.images].filter(i => i.loading !== 'lazy' && !(i.complete && i.naturalWidth > 0)).map(i => i.src)")
                assert not missing, f"{html.relative_to(site)}: images not shown: {missing}"

            page.goto(url + "index.html")
            page.screenshot(path=str(ARTIFACTS / "site_front_page.png"))
            page.goto(url + "notebooks/04_local_serving.html", wait_until="load")
            page.wait_for_function("window.MathJax && MathJax.startup && MathJax.startup.promise")
            typeset = page.evaluate("MathJax.startup.promise.then(() => document.querySelectorAll('mjx-container').length)")
            assert typeset >= 1, "the KV-cache formula was not typeset by the site's own MathJax"
            page.screenshot(path=str(ARTIFACTS / "site_lesson_page.png"), full_page=False)

            page.goto(url + "search.html?q=tokenizer")  # Sphinx's own search index, loaded from the site
            page.wait_for_function("document.querySelectorAll('#search-results li').length > 0")
            hits = page.eval_on_selector_all("#search-results li a", "links => links.map(a => a.getAttribute('href'))")
            assert any("01_tokens" in h for h in hits), hits
        finally:
            browser.close()
    assert not outside, f"pages asked for something from another server: {sorted(set(outside))[:10]}"
    assert not failed, f"requests that failed: {sorted(set(failed))[:10]}"
    assert not problems, problems[:10]
    assert (ARTIFACTS / "site_front_page.png").stat().st_size > 10_000
    assert (ARTIFACTS / "site_lesson_page.png").stat().st_size > 10_000
