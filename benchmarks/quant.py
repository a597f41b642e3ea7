"""Quantization benchmark: size, perplexity and speed of SmolLM2 in every format, side by side.

    .venv/bin/python benchmarks/quant.py                  # 16,384 tokens per perplexity run (~25 min on 2 idle cores)
    .venv/bin/python benchmarks/quant.py --tokens 4096    # a quicker look

Models: fp32 (the bundled Q4_1 GGUF de-quantized by transformers), bf16, the course's own simulated
quantization (``course_utils.quant``: int8 absmax per channel; int4 with groups of 32, min-max (Q4_1's
grid) and integer zero-point; int4 zero-point in blocks of 128), PyTorch's dynamic int8
(``torch.ao.quantization.quantize_dynamic``), and the GGUF file itself run by llama.cpp.

Perplexity: the Wikipedia passages of BoolQ validation, tokenized once by the transformers tokenizer;
every model scores the *same token ids* in windows of ``--window`` tokens (course_utils.evaluation).
Size: bytes of every stored tensor (shared tensors once); for the GGUF, the file size.
Speed: "score tok/s" is the forward-pass throughput of the perplexity run (batches of 4 windows for
PyTorch, one window per call for llama.cpp); "generate tok/s" is greedy decoding of ``--gen`` tokens
after a short prompt (transformers ``generate``; llama.cpp ``Llama.generate``). The simulated models
are not timed for generation: they de-quantize every weight on every call, which measures nothing
useful. The machine's load is printed first: on a shared machine every time is inflated.

Second table, the GGUF workflow a learner runs on a model of their own: the fp32 model exported to f16 twice,
by the course's writer (``export.export_gguf``) and by llama.cpp's ``convert_hf_to_gguf.py``
(``course_utils.gguf_convert``), then quantized by llama.cpp itself (``quant.quantize_gguf``: Q8_0 and the
k-quant mixes Q6_K, Q5_K_M, Q4_K_M). Beside perplexity, as llama.cpp's maintainers measure it: the KL
divergence of each file's next-token distributions from the fp32 model's (mean and 99th percentile) and how
often the top token is the same, on the first ``--kl-tokens`` tokens. No importance matrix: ``llama-imatrix``
is a C++ tool that llama-cpp-python neither builds nor binds.
"""

from __future__ import annotations

import argparse
import copy
import os
import time
import warnings

from _table import table  # benchmarks/_table.py

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

PROMPT = "The history of the Roman Empire spans more than a thousand years. In this essay we"


def hf_generate_tokens_per_s(model, tokenizer, n: int) -> float:
    import torch

    prompt = tokenizer(PROMPT, return_tensors="pt").input_ids
    with torch.inference_mode():
        model.generate(prompt, max_new_tokens=4, do_sample=False)  # warm-up
        started = time.perf_counter()
        model.generate(prompt, max_new_tokens=n, min_new_tokens=n, do_sample=False)
        return n / (time.perf_counter() - started)


def llamacpp_generate_tokens_per_s(llm, tokenizer, n: int) -> float:
    """Like ``hf_generate_tokens_per_s``: the short prompt's prefill is included on both sides."""
    prompt = tokenizer.encode(PROMPT, add_special_tokens=False)
    for count in (4, n):  # the first pass warms up
        llm.reset()  # a fresh KV cache, as for transformers
        started = time.perf_counter()
        for i, _ in enumerate(llm.generate(prompt, temp=0.0, min_p=0.0, reset=True)):
            if i + 1 == count:
                break
        seconds = time.perf_counter() - started
    return n / seconds


