"""Denoising diffusion (DDPM and DDIM) from scratch: the noise schedule, the forward process, the
loss, the reverse steps, classifier-free guidance and the sampling loops.

A diffusion model learns to *undo noise*. The **forward process** ruins an image ``x0`` in ``T``
small steps of Gaussian noise; step ``t`` adds variance ``beta_t`` (the **noise schedule**). Because
Gaussians add up, the noisy image at any step has a closed form (Ho et al. 2020, eq. 4)::

    x_t = sqrt(abar_t) * x0 + sqrt(1 - abar_t) * eps      eps ~ N(0, I)
    alpha_t = 1 - beta_t,   abar_t = alpha_1 * alpha_2 * ... * alpha_t   (the cumulative product)

A network ``eps_model(x_t, t, label)`` is trained to predict ``eps`` from ``x_t`` (mean squared
error: :func:`diffusion_loss`). To *generate*, start from pure noise ``x_T`` and step back:

* **DDPM** (:func:`ddpm_step`): the posterior ``q(x_{t-1} | x_t, x0)`` with the network's guess of
  ``x0`` plugged in; every one of the ``T`` steps adds a little fresh noise.
* **DDIM** (:func:`ddim_step`, Song et al. 2021): a deterministic jump from ``t`` to any earlier
  ``t_prev``, so 20-50 steps replace 1,000, with the same trained network.
* **Classifier-free guidance** (:func:`guided_eps`, Ho & Salimans 2022): train with the label
  sometimes replaced by a "no label" token, then extrapolate from the unconditional prediction
  towards the conditional one: ``eps_u + w * (eps_c - eps_u)``.

Time steps are 0-based, as in ``diffusers``: ``t = 0 ... T-1``, ``betas[t]`` is the variance added
at step ``t``. Images are tensors of shape (batch, channels, height, width) scaled to [-1, 1]; any
shape with the batch first works.

>>> s = NoiseSchedule.linear(T=1000)
>>> round(float(s.alphas_cumprod[0]), 6), round(float(s.alphas_cumprod[-1]), 6)
(0.9999, 4e-05)
>>> import torch
>>> x0 = torch.ones(2, 1, 8, 8)
>>> xt = q_sample(x0, torch.tensor([0, 999]), torch.zeros_like(x0), s)
>>> [round(float(v), 4) for v in xt[:, 0, 0, 0]]     # t=0: almost x0; t=999: almost only noise
[0.9999, 0.0064]

Taught in: lesson 13 (image generation by diffusion); the lab's exercises write these functions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from .errors import InvalidOption

EpsModel = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]  # (x_t, t, labels) -> eps


# ----------------------------------------------------------------------------- the noise schedule
@dataclass(frozen=True)
class NoiseSchedule:
    """``betas[t]``, ``alphas[t] = 1 - betas[t]`` and ``alphas_cumprod[t]`` (abar_t), t = 0 ... T-1."""

    betas: torch.Tensor
    alphas: torch.Tensor
    alphas_cumprod: torch.Tensor

    @classmethod
    def linear(cls, T: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> NoiseSchedule:
        """The DDPM paper's schedule: betas evenly spaced from ``beta_start`` to ``beta_end``."""
        if T < 2 or not 0 < beta_start <= beta_end < 1:
            raise InvalidOption(f"a schedule needs T >= 2 and 0 < beta_start <= beta_end < 1, got T={T}, "
                                f"betas {beta_start}..{beta_end}", fix="use e.g. T=1000, beta_start=1e-4, beta_end=0.02")
        betas = torch.linspace(beta_start, beta_end, T, dtype=torch.float32)
        alphas = 1.0 - betas
        return cls(betas, alphas, torch.cumprod(alphas, dim=0))

    @property
    def T(self) -> int:
        return len(self.betas)

    def posterior_variance(self, t: int) -> torch.Tensor:
        """Variance of q(x_{t-1} | x_t, x0): ``beta_t * (1 - abar_{t-1}) / (1 - abar_t)`` (0 at t = 0)."""
        abar_prev = self.alphas_cumprod[t - 1] if t > 0 else torch.tensor(1.0)
        return self.betas[t] * (1 - abar_prev) / (1 - self.alphas_cumprod[t])


