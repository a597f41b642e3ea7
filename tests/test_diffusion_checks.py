"""Lab 13's checks catch the mistakes learners make (each with a message naming it), accept unusual
but correct answers, report "not done" for untouched exercises, and never give the formula away
on the first failure."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from course_utils import diffusion, digits
from course_utils.checks import diffusion as checks
from course_utils.denoisers import NULL_LABEL, MemorisingDenoiser


def todo(*args):
    raise NotImplementedError


def failed_with(verdict, *words):
    assert verdict.status == "failed", str(verdict)
    for word in words:
        assert word in verdict.message, f"{word!r} not in: {verdict.message}"
    for formula in checks.HINTS.values():  # the first failure never prints the solution hint
        assert formula not in verdict.message
    return verdict


# ----------------------------------------------------------------------------- 1. q_sample
def q_no_sqrt(x0, t, noise, s):
    a = s.alphas_cumprod[t].reshape(-1, *[1] * (x0.ndim - 1))
    return a * x0 + (1 - a) * noise


def q_alpha_not_abar(x0, t, noise, s):
    a = s.alphas[t].reshape(-1, *[1] * (x0.ndim - 1))
    return a.sqrt() * x0 + (1 - a).sqrt() * noise


def q_off_by_one(x0, t, noise, s):
    a = s.alphas_cumprod[t - 1].reshape(-1, *[1] * (x0.ndim - 1))
    return a.sqrt() * x0 + (1 - a).sqrt() * noise


def q_in_place(x0, t, noise, s):
    a = s.alphas_cumprod[t].reshape(-1, *[1] * (x0.ndim - 1))
    x0 *= a.sqrt()
    return x0 + (1 - a).sqrt() * noise


def q_only_4d(x0, t, noise, s):
    a = s.alphas_cumprod[t][:, None, None, None]
    return a.sqrt() * x0 + (1 - a).sqrt() * noise


def q_numpy(x0, t, noise, s):
    """Unusual but right: NumPy, with the per-image weights broadcast through a reshape."""
    a = s.alphas_cumprod.numpy()[np.asarray(t)]
    a = a.reshape((-1,) + (1,) * (x0.ndim - 1))
    return np.sqrt(a) * x0.numpy() + np.sqrt(1 - a) * noise.numpy()


@pytest.mark.parametrize("wrong,words", [
    (q_no_sqrt, ["no square root"]),
    (q_alpha_not_abar, ["alpha_t", "cumulative"]),
    (q_off_by_one, ["t - 1", "0-based"]),
    (q_in_place, ["changed its input `x0` in place"]),
    (q_only_4d, ["(5, 64)", "broadcasts over every pixel"]),
])
def test_q_sample_mistakes(wrong, words):
    failed_with(checks.check_q_sample(wrong), *words)


def test_q_sample_right_answers_and_not_done():
    assert checks.check_q_sample(q_numpy).passed
    assert checks.check_q_sample(diffusion.q_sample).passed
    assert checks.check_q_sample(todo).status == "not done"


# ----------------------------------------------------------------------------- 2. DDPM step
def _ddpm_eps_form(x_t, t, eps, s, noise, *, abar=None, alpha=None, noise_at_0=False, sigma2=None):
    abar = s.alphas_cumprod if abar is None else abar
    alpha = s.alphas if alpha is None else alpha
    mean = (x_t - s.betas[t] / (1 - abar[t]).sqrt() * eps) / alpha[t].sqrt()
    if t == 0 and not noise_at_0:
        return mean
    var = s.betas[t] * (1 - s.alphas_cumprod[t - 1]) / (1 - s.alphas_cumprod[t]) if sigma2 is None else sigma2(t)
    return mean + var.sqrt() * noise


def ddpm_right(x_t, t, eps, s, noise):
    return _ddpm_eps_form(x_t, t, eps, s, noise)


def ddpm_noise_at_0(x_t, t, eps, s, noise):
    return _ddpm_eps_form(x_t, t, eps, s, noise, noise_at_0=True)


def ddpm_abar_for_alpha(x_t, t, eps, s, noise):
    return _ddpm_eps_form(x_t, t, eps, s, noise, alpha=s.alphas_cumprod)


def ddpm_alpha_for_abar(x_t, t, eps, s, noise):
    return _ddpm_eps_form(x_t, t, eps, s, noise, abar=s.alphas)


def ddpm_beta_variance(x_t, t, eps, s, noise):
    return _ddpm_eps_form(x_t, t, eps, s, noise, sigma2=lambda t: s.betas[t])


def ddpm_variance_as_std(x_t, t, eps, s, noise):
    mean = (x_t - s.betas[t] / (1 - s.alphas_cumprod[t]).sqrt() * eps) / s.alphas[t].sqrt()
    return mean if t == 0 else mean + s.posterior_variance(t) * noise


def ddpm_in_place(x_t, t, eps, s, noise):
    x_t -= s.betas[t] / (1 - s.alphas_cumprod[t]).sqrt() * eps
    mean = x_t / s.alphas[t].sqrt()
    return mean if t == 0 else mean + s.posterior_variance(t).sqrt() * noise


def ddpm_sqrt_in_place_on_the_schedule(x_t, t, eps, s, noise):
    abar = s.alphas_cumprod[t]  # an int index gives a view into the schedule
    one_minus = 1 - abar
    mean = (x_t - s.betas[t] / one_minus.sqrt() * eps) / s.alphas[t].sqrt()
    if t == 0:
        return mean
    sigma = (s.betas[t] * (1 - s.alphas_cumprod[t - 1]) / one_minus).sqrt()
    abar.sqrt_()  # "tidying up": writes into schedule.alphas_cumprod
    return mean + sigma * noise


def ddpm_x0_form(x_t, t, eps, s, noise):
    """Unusual but right: through the predicted x0 and the posterior coefficients."""
    return diffusion.ddpm_step(x_t, t, eps, s, noise, clip=False)


@pytest.mark.parametrize("wrong,words", [
    (ddpm_noise_at_0, ["t = 0", "fresh noise is added at t = 0"]),
    (ddpm_abar_for_alpha, ["divides by sqrt(abar_t)", "sqrt(alpha_t)"]),
    (ddpm_alpha_for_abar, ["1 - alpha_t", "1 - abar_t"]),
    (ddpm_beta_variance, ["posterior variance"]),
    (ddpm_variance_as_std, ["scaled by the variance", "square root"]),
    (ddpm_in_place, ["changed its input `x_t` in place"]),
    (ddpm_sqrt_in_place_on_the_schedule, ["`schedule.alphas_cumprod` in place", "view"]),
])
def test_ddpm_step_mistakes(wrong, words):
    failed_with(checks.check_ddpm_step(wrong), *words)


def test_ddpm_step_right_answers_and_not_done():
    assert checks.check_ddpm_step(ddpm_right).passed
    assert checks.check_ddpm_step(ddpm_x0_form).passed
    assert checks.check_ddpm_step(todo).status == "not done"


# ----------------------------------------------------------------------------- 3. guidance
def guidance_flipped(eps_c, eps_u, w):
    return eps_c + w * (eps_u - eps_c)


def guidance_one_plus_w(eps_c, eps_u, w):
    return eps_c + w * (eps_c - eps_u)


def guidance_no_difference(eps_c, eps_u, w):
    return eps_u + w * eps_c


def guidance_in_place(eps_c, eps_u, w):
    eps_u += w * (eps_c - eps_u)
    return eps_u


@pytest.mark.parametrize("wrong,words", [
    (guidance_flipped, ["sign flipped"]),
    (guidance_one_plus_w, ["(1 + w) convention"]),
    (guidance_no_difference, ["*difference*"]),
    (guidance_in_place, ["changed its input `eps_uncond` in place"]),
])
def test_guidance_mistakes(wrong, words):
    failed_with(checks.check_guidance(wrong), *words)


def test_guidance_right_answers_and_not_done():
    assert checks.check_guidance(lambda c, u, w: torch.lerp(u, c, w)).passed
    assert checks.check_guidance(lambda c, u, w: (1 - w) * np.asarray(u) + w * np.asarray(c)).passed  # NumPy, other algebra
    assert checks.check_guidance(todo).status == "not done"


# ----------------------------------------------------------------------------- 4. DDIM step
def _ddim(x_t, t, t_prev, eps, s, *, table=None, root=True, last=None):
    table = s.alphas_cumprod if table is None else table
    f = (lambda v: v.sqrt()) if root else (lambda v: v)
    a_t = table[t]
    a_prev = table[t_prev] if last is None or t_prev >= 0 else last
    x0 = (x_t - (1 - a_t).sqrt() * eps) / a_t.sqrt()
    return f(a_prev) * x0 + f(1 - a_prev) * eps


def ddim_wraps_minus_one(x_t, t, t_prev, eps, s):
    return _ddim(x_t, t, t_prev, eps, s)  # alphas_cumprod[-1]: Python's last entry


def ddim_no_sqrt(x_t, t, t_prev, eps, s):
    return _ddim(x_t, t, t_prev, eps, s, root=False, last=torch.tensor(1.0))


def ddim_alphas(x_t, t, t_prev, eps, s):
    return _ddim(x_t, t, t_prev, eps, s, table=s.alphas, last=torch.tensor(1.0))


def ddim_random(x_t, t, t_prev, eps, s):
    return diffusion.ddim_step(x_t, t, t_prev, eps, s) + 0.01 * torch.randn_like(x_t)


def ddim_in_place(x_t, t, t_prev, eps, s):
    a_t = s.alphas_cumprod[t]
    a_prev = s.alphas_cumprod[t_prev] if t_prev >= 0 else torch.tensor(1.0)
    x_t.sub_((1 - a_t).sqrt() * eps).div_(a_t.sqrt())
    return a_prev.sqrt() * x_t + (1 - a_prev).sqrt() * eps


def ddim_ratio_form(x_t, t, t_prev, eps, s):
    """Unusual but right: the same step as a ratio of signal levels, in NumPy."""
    a_t = float(s.alphas_cumprod[t])
    a_prev = float(s.alphas_cumprod[t_prev]) if t_prev >= 0 else 1.0
    x, e = x_t.numpy().astype(np.float64), eps.numpy().astype(np.float64)
    return np.sqrt(a_prev / a_t) * x + (np.sqrt(1 - a_prev) - np.sqrt(a_prev * (1 - a_t) / a_t)) * e


@pytest.mark.parametrize("wrong,words", [
    (ddim_wraps_minus_one, ["t_prev = -1", "*last* entry"]),
    (ddim_no_sqrt, ["no square roots"]),
    (ddim_alphas, ["schedule.alphas", "cumulative"]),
    (ddim_random, ["different results", "no random noise"]),
    (ddim_in_place, ["changed its input `x_t` in place"]),
])
def test_ddim_step_mistakes(wrong, words):
    failed_with(checks.check_ddim_step(wrong), *words)


def test_ddim_step_right_answers_and_not_done():
    assert checks.check_ddim_step(ddim_ratio_form).passed
    assert checks.check_ddim_step(lambda x, t, tp, e, s: diffusion.ddim_step(x, t, tp, e, s)).passed
    assert checks.check_ddim_step(todo).status == "not done"


# ----------------------------------------------------------------------------- 5. the sampler
@pytest.fixture(scope="module")
def perfect_and_judge():
    """The exact denoiser of the training digits (no training needed) and the lesson's judge."""
    split = digits.load_split()
    perfect = MemorisingDenoiser(split.train_images, split.train_labels, diffusion.NoiseSchedule.linear(1000))
    return perfect, digits.DigitClassifier(split.train_images, split.train_labels), split


