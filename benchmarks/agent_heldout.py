"""Lesson 10's agent on all 60 held-out tasks, before and after the shipped LoRA adapter (the lesson runs 15).

    .venv/bin/python benchmarks/agent_heldout.py                           # prints the tables (~5 min on 2 idle cores)
    .venv/bin/python benchmarks/agent_heldout.py --out data/agent_heldout.json   # ... and records them for lesson 10

Both settings are the agent lesson 10 measures (``agents.adapter_agent``: the same ReAct loop, tools,
sandbox, prompt and grammar, on llama.cpp), on GGUF exports of the bundled model made the same way
(``agents.agent_gguf``), with and without the adapter merged in: they differ only by the adapter. The
held-out tasks (``data/agent_task_splits.jsonl``, split "test") are in no training trace.

Prints the right-answer rate with its Wilson 95% interval, the rates per kind of task and the count of
each failure kind. ``--out`` writes every task's outcome as JSON (atomically) with the adapter it
measured and the machine, which lesson 10 reads and labels as a recording.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from course_utils.machine import Machine

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")


def outcome(result, expected: str) -> dict:  # noqa: ANN001 (an agents.TaskResult)
    """One task's outcome as the recording stores it."""
    from course_utils.agents import failure_kind

    return {"id": result.id, "tool": result.expected_tool, "first_tool": result.first_tool, "right_tool": result.right_tool,
            "valid_arguments": result.valid_args, "correct": result.correct, "failure": failure_kind(result),
            "steps": result.steps, "answer": result.run.answer, "expected": expected}


def write_record(path: Path, outcomes: dict[str, list[dict]], gguf: dict[str, str], adapter: str, started_at: Machine) -> None:
    """Every task's outcome as JSON, written atomically, with the adapter and the machine it was measured on."""
    from course_utils.machine import machine
    from course_utils.paths import atomic_write_text

    record = {"benchmark": "benchmarks/agent_heldout.py", "date": datetime.date.today().isoformat(),
              "machine_start": started_at.as_metadata(), "machine_end": machine().as_metadata(),
              "adapter": adapter, "gguf": gguf, "outcomes": outcomes}
    atomic_write_text(path, json.dumps(record, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write the outcomes here as JSON (lesson 10 reads data/agent_heldout.json)")
    args = parser.parse_args()

    import pandas as pd

    from course_utils import get_backend
    from course_utils.agents import (
        adapter_agent,
        agent_gguf,
        by_tool,
        calculate,
        evaluate_agent,
        failure_counts,
        handbook_store,
        load_tasks,
        make_python_tool,
        make_search_tool,
        make_tool,
        shipped_adapter,
        solved_interval,
    )
    from course_utils.machine import machine

    started_at = machine()
    tasks = load_tasks(split="test")
    expected = {t["id"]: str(t["answer"]) for t in tasks}
    files = {"before": agent_gguf(False), "after": agent_gguf()}
    outcomes = {}
    with tempfile.TemporaryDirectory() as folder, handbook_store(folder) as store:
        tools = [make_tool(calculate), make_search_tool(store, k=1), make_python_tool(timeout_s=2.0)]
        for name, gguf in files.items():
            with get_backend("llamacpp", model=str(gguf)) as engine:
                started = time.perf_counter()
                results = evaluate_agent(adapter_agent(engine, tools), tasks)
            rate, low, high = solved_interval(results)
            print(f"\n{name} ({gguf.name}): right final answer {rate:.2f} (95% CI {low:.2f}-{high:.2f}, Wilson) "
                  f"on {len(results)} held-out tasks, {time.perf_counter() - started:.0f} s")
            print(pd.DataFrame(by_tool(results)).T[["tasks", "right tool", "valid arguments", "right answer"]].round(2).to_string())
            print("tasks per outcome:", failure_counts(results), flush=True)
            outcomes[name] = [outcome(r, expected[r.id]) for r in results]
    if args.out:
        write_record(args.out, outcomes, {k: v.name for k, v in files.items()}, shipped_adapter().name, started_at)


if __name__ == "__main__":
    from _table import with_machine

    raise SystemExit(with_machine(main))
