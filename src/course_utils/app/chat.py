"""The assistant app's logic, independent of any UI: streaming replies, documents mode, voice.

What it does, one method of :class:`ChatApp` each (all plain Python, so tests and notebooks call
them without a browser):

* :meth:`ChatApp.respond` streams a reply into the chat (system prompt, temperature, max tokens),
  with TTFT and TPOT shown under every reply; ``mode="documents"`` answers from your documents
  through :mod:`course_utils.rag` and lists the numbered sources;
* :meth:`ChatApp.respond_to_audio` turns a spoken question into text with the bundled Whisper
  (:mod:`course_utils.speech`) and answers it;
* bad input (an empty message, a paste longer than the context window, unreadable audio) gives a
  message in the UI; the app keeps running.

Apps layer. Taught in lesson 11.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import CourseError, DataError, InvalidOption

if TYPE_CHECKING:
    import os

    from ..backends.base import Backend
    from ..rag import Hit, Retriever
    from ..speech import Transcriber

DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."  # SmolLM2-135M answers well with it (longer ones confuse it)
MODES = ("chat", "documents")
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
            from ..speech import Transcriber

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
        from ..rag import cached_store, chunk_documents, load_documents

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
        from ..backends.base import GenerationOptions

        try:
            opts = GenerationOptions(max_tokens=int(max_tokens), temperature=float(temperature))
        except (TypeError, ValueError) as err:
            if isinstance(err, CourseError):
                raise
            raise InvalidOption(f"temperature and max tokens must be numbers ({err})", fix="use the sliders") from None
        return {"max_tokens": opts.max_tokens, "temperature": opts.temperature}

    def _fit(self, messages: list[dict[str, str]], max_tokens: int) -> tuple[list[dict[str, str]], int]:
        """Leave out the oldest turns when the conversation is longer than the context window."""
        from ..backends.base import LocalBackend

        if not isinstance(self.backend, LocalBackend):
            return messages, 0  # a server backend: it knows its own limit and says so
        from ..errors import ContextOverflow
        from ..prompting import fit_to_context

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
        from ..rag import build_messages, retrieve
        from ..text_safety import attribute_sentences, format_sources, parse_citations

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

    def build_ui(self) -> Any:
        """The Gradio Blocks for this app (see :func:`course_utils.app.ui.build_ui`)."""
        from .ui import build_ui

        return build_ui(self)
