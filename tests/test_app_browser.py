"""The assistant app in a real browser: Debian's Chromium, headless, driven by Playwright.

Playwright's own browser download is never used (it cannot work offline): we launch the system
Chromium (``apt-get install chromium``). A screenshot is saved to build/test-artifacts/.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).is_file(), reason="Chromium is not installed (apt-get install chromium)")
playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")

ARTIFACTS = Path(__file__).resolve().parents[1] / "build" / "test-artifacts"
DOCS = {
    "lab-handbook.md": "The Local LLM Lab meets in room 4.12 every Thursday at five o'clock. Bring a laptop and a charger.",
    "cats.md": "Cats sleep for about fifteen hours a day. A cat purrs when it is content, and sometimes when it is hurt.",
}

# Records every text the last bot message shows, as it changes: proof that the answer streamed in.
WATCH_STREAM = """() => {
  window.__seen = [];
  const chat = document.querySelector('#chatbot');
  new MutationObserver(() => {
    const bots = chat.querySelectorAll('[data-testid="bot"]');
    if (!bots.length) return;
    const text = bots[bots.length - 1].innerText.trim();
    if (window.__seen[window.__seen.length - 1] !== text) window.__seen.push(text);
  }).observe(chat, {childList: true, subtree: true, characterData: true});
}"""
LAST_BOT = "() => { const b = document.querySelectorAll('#chatbot [data-testid=\"bot\"]'); return b.length ? b[b.length - 1].innerText : ''; }"


@pytest.fixture(scope="module")
def running_app(llamacpp, tmp_path_factory):
    from course_utils.app import launch_app

    with launch_app(llamacpp, documents=DOCS, voice=True, store_dir=tmp_path_factory.mktemp("browser-store")) as handle:
        handle.app.retriever()  # index the documents now, not during the first documents question
        yield handle


def test_chat_in_the_browser(running_app):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    outside = []
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(30_000)
            page.on("request", lambda r: None if r.url.startswith(running_app.url) or r.url.startswith(("data:", "blob:")) else outside.append(r.url))
            page.goto(running_app.url)
            box = page.locator("#message textarea")
            box.wait_for()

            # 1. an empty message: a hint in the status line, nothing sent to the model
            page.click("#send")
            page.wait_for_function("document.querySelector('#status').innerText.includes('Type a message first')")
            assert page.locator('#chatbot [data-testid="bot"]').count() == 0

            # 2. a question: the answer streams in, then the timings appear
            page.evaluate(WATCH_STREAM)
            box.fill("What is the capital of Germany?")
            box.press("Enter")
            page.wait_for_function(f"({LAST_BOT})().includes('Berlin')")
            page.wait_for_function("document.querySelector('#status').innerText.includes('TTFT')")
            final = page.evaluate(LAST_BOT).strip()
            seen = page.evaluate("window.__seen")
            partial = [t for t in seen if t and t != "…" and t != final and final.startswith(t)]
            assert partial, f"no partial answer was shown before the final one: {seen}"
            assert "TPOT" in page.inner_text("#status")

            # 3. documents mode: numbered sources under the answer
            page.get_by_label("documents").check()
            box.fill("Which room does the Local LLM Lab meet in?")
            box.press("Enter")
            page.wait_for_function(f"({LAST_BOT})().includes('Sources')", timeout=45_000)
            answer = page.evaluate(LAST_BOT)
            assert "[1]" in answer and "lab-handbook.md" in answer and "room 4.12" in answer
            page.screenshot(path=str(ARTIFACTS / "app_browser.png"), full_page=True)
        finally:
            browser.close()
    assert (ARTIFACTS / "app_browser.png").stat().st_size > 10_000
    assert not outside, f"the page tried to fetch from outside this machine: {outside}"


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed (apt-get install espeak-ng)")
def test_voice_question_in_the_browser(running_app, tmp_path):
    from course_utils.speech import speak

    wav = speak("What is the capital of Germany?", tmp_path / "question.wav")
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(30_000)
            page.goto(running_app.url)
            page.locator("#message textarea").wait_for()
            page.locator('#voice button[aria-label="Upload file"]').click()  # the microphone is the default source
            page.locator("#voice input[type=file]").set_input_files(str(wav))
            page.wait_for_function("document.querySelector('#status').innerText.includes('TTFT')", timeout=45_000)
            assert page.inner_text("#status").startswith("🎤 heard")
            user = page.locator('#chatbot [data-testid="user"]').last.inner_text()
            assert "germany" in user.lower()  # the transcript became the question
            assert "Berlin" in page.evaluate(LAST_BOT)
            page.screenshot(path=str(ARTIFACTS / "app_browser_voice.png"), full_page=True)
        finally:
            browser.close()
