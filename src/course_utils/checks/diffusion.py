"""Checks for lab 13 (diffusion): the forward process, a DDPM step, guidance, a DDIM step, and a
sampler that must reach a measured target.

Each ``check_*`` runs the learner's function on fixed inputs (several time steps, edge steps 0 and
T-1, two image shapes) and compares with :mod:`course_utils.diffusion`. A wrong answer is compared
with the results of the usual mistakes (a missing square root, alpha_t where abar_t belongs, an
index off by one, a flipped sign, a changed input tensor) so the message names the mistake and
where to look, without the formula. :func:`hint` gives the formula when the learner asks for it.

>>> def q_sample(x0, t, noise, schedule):
...     raise NotImplementedError
>>> check_q_sample(q_sample).status
'not done'
>>> from course_utils import diffusion
>>> check_q_sample(diffusion.q_sample).status
'passed'
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from . import Verdict, run_check

TOL = 1e-4  # float32 formulas written differently agree to ~1e-5; the usual mistakes differ by far more
MAX_STEPS = 10  # the sampler exercise must be fast: at most this many denoising steps (DDPM: 1,000)
TARGET_ACCURACY = 0.90  # ...its digits must be recognised as the requested class this often
MIN_SPREAD = 0.5  # ...and stay varied: at least this fraction of the real held-out digits' spread

HINTS = {
    "q_sample": "abar = schedule.alphas_cumprod[t] reshaped to (batch, 1, 1, ...) (abar.reshape(-1, *[1] * (x0.ndim - 1))); "
                "return abar.sqrt() * x0 + (1 - abar).sqrt() * noise",
    "ddpm_step": "mean = (x_t - betas[t] / sqrt(1 - abar[t]) * eps) / sqrt(alphas[t]); if t == 0 return mean; "
                 "else add sqrt(betas[t] * (1 - abar[t-1]) / (1 - abar[t])) * noise",
    "guidance": "return eps_uncond + w * (eps_cond - eps_uncond)",
    "ddim_step": "abar_prev = alphas_cumprod[t_prev] if t_prev >= 0 else 1.0; x0 = (x_t - sqrt(1 - abar_t) * eps) / sqrt(abar_t); "
                 "return sqrt(abar_prev) * x0 + sqrt(1 - abar_prev) * eps",
    "sampler": "x = torch.randn(len(labels), 1, 8, 8, generator=...); times = ddim_timesteps(schedule.T, steps); for each t and the next "
               "one (or -1): eps_c = model(x, t, labels), eps_u = model(x, t, NULL_LABEL), x = ddim_step(x, t, t_prev, guidance(...))",
}


def hint(exercise: str) -> str:
    """The solution-level hint for an exercise, for when a ❌ message is not enough.

    >>> hint("guidance")
    'guidance: return eps_uncond + w * (eps_cond - eps_uncond)'
    """
    if exercise not in HINTS:
        return f"no hint called {exercise!r}: choose one of {', '.join(HINTS)}"
    return f"{exercise}: {HINTS[exercise]}"


# ----------------------------------------------------------------------------- helpers
def _as_tensor(value: Any) -> Any:
    """The learner's answer as a float32 tensor (NumPy arrays and lists are fine)."""
    import numpy as np
    import torch

    if value is None:
        raise NotImplementedError
    if isinstance(value, torch.Tensor):
        return value.detach().float()
    return torch.as_tensor(np.asarray(value, dtype=np.float32))


def _same(a: Any, b: Any, tol: float = TOL) -> bool:
    import torch

    return tuple(a.shape) == tuple(b.shape) and bool(torch.allclose(a.float(), b.float(), atol=tol, rtol=1e-4))


def _diagnose(got: Any, mistakes: list[tuple[Any, str]], where: str) -> str:
    """The message of the first known mistake that reproduces ``got``, else a general one."""
    for wrong, message in mistakes:
        if wrong is not None and _same(got, wrong):
            return f"{where}: {message}"
    return f"{where}: the result differs from the expected one"


def _is_mean_plus_noise(got: Any, mean: Any, noise: Any) -> bool:
    """True when ``got = mean + c * noise`` for some c != 0 (noise added where none belongs)."""
    diff, n = (got - mean).flatten().double(), noise.flatten().double()
    c = float(diff @ n / (n @ n))
    return abs(c) > 1e-3 and _same(diff, c * n)


