"""How :mod:`course_utils.sandbox` confines a child process with Linux namespaces, and which way works here.

Taught with the sandbox in lessons 09 and 10 (they print :func:`describe`). Two ways, tried in this order
by :func:`isolation`, each checked by really running a probe in it (once per process):

* ``"bubblewrap"``: Debian's ``bwrap`` builds the view from a command line (``--ro-bind / /``, a
  ``--tmpfs`` over each hidden folder, the Python installation and the private folder bound back,
  ``--unshare-all``, ``--cap-drop ALL``, ``--seccomp FD``);
* ``"unshare"``: util-linux's ``unshare`` makes user, mount, PID, network, IPC and UTS namespaces, and a
  short Python step inside does what bwrap would: tmpfs mounts, bind mounts, every mount read-only
  (``mount_setattr``, Linux 5.12+), capabilities dropped, ``no_new_privs``, the seccomp filter, then ``exec``.

Both hide the same folders (:func:`hidden_folders`) and install the same seccomp filter, built by
libseccomp (:func:`seccomp_program`): ``socket()`` and ``io_uring_setup()`` fail with ``EACCES``.

>>> view = plan("/nonexistent/course-sandbox-x")
>>> view["private"], "/" in view["hide"]           # the one writable folder; never hide everything
(['/nonexistent/course-sandbox-x'], False)
>>> why_unavailable("docker")
"'docker' is not a sandbox mode (use one of bubblewrap, unshare, audit-hook)"
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass

MODES = ("bubblewrap", "unshare", "audit-hook")
FALLBACK = "audit-hook only"


@dataclass(frozen=True)
class Isolation:
    """The isolation mode in use and, in one line, why."""

    mode: str  # "bubblewrap", "unshare" or "audit-hook only"
    reason: str

    @property
    def isolated(self) -> bool:
        return self.mode != FALLBACK


# ----------------------------------------------------------------------------- what the sandbox sees
def _under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _outermost(paths: set[str]) -> list[str]:
    """Drop paths inside other paths of the set (mounting over a parent hides its children anyway)."""
    ordered = sorted(paths, key=len)
    kept: list[str] = []
    for p in ordered:
        if not any(_under(p, k) for k in kept):
            kept.append(p)
    return sorted(kept)


def _interpreter_folders() -> set[str]:
    """Folders the child's Python needs: its prefixes and the folders of its executable (symlinks resolved)."""
    found = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
             os.path.dirname(sys.executable), os.path.dirname(os.path.realpath(sys.executable))}
    return {os.path.realpath(p) for p in found if p and os.path.isdir(p)}


def _checkout() -> str | None:
    from ..paths import project_root

    try:
        return str(project_root())
    except Exception:  # noqa: BLE001 - installed without a checkout: nothing to hide
        return None


def hidden_folders() -> list[str]:
    """Folders replaced by empty read-only ones (see the module docstring), never ``/``."""
    import pwd

    homes = {os.path.expanduser("~")}
    with contextlib.suppress(KeyError):
        homes.add(pwd.getpwuid(os.getuid()).pw_dir)
    wanted = {*homes, "/home", "/root", "/run", "/var/run", "/tmp", "/var/tmp", "/mnt", "/media", _checkout() or "/"}
    real = {os.path.realpath(p) for p in wanted if p and os.path.isdir(p)}
    return _outermost({p for p in real if p != "/"})


def plan(workdir: str) -> dict[str, list[str]]:
    """What to hide, what to mount back read-only (the interpreter), and the one writable folder."""
    hide = hidden_folders()
    rebind = _outermost({p for p in _interpreter_folders() if any(_under(p, h) for h in hide)})
    return {"hide": hide, "rebind": rebind, "private": [os.path.realpath(workdir)]}


# ----------------------------------------------------------------------------- seccomp: no sockets
@functools.cache
def seccomp_program() -> bytes | None:
    """A seccomp BPF program (from libseccomp) that refuses ``socket()`` and ``io_uring_setup()``.

    ``socketpair()`` (a connected pair inside the process) stays allowed. None where libseccomp is missing.
    """
    import ctypes
    import ctypes.util
    import errno

    try:
        lib = ctypes.CDLL(ctypes.util.find_library("seccomp") or "libseccomp.so.2")
    except OSError:
        return None
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_rule_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    allow, refuse = 0x7FFF0000, 0x00050000 | errno.EACCES  # SCMP_ACT_ALLOW, SCMP_ACT_ERRNO(EACCES)
    ctx = lib.seccomp_init(allow)
    if not ctx:
        return None
    fd = os.memfd_create("course-seccomp")
    try:
        for name in (b"socket", b"io_uring_setup"):
            number = lib.seccomp_syscall_resolve_name(name)
            if number < 0 or lib.seccomp_rule_add(ctx, refuse, number, 0) != 0:
                return None
        if lib.seccomp_export_bpf(ctx, fd) != 0:
            return None
        os.lseek(fd, 0, os.SEEK_SET)
        return os.read(fd, 1 << 16)
    finally:
        lib.seccomp_release(ctx)
        os.close(fd)


