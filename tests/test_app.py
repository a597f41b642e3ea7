"""The assistant app: streaming handlers, documents mode, voice, bad input, launch/close, `course app`."""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from course_utils.app import (
    SOURCE_CHARS,
    ChatApp,
    launch_app,
    message_text,
    model_messages,
    normalize_history,
)
from course_utils.errors import InvalidOption
from course_utils.rag import Hit
from course_utils.text_safety import format_sources

QUESTION = "What is the capital of Germany?"
DOCS = {
    "lab-handbook.md": "The Local LLM Lab meets in room 4.12 every Thursday at five o'clock. Bring a laptop and a charger.",
    "cats.md": "Cats sleep for about fifteen hours a day. A cat purrs when it is content, and sometimes when it is hurt.",
    "bread.md": "Sourdough bread rises because wild yeast and lactic acid bacteria ferment the dough for many hours.",
}
DOC_QUESTION = "Which room does the Local LLM Lab meet in?"


@pytest.fixture(scope="module")
def chat_app(llamacpp, tmp_path_factory):
    app = ChatApp(llamacpp, documents=DOCS, store_dir=tmp_path_factory.mktemp("app-store"))
    yield app
    app.close()


def assistant_texts(updates):
    return [h[-1]["content"] for h, _, _ in updates if h and h[-1]["role"] == "assistant"]


# ----------------------------------------------------------------------------- pure helpers
def test_history_in_gradio_shapes_is_normalised():
    gradio_style = [{"role": "user", "content": [{"type": "text", "text": "Hi"}], "metadata": None},
                    {"role": "assistant", "content": "Hello!\n\n**Sources**\n\n[1] `a.md`: x"},
                    {"role": "tool", "content": "ignored"}]
    history = normalize_history(gradio_style)
    assert history == [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!\n\n**Sources**\n\n[1] `a.md`: x"}]
    # the source list is for the reader; the model gets only the answer
    assert model_messages(history) == [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]
    assert message_text({"text": "x"}) == "x" and normalize_history(None) == []
    with pytest.raises(InvalidOption):
        normalize_history("not a list")


def test_format_sources_numbers_and_marks_cited():
    hits = [Hit("a#0", "Room 4.12, Thursdays.", "a.md", 0.9, 1), Hit("b#0", "Cats " * 100, "b.md", 0.2, 2)]
    text = format_sources(hits, SOURCE_CHARS, "markdown", cited=[1])  # the list under a documents-mode answer
    assert "**[1]** `a.md`: Room 4.12, Thursdays." in text and "\n[2] `b.md`: Cats" in text and text.endswith("…")


# ----------------------------------------------------------------------------- streaming chat
def test_reply_streams_and_matches_a_plain_call(chat_app, llamacpp):
    updates = list(chat_app.respond(QUESTION, [], max_tokens=32))
    texts = [t for t in assistant_texts(updates) if t != "…"]
    assert len(texts) >= 3  # several partial updates, not one final blob
    assert all(b.startswith(a) for a, b in zip(texts, texts[1:-1]))  # each update extends the last
    final_history, status, box = updates[-1]
    assert "Berlin" in final_history[-1]["content"] and box == ""
    assert final_history[-2] == {"role": "user", "content": QUESTION}
    assert re.search(r"TTFT \d+ ms · TPOT [\d.]+ ms", status)
    stats = chat_app.last
    assert stats.tokens >= 2 and stats.ttft_s > 0 and stats.tpot_s > 0 and stats.text == final_history[-1]["content"]
    # what the UI streamed is what a plain greedy call returns for the same messages
    plain = llamacpp.chat([{"role": "system", "content": chat_app.system_prompt}, {"role": "user", "content": QUESTION}], max_tokens=32)
    assert plain.text == stats.text


def test_system_prompt_and_history_reach_the_model(llamacpp):
    seen = []

    class Spy:
        def __getattr__(self, name):
            return getattr(llamacpp, name)

        def chat_stream(self, messages, **options):
            seen.append((messages, options))
            return llamacpp.chat_stream(messages, **options)

    app = ChatApp(Spy(), transcriber=False)
    history = [{"role": "user", "content": "My name is Ada."}, {"role": "assistant", "content": "Hello Ada!"}]
    list(app.respond("What is my name?", history, system_prompt="Be brief.", temperature=0.7, max_tokens=8))
    messages, options = seen[-1]
    assert [m["content"] for m in messages] == ["Be brief.", "My name is Ada.", "Hello Ada!", "What is my name?"]
    assert options == {"max_tokens": 8, "temperature": 0.7}


def test_long_conversations_drop_the_oldest_turns():
    from course_utils import get_backend

    with get_backend("llamacpp", n_ctx=512) as small:  # a small context keeps the test quick
        app = ChatApp(small, transcriber=False)
        filler = "word " * 150  # ~150 tokens per message: eight of them do not fit into 512 tokens
        history = [{"role": r, "content": f"{i} {filler}"} for i in range(4) for r in ("user", "assistant")]
        final_history, status, _ = list(app.respond("Say OK.", history, max_tokens=8))[-1]
        assert app.last.dropped_messages >= 4 and "left out to fit the context" in status
        assert app.last.tokens >= 1 and len(final_history) == len(history) + 2  # the UI keeps showing everything


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("message", ["", "   \n ", None])
def test_empty_message_is_a_message_not_a_crash(chat_app, message):
    history = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]
    updates = list(chat_app.respond(message, history))
    assert len(updates) == 1
    new_history, status, _ = updates[0]
    assert new_history == history and status.startswith("⚠️") and "empty" in status


