"""The process that executes one graded notebook: ``python -m course_utils.grading.worker JOB_FOLDER``.

Part of ``course grade`` (:mod:`course_utils.grading`), which starts it in its own network and PID
namespaces where the machine allows; the learner's code runs in the Jupyter kernel this process
starts, never in the grader's process. After every cell it appends one JSON line to
``cells.jsonl`` (errors, the grader's verdict outputs, lines that look like verdicts), so a run the
grader has to kill for time still leaves what it did.

The job folder holds ``job.json`` (``cell_timeout_s``, ``loopback``: bring the loopback interface of a
fresh network namespace up) and ``graded.ipynb``; the worker writes ``cells.jsonl`` and ``executed.ipynb``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from .kernel import MIME

VERDICT_MARKS = ("✅", "❌", "⏳")


def loopback_up() -> None:
    """Switch on ``lo`` in a new network namespace (``unshare --net`` leaves it down; the kernel talks over it)."""
    import fcntl
    import socket
    import struct

    get_flags, set_flags, up = 0x8913, 0x8914, 0x1  # SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP (linux/sockios.h, if.h)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        flags = struct.unpack("16sH22x", fcntl.ioctl(s, get_flags, struct.pack("16sH22x", b"lo", 0)))[1]
        fcntl.ioctl(s, set_flags, struct.pack("16sH22x", b"lo", flags | up))


def cell_record(index: int, cell: Any, reply: dict[str, Any] | None, timed_out: str = "") -> dict[str, Any]:
    """What the grader needs from one executed cell (``timed_out``: the interrupt was the grader's)."""
    content = (reply or {}).get("content", {})
    error = [content.get("ename", ""), str(content.get("evalue", ""))[:300]] if content.get("status") == "error" else None
    if error and error[0] == "KeyboardInterrupt" and timed_out:
        error = ["CellTimeout", timed_out]
    payloads, printed = [], []
    for output in cell.get("outputs", []):
        data = output.get("data", {})
        if MIME in data:
            payloads.append(data[MIME])
        text = output.get("text", "") or data.get("text/plain", "")
        printed += [line for line in str(text).splitlines() if line.lstrip().startswith(VERDICT_MARKS)]
    return {"cell": index, "error": error, "payloads": payloads, "printed": printed[:50]}


def main(job_folder: str) -> int:
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError

    job_dir = Path(job_folder)
    job = json.loads((job_dir / "job.json").read_text(encoding="utf-8"))
    if job.get("loopback"):
        loopback_up()
    nb = nbformat.read(job_dir / "graded.ipynb", as_version=4)
    workdir = job_dir / "work"
    workdir.mkdir(exist_ok=True)
    with open(job_dir / "cells.jsonl", "a", encoding="utf-8") as log:

        def write(record: dict[str, Any]) -> None:
            log.write(json.dumps(record) + "\n")
            log.flush()

        def started(notebook: Any) -> None:
            write({"kernel_pid": client.km.provisioner.pid if client.km and client.km.provisioner else None})

        timeout = int(job["cell_timeout_s"])
        began = [0.0]

        def executing(cell: Any, cell_index: int) -> None:
            began[0] = time.monotonic()

        def executed(cell: Any, cell_index: int, execute_reply: dict[str, Any] | None) -> None:
            late = time.monotonic() - began[0] >= timeout
            write(cell_record(cell_index, cell, execute_reply, f"ran past the cell time limit ({timeout} s) and was interrupted" if late else ""))

        # On time-out nbclient interrupts the kernel and waits again: an interrupted cell ends with
        # KeyboardInterrupt and the run goes on; one that ignores interrupts holds the run until the
        # grader stops the whole notebook (nothing after it can run in that kernel anyway).
        client = NotebookClient(
            nb, timeout=timeout, kernel_name="python3", allow_errors=True, interrupt_on_timeout=True,
            on_notebook_start=started, on_cell_execute=executing, on_cell_executed=executed,
            resources={"metadata": {"path": str(workdir)}},
        )
        try:
            client.execute()
        except DeadKernelError:
            write({"dead": True})
        except Exception as err:  # noqa: BLE001 - say what happened; the grader reports it and goes on
            write({"crashed": f"{type(err).__name__}: {err}"[:500]})
        else:
            write({"done": True})
        finally:
            nbformat.write(nb, job_dir / "executed.ipynb")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