def _program_fd(program: bytes) -> int:
    fd = os.memfd_create("course-seccomp")
    os.write(fd, program)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


# ----------------------------------------------------------------------------- the two command lines
def _bwrap_argv(view: dict[str, list[str]], seccomp_fd: int | None) -> list[str]:
    argv = [shutil.which("bwrap") or "bwrap", "--unshare-all", "--die-with-parent", "--cap-drop", "ALL",
            "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    for folder in view["hide"]:
        argv += ["--tmpfs", folder]
    for folder in view["rebind"]:
        argv += ["--ro-bind", folder, folder]
    argv += ["--bind", view["private"][0], view["private"][0]]
    for folder in [*view["hide"], "/dev"]:
        argv += ["--remount-ro", folder]
    if seccomp_fd is not None:
        argv += ["--seccomp", str(seccomp_fd)]
    return argv + ["--chdir", view["private"][0], "--"]


# Runs as root of fresh user + mount + PID + network namespaces (util-linux `unshare`), before the real
# interpreter: hide folders, mount the interpreter and the private folder back, make every mount read-only
# (mount_setattr, Linux 5.12+), drop all capabilities, install the seccomp filter, then exec.
_NS_SETUP = r'''
import ctypes, json, os, sys
spec = json.loads(sys.argv[1])
libc = ctypes.CDLL(None, use_errno=True)
libc.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_char_p]
libc.syscall.restype = ctypes.c_long
def check(rc, what):
    if rc != 0:
        err = ctypes.get_errno()
        raise SystemExit(f"sandbox setup: {what}: {os.strerror(err)}")
def mount(src, dst, fstype, flags, data=None):
    enc = lambda s: s.encode() if s else None
    check(libc.mount(enc(src), enc(dst), enc(fstype), flags, enc(data)), f"mount {dst}")
class MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64), ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]
def read_only(path, on, recursive):
    attr = MountAttr(1 if on else 0, 0 if on else 1, 0, 0)  # MOUNT_ATTR_RDONLY
    check(libc.syscall(442, -100, path.encode(), 0x8000 if recursive else 0, ctypes.byref(attr), ctypes.sizeof(attr)), f"read-only {path}")
NOSUID, NODEV, BIND, REC = 2, 4, 4096, 16384
devices = ["/dev/" + d for d in ("null", "zero", "full", "random", "urandom", "tty") if os.path.exists("/dev/" + d)]
keep = {p: os.open(p, os.O_PATH) for p in spec["rebind"] + spec["private"] + devices}
for folder in spec["hide"] + ["/dev"]:
    mount("tmpfs", folder, "tmpfs", NOSUID | NODEV, "mode=0755,size=1m")
for path, fd in keep.items():
    if os.path.isdir(f"/proc/self/fd/{fd}"):
        os.makedirs(path, exist_ok=True)
    else:
        open(path, "a").close()
    mount(f"/proc/self/fd/{fd}", path, None, BIND | REC)
for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
    os.symlink(target, "/dev/" + name)
read_only("/", True, recursive=True)
read_only(spec["private"][0], False, recursive=False)
for cap in range(64):
    if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP: exec then grants root no capabilities
        break
check(libc.prctl(38, 1, 0, 0, 0), "no_new_privs")
if spec["seccomp"]:
    program = ctypes.create_string_buffer(bytes.fromhex(spec["seccomp"]))
    class Prog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]
    check(libc.prctl(22, 2, ctypes.byref(Prog(len(program.raw) // 8, ctypes.addressof(program))), 0, 0), "seccomp")
os.chdir(spec["private"][0])
os.execv(spec["argv"][0], spec["argv"])
'''


def _unshare_argv(view: dict[str, list[str]], inner: Sequence[str], program: bytes | None) -> list[str]:
    spec = {**view, "argv": list(inner), "seccomp": program.hex() if program else ""}
    return [shutil.which("unshare") or "unshare", "--user", "--map-root-user", "--mount", "--pid", "--fork",
            "--mount-proc", "--kill-child", "--net", "--ipc", "--uts", sys.executable, "-I", "-S", "-c", _NS_SETUP,
            json.dumps(spec)]


def command(mode: str, workdir: str, inner: list[str]) -> tuple[list[str], tuple[int, ...]]:
    """The full command line for ``mode`` and the file descriptors it must inherit."""
    if mode == FALLBACK:
        return inner, ()
    view, program = plan(workdir), seccomp_program()
    if mode == "bubblewrap":
        fd = _program_fd(program) if program else None
        return _bwrap_argv(view, fd) + inner, (fd,) if fd is not None else ()
    return _unshare_argv(view, inner, program), ()


# ----------------------------------------------------------------------------- which mode works here
_PROBE = r'''
import os, socket, sys
home, allowed, outside, parent_net, parent_mnt, seccomp = sys.argv[1:7]
problems = []
if seccomp == "1":
    try:
        socket.socket().close()
        problems.append("socket() allowed")
    except PermissionError:
        pass
if os.path.isdir(home) and not set(os.listdir(home)) <= set(allowed.split("/")):
    problems.append("home folder visible")
try:
    open(outside, "w").close()
    problems.append(f"could write {outside}")
except OSError:
    pass
if not os.statvfs("/").f_flag & os.ST_RDONLY:
    problems.append("/ is writable")
if os.readlink("/proc/self/ns/net") == parent_net or os.readlink("/proc/self/ns/mnt") == parent_mnt:
    problems.append("no own network/mount namespace")
open("written-inside.txt", "w").write("ok")
print("isolated" if not problems else "; ".join(problems))
'''


@functools.cache
def _probe(mode: str) -> str | None:
    """None if ``mode`` works here (checked by running it), else a one-line reason."""
    if not sys.platform.startswith("linux"):
        return f"{sys.platform} is not Linux"
    tool = "bwrap" if mode == "bubblewrap" else "unshare"
    if not shutil.which(tool):
        return f"{tool} is not installed" + (" (apt-get install bubblewrap)" if tool == "bwrap" else "")
    workdir = tempfile.mkdtemp(prefix="course-sandbox-probe-")
    outside = workdir + "-outside"
    try:
        home = os.path.realpath(os.path.expanduser("~"))
        # only the folders leading to a mounted-back Python installation may show in the home folder
        allowed = {os.path.relpath(p, home).split(os.sep)[0] for p in plan(workdir)["rebind"] if _under(p, home) and p != home}
        inner = [sys.executable, "-I", "-S", "-c", _PROBE, home, "/".join(sorted(allowed)), outside,
                 os.readlink("/proc/self/ns/net"), os.readlink("/proc/self/ns/mnt"), "1" if seccomp_program() else "0"]
        argv, fds = command(mode, workdir, inner)
        try:
            done = subprocess.run(argv, cwd=workdir, env=child_env(workdir), capture_output=True, text=True,
                                  timeout=30, pass_fds=fds, stdin=subprocess.DEVNULL)
        finally:
            for fd in fds:
                os.close(fd)
        if done.stdout.strip() == "isolated" and os.path.exists(os.path.join(workdir, "written-inside.txt")):
            return None
        said = (done.stdout.strip() or done.stderr.strip() or f"exit code {done.returncode}").splitlines()
        return f"{tool} failed here: {said[-1][:160]}"
    except (OSError, subprocess.SubprocessError) as err:
        return f"{tool} failed here: {err}"
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if os.path.lexists(outside):  # the probe wrote outside: isolation is broken, clean up
            os.remove(outside)


def _version(tool: str) -> str:
    try:
        out = subprocess.run([tool, "--version"], capture_output=True, text=True, timeout=5).stdout.strip()
        return out.splitlines()[0] if out else tool
    except (OSError, subprocess.SubprocessError):
        return tool


@functools.cache
def isolation() -> Isolation:
    """The mode :func:`run_python` uses on this machine, decided once per process by a real probe."""
    failures = []
    for mode in ("bubblewrap", "unshare"):
        reason = _probe(mode)
        if reason is None:
            program = seccomp_program() is not None
            what = "own network, PID and mount namespaces; system read-only; home, /tmp and the course checkout hidden"
            sockets = "sockets refused by seccomp" if program else "no seccomp filter (libseccomp missing)"
            tool = _version("bwrap" if mode == "bubblewrap" else "unshare")
            return Isolation(mode, f"{tool}: {what}; {sockets}")
        failures.append(reason)
    return Isolation(FALLBACK, "; ".join(failures) + ": audit hook and limits only, not a security boundary")


def why_unavailable(mode: str) -> str | None:
    """None if sandbox ``mode`` ("bubblewrap", "unshare", "audit-hook") works on this machine, else why not."""
    if mode not in MODES:
        return f"{mode!r} is not a sandbox mode (use one of {', '.join(MODES)})"
    return None if mode == "audit-hook" else _probe(mode)


def describe() -> str:
    """One line for a lesson to print: which isolation the sandbox uses here, and why."""
    info = isolation()
    return f"sandbox isolation: {info.mode} ({info.reason})"


def child_env(workdir: str) -> dict[str, str]:
    """The child's whole environment: a search path, and the private folder as home and temp folder."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": workdir, "TMPDIR": workdir, "PYTHONIOENCODING": "utf-8"}