def make_sampler(order="down", guide=True, flip=False, freeze=False, shared_noise=False):
    s = diffusion.NoiseSchedule.linear(1000)

    def generate(model, labels, steps, w, seed=0):
        x = torch.randn(len(labels), 1, 8, 8, generator=torch.Generator().manual_seed(seed))
        if shared_noise:  # one noise image for the whole batch: every digit of a class comes out the same
            x = x[:1].repeat(len(labels), 1, 1, 1)
        times = diffusion.ddim_timesteps(1000, steps)
        if order == "up":
            times = times[::-1]
        for t, t_prev in zip(times, [*times[1:], -1]):
            eps_c = model(x, t, labels)
            eps = eps_c
            if guide:
                eps_u = model(x, t, torch.full_like(labels, NULL_LABEL))
                eps = eps_c + w * (eps_u - eps_c) if flip else eps_u + w * (eps_c - eps_u)
            if not freeze:
                x = diffusion.ddim_step(x, t, t_prev, eps, s)
        return x

    return generate


def batched_numpy_sampler(model, labels, steps, w, seed=0):
    """Unusual but right: one model call per step on a doubled batch, the update in NumPy."""
    s = diffusion.NoiseSchedule.linear(1000)
    abar = s.alphas_cumprod.double().numpy()
    x = torch.randn(len(labels), 1, 8, 8, generator=torch.Generator().manual_seed(seed)).double().numpy()
    times = diffusion.ddim_timesteps(1000, steps)
    both = torch.cat([labels, torch.full_like(labels, NULL_LABEL)])
    for t, t_prev in zip(times, [*times[1:], -1]):
        xt = torch.as_tensor(x, dtype=torch.float32)
        eps_c, eps_u = model(torch.cat([xt, xt]), torch.full((2 * len(labels),), t), both).double().numpy().reshape(2, *x.shape)
        eps = eps_u + w * (eps_c - eps_u)
        a_prev = abar[t_prev] if t_prev >= 0 else 1.0
        x0 = (x - np.sqrt(1 - abar[t]) * eps) / np.sqrt(abar[t])
        x = np.sqrt(a_prev) * x0 + np.sqrt(1 - a_prev) * eps
    return x


