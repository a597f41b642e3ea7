"""Lesson 12's measurements side by side: exact match by one forward pass vs by generation, and
task arithmetic by hand vs mergekit.

1. **Scoring.** On the same held-out prompts of both tasks and the same merged model (task arithmetic,
   lambda = 1), exact match computed two ways: ``specialists.score`` (teacher forcing, one forward pass
   that shares the chat template's prefix) and greedy generation (``lora.generate``, batched, KV cache),
   then string comparison. Printed: seconds each, the speed-up, and on how many prompts the two verdicts
   agree (they must, up to near-ties).
2. **Merging.** The same task-arithmetic merge by ``merging.task_arithmetic`` in memory and by mergekit
   from a YAML config (reading and writing safetensors folders): seconds each and the largest weight
   difference.

The specialists come from the course cache (lesson 12 trains them on first use).

    .venv/bin/python benchmarks/merging.py [--items 100]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).parent))

from _table import table  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100, help="held-out prompts per task (at most 100)")
    args = parser.parse_args()

    import torch

    from course_utils import lora, merging, specialists
    from course_utils.assets import hf_model_dir, load_hf_model
    from course_utils.config import settings

    torch.set_num_threads(settings().n_threads)
    base, tokenizer = load_hf_model()
    tasks = ("dates", "units")
    spec = {t: specialists.specialist(t, base, tokenizer) for t in tasks}
    theta_base = merging.state_of(base)
    taus = [merging.task_vector(merging.state_of(spec[t].model), theta_base) for t in tasks]

    started = time.perf_counter()
    merged_state = merging.task_arithmetic(theta_base, taus, [1.0, 1.0])
    hand_seconds = time.perf_counter() - started
    merged = merging.model_with(base, merged_state)

    rows = []
    for task in tasks:
        items = specialists.examples(task)[:args.items]
        started = time.perf_counter()
        fast = specialists.score(merged, tokenizer, items, task)
        fast_s = time.perf_counter() - started
        started = time.perf_counter()
        answers = lora.generate(merged, tokenizer, [ex.prompt for ex in items], max_new_tokens=24)
        gen_s = time.perf_counter() - started
        by_generation = [a.strip() == ex.response for a, ex in zip(answers, items, strict=True)]
        agree = sum(a == b for a, b in zip(fast.correct, by_generation, strict=True))
        rows.append({"task": task, "prompts": len(items), "EM forward pass": f"{fast.em:.0%}",
                     "EM generation": f"{sum(by_generation) / len(items):.0%}", "verdicts agree": f"{agree}/{len(items)}",
                     "forward pass s": f"{fast_s:.1f}", "generation s": f"{gen_s:.1f}", "speed-up": f"{gen_s / fast_s:.1f}x"})
    table(rows, "Exact match of the merged model (task arithmetic, lambda = 1): one forward pass vs generation")

    with tempfile.TemporaryDirectory() as tmp:
        folders = {t: specialists.save_model(spec[t].model, tokenizer, Path(tmp) / t) for t in tasks}
        config = merging.mergekit_yaml(hf_model_dir(), {str(folders[t]): 1.0 for t in tasks})
        started = time.perf_counter()
        out = merging.run_mergekit(config, Path(tmp) / "merged")
        mk_seconds = time.perf_counter() - started
        diff = merging.max_difference(merged_state, merging.load_safetensors_dir(out))
    table([{"method": "course_utils.merging.task_arithmetic (in memory)", "seconds": f"{hand_seconds:.1f}", "max |difference|": "-"},
           {"method": "mergekit task_arithmetic (YAML, folders on disk)", "seconds": f"{mk_seconds:.1f}", "max |difference|": f"{diff:.1e}"}],
          "Task arithmetic, lambda = 1 for both task vectors")


if __name__ == "__main__":
    from _table import with_machine

    raise SystemExit(with_machine(main))