def test_huge_paste_is_refused_and_the_app_keeps_working(chat_app):
    paste = "All work and no play makes Jack a dull boy. " * 400  # ~4,400 tokens, context is 2,048
    updates = list(chat_app.respond(paste, []))
    assert len(updates) == 1
    history, status, box = updates[0]
    assert history == [] and status.startswith("⚠️") and "context" in status and "Fix:" in status
    assert box == paste  # left in the box to be shortened
    # next message works
    assert "Berlin" in list(chat_app.respond(QUESTION, [], max_tokens=16))[-1][0][-1]["content"]


@pytest.mark.parametrize(("kwargs", "expected"), [
    ({"temperature": -1}, "temperature must be >= 0"),
    ({"max_tokens": 0}, "max_tokens must be >= 1"),
    ({"temperature": "hot"}, "must be numbers"),
    ({"mode": "poetry"}, "Unknown mode"),
])
def test_bad_settings_are_messages(chat_app, kwargs, expected):
    history, status, _ = list(chat_app.respond(QUESTION, [], **kwargs))[-1]
    assert history == [] and status.startswith("⚠️") and expected in status


# ----------------------------------------------------------------------------- documents mode
def test_documents_mode_answers_with_numbered_sources(chat_app):
    updates = list(chat_app.respond(DOC_QUESTION, [], mode="documents", max_tokens=48))
    answer = updates[-1][0][-1]["content"]
    assert "**Sources**" in answer and "`lab-handbook.md`" in answer
    sources = chat_app.last.sources
    assert sources[0].doc_id == "lab-handbook.md"  # retrieval put the right document first, as [1]
    assert re.search(r"\[1\]\*{0,2} `lab-handbook.md`: The Local LLM Lab meets in room 4.12", answer)
    assert chat_app.last.citations, "the model's citations, or ones added by similarity"
    assert "sources" in updates[-1][1]


def test_documents_mode_without_documents_says_how_to_fix(llamacpp):
    app = ChatApp(llamacpp, transcriber=False)
    history, status, box = list(app.respond(DOC_QUESTION, [], mode="documents"))[-1]
    assert history == [] and status.startswith("⚠️") and "--docs" in status and box == DOC_QUESTION


# ----------------------------------------------------------------------------- voice
def test_unreadable_or_missing_audio_is_a_message(chat_app, tmp_path):
    broken = tmp_path / "broken.wav"
    broken.write_bytes(os.urandom(4000))
    for audio, expected in [(str(broken), "could not read"), (None, "No audio"), (str(tmp_path / "gone.wav"), "no audio file")]:
        updates = list(chat_app.respond_to_audio(audio, []))
        assert len(updates) == 1 and updates[0][1].startswith("⚠️") and expected in updates[0][1], updates[0][1]
    assert "Berlin" in list(chat_app.respond(QUESTION, [], max_tokens=16))[-1][0][-1]["content"]


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed (apt-get install espeak-ng)")
def test_spoken_question_is_answered(chat_app, tmp_path):
    from course_utils.speech import speak

    wav = speak(QUESTION, tmp_path / "question.wav")
    history, status, _ = list(chat_app.respond_to_audio(str(wav), [], max_tokens=32))[-1]
    assert "germany" in history[-2]["content"].lower()  # the transcript became the user's message
    assert "Berlin" in history[-1]["content"] and status.startswith("🎤 heard")


# ----------------------------------------------------------------------------- launch and close
def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_launch_serves_on_loopback_and_close_frees_the_port(llamacpp, monkeypatch):
    from gradio_client import Client

    connected, looked_up = [], []
    real_connect, real_getaddrinfo = socket.socket.connect, socket.getaddrinfo

    def spy_connect(self, address):
        connected.append(address)
        return real_connect(self, address)

    def spy_getaddrinfo(host, *args, **kwargs):
        looked_up.append(host)
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", spy_connect)
    monkeypatch.setattr(socket, "getaddrinfo", spy_getaddrinfo)
    with launch_app(llamacpp, voice=False) as handle:
        assert os.environ["GRADIO_ANALYTICS_ENABLED"] == "False" and handle.demo.analytics_enabled is False
        port = handle.demo.server_port
        assert handle.url == f"http://127.0.0.1:{port}/" and handle.demo.share is False
        page = httpx.get(handle.url, timeout=30)
        assert page.status_code == 200 and "gradio" in page.text.lower()
        assert "fonts.googleapis.com" not in page.text
        client = Client(handle.url, verbose=False, download_files=False)
        history, status, _ = client.predict(QUESTION, [], "You are a helpful assistant.", 0.0, 32, "chat", api_name="/chat")
        assert "Berlin" in message_text(history[-1]["content"]) and "TTFT" in status
        _, status, _ = client.predict("", [], "You are a helpful assistant.", 0.0, 32, "chat", api_name="/chat")
        assert status.startswith("⚠️")
        assert _port_open(port)
    assert handle.closed and not _port_open(port)
    handle.close()  # twice is fine
    assert llamacpp.chat([{"role": "user", "content": "Hi"}], max_tokens=2).completion_tokens >= 1  # a given backend stays open
    outside = {a[0] for a in connected if isinstance(a, tuple)} | {h for h in looked_up if h}
    assert outside <= {"127.0.0.1", "localhost", "::1"}, f"the app tried to reach {outside}"


