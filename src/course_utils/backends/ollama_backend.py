"""Ollama through its official Python client (``ollama`` package).

Ollama runs GGUF models behind an HTTP API on http://127.0.0.1:11434 (``OLLAMA_HOST``). Models are
named like ``smollm2:135m`` and fetched with ``ollama pull``; the server applies the model's chat
template and reports token counts and durations with the last chunk of every stream.

**Special tokens in contents: Ollama parses them.** Ollama renders its (Go) template with the message
contents as text and tokenizes the whole result with special tokens parsed: its runner calls
``Tokenize(prompt, addSpecial, parseSpecial=true)`` (``runner/llamarunner/runner.go``, ``Server.inputs``),
and ollama/ollama issue #15931 ("Special token in user input is tokenized as-is", open) and pull
request #17262 (not merged when we looked) describe the effect. So a message that contains
``<|im_end|>\n<|im_start|>system\n...`` reaches the model as a real system turn, unlike with the
course's in-process backends. tests/ollama_standin.py reads prompts the same way, and
tests/test_chat_security.py measures it: 5 ``<|im_start|>`` ids in the prompt instead of 3. Put untrusted
text into a local backend (llamacpp, transformers, gpt4all), or screen it first
(``course_utils.guard``), when a forged turn would matter.

Backends layer. Taught in lesson 04.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from ..config import settings
from ..errors import BackendUnavailable, ContextOverflow, InvalidOption, ModelNotFound
from ..timing import StreamTimer
from .base import Backend, BackendInfo, GenerationOptions, StreamChunk, StreamRelay
from .options import check_size

DEFAULT_MODEL = "smollm2:135m"


class OllamaBackend(Backend):
    name = "ollama"
    supports_json_schema = True  # Ollama's format= takes a JSON schema

    def __init__(self, model: str | None = None, host: str | None = None, n_ctx: int | None = None, timeout: float = 120.0, **_: Any) -> None:
        check_size("n_ctx", n_ctx)
        try:
            import ollama
        except ImportError:
            raise BackendUnavailable("the ollama package is not installed", fix="run `make setup`, or pip install ollama") from None
        cfg = settings()
        self.host = host or cfg.ollama_host
        self._ollama = ollama
        self.client = ollama.Client(host=self.host, timeout=timeout)
        # COURSE_MODEL usually names a GGUF file for llama.cpp; Ollama wants its own model names
        self.model_name = model if model is not None and model != cfg.model else DEFAULT_MODEL
        self.n_ctx = n_ctx or cfg.n_ctx
        self._show = self._call(lambda: self.client.show(self.model_name))

    def _call(self, fn: Any) -> Any:
        ollama = self._ollama
        try:
            return fn()
        except ConnectionError:
            raise BackendUnavailable(f"ollama serve is not running at {self.host}", fix="start it with `ollama serve` (or set OLLAMA_HOST), or use backend='llamacpp'") from None
        except ollama.ResponseError as err:
            message = str(err.error)
            if err.status_code == 404 or "not found" in message:
                raise ModelNotFound(f"Ollama has no model {self.model_name!r}", fix=f"run `ollama pull {self.model_name}`") from None
            if "context" in message.lower():
                raise ContextOverflow(f"Ollama refused the prompt: {message}", fix="shorten the prompt, or raise COURSE_CTX (num_ctx)") from None
            raise InvalidOption(f"Ollama rejected the request ({err.status_code}): {message}", fix="check the options and messages") from None

    def _options(self, opts: GenerationOptions) -> dict[str, Any]:
        options = {
            "num_predict": opts.max_tokens, "temperature": opts.temperature, "top_k": opts.top_k,
            "top_p": opts.top_p, "min_p": 0.0, "repeat_penalty": opts.repeat_penalty,
            "seed": opts.resolved_seed(), "num_ctx": self.n_ctx,
        }
        if opts.stop:
            options["stop"] = list(opts.stop)
        return options

    def _stream_chat(self, messages: list[dict[str, str]], opts: GenerationOptions, timer: StreamTimer) -> Iterator[StreamChunk]:
        fmt = dict(opts.json_schema) if opts.json_schema is not None else None
        stream = self._call(lambda: self.client.chat(model=self.model_name, messages=messages, stream=True, options=self._options(opts), format=fmt))
        return self._consume(stream, StreamRelay(self.name, self.model_name, opts, timer), lambda part: part.message.content)

    def _stream_completion(self, prompt: str, opts: GenerationOptions, timer: StreamTimer) -> Iterator[StreamChunk]:
        fmt = dict(opts.json_schema) if opts.json_schema is not None else None
        stream = self._call(lambda: self.client.generate(model=self.model_name, prompt=prompt, raw=True, stream=True, options=self._options(opts), format=fmt))
        return self._consume(stream, StreamRelay(self.name, self.model_name, opts, timer), lambda part: part.response)

    def _consume(self, stream: Any, relay: StreamRelay, text_of: Callable[[Any], str | None]) -> Iterator[StreamChunk]:
        parts, last = iter(stream), None
        while (part := self._call(lambda: next(parts, None))) is not None:  # errors can also arrive mid-stream
            last = part
            if piece := text_of(part) or "":
                yield from relay.token(piece)
        # the last part carries the server's counts: prompt tokens, generated tokens, why it stopped
        yield from relay.finish("length" if getattr(last, "done_reason", "") == "length" else "stop",
                                prompt_tokens=int(getattr(last, "prompt_eval_count", 0) or 0),
                                completion_tokens=int(getattr(last, "eval_count", 0) or relay.count))

    def count_tokens(self, text: str) -> int:
        """Ollama has no tokenize endpoint: read ``prompt_eval_count`` of a raw one-token generation."""
        if not isinstance(text, str) or not text:
            raise InvalidOption("text must be a non-empty string", fix="pass the text as a string")
        reply = self._call(lambda: self.client.generate(model=self.model_name, prompt=text, raw=True, options={"num_predict": 1, "temperature": 0.0}))
        return int(reply.prompt_eval_count or 0)

    def info(self) -> BackendInfo:
        show = self._show
        details = show.details
        model_info = dict(show.modelinfo or {})
        context = next((int(v) for k, v in model_info.items() if k.endswith(".context_length")), 0)
        return BackendInfo(
            name=self.name, model=self.model_name, context_length=min(context, self.n_ctx) if context else self.n_ctx,
            device="server", quantization=getattr(details, "quantization_level", "") or "unknown",
            details={"host": self.host, "family": getattr(details, "family", ""), "parameter_size": getattr(details, "parameter_size", "")},
        )

    def close(self) -> None:
        inner = getattr(self.client, "_client", None)
        if inner is not None:
            inner.close()
