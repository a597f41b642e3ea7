"""Agent benchmark: tool choice, valid arguments and right answers, with and without the grammar.

    .venv/bin/python benchmarks/agents.py              # all 30 tasks, 4 settings (~10 min on 2 idle cores)
    .venv/bin/python benchmarks/agents.py --tasks 9    # a quick look
    COURSE_MODEL=~/models/qwen2.5-1.5b-instruct-q4_k_m.gguf .venv/bin/python benchmarks/agents.py

Tasks: data/agent_tasks.jsonl (30 questions for the calculator, the handbook search and the sandboxed
Python tool). Settings: grammar-constrained JSON steps or free text, with or without a "thought"
field before the call. Prints one row per setting (shares of tasks) and the ratio of each measure
with the grammar to the same measure without it.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=0, help="first N tasks only (0 = all)")
    parser.add_argument("--max-steps", type=int, default=3)
    args = parser.parse_args()

    import pandas as pd

    from course_utils import get_backend
    from course_utils.agents import (
        Agent,
        BackendPolicy,
        calculate,
        evaluate_agent,
        handbook_store,
        load_tasks,
        make_python_tool,
        make_search_tool,
        make_tool,
        summarize,
    )

    print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    tasks = load_tasks()
    tasks = tasks[: args.tasks] if args.tasks else tasks
    with tempfile.TemporaryDirectory() as folder, get_backend("llamacpp") as llm, handbook_store(folder) as store:
        tools = [make_tool(calculate), make_search_tool(store, k=1), make_python_tool()]
        rows = {}
        for thought in (True, False):
            for grammar in (True, False):
                started = time.perf_counter()
                agent = Agent(BackendPolicy(llm, grammar=grammar), tools, max_steps=args.max_steps, thought=thought)
                scores = summarize(evaluate_agent(agent, tasks))
                name = f"{'grammar' if grammar else 'free text'}, {'thought' if thought else 'no thought'}"
                rows[name] = scores | {"seconds": time.perf_counter() - started}
                print(name, {k: round(v, 2) for k, v in rows[name].items()}, flush=True)
        print(f"\n{llm.info().model}, {len(tasks)} tasks, at most {args.max_steps} steps each")
    table = pd.DataFrame(rows).T
    print(table.round(2).to_string())
    measures = ["parseable call", "right tool", "valid arguments", "right answer"]
    for thought in ("thought", "no thought"):
        on, off = table.loc[f"grammar, {thought}", measures], table.loc[f"free text, {thought}", measures]
        ratio = (on / off.where(off > 0)).round(1).fillna(float("inf"))
        print(f"grammar / free text ({thought}):", ratio.to_dict())


if __name__ == "__main__":
    main()
