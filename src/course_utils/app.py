"""A local assistant app: a Gradio chat UI over any course backend, on this machine only.

What it does, one method of :class:`ChatApp` each (all plain Python, so tests and notebooks call
them without a browser):

* :meth:`ChatApp.respond` streams a reply into the chat (system prompt, temperature, max tokens),
  with TTFT and TPOT shown under every reply; ``mode="documents"`` answers from your documents
  through :mod:`course_utils.rag` and lists the numbered sources;
* :meth:`ChatApp.respond_to_audio` turns a spoken question into text with the bundled Whisper
  (:mod:`course_utils.speech`) and answers it;
* bad input (an empty message, a paste longer than the context window, unreadable audio) gives a
  message in the UI; the app keeps running.

:func:`launch_app` serves the UI on 127.0.0.1 (never on other interfaces, never through a Gradio
share link) and returns a handle that stops it::

    with launch_app("llamacpp") as app:        # a free port unless port= is given
        print(app.url)                          # open it in a browser, or use gradio_client
    # stopped here

From a terminal: ``course app`` (``--docs FOLDER`` for your own documents, ``--port 0`` for any free
port). Gradio's usage analytics are switched off and nothing is fetched from the internet: the fonts
and scripts come from the installed gradio package.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import CourseError, DataError, InvalidOption

if TYPE_CHECKING:
    from .backends.base import Backend
    from .rag import Hit, Retriever
    from .speech import Transcriber

DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."  # SmolLM2-135M answers well with it (longer ones confuse it)
MODES = ("chat", "documents")
LOOPBACK = ("127.0.0.1", "localhost", "::1")
SOURCES_HEADING = "**Sources**"  # everything from here on in an assistant message is for the reader, not the model
SOURCE_CHARS = 160  # each source is shortened to this many characters under an answer
DOC_PATTERNS = ("*.md", "*.txt")
History = list[dict[str, Any]]
Update = tuple[History, str, str]  # (chat history, status line, text left in the message box)


@dataclass(frozen=True)
class ReplyStats:
    """Measurements of one reply, as shown under it in the UI."""

    ttft_s: float  # message received -> first piece of text (includes retrieval in documents mode)
    tpot_s: float  # mean time per later token, from the backend's own timings
    tokens: int
    finish_reason: str
    text: str
    mode: str = "chat"
    sources: list[Hit] = field(default_factory=list)
    citations: list[int] = field(default_factory=list)  # source numbers cited by the model (or added, see rag.answer)
    dropped_messages: int = 0  # old messages left out so that the conversation fits the context

    def line(self) -> str:
        speed = f"{1 / self.tpot_s:.0f} tokens/s" if self.tpot_s > 0 else "one token"
        parts = [f"TTFT {self.ttft_s * 1000:.0f} ms", f"TPOT {self.tpot_s * 1000:.1f} ms ({speed})", f"{self.tokens} tokens"]
        if self.finish_reason == "length":
            parts.append("stopped at max tokens")
        if self.mode == "documents":
            parts.append(f"{len(self.sources)} sources")
        if self.dropped_messages:
            parts.append(f"{self.dropped_messages} oldest messages left out to fit the context")
        return " · ".join(parts)


def message_text(content: Any) -> str:
    """The text of a chat message's content, in any of the shapes Gradio uses.

    >>> message_text([{"type": "text", "text": "Hi"}, {"type": "text", "text": "there"}])
    'Hi\\nthere'
    """
    if isinstance(content, str):
        return content
    if isinstance(content, Mapping):
        return str(content.get("text") or content.get("content") or "")
    if isinstance(content, Sequence):
        return "\n".join(t for t in (message_text(c) for c in content) if t)
    return ""


def normalize_history(history: Any) -> History:
    """Chat history as ``[{"role": ..., "content": str}, ...]`` (Gradio sends content as a list of parts)."""
    if not history:
        return []
    if not isinstance(history, Sequence) or isinstance(history, str):
        raise InvalidOption(f"history must be a list of messages, got {type(history).__name__}", fix="pass [] for a new chat")
    clean = []
    for m in history:
        if isinstance(m, Mapping) and m.get("role") in ("user", "assistant", "system"):
            clean.append({"role": m["role"], "content": message_text(m.get("content"))})
    return clean


def model_messages(history: History) -> list[dict[str, str]]:
    """What the model reads of the history: no source lists (they are for the reader), no empty turns."""
    out = []
    for m in history:
        text = m["content"].split(SOURCES_HEADING)[0].strip() if m["role"] == "assistant" else m["content"]
        if text.strip():
            out.append({"role": m["role"], "content": text})
    return out


class ChatApp:
    """The app's logic, independent of the UI: each handler is a generator of UI updates.

    ``backend``: any backend from :func:`~course_utils.backends.get_backend`. ``documents``: a
    folder or file (``.md``/``.txt``), a ``{doc_id: text}`` dict, or a ready retriever (anything with
    ``search(query, k)``, e.g. a :class:`~course_utils.rag.VectorStore`); indexed on first use.
    ``transcriber``: a :class:`~course_utils.speech.Transcriber` (default: the bundled Whisper,
    loaded on first use; ``False`` turns voice input off).
    """

    def __init__(self, backend: Backend, documents: Any = None, transcriber: Transcriber | bool | None = None,
                 system_prompt: str = DEFAULT_SYSTEM_PROMPT, k: int = 3, store_dir: str | os.PathLike | None = None) -> None:
        self.backend = backend
        self.documents = documents
        self.system_prompt = system_prompt
        self.k = k
        self.store_dir = store_dir
        if transcriber is None or transcriber is True:
            from .speech import Transcriber

            transcriber = Transcriber()
        self.transcriber = transcriber or None
        self.last: ReplyStats | None = None
        self._retriever: Retriever | None = None
        self._owned_store: Any = None
        self._docs_lock = threading.Lock()
        self._model_lock = threading.Lock()  # one generation at a time: in-process models are not thread-safe
        self._stopping = threading.Event()  # set by cancel(): replies stop at their next token

    # ------------------------------------------------------------------ documents
    def describe_documents(self) -> str:
        if self.documents is None:
            return "no documents loaded (start with `course app --docs FOLDER`)"
        if hasattr(self.documents, "search"):
            return f"a ready retriever ({type(self.documents).__name__})"
        if isinstance(self.documents, Mapping):
            return f"{len(self.documents)} documents"
        return str(self.documents)

    def retriever(self) -> Retriever:
        """The documents' retriever, built (embedded and stored) on first use."""
        with self._docs_lock:
            if self._retriever is None:
                self._retriever = self._build_retriever()
            return self._retriever

    def _build_retriever(self) -> Retriever:
        from .rag import cached_store, chunk_documents, load_documents

        docs = self.documents
        if docs is None:
            raise DataError("no documents are loaded, so documents mode has nothing to search", fix="start the app with documents=... (or `course app --docs FOLDER`), or switch to chat mode")
        if hasattr(docs, "search"):
            return docs
        if not isinstance(docs, Mapping):
            path = Path(docs).expanduser()
            if path.is_dir():
                files = sorted({p for pattern in DOC_PATTERNS for p in path.rglob(pattern) if p.is_file()})
                if not files:
                    raise DataError(f"no .md or .txt files in {path}", fix="point --docs at a folder of Markdown or text files")
                docs = load_documents(files)
            else:
                docs = load_documents([path])
        chunks = chunk_documents(docs, "paragraphs", size=600)
        store, _ = cached_store(chunks, prefix="app", cache_dir=self.store_dir)
        self._owned_store = store
        return store

    # ------------------------------------------------------------------ chat
    def _options(self, temperature: Any, max_tokens: Any) -> dict[str, Any]:
        from .backends.base import GenerationOptions

        try:
            opts = GenerationOptions(max_tokens=int(max_tokens), temperature=float(temperature))
        except (TypeError, ValueError) as err:
            if isinstance(err, CourseError):
                raise
            raise InvalidOption(f"temperature and max tokens must be numbers ({err})", fix="use the sliders") from None
        return {"max_tokens": opts.max_tokens, "temperature": opts.temperature}

    def _fit(self, messages: list[dict[str, str]], max_tokens: int) -> tuple[list[dict[str, str]], int]:
        """Leave out the oldest turns when the conversation is longer than the context window."""
        from .backends.base import LocalBackend

        if not isinstance(self.backend, LocalBackend):
            return messages, 0  # a server backend: it knows its own limit and says so
        from .errors import ContextOverflow
        from .prompting import fit_to_context

        max_tokens = min(max_tokens, max(1, int(self.backend.n_ctx) // 4))  # a long reply must not crowd out the question
        try:
            fitted = fit_to_context(self.backend, messages, max_tokens)
        except ContextOverflow:
            n = self.backend.count_tokens(messages[-1]["content"])
            raise ContextOverflow(
                f"your message is {n:,} tokens long, more than the model can read at once ({self.backend.n_ctx:,} tokens of context)",
                fix="shorten it or paste only the part that matters (in documents mode, put long texts into the documents instead)",
            ) from None
        return fitted, len(messages) - len(fitted)

    def respond(self, message: Any, history: Any = None, system_prompt: str | None = None, temperature: Any = 0.0,
                max_tokens: Any = 128, mode: str = "chat") -> Iterator[Update]:
        """Stream the reply to ``message``: yields ``(history, status, message box)`` as text arrives.

        Problems (empty message, too long, a backend error) are yielded as a status line starting
        with "⚠️" and the history unchanged; nothing is raised, so the app keeps running.
        """
        started = time.perf_counter()
        history = normalize_history(history)
        text = message if isinstance(message, str) else ""
        if not text.strip():
            yield history, "⚠️ Type a message first: the message box is empty.", ""
            return
        if mode not in MODES:
            yield history, f"⚠️ Unknown mode {mode!r}: use one of {', '.join(MODES)}.", text
            return
        if self._stopping.is_set():
            yield history, "⚠️ The app is shutting down.", text
            return
        if not self._model_lock.acquire(timeout=120):
            yield history, "⚠️ The model is busy with another reply; try again in a moment.", text
            return
        try:
            yield from self._respond(text, history, system_prompt, temperature, max_tokens, mode, started)
        finally:
            self._model_lock.release()

    def _respond(self, text: str, history: History, system_prompt: str | None, temperature: Any, max_tokens: Any,
                 mode: str, started: float) -> Iterator[Update]:
        from .rag import build_messages, retrieve
        from .text_safety import attribute_sentences, format_sources, parse_citations

        hits: list[Hit] = []
        dropped = 0
        try:
            options = self._options(temperature, max_tokens)
            if mode == "documents":
                retriever = self.retriever()
                hits = retrieve(retriever, text, self.k)
                messages = build_messages(text, hits)
            else:
                system = (system_prompt if system_prompt is not None else self.system_prompt).strip()
                messages = ([{"role": "system", "content": system}] if system else [])
                messages += model_messages(history) + [{"role": "user", "content": text}]
                messages, dropped = self._fit(messages, options["max_tokens"])
            stream = self.backend.chat_stream(messages, **options)
        except CourseError as err:  # keep the text in the box so the user can fix it
            yield history, f"⚠️ {err}", text
            return
        shown = [*history, {"role": "user", "content": text}]
        yield [*shown, {"role": "assistant", "content": "…"}], "generating…", ""
        reply, first, result = "", None, None
        try:
            for chunk in stream:
                if self._stopping.is_set():  # shutting down: end the generation now, not at max_tokens
                    stream.close()
                    yield [*shown, {"role": "assistant", "content": reply}], "⚠️ stopped: the app is shutting down", ""
                    return
                if chunk.done:
                    result = chunk.result
                    break
                if chunk.text:
                    first = first if first is not None else time.perf_counter()
                    reply += chunk.text
                    yield [*shown, {"role": "assistant", "content": reply}], "generating…", ""
        except CourseError as err:
            yield [*shown, {"role": "assistant", "content": reply}], f"⚠️ the backend stopped: {err}", ""
            return
        cited: list[int] = []
        display = reply
        if mode == "documents":
            cited, _ = parse_citations(reply, len(hits))
            if not cited and hits:  # a small model often forgets to cite: add citations by similarity, say so
                embedder = getattr(self._retriever, "embedder", None)
                display, cited = attribute_sentences(reply, hits, embedder)
                if cited:
                    display += "\n\n*(citations added by similarity: the model cited nothing)*"
            display = (display.strip() or "(no answer)") + f"\n\n{SOURCES_HEADING}\n\n" + format_sources(hits, SOURCE_CHARS, "markdown", cited)
        now = time.perf_counter()
        timings = result.timings if result is not None else None
        self.last = ReplyStats(
            ttft_s=(first if first is not None else now) - started,
            tpot_s=timings.tpot_s if timings is not None else 0.0,
            tokens=result.completion_tokens if result is not None else 0,
            finish_reason=result.finish_reason if result is not None else "stop",
            text=reply, mode=mode, sources=hits, citations=cited, dropped_messages=dropped,
        )
        yield [*shown, {"role": "assistant", "content": display}], self.last.line(), ""

    def respond_to_audio(self, audio: Any, history: Any = None, system_prompt: str | None = None, temperature: Any = 0.0,
                         max_tokens: Any = 128, mode: str = "chat") -> Iterator[Update]:
        """Transcribe a spoken question (a file path or ``(rate, samples)``), then answer it like :meth:`respond`."""
        history = normalize_history(history)
        if self.transcriber is None:
            yield history, "⚠️ Voice input is off in this app.", ""
            return
        if audio is None or (isinstance(audio, str) and not audio):
            yield history, "⚠️ No audio: record or upload a clip first.", ""
            return
        try:
            heard = self.transcriber.transcribe(audio)
        except CourseError as err:
            yield history, f"⚠️ {err}", ""
            return
        if not heard.text.strip():
            yield history, "⚠️ I heard no words in that clip: speak closer to the microphone, or type.", ""
            return
        prefix = f"🎤 heard in {heard.seconds:.1f} s"
        for new_history, status, box in self.respond(heard.text, history, system_prompt, temperature, max_tokens, mode):
            yield new_history, f"{prefix} · {status}", box

    def cancel(self) -> None:
        """Stop every reply at its next token and refuse new ones (the app is shutting down)."""
        self._stopping.set()

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait until no reply is using the model; False if one still is after ``timeout_s``."""
        if not self._model_lock.acquire(timeout=timeout_s):
            return False
        self._model_lock.release()
        return True

    def close(self) -> None:
        if self._owned_store is not None:
            self._owned_store.close()
            self._owned_store = None
            self._retriever = None

    # ------------------------------------------------------------------ the UI
    def build_ui(self) -> Any:
        """The Gradio Blocks: chat, message box, settings, voice input. API names: ``/chat``, ``/voice``."""
        gr = import_gradio()
        info = self.backend.info()
        with gr.Blocks(title="Local LLM Lab · assistant", analytics_enabled=False) as demo:
            gr.Markdown(f"### Local assistant · `{info.model}` on {info.name} ({info.device})")
            with gr.Row():
                with gr.Column(scale=3):
                    chatbot = gr.Chatbot(elem_id="chatbot", label="Chat", height=380, buttons=["copy"])
                    with gr.Row():
                        box = gr.Textbox(elem_id="message", placeholder="Ask something, then press Enter", show_label=False, scale=5)
                        send = gr.Button("Send", elem_id="send", variant="primary", scale=1, min_width=80)
                    status = gr.Markdown("ready", elem_id="status")
                    audio = gr.Audio(sources=["microphone", "upload"], type="filepath", label="Ask by voice",
                                     elem_id="voice", visible=self.transcriber is not None)
                with gr.Column(scale=2):
                    mode = gr.Radio(list(MODES), value="chat", label="Mode", elem_id="mode",
                                    info=f"documents: answers from {self.describe_documents()}, with numbered sources")
                    system = gr.Textbox(self.system_prompt, label="System prompt (chat mode)", lines=3, elem_id="system")
                    temperature = gr.Slider(0.0, 1.5, value=0.0, step=0.05, label="Temperature (0 = greedy)", elem_id="temperature")
                    max_tokens = gr.Slider(16, 512, value=128, step=16, label="Max tokens", elem_id="max-tokens")
                    clear = gr.Button("Clear chat", elem_id="clear")
            settings = [system, temperature, max_tokens, mode]
            outputs = [chatbot, status, box]
            # one queue for everything that runs the model ("model"): requests wait their turn
            box.submit(self.respond, [box, chatbot, *settings], outputs, api_name="chat", concurrency_id="model", concurrency_limit=1)
            send.click(self.respond, [box, chatbot, *settings], outputs, api_name=False, concurrency_id="model", concurrency_limit=1)
            for event in (audio.stop_recording, audio.upload):
                event(self.respond_to_audio, [audio, chatbot, *settings], outputs, api_name="voice" if event == audio.upload else False,
                      concurrency_id="model", concurrency_limit=1)
            clear.click(lambda: ([], "ready", ""), None, outputs, api_name=False)
        return demo


def import_gradio() -> Any:
    """Import gradio with its usage analytics off (the setting is read at import and at launch)."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import gradio as gr
    except ImportError:
        from .errors import BackendUnavailable

        raise BackendUnavailable("gradio is not installed", fix="pip install gradio") from None
    return gr


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class AppHandle:
    """A running app: ``url``, the :class:`ChatApp` (``app``), and :meth:`close` (also on leaving ``with``)."""

    def __init__(self, demo: Any, app: ChatApp, url: str, owns_backend: bool) -> None:
        self.demo, self.app, self.url, self._owns_backend = demo, app, url, owns_backend
        self.closed = False

    def close(self, timeout_s: float = 2.0) -> None:
        """Stop the server and free the port (and the model, if :func:`launch_app` loaded it). Safe twice.

        In this order: replies in flight stop at their next token and we wait (at most ``timeout_s``)
        until none uses the model; the web server stops, waiting at most a second for open
        connections (uvicorn would otherwise wait for every one of them); then the model is freed,
        but only if no reply uses it any more (freeing a llama.cpp model under a running generation
        crashes the process).
        """
        if self.closed:
            return
        self.closed = True
        self.app.cancel()
        idle = self.app.wait_idle(timeout_s)  # the stopped reply's last update reaches its browser tab
        server = getattr(self.demo, "server", None)
        if server is not None:
            server.config.timeout_graceful_shutdown = 1
        # connections still open after that second are cut on purpose: not an error worth a traceback
        logging.getLogger("uvicorn.error").setLevel(logging.CRITICAL)
        self.demo.close(verbose=False)
        self.app.close()
        if self._owns_backend and idle:
            self.app.backend.close()

    def __enter__(self) -> AppHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<AppHandle {self.url} {'closed' if self.closed else 'running'}>"


def launch_app(backend: Backend | str = "auto", *, model: str | None = None, documents: Any = None, voice: bool = True,
               port: int = 0, host: str = "127.0.0.1", system_prompt: str = DEFAULT_SYSTEM_PROMPT,
               store_dir: str | os.PathLike | None = None, transcriber: Transcriber | None = None) -> AppHandle:
    """Start the app in a background thread and return its handle (``.url``, ``.close()``).

    ``backend``: a backend object (left open on close) or a name for :func:`get_backend` (closed with
    the app). ``port=0`` picks a free port. ``host`` must be a loopback address: the app has no login,
    so it must not be reachable from other machines.
    """
    if host not in LOOPBACK:
        raise InvalidOption(f"host={host!r} would expose the app to other machines", fix="use host='127.0.0.1' (the app has no login)")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port < 65536:
        raise InvalidOption(f"port must be a whole number from 0 to 65535, got {port!r}", fix="use port=0 for any free port, or e.g. 7860")
    gr = import_gradio()
    owns = isinstance(backend, str)
    if owns:
        from .backends import get_backend

        backend = get_backend(backend, model=model)
    demo = None
    try:
        app = ChatApp(backend, documents=documents, transcriber=(transcriber or True) if voice else False,
                      system_prompt=system_prompt, store_dir=store_dir)
        demo = app.build_ui()
        demo.queue(default_concurrency_limit=1)
        bind = host if host != "localhost" else "127.0.0.1"
        try:
            demo.launch(server_name=bind, server_port=port or free_port(bind), share=False, inbrowser=False,
                        prevent_thread_lock=True, quiet=True, show_error=True, inline=False, ssr_mode=False,
                        mcp_server=False, pwa=False, enable_monitoring=False, footer_links=["api"],
                        theme=gr.themes.Default())
        except OSError as err:
            raise InvalidOption(f"cannot listen on {bind}:{port} ({err})", fix="use another --port, or --port 0 for any free port") from None
    except BaseException:  # an error, or Ctrl-C while starting: leave nothing running
        if demo is not None:
            demo.close(verbose=False)
        if owns:
            backend.close()
        raise
    url = f"http://{bind if ':' not in bind else f'[{bind}]'}:{demo.server_port}/"
    return AppHandle(demo, app, url, owns)


class ShutdownSignals:
    """Ctrl-C and SIGTERM for a server process, installed explicitly.

    Python's own SIGINT handler is not enough: a process started with SIGINT ignored (what a CI
    runner, or ``cmd &`` in a script, does to its children) would never notice Ctrl-C. The first
    signal sets :attr:`requested`; while the server is still starting (``serving`` is False) it
    also raises KeyboardInterrupt, so loading stops at once. A second signal ends the process.
    """

    def __init__(self) -> None:
        self.requested = threading.Event()
        self.serving = False
        self._previous: dict[int, Any] = {}

    def install(self) -> ShutdownSignals:
        if threading.current_thread() is threading.main_thread():  # Python allows handlers only there
            self._previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self.requested.is_set():
            os._exit(128 + signum)  # a second Ctrl-C: the user means it
        self.requested.set()
        if not self.serving:
            raise KeyboardInterrupt

    def __enter__(self) -> ShutdownSignals:
        return self.install()

    def __exit__(self, *exc: object) -> None:
        self.restore()


def serve_forever(handle: AppHandle, poll_s: float = 0.2, grace_s: float = 4.5, signals: ShutdownSignals | None = None) -> None:
    """Block until Ctrl-C or SIGTERM, then close the app (at most ``grace_s`` seconds, then the
    process exits): what ``course app`` runs. Pass ``signals`` when the caller installed them earlier."""
    with contextlib.ExitStack() as stack:
        if signals is None:
            signals = stack.enter_context(ShutdownSignals())
        signals.serving = True
        try:
            while not handle.closed and not signals.requested.wait(poll_s):
                pass
        finally:
            with exit_if_slower_than(grace_s):
                handle.close()


def exit_watchdog(seconds: float) -> threading.Timer:
    """End the process (exit status 124, with a message) unless it is gone within ``seconds``.

    A daemon timer: it keeps running while the interpreter waits for other threads at exit, so it
    also guards that last step. Cancel it if the process is meant to go on.
    """
    def give_up() -> None:
        print(f"shutdown took longer than {seconds:.1f} s: exiting now", flush=True)
        os._exit(124)

    timer = threading.Timer(seconds, give_up)
    timer.daemon = True
    timer.start()
    return timer


@contextlib.contextmanager
def exit_if_slower_than(seconds: float) -> Iterator[None]:
    """Run the block under :func:`exit_watchdog`."""
    timer = exit_watchdog(seconds)
    try:
        yield
    finally:
        timer.cancel()