def _changed(originals: dict[str, Any], given: dict[str, Any]) -> str | None:
    """The name of an input the learner's function modified in place, if any."""
    import torch

    for name, original in originals.items():
        if not torch.equal(original, given[name]):
            return name
    return None


def _mutation_message(name: str) -> str:
    if name.startswith("schedule."):
        return (f"your function changed `{name}` in place (`schedule.alphas_cumprod[t]` with an int t is a *view*: "
                "`.sqrt_()` or `*=` on it writes into the schedule); use out-of-place operations such as `.sqrt()`")
    return (f"your function changed its input `{name}` in place (an in-place operation such as `{name} *= ...`, "
            f"`{name}.mul_()` or `{name}[...] = ...`); the caller still needs it: compute a new tensor instead")


def _inputs(shape: tuple[int, ...], seed: int) -> tuple[Any, Any]:
    import torch

    g = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=g) * 2 - 1, torch.randn(shape, generator=g)


def _schedule() -> Any:
    from ..diffusion import NoiseSchedule

    return NoiseSchedule.linear(1000)


def _copy(schedule: Any) -> Any:
    """A private copy of the schedule for one call (``alphas_cumprod[t]`` with an int t is a view)."""
    return type(schedule)(schedule.betas.clone(), schedule.alphas.clone(), schedule.alphas_cumprod.clone())


def _schedule_changed(given: Any, original: Any) -> str | None:
    """``schedule.<name>`` of a schedule tensor the learner's function modified in place, if any."""
    names = ("betas", "alphas", "alphas_cumprod")
    name = _changed({n: getattr(original, n) for n in names}, {n: getattr(given, n) for n in names})
    return None if name is None else f"schedule.{name}"


# ----------------------------------------------------------------------------- 1. the forward process
def check_q_sample(q_sample: Callable[..., Any]) -> Verdict:
    """``q_sample(x0, t, noise, schedule)``: x_t for a batch, one time step per image."""
    import torch

    from ..diffusion import q_sample as reference

    s = _schedule()
    abar, alpha = s.alphas_cumprod, s.alphas

    def weights(values: Any, x: Any) -> Any:
        return values.reshape(-1, *([1] * (x.ndim - 1)))

    def test(fn: Callable[..., Any]) -> bool | str:
        for shape in ((5, 1, 8, 8), (5, 64)):
            x0, noise = _inputs(shape, seed=len(shape))
            t = torch.tensor([3, 10, 250, 500, 998])
            given, s_given = {"x0": x0.clone(), "t": t.clone(), "noise": noise.clone()}, _copy(s)
            try:
                got = _as_tensor(fn(given["x0"], given["t"], given["noise"], s_given))
            except RuntimeError as err:
                if "size" in str(err) or "shape" in str(err):
                    return (f"for images of shape {shape} your code fails ({err}): one abar_t per image must be reshaped "
                            "so it broadcasts over every pixel of that image, whatever the image shape")
                raise
            if (name := _changed({"x0": x0, "t": t, "noise": noise}, given) or _schedule_changed(s_given, s)) is not None:
                return _mutation_message(name)
            want = reference(x0, t, noise, s)
            if _same(got, want):
                continue
            a = weights(abar[t], x0)
            mistakes = [
                (a * x0 + (1 - a) * noise, "the weights have no square root: the signal is multiplied by sqrt(abar_t), the noise by sqrt(1 - abar_t)"),
                (weights(alpha[t], x0).sqrt() * x0 + (1 - weights(alpha[t], x0)).sqrt() * noise,
                 "you used alpha_t (schedule.alphas, one step's keep factor); jumping straight from x0 to step t needs the cumulative product abar_t (schedule.alphas_cumprod)"),
                ((1 - a).sqrt() * x0 + a.sqrt() * noise, "signal and noise weights are swapped: at large t the noise should dominate"),
                (reference(x0, t - 1, noise, s), "abar is taken at t - 1: time steps are 0-based here, abar_t is alphas_cumprod[t]"),
                (reference(x0, t + 1, noise, s), "abar is taken at t + 1: time steps are 0-based here, abar_t is alphas_cumprod[t]"),
                (reference(x0, torch.full_like(t, int(t[0])), noise, s), "every image got the first image's time step: use t[i] for image i"),
                (a.sqrt() * x0 + (1 - a) * noise, "the noise weight has no square root: it is sqrt(1 - abar_t), a standard deviation"),
            ]
            if tuple(got.shape) != shape:
                return (f"the output should have the images' shape {shape}, got {tuple(got.shape)}: one abar_t per image "
                        "must be reshaped so it broadcasts over every pixel of that image, whatever the image shape")
            return _diagnose(got, mistakes, f"images of shape {shape}, t = {t.tolist()}")
        x0, noise = _inputs((2, 1, 8, 8), seed=9)
        edge = torch.tensor([0, 999])
        if not _same(_as_tensor(fn(x0.clone(), edge.clone(), noise.clone(), s)), reference(x0, edge, noise, s)):
            return "wrong at the edge steps t = 0 and t = 999 (the first and last entries of the schedule)"
        return True

    return run_check("q_sample (the forward process)", test, q_sample)


