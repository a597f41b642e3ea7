"""Diffusion on a CPU (lesson 13): samplers and schedulers side by side, on lesson 13's shipped models.

In one run, on the same starting noise and the same requested digits:

* **steps**: DDPM (all 1,000 steps) and DDIM with 5-100 steps, for the MLP denoiser: seconds,
  seconds relative to DDPM, and the judge's accuracy (with its standard error);
* **ours vs diffusers**: ``course_utils.diffusion.sample`` against diffusers' ``DDIMScheduler`` /
  ``DDPMScheduler`` loop driving the same network: the largest pixel difference and the time ratio
  (the scheduler's own overhead);
* **networks**: the MLP and diffusers' ``UNet2DModel`` at the same sampler settings.

    .venv/bin/python benchmarks/diffusion.py [--per-class 100] [--w 2] [--threads 2]
"""

from __future__ import annotations

import argparse
import time

import torch
from _table import table

from course_utils import denoisers, diffusion, digits
from course_utils.denoisers import NULL_LABEL, SHIPPED_CONFIGS


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=100, help="digits asked for per class (default 100)")
    parser.add_argument("--w", type=float, default=2.0, help="guidance scale (default 2)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    split = digits.load_split()
    mlp = denoisers.cached_denoiser(SHIPPED_CONFIGS["mlp"], split)  # shipped in data/diffusion/
    unet = denoisers.cached_denoiser(SHIPPED_CONFIGS["unet"], split)
    judge = digits.DigitClassifier(split.train_images, split.train_labels)
    labels = torch.arange(10).repeat(args.per_class)
    s = mlp.schedule

    def score(images) -> str:
        acc = judge.accuracy(images, labels)
        return f"{acc:.3f} ± {digits.standard_error(acc, len(labels)):.3f}"

    ddpm, ddpm_s = timed(lambda: diffusion.sample(mlp, labels, s, null_label=NULL_LABEL, w=args.w, method="ddpm"))
    rows = [{"sampler": "DDPM", "steps": s.T, "seconds": f"{ddpm_s:.2f}", "vs DDPM": "1.00", "accuracy": score(ddpm)}]
    for n in (5, 10, 20, 50, 100):
        images, sec = timed(lambda n=n: diffusion.sample(mlp, labels, s, null_label=NULL_LABEL, w=args.w, steps=n))
        rows.append({"sampler": "DDIM", "steps": n, "seconds": f"{sec:.2f}", "vs DDPM": f"{sec / ddpm_s:.3f}", "accuracy": score(images)})
    table(rows, f"MLP denoiser, {len(labels)} digits, w = {args.w}, {args.threads} threads")

    rows = []
    for kind, steps in (("ddim", 20), ("ddpm", s.T)):
        ours, ours_s = timed(lambda kind=kind, steps=steps: diffusion.sample(
            mlp, labels, s, null_label=NULL_LABEL, w=args.w, steps=steps, method=kind))
        theirs, theirs_s = timed(lambda kind=kind, steps=steps: denoisers.sample_with_scheduler(
            mlp, labels, denoisers.diffusers_scheduler(kind), steps, w=args.w))
        rows.append({"loop": f"{kind.upper()} {steps} steps", "ours s": f"{ours_s:.2f}", "diffusers s": f"{theirs_s:.2f}",
                     "diffusers / ours": f"{theirs_s / ours_s:.2f}", "max pixel diff": f"{(ours - theirs).abs().max():.1e}"})
    table(rows, "Our sampling loop vs diffusers' scheduler loop (same network, same noise)")

    rows = []
    for name, model in (("MLP (ours)", mlp), ("UNet2DModel (diffusers)", unet)):
        images, sec = timed(lambda model=model: denoisers.sample_with_scheduler(model, labels, denoisers.diffusers_scheduler("ddim"), 20, w=args.w))
        rows.append({"network": name, "parameters": f"{model.parameters:,}", "trained s": f"{model.seconds:.0f}",
                     "sampling s": f"{sec:.2f}", "accuracy": score(images)})
    table(rows, "Networks, DDIM 20 steps")


if __name__ == "__main__":
    from _table import with_machine

    raise SystemExit(with_machine(main))
