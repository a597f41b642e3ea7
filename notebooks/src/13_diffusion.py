# %% [markdown]
# # 13 · Beyond text: image generation by diffusion
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/local-llm-lab/local-llm-lab/blob/main/notebooks/13_diffusion.ipynb)
#
# **What you will learn**
# - how a **diffusion model** makes an image: it learns to *remove noise*, then starts from pure noise and removes
#   it step by step;
# - the pieces from scratch, in a few lines each: the **noise schedule**, the **forward process** q(x_t | x_0), the
#   **ε-prediction loss**, and the **reverse sampling loop** (DDPM);
# - **classifier-free guidance**, the small-scale version of a text prompt: one network, trained to work with and
#   without its label, steered by a guidance scale w;
# - **DDIM**: the same trained network sampled in 10-50 steps instead of 1,000, and what that costs in quality;
# - the same with **diffusers** (`UNet2DModel`, `DDPMScheduler`, `DDIMScheduler`), checked to compute the same
#   numbers as our code;
# - how **Stable Diffusion** scales this up (a VAE's latent space, a CLIP text encoder, a U-Net or a transformer),
#   and how to run it with diffusers when you have internet and a GPU.
#
# **Prerequisites:** a PyTorch training loop (lesson 08), what a transformer and attention are (lesson 02). No image
# background needed.
#
# **Run time:** 34 s on a 2-core CPU (Intel(R) Xeon(R) Processor), measured by `course run` on 2026-12-01; a slower machine takes longer.
#
# The lesson trains a short demonstration run itself and samples from two denoisers that ship trained with the course
# (`data/diffusion/`, made by `data/make_diffusion_denoisers.py`). `FULL = True` trains 3× (U-Net: 5×) longer
# instead (once, then cached) and judges 3× more samples.
#
# No image-generation weights can be downloaded here, so we train our own model, on the 1,797 handwritten 8×8
# digits that ship with scikit-learn. The code lives in `src/course_utils/diffusion.py` (the maths),
# `denoisers.py` (the networks, training, cache, diffusers bridge) and `digits.py` (data and judge).

# %%
# Colab only: install the course (~5 min the first time). Does nothing on your own machine.
import sys
if "google.colab" in sys.modules:
    # !git clone -q --depth 1 https://github.com/local-llm-lab/local-llm-lab /content/local-llm-lab
    # !bash /content/local-llm-lab/tools/install.sh --system

# %% tags=["parameters"]
BACKEND = "auto"  # unused: this lesson trains and runs its own image model
MODEL = None  # unused
SEED = 0
FULL = False  # True: 3x longer training (retrains once, then cached) and 3x more samples per measurement
DEMO_STEPS = 300  # the short training run this notebook does itself (section 3)
TRAIN_STEPS = 3000  # training steps of the MLP denoiser we sample from (3000: shipped trained; FULL: 9000, trained)
UNET_STEPS = 600  # training steps of diffusers' UNet2DModel, section 9 (600: shipped trained; FULL: 3000, trained)
PER_CLASS = 30  # generated digits per class for each measurement (FULL: 100)
DDPM_PER_CLASS = 10  # digits per class for the slow 1,000-step DDPM measurement, section 7 (FULL: 30)
GUIDANCE = [0.0, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0]  # guidance scales w to measure
DDIM_STEPS = [1, 2, 3, 5, 10, 20, 50]  # DDIM step counts to measure (DDPM always walks all 1,000)

# %%
from course_utils import record, setup_notebook

cfg = setup_notebook(seed=SEED)

import inspect
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import Markdown, display

from course_utils import denoisers, diffusion, digits
from course_utils.denoisers import NULL_LABEL, TrainConfig, cached_denoiser
from course_utils.evaluation import binomial_stderr
from course_utils.plots import labelled

torch.set_num_threads(cfg.n_threads)
if FULL:
    TRAIN_STEPS, UNET_STEPS, PER_CLASS, DDPM_PER_CLASS = 3 * TRAIN_STEPS, 5 * UNET_STEPS, 100, 30
labels = torch.arange(10).repeat(PER_CLASS)  # the digits we ask for in every measurement: 0-9, PER_CLASS each

# %% [markdown]
# ## 1. The data: 1,797 tiny handwritten digits
#
# scikit-learn installs a copy of the UCI handwritten digits: 8×8 grey images, pixel values 0-16, about 180 of each
# digit. Diffusion models like their data centred, so `digits.load_split` rescales the pixels to [-1, 1] and keeps
# a stratified 20% aside that neither the diffusion model nor the judge (section 5) ever trains on.

# %%
# NBVAL_CHECK_OUTPUT
split = digits.load_split(test_fraction=0.2, seed=0)
print("train:", tuple(split.train_images.shape), "held out:", tuple(split.test_images.shape))
print("pixel range:", float(split.train_images.min()), "to", float(split.train_images.max()))
print("held-out digits per class:", np.bincount(split.test_labels.numpy()).tolist())

# %%
fig = digits.show_grid(split.train_images[:20], [f"label {int(y)}" for y in split.train_labels[:20]],
                       title="Real training digits (8×8 pixels, scikit-learn)")
plt.show()

# %% [markdown]
# Each image is just 64 numbers. That is what lets us train an image generator on a CPU at all (section 3 prints how long it takes): a 512×512
# colour photo has 786,432 numbers (section 10 shows how Stable Diffusion copes with that).
#
# ## 2. The forward process: ruining an image on purpose
#
# Take a clean image x₀ and add a little Gaussian noise, T = 1,000 times. Step t adds variance β_t; the **noise
# schedule** of the DDPM paper (Ho et al. 2020, "Denoising Diffusion Probabilistic Models") lets β_t grow linearly
# from 0.0001 to 0.02. Because sums of Gaussians are Gaussian, we never need to walk the 1,000 steps: with
# α_t = 1 − β_t and ᾱ_t = α_1·α_2·…·α_t (the cumulative product),
#
# **x_t = √ᾱ_t · x₀ + √(1 − ᾱ_t) · ε**, with ε ~ N(0, I).
#
# √ᾱ_t is how much of the image is left, √(1 − ᾱ_t) how much noise there is. Time steps are 0-based, as in
# diffusers: t = 0 … 999.

