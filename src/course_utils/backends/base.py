"""The one interface every backend offers, and the stream relay all of them share.

A backend turns messages (chat) or text (completion) into generated text, streamed or not::

    result = backend.chat([{"role": "user", "content": "Name a prime."}], max_tokens=32)
    result.text, result.prompt_tokens, result.completion_tokens, result.timings.ttft_s

:class:`Backend` checks the input once (options, messages, prompt: see :mod:`.options`) and hands it to
the backend's own ``_stream_chat`` / ``_stream_completion``. Every stream, whether its pieces are
token ids decoded here or text sent by a server, goes through one :class:`StreamRelay`: it cuts at
stop strings, stamps each token's arrival and ends with a final chunk that carries the whole
:class:`GenerationResult`. Non-streamed calls collect that stream, so both always give the same text
and the same measurements.

:class:`LocalBackend` is the base of the in-process backends (llama.cpp, transformers, GPT4All): it
builds the prompt ids itself (template markers as special tokens, message contents as plain text, see
:mod:`.chat_template`) and runs the shared generation loop over the backend's ``generate_ids``.

Backends layer: imports only the core (errors, timing). Taught in lesson 00 (chat, streams, TTFT/TPOT),
lesson 03 (the raw token loop) and lesson 04 (one interface over every engine).
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import ContextOverflow, InvalidOption
from ..timing import StreamTimer, Timings
from .chat_template import chat_pieces, render_chat_template
from .options import GenerationOptions, Message, check_messages, check_prompt

__all__ = [
    "Backend", "BackendInfo", "GenerationOptions", "GenerationResult", "IncrementalDecoder", "LocalBackend", "Message",
    "StopMatcher", "StreamChunk", "StreamRelay", "check_messages", "check_prompt", "collect", "render_chat_template",
]


# ----------------------------------------------------------------------------- results
@dataclass(frozen=True)
class GenerationResult:
    """A finished generation: the text, token counts, why it stopped, and its timings."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop" (end-of-turn token or a stop string) or "length" (max_tokens)
    timings: Timings
    backend: str = ""
    model: str = ""


@dataclass(frozen=True)
class StreamChunk:
    """One piece of a backend's stream. The last chunk has ``done=True`` and carries the whole result."""

    text: str
    done: bool = False
    result: GenerationResult | None = None


@dataclass(frozen=True)
class BackendInfo:
    name: str
    model: str
    context_length: int
    device: str
    quantization: str
    details: dict[str, Any] = field(default_factory=dict)


def collect(stream: Iterable[StreamChunk]) -> GenerationResult:
    """Consume a stream and return its final result."""
    for chunk in stream:
        if chunk.done and chunk.result is not None:
            return chunk.result
    raise RuntimeError("stream ended without a final chunk")