# ----------------------------------------------------------------------------- 2. one DDPM step
def check_ddpm_step(ddpm_step: Callable[..., Any]) -> Verdict:
    """``ddpm_step(x_t, t, eps, schedule, noise)``: x_{t-1}, the posterior mean plus sigma_t * noise."""
    from ..diffusion import ddpm_step as reference

    s = _schedule()
    abar, alpha, beta = s.alphas_cumprod, s.alphas, s.betas

    def test(fn: Callable[..., Any]) -> bool | str:
        for t in (500, 37, 999, 1, 0):
            x_t, eps = _inputs((4, 1, 8, 8), seed=t)
            _, noise = _inputs((4, 1, 8, 8), seed=t + 1000)
            given, s_given = {"x_t": x_t.clone(), "eps": eps.clone(), "noise": noise.clone()}, _copy(s)
            got = _as_tensor(fn(given["x_t"], t, given["eps"], s_given, given["noise"]))
            if (name := _changed({"x_t": x_t, "eps": eps, "noise": noise}, given) or _schedule_changed(s_given, s)) is not None:
                return _mutation_message(name)
            want = reference(x_t, t, eps, s, noise)
            if _same(got, want):
                continue
            if tuple(got.shape) != tuple(x_t.shape):
                return f"the output should have the shape of x_t {tuple(x_t.shape)}, got {tuple(got.shape)}"
            mean = reference(x_t, t, eps, s, noise * 0)
            sigma2 = s.posterior_variance(t)
            if t == 0 and _is_mean_plus_noise(got, mean, noise):
                return "at t = 0: fresh noise is added at t = 0; the last step returns the mean (no noise), or the image stays noisy"
            mistakes = [
                (mean, "no noise is added: for t > 0 add sigma_t * noise (the reverse process is random)") if t > 0 else (None, ""),
                (mean + sigma2 * noise, "the noise is scaled by the variance: multiply it by sigma_t, the square root of the variance"),
                (mean + beta[t].sqrt() * noise, "sigma_t^2 = beta_t is the DDPM paper's other choice; this exercise (like diffusers' 'fixed_small') uses the posterior variance beta_t (1 - abar_{t-1}) / (1 - abar_t)") if t > 0 else (None, ""),
                ((x_t - beta[t] / (1 - abar[t]).sqrt() * eps) / abar[t].sqrt() + (sigma2.sqrt() * noise if t else 0),
                 "the mean divides by sqrt(abar_t): one reverse step undoes one forward step, so it divides by sqrt(alpha_t)"),
                ((x_t - beta[t] / (1 - alpha[t]).sqrt() * eps) / alpha[t].sqrt() + (sigma2.sqrt() * noise if t else 0),
                 "the noise term uses 1 - alpha_t: eps was mixed in over all t steps, so its weight uses 1 - abar_t (schedule.alphas_cumprod)"),
                ((x_t - beta[t] / (1 - abar[t]) * eps) / alpha[t].sqrt() + (sigma2.sqrt() * noise if t else 0),
                 "the noise term lacks a square root: divide beta_t by sqrt(1 - abar_t)"),
                (reference(x_t, t - 1, eps, s, noise) if t > 0 else None, "the schedule is read at t - 1: for the step from x_t use betas[t], alphas[t], alphas_cumprod[t] (0-based)"),
                (reference(x_t, t + 1, eps, s, noise) if t < 999 else None, "the schedule is read at t + 1: for the step from x_t use betas[t], alphas[t], alphas_cumprod[t] (0-based)"),
            ]
            return _diagnose(got, mistakes, f"at t = {t}")
        return True

    return run_check("DDPM reverse step", test, ddpm_step)