# %%
schedule = diffusion.NoiseSchedule.linear(T=1000, beta_start=1e-4, beta_end=0.02)
print(inspect.getsource(diffusion.q_sample))
pd.DataFrame(diffusion.describe(schedule)).round(5)

# %%
fig, ax = plt.subplots(figsize=(6.5, 3.2))
steps_axis = np.arange(schedule.T)
ax.plot(steps_axis, schedule.alphas_cumprod.sqrt(), label="signal weight √ᾱ_t")
ax.plot(steps_axis, (1 - schedule.alphas_cumprod).sqrt(), label="noise weight √(1 − ᾱ_t)")
labelled(ax, "The linear noise schedule: how much image is left at step t", "time step t", "weight (dimensionless)")
ax.legend()
plt.show()

# %%
shown_steps = [0, 50, 100, 200, 300, 500, 700, 999]
one = split.train_images[:1].repeat(len(shown_steps), 1, 1, 1)
noise = torch.randn(one.shape, generator=torch.Generator().manual_seed(SEED))
noisy = diffusion.q_sample(one, torch.tensor(shown_steps), noise, schedule)
fig = digits.show_grid(noisy, [f"t = {t}" for t in shown_steps], columns=len(shown_steps), ax_size=1.0,
                       title="One digit, noised to different steps with q_sample")
plt.show()

# %% [markdown]
# By t ≈ 300 the digit is hard to see; at t = 999 only √ᾱ ≈ 0.006 of it is left: the image *is* noise. That is
# the point: if a model can undo the noise step by step, it can start from noise it draws itself.
#
# Is the closed form really the same as adding noise 500 times? Check it on many noise draws of one image: mean and
# spread of each pixel must agree.

# %%
t_check, draws = 500, 10_000
x0 = split.train_images[0].reshape(1, -1)
walked = x0.repeat(draws, 1)
gen = torch.Generator().manual_seed(SEED)
for t in range(t_check + 1):  # one small step at a time: x_t = sqrt(1 - beta_t) x_{t-1} + sqrt(beta_t) z
    walked = (1 - schedule.betas[t]).sqrt() * walked + schedule.betas[t].sqrt() * torch.randn(walked.shape, generator=gen)
abar = schedule.alphas_cumprod[t_check]
mean_gap = (walked.mean(0) - abar.sqrt() * x0[0]).abs().max().item()
std_gap = (walked.std(0) - (1 - abar).sqrt()).abs().max().item()
print(f"after {t_check + 1} small steps: largest gap to the closed form, mean {mean_gap:.3f}, std {std_gap:.3f} "
      f"(closed form: mean = {abar.sqrt():.3f}·x0, std = {(1 - abar).sqrt():.3f})")
print(f"standard error of a mean over {draws:,} draws: {(1 - abar).sqrt() / draws ** 0.5:.4f}")
assert mean_gap < 0.05 and std_gap < 0.05

# %% [markdown]
# Within sampling error (the largest of 64 pixel gaps is a few standard errors, printed above) the step-by-step walk
# and the formula agree. Training will use the formula: any t, one line.
#
# ## 3. Learning to predict the noise
#
# The network ε_θ(x_t, t, label) is shown a noisy image, the step t and the digit, and asked for the noise ε that was
# added. The loss is the mean squared error between the true and the predicted noise at a random step: the
# "simple" objective of the DDPM paper.

# %%
print(inspect.getsource(diffusion.diffusion_loss))

# %% [markdown]
# Our network, `denoisers.DigitDenoiser`, is a small MLP over the 64 pixels with residual blocks; the step t enters as
# a sinusoidal embedding (as positions do in a transformer) and the label as a learned embedding. One extra label,
# number 10, means **"no label"**: during training 15% of the labels are replaced by it (*label dropout*), so the
# same network also learns to denoise without being told the digit. Section 6 needs that.
#
# Training uses AdamW, a one-cycle learning rate and an exponential moving average of the weights
# (`denoisers.train`). First a short run, here and now:

# %%
demo_config = TrainConfig(arch="mlp", steps=DEMO_STEPS)
demo, demo_losses, demo_seconds = denoisers.train(demo_config, split, log_every=25)
print(f"{sum(p.numel() for p in demo.parameters()):,} parameters, {DEMO_STEPS} steps of {demo_config.batch_size} "
      f"images in {demo_seconds:.1f} s: loss {demo_losses[0]:.3f} over the first 25 steps, {demo_losses[-1]:.3f} "
      "over the last 25")
assert demo_losses[-1] < 0.5 * demo_losses[0]

# %% [markdown]
# The network learns fast at first. Good samples need about ten times more training (the next cell prints how long it took), so
# the course ships the result: `cached_denoiser` looks for the configuration's weights in `data/diffusion/`
# (float16, trained by `data/make_diffusion_denoisers.py` with the same code), then in the course cache, and trains
# only a configuration it finds in neither (then caches it). The folder name is a hash of everything that made the
# weights, so changing `TRAIN_STEPS` gives a new model, not a stale one.

# %%
config = TrainConfig(arch="mlp", steps=TRAIN_STEPS)
start = time.perf_counter()
mlp = cached_denoiser(config, split)
print(f"{mlp.parameters:,} parameters, {config.steps:,} steps of {config.batch_size} images: {mlp.origin} "
      f"in {time.perf_counter() - start:.1f} s (training took {mlp.seconds:.0f} s where it was trained)")
