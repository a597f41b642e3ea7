"""The networks that predict noise for lesson 13, their training loop and their cache, and the bridge
to ``diffusers`` (its UNet2DModel and its schedulers).

Two noise predictors with one call signature, ``model(x_t, t, labels) -> eps``:

* :class:`DigitDenoiser`, written here: an MLP over the 64 pixels with residual blocks, told the
  time step (sinusoidal embedding) and the digit (a learned embedding; label 10 = "no label").
* :func:`tiny_unet`: diffusers' ``UNet2DModel`` built from a config (never downloaded), the
  convolutional U-Net family Stable Diffusion's denoiser comes from, shrunk to 8x8 grey images.

:func:`train` trains one (the loss of :func:`course_utils.diffusion.diffusion_loss`, with label
dropout for classifier-free guidance and an exponential moving average of the weights).
:func:`cached_denoiser` finds the one a :class:`TrainConfig` describes under the name
``<arch>-<key>``, the key a hash of everything that made it: first among the weights shipped in
``data/diffusion/`` (float16, made by ``data/make_diffusion_denoisers.py``, so the lesson's default
models cost no training), then in ``<COURSE_CACHE>/diffusion/``; only a configuration found in
neither is trained (and then cached).

>>> model = DigitDenoiser(hidden=32, depth=1)
>>> import torch
>>> model(torch.zeros(3, 1, 8, 8), torch.tensor([0, 5, 999]), torch.tensor([1, 2, NULL_LABEL])).shape
torch.Size([3, 1, 8, 8])

Taught in: lesson 13 (and its lab, which samples from the cached model).
"""

from __future__ import annotations

import copy
import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .config import settings
from .diffusion import NoiseSchedule, diffusion_loss, drop_labels, sinusoidal_embedding
from .digits import N_CLASSES, DigitSplit, load_split
from .errors import DataError, InvalidOption
from .paths import atomic_folder, data_path

NULL_LABEL = N_CLASSES  # the "no label" token the model learns for guidance
CACHE_VERSION = 1  # bump when training changes in a way the config does not show
WEIGHTS, INFO = "weights.safetensors", "train.json"
SHIPPED = "diffusion"  # data/diffusion/<arch>-<key>/: the lesson's default denoisers, trained once


