"""Start and stop a real local OpenAI-compatible server: llama-cpp-python's ``llama_cpp.server``, or
llama.cpp's own C++ ``llama-server`` (parallel slots with continuous batching; ``course serve`` uses it).

>>> with LlamaServer() as server:                       # doctest: +SKIP
...     llm = get_backend("openai", base_url=server.base_url)
...     print(llm.chat([{"role": "user", "content": "Hi"}]).text)

The server binds to 127.0.0.1 on a free port, is ready in about a second, and is stopped (terminate,
then kill) when the ``with`` block ends, even after an error. With ``api_key`` it refuses requests
without that key; the key reaches the child through its environment, not its command line (which any
user of the machine can read with ``ps``).

``llama-server`` is not on PyPI: ``bash tools/build_llama_server.sh`` compiles it once from the llama.cpp
sources that llama-cpp-python vendors, into the course cache (:func:`llama_server_binary` finds it).

Taught in: lesson 04 (a real server), used by ``course serve`` (a class on one machine).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .assets import resolve_gguf
from .config import settings
from .errors import BackendUnavailable

LLAMA_SERVER_BUILD = "bash tools/build_llama_server.sh"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ManagedServer:
    """An OpenAI-compatible server as a child process on 127.0.0.1: started, polled until its model list
    answers, stopped (terminate, then kill). Subclasses say which command to run."""

    label = "server"
    fix = "check the log above"
    key_variable = "API_KEY"  # the environment variable the child reads its API key from

    def __init__(self, args: list[str], port: int, api_key: str | None = None, env: dict[str, str] | None = None) -> None:
        self.args = args
        self.port = port
        self.api_key = api_key
        self.env = {**os.environ, **(env or {})}
        if api_key:
            self.env[self.key_variable] = api_key
        self.process: subprocess.Popen | None = None
        self.log_path = Path(tempfile.mkstemp(prefix=f"{self.label}-", suffix=".log")[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, timeout: float = 60.0) -> ManagedServer:
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT, env=self.env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BackendUnavailable(f"{self.label} exited with code {self.process.returncode}: {self.log_tail()}", fix=self.fix)
            if self._answers():
                return self
            time.sleep(0.2)
        self.stop()
        raise BackendUnavailable(f"{self.label} did not answer within {timeout:.0f} s: {self.log_tail()}", fix="check the log above; try a smaller context")

    def _answers(self) -> bool:
        import httpx

        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        try:  # llama_cpp.server has no /health: a model list means it is ready
            return httpx.get(f"{self.base_url}/models", headers=headers, timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    def log_tail(self, lines: int = 5) -> str:
        text = self.log_path.read_text(errors="replace").strip().splitlines() if self.log_path.exists() else []
        return " | ".join(text[-lines:])

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def __enter__(self) -> ManagedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class LlamaServer(ManagedServer):
    """``python -m llama_cpp.server`` (llama-cpp-python): one request at a time."""

    label = "llama_cpp.server"
    fix = "install the server extras: pip install 'llama-cpp-python[server]'"

    def __init__(self, model: str | None = None, port: int | None = None, alias: str = "smollm2",
                 n_ctx: int | None = None, n_threads: int | None = None, extra_args: tuple[str, ...] = (),
                 api_key: str | None = None) -> None:
        cfg = settings()
        self.model_path = resolve_gguf(model)
        self.alias = alias
        port = port or free_port()
        args = [
            sys.executable, "-m", "llama_cpp.server", "--model", str(self.model_path), "--model_alias", alias,
            "--host", "127.0.0.1", "--port", str(port),
            "--n_ctx", str(n_ctx or cfg.n_ctx), "--n_threads", str(n_threads or cfg.n_threads),
            # by default a new request cuts off a running stream; queue it instead
            "--interrupt_requests", "false", *extra_args,
        ]
        super().__init__(args, port, api_key)


def llama_server_binary() -> Path | None:
    """The ``llama-server`` that tools/build_llama_server.sh built for the installed llama-cpp-python, if any."""
    try:
        import llama_cpp

        version = llama_cpp.__version__
    except ImportError:
        return None
    path = settings().cache_dir / "llama-server" / version / "llama-server"
    return path if path.is_file() and os.access(path, os.X_OK) else None


class LlamaCppServer(ManagedServer):
    """llama.cpp's own ``llama-server``: ``parallel`` slots decoded together (continuous batching).

    Each slot gets a context of ``n_ctx`` tokens (the KV cache holds ``parallel × n_ctx``).
    """

    label = "llama-server"
    fix = f"build it once with `{LLAMA_SERVER_BUILD}` (6-10 min), or use --engine llama-cpp-python"
    key_variable = "LLAMA_API_KEY"

    def __init__(self, model: str | None = None, port: int | None = None, alias: str = "smollm2", parallel: int = 4,
                 n_ctx: int | None = None, n_threads: int | None = None, extra_args: tuple[str, ...] = (),
                 api_key: str | None = None, binary: str | Path | None = None) -> None:
        cfg = settings()
        found = Path(binary) if binary else llama_server_binary()
        if found is None or not found.is_file():
            raise BackendUnavailable("llama.cpp's llama-server is not built on this machine", fix=self.fix)
        if isinstance(parallel, bool) or not isinstance(parallel, int) or not 1 <= parallel <= 64:
            from .errors import InvalidOption

            raise InvalidOption(f"parallel must be a whole number from 1 to 64, got {parallel!r}", fix="one slot per learner typing at once, e.g. 8")
        self.model_path = resolve_gguf(model)
        self.alias, self.parallel = alias, parallel
        port = port or free_port()
        args = [
            str(found), "--model", str(self.model_path), "--alias", alias, "--host", "127.0.0.1", "--port", str(port),
            "--parallel", str(parallel), "--ctx-size", str((n_ctx or cfg.n_ctx) * parallel), "--cont-batching",
            "--threads", str(n_threads or cfg.n_threads), "--no-webui", *extra_args,
        ]
        super().__init__(args, port, api_key)