print("folder:", mlp.folder.name)
fig, ax = plt.subplots(figsize=(6, 3))
ax.plot(np.arange(1, len(mlp.losses) + 1) * 100, mlp.losses, label=f"{config.steps:,} steps (mean of every 100)")
ax.plot(np.arange(1, len(demo_losses) + 1) * 25, demo_losses, label=f"our {DEMO_STEPS}-step run (mean of every 25)")
ax.set_yscale("log")
labelled(ax, "Training loss of the noise predictor", "training step", "MSE of predicted noise (per pixel)")
ax.legend(fontsize=8)
plt.show()
assert mlp.losses[-1] < 0.5 * mlp.losses[0]

# %% [markdown]
# The loss falls fast, then slowly. It never gets near 0, and cannot: at large t the image is almost all noise and
# the noise is easy to guess, but at small t a network has to tell noise from the digit's own strokes. Section 5
# measures what the extra training buys in the samples.
#
# ## 4. Generating: the reverse process (DDPM)
#
# To go back from x_t to x_{t−1}, DDPM uses the Gaussian q(x_{t−1} | x_t, x₀) that the forward process implies, with
# the network's estimate of x₀ plugged in. Written with the predicted noise ε̂ (DDPM paper, Algorithm 2):
#
# x_{t−1} = ( x_t − β_t / √(1 − ᾱ_t) · ε̂ ) / √α_t + σ_t · z, with σ_t² = β_t (1 − ᾱ_{t−1}) / (1 − ᾱ_t) and fresh
# noise z (none at the last step).
#
# Our `ddpm_step` computes the same mean through the predicted clean image, because that form lets us **clip** the
# prediction to the data range [-1, 1] (as diffusers' `clip_sample` does):

# %%
print(inspect.getsource(diffusion.ddpm_step))

# %% [markdown]
# The whole sampler is a loop over t = 999 … 0. Written out by hand, keeping a few snapshots to look at:

# %%
grid_labels = torch.arange(10).repeat(2)
gen = torch.Generator().manual_seed(SEED)
x = torch.randn(len(grid_labels), 1, 8, 8, generator=gen)
snapshots = {}
start = time.perf_counter()
with torch.no_grad():
    for t in range(schedule.T - 1, -1, -1):
        eps = diffusion.guided_eps(mlp, x, t, grid_labels, w=1.0, null_label=NULL_LABEL)  # w = 1: just the label
        z = torch.randn(x.shape, generator=gen) if t > 0 else None
        x = diffusion.ddpm_step(x, t, eps, schedule, z, clip=True)
        if t in (999, 800, 600, 400, 200, 100, 50, 0):
            snapshots[t] = x[3].clone()
ddpm_seconds = time.perf_counter() - start
by_hand = x
same = diffusion.sample(mlp, grid_labels, schedule, null_label=NULL_LABEL, w=1.0, method="ddpm", seed=SEED)
assert torch.allclose(same, by_hand, atol=1e-5)  # course_utils.diffusion.sample is exactly this loop
print(f"{schedule.T} network calls for {len(grid_labels)} digits: {ddpm_seconds:.1f} s")
fig = digits.show_grid(torch.stack(list(snapshots.values())), [f"after t={t}" for t in snapshots], columns=8,
                       ax_size=1.0, title="One sample on its way from noise to a digit (asked for a 3)")
plt.show()

# %% [markdown]
# The digit appears late: for most of the 1,000 steps the sample is noise with a faint structure, and the strokes
# sharpen in the last couple of hundred steps, where the noise level is low. `diffusion.sample(..., method="ddpm")`
# is the same loop (the assert checks it gives the same pixels). Here are all 20 samples:

# %%
judge = digits.DigitClassifier(split.train_images, split.train_labels)  # introduced properly in section 5
said = judge.predict(by_hand)
fig = digits.show_grid(by_hand, [f"{a} → {s}" for a, s in zip(grid_labels.tolist(), said)], ax_size=0.9,
                       title="DDPM, 1,000 steps, w = 1: two samples per digit (asked → seen by the judge)")
plt.show()

# %% [markdown]
# Each title says which digit we asked for and which digit the classifier of the next section sees. Where the two
# differ, that is a real failure of the model.
#
# ## 5. A judge for generated digits
#
# "Does it look like a 3?" needs a judge that does not care who drew the digit. We train a support-vector classifier
# (scikit-learn's `SVC`, RBF kernel) on the *real* training digits and measure it on the held-out real digits.
# Then two reference points: real held-out digits (the best a generator could hope for) and the pure noise our
# samplers start from (what no learning at all gives).

# %%
acc_real = judge.accuracy(split.test_images, split.test_labels)
x_T = torch.randn(len(labels), 1, 8, 8, generator=torch.Generator().manual_seed(SEED))  # what every sampler starts from
acc_noise = judge.accuracy(x_T, labels)
record("judge accuracy on held-out real digits", acc_real, note=f"{len(split.test_labels)} images", fmt=".1%")
record("judge accuracy on pure noise", acc_noise, note=f"{len(labels)} noise images, chance is 10%", fmt=".1%")
assert acc_real > 0.95 and acc_noise < 0.3

# %% [markdown]
# Now the judge can say what training longer bought: the same 20-step sampler (section 7), w = 1, on the short
# run of section 3 and on the fully trained model.

# %%
acc_trained = {}
for trained_steps, model in ((DEMO_STEPS, demo), (TRAIN_STEPS, mlp)):
    images = diffusion.sample(model, labels, schedule, null_label=NULL_LABEL, w=1.0, steps=20, method="ddim", seed=SEED)
    acc_trained[trained_steps] = judge.accuracy(images, labels)
    print(f"trained {trained_steps:>5,} steps: judge accuracy {acc_trained[trained_steps]:.1%} "
          f"± {binomial_stderr(acc_trained[trained_steps], len(labels)):.1%}")
