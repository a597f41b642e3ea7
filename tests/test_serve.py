"""`course serve`: the real command in a child process, the real model behind it, real HTTP clients.

Checked: requests without the class key are refused (and never reach the engine), a learner's
notebook settings (COURSE_BACKEND=openai, OPENAI_BASE_URL, OPENAI_API_KEY) work through it, each
request is logged with its latency and tokens, the server listens only on the interface it was given,
and SIGTERM / Ctrl-C stop it cleanly: exit code 0, engine gone, port free.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psutil
import pytest

from course_utils.errors import BackendUnavailable, InvalidOption
from course_utils.serve import ClassServer, RequestLog, TokenCounter, check_port_free, key_ok
from course_utils.server import free_port, llama_server_binary

ROOT = Path(__file__).resolve().parents[1]
KEY = "course-test-key-0123"
QUESTION = [{"role": "user", "content": "What is the capital of Germany?"}]


class Served:
    """A `course serve` child process and what it printed."""

    def __init__(self, *args: str, log: Path | None = None, host: str = "127.0.0.1") -> None:
        self.port = free_port()
        self.host = host
        self.log = log
        command = [sys.executable, "-m", "course_utils.cli", "serve", "--host", host, "--port", str(self.port), *args]
        if log is not None:
            command += ["--log", str(log)]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_ready(self, timeout: float = 300) -> Served:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(line.startswith("Serving on") for line in self.lines):
                return self
            if self.process.poll() is not None:
                self._reader.join(5)
                pytest.fail(f"course serve exited with {self.process.returncode}:\n{self.output}")
            time.sleep(0.2)
        self.process.kill()
        pytest.fail(f"course serve was not ready within {timeout} s:\n{self.output}")

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/v1"

    def engine(self) -> psutil.Process:
        children = psutil.Process(self.process.pid).children(recursive=True)
        assert children, "course serve has no engine child process"
        return children[0]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
            self._reader.join(5)


def _port_is_free(host: str, port: int) -> bool:
    try:
        check_port_free(host, port)
        return True
    except BackendUnavailable:
        return False


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    log = tmp_path_factory.mktemp("serve") / "requests.jsonl"
    server = Served("--engine", "llama-cpp-python", "--api-key", KEY, log=log).wait_ready()
    try:
        yield server
    finally:
        server.stop()


# ----------------------------------------------------------------------------- small parts
def test_key_check_and_token_counting():
    assert key_ok(f"Bearer {KEY}", KEY)
    assert not key_ok(f"Bearer {KEY}x", KEY) and not key_ok(KEY, KEY) and not key_ok("", KEY) and not key_ok(None, KEY)
    body = TokenCounter()
    body.feed(b'{"choices": [{"message": {"content": "Berlin"}}], "usage": {"prompt_')
    body.feed(b'tokens": 37, "completion_tokens": 7}}')
    body.finish()
    assert (body.prompt_tokens, body.completion_tokens, body.streamed) == (37, 7, False)
    stream = TokenCounter(streamed=True)
    for part in (b'data: {"choices":[{"delta":{"role":"assistant"}}]}\r\n\r\ndata: {"choices":[{"delta":{"content":"Ber', b'lin"}}]}\r\n\r\n',
                 b'data: {"choices":[{"delta":{"content":"."}}]}\r\n\r\ndata: {"choices":[],"usage":{"prompt_tokens":37,"completion_tokens":3}}\r\n\r\n'):
        stream.feed(part)
    stream.finish()
    assert (stream.prompt_tokens, stream.completion_tokens) == (37, 3)  # the stream's own usage wins over counting
    assert stream.first_token_at is not None


def test_bad_settings_are_refused_with_a_fix(tmp_path):
    with pytest.raises(InvalidOption, match="API key"):
        ClassServer(api_key="")
    with pytest.raises(InvalidOption, match="engine"):
        ClassServer("vllm-gpu", api_key=KEY)
    with pytest.raises(InvalidOption, match="port"):
        ClassServer(api_key=KEY, port=70000)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(BackendUnavailable, match="Fix: pick another --port"):
            check_port_free("127.0.0.1", port)
        done = subprocess.run([sys.executable, "-m", "course_utils.cli", "serve", "--engine", "llama-cpp-python", "--port", str(port), "--api-key", KEY],
                              capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 2 and "cannot listen on 127.0.0.1" in done.stderr and "Fix:" in done.stderr


def test_request_log_line():
    log = RequestLog(stream=None)
    log.write({"method": "POST", "path": "/v1/chat/completions", "client": "10.0.0.7", "status": 200, "latency_s": 1.5,
               "ttft_s": 0.25, "prompt_tokens": 37, "completion_tokens": 7})
    line = RequestLog.line(log.entries[0])
    assert "200 POST /v1/chat/completions 1.50 s (first token 0.25 s)  7 tokens out, 37 in  from 10.0.0.7" in line


# ----------------------------------------------------------------------------- the real server
def test_requests_without_the_key_are_refused(served):
    assert httpx.get(f"{served.base_url}/models", timeout=30).status_code == 401
    wrong = httpx.post(f"{served.base_url}/chat/completions", headers={"Authorization": "Bearer guess"},
                       json={"model": "smollm2", "messages": QUESTION, "max_tokens": 4}, timeout=30)
    assert wrong.status_code == 401 and "API key" in wrong.json()["error"]["message"]
    right = httpx.get(f"{served.base_url}/models", headers={"Authorization": f"Bearer {KEY}"}, timeout=30)
    assert right.status_code == 200 and right.json()["data"][0]["id"] == "smollm2"
    # the engine behind the front door checks the key too: loopback is no way around it
    engine_port = next(c.laddr.port for c in served.engine().net_connections("tcp") if c.status == psutil.CONN_LISTEN)
    assert httpx.get(f"http://127.0.0.1:{engine_port}/v1/models", timeout=30).status_code == 401


def test_a_learners_notebook_settings_work_through_it(served, monkeypatch):
    from course_utils import get_backend

    monkeypatch.setenv("COURSE_BACKEND", "openai")
    monkeypatch.setenv("OPENAI_BASE_URL", served.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with get_backend("auto") as llm:  # what a lesson does with those settings (it streams)
        assert llm.name == "openai"
        reply = llm.chat(QUESTION, max_tokens=16, temperature=0.0)
        assert "Berlin" in reply.text
    plain = httpx.post(f"{served.base_url}/chat/completions", headers={"Authorization": f"Bearer {KEY}"}, timeout=300,
                       json={"model": "smollm2", "messages": QUESTION, "max_tokens": 16, "temperature": 0}).json()
    assert "Berlin" in plain["choices"][0]["message"]["content"]

    entries = [json.loads(line) for line in served.log.read_text().splitlines()]
    chats = [e for e in entries if e["path"] == "/v1/chat/completions" and e["status"] == 200]
    streamed, whole = chats[-2], chats[-1]
    assert streamed["stream"] is True and streamed["completion_tokens"] == reply.completion_tokens
    assert 0 < streamed["ttft_s"] <= streamed["latency_s"]
    assert whole["stream"] is False and whole["ttft_s"] is None and whole["latency_s"] > 0
    assert (whole["prompt_tokens"], whole["completion_tokens"]) == (plain["usage"]["prompt_tokens"], plain["usage"]["completion_tokens"])
    assert any(e["status"] == 401 for e in entries)
    assert "200 POST /v1/chat/completions" in served.output  # the same lines on the terminal


def test_sigterm_stops_it_cleanly(served):
    engine = served.engine()
    assert served.stop(signal.SIGTERM) == 0
    assert "Stopped" in served.output
    assert not engine.is_running() or engine.status() == psutil.STATUS_ZOMBIE
    assert _port_is_free("127.0.0.1", served.port)


@pytest.mark.skipif(not socket.has_ipv6, reason="no IPv6 on this machine")
def test_ctrl_c_stops_it_and_it_listens_only_where_told():
    try:
        check_port_free("::1", 0)
    except BackendUnavailable:
        pytest.skip("no IPv6 loopback address")
    server = Served("--engine", "llama-cpp-python", "--api-key", KEY, host="::1").wait_ready()
    try:
        ok = httpx.get(f"{server.base_url}/models", headers={"Authorization": f"Bearer {KEY}"}, timeout=30)
        assert ok.status_code == 200
        with pytest.raises(httpx.ConnectError):  # same port, another interface: nothing listens there
            httpx.get(f"http://127.0.0.1:{server.port}/v1/models", timeout=10)
        engine = server.engine()
    finally:
        code = server.stop(signal.SIGINT)
    assert code == 0
    assert not engine.is_running() or engine.status() == psutil.STATUS_ZOMBIE
    assert _port_is_free("::1", server.port)


@pytest.mark.skipif(llama_server_binary() is None, reason="llama-server is not built (bash tools/build_llama_server.sh)")
def test_llama_server_engine_answers_learners_at_once(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    server = Served("--engine", "llama-server", "--parallel", "4", "--api-key", KEY, log=tmp_path / "log.jsonl").wait_ready()
    try:
        def ask(i: int) -> httpx.Response:
            return httpx.post(f"{server.base_url}/chat/completions", headers={"Authorization": f"Bearer {KEY}"}, timeout=300,
                              json={"model": "smollm2", "messages": QUESTION, "max_tokens": 12, "temperature": 0})

        with ThreadPoolExecutor(4) as pool:
            replies = list(pool.map(ask, range(4)))
        assert [r.status_code for r in replies] == [200] * 4
        assert all("Berlin" in r.json()["choices"][0]["message"]["content"] for r in replies)
        assert httpx.get(f"{server.base_url}/models", timeout=30).status_code == 401
    finally:
        assert server.stop() == 0
    logged = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert sum(1 for e in logged if e["path"] == "/v1/chat/completions" and e["status"] == 200 and e["completion_tokens"] > 0) == 4