def _per_sample(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Shape (batch,) -> (batch, 1, 1, ...) so one number per image broadcasts over its pixels."""
    return values.reshape(-1, *([1] * (like.ndim - 1)))


# ----------------------------------------------------------------------------- forward process and loss
def q_sample(x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor, schedule: NoiseSchedule) -> torch.Tensor:
    """``x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise``, one ``t`` per image (a new tensor)."""
    abar = _per_sample(schedule.alphas_cumprod[t], x0)
    return abar.sqrt() * x0 + (1 - abar).sqrt() * noise


def drop_labels(labels: torch.Tensor, p_uncond: float, null_label: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """A copy of ``labels`` with each one replaced by ``null_label`` with probability ``p_uncond``.

    Training on both lets one network predict noise with *and* without the label: what guidance needs.
    """
    dropped = torch.rand(labels.shape, generator=generator) < p_uncond
    return torch.where(dropped, torch.full_like(labels, null_label), labels)


def diffusion_loss(
    eps_model: EpsModel, x0: torch.Tensor, labels: torch.Tensor, schedule: NoiseSchedule,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The DDPM training objective: noise a batch at random steps, MSE between true and predicted noise."""
    t = torch.randint(0, schedule.T, (len(x0),), generator=generator)
    noise = torch.randn(x0.shape, generator=generator)
    return torch.mean((eps_model(q_sample(x0, t, noise, schedule), t, labels) - noise) ** 2)


# ----------------------------------------------------------------------------- reverse steps
def predict_x0(x_t: torch.Tensor, t: int, eps: torch.Tensor, schedule: NoiseSchedule) -> torch.Tensor:
    """Solve the forward formula for x0: ``(x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t)``."""
    abar = schedule.alphas_cumprod[t]
    return (x_t - (1 - abar).sqrt() * eps) / abar.sqrt()


def ddpm_step(
    x_t: torch.Tensor, t: int, eps: torch.Tensor, schedule: NoiseSchedule, noise: torch.Tensor | None = None,
    clip: bool = False,
) -> torch.Tensor:
    """One DDPM step x_t -> x_{t-1}: the posterior mean with the predicted x0, plus ``sigma_t * noise``.

    Without ``clip`` the mean is the paper's ``(x_t - beta_t / sqrt(1 - abar_t) * eps) / sqrt(alpha_t)``;
    ``clip=True`` first clamps the predicted x0 to the data range [-1, 1] (diffusers' ``clip_sample``).
    ``sigma_t^2`` is the posterior variance (diffusers' ``"fixed_small"``); no noise is added at t = 0.
    """
    abar_t = schedule.alphas_cumprod[t]
    x0 = predict_x0(x_t, t, eps, schedule)
    if clip:
        x0 = x0.clamp(-1, 1)
    if t == 0:  # the last step: the posterior mean is the predicted clean image itself, and no noise is added
        return x0
    abar_prev = schedule.alphas_cumprod[t - 1]
    # posterior mean (Ho et al. eq. 7): a mix of the predicted x0 and the current x_t
    mean = (abar_prev.sqrt() * schedule.betas[t] * x0 + schedule.alphas[t].sqrt() * (1 - abar_prev) * x_t) / (1 - abar_t)
    if noise is None:
        noise = torch.randn_like(x_t)
    return mean + schedule.posterior_variance(t).sqrt() * noise


def ddim_step(
    x_t: torch.Tensor, t: int, t_prev: int, eps: torch.Tensor, schedule: NoiseSchedule, clip: bool = False,
) -> torch.Tensor:
    """One deterministic DDIM step (eta = 0) from ``t`` to ``t_prev < t``; ``t_prev = -1`` means "clean".

    ``x_prev = sqrt(abar_prev) * x0_pred + sqrt(1 - abar_prev) * eps``: the predicted clean image,
    noised again to the level of ``t_prev`` with the *same* predicted noise. ``clip=True`` clamps the
    predicted x0 to [-1, 1] and uses the noise that this clamped x0 implies, so the two terms agree
    (diffusers: ``clip_sample=True`` with ``step(..., use_clipped_model_output=True)``).
    """
    abar_prev = schedule.alphas_cumprod[t_prev] if t_prev >= 0 else torch.tensor(1.0)
    x0 = predict_x0(x_t, t, eps, schedule)
    if clip:
        x0 = x0.clamp(-1, 1)
        abar_t = schedule.alphas_cumprod[t]
        eps = (x_t - abar_t.sqrt() * x0) / (1 - abar_t).sqrt()
    return abar_prev.sqrt() * x0 + (1 - abar_prev).sqrt() * eps


def ddim_timesteps(T: int, steps: int) -> list[int]:
    """``steps`` time steps from T-1 down, evenly spaced and ending near 0 ("trailing" spacing).

    >>> ddim_timesteps(1000, 5)
    [999, 799, 599, 399, 199]
    """
    if not 1 <= steps <= T:
        raise InvalidOption(f"steps={steps} must be between 1 and T={T}", fix="use e.g. steps=50")
    return [round(T - i * T / steps) - 1 for i in range(steps)]


# ----------------------------------------------------------------------------- guidance
def cfg_combine(eps_cond: torch.Tensor, eps_uncond: torch.Tensor, w: float) -> torch.Tensor:
    """Classifier-free guidance: ``eps_uncond + w * (eps_cond - eps_uncond)``.

    ``w = 0`` ignores the label, ``w = 1`` is the plain conditional model, ``w > 1`` pushes further
    in the label's direction (the convention of diffusers' ``guidance_scale``).
    """
    return eps_uncond + w * (eps_cond - eps_uncond)


def guided_eps(eps_model: EpsModel, x_t: torch.Tensor, t: int, labels: torch.Tensor, w: float, null_label: int) -> torch.Tensor:
    """The guided noise prediction at step ``t``: one network call on the batch twice (with and without labels)."""
    steps = torch.full((2 * len(x_t),), t, dtype=torch.long)
    eps = eps_model(torch.cat([x_t, x_t]), steps, torch.cat([labels, torch.full_like(labels, null_label)]))
    eps_cond, eps_uncond = eps.chunk(2)
    return cfg_combine(eps_cond, eps_uncond, w)


# ----------------------------------------------------------------------------- sampling loops
@torch.no_grad()
def sample(
    eps_model: EpsModel, labels: Sequence[int] | torch.Tensor, schedule: NoiseSchedule, *, null_label: int,
    w: float = 1.0, steps: int | None = None, method: str = "ddim", shape: tuple[int, ...] = (1, 8, 8),
    seed: int = 0, clip: bool = True, x_T: torch.Tensor | None = None,
) -> torch.Tensor:
    """Generate one image per label, starting from seeded noise (or ``x_T``).

    ``method="ddpm"`` walks all T steps (``steps`` must be None or T); ``"ddim"`` takes ``steps``
    (default 50) evenly spaced steps. ``w`` is the guidance scale (see :func:`cfg_combine`).
    """
    labels = torch.as_tensor(labels, dtype=torch.long)
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn((len(labels), *shape), generator=generator) if x_T is None else x_T.clone()
    if method == "ddpm":
        if steps not in (None, schedule.T):
            raise InvalidOption(f"DDPM walks every one of the T={schedule.T} steps, not {steps}", fix="use method='ddim' for fewer steps")
        for t in range(schedule.T - 1, -1, -1):
            eps = guided_eps(eps_model, x, t, labels, w, null_label)
            noise = torch.randn(x.shape, generator=generator) if t > 0 else None
            x = ddpm_step(x, t, eps, schedule, noise, clip=clip)
        return x
    if method != "ddim":
        raise InvalidOption(f"unknown sampling method {method!r}", fix="use 'ddpm' or 'ddim'")
    times = ddim_timesteps(schedule.T, 50 if steps is None else steps)
    for t, t_prev in zip(times, [*times[1:], -1]):
        x = ddim_step(x, t, t_prev, guided_eps(eps_model, x, t, labels, w, null_label), schedule, clip=clip)
    return x


def sinusoidal_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Each time step as ``dim`` sines and cosines of different frequencies (as in the Transformer).

    >>> sinusoidal_embedding(torch.tensor([0, 500]), 8).shape
    torch.Size([2, 8])
    """
    half = dim // 2
    freqs = torch.exp(-torch.log(torch.tensor(10_000.0)) * torch.arange(half) / half)
    angles = t.float()[:, None] * freqs[None, :]
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


def describe(schedule: NoiseSchedule, at: Sequence[int] = (0, 100, 250, 500, 750, 999)) -> list[dict[str, Any]]:
    """Rows (t, beta_t, abar_t, signal and noise weights) for a table of the schedule."""
    return [{"t": t, "beta_t": float(schedule.betas[t]), "abar_t": float(schedule.alphas_cumprod[t]),
             "signal sqrt(abar_t)": float(schedule.alphas_cumprod[t].sqrt()),
             "noise sqrt(1-abar_t)": float((1 - schedule.alphas_cumprod[t]).sqrt())} for t in at]