record("accuracy after the short demonstration run", acc_trained[DEMO_STEPS], note=f"{DEMO_STEPS} steps, DDIM 20, w = 1", fmt=".1%")
assert acc_trained[TRAIN_STEPS] > acc_trained[DEMO_STEPS] + 0.1  # ten times the training: clearly better digits
display(Markdown(
    f"{TRAIN_STEPS / DEMO_STEPS:.0f}× the training lowered the final training loss from {demo_losses[-1]:.3f} to "
    f"{mlp.losses[-1]:.3f} ({demo_losses[-1] / mlp.losses[-1]:.1f}× lower) and took the share of samples the judge "
    f"recognises from {acc_trained[DEMO_STEPS]:.0%} to {acc_trained[TRAIN_STEPS]:.0%}. A modest gain in loss can be a "
    "large gain in samples: judge a generator by what it generates."
))

# %% [markdown]
# A generated digit counts as right when the judge sees the digit we asked for. This measures whether the model
# draws the *requested* digit recognisably. It does not measure variety or beauty (section 6 adds a spread measure),
# and a judge trained on 1,437 digits can be fooled by strange images, so we also look at them.
#
# ## 6. Classifier-free guidance: the label as a prompt
#
# The network was trained both with the label and with the "no label" token. At each sampling step we can ask it
# twice and **extrapolate** from the unconditional prediction towards the conditional one (Ho & Salimans 2022,
# "Classifier-Free Diffusion Guidance"):
#
# ε̃ = ε̂(x_t, ∅) + w · ( ε̂(x_t, label) − ε̂(x_t, ∅) )
#
# w = 0 ignores the label (an unconditional model), w = 1 is the plain conditional model, w > 1 exaggerates what makes
# a 3 a 3. A text-to-image model does exactly this with a text prompt in place of our label.

# %%
print(inspect.getsource(diffusion.cfg_combine))

# %% [markdown]
# We measure every w on the same starting noise, with the fast DDIM sampler of section 7 (50 steps). Beside
# accuracy we measure **spread**: the mean distance between two samples of the same digit, in pixel units (real
# held-out digits give the reference).

# %%
spread = digits.class_spread  # mean distance between two images of the same class (pixels in [-1, 1])
rows, by_w = [], {}
for w in GUIDANCE:
    start = time.perf_counter()
    images = diffusion.sample(mlp, labels, schedule, null_label=NULL_LABEL, w=w, steps=50, method="ddim", seed=SEED)
    seconds = time.perf_counter() - start
    acc = judge.accuracy(images, labels)
    by_w[w] = images
    rows.append({"w": w, "accuracy": acc, "std err": binomial_stderr(acc, len(labels)),
                 "spread": spread(images, labels), "seconds": seconds})
guidance_table = pd.DataFrame(rows)
real_spread = spread(split.test_images, split.test_labels)
guidance_table.round(3)

# %%
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
ax1.errorbar(guidance_table["w"], guidance_table["accuracy"], yerr=guidance_table["std err"], marker="o", capsize=3,
             label="generated (DDIM, 50 steps)")
ax1.axhline(acc_real, color="green", ls="--", label="real held-out digits")
ax1.axhline(acc_noise, color="grey", ls=":", label="pure noise")
labelled(ax1, "Is it the digit we asked for?", "guidance scale w", f"judge accuracy ({len(labels)} samples)")
ax1.legend(fontsize=8)
ax2.plot(guidance_table["w"], guidance_table["spread"], marker="o", label="generated")
ax2.axhline(real_spread, color="green", ls="--", label="real held-out digits")
labelled(ax2, "How different are samples of one digit?", "guidance scale w", "mean pairwise distance (pixels)")
ax2.legend(fontsize=8)
plt.tight_layout()
plt.show()

acc_at = dict(zip(guidance_table["w"], guidance_table["accuracy"]))
spread_at = dict(zip(guidance_table["w"], guidance_table["spread"]))
best_w = max(acc_at, key=lambda w: (acc_at[w], -w))  # the smallest w with the best accuracy
record("accuracy, unconditional (w = 0)", acc_at[0.0], fmt=".1%")
record("accuracy, conditional (w = 1)", acc_at[1.0], fmt=".1%")
record("best guidance scale", best_w, note=f"accuracy {acc_at[best_w]:.1%}")
assert acc_at[0.0] < 0.3  # without the label the model draws *some* digit: about chance
assert acc_at[1.0] > acc_at[0.0] + 0.5  # the label works
assert spread_at[max(GUIDANCE)] < spread_at[0.0]  # strong guidance: less variety

# %%
display(Markdown(
    f"At **w = 0** the model ignores the label and draws whatever digit it likes: the judge agrees with the request "
    f"{acc_at[0.0]:.0%} of the time, about chance. At **w = 1** (the label, no extrapolation) it is {acc_at[1.0]:.0%}; "
    f"the best here is {acc_at[best_w]:.0%} at w = {best_w:g}. The spread falls from {spread_at[0.0]:.2f} at w = 0 "
    f"to {spread_at[max(GUIDANCE)]:.2f} at w = {max(GUIDANCE):g} (real held-out digits: {real_spread:.2f}): "
    "guidance buys fidelity to the prompt with variety. Text-to-image models make the same trade; Stable "
    "Diffusion's pipelines default to w = 7.5."
))

# %%
show_w = [0.0, 1.0, max(GUIDANCE)]
picked = torch.cat([by_w[w][:10] for w in show_w])
fig = digits.show_grid(picked, [f"w={w:g} · {int(y)}" for w in show_w for y in labels[:10]], ax_size=0.9,
                       title="The same starting noise at three guidance scales (w · digit asked for)")
plt.show()

