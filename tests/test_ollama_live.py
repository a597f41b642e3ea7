"""Live tests against a real Ollama server: they run only when OLLAMA_HOST answers.

The stand-in (tests/ollama_standin.py) covers the protocol in CI, where no Ollama binary exists.
Set OLLAMA_HOST (default http://127.0.0.1:11434) and `ollama pull smollm2:135m` to run these.
"""

from __future__ import annotations

import os

import pytest

from course_utils.backends import get_backend
from course_utils.backends.ollama_backend import DEFAULT_MODEL
from course_utils.errors import CourseError

HOST = os.environ.get("OLLAMA_HOST", "http://127.0.0.1:11434")


def _live_reason() -> str | None:
    import httpx

    try:
        reply = httpx.get(f"{HOST}/api/version", timeout=1.0)
    except httpx.HTTPError as err:
        return f"no Ollama server answers at {HOST} ({type(err).__name__}); start `ollama serve` to run live tests"
    if "standin" in reply.text:
        return "OLLAMA_HOST points at the course's stand-in, not a real Ollama"
    return None


@pytest.fixture(scope="module")
def live():
    reason = _live_reason()
    if reason:
        pytest.skip(reason)
    try:
        backend = get_backend("ollama", host=HOST, model=os.environ.get("OLLAMA_MODEL", DEFAULT_MODEL))
    except CourseError as err:
        pytest.skip(str(err))
    yield backend
    backend.close()


def test_live_chat_and_stream_agree(live):
    messages = [{"role": "user", "content": "What is the capital of Germany?"}]
    whole = live.chat(messages, max_tokens=24, seed=1)
    streamed = "".join(c.text for c in live.chat_stream(messages, max_tokens=24, seed=1))
    assert whole.text == streamed and whole.text
    assert whole.prompt_tokens > 0 and whole.completion_tokens > 0
    assert whole.timings.ttft_s > 0


def test_live_max_tokens_and_info(live):
    result = live.complete("The history of the Roman Empire", max_tokens=5)
    assert result.completion_tokens <= 5
    assert live.info().model