# ----------------------------------------------------------------------------- the interface
class Backend(ABC):
    """What every backend offers. Subclasses implement ``_stream_chat`` and ``_stream_completion``."""

    name: str = "backend"
    model_name: str = ""
    supports_json_schema: bool = False
    supports_seeded_sampling: bool = True  # temperature > 0 with a seed repeats the same sample

    def chat_stream(self, messages: Sequence[Message], **options: Any) -> Iterator[StreamChunk]:
        """Stream the assistant's reply to ``messages`` (options: see :class:`GenerationOptions`).

        Bad options or messages raise here, at the call, not at the first chunk.
        """
        opts = self._checked_options(options)
        timer = StreamTimer()  # TTFT counts from here: templating and tokenizing are part of the wait
        return self._stream_chat(check_messages(messages), opts, timer)

    def complete_stream(self, prompt: str, **options: Any) -> Iterator[StreamChunk]:
        """Stream a raw continuation of ``prompt`` (no chat template)."""
        opts = self._checked_options(options)
        timer = StreamTimer()
        return self._stream_completion(check_prompt(prompt), opts, timer)

    def chat(self, messages: Sequence[Message], **options: Any) -> GenerationResult:
        return collect(self.chat_stream(messages, **options))

    def complete(self, prompt: str, **options: Any) -> GenerationResult:
        return collect(self.complete_stream(prompt, **options))

    def _checked_options(self, options: dict[str, Any]) -> GenerationOptions:
        opts = GenerationOptions.from_kwargs(**options)
        if opts.json_schema is not None and not self.supports_json_schema:
            raise InvalidOption(f"the {self.name} backend cannot constrain output to a JSON schema",
                                fix="use backend='llamacpp' or 'transformers' (grammar-constrained decoding), or drop json_schema=")
        return opts

    @abstractmethod
    def _stream_chat(self, messages: list[dict[str, str]], opts: GenerationOptions, timer: StreamTimer) -> Iterator[StreamChunk]:
        """Start the chat request (raise now if it cannot start) and return its stream."""

    @abstractmethod
    def _stream_completion(self, prompt: str, opts: GenerationOptions, timer: StreamTimer) -> Iterator[StreamChunk]:
        """Start the completion request (raise now if it cannot start) and return its stream."""

    @abstractmethod
    def count_tokens(self, text: str) -> int:
        """Number of tokens the model sees for ``text`` (no special tokens added)."""

    @abstractmethod
    def info(self) -> BackendInfo:
        """Name, model, context length, device and quantization."""

    def close(self) -> None:
        """Free the model and any process or connection (safe to call twice)."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


# ----------------------------------------------------------------------------- the stream relay
class StopMatcher:
    """Cut streamed text at the first stop string, never emitting part of a stop string.

    >>> m = StopMatcher(["\\n\\n"])
    >>> m.feed("Hello\\n"), m.feed("\\nWorld"), m.stopped
    ('Hello', '', True)
    """

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = tuple(stops)
        self.pending = ""
        self.stopped = False

    def feed(self, text: str) -> str:
        """Add text; return what is safe to emit now."""
        if self.stopped:
            return ""
        self.pending += text
        if not self.stops:
            out, self.pending = self.pending, ""
            return out
        hits = [i for i in (self.pending.find(s) for s in self.stops) if i >= 0]
        if hits:
            self.stopped = True
            out, self.pending = self.pending[: min(hits)], ""
            return out
        hold = max((k for s in self.stops for k in range(1, len(s)) if self.pending.endswith(s[:k])), default=0)
        out, self.pending = self.pending[: len(self.pending) - hold], self.pending[len(self.pending) - hold :]
        return out

    def flush(self) -> str:
        out, self.pending = ("" if self.stopped else self.pending), ""
        return out


class IncrementalDecoder:
    """Turn token ids into text one token at a time.

    Decoding a single token can give half a UTF-8 character (an emoji spans several byte tokens), so
    we decode a short window and emit only text that is complete (no trailing U+FFFD).
    """

    def __init__(self, decode: Callable[[list[int]], str]) -> None:
        self.decode = decode
        self.ids: list[int] = []
        self.prefix = 0  # window start
        self.read = 0  # ids already emitted

    def add(self, token_id: int) -> str:
        self.ids.append(token_id)
        before = self.decode(self.ids[self.prefix : self.read])
        after = self.decode(self.ids[self.prefix :])
        if len(after) > len(before) and not after.endswith("\ufffd"):
            self.prefix, self.read = self.read, len(self.ids)
            return after[len(before) :]
        return ""

    def flush(self) -> str:
        before = self.decode(self.ids[self.prefix : self.read])
        after = self.decode(self.ids[self.prefix :])
        self.prefix = self.read = len(self.ids)
        return after[len(before) :]


class StreamRelay:
    """What every stream loop shares: stop strings, the pieces of text, and the final result chunk.

    A loop calls ``yield from relay.token(text)`` for each token (for a server: each streamed piece)
    and ends with ``yield from relay.finish(...)``. The relay stamps the token's arrival for TTFT/TPOT,
    holds back text that might be the start of a stop string, and knows the whole text at the end.

    >>> relay = StreamRelay("demo", "model", GenerationOptions(stop=("\\n",)), StreamTimer())
    >>> [c.text for c in relay.token("Hello")] + [c.text for c in relay.token(" world\\nmore")], relay.stopped
    (['Hello', ' world'], True)
    >>> final = list(relay.finish("length", prompt_tokens=3))[-1]
    >>> final.result.text, final.result.finish_reason, final.result.completion_tokens
    ('Hello world', 'stop', 2)
    """

    def __init__(self, backend: str, model: str, opts: GenerationOptions, timer: StreamTimer) -> None:
        self.backend, self.model, self.timer = backend, model, timer
        self.stopper = StopMatcher(opts.stop)
        self.pieces: list[str] = []

    @property
    def stopped(self) -> bool:
        """A stop string was seen: nothing more will be emitted."""
        return self.stopper.stopped

    @property
    def count(self) -> int:
        """Tokens stamped so far."""
        return self.timer.count

    def token(self, text: str) -> Iterator[StreamChunk]:
        """One token arrived carrying ``text`` (possibly "" for half a character): emit what is safe."""
        self.timer.token()
        yield from self._emit(self.stopper.feed(text))

    def finish(self, reason: str, prompt_tokens: int, completion_tokens: int | None = None, tail: str = "") -> Iterator[StreamChunk]:
        """The last text (``tail``: text held back by a decoder), then the final chunk with the result.

        ``reason`` is "stop" or "length" as the source saw it; a stop string always makes it "stop".
        ``completion_tokens`` overrides the stamped count when the source knows better (a server's usage).
        """
        yield from self._emit(self.stopper.feed(tail) + self.stopper.flush())
        count = self.timer.count if completion_tokens is None else completion_tokens
        timings = replace(self.timer.finish(prompt_tokens=prompt_tokens), completion_tokens=count)
        yield StreamChunk("", done=True, result=GenerationResult(
            text="".join(self.pieces), prompt_tokens=prompt_tokens, completion_tokens=count,
            finish_reason="stop" if self.stopped else reason, timings=timings, backend=self.backend, model=self.model,
        ))

    def _emit(self, text: str) -> Iterator[StreamChunk]:
        if text:
            self.pieces.append(text)
            yield StreamChunk(text)


class LocalBackend(Backend):
    """Base for backends that run the model in this process and expose the raw token loop."""

    n_ctx: int = 2048

    # -- what a subclass provides
    @abstractmethod
    def tokenize(self, text: str, special: bool = False) -> list[int]:
        """Token ids for ``text``; ``special=True`` parses markers like <|im_start|> as special tokens."""

    @abstractmethod
    def detokenize(self, ids: list[int]) -> str: ...

    @abstractmethod
    def is_end_of_turn(self, token_id: int) -> bool: ...

    @abstractmethod
    def generate_ids(self, prompt_ids: Sequence[int], options: GenerationOptions) -> Iterator[int]:
        """Yield generated token ids for ever (the caller decides when to stop)."""

    @abstractmethod
    def chat_template(self) -> tuple[str, str, str]:
        """(Jinja template, bos_token, eos_token) of the model."""

    @abstractmethod
    def special_tokens(self) -> Sequence[str]:
        """The texts of the vocabulary's special (control) tokens, such as "<|im_start|>"."""

    # -- the shared parts
    @functools.cached_property
    def _markers(self) -> tuple[str, ...]:
        return tuple(self.special_tokens())

    def format_chat(self, messages: Sequence[Message]) -> str:
        """The exact text the model reads for ``messages``: its chat template, rendered."""
        template, bos, eos = self.chat_template()
        return render_chat_template(template, check_messages(messages), bos, eos)

    def chat_ids(self, messages: Sequence[Message]) -> list[int]:
        """The token ids the model reads for ``messages``: the text of :meth:`format_chat`, with the
        template's markers as special tokens and every message content as plain text (so no content
        can fake a turn; see :mod:`.chat_template`)."""
        template, bos, eos = self.chat_template()
        ids: list[int] = []
        for text, is_marker in chat_pieces(template, check_messages(messages), bos, eos, self._markers):
            ids += self.tokenize(text, special=is_marker)
        return ids

    def count_tokens(self, text: str) -> int:
        if not isinstance(text, str):
            raise InvalidOption(f"text must be a str, got {type(text).__name__}", fix="pass the text as a string")
        return len(self.tokenize(text))

    def complete_ids_stream(self, prompt_ids: Sequence[int], **options: Any) -> Iterator[StreamChunk]:
        """Stream a continuation of exactly these token ids (for prompts built by hand, e.g. lesson 03)."""
        opts = self._checked_options(options)
        timer = StreamTimer()
        if isinstance(prompt_ids, str | bytes) or not isinstance(prompt_ids, Sequence) or not prompt_ids or \
                not all(isinstance(i, int) and not isinstance(i, bool) for i in prompt_ids):
            raise InvalidOption("prompt_ids must be a non-empty list of token ids (ints)", fix="pass backend.tokenize(text) or backend.chat_ids(messages)")
        return self._stream(list(prompt_ids), opts, timer)

    def _stream_chat(self, messages: list[dict[str, str]], opts: GenerationOptions, timer: StreamTimer) -> Iterator[StreamChunk]:
        return self._stream(self.chat_ids(messages), opts, timer)

    def _stream_completion(self, prompt: str, opts: GenerationOptions, timer: StreamTimer) -> Iterator[StreamChunk]:
        return self._stream(self.tokenize(prompt), opts, timer)

    def _stream(self, prompt_ids: list[int], opts: GenerationOptions, timer: StreamTimer) -> Iterator[StreamChunk]:
        n_prompt = len(prompt_ids)
        if n_prompt >= self.n_ctx:
            raise ContextOverflow(
                f"the prompt has {n_prompt} tokens but the context window holds {self.n_ctx}",
                fix="shorten the prompt (course_utils.prompting.fit_to_context keeps what fits), or raise COURSE_CTX / n_ctx=",
            )
        budget = min(opts.max_tokens, self.n_ctx - n_prompt)
        return self._generate(prompt_ids, opts, timer, budget)

    def _generate(self, prompt_ids: list[int], opts: GenerationOptions, timer: StreamTimer, budget: int) -> Iterator[StreamChunk]:
        relay, decoder = StreamRelay(self.name, self.model_name, opts, timer), IncrementalDecoder(self.detokenize)
        finish = "length"
        tokens = self.generate_ids(prompt_ids, opts)
        try:
            for token_id in tokens:
                if self.is_end_of_turn(token_id):
                    finish = "stop"
                    break
                yield from relay.token(decoder.add(token_id))
                if relay.stopped or relay.count >= budget:
                    break
        finally:
            tokens.close()
        yield from relay.finish(finish, prompt_tokens=len(prompt_ids), tail=decoder.flush())