def llamacpp_perplexity_and_speed(path, tokenizer, ids, args, threads: int):
    """Perplexity of a GGUF file on ``ids`` (windows of ``args.window``) and its generation speed, by llama.cpp."""
    from llama_cpp import Llama

    from course_utils import evaluation as ev
    from course_utils.backends.llamacpp import quiet_stderr

    with quiet_stderr():
        llm = Llama(model_path=str(path), n_ctx=args.window, n_batch=args.window, n_ubatch=args.window,
                    logits_all=True, n_threads=threads, verbose=False)
    try:
        return ev.perplexity_llamacpp(llm, ids=ids, window=args.window), llamacpp_generate_tokens_per_s(llm, tokenizer, args.gen)
    finally:
        llm.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=16_384, help="tokens scored per perplexity run")
    parser.add_argument("--window", type=int, default=512, help="tokens per window")
    parser.add_argument("--gen", type=int, default=64, help="tokens generated per generation timing")
    parser.add_argument("--threads", type=int, default=None, help="threads for PyTorch and llama.cpp (default: one per core)")
    parser.add_argument("--kl-tokens", type=int, default=2048, help="tokens whose next-token distributions are compared")
    args = parser.parse_args()

    import torch
    from torch import nn

    from course_utils import evaluation as ev
    from course_utils import quant
    from course_utils.assets import load_hf_model, smollm2_gguf
    from course_utils.config import settings
    from course_utils.evaldata import boolq_passages

    threads = args.threads or settings().n_threads
    torch.set_num_threads(threads)
    load = os.getloadavg()
    print(f"{os.cpu_count()} CPU cores, {threads} threads, torch {torch.__version__}, "
          f"load average {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} (1/5/15 min)")
    started = time.perf_counter()
    model, tokenizer = load_hf_model()
    ids = ev.token_stream(lambda s: tokenizer.encode(s, add_special_tokens=False), boolq_passages(), max_tokens=args.tokens)
    print(f"perplexity: {len(ids):,} tokens of BoolQ validation passages, windows of {args.window}")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization is deprecated in favour of torchao
        from torch.ao.quantization import quantize_dynamic

        dynamic = quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)

    variants = {
        "fp32": lambda: model,
        "bf16": lambda: copy.deepcopy(model).to(torch.bfloat16),
        "own int8 absmax per-channel": lambda: quant.quantize_model(model, bits=8),
        "own int4-g32 min-max (Q4_1 grid)": lambda: quant.quantize_model(model, bits=4, group_size=32, scheme="minmax"),
        "own int4-g32 zero-point": lambda: quant.quantize_model(model, bits=4, group_size=32, scheme="zeropoint"),
        "own int4-g128 zero-point (blocks)": lambda: quant.quantize_model(model, bits=4, group_size=128, scheme="zeropoint", granularity="block"),
        "torch dynamic int8": lambda: dynamic,
    }
    rows, base = [], None
    for name, make in variants.items():
        m = make()
        result = ev.perplexity(m, ids=ids, window=args.window, batch_size=4)
        simulated = name.startswith("own")
        gen = "n/a (simulated)" if simulated else f"{hf_generate_tokens_per_s(m, tokenizer, args.gen):.1f}"
        rows.append({"name": name, "bytes": quant.model_size_bytes(m), "ppl": result.perplexity, "score": result.tokens_per_s, "gen": gen})
        base = base or rows[0]
        print(f"  {name:34s} perplexity {result.perplexity:8.3f}  ({time.perf_counter() - started:5.0f} s)", flush=True)

    gguf = smollm2_gguf()
    result, gen = llamacpp_perplexity_and_speed(gguf, tokenizer, ids, args, threads)
    rows.append({"name": "GGUF Q4_1 (llama.cpp)", "bytes": gguf.stat().st_size, "ppl": result.perplexity, "score": result.tokens_per_s, "gen": f"{gen:.1f}"})
    print(f"  {'GGUF Q4_1 (llama.cpp)':34s} perplexity {result.perplexity:8.3f}  ({time.perf_counter() - started:5.0f} s)")

    table([{
        "model": r["name"],
        "size MB": f"{r['bytes'] / 1e6:.1f}",
        "vs fp32": f"{base['bytes'] / r['bytes']:.2f}x smaller",
        "perplexity": f"{r['ppl']:.3f}",
        "ppl vs fp32": f"{100 * (r['ppl'] / base['ppl'] - 1):+.2f} %",
        "score tok/s": f"{r['score']:.0f}",
        "score vs fp32": f"{r['score'] / base['score']:.2f}x",
        "generate tok/s": r["gen"],
    } for r in rows], f"Size, perplexity ({len(ids):,} tokens) and speed")

    by_name = {r["name"]: r for r in rows}
    int8 = by_name["own int8 absmax per-channel"]["ppl"] / base["ppl"] - 1
    g32 = by_name["own int4-g32 zero-point"]["ppl"] / base["ppl"] - 1
    g32_grid = by_name["own int4-g32 min-max (Q4_1 grid)"]["ppl"] / base["ppl"] - 1
    print("\nTargets (DESIGN.md): own int8 within +1 % of fp32, own int4 group-wise within +10 %")
    print(f"  int8:               {100 * int8:+.2f} %  {'met' if int8 <= 0.01 else 'MISSED'}")
    print(f"  int4-g32 min-max:   {100 * g32_grid:+.2f} %  {'met' if g32_grid <= 0.10 else 'MISSED'} (re-creates the GGUF's own Q4_1 grid: lossless by construction)")
    print(f"  int4-g32 zero-point:{100 * g32:+.2f} %  {'met' if g32 <= 0.10 else 'MISSED'} (a second 4-bit rounding of weights that are already 4-bit)")
    gguf_workflow(model, tokenizer, ids, args, threads, base["ppl"])
    print(f"\nTotal {time.perf_counter() - started:.0f} s")
    return 0