# ----------------------------------------------------------------------------- 3. guidance
def check_guidance(guidance: Callable[..., Any]) -> Verdict:
    """``guidance(eps_cond, eps_uncond, w)``: classifier-free guidance, ``w = 0`` unconditional, 1 conditional."""
    from ..diffusion import cfg_combine

    def test(fn: Callable[..., Any]) -> bool | str:
        eps_c, eps_u = _inputs((3, 1, 8, 8), seed=5)
        for w in (3.0, 0.0, 1.0, 0.5, 7.5):
            given = {"eps_cond": eps_c.clone(), "eps_uncond": eps_u.clone()}
            got = _as_tensor(fn(given["eps_cond"], given["eps_uncond"], w))
            if (name := _changed({"eps_cond": eps_c, "eps_uncond": eps_u}, given)) is not None:
                return _mutation_message(name)
            if _same(got, cfg_combine(eps_c, eps_u, w)):
                continue
            mistakes = [
                (eps_c + w * (eps_u - eps_c), "the guidance points the wrong way (sign flipped): it must move away from the unconditional prediction, towards the conditional one"),
                (eps_c + w * (eps_c - eps_u), "you used the (1 + w) convention (w = 0 would give the conditional prediction); here w = 0 must give the *unconditional* one and w = 1 the plain conditional model"),
                (eps_u + w * eps_c, "the step is w times the *difference* between the two predictions, not w times the conditional one"),
                (w * eps_c, "the unconditional prediction is missing"),
                (w * eps_c - (w - 1) * eps_c, "both terms use eps_cond"),
            ]
            return _diagnose(got, mistakes, f"with w = {w}")
        return True

    return run_check("classifier-free guidance", test, guidance)


# ----------------------------------------------------------------------------- 4. one DDIM step
def check_ddim_step(ddim_step: Callable[..., Any]) -> Verdict:
    """``ddim_step(x_t, t, t_prev, eps, schedule)``: deterministic jump from t to t_prev (-1 = clean)."""
    from ..diffusion import ddim_step as reference
    from ..diffusion import predict_x0

    s = _schedule()
    abar, alpha = s.alphas_cumprod, s.alphas

    def test(fn: Callable[..., Any]) -> bool | str:
        for t, t_prev in ((999, 949), (500, 300), (40, -1)):
            x_t, eps = _inputs((4, 1, 8, 8), seed=t)
            given, s_given = {"x_t": x_t.clone(), "eps": eps.clone()}, _copy(s)
            got = _as_tensor(fn(given["x_t"], t, t_prev, given["eps"], s_given))
            if (name := _changed({"x_t": x_t, "eps": eps}, given) or _schedule_changed(s_given, s)) is not None:
                return _mutation_message(name)
            again = _as_tensor(fn(x_t.clone(), t, t_prev, eps.clone(), _copy(s)))
            if not _same(again, got, 0):
                return "two calls with the same inputs gave different results: DDIM (eta = 0) adds no random noise"
            want = reference(x_t, t, t_prev, eps, s)
            if _same(got, want):
                continue
            if tuple(got.shape) != tuple(x_t.shape):
                return f"the output should have the shape of x_t {tuple(x_t.shape)}, got {tuple(got.shape)}"
            x0 = predict_x0(x_t, t, eps, s)
            a_prev = abar[t_prev] if t_prev >= 0 else None
            mistakes = [
                (abar[-1].sqrt() * x0 + (1 - abar[-1]).sqrt() * eps if t_prev == -1 else None,
                 "t_prev = -1 means 'the clean image', abar = 1; alphas_cumprod[-1] is Python's *last* entry (the noisiest step)"),
                (None if a_prev is None else a_prev * x0 + (1 - a_prev) * eps, "the weights of x0 and eps have no square roots"),
                (None if a_prev is None else alpha[t_prev].sqrt() * ((x_t - (1 - alpha[t]).sqrt() * eps) / alpha[t].sqrt())
                 + (1 - alpha[t_prev]).sqrt() * eps, "you used alpha (schedule.alphas, one step) where the cumulative abar (schedule.alphas_cumprod) is needed"),
                (x_t, "x_t comes back unchanged: the second half must use abar at t_prev, not at t"),
                (x0, "you returned the predicted x0: re-noise it to the level of t_prev with the predicted eps"),
                (None if a_prev is None else a_prev.sqrt() * ((x_t - (1 - abar[t]) * eps) / abar[t].sqrt()) + (1 - a_prev).sqrt() * eps,
                 "the predicted x0 is wrong: the noise weight at step t is sqrt(1 - abar_t)"),
            ]
            return _diagnose(got, mistakes, f"from t = {t} to t_prev = {t_prev}")
        return True

    return run_check("DDIM step", test, ddim_step)