# %% [markdown]
# Same noise, same network, only w changes. At w = 0 the digits are random; with guidance each column becomes the
# digit asked for; strong guidance gives thicker, more "typical" and more alike digits.
#
# ## 7. Fewer steps: DDIM
#
# 1,000 network calls per image is slow, and Stable Diffusion's network has thousands of times more parameters than
# ours (section 10). DDIM (Song, Meng & Ermon 2021, "Denoising Diffusion Implicit Models") reuses the *same trained network* but
# jumps: predict x₀ from x_t, then put it back at the noise level of an earlier step t_prev with the same predicted
# noise, deterministically:
#
# x_{t_prev} = √ᾱ_{t_prev} · x̂₀ + √(1 − ᾱ_{t_prev}) · ε̂

# %%
print(inspect.getsource(diffusion.ddim_step))

# %% [markdown]
# The clipped x̂₀ comes with the noise it implies (the `clip` branch): without that, many guided steps drift. Now
# the trade-off, measured at the best guidance scale of section 6: DDIM with 1 to 50 steps, and DDPM with all 1,000.
# DDPM is slow, so it gets fewer digits (`DDPM_PER_CLASS` of each), and DDIM with 20 steps is timed on exactly those
# digits too, for a fair speed comparison.

# %%
ddpm_labels = torch.arange(10).repeat(DDPM_PER_CLASS)
rows, by_steps = [], {}
runs = [("ddim", n, labels) for n in DDIM_STEPS] + [("ddim", 20, ddpm_labels), ("ddpm", schedule.T, ddpm_labels)]
for method, n, asked in runs:
    start = time.perf_counter()
    images = diffusion.sample(mlp, asked, schedule, null_label=NULL_LABEL, w=best_w, steps=n, method=method, seed=SEED)
    seconds = time.perf_counter() - start
    by_steps[(method, n, len(asked))] = images
    acc = judge.accuracy(images, asked)
    rows.append({"sampler": method.upper(), "steps": n, "digits": len(asked), "network calls": 2 * n, "seconds": seconds,
                 "ms per digit": 1000 * seconds / len(asked), "accuracy": acc,
                 "std err": binomial_stderr(acc, len(asked)), "spread": spread(images, asked)})
steps_table = pd.DataFrame(rows)
steps_table.round(3)

# %%
ddim_rows = steps_table[(steps_table.sampler == "DDIM") & (steps_table.digits == len(labels))]
ddpm_row = steps_table[steps_table.sampler == "DDPM"].iloc[0]
ddim20_same = steps_table[(steps_table.sampler == "DDIM") & (steps_table.digits == len(ddpm_labels))].iloc[0]
fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(12, 3.6))
ax1.errorbar(ddim_rows["steps"], ddim_rows["accuracy"], yerr=ddim_rows["std err"], marker="o", capsize=3, label="DDIM")
ax1.errorbar([ddpm_row["steps"]], [ddpm_row["accuracy"]], yerr=[ddpm_row["std err"]], marker="s", color="C3", capsize=3, label="DDPM")
labelled(ax1, f"Right digit? (w = {best_w:g})", "sampling steps (log scale)", "judge accuracy")
ax2.plot(ddim_rows["steps"], ddim_rows["spread"], marker="o", label="DDIM")
ax2.plot([ddpm_row["steps"]], [ddpm_row["spread"]], marker="s", color="C3", label="DDPM")
ax2.axhline(real_spread, color="green", ls="--", label="real held-out digits")
labelled(ax2, "Variety", "sampling steps (log scale)", "mean pairwise distance (pixels)")
ax3.plot(ddim_rows["steps"], ddim_rows["ms per digit"], marker="o", label=f"DDIM, {len(labels)} digits")
ax3.plot([20, ddpm_row["steps"]], [ddim20_same["ms per digit"], ddpm_row["ms per digit"]], marker="s", color="C3",
         label=f"DDIM 20 and DDPM, {len(ddpm_labels)} digits")
ax3.set_yscale("log")
labelled(ax3, "Sampling time", "sampling steps (log scale)", "ms per digit (log scale)")
ax3.legend(fontsize=8)
for ax in (ax1, ax2, ax3):
    ax.set_xscale("log")
ax1.legend(fontsize=8)
ax2.legend(fontsize=8)
plt.tight_layout()
plt.show()

ddim_at = dict(zip(ddim_rows["steps"], ddim_rows["accuracy"]))
ddim_spread = dict(zip(ddim_rows["steps"], ddim_rows["spread"]))
speedup = ddpm_row["seconds"] / ddim20_same["seconds"]  # the same digits, one batch each
record("DDPM accuracy (1,000 steps)", ddpm_row["accuracy"], note=f"w = {best_w:g}, {len(ddpm_labels)} digits", fmt=".1%")
record("DDIM accuracy (20 steps)", ddim_at[20], note=f"w = {best_w:g}", fmt=".1%")
record("DDIM 20 steps speed-up over DDPM", speedup, note="same network, same digits asked for", fmt=".0f")
assert speedup > 10  # 50x fewer network calls; a margin for a busy machine
assert ddim_at[20] > ddpm_row["accuracy"] - 0.1  # 20 DDIM steps are about as good as 1,000 DDPM steps

# %%
few = min(DDIM_STEPS)
display(Markdown(
    f"DDIM with 20 steps was **{speedup:.0f}× faster** than DDPM's 1,000 on the same {len(ddpm_labels)} digits (50× "
    f"fewer network calls; timings on a busy machine vary) with accuracy {ddim_at[20]:.0%} ({len(labels)} digits) "
    f"against DDPM's {ddpm_row['accuracy']:.0%} ({len(ddpm_labels)} digits), and spread "
    f"{ddim_spread[20]:.2f} against {ddpm_row['spread']:.2f}. Fewer steps cost *variety* before they cost accuracy: "
    f"with {DDIM_STEPS[1]} steps accuracy is {ddim_at[DDIM_STEPS[1]]:.0%} but the spread is {ddim_spread[DDIM_STEPS[1]]:.2f} "
    f"(real digits: {real_spread:.2f}), and with {few} step accuracy is {ddim_at[few]:.0%}: one jump from x_999 must get "
    f"x₀ right at once, and any error in the predicted noise is multiplied by 1/√ᾱ_999 ≈ "
    f"{float(1 / schedule.alphas_cumprod[-1].sqrt()):.0f} before clipping. Models distilled for few steps (SDXL Turbo, "
    "section 10) are trained to make such jumps well."
))
assert ddim_spread[DDIM_STEPS[1]] < 0.9 * ddpm_row["spread"]  # very few steps: less variety

