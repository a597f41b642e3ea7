"""course_utils.sandbox: a limited subprocess for code a model wrote, isolated where Linux allows."""

from __future__ import annotations

import os
import socket
import sys
import uuid
from pathlib import Path

import pytest

from course_utils.errors import BackendUnavailable, CourseError
from course_utils.paths import project_root
from course_utils.sandbox import (
    FALLBACK,
    Isolation,
    SandboxResult,
    describe,
    isolation,
    run_python,
    why_unavailable,
)

ISOLATED = [pytest.param(mode, marks=pytest.mark.skipif(why_unavailable(mode) is not None, reason=f"{mode} isolation is not available here: {why_unavailable(mode)}"))
            for mode in ("bubblewrap", "unshare")]
EVERY_MODE = ["audit-hook", *ISOLATED]

# Code that goes around the audit hook the way a determined program would: libc through ctypes.
LIBC = "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"


def test_returns_stdout_and_exit_status():
    result = run_python("import sys\nprint(6 * 7)\nprint('oops', file=sys.stderr)")
    assert isinstance(result, SandboxResult)
    assert result.ok and result.returncode == 0 and not result.timed_out
    assert result.stdout == "42\n"
    assert "oops" in result.stderr
    assert result.isolation == isolation().mode
    failed = run_python("raise SystemExit(3)")
    assert not failed.ok and failed.returncode == 3
    crashed = run_python("1 / 0")
    assert not crashed.ok and "ZeroDivisionError" in crashed.stderr


def test_stdin_is_passed():
    assert run_python("print(input()[::-1])", stdin="abc\n").stdout == "cba\n"


def test_isolation_is_decided_once_and_described():
    info = isolation()
    assert isinstance(info, Isolation) and info is isolation()  # cached per process
    assert info.mode in ("bubblewrap", "unshare", FALLBACK) and info.reason
    assert info.isolated == (info.mode != FALLBACK)
    line = describe()
    assert line.startswith(f"sandbox isolation: {info.mode} (") and "\n" not in line
    if sys.platform.startswith("linux") and info.isolated:
        assert why_unavailable(info.mode) is None
    assert "not a sandbox mode" in (why_unavailable("docker") or "")


def test_forced_mode_is_reported():
    assert run_python("print(1)", isolation="audit-hook").isolation == FALLBACK
    with pytest.raises(CourseError, match="Fix:"):
        run_python("print(1)", isolation="docker")


def test_a_forced_mode_that_does_not_work_says_why(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")  # neither bwrap nor unshare can be found
    from course_utils.sandbox import namespaces

    namespaces._probe.cache_clear()
    try:
        assert "not installed" in why_unavailable("bubblewrap")
        with pytest.raises(BackendUnavailable, match="bwrap is not installed.*Fix:"):
            run_python("print(1)", isolation="bubblewrap")
    finally:
        namespaces._probe.cache_clear()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the namespace modes are Linux only")
def test_falls_back_when_the_tools_are_present_but_fail(tmp_path, monkeypatch):
    """Like a container without user namespaces: bwrap and unshare exist but die at start."""
    from course_utils.sandbox import namespaces

    for tool in ("bwrap", "unshare"):
        fake = tmp_path / tool
        fake.write_text(f"#!/bin/sh\necho '{tool}: setting up uid map: Permission denied' >&2\nexit 1\n")
        fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ.get('PATH', '/usr/bin:/bin')}")
    namespaces._probe.cache_clear()
    namespaces.isolation.cache_clear()
    try:
        info = isolation()
        assert info.mode == FALLBACK and not info.isolated
        assert "bwrap failed here: bwrap: setting up uid map: Permission denied" in info.reason
        assert "unshare failed here" in info.reason and "not a security boundary" in info.reason
        result = run_python("while True:\n    pass", timeout_s=1.0)
        assert result.isolation == FALLBACK and result.timed_out
    finally:
        namespaces._probe.cache_clear()
        namespaces.isolation.cache_clear()


