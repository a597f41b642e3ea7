"""The course's evaluation harness against lm-evaluation-harness: ARC-Easy by log-likelihood, side by side.

    .venv/bin/python benchmarks/eval.py                 # all 570 items (about 6 minutes on 2 idle cores, 11 with bf16
                                                        # on a CPU without native bf16: add --no-bf16 to skip it)
    .venv/bin/python benchmarks/eval.py --limit 100     # a quick look

In one run, on the same in-memory fp32 SmolLM2 (the course's cached conversion) and the same
threads: lm-evaluation-harness 0.4.13 (its HFLM, batch 16) and the course's scorer on the same
items, with the ratio of their times and how many predictions (acc and acc_norm) differ; the
course's scorer in bf16 and how many predictions change; the naive scorer and llama.cpp Q4_1 on
subsets. "Machine limit": the tokens the course's scorer pushes through the model, divided by
the model's plain forward-pass throughput measured in the same run (batches of 16 x 64 real
tokens), is the least time that work could take on this machine.

The course's scorer runs before and after lm-eval, and the ratio uses their mean, so a load
change during the run does not favour either side. The machine (cores, load, CPU, flags) is
printed beside the ratios. Exit status 1 if a prediction differs from lm-eval's.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, os.path.dirname(__file__))
from _table import table  # noqa: E402


def forward_throughput(model, rows, repeats: int = 3) -> float:
    """Tokens/s of the transformer body on batches of 16 real rows of 64 tokens (the best of ``repeats``)."""
    import torch

    batch = torch.tensor([r[:64] for r in rows[:16]])
    body = model.get_decoder()
    best = float("inf")
    with torch.inference_mode():
        body(input_ids=batch[:2, :8])  # warm-up
        for _ in range(repeats):
            t0 = time.perf_counter()
            body(input_ids=batch)
            best = min(best, time.perf_counter() - t0)
    return batch.numel() / best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=570, help="ARC-Easy items (default: all 570)")
    parser.add_argument("--lm-eval-batch", type=int, default=16, help="lm-eval's batch size (default 16)")
    parser.add_argument("--llamacpp-limit", type=int, default=100, help="items for llama.cpp (default 100; 0 = skip)")
    parser.add_argument("--naive-limit", type=int, default=60, help="items for the naive scorer (default 60; 0 = skip)")
    parser.add_argument("--no-bf16", action="store_true", help="skip the bfloat16 copy of the model")
    args = parser.parse_args()

    import torch

    from course_utils import evaluation as ev
    from course_utils.assets import load_hf_model
    from course_utils.config import settings
    from course_utils.evaluation import lmeval

    threads = settings().n_threads
    torch.set_num_threads(threads)
    print(f"torch {torch.__version__}, {threads} threads")
    model, tokenizer = load_hf_model()
    items = ev.load_task("arc_easy", limit=args.limit).items
    encode = ev.tokenize_fn(tokenizer)
    probe_rows = [encode(i.context + i.choices[0]) * 8 for i in items[:16]]  # real text, >= 64 tokens per row
    limit_before = forward_throughput(model, probe_rows)

    def course(m, label):
        r = ev.score_multiple_choice(ev.HFScorer(m, tokenizer), items, task="arc_easy")
        print(f"  {label}: {r.seconds:.1f} s")
        return r

    print("\nscoring (course, lm-eval, course again)")
    first = course(model, "course fp32")
    theirs = lmeval.run_lm_eval(model, tokenizer, limit=args.limit, batch_size=args.lm_eval_batch)
    print(f"  lm-eval fp32: {theirs.seconds:.1f} s")
    second = course(model, "course fp32 again")
    limit_after = forward_throughput(model, probe_rows)
    course_s = (first.seconds + second.seconds) / 2
    bf16 = None
    if not args.no_bf16:  # how leaderboards usually run models; fast on CPUs with native bf16 (avx512_bf16 / amx_bf16)
        bf16 = course(copy.deepcopy(model).to(torch.bfloat16), "course bf16")
    naive = None
    if args.naive_limit:
        naive = ev.score_multiple_choice(ev.HFScorer(model, tokenizer, share_context=False), items[:args.naive_limit], task="arc_easy")
    cpp = None
    if args.llamacpp_limit:
        scorer = ev.LlamaCppScorer(tokenizer=tokenizer, n_ctx=512, n_threads=threads)
        try:
            cpp = ev.score_multiple_choice(scorer, items[:args.llamacpp_limit], task="arc_easy")
        finally:
            scorer.close()

    # ---------------------------------------------------------------- parity with lm-eval
    n = len(items)
    acc_diff = sum(s.pred != t.pred for s, t in zip(first.items, theirs.items))
    norm_diff = sum(s.pred_norm != t.pred_norm for s, t in zip(first.items, theirs.items))
    worst_ll = max(abs(a - b) for s, t in zip(first.items, theirs.items) for a, b in zip(s.logprobs, t.lls))
    with_space = sum(ev.acc_norm_prediction(s.logprobs, s.n_chars) != t.pred_norm for s, t in zip(first.items, theirs.items))
    rerun_identical = [s.logprobs for s in first.items] == [s.logprobs for s in second.items]

    rows = [{"scorer": "lm-eval 0.4.13 fp32 (HFLM)", "items": n, "seconds": f"{theirs.seconds:.1f}", "items/s": f"{n / theirs.seconds:.2f}",
             "acc": f"{theirs.acc:.4f}", "acc_norm": f"{theirs.acc_norm:.4f}"}]
    for label, r, secs in (("course fp32 (mean of 2 runs)", first, course_s), ("course bf16", bf16, None),
                           ("course fp32 naive (subset)", naive, None), ("llama.cpp Q4_1 (subset)", cpp, None)):
        if r is not None:
            secs = secs or r.seconds
            rows.append({"scorer": label, "items": r.n, "seconds": f"{secs:.1f}", "items/s": f"{r.n / secs:.2f}",
                         "acc": f"{r.acc:.4f}", "acc_norm": f"{r.acc_norm:.4f}"})
    table(rows, "ARC-Easy validation, log-likelihood scoring, prompt 'Question: ...\\nAnswer:'")

    throughput = (limit_before + limit_after) / 2
    at_limit = first.tokens / throughput
    print(f"\nspeed: course fp32 is {theirs.seconds / course_s:.2f}x faster than lm-eval (target >= 2x), "
          f"runs {first.seconds:.1f} s and {second.seconds:.1f} s")
    print(f"parity: different predictions acc {acc_diff}/{n}, acc_norm {norm_diff}/{n}; largest log-likelihood difference {worst_ll:.2e} "
          f"(dividing by len(' ' + answer) instead would differ on {with_space} items)")
    print(f"machine limit: the course pushes {first.tokens:,} tokens through the model (lm-eval: {theirs.requests} requests of question + answer); "
          f"forward throughput {limit_before:.0f} / {limit_after:.0f} tok/s (before / after) -> at least {at_limit:.1f} s; "
          f"the course takes {course_s / at_limit:.2f}x that")
    if bf16 is not None:
        changed = sum(a.pred != b.pred for a, b in zip(first.items, bf16.items))
        changed_norm = sum(a.pred_norm != b.pred_norm for a, b in zip(first.items, bf16.items))
        print(f"bf16: {course_s / bf16.seconds:.2f}x the speed of fp32; predictions changed vs fp32: acc {changed}/{n}, acc_norm {changed_norm}/{n}; "
              f"acc {bf16.acc - first.acc:+.4f}, acc_norm {bf16.acc_norm - first.acc_norm:+.4f}")
    if naive is not None:
        print(f"shared context vs naive (items/s): {first.items_per_s / naive.items_per_s:.1f}x")
    print(f"rerun identical: {rerun_identical}")
    return 0 if acc_diff == norm_diff == 0 and rerun_identical else 1


if __name__ == "__main__":
    from _table import with_machine

    raise SystemExit(with_machine(main))
