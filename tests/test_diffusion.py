"""Lesson 13's diffusion code: the hand-written schedule and steps agree with diffusers' schedulers,
the samplers reproduce the data with a perfect denoiser, training lowers the loss, the cache
trains once and reports a corrupt file, the shipped denoisers are the ones their configurations
name and draw recognisable digits, and the digit data and classifier behave."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from course_utils import CourseError, DataError, denoisers, diffusion, digits
from course_utils.denoisers import NULL_LABEL, DigitDenoiser, MemorisingDenoiser, TrainConfig

SCHEDULE = diffusion.NoiseSchedule.linear(1000, 1e-4, 0.02)
SHORT = TrainConfig(T=100, beta_start=1e-3, beta_end=0.2)  # whole loops in a tenth of the calls; still ends in noise


@pytest.fixture(scope="module")
def split():
    return digits.load_split()


@pytest.fixture(scope="module")
def untrained():
    torch.manual_seed(0)
    return DigitDenoiser(hidden=32, depth=1).eval()


def _noisy(shape=(4, 1, 8, 8), seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g), torch.randn(shape, generator=g)


# ----------------------------------------------------------------------------- same schedule as diffusers
@pytest.mark.parametrize("kind", ["ddpm", "ddim"])
def test_schedule_equals_diffusers(kind):
    sched = denoisers.diffusers_scheduler(kind)
    assert torch.allclose(SCHEDULE.betas, sched.betas, atol=1e-9, rtol=0)
    assert torch.allclose(SCHEDULE.alphas_cumprod, sched.alphas_cumprod, atol=1e-7, rtol=0)


def test_q_sample_equals_add_noise():
    x0, noise = _noisy((6, 1, 8, 8), seed=1)
    t = torch.tensor([0, 1, 10, 500, 998, 999])
    ours = diffusion.q_sample(x0, t, noise, SCHEDULE)
    theirs = denoisers.diffusers_scheduler("ddpm").add_noise(x0, noise, t)
    assert torch.allclose(ours, theirs, atol=1e-6)
    assert not torch.allclose(ours[0], ours[-1])  # a different t per image really is used


@pytest.mark.parametrize("clip", [False, True])
@pytest.mark.parametrize("t", [999, 500, 37, 1, 0])
def test_ddpm_step_equals_diffusers_step(t, clip):
    x_t, eps = _noisy(seed=t)
    eps = 3 * eps  # large enough that clipping the predicted x0 changes something
    sched = denoisers.diffusers_scheduler("ddpm", clip=clip)
    sched.set_timesteps(1000)
    theirs = sched.step(eps, t, x_t, generator=torch.Generator().manual_seed(7)).prev_sample
    noise = torch.randn(x_t.shape, generator=torch.Generator().manual_seed(7))  # the same draw as diffusers'
    ours = diffusion.ddpm_step(x_t, t, eps, SCHEDULE, noise, clip=clip)
    assert torch.allclose(ours, theirs, atol=1e-4)  # float32: at t = 1 the step divides by 1 - abar_t = 3e-4


def test_ddpm_step_is_the_papers_epsilon_formula():
    x_t, eps = _noisy(seed=3)
    t = 400
    beta, alpha, abar = SCHEDULE.betas[t], SCHEDULE.alphas[t], SCHEDULE.alphas_cumprod[t]
    paper = (x_t - beta / (1 - abar).sqrt() * eps) / alpha.sqrt()
    assert torch.allclose(diffusion.ddpm_step(x_t, t, eps, SCHEDULE, torch.zeros_like(x_t)), paper, atol=1e-5)
    assert torch.equal(diffusion.ddpm_step(x_t, 0, eps, SCHEDULE, torch.ones_like(x_t)),
                       diffusion.ddpm_step(x_t, 0, eps, SCHEDULE, torch.zeros_like(x_t)))  # no noise at t = 0


@pytest.mark.parametrize("clip", [False, True])
def test_ddim_step_equals_diffusers_step(clip):
    sched = denoisers.diffusers_scheduler("ddim", clip=clip)
    sched.set_timesteps(20)
    times = diffusion.ddim_timesteps(1000, 20)
    assert times == sched.timesteps.tolist()
    for t, t_prev in zip(times, [*times[1:], -1]):
        x_t, eps = _noisy(seed=t)
        eps = 2 * eps
        theirs = sched.step(eps, t, x_t, use_clipped_model_output=True).prev_sample
        assert torch.allclose(diffusion.ddim_step(x_t, t, t_prev, eps, SCHEDULE, clip=clip), theirs, atol=1e-5), t


@pytest.mark.parametrize("method,steps,kind", [("ddim", 20, "ddim"), ("ddpm", None, "ddpm")])
def test_whole_sampling_loop_equals_diffusers(untrained, method, steps, kind):
    labels = [3, 1, 4, 1]
    ours = diffusion.sample(untrained, labels, SHORT.schedule(), null_label=NULL_LABEL, w=2.0, steps=steps, method=method, seed=5)
    theirs = denoisers.sample_with_scheduler(untrained, labels, denoisers.diffusers_scheduler(kind, SHORT), steps or SHORT.T,
                                             w=2.0, seed=5)
    assert torch.allclose(ours, theirs, atol=1e-4)


# ----------------------------------------------------------------------------- samplers and guidance
def test_samplers_with_a_perfect_denoiser_give_back_training_images(split):
    """With the exact optimal denoiser of a data set, sampling must land on the data (any step count)."""
    for schedule, method, steps in ((SCHEDULE, "ddim", 50), (SHORT.schedule(), "ddpm", None)):
        perfect = MemorisingDenoiser(split.train_images, split.train_labels, schedule)
        labels = torch.tensor([0, 3, 7, 9])
        x = diffusion.sample(perfect, labels, schedule, null_label=NULL_LABEL, w=1.0, steps=steps, method=method)
        nearest = torch.cdist(x.reshape(4, -1), split.train_images.reshape(len(split.train_images), -1)).min(1)
        assert nearest.values.max() < 0.05, (method, nearest.values)
        assert split.train_labels[nearest.indices].tolist() == labels.tolist()  # the requested class


def test_cfg_combine_and_guided_eps_batch_both_predictions():
    eps_c, eps_u = _noisy(seed=4)
    assert torch.equal(diffusion.cfg_combine(eps_c, eps_u, 0.0), eps_u)
    assert torch.allclose(diffusion.cfg_combine(eps_c, eps_u, 1.0), eps_c)
    assert torch.allclose(diffusion.cfg_combine(eps_c, eps_u, 3.0), eps_u + 3 * (eps_c - eps_u))
    seen = []

    def model(x, t, y):
        seen.append((x.shape[0], t.tolist(), y.tolist()))
        return torch.where(y[:, None, None, None] == NULL_LABEL, -1.0, 1.0) * torch.ones_like(x)

    out = diffusion.guided_eps(model, torch.zeros(2, 1, 8, 8), 42, torch.tensor([5, 6]), 2.0, NULL_LABEL)
    assert seen == [(4, [42] * 4, [5, 6, NULL_LABEL, NULL_LABEL])]  # one call, the batch twice
    assert torch.allclose(out, torch.full_like(out, 3.0))  # -1 + 2 * (1 - (-1))


def test_ddim_timesteps_and_bad_arguments():
    assert diffusion.ddim_timesteps(1000, 1000) == list(range(999, -1, -1))
    assert diffusion.ddim_timesteps(1000, 4) == [999, 749, 499, 249]
    for bad in (lambda: diffusion.ddim_timesteps(1000, 0), lambda: diffusion.NoiseSchedule.linear(T=1),
                lambda: diffusion.sample(lambda x, t, y: x, [1], SCHEDULE, null_label=10, method="euler"),
                lambda: diffusion.sample(lambda x, t, y: x, [1], SCHEDULE, null_label=10, method="ddpm", steps=10),
                lambda: TrainConfig(arch="vit").build(), lambda: denoisers.diffusers_scheduler("euler")):
        with pytest.raises(CourseError, match="Fix:"):
            bad()


def test_drop_labels_replaces_about_the_asked_fraction():
    labels = torch.arange(10).repeat(1000)
    dropped = diffusion.drop_labels(labels, 0.2, NULL_LABEL, torch.Generator().manual_seed(0))
    share = (dropped == NULL_LABEL).float().mean().item()
    assert 0.18 < share < 0.22
    kept = dropped != NULL_LABEL
    assert torch.equal(dropped[kept], labels[kept]) and labels.max() == 9  # the input itself is unchanged


# ----------------------------------------------------------------------------- training and the cache
TINY = TrainConfig(steps=200, hidden=64, depth=1, batch_size=128, seed=1)


@pytest.fixture(scope="module")
def tiny_cache(tmp_path_factory, split):
    """TINY trained once into an empty cache (the tests below share that one training)."""
    cache = tmp_path_factory.mktemp("diffusion-cache")
    return cache, denoisers.cached_denoiser(TINY, split, cache_dir=cache)


def test_training_lowers_the_loss(split, tiny_cache):
    trained = tiny_cache[1]
    model, losses, seconds = trained.model, trained.losses, trained.seconds
    assert len(losses) == 2 and seconds > 0
    start = diffusion.diffusion_loss(DigitDenoiser(64, 1), split.train_images[:512], split.train_labels[:512], SCHEDULE,
                                     torch.Generator().manual_seed(0)).item()
    end = diffusion.diffusion_loss(model, split.train_images[:512], split.train_labels[:512], SCHEDULE,
                                   torch.Generator().manual_seed(0)).item()
    assert end < 0.6 * start, (start, end)


def test_cache_trains_once_and_reports_a_corrupt_file(tiny_cache, split):
    tmp_path, first = tiny_cache
    second = denoisers.cached_denoiser(TINY, split, cache_dir=tmp_path)
    assert first.trained_now and not second.trained_now and first.folder == second.folder
    assert not first.shipped and second.origin == "loaded from the course cache"
    x, _ = _noisy()
    t, y = torch.tensor([5, 50, 500, 900]), torch.tensor([1, 2, 3, NULL_LABEL])
    assert torch.equal(first(x, t, y), second(x, t, y))
    assert json.loads((first.folder / denoisers.INFO).read_text())["config"]["steps"] == TINY.steps
    other = TrainConfig(steps=100, hidden=64, depth=1, batch_size=128, seed=1)
    assert denoisers.folder_name(other, split) != first.folder.name  # another configuration: another model
    weights = first.folder / denoisers.WEIGHTS
    weights.write_bytes(weights.read_bytes()[:100])  # a truncated file
    with pytest.raises(DataError, match="cannot be read.*Fix: delete the folder"):
        denoisers.cached_denoiser(TINY, split, cache_dir=tmp_path)
    assert len(weights.read_bytes()) == 100  # reported, not overwritten


def test_train_logs_the_mean_loss_of_every_log_every_steps(split):
    config = TrainConfig(steps=7, hidden=16, depth=1, batch_size=8)
    _, losses, _ = denoisers.train(config, split, log_every=3)
    assert len(losses) == 3 and all(np.isfinite(losses))  # steps 1-3, 4-6 and the last one
    with pytest.raises(CourseError, match="Fix:"):
        denoisers.train(config, split, log_every=0)


# ----------------------------------------------------------------------------- the shipped denoisers
@pytest.mark.parametrize("arch", sorted(denoisers.SHIPPED_CONFIGS))
def test_the_shipped_denoisers_are_the_ones_their_configurations_name(arch, split, tmp_path):
    config = denoisers.SHIPPED_CONFIGS[arch]
    folder = denoisers.shipped_folder(denoisers.folder_name(config, split))
    assert folder is not None, f"data/diffusion/ lacks {arch}: run python data/make_diffusion_denoisers.py --only {arch}"
    info = json.loads((folder / denoisers.INFO).read_text())
    assert TrainConfig(**info["config"]) == config and info["dtype"] == "float16"
    trained = denoisers.cached_denoiser(config, split, cache_dir=tmp_path)
    assert trained.shipped and not trained.trained_now and trained.folder == folder
    assert list(tmp_path.iterdir()) == []  # nothing trained, nothing written to the cache
    assert all(p.dtype == torch.float32 for p in trained.model.parameters())  # widened on load
    bigger = TrainConfig(**{**info["config"], "steps": config.steps + 1})
    assert denoisers.shipped_folder(denoisers.folder_name(bigger, split)) is None  # any other config trains


def test_the_shipped_mlp_draws_the_digits_asked_for(split):
    mlp = denoisers.cached_denoiser(denoisers.SHIPPED_CONFIGS["mlp"], split)
    judge = digits.DigitClassifier(split.train_images, split.train_labels)
    labels = torch.arange(10).repeat(10)
    guided = diffusion.sample(mlp, labels, mlp.schedule, null_label=NULL_LABEL, w=2.0, steps=10)
    unguided = diffusion.sample(mlp, labels, mlp.schedule, null_label=NULL_LABEL, w=0.0, steps=10)
    assert judge.accuracy(guided, labels) > 0.9  # a trained, label-following model
    assert judge.accuracy(unguided, labels) < 0.4  # w = 0 ignores the label: about chance


def test_the_diffusers_unet_builds_from_a_config_and_trains(split):
    config = TrainConfig(arch="unet", steps=3, batch_size=16)
    model, losses, _ = denoisers.train(config, split)
    out = model(torch.zeros(2, 1, 8, 8), torch.tensor([0, 999]), torch.tensor([4, NULL_LABEL]))
    assert out.shape == (2, 1, 8, 8) and torch.isfinite(out).all() and len(losses) == 1
    assert type(model.unet).__name__ == "UNet2DModel" and model.unet.config.num_class_embeds == 11


# ----------------------------------------------------------------------------- data and the judge
def test_split_is_stratified_and_disjoint(split):
    assert len(split.train_images) + len(split.test_images) == 1797
    train = {tuple(v) for v in split.train_images.reshape(len(split.train_images), -1).tolist()}
    overlap = sum(tuple(v) in train for v in split.test_images.reshape(len(split.test_images), -1).tolist())
    assert overlap < 5  # the raw data set has a few duplicate images, no more
    counts = np.bincount(split.test_labels.numpy(), minlength=10)
    assert counts.min() >= 34 and counts.max() <= 38
    with pytest.raises(DataError):
        digits.load_split(test_fraction=1.5)


def test_classifier_recognises_real_digits_but_not_noise(split):
    clf = digits.DigitClassifier(split.train_images, split.train_labels)
    assert clf.accuracy(split.test_images, split.test_labels) > 0.95
    noise = torch.randn(500, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    assert clf.accuracy(noise, torch.arange(10).repeat(50)) < 0.3
    assert clf.accuracy(split.test_images.numpy(), split.test_labels.tolist()) == clf.accuracy(split.test_images, split.test_labels)
