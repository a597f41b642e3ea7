"""Agent benchmark: tool choice, valid arguments and right answers, with and without the grammar.

    .venv/bin/python benchmarks/agents.py              # lesson 10's 30 tasks, 4 settings (~10 min on 2 idle cores)
    .venv/bin/python benchmarks/agents.py --tasks 9    # a quick look
    .venv/bin/python benchmarks/agents.py --split test --settings grammar --max-steps 2   # the 60 held-out tasks, as lesson 10 runs them
    COURSE_MODEL=~/models/qwen2.5-1.5b-instruct-q4_k_m.gguf .venv/bin/python benchmarks/agents.py

Tasks: data/agent_tasks.jsonl (30 questions for the calculator, the handbook search and the sandboxed
Python tool), or with ``--split`` a split of data/agent_task_splits.jsonl (data/make_agent_tasks.py:
the held-out "test" split also has questions that need no tool). Settings: grammar-constrained JSON
steps or free text, with or without a "thought" field before the call. Prints one row per setting
(shares of tasks, the right-answer rate with its standard error), then per setting the rates per
expected tool and the count of each failure kind (no call, wrong tool, bad arguments, step limit,
wrong final answer), and, when both are run, the ratio of each measure with the grammar to the same
measure without it.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

SETTINGS = {"grammar": (True, True), "free text": (False, True), "grammar, no thought": (True, False), "free text, no thought": (False, False)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=0, help="first N tasks only (0 = all)")
    parser.add_argument("--max-steps", type=int, default=3, help="model calls per task (lesson 10 uses 2)")
    parser.add_argument("--split", choices=["lesson", "train", "test"], default="lesson",
                        help="lesson: data/agent_tasks.jsonl; train/test: data/agent_task_splits.jsonl")
    parser.add_argument("--settings", nargs="+", choices=["grammar", "free", "all"], default=["all"],
                        help="grammar and/or free (free text); all = both, with and without a thought")
    args = parser.parse_args()

    import pandas as pd

    from course_utils import get_backend
    from course_utils.agents import (
        Agent,
        BackendPolicy,
        by_tool,
        calculate,
        evaluate_agent,
        failure_counts,
        handbook_store,
        load_tasks,
        make_python_tool,
        make_search_tool,
        make_tool,
        summarize,
    )

    settings = {name: SETTINGS[name] for name in SETTINGS if "all" in args.settings
                or (name == "grammar" and "grammar" in args.settings) or (name == "free text" and "free" in args.settings)}
    print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    tasks = load_tasks() if args.split == "lesson" else load_tasks(split=args.split)
    tasks = tasks[: args.tasks] if args.tasks else tasks
    with tempfile.TemporaryDirectory() as folder, get_backend("llamacpp") as llm, handbook_store(folder) as store:
        tools = [make_tool(calculate), make_search_tool(store, k=1), make_python_tool()]
        rows, details = {}, {}
        for name, (grammar, thought) in settings.items():
            started = time.perf_counter()
            agent = Agent(BackendPolicy(llm, grammar=grammar), tools, max_steps=args.max_steps, thought=thought)
            results = evaluate_agent(agent, tasks)
            scores = summarize(results)
            p = scores["right answer"]
            rows[name] = scores | {"right answer SE": math.sqrt(p * (1 - p) / len(results)), "seconds": time.perf_counter() - started}
            details[name] = (by_tool(results), failure_counts(results))
            print(name, {k: round(v, 2) for k, v in rows[name].items()}, details[name][1], flush=True)
        print(f"\n{llm.info().model}, {len(tasks)} tasks ({args.split}), at most {args.max_steps} steps each")
    table = pd.DataFrame(rows).T
    print(table.round(2).to_string())
    for name, (per_tool, failures) in details.items():
        print(f"\n{name}: per expected tool")
        print(pd.DataFrame(per_tool).T.round(2).to_string())
        print(f"{name}: tasks per outcome", failures)
    measures = ["parseable call", "right tool", "valid arguments", "right answer"]
    for suffix in ("", ", no thought"):
        if f"grammar{suffix}" in table.index and f"free text{suffix}" in table.index:
            on, off = table.loc[f"grammar{suffix}", measures], table.loc[f"free text{suffix}", measures]
            ratio = (on / off.where(off > 0)).round(1).fillna(float("inf"))
            print(f"grammar / free text{suffix or ', thought'}:", ratio.to_dict())


if __name__ == "__main__":
    from _table import with_machine

    raise SystemExit(with_machine(main))
