"""Run untrusted Python (code a model wrote) in a separate, limited process.

>>> run_python("print(6 * 7)").stdout        # doctest: +SKIP
'42\\n'
>>> run_python("while True: pass", timeout_s=1).timed_out   # doctest: +SKIP
True

What :func:`run_python` does, and therefore what it protects against:

* **a fresh interpreter** (``python -I``: isolated mode, no user site-packages, no ``PYTHON*``
  variables, the script's folder not on ``sys.path``) in a **new temporary working folder** that is
  deleted afterwards, with an **empty environment** except ``PATH`` and ``HOME`` (= that folder):
  the code sees none of your settings or keys held in environment variables;
* **resource limits** set with ``resource.setrlimit`` in the child before it starts: address space
  (``memory_mb``), CPU seconds, size of any file it writes (64 MB), number of processes (where the
  system allows; stops fork bombs), no core dumps;
* **a wall-clock timeout**: the child runs in its own process group (session) and the whole group
  is killed when the time is up, so sleeping code and grandchildren die too;
* **a prelude** that runs before the code: ``socket.socket`` is replaced by a class that refuses to be created,
  ``socket.create_connection`` and ``socket.socketpair`` by functions that raise, and an audit hook
  (``sys.addaudithook``, PEP 578) refuses ``socket.connect``/``socket.bind``/``getaddrinfo``
  events, opening files for writing outside the temporary folder, deleting/renaming files outside
  it, and starting new programs (``subprocess``, ``os.system``, ``os.exec*``, ``os.fork``).

What it does **not** protect against (it is *not* a security boundary like a container, a VM or
seccomp): the code runs as your user and can still *read* any file you can read; audit hooks can be
sidestepped by code that really tries (``ctypes`` calling libc directly, writing to ``/proc/self/mem``);
there is no filesystem or network namespace, so a determined attacker can escape. It is enough to
stop the accidents a benchmark meets (an infinite loop, a huge allocation, a test that deletes
files, code that tries to fetch something). Run truly hostile code only inside a container or VM
(e.g. Docker with ``--network none --read-only``, gVisor, Firecracker), as code-execution services do.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

from .errors import InvalidOption

MAX_FILE_BYTES = 64 * 1024 * 1024  # largest file the code may write
MAX_OUTPUT_CHARS = 100_000  # stdout/stderr kept (a runaway print loop would fill memory)


@dataclass(frozen=True)
class SandboxResult:
    """What happened to one sandboxed run."""

    ok: bool  # exited with status 0 within the time limit
    returncode: int | None  # None when it was killed for time
    stdout: str
    stderr: str
    timed_out: bool
    seconds: float  # wall-clock time


# Runs inside the child before the learner's/model's code. Kept small and standard-library only.
_PRELUDE = r'''
import os as _os, sys as _sys, socket as _socket
_ROOT = _os.path.realpath(_os.getcwd())

def _refuse(*args, **kwargs):
    raise PermissionError("network access is blocked in the sandbox")

class _NoSocket(_socket.socket):  # a class, so that library classes can still subclass socket
    def __init__(self, *args, **kwargs):
        _refuse()

_socket.socket = _NoSocket
_socket.create_connection = _refuse
_socket.socketpair = _refuse

def _inside(path):
    try:
        path = _os.fsdecode(path)
    except TypeError:
        return False
    real = _os.path.realpath(path)
    return real == _ROOT or real.startswith(_ROOT + _os.sep) or real == "/dev/null"

_BLOCKED = {"socket.connect", "socket.bind", "socket.getaddrinfo", "socket.sendto", "subprocess.Popen",
            "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty", "pty.spawn"}
_PATH_EVENTS = {"os.remove", "os.rmdir", "os.rename", "os.mkdir", "os.chmod", "os.chown", "os.link",
                "os.symlink", "os.truncate", "os.utime", "shutil.rmtree"}

def _hook(event, args):
    if event in _BLOCKED:
        raise PermissionError(f"{event} is blocked in the sandbox")
    if event == "open" and args:
        path, mode, flags = args[0], args[1], args[2] if len(args) > 2 else 0
        if isinstance(path, int):
            return
        writing = (mode is not None and any(c in str(mode) for c in "wax+")) or (flags or 0) & (_os.O_WRONLY | _os.O_RDWR | _os.O_CREAT | _os.O_TRUNC | _os.O_APPEND)
        if writing and not _inside(path):
            raise PermissionError(f"writing {path!r} is blocked: only the sandbox folder is writable")
    elif event in _PATH_EVENTS and args:
        for path in args[:2]:
            if isinstance(path, (str, bytes, _os.PathLike)) and not _inside(path):
                raise PermissionError(f"{event} on {path!r} is blocked outside the sandbox folder")

_sys.addaudithook(_hook)
del _hook
'''


def _limits(memory_mb: int, cpu_s: int) -> None:
    """Runs in the child between fork and exec: set the resource limits."""
    import resource

    def cap(kind: int, value: int) -> None:
        try:
            soft, hard = resource.getrlimit(kind)
            value = value if hard == resource.RLIM_INFINITY else min(value, hard)
            resource.setrlimit(kind, (value, value))
        except (ValueError, OSError):  # not allowed here (e.g. some containers): keep the others
            pass

    cap(resource.RLIMIT_AS, memory_mb * 1024 * 1024)
    cap(resource.RLIMIT_CPU, cpu_s)
    cap(resource.RLIMIT_FSIZE, MAX_FILE_BYTES)
    cap(resource.RLIMIT_CORE, 0)
    if hasattr(resource, "RLIMIT_NPROC"):
        # counts all processes of this user, so leave room for the ones already running
        import os as _os

        try:
            running = len([p for p in _os.listdir("/proc") if p.isdigit()])
        except OSError:
            running = 256
        cap(resource.RLIMIT_NPROC, running + 32)


def run_python(code: str, *, timeout_s: float = 5.0, memory_mb: int = 512, stdin: str = "") -> SandboxResult:
    """Run ``code`` with a fresh ``python -I`` in a temporary folder, with limits (see the module).

    ``ok`` is True when it exited with status 0 before ``timeout_s`` wall-clock seconds. The code
    gets at most ``memory_mb`` MB of address space (the interpreter itself needs ~30 MB; a
    ``MemoryError`` is the usual result of going over) and ``ceil(timeout_s) + 1`` CPU seconds.
    """
    if not isinstance(code, str):
        raise InvalidOption(f"code must be a str, got {type(code).__name__}", fix="pass the program's source text")
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, int | float) or not timeout_s > 0:
        raise InvalidOption(f"timeout_s={timeout_s!r} must be a number of seconds > 0", fix="use e.g. timeout_s=5")
    if isinstance(memory_mb, bool) or not isinstance(memory_mb, int) or memory_mb < 64:
        raise InvalidOption(f"memory_mb={memory_mb!r} must be a whole number >= 64", fix="use e.g. memory_mb=512")
    if not isinstance(stdin, str):
        raise InvalidOption(f"stdin must be a str, got {type(stdin).__name__}", fix='pass text, e.g. stdin=""')

    workdir = tempfile.mkdtemp(prefix="course-sandbox-")
    try:
        script = os.path.join(workdir, "main.py")
        with open(script, "w", encoding="utf-8") as f:
            f.write(code)
        runner = _PRELUDE + (
            "\n_src = open('main.py', encoding='utf-8').read()\n"
            "_g = {'__name__': '__main__', '__file__': 'main.py', '__builtins__': __builtins__}\n"
            "exec(compile(_src, 'main.py', 'exec'), _g)\n"
        )
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": workdir, "PYTHONIOENCODING": "utf-8"}
        cpu_s = int(timeout_s) + 2
        started = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-I", "-B", "-c", runner], cwd=workdir, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, encoding="utf-8", errors="replace", start_new_session=True,
            preexec_fn=lambda: _limits(memory_mb, cpu_s),  # runs in the child before exec
        )
        timed_out = False
        try:
            out, err = proc.communicate(stdin, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(proc)
            out, err = proc.communicate()
        seconds = time.perf_counter() - started
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    returncode = None if timed_out else proc.returncode
    if returncode is not None and returncode < 0 and -returncode in (signal.SIGXCPU, signal.SIGKILL):
        err += f"\n[sandbox] killed by signal {signal.Signals(-returncode).name} (CPU time limit)"
    return SandboxResult(ok=not timed_out and returncode == 0, returncode=returncode, stdout=out[:MAX_OUTPUT_CHARS],
                         stderr=err[:MAX_OUTPUT_CHARS], timed_out=timed_out, seconds=seconds)


def _kill_group(proc: subprocess.Popen) -> None:
    """Kill the child and everything it started (its own session/process group)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