# ----------------------------------------------------------------------------- 5. a fast sampler that works
def check_sampler(generate: Callable[..., Any], trained: Any, classifier: Any, split: Any, steps: int, w: float,
                  per_class: int = 20) -> Verdict:
    """``generate(model, labels, steps, w, seed)``: DDIM + guidance that reaches the target.

    The check counts the model calls and records the time steps they use, generates
    ``per_class`` digits of each class, lets the classifier judge them, measures their variety
    against ``split``'s held-out real digits, and compares with the reference sampler at the same
    ``steps`` and ``w``.
    """
    import torch

    from ..denoisers import NULL_LABEL
    from ..diffusion import sample
    from ..digits import class_spread

    labels = torch.arange(10).repeat(per_class)
    calls: list[tuple[list[int], set[int]]] = []  # (time steps, labels) of every model call
    report: list[str] = []

    def model(x_t: Any, t: Any, y: Any) -> Any:
        t, y = torch.as_tensor(t).reshape(-1).long(), torch.as_tensor(y).reshape(-1).long()
        t = t.expand(len(x_t)) if t.numel() == 1 else t  # an int step or one per image: both are fine
        y = y.expand(len(x_t)) if y.numel() == 1 else y
        calls.append((sorted(set(t.tolist())), set(y.tolist())))
        return trained(x_t, t, y)

    def test(fn: Callable[..., Any]) -> bool | str:
        if not 1 <= int(steps) <= MAX_STEPS:
            return f"STEPS = {steps}: choose between 1 and {MAX_STEPS} steps (the point is a fast sampler)"
        start = time.perf_counter()
        images = _as_tensor(fn(model, labels.clone(), int(steps), float(w), 0))
        seconds = time.perf_counter() - start
        if tuple(images.shape) != (len(labels), 1, 8, 8):
            return f"return one (1, 8, 8) image per label: expected shape {(len(labels), 1, 8, 8)}, got {tuple(images.shape)}"
        times = [ts[0] for ts, _ in calls if len(ts) == 1]
        if len(calls) > 2 * int(steps):
            return f"the model was called {len(calls)} times for {steps} steps: at most 2 calls per step (with and without the label)"
        if times and times[0] < times[-1]:
            return f"your time steps go up ({times[0]} ... {times[-1]}): sampling starts from noise at t near T - 1 and walks down to 0"
        if times and times[0] < 0.9 * trained.schedule.T:
            return f"the first step is t = {times[0]}: the loop must start from pure noise at t near {trained.schedule.T - 1}"
        if float(w) != 1.0 and not any(NULL_LABEL in ys for _, ys in calls):
            return "the model was never asked without the label (label 10): guidance needs the unconditional prediction too"
        accuracy, variety = classifier.accuracy(images, labels), class_spread(images.clamp(-1, 1), labels)
        real = class_spread(split.test_images, split.test_labels)
        reference = sample(trained, labels, trained.schedule, null_label=NULL_LABEL, w=float(w), steps=int(steps), method="ddim")
        ref_accuracy, ref_variety = classifier.accuracy(reference, labels), class_spread(reference, labels)
        shown = (f"your sampler: {accuracy:.0%} recognised as the requested digit, spread {variety:.2f} ({len(labels)} samples, "
                 f"{steps} steps, w = {w}, {seconds:.1f} s); target {TARGET_ACCURACY:.0%} and spread >= {MIN_SPREAD * real:.2f} "
                 f"(half the real digits' {real:.2f}); the reference sampler with the same settings: {ref_accuracy:.0%}, spread {ref_variety:.2f}")
        if accuracy >= TARGET_ACCURACY and variety >= MIN_SPREAD * real:
            report.append(shown)
            return True
        if variety < 0.05 * real:
            return shown + ". The digits of one class are (nearly) identical: does every sample start from its own noise?"
        if ref_accuracy >= TARGET_ACCURACY and ref_variety >= MIN_SPREAD * real:
            return shown + ". The reference reaches the target with your settings: compare your loop with it step by step"
        return shown + ". The reference misses it too at these settings: change the guidance scale w or the number of steps"

    verdict = run_check("a fast guided sampler", test, generate)
    return Verdict(verdict.name, verdict.status, report[0]) if verdict.passed and report else verdict
