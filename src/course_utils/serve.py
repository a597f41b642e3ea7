"""A class served from one machine: ``course serve`` — one model server that many learners share.

Each learner's notebook points at it with three environment variables (lesson 04's OpenAI backend)::

    COURSE_BACKEND=openai  OPENAI_BASE_URL=http://<server>:8000/v1  OPENAI_API_KEY=<the class key>

Two processes make the server:

- an **engine** on 127.0.0.1 (a free port): llama-cpp-python's ``llama_cpp.server`` (one request at a
  time) or llama.cpp's ``llama-server`` (``parallel`` slots decoded together: continuous batching), both
  from :mod:`course_utils.server`. The engine checks the key too, so another user of the server machine
  cannot skip the front door through loopback;
- a **front door** on the interface you choose (``--host``): it refuses any request without the key
  (401), passes the others to the engine (streams included, byte for byte) and logs one line per request:
  status, latency, time to first token, prompt and completion tokens.

>>> key_ok("Bearer s3cret", "s3cret"), key_ok("Bearer nope", "s3cret"), key_ok(None, "s3cret")
(True, False, False)
>>> counter = TokenCounter(streamed=True)      # a text/event-stream response
>>> counter.feed(b'data: {"choices":[{"delta":{"content":"Hi"}}]}\\n\\ndata: {"choices":[{"delta":{"content":"!"}}]}\\n')
>>> counter.feed(b'\\ndata: [DONE]\\n\\n'); counter.completion_tokens, counter.streamed
(2, True)

Stopping (Ctrl-C or SIGTERM) closes the front door, then stops the engine; the port is free afterwards.

Taught in: lesson 04 (serving many users); README "Teaching a class".
"""

from __future__ import annotations

import hmac
import json
import secrets
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

from .errors import BackendUnavailable, InvalidOption
from .server import LlamaCppServer, LlamaServer, ManagedServer

ENGINES = ("llama-cpp-python", "llama-server")
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding", "host", "te",
              "trailer", "upgrade", "proxy-authorization", "proxy-authenticate"}


def key_ok(authorization: str | None, api_key: str) -> bool:
    """Does an ``Authorization`` header carry the key? (compared in constant time)"""
    if not authorization or not authorization.startswith("Bearer "):
        return False
    return hmac.compare_digest(authorization[len("Bearer "):].encode(), api_key.encode())


def new_api_key() -> str:
    """A random key for a class (hand it out with the server address)."""
    return "course-" + secrets.token_urlsafe(18)


# ----------------------------------------------------------------------------- tokens per request
@dataclass
class TokenCounter:
    """Reads a response as it passes: a JSON body's ``usage``, or a stream's deltas (one token each, as
    llama.cpp and vLLM stream them) unless the stream's last event carries ``usage`` itself."""

    prompt_tokens: int | None = None
    completion_tokens: int = 0
    streamed: bool = False
    first_token_at: float | None = None
    _buffer: bytes = b""
    _usage_seen: bool = False

    def feed(self, chunk: bytes) -> None:
        self._buffer += chunk
        if not self.streamed:
            return  # a plain JSON body: read it whole at the end
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            self._event(line.strip())

    def _event(self, line: bytes) -> None:
        if not line.startswith(b"data:") or line[5:].strip() == b"[DONE]":
            return
        try:
            event = json.loads(line[5:])
        except json.JSONDecodeError:
            return
        if event.get("usage"):
            self._use(event["usage"])
        for choice in event.get("choices") or []:
            text = (choice.get("delta") or {}).get("content") or choice.get("text")
            if text:
                self.first_token_at = self.first_token_at or time.perf_counter()
                if not self._usage_seen:
                    self.completion_tokens += 1

    def _use(self, usage: dict[str, Any]) -> None:
        self._usage_seen = True
        self.prompt_tokens = usage.get("prompt_tokens", self.prompt_tokens)
        self.completion_tokens = usage.get("completion_tokens", self.completion_tokens)

    def finish(self) -> None:
        if self.streamed:
            self._event(self._buffer.strip())
        else:
            try:
                usage = json.loads(self._buffer or b"{}").get("usage")
            except (json.JSONDecodeError, AttributeError):
                usage = None
            if usage:
                self._use(usage)
        self._buffer = b""


