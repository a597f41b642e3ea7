"""How much does course_utils cost on top of the libraries it wraps?

Measured side by side in one run, on the same prompt and the same greedy decoding:

* course_utils ``llamacpp`` backend   vs  raw llama-cpp-python ``Llama.create_completion``
* course_utils ``transformers`` backend vs  raw ``model.generate``

Method (identical for both sides): wall time of a call that generates 1 token (= time to first
token, TTFT) and of a call that generates N tokens; decode speed = (N - 1) / (t_N - t_1). Calls
alternate between the two sides and the median of the repeats is used, so background load hits
both alike. Raw llama.cpp gets ``reset()`` before each call, like the backend, so both do the same
work (no KV-cache reuse between calls).

    .venv/bin/python benchmarks/backend_overhead.py [--tokens 96] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

PROMPT = (
    "The history of the Roman Empire spans more than a thousand years, from the founding of the city "
    "to the fall of Constantinople. In this essay we look at its government, its army, its roads and its "
    "everyday life, and at the reasons historians give for its long decline. We begin with the early"
)


def median_time(fn: Callable[[], int], repeats: int) -> tuple[float, int]:
    times, produced = [], 0
    for _ in range(repeats):
        started = time.perf_counter()
        produced = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), produced


def measure_pair(ours: Callable[[int], int], raw: Callable[[int], int], n: int, repeats: int) -> dict[str, dict[str, float]]:
    """Alternate the two sides; return TTFT and decode tokens/s for each."""
    samples: dict[str, dict[int, list[float]]] = {"course_utils": {1: [], n: []}, "raw": {1: [], n: []}}
    counts: dict[str, int] = {}
    ours(4), raw(4)  # warm-up: first calls pay one-off costs
    for _ in range(repeats):
        for side, fn in (("course_utils", ours), ("raw", raw)):
            for k in (1, n):
                t, produced = median_time(lambda fn=fn, k=k: fn(k), 1)
                samples[side][k].append(t)
                if k == n:
                    counts[side] = produced
    out = {}
    for side, by_k in samples.items():
        t1, tn = statistics.median(by_k[1]), statistics.median(by_k[n])
        out[side] = {"ttft_s": t1, "tokens_per_s": (counts[side] - 1) / (tn - t1), "tokens": counts[side]}
    return out


def llamacpp_pair(n: int, repeats: int) -> dict[str, dict[str, float]]:
    from llama_cpp import Llama

    from course_utils.assets import smollm2_gguf
    from course_utils.backends import get_backend

    backend = get_backend("llamacpp")
    raw_llm = Llama(model_path=str(smollm2_gguf()), n_ctx=backend.n_ctx, n_threads=backend.n_threads, n_batch=512, verbose=False)

    def ours(k: int) -> int:
        return backend.complete(PROMPT, max_tokens=k).completion_tokens

    def raw(k: int) -> int:
        raw_llm.reset()
        out = raw_llm.create_completion(PROMPT, max_tokens=k, temperature=0.0)
        return out["usage"]["completion_tokens"]

    try:
        return measure_pair(ours, raw, n, repeats)
    finally:
        backend.close()
        raw_llm.close()


def transformers_pair(n: int, repeats: int) -> dict[str, dict[str, float]]:
    import torch

    from course_utils.backends import get_backend

    backend = get_backend("transformers")
    model, tokenizer = backend.model, backend.tokenizer
    ids = torch.tensor([tokenizer.encode(PROMPT, add_special_tokens=False)])

    def ours(k: int) -> int:
        return backend.complete(PROMPT, max_tokens=k).completion_tokens

    def raw(k: int) -> int:
        with torch.inference_mode():
            out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=k, do_sample=False, pad_token_id=tokenizer.eos_token_id)
        return out.shape[1] - ids.shape[1]

    try:
        return measure_pair(ours, raw, n, repeats)
    finally:
        backend.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=96)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"# backend overhead: {args.tokens} greedy tokens, median of {args.repeats} alternating repeats, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    print(f"{'backend':<13} {'side':<13} {'TTFT ms':>8} {'decode tok/s':>13} {'tokens':>7}")
    for name, pair in (("llamacpp", llamacpp_pair), ("transformers", transformers_pair)):
        result = pair(args.tokens, args.repeats)
        for side in ("course_utils", "raw"):
            r = result[side]
            print(f"{name:<13} {side:<13} {r['ttft_s'] * 1000:8.1f} {r['tokens_per_s']:13.1f} {r['tokens']:7d}")
        ours, raw = result["course_utils"], result["raw"]
        speed_ratio = ours["tokens_per_s"] / raw["tokens_per_s"]
        ttft_overhead = ours["ttft_s"] / raw["ttft_s"] - 1
        verdict = "OK" if speed_ratio >= 0.95 and ttft_overhead <= 0.05 else "BELOW TARGET"
        print(f"{name:<13} ratio         decode speed {speed_ratio:.3f} (target >= 0.95), TTFT overhead {ttft_overhead:+.1%} (target <= +5%)  {verdict}")


if __name__ == "__main__":
    from _table import with_machine

    raise SystemExit(with_machine(main))