# ----------------------------------------------------------------------------- the hand-written network
class _Block(nn.Module):
    """x + MLP(norm(x) + cond): a residual block that is told the time step and label (``cond``)."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.norm, self.cond = nn.LayerNorm(hidden), nn.Linear(hidden, hidden)
        self.mlp = nn.Sequential(nn.Linear(hidden, 2 * hidden), nn.SiLU(), nn.Linear(2 * hidden, hidden))

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return x + self.mlp(self.norm(x) + self.cond(cond))


class DigitDenoiser(nn.Module):
    """Predicts the noise in an 8x8 image from the image, the time step and the label (0-9, or 10)."""

    def __init__(self, hidden: int = 128, depth: int = 3, pixels: int = 64, time_dim: int = 128) -> None:
        super().__init__()
        self.time_dim = time_dim
        self.time = nn.Sequential(nn.Linear(time_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.label = nn.Embedding(N_CLASSES + 1, hidden)
        self.inp = nn.Linear(pixels, hidden)
        self.blocks = nn.ModuleList(_Block(hidden) for _ in range(depth))
        self.out = nn.Sequential(nn.LayerNorm(hidden), nn.Linear(hidden, pixels))

    def forward(self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        cond = nn.functional.silu(self.time(sinusoidal_embedding(t, self.time_dim)) + self.label(labels))
        h = self.inp(x.reshape(len(x), -1))
        for block in self.blocks:
            h = block(h, cond)
        return self.out(h).reshape(x.shape)


class MemorisingDenoiser:
    """The *perfect* noise predictor for a finite training set, computed, not learned.

    If the data were exactly these images, the best guess of x0 given x_t is their average
    weighted by how likely each one is to have become x_t (a softmax over distances); the noise
    follows from the forward formula. Sampling with it can only give back training images:
    a network generalises *because* it cannot fit this function exactly.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, schedule: NoiseSchedule) -> None:
        self.images = images.reshape(len(images), -1).double()  # float64: at small t the distances differ in the 5th digit
        self.labels, self.schedule = labels, schedule

    def __call__(self, x_t: torch.Tensor, t: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        abar = self.schedule.alphas_cumprod[t][:, None].double()
        flat = x_t.reshape(len(x_t), -1).double()
        scaled = abar.sqrt()  # the forward process shrinks each candidate x0 to sqrt(abar) x0 before adding noise
        sq = (flat**2).sum(1, keepdim=True) - 2 * scaled * (flat @ self.images.T) + scaled**2 * (self.images**2).sum(1)[None]
        logits = -sq / (2 * (1 - abar))
        allowed = (labels[:, None] == NULL_LABEL) | (labels[:, None] == self.labels[None])
        weights = torch.softmax(logits.masked_fill(~allowed, float("-inf")), dim=-1)
        x0 = weights @ self.images
        return ((flat - abar.sqrt() * x0) / (1 - abar).sqrt()).reshape(x_t.shape).to(x_t.dtype)


# ----------------------------------------------------------------------------- the library network
UNET_CONFIG: dict[str, Any] = {
    "sample_size": 8, "in_channels": 1, "out_channels": 1, "layers_per_block": 1,
    "block_out_channels": (16, 32), "down_block_types": ("DownBlock2D", "DownBlock2D"),
    "up_block_types": ("UpBlock2D", "UpBlock2D"), "norm_num_groups": 4,
    "num_class_embeds": N_CLASSES + 1,  # class conditioning: 10 digits + "no label"
}


class UNetDenoiser(nn.Module):
    """diffusers' ``UNet2DModel`` behind the course's call signature ``(x_t, t, labels) -> eps``."""

    def __init__(self, **overrides: Any) -> None:
        super().__init__()
        self.unet = tiny_unet(**overrides)

    def forward(self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.unet(x, t, class_labels=labels).sample


def tiny_unet(**overrides: Any) -> Any:
    """A small class-conditioned ``diffusers.UNet2DModel`` for 8x8 grey images, from a config
    (``UNET_CONFIG`` updated with ``overrides``): random weights, nothing downloaded."""
    from diffusers import UNet2DModel

    return UNet2DModel(**{**UNET_CONFIG, **overrides})


# ----------------------------------------------------------------------------- training
@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides the trained weights (and so the cache key)."""

    arch: str = "mlp"  # "mlp" (DigitDenoiser) or "unet" (diffusers UNet2DModel)
    steps: int = 3000
    batch_size: int = 256
    lr: float = 2e-3
    p_uncond: float = 0.15  # label dropout: how often the model trains without its label
    ema: float = 0.995  # weights averaged over roughly the last 1 / (1 - ema) steps
    hidden: int = 128  # MLP width (ignored by the U-Net)
    depth: int = 3  # MLP residual blocks (ignored by the U-Net)
    T: int = 1000
    beta_start: float = 1e-4
    beta_end: float = 0.02
    seed: int = 0

    def schedule(self) -> NoiseSchedule:
        return NoiseSchedule.linear(self.T, self.beta_start, self.beta_end)

    def build(self) -> nn.Module:
        if self.arch == "mlp":
            return DigitDenoiser(self.hidden, self.depth)
        if self.arch == "unet":
            return UNetDenoiser()
        raise InvalidOption(f"unknown denoiser architecture {self.arch!r}", fix="use arch='mlp' or arch='unet'")


# the two denoisers lesson 13 samples from (and its lab and benchmark), shipped trained in data/diffusion/
SHIPPED_CONFIGS = {"mlp": TrainConfig(), "unet": TrainConfig(arch="unet", steps=600, batch_size=64)}


@dataclass
class TrainedDenoiser:
    model: nn.Module  # the EMA weights, in eval mode
    config: TrainConfig
    schedule: NoiseSchedule
    seconds: float  # training time when it was trained (on the machine that trained it)
    losses: list[float]  # mean training loss per 100 steps
    folder: Path
    trained_now: bool = False
    shipped: bool = False  # loaded from the course's data/ folder (float16 weights)
    parameters: int = field(init=False)

    def __post_init__(self) -> None:
        self.parameters = sum(p.numel() for p in self.model.parameters())

    @property
    def origin(self) -> str:
        """Where these weights came from, in words."""
        if self.trained_now:
            return "trained now"
        return "shipped with the course (data/diffusion)" if self.shipped else "loaded from the course cache"

    def __call__(self, x_t: torch.Tensor, t: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.model(x_t, t, labels)


def train(config: TrainConfig, split: DigitSplit, log_every: int = 100) -> tuple[nn.Module, list[float], float]:
    """Train a fresh denoiser on ``split``'s training images; returns (EMA model, losses, seconds).

    ``losses`` holds the mean training loss of every ``log_every`` steps (and of the last few).
    """
    if config.steps < 1 or config.batch_size < 1 or log_every < 1 or not 0 <= config.p_uncond < 1:
        raise InvalidOption(f"cannot train with {config}", fix="steps and batch_size >= 1, 0 <= p_uncond < 1")
    torch.manual_seed(config.seed)
    model, schedule = config.build(), config.schedule()
    ema = copy.deepcopy(model).requires_grad_(False)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.0)
    lr_schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, total_steps=config.steps, pct_start=0.05)
    generator = torch.Generator().manual_seed(config.seed)
    images, labels = split.train_images, split.train_labels
    losses, running, start = [], 0.0, time.perf_counter()
    model.train()
    for step in range(1, config.steps + 1):
        idx = torch.randint(0, len(images), (config.batch_size,), generator=generator)
        batch_labels = drop_labels(labels[idx], config.p_uncond, NULL_LABEL, generator)
        loss = diffusion_loss(model, images[idx], batch_labels, schedule, generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        lr_schedule.step()
        with torch.no_grad():  # the EMA copy smooths out the last steps' noise: better samples
            for p_ema, p in zip(ema.parameters(), model.parameters()):
                p_ema.lerp_(p, 1 - config.ema)
        running += loss.item()
        if step % log_every == 0 or step == config.steps:
            losses.append(running / (step % log_every or log_every))
            running = 0.0
    return ema.eval(), losses, time.perf_counter() - start


def cache_key(config: TrainConfig, split: DigitSplit) -> str:
    network = UNET_CONFIG if config.arch == "unet" else {}  # the U-Net's shape is not in the config's fields
    text = json.dumps({**asdict(config), "network": network, "data": split.fingerprint(), "version": CACHE_VERSION}, sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def folder_name(config: TrainConfig, split: DigitSplit) -> str:
    """``<arch>-<key>``: the folder a trained denoiser is kept in, shipped or cached."""
    return f"{config.arch}-{cache_key(config, split)}"


def save_denoiser(folder: str | Path, model: nn.Module, config: TrainConfig, losses: Sequence[float], seconds: float,
                  dtype: torch.dtype = torch.float32, replace: bool = False) -> Path:
    """Write weights (as ``dtype``) and ``train.json`` to ``folder``, atomically (complete or absent)."""
    from safetensors.torch import save_file

    def write(tmp: Path) -> None:
        save_file({k: v.detach().to(dtype).contiguous() for k, v in model.state_dict().items()}, str(tmp / WEIGHTS))
        info = {"config": asdict(config), "seconds": seconds, "losses": list(losses), "version": CACHE_VERSION,
                "dtype": str(dtype).removeprefix("torch.")}
        (tmp / INFO).write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")

    return atomic_folder(Path(folder), write, replace=replace)


def load_denoiser(folder: Path, config: TrainConfig) -> tuple[nn.Module, dict[str, Any]]:
    """The model and ``train.json`` saved in ``folder``; a file that cannot be read is reported."""
    from safetensors.torch import load_file

    try:
        info = json.loads((folder / INFO).read_text(encoding="utf-8"))
        model = config.build()
        model.load_state_dict(load_file(str(folder / WEIGHTS)))  # float16 weights are widened to float32
    except Exception as err:  # unreadable JSON, truncated weights, wrong shapes
        raise DataError(f"the saved denoiser in {folder} cannot be read ({type(err).__name__}: {err})",
                        fix=f"delete the folder {folder} and run again to retrain it (or restore it with git if it "
                            "is under data/)") from None
    return model.eval().requires_grad_(False), info


def shipped_folder(name: str) -> Path | None:
    """``data/diffusion/<name>`` if the course ships that denoiser (None outside a course checkout)."""
    try:
        folder = data_path(SHIPPED) / name
    except DataError:  # course_utils installed without the checkout: train and cache instead
        return None
    return folder if (folder / INFO).is_file() else None


def cached_denoiser(config: TrainConfig | None = None, split: DigitSplit | None = None,
                    cache_dir: str | Path | None = None, use_shipped: bool = True) -> TrainedDenoiser:
    """The denoiser ``config`` describes: shipped in ``data/diffusion/``, cached, or trained now (then cached).

    The cache folder is written atomically (complete or absent). A saved file that cannot be read is
    reported, not overwritten.
    """
    config, split = config or TrainConfig(), split or load_split()
    name = folder_name(config, split)
    shipped = shipped_folder(name) if use_shipped else None
    root = Path(cache_dir) if cache_dir is not None else settings().cache_dir / "diffusion"
    folder, trained_now = shipped or root / name, False
    if shipped is None and not (folder / INFO).is_file():
        model, losses, seconds = train(config, split)
        save_denoiser(folder, model, config, losses, seconds)  # two notebooks training at once: the first one wins
        trained_now = True
    model, info = load_denoiser(folder, config)
    return TrainedDenoiser(model, config, config.schedule(), float(info["seconds"]), [float(v) for v in info["losses"]],
                           folder, trained_now, shipped is not None)


# ----------------------------------------------------------------------------- diffusers' schedulers
def diffusers_scheduler(kind: str, config: TrainConfig | None = None, clip: bool = True) -> Any:
    """diffusers' ``DDPMScheduler`` or ``DDIMScheduler`` with the training schedule's T and betas."""
    from diffusers import DDIMScheduler, DDPMScheduler

    config = config or TrainConfig()
    common = {"num_train_timesteps": config.T, "beta_start": config.beta_start, "beta_end": config.beta_end,
              "beta_schedule": "linear", "clip_sample": clip, "prediction_type": "epsilon"}
    if kind == "ddpm":
        return DDPMScheduler(**common, variance_type="fixed_small")
    if kind == "ddim":
        return DDIMScheduler(**common, set_alpha_to_one=True, timestep_spacing="trailing")
    raise InvalidOption(f"unknown scheduler {kind!r}", fix="use 'ddpm' or 'ddim'")


@torch.no_grad()
def sample_with_scheduler(eps_model: Any, labels: Sequence[int] | torch.Tensor, scheduler: Any, steps: int,
                          w: float = 1.0, seed: int = 0, shape: tuple[int, ...] = (1, 8, 8)) -> torch.Tensor:
    """The usual diffusers loop: ``set_timesteps``, then ``scheduler.step`` on the guided prediction.

    Same seed, same random draws as :func:`course_utils.diffusion.sample`, so the two can be compared.
    """
    from .diffusion import guided_eps

    labels = torch.as_tensor(labels, dtype=torch.long)
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn((len(labels), *shape), generator=generator)
    scheduler.set_timesteps(steps)
    # DDIM: re-derive the noise from the clipped x0 (without it, many guided steps drift; lesson 13 measures it)
    options = {"use_clipped_model_output": True} if type(scheduler).__name__ == "DDIMScheduler" else {}
    for t in scheduler.timesteps:
        eps = guided_eps(eps_model, x, int(t), labels, w, NULL_LABEL)
        x = scheduler.step(eps, int(t), x, generator=generator, **options).prev_sample
    return x
