"""How ``course grade`` runs one graded notebook: in a worker process, confined where Linux allows.

Part of ``course grade`` (:mod:`course_utils.grading`, whose docstring says why it is built this way);
no lesson teaches it. :func:`confinement` is the one place that asks :mod:`course_utils.sandbox`'s probe
which namespaces this machine allows; :func:`execute` starts :mod:`course_utils.grading.worker` under
them, with a time limit for the whole notebook, and reads back what the worker recorded per cell.

>>> confinement().description                 # doctest: +SKIP
'own network and PID namespaces (bubblewrap)'
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..paths import atomic_write_bytes
from .notebooks import Plan


# ----------------------------------------------------------------------------- isolation
@dataclass(frozen=True)
class Confinement:
    prefix: list[str]  # put before the worker's command line
    loopback: bool  # the worker must switch on the loopback interface of its new network namespace
    description: str


def confinement() -> Confinement:
    """How the worker is confined here: the one place that asks :mod:`course_utils.sandbox` (its probe)."""
    try:
        from ..sandbox import isolation
    except ImportError:  # a course_utils.sandbox without the probe
        return Confinement([], False, "separate processes only (course_utils.sandbox has no isolation probe here)")
    found = isolation()
    if found.mode == "bubblewrap":
        return Confinement([shutil.which("bwrap") or "bwrap", "--dev-bind", "/", "/", "--proc", "/proc", "--unshare-net",
                            "--unshare-pid", "--die-with-parent", "--"], False, "own network and PID namespaces (bubblewrap)")
    if found.mode == "unshare":
        return Confinement([shutil.which("unshare") or "unshare", "--user", "--map-root-user", "--net", "--pid", "--fork",
                            "--kill-child", "--mount", "--mount-proc", "--"], True, "own network and PID namespaces (unshare)")
    return Confinement([], False, f"separate processes only: no namespaces here ({found.reason})")


# ----------------------------------------------------------------------------- running one notebook
@dataclass
class Execution:
    records: list[dict[str, Any]]
    timed_out: bool
    problem: str  # why the worker stopped early, "" when it ran every cell


def execute(plan: Plan, *, timeout_s: float, cell_timeout_s: float, root: Path, keep_as: Path | None = None) -> Execution:
    """Run ``plan``'s notebook in a confined worker process; never raises for what the notebook does.

    It runs in a fresh folder under ``root/build/grading/`` (deleted afterwards): inside the course, so
    that :func:`course_utils.paths.project_root` finds it from the kernel's working folder.
    """
    import nbformat

    where = confinement()
    (root / "build" / "grading").mkdir(parents=True, exist_ok=True)
    job = Path(tempfile.mkdtemp(prefix="job-", dir=root / "build" / "grading"))
    try:
        home = job / "home"
        for folder in (home, job / "tmp", job / "runtime"):
            folder.mkdir()
        nbformat.write(plan.notebook, job / "graded.ipynb")
        (job / "job.json").write_text(json.dumps({"cell_timeout_s": max(1, round(cell_timeout_s)), "loopback": where.loopback}))
        argv = [*where.prefix, sys.executable, "-m", "course_utils.grading.worker", str(job)]
        with open(job / "worker.log", "w", encoding="utf-8") as err:
            proc = subprocess.Popen(argv, env=_worker_env(job), stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                    start_new_session=True, cwd=job)
            timed_out = False
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                timed_out = True
        records = _read_records(job / "cells.jsonl")
        if timed_out:
            _kill(proc, None if where.prefix else next((r["kernel_pid"] for r in records if r.get("kernel_pid")), None))
        if keep_as is not None and (job / "executed.ipynb").exists():
            atomic_write_bytes(keep_as, (job / "executed.ipynb").read_bytes())
        return Execution(records, timed_out, _problem(records, proc.returncode, timed_out, timeout_s, job / "worker.log"))
    finally:
        shutil.rmtree(job, ignore_errors=True)


def _worker_env(job: Path) -> dict[str, str]:
    from ..config import settings

    env = dict(os.environ)
    package_parent = str(Path(__file__).resolve().parents[2])  # the kernel imports this same course_utils
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH", "")) if p)
    env.update(HOME=str(job / "home"), TMPDIR=str(job / "tmp"), JUPYTER_RUNTIME_DIR=str(job / "runtime"),
               IPYTHONDIR=str(job / "home" / ".ipython"), COURSE_CACHE=str(settings().cache_dir),
               HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_DATASETS_OFFLINE="1", PYDEVD_DISABLE_FILE_VALIDATION="1")
    return env


def _read_records(path: Path) -> list[dict[str, Any]]:
    records = []
    if path.exists():
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            with contextlib.suppress(json.JSONDecodeError):  # the last line of a killed worker may be cut short
                records.append(json.loads(line))
    return records


def _kill(proc: subprocess.Popen, kernel_pid: int | None) -> None:
    """Kill the worker's process group (in namespaces that takes everything), then the kernel's own group."""
    for group in (proc.pid, kernel_pid):
        if group:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, signal.SIGKILL)
    proc.wait()
    if kernel_pid:
        _wait_gone(kernel_pid, 10.0)


def _wait_gone(pid: int, seconds: float) -> None:
    """Wait until process ``pid`` has ended (a zombie waiting for its new parent to reap it counts)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return
        if state in ("Z", "X"):
            return
        time.sleep(0.05)


def _problem(records: list[dict[str, Any]], returncode: int | None, timed_out: bool, timeout_s: float, log: Path) -> str:
    if timed_out:
        return f"the notebook ran past its time limit ({timeout_s:.0f} s) and was stopped"
    if any(r.get("done") for r in records):
        return ""
    if any(r.get("dead") for r in records):
        return "the kernel died (out of memory, or the code ended the process)"
    crashed = next((r["crashed"] for r in records if r.get("crashed")), "")
    tail = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-1:] if log.exists() else []
    return f"the notebook could not be run: {crashed or (tail[0] if tail else f'exit code {returncode}')}"