def gguf_workflow(model, tokenizer, ids, args, threads: int, fp32_ppl: float) -> None:
    """Export to f16 (ours and llama.cpp's converter), quantize with llama.cpp, judge each file by KL and perplexity."""
    import tempfile
    from pathlib import Path

    from course_utils import evaluation as ev
    from course_utils import export, gguf_convert, quant
    from course_utils.assets import converted_model_dir, smollm2_gguf
    from course_utils.errors import ModelNotFound

    folder = Path(tempfile.mkdtemp(prefix="quant-bench-"))
    started = time.perf_counter()
    files = {"f16, course writer": export.export_gguf(model, folder / "ours-f16.gguf", outtype="f16", tokenizer_gguf=smollm2_gguf())}
    made = {"f16, course writer": time.perf_counter() - started}
    try:
        started = time.perf_counter()
        files["f16, convert_hf_to_gguf.py"] = gguf_convert.convert_with_llamacpp(converted_model_dir(smollm2_gguf()), folder / "theirs-f16.gguf")
        made["f16, convert_hf_to_gguf.py"] = time.perf_counter() - started
        print(f"\nllama.cpp's converter vs the course writer: {gguf_convert.compare_gguf(files['f16, course writer'], files['f16, convert_hf_to_gguf.py'])}")
    except ModelNotFound as err:
        print(f"\nllama.cpp's converter is not compared: {err}")
    for kind in ("Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M"):
        started = time.perf_counter()
        files[kind] = quant.quantize_gguf(files["f16, course writer"], folder / f"{kind}.gguf", kind, n_threads=threads)
        made[kind] = time.perf_counter() - started
    files["Q4_1 (bundled)"] = smollm2_gguf()

    kl_ids = ids[:args.kl_tokens]
    reference = ev.next_token_logprobs(model, kl_ids)
    rows = []
    for name, path in files.items():
        logprobs, _ = ev.next_token_logprobs_llamacpp(path, kl_ids, n_threads=threads)
        d = ev.divergence(reference, logprobs).row()
        del logprobs
        ppl, gen = llamacpp_perplexity_and_speed(path, tokenizer, ids, args, threads)
        types = quant.tensor_types(path)
        rows.append({
            "file": name, "size MB": f"{path.stat().st_size / 1e6:.1f}", "made in s": f"{made[name]:.1f}" if name in made else "-",
            "k-quant tensors": sum(n for t, n in types.items() if "_K" in t), "perplexity": f"{ppl.perplexity:.3f}",
            "ppl vs fp32": f"{100 * (ppl.perplexity / fp32_ppl - 1):+.2f} %", "mean KL": f"{d['mean KL']:.5f}",
            "99% KL": f"{d['99% KL']:.4f}", "same top token": f"{d['same top token']:.1%}", "generate tok/s": f"{gen:.1f}",
        })
        print(f"  {name:28s} perplexity {ppl.perplexity:8.3f}  mean KL {d['mean KL']:.5f}", flush=True)
    table(rows, f"GGUF files by llama.cpp: perplexity ({len(ids):,} tokens) and KL from fp32 ({len(kl_ids) - 1:,} positions, transformers fp32 as P)")
    for path in folder.iterdir():
        path.unlink()
    folder.rmdir()


if __name__ == "__main__":
    from _table import with_machine

    raise SystemExit(with_machine(main))
