# %% [markdown]
# # Lab 13 · Diffusion: add noise, remove it, guide it
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/local-llm-lab/local-llm-lab/blob/main/labs/13_diffusion_lab.ipynb)
#
# Five exercises on lesson 13. Replace each `raise NotImplementedError` with your code, run the cell, then look at
# the check below it: ✅ means right, ❌ says what is wrong and where to look, ⏳ means not done yet. If a ❌ is not
# enough, `print(hint("q_sample"))` (or `"ddpm_step"`, `"guidance"`, `"ddim_step"`, `"sampler"`) shows the formula.
#
# Conventions (the same as lesson 13 and diffusers): time steps are **0-based**, `t = 0 ... T-1` with `T = 1000`;
# `schedule.betas[t]`, `schedule.alphas[t] = 1 - betas[t]` and `schedule.alphas_cumprod[t]` (written ᾱ_t, the
# product of the alphas up to and including step t). Images are tensors (batch, 1, 8, 8) in [-1, 1]. Never change an
# input tensor in place: the caller still needs it. NumPy inside your function is fine.
#
# **Run time:** 6 s on a 2-core CPU (Intel(R) Xeon(R) Processor), measured by `course run` on 2026-12-01; a slower machine takes longer.
#
# The lab samples from lesson 13's denoiser, which ships trained with the course (`data/diffusion/`), so nothing is
# trained here.

# %%
# Colab only: install the course (~5 min the first time). Does nothing on your own machine.
import sys
if "google.colab" in sys.modules:
    # !git clone -q --depth 1 https://github.com/local-llm-lab/local-llm-lab /content/local-llm-lab
    # !bash /content/local-llm-lab/tools/install.sh --system

# %% tags=["parameters"]
BACKEND = "auto"  # unused: this lab works with lesson 13's small image model
MODEL = None
SEED = 0

# %%
from course_utils import setup_notebook
from course_utils.checks.diffusion import (
    check_ddim_step,
    check_ddpm_step,
    check_guidance,
    check_q_sample,
    check_sampler,
    hint,
)

cfg = setup_notebook(seed=SEED)

import torch

from course_utils.denoisers import NULL_LABEL, cached_denoiser
from course_utils.diffusion import NoiseSchedule, ddim_timesteps
from course_utils.digits import DigitClassifier, load_split

torch.set_num_threads(cfg.n_threads)
split = load_split()
trained = cached_denoiser(split=split)  # lesson 13's denoiser (data/diffusion/; trained and cached if missing)
classifier = DigitClassifier(split.train_images, split.train_labels)
schedule = NoiseSchedule.linear(1000)
print(f"denoiser: {trained.parameters:,} parameters, {trained.origin}; null label {NULL_LABEL}; T = {schedule.T}")

# %% [markdown]
# ## Exercise 1: the forward process
#
# Write `q_sample(x0, t, noise, schedule)`: the noisy images x_t for a batch of clean images `x0`, with **one time
# step per image** (`t` is a tensor of shape (batch,)) and the given `noise` (same shape as `x0`):
#
# x_t = √ᾱ_t · x0 + √(1 − ᾱ_t) · noise
#
# Each image's ᾱ_t has to multiply every pixel of *that* image, whatever the image shape: (batch, 1, 8, 8) or
# (batch, 64). The check tries both, and steps from 0 to 999.

# %%
def q_sample(x0, t, noise, schedule):
    # TODO: look up abar_t for each image, shape it so it broadcasts over that image's pixels, combine
    raise NotImplementedError


check_q_sample(q_sample)

# %% [markdown]
# ## Exercise 2: one DDPM step back
#
# Write `ddpm_step(x_t, t, eps, schedule, noise)`: one reverse step from x_t to x_{t−1} (`t` is an `int` here, the
# same for the whole batch; `eps` is the network's noise prediction; `noise` is fresh Gaussian noise):
#
# mean = ( x_t − β_t / √(1 − ᾱ_t) · eps ) / √α_t
#
# x_{t−1} = mean + σ_t · noise, with σ_t² = β_t · (1 − ᾱ_{t−1}) / (1 − ᾱ_t) (the posterior variance)
#
# At the very last step, `t == 0`, return the mean: no noise is added (and ᾱ_{−1} does not exist).