# %%
show_steps = [("ddim", n) for n in DDIM_STEPS[:3]] + [("ddim", 50), ("ddpm", schedule.T)]
fig = digits.show_grid(torch.cat([by_steps[(m, n, len(ddpm_labels) if m == "ddpm" else len(labels))][:10]
                                  for m, n in show_steps]),
                       [f"{m.upper()} {n}" for m, n in show_steps for _ in range(10)], ax_size=0.9,
                       title="The same requests with more and more steps (rows: sampler and steps)")
plt.show()

# %% [markdown]
# ## 8. New digits, or copies?
#
# A generator that returns its training images would score perfectly on the judge. So: how far is each generated digit
# from its *nearest* training image, compared with how far real held-out digits are from theirs? As a contrast we also
# sample with `denoisers.MemorisingDenoiser`, the mathematically *perfect* noise predictor for the training set (it
# computes the best guess of x₀ from all 1,437 training images): sampling with it can only give training images back.

# %%
generated = by_w[best_w]
perfect = denoisers.MemorisingDenoiser(split.train_images, split.train_labels, schedule)
copies = diffusion.sample(perfect, labels[:100], schedule, null_label=NULL_LABEL, w=1.0, steps=50, method="ddim", seed=SEED)
nearest = {
    "generated (our network)": digits.nearest_train_distance(generated, split.train_images),
    "real held-out digits": digits.nearest_train_distance(split.test_images, split.train_images),
    "perfect denoiser": digits.nearest_train_distance(copies, split.train_images),
}
medians = {name: float(d.median()) for name, d in nearest.items()}
fig, ax = plt.subplots(figsize=(6.5, 3.2))
for name, d in nearest.items():
    ax.hist(d.numpy(), bins=30, alpha=0.6, label=f"{name} (median {medians[name]:.2f})")
labelled(ax, "Distance to the nearest training image", "Euclidean distance (pixels in [-1, 1])", "images")
ax.legend(fontsize=8)
plt.show()
assert medians["perfect denoiser"] < 0.1  # the perfect denoiser copies
assert medians["generated (our network)"] > 0.7 * medians["real held-out digits"]  # ours does not

# %% [markdown]
# The perfect denoiser lands on training images (distance ≈ 0). Our network's digits are about as far from the
# training set as new real digits are (the medians in the legend): it has learned *what digits look like*, not the
# 1,437 images. A network generalises because it cannot represent the perfect, memorising function exactly. Large
# models can still copy: Stable Diffusion reproduces some training images, mostly ones duplicated many times in its
# data (Carlini et al. 2023, "Extracting Training Data from Diffusion Models").

# %%
idx = torch.arange(10)
closest = torch.cdist(generated[idx].reshape(10, -1), split.train_images.reshape(len(split.train_images), -1)).argmin(1)
fig = digits.show_grid(torch.cat([generated[idx], split.train_images[closest]]),
                       [f"generated {int(y)}" for y in labels[idx]] + ["nearest train"] * 10,
                       title="Generated digits (top) and their nearest training images (bottom)")
plt.show()

# %% [markdown]
# ## 9. The library way: diffusers
#
# **diffusers** (Hugging Face) is the library Stable Diffusion is usually run with. Its *schedulers* hold the noise
# schedule and the reverse step; its *models* are the networks. Nothing here is downloaded: schedulers and a
# `UNet2DModel` are built from configurations.
#
# First the schedulers, with the same T and betas as ours:

# %%
ddpm_scheduler = denoisers.diffusers_scheduler("ddpm")  # DDPMScheduler(num_train_timesteps=1000, linear 1e-4..0.02)
ddim_scheduler = denoisers.diffusers_scheduler("ddim")  # DDIMScheduler(..., timestep_spacing="trailing")
print(type(ddpm_scheduler).__name__, dict((k, ddpm_scheduler.config[k]) for k in ("num_train_timesteps", "beta_start", "beta_end", "beta_schedule", "clip_sample")))
assert torch.allclose(ddpm_scheduler.betas, schedule.betas) and torch.allclose(ddpm_scheduler.alphas_cumprod, schedule.alphas_cumprod)
ddim_scheduler.set_timesteps(20)
assert ddim_scheduler.timesteps.tolist() == diffusion.ddim_timesteps(1000, 20)
print("same betas, same alphas_cumprod, same 20 DDIM time steps:", ddim_scheduler.timesteps.tolist()[:5], "...")
print(inspect.getsource(denoisers.sample_with_scheduler))

# %%
ours = diffusion.sample(mlp, labels, schedule, null_label=NULL_LABEL, w=best_w, steps=20, method="ddim", seed=SEED)
theirs = denoisers.sample_with_scheduler(mlp, labels, ddim_scheduler, 20, w=best_w, seed=SEED)
gap = (ours - theirs).abs().max().item()
print(f"our DDIM loop vs diffusers' DDIMScheduler, same network and noise: largest pixel difference {gap:.1e}")
assert gap < 1e-3