def test_docstring_examples():
    import doctest

    from course_utils import sandbox
    from course_utils.sandbox import namespaces

    for module in (namespaces, sandbox):
        assert doctest.testmod(module).failed == 0


# ----------------------------------------------------------------------------- every mode
@pytest.mark.parametrize("mode", EVERY_MODE)
def test_kills_an_infinite_loop(mode):
    result = run_python("while True:\n    pass", timeout_s=1.0, isolation=mode)
    assert result.timed_out and not result.ok and result.returncode is None


def _alive_with_name(name: str) -> list[str]:
    """Host processes (not zombies) whose command name is ``name``."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        comm, state = stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2]
        if comm == name and state != "Z":
            found.append(pid)
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("mode", EVERY_MODE)
def test_timeout_kills_sleeping_code_and_its_children(mode):
    name = f"sbx{uuid.uuid4().hex[:10]}"
    code = LIBC + (f"libc.prctl(15, {name.encode()!r}, 0, 0, 0)\n"  # PR_SET_NAME: children inherit it
                   "for _ in range(5):\n    if libc.fork() == 0:\n        break\nimport time\ntime.sleep(60)\n")
    result = run_python(code, timeout_s=1.0, isolation=mode)
    assert result.timed_out and result.seconds < 15
    assert _alive_with_name(name) == []


@pytest.mark.parametrize("mode", EVERY_MODE)
def test_memory_limit(mode):
    result = run_python("x = bytearray(400 * 1024 * 1024)\nprint('allocated')", memory_mb=200, isolation=mode)
    assert not result.ok and "allocated" not in result.stdout
    assert "MemoryError" in result.stderr
    small = run_python("x = bytearray(20 * 1024 * 1024)\nprint('allocated')", memory_mb=200, isolation=mode)
    assert small.ok and small.stdout == "allocated\n", small.stderr


@pytest.mark.parametrize("mode", EVERY_MODE)
def test_fork_bomb_is_stopped(mode):
    result = run_python("import os\nwhile True:\n    os.fork()", timeout_s=5, isolation=mode)
    assert not result.ok and not result.timed_out and "os.fork is blocked" in result.stderr


@pytest.mark.parametrize("mode", EVERY_MODE)
def test_process_count_is_limited(mode):
    result = run_python("import resource\nprint(*resource.getrlimit(resource.RLIMIT_NPROC))", isolation=mode)
    soft, hard = map(int, result.stdout.split())
    running = len([p for p in os.listdir("/proc") if p.isdigit()])
    assert soft == hard and 0 < soft <= running + 200  # a real bound, with room for processes started meanwhile


@pytest.mark.skipif(not sys.platform.startswith("linux") or os.getuid() == 0,
                    reason="root is exempt from RLIMIT_NPROC (the audit hook and the timeout stop it there)")
@pytest.mark.parametrize("mode", EVERY_MODE)
def test_a_fork_bomb_past_the_audit_hook_hits_the_process_limit(mode):
    code = LIBC + ("import time\nfor n in range(5000):\n    pid = libc.fork()\n    if pid == 0:\n        time.sleep(30)\n"
                   "        libc._exit(0)\n    if pid < 0:\n        print('refused after', n)\n        break\n")
    result = run_python(code, timeout_s=3, isolation=mode)
    assert "refused after" in result.stdout


@pytest.mark.parametrize("mode", EVERY_MODE)
def test_blocks_network(mode):
    raw = run_python("import socket\ns = socket.socket()\ns.connect(('127.0.0.1', 9))", isolation=mode)
    assert not raw.ok and "blocked" in raw.stderr
    conn = run_python("import socket\nsocket.create_connection(('127.0.0.1', 9), timeout=1)", isolation=mode)
    assert not conn.ok and "blocked" in conn.stderr
    url = run_python("import urllib.request\nurllib.request.urlopen('http://127.0.0.1:9/', timeout=1)", isolation=mode)
    assert not url.ok and "blocked" in url.stderr


@pytest.mark.parametrize("mode", EVERY_MODE)
def test_blocks_python_level_writes_outside_its_folder(tmp_path, mode):
    target = tmp_path / "should_not_exist.txt"
    result = run_python(f"open({str(target)!r}, 'w').write('x')", isolation=mode)
    assert not result.ok and "blocked" in result.stderr
    assert not target.exists()
    victim = tmp_path / "keep.txt"
    victim.write_text("precious")
    removed = run_python(f"import os\nos.remove({str(victim)!r})", isolation=mode)
    assert not removed.ok and victim.read_text() == "precious"


@pytest.mark.parametrize("mode", EVERY_MODE)
def test_writes_inside_its_folder_work_and_the_folder_is_deleted(mode):
    code = "import os\nopen('note.txt', 'w').write('hi')\nprint(open('note.txt').read())\nprint(os.getcwd())"
    result = run_python(code, isolation=mode)
    assert result.ok, result.stderr
    text, folder = result.stdout.splitlines()
    assert text == "hi"
    assert not Path(folder).exists()


@pytest.mark.parametrize("mode", EVERY_MODE)
def test_blocks_starting_programs(mode):
    result = run_python("import subprocess\nsubprocess.run(['echo', 'hi'])", isolation=mode)
    assert not result.ok and "blocked" in result.stderr and "hi" not in result.stdout


def test_environment_is_empty(monkeypatch):
    monkeypatch.setenv("COURSE_SECRET_FOR_TEST", "do-not-leak")
    result = run_python("import os\nprint(sorted(os.environ))")
    assert "COURSE_SECRET_FOR_TEST" not in result.stdout
    assert "HOME" in result.stdout and os.environ["COURSE_SECRET_FOR_TEST"] == "do-not-leak"


def test_the_fallback_is_not_a_boundary(tmp_path):
    """What the isolation modes are for: ctypes walks past the audit hook (documented, shown here)."""
    target = tmp_path / "escaped.txt"
    result = run_python(LIBC + f"libc.system(b'echo out > {target}')", isolation="audit-hook")
    assert result.ok and target.read_text() == "out\n"


# ----------------------------------------------------------------------------- isolation only
@pytest.fixture
def visible_folder():
    """A real folder that is writable here and that the sandbox sees (read-only): inside the Python installation."""
    folder = Path(sys.prefix) / f"sandbox-test-{uuid.uuid4().hex[:8]}"
    try:
        folder.mkdir()
    except OSError as err:
        pytest.skip(f"cannot make a test folder in {sys.prefix}: {err}")
    yield folder
    for child in folder.iterdir():
        child.unlink()
    folder.rmdir()


@pytest.mark.parametrize("mode", ISOLATED)
def test_ctypes_escape_cannot_write_outside(mode, tmp_path, visible_folder):
    checkout_file = project_root() / f"sandbox-escape-{uuid.uuid4().hex[:8]}.txt"
    targets = [visible_folder / "escaped.txt", tmp_path / "escaped.txt", checkout_file]
    commands = "; ".join(f"echo out > {t}" for t in targets)
    code = LIBC + (f"print(libc.system({commands.encode()!r}))\n"
                   f"fd = libc.open({str(targets[0]).encode()!r}, os.O_WRONLY | os.O_CREAT, 0o644)\n"
                   "print(fd, os.strerror(ctypes.get_errno()))\n")
    try:
        result = run_python(code, isolation=mode)
        assert result.ok, result.stderr
        assert "Read-only file system" in result.stdout + result.stderr  # refused by the kernel, not the hook
        assert result.stdout.splitlines()[-1].startswith("-1 ")
        assert not any(t.exists() for t in targets)
    finally:
        checkout_file.unlink(missing_ok=True)


@pytest.mark.parametrize("mode", ISOLATED)
def test_home_and_checkout_are_hidden(mode):
    home = Path.home()
    secrets = [p for p in sorted(home.iterdir()) if p.is_file()][:3] if home.is_dir() else []
    checkout_file = project_root() / "pyproject.toml"
    code = ("import os\n"
            f"paths = {[str(p) for p in [*secrets, checkout_file]]!r}\n"
            "for path in paths:\n    print(path, os.path.exists(path))\n"
            f"print('home:', sorted(os.listdir({str(home)!r})) if os.path.isdir({str(home)!r}) else [])\n")
    result = run_python(code, isolation=mode)
    assert result.ok, result.stderr
    *lines, listing = result.stdout.splitlines()
    assert lines and all(line.endswith(" False") for line in lines), lines
    shown = eval(listing.removeprefix("home: "))  # noqa: S307 - our own printed list
    # only the folder leading to the mounted-back Python installation (e.g. .pyenv) may show
    python_parents = {Path(p).resolve().relative_to(home.resolve()).parts[0] for p in (sys.prefix, sys.base_prefix)
                      if Path(p).resolve().is_relative_to(home.resolve())}
    assert set(shown) <= python_parents
    assert all(not (home / name).is_file() for name in shown)


@pytest.mark.parametrize("mode", ISOLATED)
def test_no_connection_gets_out(mode, visible_folder):
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    server.setblocking(False)
    unix_path = visible_folder / "service.sock"
    unix_server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    unix_server.bind(str(unix_path))
    unix_server.listen(4)
    unix_server.setblocking(False)
    port = server.getsockname()[1]
    code = LIBC + f"""import struct