def test_launch_refuses_other_interfaces_and_bad_ports(llamacpp):
    with pytest.raises(InvalidOption, match="other machines"):
        launch_app(llamacpp, host="0.0.0.0", voice=False)
    with pytest.raises(InvalidOption, match="port"):
        launch_app(llamacpp, port=70000, voice=False)


class CourseApp:
    """`course app` in a child process, its output read by a thread (so the test never blocks on it)."""

    def __init__(self, docs: Path, ignore_sigint: bool = False):
        course = Path(sys.executable).with_name("course")
        env = {**os.environ, "COURSE_THREADS": os.environ.get("COURSE_THREADS", "1")}
        # A CI runner, or `cmd &` in a script, starts children with SIGINT ignored: the app must still stop.
        preexec = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if ignore_sigint else None
        self.proc = subprocess.Popen([str(course), "app", "--port", "0", "--no-voice", "--backend", "llamacpp", "--docs", str(docs)],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, preexec_fn=preexec)
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line)

    def wait_for(self, text: str, timeout: float = 120) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            self.seen.append(line)
            if text in line:
                return line
        raise AssertionError(f"{text!r} never printed:\n{''.join(self.seen)}")

    def url(self) -> tuple[str, int]:
        match = re.search(r"Running on (http://127\.0\.0\.1:(\d+)/)", self.wait_for("Running on"))
        return match.group(1), int(match.group(2))

    def interrupt_and_wait(self) -> str:
        """Ctrl-C, then the rest of the output. A hang fails here (the app itself gives up after 4.5 s)."""
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError("`course app` did not stop after Ctrl-C:\n" + "".join(self.seen)) from None
        time.sleep(0.2)  # let the reader thread drain the pipe
        while not self.lines.empty():
            self.seen.append(self.lines.get())
        return "".join(self.seen)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def app_docs(tmp_path):
    (tmp_path / "notes.md").write_text(DOCS["lab-handbook.md"])
    return tmp_path


def _assert_stopped_cleanly(app: CourseApp, output: str, port: int | None) -> None:
    assert app.proc.returncode == 0, output  # 124 would mean the app's own watchdog had to end it
    assert "Stopped" in output and "Traceback" not in output, output
    if port is not None:
        assert not _port_open(port)


@pytest.mark.parametrize("ignore_sigint", [False, True], ids=["plain", "started-with-SIGINT-ignored"])
def test_course_app_cli_starts_and_stops(app_docs, ignore_sigint):
    app = CourseApp(app_docs, ignore_sigint=ignore_sigint)
    try:
        url, port = app.url()
        assert httpx.get(url, timeout=30).status_code == 200
        _assert_stopped_cleanly(app, app.interrupt_and_wait(), port)
    finally:
        app.kill()


def test_course_app_stops_while_starting(app_docs):
    for _ in range(3):
        app = CourseApp(app_docs)
        try:
            app.wait_for("Starting the assistant")  # the model and the web server are loading now
            _assert_stopped_cleanly(app, app.interrupt_and_wait(), None)
        finally:
            app.kill()


def test_course_app_stops_before_and_during_a_reply(app_docs):
    from gradio_client import Client

    for _ in range(3):
        app = CourseApp(app_docs)
        try:  # before the first request
            _, port = app.url()
            _assert_stopped_cleanly(app, app.interrupt_and_wait(), port)
        finally:
            app.kill()
    for _ in range(3):
        app = CourseApp(app_docs)
        try:  # while a long reply is streaming
            url, port = app.url()
            client = Client(url, verbose=False, download_files=False)
            job = client.submit("Write a very long story about a dragon who learns to cook.", [], "You are a helpful assistant.",
                                0.0, 512, "chat", api_name="/chat")
            deadline = time.monotonic() + 60
            while not any("…" not in message_text(h[-1]["content"]) for h, _, _ in job.outputs() if h) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert not job.done(), "the reply finished before the test could interrupt it"
            _assert_stopped_cleanly(app, app.interrupt_and_wait(), port)
        finally:
            app.kill()
