"""Benchmark harness speed and accuracy: ARC-Easy validation scored by log-likelihood.

    .venv/bin/python benchmarks/eval.py [--limit N] [--llamacpp-limit N] [--naive-limit N]

Prints, side by side: transformers fp32 with the shared-context scorer on all 570 items (target:
<= 60 s on 2 cores), the naive scorer (every choice re-reads the question) on a subset, and
llama.cpp Q4_1 on a subset; items/s, tokens/s and acc / acc_norm with standard errors. A second
run of the fast scorer checks that the numbers are identical.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=570, help="ARC-Easy items for transformers (default: all 570)")
    parser.add_argument("--llamacpp-limit", type=int, default=100, help="items for llama.cpp (default 100)")
    parser.add_argument("--naive-limit", type=int, default=60, help="items for the naive scorer (default 60)")
    parser.add_argument("--no-bf16", action="store_true", help="skip the bfloat16 copy of the model")
    args = parser.parse_args()

    import torch

    from course_utils import evaluate as ev
    from course_utils.assets import load_hf_model
    from course_utils.config import settings
    from course_utils.tasks import load_task

    threads = settings().n_threads
    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    model, tokenizer = load_hf_model()
    print(f"model loaded in {time.perf_counter() - t0:.1f} s; {threads} threads; {os.cpu_count()} CPUs")
    items = load_task("arc_easy", limit=args.limit).items

    rows = []
    fast = ev.score_multiple_choice(ev.HFScorer(model, tokenizer), items, task="arc_easy")
    rows.append(("transformers fp32, shared context", fast))
    again = ev.score_multiple_choice(ev.HFScorer(model, tokenizer), items, task="arc_easy")
    identical = [s.logprobs for s in fast.items] == [s.logprobs for s in again.items]
    if not args.no_bf16:
        # bfloat16 is how leaderboards usually run models; on a CPU with native bf16 matmuls it is ~2x faster.
        bf16 = copy.deepcopy(model).to(torch.bfloat16)
        rows.append(("transformers bf16, shared context", ev.score_multiple_choice(ev.HFScorer(bf16, tokenizer), items, task="arc_easy")))
        del bf16
    if args.naive_limit:
        naive = ev.score_multiple_choice(ev.HFScorer(model, tokenizer, share_context=False), items[:args.naive_limit], task="arc_easy")
        rows.append(("transformers fp32, naive", naive))
    if args.llamacpp_limit:
        scorer = ev.LlamaCppScorer(tokenizer=tokenizer, n_ctx=512, n_threads=threads)
        try:
            rows.append(("llama.cpp Q4_1", ev.score_multiple_choice(scorer, items[:args.llamacpp_limit], task="arc_easy")))
        finally:
            scorer.close()

    print("\nARC-Easy validation, log-likelihood scoring (lm-evaluation-harness format)\n")
    print(f"{'scorer':<36}{'items':>6}{'seconds':>9}{'items/s':>9}{'tokens':>8}{'tok/s':>7}   {'acc':>13}   {'acc_norm':>13}")
    for name, r in rows:
        print(f"{name:<36}{r.n:>6}{r.seconds:>9.1f}{r.items_per_s:>9.2f}{r.tokens:>8}{r.tokens / r.seconds:>7.0f}"
              f"   {r.acc:.3f} ± {r.acc_stderr:.3f}   {r.acc_norm:.3f} ± {r.acc_norm_stderr:.3f}")
    by_name = dict(rows)
    if "transformers fp32, naive" in by_name:
        print(f"\nshared vs naive, items/s: {fast.items_per_s / by_name['transformers fp32, naive'].items_per_s:.1f}x")
    for name, r in by_name.items():
        if "shared context" in name:
            print(f"{name}: full set projected time {570 / r.items_per_s:.0f} s (target <= 60 s on 2 cores)")
    if "transformers bf16, shared context" in by_name:
        bf = by_name["transformers bf16, shared context"]
        same = sum(a.pred == b.pred for a, b in zip(fast.items, bf.items)) / len(fast.items)
        print(f"bf16 vs fp32: same acc prediction on {same:.1%} of items; acc {bf.acc - fast.acc:+.3f}")
    print(f"rerun identical: {identical}; chance: {fast.chance:.3f}")
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
