"""The one interface every backend offers, and the generation loop shared by in-process backends.

A backend turns messages (chat) or text (completion) into generated text, streamed or not::

    result = backend.chat([{"role": "user", "content": "Name a prime."}], max_tokens=32)
    result.text, result.prompt_tokens, result.completion_tokens, result.timings.ttft_s

Non-streamed calls are built by collecting the stream, so both always produce the same text and the
same measurements.
"""

from __future__ import annotations

import numbers
import random
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from jinja2.sandbox import ImmutableSandboxedEnvironment

from ..errors import ContextOverflow, InvalidOption
from ..timing import StreamTimer, Timings

Message = Mapping[str, str]


# ----------------------------------------------------------------------------- options
@dataclass(frozen=True)
class GenerationOptions:
    """Generation settings shared by every backend. Defaults are greedy and reproducible."""

    max_tokens: int = 128
    temperature: float = 0.0  # 0 = greedy (always the most likely token)
    top_k: int = 0  # 0 = off
    top_p: float = 1.0  # 1.0 = off
    repeat_penalty: float = 1.0  # 1.0 = off
    seed: int | None = None  # None = a fresh random seed each call
    stop: tuple[str, ...] = ()
    json_schema: dict[str, Any] | None = None  # force output to match this JSON schema (where supported)

    def __post_init__(self) -> None:
        _check_int("max_tokens", self.max_tokens, minimum=1)
        _check_number("temperature", self.temperature, minimum=0.0)
        _check_int("top_k", self.top_k, minimum=0)
        _check_number("top_p", self.top_p, minimum=0.0, maximum=1.0, open_min=True)
        _check_number("repeat_penalty", self.repeat_penalty, minimum=0.0, open_min=True)
        if self.seed is not None:
            _check_int("seed", self.seed, minimum=0)
        stop = (self.stop,) if isinstance(self.stop, str) else self.stop
        if not isinstance(stop, Iterable) or not all(isinstance(s, str) and s for s in stop):
            raise InvalidOption(f"stop={self.stop!r} must be a string or a list of non-empty strings", fix='pass e.g. stop=["\\n"]')
        object.__setattr__(self, "stop", tuple(stop))
        if self.json_schema is not None and not isinstance(self.json_schema, Mapping):
            raise InvalidOption(f"json_schema must be a dict (a JSON schema), got {type(self.json_schema).__name__}", fix='pass e.g. json_schema={"type": "object", "properties": {...}}')

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> GenerationOptions:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise InvalidOption(f"unknown generation option(s) {', '.join(unknown)}", fix=f"use only {', '.join(sorted(known))}")
        return cls(**{k: v for k, v in kwargs.items() if v is not None or k == "seed"})

    def resolved_seed(self) -> int:
        return self.seed if self.seed is not None else random.SystemRandom().randrange(2**31)


def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InvalidOption(f"{name} must be an integer, got {type(value).__name__} {value!r}", fix=f"pass {name}={max(minimum, 1)} or another whole number")
    if value < minimum:
        raise InvalidOption(f"{name} must be >= {minimum}, got {value}", fix=f"pass {name}={max(minimum, 1)} or larger")


def _check_number(name: str, value: Any, minimum: float, maximum: float | None = None, open_min: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidOption(f"{name} must be a number, got {type(value).__name__} {value!r}", fix=f"pass {name} as a float, e.g. {name}=1.0")
    too_low = value <= minimum if open_min else value < minimum
    if too_low or (maximum is not None and value > maximum):
        bounds = f"{'>' if open_min else '>='} {minimum}" + (f" and <= {maximum}" if maximum is not None else "")
        raise InvalidOption(f"{name} must be {bounds}, got {value}", fix=f"pass a {name} in that range")


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
class Chunk:
    """One piece of a stream. The last chunk has ``done=True`` and carries the whole result."""

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


def collect(stream: Iterable[Chunk]) -> GenerationResult:
    """Consume a stream and return its final result."""
    for chunk in stream:
        if chunk.done and chunk.result is not None:
            return chunk.result
    raise RuntimeError("stream ended without a final chunk")


def check_messages(messages: Any) -> list[dict[str, str]]:
    """Validate chat messages: a non-empty list of {"role": ..., "content": str}."""
    fix = 'pass messages=[{"role": "user", "content": "Hello"}]'
    if isinstance(messages, str | bytes) or not isinstance(messages, Sequence) or not messages:
        raise InvalidOption(f"messages must be a non-empty list of dicts, got {type(messages).__name__}", fix=fix)
    clean = []
    for i, m in enumerate(messages):
        if not isinstance(m, Mapping) or not isinstance(m.get("content"), str) or m.get("role") not in {"system", "user", "assistant", "tool"}:
            raise InvalidOption(f"message {i} ({m!r}) needs a role (system/user/assistant/tool) and a string content", fix=fix)
        clean.append({"role": m["role"], "content": m["content"]})
    return clean


def render_chat_template(template: str, messages: Sequence[Message], bos_token: str = "", eos_token: str = "") -> str:
    """Render a model's Jinja chat template exactly as transformers does (sandboxed)."""
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)

    def raise_exception(message: str) -> None:
        raise InvalidOption(f"the chat template rejected the messages: {message}", fix="check the order of roles")

    env.globals["raise_exception"] = raise_exception
    return env.from_string(template).render(
        messages=list(messages), add_generation_prompt=True, bos_token=bos_token, eos_token=eos_token
    )