# %% [markdown]
# Our loop and diffusers' loop give the same digits, pixel for pixel up to float rounding (`tests/test_diffusion.py`
# also checks single DDPM and DDIM steps and the whole 1,000-step DDPM loop). So the schedulers are exactly the maths
# of sections 2-7, with options for everything else (other schedules, v-prediction, many more samplers).
#
# Now diffusers' network: **UNet2DModel**, the convolutional U-Net family that Stable Diffusion's denoiser comes from
# (down-sampling blocks, up-sampling blocks with skip connections, a time embedding, and here a class embedding with
# 11 entries for our 10 digits and "no label"). Built from a config, shrunk to 8×8 grey images:

# %%
print(denoisers.UNET_CONFIG)
unet_config = TrainConfig(arch="unet", steps=UNET_STEPS, batch_size=64, lr=2e-3)
start = time.perf_counter()
unet = cached_denoiser(unet_config, split)
print(f"UNet2DModel: {unet.parameters:,} parameters, {unet_config.steps:,} steps of {unet_config.batch_size}: "
      f"{unet.origin} in {time.perf_counter() - start:.1f} s "
      f"(training took {unet.seconds:.0f} s where it was trained)")

# %%
rows = []
for name, model, conf in (("our MLP (DigitDenoiser)", mlp, config), ("diffusers UNet2DModel", unet, unet_config)):
    start = time.perf_counter()
    images = denoisers.sample_with_scheduler(model, labels, ddim_scheduler, 20, w=best_w, seed=SEED)
    seconds = time.perf_counter() - start
    acc = judge.accuracy(images, labels)
    rows.append({"network": name, "parameters": model.parameters, "images seen in training": conf.steps * conf.batch_size,
                 "training seconds": model.seconds, "sampling seconds": seconds, "accuracy": acc,
                 "std err": binomial_stderr(acc, len(labels)), "spread": spread(images, labels)})
    if model is unet:
        unet_images = images
networks = pd.DataFrame(rows).set_index("network")
networks.round(3)

# %%
fig = digits.show_grid(unet_images[:20], [f"{int(y)} → {s}" for y, s in zip(labels[:20], judge.predict(unet_images[:20]))],
                       ax_size=0.9, title=f"diffusers UNet2DModel + DDIMScheduler, 20 steps, w = {best_w:g} (asked → seen)")
plt.show()
u, m = networks.loc["diffusers UNet2DModel"], networks.loc["our MLP (DigitDenoiser)"]
record("UNet2DModel accuracy (DDIM 20 steps)", u["accuracy"], note=f"{int(u['images seen in training']):,} training images seen", fmt=".1%")
display(Markdown(
    f"The U-Net saw {u['images seen in training'] / m['images seen in training']:.0%} as many training images as the MLP "
    f"(convolutions are slow on a CPU: training took {u['training seconds']:.0f} s against {m['training seconds']:.0f} s, "
    f"{(u['training seconds'] / u['images seen in training']) / (m['training seconds'] / m['images seen in training']):.0f}× as long per image, "
    f"and sampling {u['sampling seconds'] / m['sampling seconds']:.0f}× as long) and reached {u['accuracy']:.1%} against "
    f"the MLP's {m['accuracy']:.1%} at the same settings. "
    + ("Convolutions build in that nearby pixels belong together, one reason it needs fewer examples. " if u["accuracy"] >= m["accuracy"] - 0.05 else
       "With this little training it is behind; `FULL = True` trains it five times longer. ")
    + "On 8×8 images an MLP is enough; on 64×64 latents, convolutions (and attention) are what make it work."
))

# %% [markdown]
# ## 10. How Stable Diffusion scales this up
#
# Stable Diffusion is the same recipe (noise schedule, ε-prediction, a U-Net or transformer denoiser, DDIM-like
# schedulers, classifier-free guidance) with four changes. Figures are from the sources named.
#
# 1. **Latent space, via a VAE.** Diffusing 512×512×3 pixels is expensive, so an autoencoder (a VAE) first compresses
#    the image to a *latent* 8 times smaller per side with 4 channels, 64×64×4; diffusion runs there, and the VAE's
#    decoder turns the final latent into pixels ("High-Resolution Image Synthesis with Latent Diffusion Models",
#    Rombach et al. 2022; the Stable Diffusion v1 model card: "a downsampling-factor 8 autoencoder with an 860M UNet and
#    CLIP ViT-L/14 text encoder", latents of shape H/f × W/f × 4). Our digits are small enough to diffuse directly.
# 2. **A text encoder instead of a label embedding.** The prompt goes through a frozen **CLIP** text encoder
#    (ViT-L/14 in v1; its config: at most 77 tokens, 768 numbers each), and the U-Net reads it through
#    *cross-attention* at several resolutions, instead of adding one label vector as our MLP does.
# 3. **Guidance with an empty prompt as "no label".** v1.5 was fine-tuned with "10% dropping of the text-conditioning
#    to improve classifier-free guidance sampling" (Stable Diffusion v1-5 model card), our label dropout; the
#    unconditional prediction is the empty prompt's, and a *negative prompt* replaces it. diffusers'
#    `StableDiffusionPipeline` defaults to `guidance_scale=7.5` and `num_inference_steps=50`.
# 4. **Scale.** Billions of image-text pairs (LAION-5B subsets for v1) and networks of about a billion parameters:
#
# | model | denoiser | text encoder(s) | native size | source |
# |---|---|---|---|---|
# | Stable Diffusion v1.x | U-Net, 860M parameters | CLIP ViT-L/14, 123M | 512×512 | CompVis/stable-diffusion README |
# | SDXL 1.0 | U-Net, 2.6B (3× v1) | OpenCLIP ViT-bigG + CLIP ViT-L | 1024×1024 | SDXL paper (Podell et al. 2023), SDXL base 1.0 model card |
# | SDXL Turbo | SDXL's U-Net, distilled (adversarial diffusion distillation) for 1-4 steps, no guidance | as SDXL | 512×512 | sdxl-turbo model card; Stability AI's announcement: 207 ms per image on an A100 |
# | Stable Diffusion 3 Medium | **MMDiT**, a diffusion *transformer*, 2B | CLIP-L + OpenCLIP bigG + T5-XXL | 1024×1024 | SD3 Medium model card; Stability AI's SD3 Medium announcement (2B); Esser et al. 2024 |
#
# The v1 README notes the model "runs on a GPU with at least 10GB VRAM". SD3 replaces the U-Net by a transformer over
# image patches and text tokens (a **DiT**: the architecture of lessons 02-03, applied to latents) and trains with
# *rectified flow*, a close relative of the noise prediction we trained.

