"""A class on one machine: throughput and latency at 1, 4, 16 and 32 learners, engine against engine.

Side by side in one run, on the same model, prompts and machine:

- ``llama-cpp-python``: ``python -m llama_cpp.server`` (one request at a time; the others queue);
- ``llama-server``: llama.cpp's C++ server with ``--parallel`` slots (continuous batching: the tokens of
  every running request are decoded in one batch). Built by ``bash tools/build_llama_server.sh``;
- ``course serve``: the same llama-server behind the course's front door (API key + request log), to
  show what the front door costs;
- ``vllm`` (``--vllm PYTHON``): vLLM's OpenAI server from its own venv, if it runs on this machine.

Each level sends ``max(8, rounds × learners)`` greedy chat requests (streamed, ``--tokens`` each) with
``learners`` in flight at once, engines alternating level by level so background load hits all alike.
Reported: generated tokens/s for everyone together, p50/p95 latency of one reply, mean time to first
token, and each engine's throughput as a ratio to llama-cpp-python's at the same level.

    .venv/bin/python benchmarks/class_serving.py [--levels 1 4 16 32] [--tokens 32] [--parallel 32]
        [--vllm .venv-vllm/bin/python] [--out data/class_serving.json]

The engines serve the same model, not the same file: the two llama.cpp servers read the bundled Q4_1 GGUF,
vLLM (which does not run that format) the course's HF copy of it, converted from it, in bf16.
``--out`` writes the table as JSON (machine, date, settings, rows) for lesson 04, which shows the
recorded figures beside its own small run.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _table import table  # noqa: E402

if TYPE_CHECKING:
    from course_utils.machine import Machine

KEY = "course-benchmark-key"
PROMPT = "Write two sentences about the sea."


def vllm_server(python: str, n_ctx: int, parallel: int) -> Any:
    """vLLM's OpenAI-compatible server from another venv, on the course's cached HF copy of the model."""
    from course_utils.assets import hf_model_dir
    from course_utils.server import ManagedServer, free_port

    class VllmServer(ManagedServer):
        label = "vllm"
        fix = "see the log: vLLM's CPU build needs its own venv (README, Teaching a class)"
        key_variable = "VLLM_API_KEY"

        def __enter__(self) -> VllmServer:
            return self.start(timeout=1200)  # it compiles its kernels first: minutes on 2 cores

    port = free_port()
    args = [python, "-m", "vllm.entrypoints.openai.api_server", "--model", str(hf_model_dir()), "--served-model-name", "smollm2",
            "--host", "127.0.0.1", "--port", str(port), "--max-model-len", str(n_ctx), "--max-num-seqs", str(parallel),
            "--dtype", "bfloat16"]
    return VllmServer(args, port, api_key=KEY, env={"VLLM_CPU_KVCACHE_SPACE": "2", "VLLM_TARGET_DEVICE": "cpu"})


def main() -> None:
    from course_utils.errors import CourseError
    from course_utils.serve import ClassServer, RequestLog
    from course_utils.server import LlamaCppServer, LlamaServer, llama_server_binary
    from course_utils.serving import load_test

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 4, 16, 32])
    parser.add_argument("--tokens", type=int, default=32, help="tokens generated per reply")
    parser.add_argument("--parallel", type=int, default=32, help="llama-server / vLLM slots")
    parser.add_argument("--ctx", type=int, default=512, help="context per request, tokens")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads per engine (default COURSE_THREADS: the cores, max 8)")
    parser.add_argument("--vllm", default=None, help="python of a venv with vllm-cpu (`bash tools/install.sh --vllm` makes .venv-vllm)")
    parser.add_argument("--no-front-door", action="store_true", help="skip the `course serve` rows")
    parser.add_argument("--rounds", type=int, default=2, help="requests per learner at each level (at least 8 requests a level)")
    parser.add_argument("--out", type=Path, default=None, help="also write the results as JSON here (lesson 04 reads data/class_serving.json)")
    args = parser.parse_args()

    from course_utils.machine import machine

    started_at = machine()
    servers: dict[str, Any] = {"llama-cpp-python": LlamaServer(n_ctx=args.ctx, n_threads=args.threads, api_key=KEY)}
    if llama_server_binary() is not None:
        servers["llama-server"] = LlamaCppServer(parallel=args.parallel, n_ctx=args.ctx, n_threads=args.threads, api_key=KEY)
        if not args.no_front_door:
            servers["course serve (llama-server)"] = ClassServer("llama-server", port=0, api_key=KEY, parallel=args.parallel,
                                                                  n_ctx=args.ctx, n_threads=args.threads, log=RequestLog(stream=None))
    else:
        print("llama-server is not built: run `bash tools/build_llama_server.sh` for the continuous-batching rows")
    if args.vllm:
        servers["vllm"] = vllm_server(args.vllm, args.ctx, args.parallel)

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # a stopped benchmark still stops its servers
    rows, started = [], {}
    with contextlib.ExitStack() as stack:
        for name, server in servers.items():
            try:
                t0 = time.perf_counter()
                started[name] = stack.enter_context(server)
                print(f"started {name} in {time.perf_counter() - t0:.0f} s")
            except CourseError as err:
                print(f"{name}: did not start: {err}")
        for level in args.levels:
            n = max(8, args.rounds * level)
            results = {}
            for name, server in started.items():
                load_test(server.base_url, 1, 1, max_tokens=4, prompt="Hi", api_key=KEY)  # warm up
                results[name] = load_test(server.base_url, level, n, max_tokens=args.tokens, prompt=PROMPT, api_key=KEY, timeout=600)
            base = results.get("llama-cpp-python")
            for name, r in results.items():
                rows.append({
                    "learners": level, "engine": name, "requests": f"{len(r.ok)}/{len(r.requests)}",
                    "tokens/s": f"{r.throughput_tokens_per_s:.0f}",
                    "p50 s": f"{r.latency_percentile(50):.2f}", "p95 s": f"{r.latency_percentile(95):.2f}",
                    "TTFT s": f"{r.summary()['mean TTFT s']:.2f}",
                    "x llama-cpp-python": f"{r.throughput_tokens_per_s / base.throughput_tokens_per_s:.2f}" if base and base.throughput_tokens_per_s else "-",
                })
                print(f"  {level:>2} learners  {name:<28} {rows[-1]['tokens/s']:>5} tok/s  p50 {rows[-1]['p50 s']} s  p95 {rows[-1]['p95 s']} s", flush=True)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    weights = "SmolLM2-135M: Q4_1 GGUF" + (", vLLM its bf16 HF copy" if "vllm" in started else "")
    table(rows, f"Class serving on {os.cpu_count()} CPU cores ({args.threads or 'default'} threads per engine, load average {load:.1f} at the end): "
                f"{args.tokens} tokens per reply, {weights}")
    if args.out:
        write_results(args.out, rows, args, weights, started_at)


def write_results(path: Path, rows: list[dict], args: argparse.Namespace, weights: str, started_at: Machine) -> None:
    """The table as JSON, written atomically, with what it was measured on."""
    import datetime
    import json

    from course_utils.machine import machine
    from course_utils.paths import atomic_write_text

    now = machine()
    record = {"benchmark": "benchmarks/class_serving.py", "date": datetime.date.today().isoformat(),
              "machine_start": started_at.as_metadata(), "machine_end": now.as_metadata(),
              "settings": {"tokens": args.tokens, "parallel": args.parallel, "ctx": args.ctx, "rounds": args.rounds,
                           "threads": args.threads, "weights": weights, "prompt": PROMPT},
              "rows": rows}
    atomic_write_text(path, json.dumps(record, indent=1) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    from _table import with_machine

    raise SystemExit(with_machine(main))