def inet(ip, port):
    return struct.pack("<H", 2) + struct.pack(">H", port) + bytes(map(int, ip.split("."))) + bytes(8)
def unix(path):
    return struct.pack("<H", 1) + path.encode() + bytes(108 - len(path))
for name, family, address in (("loopback", 2, inet("127.0.0.1", {port})), ("public", 2, inet("1.1.1.1", 443)),
                              ("unix", 1, unix({str(unix_path)!r}))):
    fd = libc.socket(family, 1, 0)
    if fd < 0:
        print(name, "socket refused:", os.strerror(ctypes.get_errno()))
        continue
    rc = libc.connect(fd, address, len(address))
    print(name, "connected" if rc == 0 else "connect refused: " + os.strerror(ctypes.get_errno()))
"""
    try:
        result = run_python(code, isolation=mode)
        assert result.ok, result.stderr
        lines = result.stdout.splitlines()
        assert len(lines) == 3 and all("refused" in line for line in lines), lines
        for listener in (server, unix_server):
            with pytest.raises(BlockingIOError):  # nobody knocked
                listener.accept()
    finally:
        server.close()
        unix_server.close()


@pytest.mark.parametrize("mode", ISOLATED)
def test_cannot_see_or_signal_other_processes(mode):
    result = run_python("import os\nprint(sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))\n"
                        f"os.kill({os.getpid()}, 0)", isolation=mode)
    pids = eval(result.stdout.splitlines()[0])  # noqa: S307 - our own printed list
    assert 0 < len(pids) < 5 < len([p for p in os.listdir("/proc") if p.isdigit()])  # its own few processes only
    if os.getpid() not in pids:  # (a pid number inside may by chance equal ours)
        assert not result.ok and "ProcessLookupError" in result.stderr


@pytest.mark.parametrize("kwargs", [{"code": b"print(1)"}, {"code": None}, {"code": "print(1)", "timeout_s": 0},
                                    {"code": "print(1)", "timeout_s": -1}, {"code": "print(1)", "memory_mb": 1},
                                    {"code": "print(1)", "stdin": 3}, {"code": "print(1)", "isolation": "vm"}])
def test_bad_input_is_a_course_error(kwargs):
    code = kwargs.pop("code")
    with pytest.raises(CourseError, match="Fix:"):
        run_python(code, **kwargs)
