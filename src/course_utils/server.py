"""Start and stop a real local OpenAI-compatible server (llama-cpp-python's ``llama_cpp.server``).

>>> with LlamaServer() as server:                       # doctest: +SKIP
...     llm = get_backend("openai", base_url=server.base_url)
...     print(llm.chat([{"role": "user", "content": "Hi"}]).text)

The server binds to 127.0.0.1 on a free port, is ready in about a second, and is stopped (terminate,
then kill) when the ``with`` block ends, even after an error.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .assets import resolve_gguf
from .config import settings
from .errors import BackendUnavailable


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LlamaServer:
    """``python -m llama_cpp.server`` as a managed child process."""

    def __init__(self, model: str | None = None, port: int | None = None, alias: str = "smollm2",
                 n_ctx: int | None = None, n_threads: int | None = None, extra_args: tuple[str, ...] = ()) -> None:
        cfg = settings()
        self.model_path = resolve_gguf(model)
        self.port = port or free_port()
        self.alias = alias
        self.args = [
            sys.executable, "-m", "llama_cpp.server", "--model", str(self.model_path), "--model_alias", alias,
            "--host", "127.0.0.1", "--port", str(self.port),
            "--n_ctx", str(n_ctx or cfg.n_ctx), "--n_threads", str(n_threads or cfg.n_threads),
            # by default a new request cuts off a running stream; queue it instead
            "--interrupt_requests", "false", *extra_args,
        ]
        self.process: subprocess.Popen | None = None
        self.log_path = Path(tempfile.mkstemp(prefix="llama-server-", suffix=".log")[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, timeout: float = 60.0) -> LlamaServer:
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BackendUnavailable(f"llama_cpp.server exited with code {self.process.returncode}: {self.log_tail()}", fix="install the server extras: pip install 'llama-cpp-python[server]'")
            if self._answers():
                return self
            time.sleep(0.2)
        self.stop()
        raise BackendUnavailable(f"llama_cpp.server did not answer within {timeout:.0f} s: {self.log_tail()}", fix="check the log above; try a smaller --n_ctx")

    def _answers(self) -> bool:
        import httpx

        try:  # llama_cpp.server has no /health: a model list means it is ready
            return httpx.get(f"{self.base_url}/models", timeout=1.0).status_code == 200
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

    def __enter__(self) -> LlamaServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