# ----------------------------------------------------------------------------- the interface
class Backend(ABC):
    """What every backend offers. Subclasses implement :meth:`chat_stream` and :meth:`complete_stream`."""

    name: str = "backend"

    @abstractmethod
    def chat_stream(self, messages: Sequence[Message], **options: Any) -> Iterator[Chunk]:
        """Stream the assistant's reply to ``messages`` (options: see :class:`GenerationOptions`)."""

    @abstractmethod
    def complete_stream(self, prompt: str, **options: Any) -> Iterator[Chunk]:
        """Stream a raw continuation of ``prompt`` (no chat template)."""

    @abstractmethod
    def count_tokens(self, text: str) -> int:
        """Number of tokens the model sees for ``text`` (no special tokens added)."""

    @abstractmethod
    def info(self) -> BackendInfo:
        """Name, model, context length, device and quantization."""

    def chat(self, messages: Sequence[Message], **options: Any) -> GenerationResult:
        return collect(self.chat_stream(messages, **options))

    def complete(self, prompt: str, **options: Any) -> GenerationResult:
        return collect(self.complete_stream(prompt, **options))

    def close(self) -> None:
        """Free the model and any process or connection (safe to call twice)."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


# ----------------------------------------------------------------------------- shared loop
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


class PromptIds(list):
    """Prompt token ids that remember the text they came from (GPT4All generates from text)."""

    def __init__(self, ids: list[int], text: str, special: bool) -> None:
        super().__init__(ids)
        self.text = text
        self.special = special


class LocalBackend(Backend):
    """Base for backends that run the model in this process and expose the raw token loop."""

    model_name: str = ""
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
    def generate_ids(self, prompt_ids: list[int], options: GenerationOptions) -> Iterator[int]:
        """Yield generated token ids for ever (the caller decides when to stop)."""

    supports_json_schema: bool = False

    def _check_supported(self, opts: GenerationOptions) -> None:
        if opts.json_schema is not None and not self.supports_json_schema:
            raise InvalidOption(f"the {self.name} backend cannot constrain output to a JSON schema", fix="use backend='llamacpp' (grammar-constrained decoding), or drop json_schema=")

    @abstractmethod
    def chat_template(self) -> tuple[str, str, str]:
        """(Jinja template, bos_token, eos_token) of the model."""

    # -- the shared parts
    def format_chat(self, messages: Sequence[Message]) -> str:
        """The exact text the model reads for ``messages``: its chat template, rendered."""
        template, bos, eos = self.chat_template()
        return render_chat_template(template, check_messages(messages), bos, eos)

    def count_tokens(self, text: str) -> int:
        if not isinstance(text, str):
            raise InvalidOption(f"text must be a str, got {type(text).__name__}", fix="pass the text as a string")
        return len(self.tokenize(text))

    def chat_stream(self, messages: Sequence[Message], **options: Any) -> Iterator[Chunk]:
        opts = GenerationOptions.from_kwargs(**options)
        timer = StreamTimer()
        text = self.format_chat(messages)
        return self._stream(PromptIds(self.tokenize(text, special=True), text, special=True), opts, timer)

    def complete_stream(self, prompt: str, **options: Any) -> Iterator[Chunk]:
        opts = GenerationOptions.from_kwargs(**options)
        if not isinstance(prompt, str) or not prompt:
            raise InvalidOption(f"prompt must be a non-empty string, got {prompt!r:.40}", fix="pass some text to continue")
        timer = StreamTimer()
        return self._stream(PromptIds(self.tokenize(prompt), prompt, special=False), opts, timer)

    def _stream(self, prompt_ids: list[int], opts: GenerationOptions, timer: StreamTimer) -> Iterator[Chunk]:
        self._check_supported(opts)
        n_prompt = len(prompt_ids)
        if n_prompt >= self.n_ctx:
            raise ContextOverflow(
                f"the prompt has {n_prompt} tokens but the context window holds {self.n_ctx}",
                fix="shorten the prompt (course_utils.prompting.fit_to_context keeps what fits), or raise COURSE_CTX / n_ctx=",
            )
        budget = min(opts.max_tokens, self.n_ctx - n_prompt)
        return self._generate(prompt_ids, opts, timer, budget)

    def _generate(self, prompt_ids: list[int], opts: GenerationOptions, timer: StreamTimer, budget: int) -> Iterator[Chunk]:
        decoder, stopper = IncrementalDecoder(self.detokenize), StopMatcher(opts.stop)
        pieces: list[str] = []
        finish = "length"
        tokens = self.generate_ids(prompt_ids, opts)
        try:
            for token_id in tokens:
                if self.is_end_of_turn(token_id):
                    finish = "stop"
                    break
                timer.token()
                text = stopper.feed(decoder.add(token_id))
                if text:
                    pieces.append(text)
                    yield Chunk(text)
                if stopper.stopped:
                    finish = "stop"
                    break
                if timer.count >= budget:
                    break
        finally:
            tokens.close()
        tail = stopper.feed(decoder.flush()) + stopper.flush()
        if tail:
            pieces.append(tail)
            yield Chunk(tail)
        timings = timer.finish(prompt_tokens=len(prompt_ids))
        result = GenerationResult(
            text="".join(pieces),
            prompt_tokens=len(prompt_ids),
            completion_tokens=timer.count,
            finish_reason=finish,
            timings=timings,
            backend=self.name,
            model=self.model_name,
        )
        yield Chunk("", done=True, result=result)
