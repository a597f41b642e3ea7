"""Run untrusted Python (code a model wrote) in a separate, limited, and where Linux allows, isolated process.

Taught in lessons 09 (HumanEval pass@1 runs the model's code) and 10 (the agent's Python tool).

>>> run_python("print(6 * 7)").stdout        # doctest: +SKIP
'42\\n'
>>> run_python("while True: pass", timeout_s=1).timed_out   # doctest: +SKIP
True
>>> describe()                                # doctest: +SKIP
'sandbox isolation: bubblewrap (bubblewrap 0.8.0: own network, PID and mount namespaces; ...)'

**Every mode** (also the fallback) runs a fresh interpreter (``python -I``: no user site-packages, no
``PYTHON*`` variables) in a **new private temporary folder**, deleted afterwards, with an **empty
environment** except ``PATH`` and ``HOME``/``TMPDIR`` (= that folder), and on top:

* **resource limits** (``resource.setrlimit`` before the program starts): address space
  (``memory_mb``), CPU seconds, 64 MB per written file, number of processes (stops fork bombs, except
  for root, whom Linux exempts from that limit), no core dumps;
* **a wall-clock timeout** that kills the child's whole process group (sleepers and grandchildren too);
* **an audit-hook prelude** (PEP 578): ``socket`` refused, opening files for writing, deleting or
  renaming outside the private folder refused, starting programs (``subprocess``, ``os.system``,
  ``os.fork``...) refused. This catches accidents, but code that really tries sidesteps it
  (``ctypes`` calling libc's ``system()`` directly, for one).

**Isolation modes** (``isolation()`` says which one this machine uses, decided once by a real probe):

``"bubblewrap"`` (Debian/Ubuntu package ``bubblewrap``) and ``"unshare"`` (util-linux's ``unshare``
with user, mount, PID and network namespaces; how both work: :mod:`course_utils.sandbox.namespaces`) give the
kernel's own boundaries, which ``ctypes`` cannot talk its way around:

* **no network**: a network namespace of its own (only its own loopback, on which nothing listens), and a
  seccomp filter (built with libseccomp where it is installed) that refuses to create any socket at
  all, so no connection to this machine's servers either, not even through a Unix socket file;
* **a read-only view of the system**: every mount read-only; the private folder is the only writable
  place (``/dev`` is a minimal read-only copy: null, zero, random, urandom, tty);
* **hidden folders**, replaced by empty read-only ones: your home, ``/home``, ``/root``, ``/run``
  (service sockets), ``/tmp`` and ``/var/tmp`` (other programs' files), ``/mnt``, ``/media`` and **the course
  checkout** (your notebooks, notes and any ``.env`` with keys; the program needs none of it). The
  Python installation is mounted back read-only wherever it lives (e.g. ``~/.pyenv`` or ``.venv`` in the
  checkout), so its packages can be imported; the names of the folders leading to it show;
* **its own PID namespace**: it cannot see or signal your other processes; all capabilities dropped.

What isolation does **not** protect against: the rest of the file system stays *readable* (``/etc``,
``/usr``, other folders outside the list above); as root, root-owned files there (``/etc/shadow``) are
readable and the process-count limit does not apply (the timeout still kills everything); CPU and memory
are limited per process, not for the whole group; kernel bugs are outside its reach. A VM or gVisor is
the boundary for truly hostile code, as code-execution services use.

``"audit-hook only"``, the fallback (macOS, containers without user namespaces, bubblewrap
installed but failing): the list at the top only. The code runs as you and can read anything you can
read; ``ctypes`` can escape the hook. Enough for the accidents a benchmark meets, not a boundary.
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

from ..errors import BackendUnavailable, InvalidOption
from .namespaces import (
    FALLBACK,
    MODES,
    Isolation,
    child_env,
    command,
    describe,
    isolation,
    why_unavailable,
)

__all__ = ["FALLBACK", "MODES", "Isolation", "SandboxResult", "describe", "isolation", "run_python", "why_unavailable"]

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
    isolation: str = FALLBACK  # the mode it ran in: "bubblewrap", "unshare" or "audit-hook only"



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

_RUNNER = (
    "\n_src = open('main.py', encoding='utf-8').read()\n"
    "_g = {'__name__': '__main__', '__file__': 'main.py', '__builtins__': __builtins__}\n"
    "exec(compile(_src, 'main.py', 'exec'), _g)\n"
)


def _limits(memory_mb: int, cpu_s: int) -> None:
    """Runs in the child between fork and exec: set the resource limits (inherited by bwrap's child)."""
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
        try:
            running = len([p for p in os.listdir("/proc") if p.isdigit()])
        except OSError:
            running = 256
        cap(resource.RLIMIT_NPROC, running + 32)


def _resolve_mode(requested: str) -> str:
    """The mode to run in for run_python's ``isolation`` argument."""
    if requested not in ("auto", *MODES):
        raise InvalidOption(f"isolation={requested!r} is not a sandbox mode", fix=f"use 'auto' or one of {', '.join(MODES)}")
    if requested == "auto":
        return isolation().mode
    if requested == "audit-hook":
        return FALLBACK
    reason = why_unavailable(requested)
    if reason is not None:
        raise BackendUnavailable(f"sandbox isolation {requested!r} does not work here: {reason}",
                                 fix="use isolation='auto' (the best mode that works here)")
    return requested


# ----------------------------------------------------------------------------- running code
def run_python(code: str, *, timeout_s: float = 5.0, memory_mb: int = 512, stdin: str = "",
               isolation: str = "auto") -> SandboxResult:
    """Run ``code`` with a fresh ``python -I`` in a private temporary folder, with limits (see the module).

    ``ok`` is True when it exited with status 0 before ``timeout_s`` wall-clock seconds. The code
    gets at most ``memory_mb`` MB of address space (the interpreter itself needs ~30 MB; a
    ``MemoryError`` is the usual result of going over) and ``ceil(timeout_s) + 1`` CPU seconds.
    ``isolation``: "auto" (the best mode :func:`isolation` found), or force "bubblewrap", "unshare"
    or "audit-hook" (the fallback).
    """
    if not isinstance(code, str):
        raise InvalidOption(f"code must be a str, got {type(code).__name__}", fix="pass the program's source text")
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, int | float) or not timeout_s > 0:
        raise InvalidOption(f"timeout_s={timeout_s!r} must be a number of seconds > 0", fix="use e.g. timeout_s=5")
    if isinstance(memory_mb, bool) or not isinstance(memory_mb, int) or memory_mb < 64:
        raise InvalidOption(f"memory_mb={memory_mb!r} must be a whole number >= 64", fix="use e.g. memory_mb=512")
    if not isinstance(stdin, str):
        raise InvalidOption(f"stdin must be a str, got {type(stdin).__name__}", fix='pass text, e.g. stdin=""')
    mode = _resolve_mode(isolation)

    workdir = tempfile.mkdtemp(prefix="course-sandbox-")
    fds: tuple[int, ...] = ()
    try:
        with open(os.path.join(workdir, "main.py"), "w", encoding="utf-8") as f:
            f.write(code)
        argv, fds = command(mode, workdir, [sys.executable, "-I", "-B", "-c", _PRELUDE + _RUNNER])
        cpu_s = int(timeout_s) + 2
        started = time.perf_counter()
        proc = subprocess.Popen(
            argv, cwd=workdir, env=child_env(workdir), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, encoding="utf-8", errors="replace", start_new_session=True,
            pass_fds=fds, preexec_fn=lambda: _limits(memory_mb, cpu_s),  # runs in the child before exec
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
        for fd in fds:
            os.close(fd)
        shutil.rmtree(workdir, ignore_errors=True)
    returncode = None if timed_out else proc.returncode
    if returncode is not None and returncode < 0 and -returncode in (signal.SIGXCPU, signal.SIGKILL):
        err += f"\n[sandbox] killed by signal {signal.Signals(-returncode).name} (CPU time limit)"
    return SandboxResult(ok=not timed_out and returncode == 0, returncode=returncode, stdout=out[:MAX_OUTPUT_CHARS],
                         stderr=err[:MAX_OUTPUT_CHARS], timed_out=timed_out, seconds=seconds, isolation=mode)


def _kill_group(proc: subprocess.Popen) -> None:
    """Kill the child and everything it started (its own session/process group)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()

