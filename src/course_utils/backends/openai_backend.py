"""Any OpenAI-compatible server: llama.cpp's server, vLLM, LM Studio, Ollama's /v1, text-generation-webui...

The server owns the model and its chat template; we send messages and read a stream of deltas. Point
it anywhere with ``OPENAI_BASE_URL`` (default http://127.0.0.1:8000/v1)::

    python -m llama_cpp.server --model model.gguf --port 8000      # a real local server
    get_backend("openai").chat([{"role": "user", "content": "Hi"}])

Token counts come from the server's ``usage`` report when it sends one (vLLM, LM Studio, Ollama and
llama.cpp's C++ ``llama-server`` do). llama-cpp-python's server sends none while streaming: then each
streamed delta counts as one output token (it streams one token per delta), a completion's prompt is
counted with the server's tokenizer, and a chat's prompt tokens are reported as 0 (unknown), because
only the server knows the chat template it applied.

**Special tokens in contents: the server decides.** The server renders the chat template and
tokenizes, so whether ``<|im_start|>`` typed in a message becomes a real marker is up to it.
llama-cpp-python's server (the one the course starts) renders the template to text and tokenizes it
with ``special=True`` (``llama_chat_format.py``, ``chat_formatter_to_chat_completion_handler``):
measured by tests/test_chat_security.py, a hostile message is read with 5 ``<|im_start|>`` ids instead of 3
(the server's own prompt-token count matches the special-parsing tokenization). Other servers differ;
check yours before sending it untrusted text, or use an in-process backend, which keeps every
content plain text.

Backends layer. Taught in lesson 04 (a real server with the ``openai`` client).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ..config import settings
from ..errors import BackendUnavailable, ContextOverflow, CourseError, InvalidOption, ModelNotFound
from ..timing import StreamTimer
from .base import Backend, BackendInfo, GenerationOptions, StreamChunk, StreamRelay
from .options import check_size

START_SERVER = "start one, e.g. `python -m llama_cpp.server --model <file.gguf> --port 8000`, or set OPENAI_BASE_URL"


def choose_served_model(requested: str | None, course_model: str | None, served: Sequence[str], base_url: str = "the server") -> str:
    """Which served model to use for ``get_backend("openai", model=requested)``.

    A name the server serves is used as it is; with no name, COURSE_MODEL is used if the server serves
    it. COURSE_MODEL usually names a local GGUF file, which no server calls its model: then (and with
    no name at all) the server's first model is used. Any other name is a mistake.

    >>> choose_served_model(None, "/models/x.gguf", ["smollm2"]), choose_served_model(None, "b", ["a", "b"])
    ('smollm2', 'b')
    """
    wanted = requested if requested is not None else course_model
    if wanted in served:
        return wanted
    if requested is None or requested == course_model:
        return served[0]
    raise ModelNotFound(f"{base_url} does not serve {requested!r} (it serves {', '.join(served)})",
                        fix=f"use model={served[0]!r}, or load {requested!r} in the server")


class OpenAIBackend(Backend):
    name = "openai"
    supports_json_schema = True  # through response_format (chat only)

    def __init__(self, model: str | None = None, base_url: str | None = None, api_key: str | None = None, timeout: float = 120.0,
                 n_ctx: int | None = None, **_: Any) -> None:
        check_size("n_ctx", n_ctx)
        try:
            import openai
        except ImportError:
            raise BackendUnavailable("the openai package is not installed", fix="run `make setup`, or pip install openai") from None
        cfg = settings()
        self.base_url = (base_url or cfg.openai_base_url).rstrip("/")
        self.n_ctx = n_ctx or cfg.n_ctx  # the server's context window (only used to explain errors)
        self._openai = openai
        self.client = openai.OpenAI(base_url=self.base_url, api_key=api_key or cfg.openai_api_key, timeout=timeout, max_retries=0)
        self.model_name = choose_served_model(model, cfg.model, self._served_models(), f"the server at {self.base_url}")

    def _served_models(self) -> list[str]:
        try:
            ids = [m.id for m in self.client.models.list().data]
        except self._openai.APIConnectionError:
            raise BackendUnavailable(f"no OpenAI-compatible server answers at {self.base_url}", fix=START_SERVER) from None
        except self._openai.APIStatusError as err:
            raise BackendUnavailable(f"the server at {self.base_url} answered {err.status_code} to /models", fix="check OPENAI_BASE_URL (it usually ends in /v1) and OPENAI_API_KEY") from None
        if not ids:
            raise ModelNotFound(f"the server at {self.base_url} serves no model", fix="load a model in the server first")
        return ids

    # -- requests
    def _request_args(self, opts: GenerationOptions) -> dict[str, Any]:
        args: dict[str, Any] = {
            "model": self.model_name,
            "max_tokens": opts.max_tokens,
            "temperature": opts.temperature,
            "top_p": opts.top_p,
            "seed": opts.resolved_seed(),
            "stream": True,
            "stream_options": {"include_usage": True},
            # not in OpenAI's API, but understood by llama.cpp, vLLM and LM Studio servers
            "extra_body": {"top_k": opts.top_k, "repeat_penalty": opts.repeat_penalty, "min_p": 0.0},
        }
        if opts.stop:
            args["stop"] = list(opts.stop)
        return args

    def _stream_chat(self, messages: list[dict[str, str]], opts: GenerationOptions, timer: StreamTimer) -> Iterator[StreamChunk]:
        args = self._request_args(opts)
        if opts.json_schema is not None:
            args["response_format"] = {"type": "json_object", "schema": dict(opts.json_schema)}
        stream = self._open(lambda: self.client.chat.completions.create(messages=messages, **args))
        text = "\n".join(m["content"] for m in messages)  # a lower bound on the prompt
        return self._consume(stream, StreamRelay(self.name, self.model_name, opts, timer), delta=lambda c: c.delta.content,
                             count_prompt=lambda: 0, lower_bound=text)

    def _stream_completion(self, prompt: str, opts: GenerationOptions, timer: StreamTimer) -> Iterator[StreamChunk]:
        if opts.json_schema is not None:
            raise InvalidOption("json_schema works with chat() on the openai backend", fix="use chat() with json_schema=")
        stream = self._open(lambda: self.client.completions.create(prompt=prompt, **self._request_args(opts)))
        return self._consume(stream, StreamRelay(self.name, self.model_name, opts, timer), delta=lambda c: c.text,
                             count_prompt=lambda: self._count_or_zero(prompt), lower_bound=prompt)

    def _open(self, call: Any) -> Any:
        """Send the request now (errors surface at the call, not at the first chunk)."""
        openai = self._openai
        try:
            return call()
        except openai.APIConnectionError:
            raise BackendUnavailable(f"the server at {self.base_url} stopped answering", fix=START_SERVER) from None
        except openai.BadRequestError as err:
            text = str(err)
            if "context" in text.lower() or "exceed" in text.lower():
                raise ContextOverflow(f"the server refused the prompt: {_short(text)}", fix="shorten the prompt (keep the last messages), or start the server with a larger context (--n_ctx)") from None
            raise InvalidOption(f"the server rejected the request: {_short(text)}", fix="check the options and messages") from None
        except openai.APIStatusError as err:
            raise BackendUnavailable(f"the server answered {err.status_code}: {_short(str(err))}", fix="check the server's log") from None

    def _count_or_zero(self, text: str) -> int:
        try:
            return self.count_tokens(text)
        except CourseError:
            return 0

    def _consume(self, stream: Any, relay: StreamRelay, delta: Callable[[Any], str | None], count_prompt: Callable[[], int],
                 lower_bound: str) -> Iterator[StreamChunk]:
        finish, usage = None, None
        try:
            for event in stream:
                if event.usage is not None:
                    usage = event.usage
                for choice in event.choices:
                    if piece := delta(choice) or "":
                        yield from relay.token(piece)
                    if choice.finish_reason:
                        finish = "length" if choice.finish_reason == "length" else "stop"
        finally:
            stream.close()
        if finish is None:  # the server broke off the stream (llama-cpp-python does so on errors)
            self._explain_broken_stream(lower_bound)
        yield from relay.finish(finish, prompt_tokens=usage.prompt_tokens if usage is not None else count_prompt(),
                                completion_tokens=usage.completion_tokens if usage is not None else None)

    def _explain_broken_stream(self, prompt_text: str) -> None:
        n_prompt = self._count_or_zero(prompt_text)
        if n_prompt >= self.n_ctx:
            raise ContextOverflow(f"the prompt has at least {n_prompt} tokens and the server's context holds {self.n_ctx}; it ended the stream",
                                  fix="shorten the prompt (keep the last messages), or start the server with a larger --n_ctx and pass n_ctx=")
        raise BackendUnavailable(f"the server at {self.base_url} ended the stream without finishing", fix="look at the server's log for the error")

    # -- the rest of the interface
    def count_tokens(self, text: str) -> int:
        """Ask the server's tokenizer (llama.cpp: /extras/tokenize, vLLM: /tokenize)."""
        import httpx

        if not isinstance(text, str):
            raise InvalidOption(f"text must be a str, got {type(text).__name__}", fix="pass the text as a string")
        root = self.base_url.removesuffix("/v1")
        for url, body, key in ((f"{self.base_url}/extras/tokenize", {"input": text}, "tokens"),
                               (f"{root}/extras/tokenize", {"input": text}, "tokens"),
                               (f"{root}/tokenize", {"model": self.model_name, "prompt": text, "add_special_tokens": False}, "tokens")):
            try:
                reply = httpx.post(url, json=body, timeout=30)
            except httpx.HTTPError:
                continue
            if reply.status_code == 200 and key in reply.json():
                return len(reply.json()[key])
        raise CourseError(f"the server at {self.base_url} offers no tokenize endpoint", fix="count tokens with a local backend that uses the same model")

    def info(self) -> BackendInfo:
        details: dict[str, Any] = {"base_url": self.base_url}
        context = 0
        try:
            model = self.client.models.retrieve(self.model_name)
            extra = model.model_extra or {}
            context = int(extra.get("max_model_len") or extra.get("meta", {}).get("n_ctx_train") or 0)
            details.update({k: v for k, v in extra.items() if isinstance(v, str | int | float)})
        except Exception:  # not every server implements /models/{id}
            pass
        return BackendInfo(self.name, self.model_name, context, "server", "server-defined", details)

    def close(self) -> None:
        self.client.close()


def _short(text: str) -> str:
    return " ".join(text.split())[:200]
