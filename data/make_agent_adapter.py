"""Regenerate ``agent_traces.jsonl`` and ``agent_adapter/``: what lesson 10's agent learns from, and what it learned.

1. **Traces.** For every task of the *train* split of ``agent_task_splits.jsonl`` (never a held-out
   one), :func:`course_utils.agents.reference_traces` runs lesson 10's agent loop with its real tools
   (the calculator, the search over the handbook store, the sandboxed Python) and a scripted policy
   that replays the task's reference call and then ``final_answer`` with the expected answer. Every
   model call the loop makes becomes one line of ``agent_traces.jsonl``: the messages the model saw and
   the reply it should have written. Tasks whose tool result does not contain the answer are dropped.
2. **Adapter.** LoRA (r = 8 on the four attention projections, lesson 08's layer and training loop) on
   the bundled SmolLM2-135M-Instruct, loss only on the replies, written in peft's format to
   ``agent_adapter/<key>/`` with ``training.json`` (recipe, loss per step, seconds); ``<key>`` hashes the
   traces and the recipe. Lesson 10 only loads it (training takes minutes, the lesson has seconds)::

    .venv/bin/python data/make_agent_adapter.py          # traces + adapter
    .venv/bin/python data/make_agent_adapter.py --traces # traces only

The traces are deterministic (fixed tasks, real tools). Training is deterministic for a given torch
version and thread count (2 threads, set below).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

HERE = Path(__file__).parent
THREADS = 2
RECIPE = {"steps": 64, "batch_size": 8, "lr": 4e-3, "r": 8, "alpha": 16.0, "targets": ["q_proj", "k_proj", "v_proj", "o_proj"], "seed": 0}


def write_traces() -> Path:
    from course_utils import agents

    with tempfile.TemporaryDirectory(prefix="agent-traces-") as folder:
        store = agents.handbook_store(folder)
        tools = [agents.make_tool(agents.calculate), agents.make_search_tool(store, k=1), agents.make_python_tool(timeout_s=5.0)]
        tasks = agents.load_tasks(split="train")
        traces = agents.reference_traces(tasks, tools)
        store.close()
    out = HERE / agents.TRACES_FILE
    text = "".join(json.dumps({"task_id": t.task_id, "messages": t.messages, "response": t.response}, ensure_ascii=False) + "\n" for t in traces)
    tmp = out.with_name(f".tmp-{out.name}")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)
    kept = len({t.task_id for t in traces})
    print(f"wrote {len(traces)} traces of {kept} of {len(tasks)} train tasks to {out}")
    return out


def train_adapter(traces_file: Path) -> Path:
    import torch

    from course_utils import agents, lora
    from course_utils.assets import load_hf_model
    from course_utils.paths import atomic_write_text

    torch.set_num_threads(THREADS)
    torch.manual_seed(RECIPE["seed"])
    model, tokenizer = load_hf_model()
    lora.inject_lora(model, targets=tuple(RECIPE["targets"]), r=RECIPE["r"], alpha=RECIPE["alpha"])
    data = agents.trace_batches(tokenizer, agents.load_traces(traces_file), RECIPE["batch_size"], seed=RECIPE["seed"])
    result = lora.train(model, data, steps=RECIPE["steps"], lr=RECIPE["lr"], log_every=2)
    root = HERE / agents.ADAPTER_DIR
    for old in root.glob("*"):
        shutil.rmtree(old)
    folder = lora.save_adapter(model, root / agents.adapter_key(traces_file, RECIPE), base_model="SmolLM2-135M-Instruct")
    log = {"recipe": RECIPE, "losses": [round(x, 6) for x in result.losses], "seconds": round(result.seconds, 1)}
    atomic_write_text(folder / "training.json", json.dumps(log, indent=1) + "\n")
    print(f"{len(result.losses)} steps in {result.seconds:.0f} s, loss {result.losses[0]:.3f} -> {result.losses[-1]:.3f}; wrote {folder}")
    return folder


def main() -> None:
    traces = write_traces()
    if "--traces" not in sys.argv[1:]:
        train_adapter(traces)


if __name__ == "__main__":
    main()
