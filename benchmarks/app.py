"""How long does a user of the assistant app wait for the first token? (target: under 1 s)

Measured side by side in one run, same question, greedy, default model and threads:

* **backend**: ``backend.chat_stream`` called directly; time to the first text chunk;
* **handler**: the app's :meth:`ChatApp.respond` called directly (history, system prompt, context
  fitting); time to the first update that carries reply text;
* **browser**: the app served by Gradio on 127.0.0.1 and driven in headless Chromium by Playwright;
  time from the Enter key (stamped in the page) to the first reply text drawn in the chat (stamped by
  a MutationObserver in the page). This includes Gradio's queue, the event stream and rendering.

Each is repeated (alternating) and the median is reported, with the browser/backend ratio. Needs
Debian's Chromium (``apt-get install chromium``) and ``pip install playwright``; nothing is downloaded.

    .venv/bin/python benchmarks/app.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

QUESTION = "What is the capital of Germany?"
STAMP_FIRST_TOKEN = """() => {
  window.__sent = null; window.__first = null;
  const box = document.querySelector('#message textarea');
  box.addEventListener('keydown', e => { if (e.key === 'Enter') { window.__sent = performance.now(); window.__first = null; } }, true);
  const chat = document.querySelector('#chatbot');
  new MutationObserver(() => {
    if (window.__sent === null || window.__first !== null) return;
    const bots = chat.querySelectorAll('[data-testid="bot"]');
    const text = bots.length ? bots[bots.length - 1].innerText.trim() : '';
    if (text && text !== '…') window.__first = performance.now();
  }).observe(chat, {childList: true, subtree: true, characterData: true});
}"""


def backend_ttft(backend, messages) -> float:
    started = time.perf_counter()
    stream = backend.chat_stream(messages, max_tokens=16, temperature=0.0)
    try:
        for chunk in stream:
            if chunk.text:
                return time.perf_counter() - started
    finally:
        stream.close()
    raise RuntimeError("no token")


def handler_ttft(app) -> float:
    started = time.perf_counter()
    updates = app.respond(QUESTION, [], max_tokens=16)
    try:
        for history, _, _ in updates:
            if history and history[-1]["role"] == "assistant" and history[-1]["content"] not in ("", "…"):
                return time.perf_counter() - started
    finally:
        updates.close()
    raise RuntimeError("no token")


def browser_ttft(page) -> float:
    page.click("#clear")
    page.wait_for_function("document.querySelectorAll('#chatbot [data-testid=\"bot\"]').length === 0")
    box = page.locator("#message textarea")
    box.fill(QUESTION)
    box.press("Enter")
    page.wait_for_function("window.__first !== null", timeout=60_000)
    page.wait_for_function("document.querySelector('#status').innerText.includes('TTFT')", timeout=60_000)
    return page.evaluate("(window.__first - window.__sent) / 1000")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--backend", default="llamacpp")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    from course_utils import get_backend
    from course_utils.app import launch_app

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    backend = get_backend(args.backend)
    info = backend.info()
    messages = [{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": QUESTION}]
    results: dict[str, list[float]] = {"backend": [], "handler": [], "browser": []}
    with launch_app(backend, voice=False) as handle, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox", "--disable-dev-shm-usage"])
        page = browser.new_page()
        page.goto(handle.url)
        page.locator("#message textarea").wait_for()
        page.evaluate(STAMP_FIRST_TOKEN)
        backend_ttft(backend, messages)  # warm-up: first call pays one-off costs
        browser_ttft(page)
        for _ in range(args.repeats):
            results["backend"].append(backend_ttft(backend, messages))
            results["handler"].append(handler_ttft(handle.app))
            results["browser"].append(browser_ttft(page))
        browser.close()
    backend.close()

    base = statistics.median(results["backend"])
    print(f"TTFT for {QUESTION!r} — {info.model} on {info.name}, {info.details.get('threads', '?')} threads, "
          f"median of {args.repeats} (min–max)\n")
    print(f"{'path':<10}{'TTFT ms':>10}{'min':>8}{'max':>8}{'x backend':>11}")
    for name, values in results.items():
        med = statistics.median(values)
        print(f"{name:<10}{med * 1000:>10.0f}{min(values) * 1000:>8.0f}{max(values) * 1000:>8.0f}{med / base:>11.2f}")
    browser_ms = statistics.median(results["browser"]) * 1000
    print(f"\nbrowser overhead over the backend: {browser_ms - base * 1000:.0f} ms; target first token < 1000 ms in the "
          f"browser: {'met' if browser_ms < 1000 else 'NOT met'} ({browser_ms:.0f} ms)")


if __name__ == "__main__":
    from _table import with_machine

    raise SystemExit(with_machine(main))