def test_sampler_reaches_the_target_and_reports_the_numbers(perfect_and_judge):
    perfect, judge, split = perfect_and_judge
    verdict = checks.check_sampler(make_sampler(), perfect, judge, split, steps=10, w=2.0)
    assert verdict.passed, str(verdict)
    for part in ("your sampler:", "target 90%", "spread", "reference sampler"):
        assert part in verdict.message
    assert checks.check_sampler(batched_numpy_sampler, perfect, judge, split, steps=8, w=2.0).passed
    assert checks.check_sampler(todo, perfect, judge, split, steps=10, w=2.0).status == "not done"


@pytest.mark.parametrize("sampler,steps,w,words", [
    (make_sampler(order="up"), 10, 2.0, ["time steps go up"]),
    (make_sampler(guide=False), 10, 2.0, ["never asked without the label"]),
    (make_sampler(flip=True), 10, 3.0, ["your sampler:", "target 90%", "reference reaches the target"]),
    (make_sampler(freeze=True), 10, 2.0, ["your sampler:", "reference reaches the target"]),
    (make_sampler(shared_noise=True), 10, 2.0, ["nearly) identical", "its own noise"]),
    (make_sampler(), 25, 2.0, ["between 1 and 10 steps", "STEPS = 25"]),
])
def test_sampler_mistakes(perfect_and_judge, sampler, steps, w, words):
    perfect, judge, split = perfect_and_judge
    failed_with(checks.check_sampler(sampler, perfect, judge, split, steps=steps, w=w), *words)


def test_hint_gives_the_formula_on_request():
    assert "alphas_cumprod" in checks.hint("q_sample")
    assert "choose one of" in checks.hint("nonsense")
