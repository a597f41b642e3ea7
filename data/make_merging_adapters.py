"""Regenerate ``merging_adapters/``: the two LoRA specialists of lesson 12 (merging models).

Lesson 12 merges two fine-tunes of the bundled SmolLM2-135M-Instruct: one trained on
``lora_dates.jsonl`` (dates -> ``YYYY-MM-DD``), one on ``lora_units.jsonl`` (quantities -> ``23 kg``).
Training both takes a few minutes on 2 cores, too long for a lesson that must run in under two
minutes on a fresh machine, so the course ships the two adapters (LoRA r = 8 on the four attention
projections, 3.7 MB each) and this script makes them:

    .venv/bin/python data/make_merging_adapters.py

It trains each task with ``course_utils.specialists.Recipe()`` (the default recipe: 40 AdamW steps
of 8 examples, lr 3e-3, seed 0) through ``specialists.specialist(..., retrain=True)``, the same code
that trains any other recipe into the cache, and writes ``merging_adapters/<task>-<key>/``
(``adapter_config.json``, ``adapter_model.safetensors`` in peft's format, and ``training.json`` with
the recipe and the loss of every step). ``<key>`` hashes the data file, the recipe and the base
model (``specialists.cache_key``), so a change to any of them makes the lesson train anew instead of
loading a stale adapter. The run is deterministic for a given torch version and thread count
(2 threads, set below); on another CPU the last bits of the weights may differ.
"""

from __future__ import annotations

import os
import shutil

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

THREADS = 2


def main() -> None:
    import torch

    from course_utils import specialists
    from course_utils.assets import load_hf_model

    torch.set_num_threads(THREADS)
    base, tokenizer = load_hf_model()
    out = specialists.shipped_dir()
    for task in specialists.TASKS:
        for old in out.glob(f"{task}-*"):
            shutil.rmtree(old)
        made = specialists.specialist(task, base, tokenizer, retrain=True, cache_dir=out, log_every=10)
        losses = made.train_result.losses
        print(f"{task}: {len(losses)} steps in {made.train_result.seconds:.0f} s, loss {losses[0]:.3f} -> {losses[-1]:.3f}; "
              f"wrote {made.adapter_dir}")


if __name__ == "__main__":
    main()
