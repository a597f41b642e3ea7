"""Nothing the lessons do needs the network: lessons run inside a network namespace that has only loopback.

Lesson 07 (Chroma, LangChain's Chroma and HuggingFace wrappers, MiniLM) and lesson 11 (Gradio, served and
queried on 127.0.0.1, with a Chroma store) run with plain papermill under ``unshare --net`` (as root) or
``unshare --user --map-root-user --net`` (as anyone else), in a PID namespace of its own: a fresh network namespace whose only interface
is ``lo``, brought up so that the Jupyter kernel's ZeroMQ sockets and Gradio's local server work. Any
attempt to reach another machine fails there, so a lesson that needed one would fail. Where ``strace`` is
installed, every ``connect()`` of every process is also recorded, and the test checks that none was even
attempted to an address outside this machine.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LESSONS = ["07_rag", "11_app"]
LESSON_TIMEOUT_S = 840  # ~1-2 min each on a quiet 2-core machine; a busy one is many times slower
INET = re.compile(r'sa_family=AF_INET6?, .*?(?:inet_addr\("([^"]+)"\)|inet_pton\(AF_INET6, "([^"]+)")')


def _namespace_prefix() -> list[str]:
    """``unshare`` for a new network namespace (a user namespace too where we are not root), and a PID
    namespace, so that killing ``unshare`` ends everything inside, papermill's kernel included."""
    user = [] if os.geteuid() == 0 else ["--user", "--map-root-user"]
    return ["unshare", *user, "--net", "--pid", "--fork", "--kill-child", "--mount-proc"]


@cache
def _why_no_namespace() -> str | None:
    if not sys.platform.startswith("linux"):
        return "network namespaces are Linux only"
    for tool in ("unshare", "ip"):
        if not shutil.which(tool):
            return f"{tool} is not installed (util-linux / iproute2)"
    try:
        done = subprocess.run([*_namespace_prefix(), "sh", "-c", "ip link set lo up && ip -o link show"],
                              capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as err:
        return f"unshare failed: {err}"
    if done.returncode != 0:
        return f"cannot make a network namespace here: {done.stderr.strip()[-200:]}"
    return None


def _strace_prefix(trace: Path) -> list[str]:
    """Record every connect() of every process, where strace is installed (seccomp-bpf keeps it cheap)."""
    if not shutil.which("strace"):
        return []
    return ["strace", "-f", "-qq", "--seccomp-bpf", "-e", "trace=connect", "-o", str(trace)]


def _outside_addresses(trace: Path) -> list[str]:
    """Every IPv4/IPv6 address in a connect() of the trace that is not this machine's loopback."""
    found = []
    for line in trace.read_text(errors="replace").splitlines():
        match = INET.search(line)
        if match:
            address = match.group(1) or match.group(2)
            if not (address.startswith("127.") or address in ("::1", "::ffff:127.0.0.1", "0.0.0.0", "::")):
                found.append(address)
    return found


def _run_group(command: list[str], env: dict[str, str], cwd: Path, timeout_s: float) -> tuple[int | None, str]:
    """Run ``command`` in its own process group; on timeout kill the group (the PID namespace ends with it)."""
    proc = subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        _, stderr = proc.communicate(timeout=timeout_s)
        return proc.returncode, stderr
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        _, stderr = proc.communicate()
        return None, f"timed out after {timeout_s:.0f} s\n{stderr}"


def test_the_namespace_has_only_loopback():
    if reason := _why_no_namespace():
        pytest.skip(reason)
    done = subprocess.run([*_namespace_prefix(), "sh", "-c", "ip link set lo up && ip -o link show"],
                          capture_output=True, text=True, timeout=30, check=True)
    interfaces = {line.split(":")[1].strip().split("@")[0] for line in done.stdout.splitlines() if line[:1].isdigit()}
    assert interfaces == {"lo"}
    probe = "import socket\ntry:\n    socket.create_connection(('1.1.1.1', 443), timeout=3)\n    print('connected')\nexcept OSError as e:\n    print('refused', e.errno)"
    reach = subprocess.run([*_namespace_prefix(), sys.executable, "-c", probe], capture_output=True, text=True, timeout=30)
    assert reach.stdout.startswith("refused"), reach.stdout + reach.stderr


@pytest.mark.parametrize("lesson", LESSONS)
def test_lesson_runs_with_only_loopback(lesson, tmp_path):
    if reason := _why_no_namespace():
        pytest.skip(reason)
    notebook = ROOT / "notebooks" / f"{lesson}.ipynb"
    trace = tmp_path / "connect.trace"
    papermill = [sys.executable, "-m", "papermill", str(notebook), str(tmp_path / f"{lesson}.ipynb"),
                 "--kernel", "python3", "--cwd", str(notebook.parent), "--no-progress-bar"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false", "ANONYMIZED_TELEMETRY": "False", "PYTHONPATH": str(ROOT / "src")}
    command = [*_namespace_prefix(), "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *_strace_prefix(trace), *papermill]
    returncode, stderr = _run_group(command, env=env, cwd=tmp_path, timeout_s=LESSON_TIMEOUT_S)
    assert returncode == 0, f"{lesson} failed with only loopback:\n{stderr[-3000:]}"
    if trace.exists():
        assert _outside_addresses(trace) == [], f"{lesson} tried to reach other machines"
        assert "127.0.0.1" in trace.read_text()  # the trace really saw the kernel's own loopback connections


def test_outside_addresses_are_found_in_a_trace(tmp_path):
    """The trace reader itself: loopback and Unix sockets pass, anything else is reported."""
    trace = tmp_path / "t.trace"
    trace.write_text(
        '12 connect(5, {sa_family=AF_INET, sin_port=htons(443), sin_addr=inet_addr("93.184.216.34")}, 16) = -1 ENETUNREACH\n'
        '12 connect(6, {sa_family=AF_INET, sin_port=htons(5555), sin_addr=inet_addr("127.0.0.1")}, 16) = 0\n'
        '13 connect(7, {sa_family=AF_INET6, sin6_port=htons(80), sin6_flowinfo=htonl(0), inet_pton(AF_INET6, "2606:4700::1111", &sin6_addr), sin6_scope_id=0}, 28) = -1\n'
        '13 connect(8, {sa_family=AF_INET6, sin6_port=htons(80), sin6_flowinfo=htonl(0), inet_pton(AF_INET6, "::1", &sin6_addr), sin6_scope_id=0}, 28) = 0\n'
        '14 connect(9, {sa_family=AF_UNIX, sun_path="/var/run/nscd/socket"}, 110) = -1 ENOENT\n')
    assert _outside_addresses(trace) == ["93.184.216.34", "2606:4700::1111"]
