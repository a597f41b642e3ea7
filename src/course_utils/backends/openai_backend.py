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
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

from ..config import settings
from ..errors import BackendUnavailable, ContextOverflow, CourseError, InvalidOption, ModelNotFound
from ..timing import StreamTimer
from .base import (
    Backend,
    BackendInfo,
    Chunk,
    GenerationOptions,
    GenerationResult,
    Message,
    StopMatcher,
    check_messages,
)

START_SERVER = "start one, e.g. `python -m llama_cpp.server --model <file.gguf> --port 8000`, or set OPENAI_BASE_URL"


class OpenAIBackend(Backend):
    name = "openai"

    def __init__(self, model: str | None = None, base_url: str | None = None, api_key: str | None = None, timeout: float = 120.0,
                 n_ctx: int | None = None, **_: Any) -> None:
        try:
            import openai
        except ImportError:
            raise BackendUnavailable("the openai package is not installed", fix="run `make setup`, or pip install openai") from None
        cfg = settings()
        self.base_url = (base_url or cfg.openai_base_url).rstrip("/")
        self.n_ctx = n_ctx or cfg.n_ctx  # the server's context window (only used to explain errors)
        self._openai = openai
        self.client = openai.OpenAI(base_url=self.base_url, api_key=api_key or cfg.openai_api_key, timeout=timeout, max_retries=0)
        served = self._served_models()
        if model is None or model == cfg.model and (model not in served):
            model = served[0]  # COURSE_MODEL usually names a local file, not a served model
        elif model not in served:
            raise ModelNotFound(f"the server at {self.base_url} does not serve {model!r} (it serves {', '.join(served)})", fix=f"use model={served[0]!r}, or load {model!r} in the server")
        self.model_name = model
        self._models_payload: dict[str, Any] = {}

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

    def chat_stream(self, messages: Sequence[Message], **options: Any) -> Iterator[Chunk]:
        opts = GenerationOptions.from_kwargs(**options)
        args = self._request_args(opts)
        if opts.json_schema is not None:
            args["response_format"] = {"type": "json_object", "schema": dict(opts.json_schema)}
        timer = StreamTimer()
        stream = self._open(lambda: self.client.chat.completions.create(messages=check_messages(messages), **args))
        text = "\n".join(m["content"] for m in check_messages(messages))  # a lower bound on the prompt
        return self._consume(stream, timer, opts, delta=lambda c: c.delta.content, count_prompt=lambda: 0, lower_bound=text)

    def complete_stream(self, prompt: str, **options: Any) -> Iterator[Chunk]:
        opts = GenerationOptions.from_kwargs(**options)
        if not isinstance(prompt, str) or not prompt:
            raise InvalidOption(f"prompt must be a non-empty string, got {prompt!r:.40}", fix="pass some text to continue")
        if opts.json_schema is not None:
            raise InvalidOption("json_schema works with chat() on the openai backend", fix="use chat() with json_schema=")
        timer = StreamTimer()
        stream = self._open(lambda: self.client.completions.create(prompt=prompt, **self._request_args(opts)))
        return self._consume(stream, timer, opts, delta=lambda c: c.text, count_prompt=lambda: self._count_or_zero(prompt), lower_bound=prompt)

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

    def _consume(self, stream: Any, timer: StreamTimer, opts: GenerationOptions, delta: Any, count_prompt: Any, lower_bound: str) -> Iterator[Chunk]:
        stopper, pieces = StopMatcher(opts.stop), []
        finish, usage = None, None
        try:
            for event in stream:
                if event.usage is not None:
                    usage = event.usage
                for choice in event.choices:
                    piece = delta(choice) or ""
                    if piece:
                        timer.token()
                        out = stopper.feed(piece)
                        if out:
                            pieces.append(out)
                            yield Chunk(out)
                    if choice.finish_reason:
                        finish = "length" if choice.finish_reason == "length" else "stop"
        finally:
            stream.close()
        if finish is None:  # the server broke off the stream (llama-cpp-python does so on errors)
            self._explain_broken_stream(lower_bound)
        tail = stopper.flush()
        if tail:
            pieces.append(tail)
            yield Chunk(tail)
        completion = usage.completion_tokens if usage is not None else timer.count
        timings = timer.finish(prompt_tokens=usage.prompt_tokens if usage is not None else count_prompt())
        timings = replace(timings, completion_tokens=completion)
        yield Chunk("", done=True, result=GenerationResult(
            text="".join(pieces), prompt_tokens=timings.prompt_tokens, completion_tokens=completion,
            finish_reason=finish, timings=timings, backend=self.name, model=self.model_name,
        ))

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