# %%
def ddpm_step(x_t, t, eps, schedule, noise):
    # TODO: the mean from x_t and eps; at t == 0 return it; otherwise add sigma_t * noise
    raise NotImplementedError


check_ddpm_step(ddpm_step)

# %% [markdown]
# ## Exercise 3: classifier-free guidance
#
# The network predicts the noise twice: with the label (`eps_cond`) and with the "no label" token (`eps_uncond`).
# Write `guidance(eps_cond, eps_uncond, w)`: start from the unconditional prediction and move `w` times the
# difference towards the conditional one. `w = 0` ignores the label, `w = 1` is the plain conditional model, larger
# `w` follows the label more strongly (diffusers' `guidance_scale`).

# %%
def guidance(eps_cond, eps_uncond, w):
    # TODO: unconditional prediction + w times (conditional - unconditional)
    raise NotImplementedError


check_guidance(guidance)

# %% [markdown]
# ## Exercise 4: one DDIM step
#
# DDIM jumps from step `t` straight to an earlier step `t_prev` without adding noise:
# 1. predict the clean image: x0 = (x_t − √(1 − ᾱ_t) · eps) / √ᾱ_t;
# 2. noise it again to the level of `t_prev` with the same eps: x_prev = √ᾱ_prev · x0 + √(1 − ᾱ_prev) · eps.
#
# `t_prev = -1` means "the clean image": ᾱ_prev = 1 there. Write `ddim_step(x_t, t, t_prev, eps, schedule)`.

# %%
def ddim_step(x_t, t, t_prev, eps, schedule):
    # TODO: abar at t and at t_prev (1.0 when t_prev is -1); predict x0; re-noise it to t_prev with eps
    raise NotImplementedError


check_ddim_step(ddim_step)

# %% [markdown]
# ## Exercise 5: a fast sampler that works
#
# Put it together: write `generate(model, labels, steps, w, seed)` that returns one generated digit per label
# (shape (len(labels), 1, 8, 8)):
# - start from `torch.randn(len(labels), 1, 8, 8, generator=torch.Generator().manual_seed(seed))`;
# - walk the time steps `ddim_timesteps(1000, steps)` (999 down to near 0); the step after the last one is -1;
# - at each step ask `model(x, t, labels)` and `model(x, t, torch.full_like(labels, NULL_LABEL))` (`t` may be an int),
#   combine them with your `guidance`, and move on with your `ddim_step`.
#
# Then choose `STEPS` (at most 10, a hundredth of DDPM's 1,000) and the guidance scale `W` so that the lesson's
# classifier recognises **at least 90%** of your digits as the digit you asked for, while they stay varied: their
# *spread* (the mean distance between two digits of the same class) must be at least half that of real digits. The
# check generates 20 of each digit with your function, measures both itself, and shows the reference sampler's
# numbers at your settings beside yours.

# %%
def generate(model, labels, steps, w, seed=0):
    # TODO: start from seeded noise; for each (t, t_prev): two model calls, guidance, ddim_step
    raise NotImplementedError


STEPS = 10  # TODO: choose at most 10 steps
W = 1.0  # TODO: choose a guidance scale
check_sampler(generate, trained, classifier, split, STEPS, W)

# %% [markdown]
# ## Going further
#
# - Sample with your `ddpm_step` over all 1,000 steps (fresh `torch.randn` noise at each step) and compare the score
#   and the time with your 10-step DDIM sampler.
# - Try `W = 0`: what does the classifier say, and why is that the score of an *unconditional* model?
# - Find the smallest `STEPS` that still passes at your best `W`. What fails first, accuracy or spread? Compare with
#   SDXL Turbo's 1-4 steps (lesson 13, section 10).
# - Raise `W` to 5 or 10: accuracy stays high, but what happens to the spread? That is the fidelity/variety trade-off.