# ----------------------------------------------------------------------------- the request log
@dataclass
class RequestLog:
    """One line per request on ``stream`` (the terminal) and, with ``path``, one JSON object per line there."""

    path: Path | None = None
    stream: TextIO | None = field(default_factory=lambda: sys.stdout)
    entries: list[dict[str, Any]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def write(self, entry: dict[str, Any]) -> None:
        entry = {"time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"), **entry}
        with self._lock:
            self.entries.append(entry)
            if self.path is not None:
                with open(self.path, "a", encoding="utf-8") as fh:  # appended: a log, not a cache
                    fh.write(json.dumps(entry) + "\n")
            if self.stream is not None:
                print(self.line(entry), file=self.stream, flush=True)

    @staticmethod
    def line(e: dict[str, Any]) -> str:
        tokens = "" if e.get("completion_tokens") is None else f"  {e['completion_tokens']} tokens out"
        if e.get("prompt_tokens") is not None and tokens:
            tokens += f", {e['prompt_tokens']} in"
        ttft = f" (first token {e['ttft_s']:.2f} s)" if e.get("ttft_s") is not None else ""
        return f"{e['time'][11:19]} {e['status']} {e['method']} {e['path']} {e['latency_s']:.2f} s{ttft}{tokens}  from {e['client']}"


# ----------------------------------------------------------------------------- the front door
def front_door(upstream: str, api_key: str, log: RequestLog) -> Any:
    """The ASGI app on the class's interface: key check, relay to ``upstream`` (the engine), request log."""
    import httpx
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse, StreamingResponse
    from starlette.routing import Route

    client = httpx.AsyncClient(base_url=upstream.rstrip("/").removesuffix("/v1"), timeout=httpx.Timeout(600.0, connect=10.0))

    async def relay(request: Any) -> Any:
        started = time.perf_counter()
        base = {"method": request.method, "path": request.url.path, "client": request.client.host if request.client else "?"}
        if not key_ok(request.headers.get("authorization"), api_key):
            log.write({**base, "status": 401, "latency_s": time.perf_counter() - started})
            return JSONResponse({"error": {"message": "missing or wrong API key: set OPENAI_API_KEY to the class key",
                                           "type": "invalid_request_error", "code": "invalid_api_key"}}, status_code=401)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        upstream_request = client.build_request(request.method, request.url.path, params=request.query_params,
                                                headers=headers, content=await request.body())
        try:
            response = await client.send(upstream_request, stream=True)
        except httpx.HTTPError as err:
            log.write({**base, "status": 502, "latency_s": time.perf_counter() - started, "error": str(err)})
            return JSONResponse({"error": {"message": f"the model engine did not answer: {err}", "type": "server_error"}}, status_code=502)
        counter = TokenCounter(streamed=response.headers.get("content-type", "").startswith("text/event-stream"))

        async def body() -> Any:
            try:
                async for chunk in response.aiter_raw():
                    counter.feed(chunk)
                    yield chunk
            finally:
                await response.aclose()
                counter.finish()
                latency = time.perf_counter() - started
                ttft = (counter.first_token_at - started) if counter.streamed and counter.first_token_at else None
                tokens = counter.completion_tokens if request.url.path.endswith("completions") else None
                log.write({**base, "status": response.status_code, "latency_s": latency, "ttft_s": ttft,
                           "prompt_tokens": counter.prompt_tokens, "completion_tokens": tokens, "stream": counter.streamed})

        out_headers = {k: v for k, v in response.headers.items() if k.lower() not in HOP_BY_HOP}
        return StreamingResponse(body(), status_code=response.status_code, headers=out_headers)

    app = Starlette(routes=[Route("/{path:path}", relay, methods=["GET", "POST", "DELETE", "OPTIONS"])])
    app.state.client = client
    return app


