"""LoRA on a CPU: seconds per step, tokens/s trained, memory, and how far the held-out loss falls.

Side by side in one run, on the same data (lesson 08's dates -> ISO 8601 task), batches, seed and loop
(``course_utils.lora.train``: AdamW, linear decay, clipped gradients):

* **ours**  - ``course_utils.lora``, r=8 on q/k/v/o of every layer, fp32 base
* **peft**  - Hugging Face peft with the same configuration
* **QLoRA** - ours on a frozen int4 base (``course_utils.quant``, group size 32)
* **full**  - full fine-tuning (every weight trainable, lr 5e-5), for scale

Each configuration runs in a fresh Python process, so its peak memory (peak RSS, which includes the
fp32 model it loads) is its own. "train state" is what training keeps besides activations: every
parameter and buffer, plus gradient and two AdamW moments per trainable parameter.

The headline run then trains **ours** for ``--seconds`` (default 180: the course's 3-minute budget)
and scores all 100 held-out examples before and after (loss per answer token, and exact match of
greedy answers).

    .venv/bin/python benchmarks/lora.py [--seconds 180] [--steps 10] [--batch 8]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

CONFIGS = ("ours", "peft", "qlora", "full")
LABELS = {"ours": "ours r=8 q/k/v/o", "peft": "peft r=8 q/k/v/o", "qlora": "QLoRA: ours on int4", "full": "full fine-tuning"}
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj"]


def child(config: str, steps: int, batch_size: int, n_heldout: int, max_seconds: float | None, exact: bool) -> dict:
    """Train one configuration in this process and return its measurements."""
    import resource

    import torch

    from course_utils import lora, quant
    from course_utils.assets import load_hf_model
    from course_utils.config import settings

    torch.set_num_threads(settings().n_threads)
    torch.manual_seed(0)
    model, tok = load_hf_model()
    lr = 2e-3
    if config == "ours":
        lora.inject_lora(model, TARGETS, r=8, alpha=16)
    elif config == "peft":
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=TARGETS))
    elif config == "qlora":
        model = quant.quantize_model(model, bits=4, group_size=32, inplace=True)
        lora.inject_lora(model, TARGETS, r=8, alpha=16)
    else:  # full fine-tuning: every weight trains, at a learning rate suited to that
        lr = 5e-5
    train_set, heldout = lora.load_examples("train"), lora.load_examples("test")[:n_heldout]
    before = lora.response_loss(model, tok, heldout)
    em_before = lora.exact_match(lora.generate(model, tok, [e.prompt for e in heldout], 16), [e.response for e in heldout]) if exact else None
    result = lora.train(model, lora.batches(tok, train_set, batch_size, seed=0), steps=steps, lr=lr, max_seconds=max_seconds)
    after = lora.response_loss(model, tok, heldout)
    em_after = lora.exact_match(lora.generate(model, tok, [e.prompt for e in heldout], 16), [e.response for e in heldout]) if exact else None
    trainable = [p for p in model.parameters() if p.requires_grad]
    state = sum(t.numel() * t.element_size() for t in quant.stored_tensors(model).values())
    state += 3 * sum(p.numel() * p.element_size() for p in trainable)  # gradient + AdamW's two moments
    return {
        "config": config, "trainable": sum(p.numel() for p in trainable), "steps": result.steps,
        "seconds": result.seconds, "s_per_step": result.seconds_per_step, "tokens_per_s": result.tokens_per_s,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "train_state_mb": state / 1e6,
        "loss_before": before, "loss_after": after, "em_before": em_before, "em_after": em_after,
        "losses": result.losses,
    }


def run_child(config: str, steps: int, batch_size: int, n_heldout: int, max_seconds: float | None = None, exact: bool = False) -> dict:
    args = [sys.executable, __file__, "--child", config, "--steps", str(steps), "--batch", str(batch_size), "--heldout", str(n_heldout)]
    if max_seconds is not None:
        args += ["--max-seconds", str(max_seconds)]
    if exact:
        args.append("--exact")
    out = subprocess.run(args, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"{config} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=180.0, help="training budget of the headline run (s)")
    parser.add_argument("--steps", type=int, default=10, help="steps per configuration in the comparison")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--heldout", type=int, default=24, help="held-out examples scored in the comparison")
    parser.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated subset of " + ",".join(CONFIGS))
    parser.add_argument("--child", choices=CONFIGS, help=argparse.SUPPRESS)
    parser.add_argument("--max-seconds", type=float, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--exact", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.steps, args.batch, args.heldout, args.max_seconds, args.exact)))
        return

    print(f"load average before: {os.getloadavg()[0]:.2f}   CPU cores: {os.cpu_count()}")
    started = time.perf_counter()
    rows = [run_child(c, args.steps, args.batch, args.heldout) for c in args.configs.split(",")]
    ref = next((r for r in rows if r["config"] == "ours"), rows[0])
    print(f"\nSame {args.steps} steps (batch {args.batch}) each; held-out loss on {args.heldout} examples (nats per answer token)\n")
    print(f"{'configuration':22} {'trainable':>12} {'s/step':>7} {'tokens/s':>9} {'peak RSS':>9} {'train state':>12} "
          f"{'held-out loss':>15} {'drop':>6} {'time vs ours':>13}")
    for r in rows:
        print(f"{LABELS[r['config']]:22} {r['trainable']:>12,} {r['s_per_step']:>7.2f} {r['tokens_per_s']:>9.0f} "
              f"{r['peak_rss_mb']:>6.0f} MB {r['train_state_mb']:>9.0f} MB {r['loss_before']:>6.3f} -> {r['loss_after']:.3f} "
              f"{1 - r['loss_after'] / r['loss_before']:>6.0%} {r['s_per_step'] / ref['s_per_step']:>12.2f}x")

    if "ours" in args.configs.split(","):
        steps = max(1, int(args.seconds / ref["s_per_step"]))  # the learning-rate decay is planned for these
        h = run_child("ours", steps, args.batch, 100, max_seconds=args.seconds, exact=True)
        drop = 1 - h["loss_after"] / h["loss_before"]
        print(f"\nHeadline: ours, {h['steps']} steps of {args.batch} in {h['seconds']:.0f} s of training "
              f"({h['s_per_step']:.2f} s/step, {h['tokens_per_s']:.0f} tokens/s)")
        print(f"  held-out loss (100 examples): {h['loss_before']:.3f} -> {h['loss_after']:.3f} nats/token ({drop:.0%} lower; target >= 30% in <= 180 s)")
        print(f"  exact match (100 examples):   {h['em_before']:.0%} -> {h['em_after']:.0%}")
        print(f"  training loss, every 5th step: {' '.join(f'{x:.2f}' for x in h['losses'][::5])}")
    print(f"\nload average after: {os.getloadavg()[0]:.2f}   total wall time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    from _table import with_machine

    raise SystemExit(with_machine(main))
