"""TTFT, TPOT and tokens/s of every backend on the same chats, each as a ratio to raw llama-cpp-python.

Measured side by side in one run: the course backends (llamacpp, transformers, gpt4all, openai against a
real local ``llama_cpp.server``, ollama if a server answers at OLLAMA_HOST) and raw llama-cpp-python
(``Llama.create_completion`` on the same chat-templated prompt, streamed, ``reset()`` before each call so
no KV cache is reused). Every stream is timed the same way, by ``course_utils.metrics.measure_stream``.
Greedy decoding, a fixed number of tokens. Sides alternate within each repeat and medians are reported,
so background load hits every side alike; the ratios are what to compare across machines.

    .venv/bin/python benchmarks/backends.py [--tokens 48] [--repeats 3] [--skip transformers]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable, Iterable
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

PROMPTS = [
    [{"role": "user", "content": "Give me three tips for learning a new language."}],
    [{"role": "system", "content": "You are a concise assistant."},
     {"role": "user", "content": "Explain in a few sentences why the sky is blue."}],
]
BACKENDS = ("llamacpp", "transformers", "gpt4all", "openai", "ollama")


def main() -> None:
    from llama_cpp import Llama

    from course_utils.backends import get_backend
    from course_utils.errors import CourseError
    from course_utils.metrics import Timings, measure_stream
    from course_utils.server import LlamaServer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=48)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip", nargs="*", default=[], choices=BACKENDS)
    args = parser.parse_args()

    server = LlamaServer().start()
    sides: dict[str, Callable[[list[dict[str, str]]], Iterable[Any]]] = {}
    unavailable: dict[str, str] = {}
    closers = [server.stop]
    for name in BACKENDS:
        if name in args.skip:
            continue
        try:
            backend = get_backend(name, **({"base_url": server.base_url} if name == "openai" else {}))
        except CourseError as err:
            unavailable[name] = str(err)
            continue
        closers.append(backend.close)
        sides[name] = lambda msgs, b=backend: b.chat_stream(msgs, max_tokens=args.tokens)
    llamacpp = get_backend("llamacpp")  # only for the chat template of the raw side
    raw_llm = Llama(model_path=str(llamacpp.path), n_ctx=llamacpp.n_ctx, n_threads=llamacpp.n_threads, n_batch=512, verbose=False)
    closers += [llamacpp.close, raw_llm.close]

    def raw(msgs: list[dict[str, str]]) -> Iterable[Any]:
        raw_llm.reset()
        return raw_llm.create_completion(llamacpp.format_chat(msgs), max_tokens=args.tokens, temperature=0.0,
                                         top_k=0, top_p=1.0, min_p=0.0, repeat_penalty=1.0, stream=True)

    sides = {"raw llama-cpp-python": raw, **sides}
    samples: dict[str, list[Timings]] = {name: [] for name in sides}
    try:
        for fn in sides.values():  # warm-up: first calls pay one-off costs
            measure_stream(fn(PROMPTS[0]))
        for _ in range(args.repeats):
            for msgs in PROMPTS:
                for name, fn in sides.items():
                    started = time.perf_counter()
                    samples[name].append(measure_stream(fn(msgs), start=started))
    finally:
        for close in reversed(closers):
            close()

    def med(name: str, key: str) -> float:
        return statistics.median(getattr(t, key) for t in samples[name])

    print(f"# backends: {len(PROMPTS)} chats x {args.repeats} alternating repeats, max {args.tokens} greedy tokens, "
          f"medians; {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    print(f"{'backend':<21} {'TTFT ms':>8} {'TPOT ms':>8} {'tokens/s':>9} {'tokens':>7} {'TTFT vs raw':>12} {'tok/s vs raw':>13}")
    base_ttft, base_speed = med("raw llama-cpp-python", "ttft_s"), med("raw llama-cpp-python", "tokens_per_s")
    for name in sides:
        ttft, tpot, speed = med(name, "ttft_s"), med(name, "tpot_s"), med(name, "tokens_per_s")
        print(f"{name:<21} {ttft * 1000:>8.0f} {tpot * 1000:>8.1f} {speed:>9.1f} {med(name, 'completion_tokens'):>7.0f} "
              f"{ttft / base_ttft:>11.2f}x {speed / base_speed:>12.2f}x")
    for name, reason in unavailable.items():
        print(f"{name:<21} unavailable: {reason[:110]}")


if __name__ == "__main__":
    from _table import with_machine

    raise SystemExit(with_machine(main))