# ----------------------------------------------------------------------------- engine + front door
def start_engine(engine: str, model: str | None = None, parallel: int = 4, n_ctx: int | None = None,
                 n_threads: int | None = None, api_key: str | None = None) -> ManagedServer:
    """The model server behind the front door, on 127.0.0.1 (not started yet).

    ``engine="auto"``: llama-server when it is built (:func:`resolve_engine`), else llama-cpp-python.
    """
    engine = resolve_engine(engine)
    if engine == "llama-cpp-python":
        return LlamaServer(model=model, n_ctx=n_ctx, n_threads=n_threads, api_key=api_key)
    if engine == "llama-server":
        return LlamaCppServer(model=model, parallel=parallel, n_ctx=n_ctx, n_threads=n_threads, api_key=api_key)
    raise InvalidOption(f"unknown engine {engine!r}", fix=f"use one of {', '.join(ENGINES)}")


def resolve_engine(engine: str) -> str:
    """``"auto"`` -> ``"llama-server"`` if tools/build_llama_server.sh has built it, else ``"llama-cpp-python"``."""
    if engine != "auto":
        return engine
    from .server import llama_server_binary

    return "llama-server" if llama_server_binary() is not None else "llama-cpp-python"


def check_port_free(host: str, port: int) -> None:
    """BackendUnavailable with the fix if ``host:port`` cannot be listened on."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as err:
            raise BackendUnavailable(f"cannot listen on {host}:{port}: {err.strerror}", fix="pick another --port, or stop what uses it (`ss -ltnp`)") from None


class ClassServer:
    """An engine plus the front door. ``with ClassServer(...) as server:`` or :func:`serve_forever`."""

    def __init__(self, engine: str = "auto", host: str = "127.0.0.1", port: int = 8000,
                 api_key: str | None = None, model: str | None = None, parallel: int = 4, n_ctx: int | None = None,
                 n_threads: int | None = None, log: RequestLog | None = None) -> None:
        if not api_key:
            raise InvalidOption("a class server needs an API key", fix="pass api_key (`course serve` makes one if you give none)")
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise InvalidOption(f"port must be 0-65535, got {port!r}", fix="e.g. --port 8000")
        self.host, self.port, self.api_key = host, port, api_key
        self.log = log or RequestLog()
        self.engine_name = resolve_engine(engine)
        self.engine = start_engine(self.engine_name, model, parallel, n_ctx, n_threads, api_key)
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/v1"

    def start(self, timeout: float = 120.0) -> ClassServer:
        import uvicorn

        if self.port == 0:
            from .server import free_port

            self.port = free_port()
        check_port_free(self.host, self.port)
        self.engine.start(timeout=timeout)
        try:
            app = front_door(self.engine.base_url, self.api_key, self.log)
            config = uvicorn.Config(app, host=self.host, port=self.port, log_level="warning", access_log=False,
                                    timeout_graceful_shutdown=5)
            self._server = uvicorn.Server(config)
            self._thread = threading.Thread(target=self._server.run, name="course-serve", daemon=True)
            self._thread.start()
            deadline = time.monotonic() + 30
            while not self._server.started:
                if not self._thread.is_alive() or time.monotonic() > deadline:
                    raise BackendUnavailable(f"the front door did not start on {self.host}:{self.port}", fix="pick another --port")
                time.sleep(0.05)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Close the front door (waiting up to 5 s for running requests), then stop the engine."""
        if self._server is not None:
            self._server.should_exit = True
            if self._thread is not None:
                self._thread.join(timeout=15)
            self._server = None
        self.engine.stop()

    def __enter__(self) -> ClassServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_forever(server: ClassServer, on_ready: Callable[[ClassServer], None] | None = None) -> None:
    """Start ``server``, run until Ctrl-C or SIGTERM, then stop it cleanly (front door, then engine)."""
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.start()
        if on_ready is not None:
            on_ready(server)
        while not stop.wait(0.5):
            if server._thread is not None and not server._thread.is_alive():
                raise BackendUnavailable("the front door stopped by itself", fix="see the messages above")
            if server.engine.process is not None and server.engine.process.poll() is not None:
                raise BackendUnavailable(f"the model engine exited: {server.engine.log_tail()}", fix="see its log above")
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