# %%
sd_unet, sd_text = 860e6, 123e6  # Stable Diffusion v1 (CompVis/stable-diffusion README)
pixels, latent = 512 * 512 * 3, 64 * 64 * 4
print(f"values per image: pixels {pixels:,}, latent {latent:,} ({pixels / latent:.0f}× fewer); ours: 64")
print(f"SD v1 U-Net vs our MLP: {sd_unet / mlp.parameters:,.0f}× the parameters; "
      f"plus a {sd_text / 1e6:.0f}M-parameter text encoder and the VAE")
print(f"network calls per image here: DDPM {2 * schedule.T}, DDIM-20 {2 * 20}; "
      f"SDXL Turbo: 1 (no guidance, so no second call)")

# %% [markdown]
# ## 11. Running Stable Diffusion yourself (with internet and a GPU)
#
# The weights are gigabytes from the Hugging Face Hub, so nothing of this runs in the course. On a machine with
# internet and, preferably, a GPU (each of the 25 steps below runs the 860M-parameter U-Net twice, with and without
# the prompt), the diffusers code is short:
#
# ```python
# import torch
# from diffusers import AutoPipelineForText2Image, DPMSolverMultistepScheduler
#
# pipe = AutoPipelineForText2Image.from_pretrained(
#     "stable-diffusion-v1-5/stable-diffusion-v1-5", torch_dtype=torch.float16, variant="fp16").to("cuda")  # GBs, once
# pipe.scheduler = DPMSolverMultistepScheduler.from_config(pipe.scheduler.config)  # a faster scheduler, 20-25 steps
# image = pipe("a watercolour painting of a lighthouse at dawn", negative_prompt="blurry",
#              num_inference_steps=25, guidance_scale=7.5,
#              generator=torch.Generator("cuda").manual_seed(0)).images[0]
# image.save("lighthouse.png")
#
# turbo = AutoPipelineForText2Image.from_pretrained("stabilityai/sdxl-turbo", torch_dtype=torch.float16).to("cuda")
# fast = turbo("a watercolour painting of a lighthouse", num_inference_steps=1, guidance_scale=0.0).images[0]
# ```
#
# Each argument is something you built here: `num_inference_steps` is section 7's step count, `guidance_scale` is
# section 6's w, the scheduler is the reverse step, `negative_prompt` replaces the unconditional prediction, and the
# seeded generator fixes x_T. The pipeline object holds `pipe.vae`, `pipe.text_encoder`, `pipe.unet` and
# `pipe.scheduler`: the four parts of section 10. Check each model's licence on its card before using it.

# %% [markdown]
# ## Summary

# %%
display(Markdown(f"""
- A diffusion model is a **noise predictor**. The forward process `x_t = √ᾱ_t·x₀ + √(1−ᾱ_t)·ε` noises any image to any
  step in one line; the loss is the MSE between true and predicted noise. Our {mlp.parameters:,}-parameter MLP learned
  it from {len(split.train_images):,} digits on a CPU.
- **DDPM** samples by walking all {schedule.T:,} steps back with the posterior mean plus fresh noise; **DDIM** reuses
  the same network for a deterministic jump: 20 steps were {speedup:.0f}× faster at {ddim_at[20]:.0%} accuracy
  (DDPM: {ddpm_row['accuracy']:.0%}); very few steps lose variety first (spread {ddim_spread[DDIM_STEPS[1]]:.2f} with
  {DDIM_STEPS[1]} steps, {ddpm_row['spread']:.2f} with DDPM), and one step gave {ddim_at[min(DDIM_STEPS)]:.0%}.
- **Classifier-free guidance** turns the label into a prompt: accuracy {acc_at[0.0]:.0%} at w = 0 (the label ignored),
  {acc_at[1.0]:.0%} at w = 1, best {acc_at[best_w]:.0%} at w = {best_w:g}, with less variety as w grows. The judge
  scores real held-out digits {acc_real:.0%} and pure noise {acc_noise:.0%}.
- The generated digits are **new**: as far from their nearest training image as real held-out digits; the perfect
  (memorising) denoiser only returns copies.
- **diffusers**' schedulers compute exactly our steps (same betas, same samples); its `UNet2DModel` is the network
  family of Stable Diffusion, which adds a VAE latent space, a CLIP text encoder with cross-attention, and scale.
"""))

# %% [markdown]
# ## Exercises
#
# Practise in the lab, [`labs/13_diffusion_lab.ipynb`](../labs/13_diffusion_lab.ipynb): write `q_sample`, the DDPM
# step, the guidance combination and a DDIM step yourself, then build a sampler of at most 10 steps whose digits the
# judge recognises at least 90% of the time while staying varied. Each exercise has an automatic check.
#
# Further questions to explore here:
# 1. Train with `p_uncond=0.0` (`TrainConfig(p_uncond=0.0)`): what happens to guidance, and why does w = 0 now fail?
# 2. Replace the linear schedule by a shorter one (`T=200`): how do training loss and DDPM quality change?
# 3. Sample with `clip=False` in `diffusion.sample`. Look at the pixel range of the samples, and at the accuracy.
# 4. Give the U-Net as many training images as the MLP (`UNET_STEPS = 12_000` with batch 64): is it better? How long
#    does it take?
