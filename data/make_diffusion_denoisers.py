"""Retrain the two denoisers that lesson 13 (diffusion), its lab and ``benchmarks/diffusion.py`` sample
from, and write them to ``data/diffusion/<arch>-<key>/`` as float16 safetensors with a ``train.json``
(the configuration, the training time and the loss every 100 steps).

The configurations are ``course_utils.denoisers.SHIPPED_CONFIGS``: our MLP (3,000 steps of 256 images)
and diffusers' ``UNet2DModel`` (600 steps of 64 images), both on scikit-learn's digits, seed 0. The
folder name is the cache key of the configuration and the data, so ``cached_denoiser`` finds them and
any other configuration is trained and cached instead. Training is seeded; its floats depend a little
on the CPU and the thread count, so a rerun gives nearly, not bit for bit, the same weights:

    python data/make_diffusion_denoisers.py [--threads 1]
"""

from __future__ import annotations

import argparse
import shutil

import torch

from course_utils.denoisers import SHIPPED, SHIPPED_CONFIGS, folder_name, save_denoiser, train
from course_utils.digits import load_split
from course_utils.paths import data_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--only", choices=sorted(SHIPPED_CONFIGS), help="retrain one of them")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    split, root = load_split(), data_path(SHIPPED)
    for arch, config in SHIPPED_CONFIGS.items():
        if args.only and arch != args.only:
            continue
        for old in root.glob(f"{arch}-*"):  # an earlier configuration's weights
            shutil.rmtree(old)
        model, losses, seconds = train(config, split)
        folder = save_denoiser(root / folder_name(config, split), model, config, losses, seconds, dtype=torch.float16)
        size = sum(f.stat().st_size for f in folder.iterdir())
        print(f"{folder.name}: {seconds:.0f} s of training, final loss {losses[-1]:.4f}, {size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
