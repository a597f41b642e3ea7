"""Merging models by hand: averaging, task arithmetic, SLERP, TIES and DARE, then mergekit.

Taught in lesson 12 (merging models) and its lab. Two fine-tunes of the *same* base model can be
combined into one model, with no training, by arithmetic on their weights. Everything here works
on **state dicts** (``{name: tensor}``) and never changes its inputs: each function returns new
tensors.

* **linear averaging** (a "model soup", Wortsman et al. 2022): ``sum_i w_i theta_i / sum_i w_i``;
* **task arithmetic** (Ilharco et al. 2023): a *task vector* is ``tau_i = theta_i - theta_base``;
  the merge is ``theta_base + sum_i lambda_i tau_i``;
* **SLERP**: interpolate along the arc between two weight tensors instead of the straight line;
* **TIES** (Yadav et al. 2023): *trim* each task vector to its largest entries, *elect* a sign per
  weight (the sign with the larger total mass), then average only the entries that agree with it;
* **DARE** (Yu et al. 2024): *drop* a random fraction ``p`` of each task vector's entries and
  rescale the rest by ``1 / (1 - p)``, so the expected update is unchanged.

>>> import torch
>>> base = {"w": torch.tensor([1.0, 1.0, 1.0])}
>>> a, b = {"w": torch.tensor([2.0, 1.0, 1.0])}, {"w": torch.tensor([1.0, 1.0, 4.0])}
>>> task_arithmetic(base, [task_vector(a, base), task_vector(b, base)], [1.0, 1.0])["w"].tolist()
[2.0, 1.0, 4.0]
>>> linear([a, b])["w"].tolist()            # the average halves each skill's change
[1.5, 1.0, 2.5]

:func:`run_mergekit` runs the library everyone uses, **mergekit**, from a YAML config
(:func:`mergekit_yaml`), offline on the CPU; lesson 12 checks that its ``task_arithmetic`` gives
the same weights as :func:`task_arithmetic`.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from .errors import InvalidOption
from .paths import atomic_folder

State = dict[str, torch.Tensor]
SAME_BASE = "merge only fine-tunes of one base model (same architecture, same tokenizer)"


# ----------------------------------------------------------------------------- state dicts
def state_of(model: Any) -> State:
    """The model's floating-point tensors by name (detached views: do not change them in place)."""
    return {name: t.detach() for name, t in model.state_dict().items() if t.is_floating_point()}


def check_compatible(*states: Mapping[str, torch.Tensor], names: Sequence[str] | None = None) -> None:
    """Raise a one-line :class:`InvalidOption` unless every state has the same names and shapes.

    >>> check_compatible({"w": torch.zeros(2, 3)}, {"w": torch.zeros(3, 3)}, names=["ours", "theirs"])
    Traceback (most recent call last):
    ...
    course_utils.errors.InvalidOption: cannot merge: 'w' has shape (2, 3) in ours but (3, 3) in theirs. Fix: merge only fine-tunes of one base model (same architecture, same tokenizer)
    """
    if len(states) < 2:
        raise InvalidOption(f"merging needs at least 2 models, got {len(states)}", fix="pass two or more state dicts")
    names = list(names) if names is not None else [f"model {i}" for i in range(len(states))]
    first = states[0]
    for state, name in zip(states[1:], names[1:], strict=True):
        missing = sorted(set(first) ^ set(state))
        if missing:
            raise InvalidOption(f"cannot merge: {missing[0]!r} is in only one of {names[0]} and {name} "
                                f"({len(missing)} tensors differ)", fix=SAME_BASE)
        for key, tensor in first.items():
            if tuple(tensor.shape) != tuple(state[key].shape):
                raise InvalidOption(f"cannot merge: {key!r} has shape {tuple(tensor.shape)} in {names[0]} "
                                    f"but {tuple(state[key].shape)} in {name}", fix=SAME_BASE)


def _check_weights(values: Sequence[float], n: int, what: str) -> list[float]:
    values = [float(v) for v in values]
    if len(values) != n:
        raise InvalidOption(f"{len(values)} {what} for {n} models", fix=f"give one {what[:-1]} per model")
    return values


# ----------------------------------------------------------------------------- averaging, task arithmetic
def linear(states: Sequence[Mapping[str, torch.Tensor]], weights: Sequence[float] | None = None) -> State:
    """Weighted average ``sum_i w_i theta_i / sum_i w_i`` (equal weights by default)."""
    check_compatible(*states)
    w = _check_weights(weights if weights is not None else [1.0] * len(states), len(states), "weights")
    if abs(sum(w)) < 1e-12:
        raise InvalidOption("the weights sum to zero", fix="use positive weights, e.g. [0.5, 0.5]")
    return {k: sum(wi * s[k] for wi, s in zip(w, states, strict=True)) / sum(w) for k in states[0]}


def task_vector(fine: Mapping[str, torch.Tensor], base: Mapping[str, torch.Tensor]) -> State:
    """``tau = theta_fine - theta_base``: what fine-tuning changed (zero where nothing was trained)."""
    check_compatible(base, fine, names=["the base", "the fine-tune"])
    return {k: fine[k] - base[k] for k in base}


def task_arithmetic(base: Mapping[str, torch.Tensor], vectors: Sequence[Mapping[str, torch.Tensor]],
                    lambdas: Sequence[float]) -> State:
    """``theta_base + sum_i lambda_i tau_i``: add (scaled) task vectors to the base weights."""
    check_compatible(base, *vectors)
    lam = _check_weights(lambdas, len(vectors), "lambdas")
    return {k: base[k] + sum(li * v[k] for li, v in zip(lam, vectors, strict=True)) for k in base}


# ----------------------------------------------------------------------------- SLERP
def slerp(a: torch.Tensor, b: torch.Tensor, t: float, threshold: float = 0.9995) -> torch.Tensor:
    """Spherical interpolation from ``a`` (t = 0) to ``b`` (t = 1), treating each tensor as one vector.

    ``sin((1 - t) theta) / sin(theta) * a + sin(t theta) / sin(theta) * b`` with ``theta`` the angle
    between them. Nearly parallel vectors (``|cos theta| > threshold``) fall back to the straight
    line, where the formula would divide by ``sin(theta) ~ 0`` (mergekit does the same).

    >>> slerp(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]), 0.5).tolist()   # stays on the circle
    [0.7071067690849304, 0.7071067690849304]
    """
    x, y = a.double().flatten(), b.double().flatten()
    cos = torch.dot(x / (x.norm() + 1e-12), y / (y.norm() + 1e-12)).clamp(-1.0, 1.0)
    if cos.abs() > threshold:
        mixed = (1 - t) * x + t * y
    else:
        theta = torch.arccos(cos)
        mixed = (torch.sin((1 - t) * theta) * x + torch.sin(t * theta) * y) / torch.sin(theta)
    return mixed.reshape(a.shape).to(a.dtype)


def slerp_states(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor], t: float) -> State:
    """:func:`slerp` tensor by tensor (as mergekit's ``slerp`` method does)."""
    check_compatible(a, b)
    return {k: slerp(a[k], b[k], t) for k in a}


def angle_degrees(a: torch.Tensor, b: torch.Tensor) -> float:
    """The angle between two tensors seen as vectors, in degrees."""
    x, y = a.double().flatten(), b.double().flatten()
    cos = torch.dot(x, y) / (x.norm() * y.norm() + 1e-300)
    return float(torch.rad2deg(torch.arccos(cos.clamp(-1.0, 1.0))))


# ----------------------------------------------------------------------------- TIES
def trim(tau: torch.Tensor, density: float) -> torch.Tensor:
    """Keep the ``density`` fraction of entries with the largest magnitude, zero the rest."""
    if not 0 < density <= 1:
        raise InvalidOption(f"density={density!r} must be in (0, 1]", fix="use e.g. density=0.2 (keep the top 20%)")
    k = max(1, int(density * tau.numel()))
    if k >= tau.numel():
        return tau.clone()
    keep = torch.zeros(tau.numel(), dtype=torch.bool)
    keep[tau.abs().flatten().topk(k).indices] = True
    return torch.where(keep.reshape(tau.shape), tau, torch.zeros_like(tau))


def elect_sign(taus: torch.Tensor) -> torch.Tensor:
    """Per weight, the sign with the larger total mass: ``sign(sum_i tau_i)`` over the stacked vectors.

    The sum of the *values* (not of their magnitudes, which is never negative) says whether the
    positive or the negative updates weigh more. Ties (a sum of exactly 0) count as +1, like mergekit.
    """
    return torch.where(taus.sum(dim=0) >= 0, 1.0, -1.0).to(taus.dtype)


def disjoint_mean(taus: torch.Tensor, sign: torch.Tensor) -> torch.Tensor:
    """Average, per weight, only the entries whose sign agrees with ``sign`` (trimmed zeros don't count)."""
    agree = torch.sign(taus) == sign
    count = agree.sum(dim=0).clamp(min=1)
    return torch.where(agree, taus, torch.zeros_like(taus)).sum(dim=0) / count


def ties(base: Mapping[str, torch.Tensor], vectors: Sequence[Mapping[str, torch.Tensor]],
         density: float = 0.2, lam: float = 1.0) -> State:
    """TIES-merging: trim each task vector, elect signs, take the disjoint mean, add ``lam`` times it."""
    check_compatible(base, *vectors)
    out = {}
    for k in base:
        if not any(v[k].any() for v in vectors):  # untouched by every fine-tune (LoRA: all but a few tensors)
            out[k] = base[k].clone()  # the same result, without sorting 28M zeros of the embeddings
            continue
        taus = torch.stack([trim(v[k], density) for v in vectors])
        out[k] = base[k] + lam * disjoint_mean(taus, elect_sign(taus))
    return out


# ----------------------------------------------------------------------------- DARE
def dare(tau: torch.Tensor, drop: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Drop each entry with probability ``drop`` and scale the survivors by ``1 / (1 - drop)``."""
    if not 0 <= drop < 1:
        raise InvalidOption(f"drop={drop!r} must be in [0, 1)", fix="use e.g. drop=0.9 (DARE drops 90% and more)")
    keep = torch.rand(tau.shape, generator=generator) >= drop
    return torch.where(keep, tau / (1 - drop), torch.zeros_like(tau))


def dare_merge(base: Mapping[str, torch.Tensor], vectors: Sequence[Mapping[str, torch.Tensor]],
               lambdas: Sequence[float], drop: float = 0.9, seed: int = 0) -> State:
    """DARE then task arithmetic (mergekit's ``dare_linear``): ``theta_base + sum_i lambda_i DARE(tau_i)``."""
    check_compatible(base, *vectors)
    generator = torch.Generator().manual_seed(seed)
    dropped = [{k: dare(v[k], drop, generator) if v[k].any() else v[k] for k in base} for v in vectors]
    return task_arithmetic(base, dropped, lambdas)


# ----------------------------------------------------------------------------- models
def model_with(template: Any, state: Mapping[str, torch.Tensor]) -> Any:
    """A copy of ``template`` (a transformers model) holding the weights ``state``."""
    model = copy.deepcopy(template)
    missing, unexpected = model.load_state_dict(dict(state), strict=False)
    if unexpected or [k for k in missing if k in state_of(template)]:
        raise InvalidOption(f"the merged weights do not fit the model ({(unexpected or missing)[0]!r})", fix=SAME_BASE)
    return model.eval()


def stack_layers(model: Any, ranges: Sequence[tuple[int, int]]) -> Any:
    """A *frankenmerge* (mergekit's ``passthrough``): a deeper model made of copies of layer ranges.

    ``ranges=[(0, 20), (10, 30)]`` gives 40 decoder layers: 0-19, then 10-29 again. No weight is
    averaged; the layers are stacked. (Each attention layer gets its new position for the KV cache.)
    """
    n = len(model.model.layers)
    if not ranges or any(not 0 <= lo < hi <= n for lo, hi in ranges):
        raise InvalidOption(f"layer ranges {list(ranges)} do not fit a model with {n} layers", fix=f"use (start, end) with 0 <= start < end <= {n}")
    stacked = copy.deepcopy(model)
    layers = [copy.deepcopy(model.model.layers[i]) for lo, hi in ranges for i in range(lo, hi)]
    for index, layer in enumerate(layers):
        layer.self_attn.layer_idx = index
    stacked.model.layers = torch.nn.ModuleList(layers)
    stacked.config.num_hidden_layers = len(layers)
    if getattr(stacked.config, "layer_types", None):
        stacked.config.layer_types = [stacked.config.layer_types[0]] * len(layers)
    return stacked.eval()


# ----------------------------------------------------------------------------- mergekit
def mergekit_yaml(base_dir: str | os.PathLike, models: Mapping[str, float], method: str = "task_arithmetic",
                  parameters: Mapping[str, Any] | None = None, dtype: str = "float32") -> str:
    """A mergekit config: ``models`` maps each fine-tuned model's folder to its weight (lambda).

    For ``task_arithmetic`` mergekit computes ``base + lambda * sum_i w_i tau_i``, divided by
    ``sum_i w_i`` when ``normalize: true``. With ``normalize: false`` and the global ``lambda: 1``
    (the defaults written here) its ``w_i`` are exactly our ``lambda_i``.
    """
    import yaml

    params = {"normalize": False, "lambda": 1.0} if method == "task_arithmetic" else {}
    params.update(parameters or {})
    config = {
        "merge_method": method,
        "base_model": str(base_dir),
        "models": [{"model": str(path), "parameters": {"weight": float(w)}} for path, w in models.items()],
        "parameters": params,
        "dtype": dtype,
    }
    return yaml.safe_dump(config, sort_keys=False)


def run_mergekit(config_yaml: str, out_dir: str | os.PathLike) -> Path:
    """Run mergekit's Python API on a YAML config, on the CPU, into ``out_dir`` (written atomically).

    The same as ``mergekit-yaml config.yml OUT_DIR`` on the command line. Local folders only: nothing
    is downloaded.
    """
    import yaml
    from mergekit.config import MergeConfiguration
    from mergekit.merge import run_merge
    from mergekit.options import MergeOptions

    try:
        config = MergeConfiguration.model_validate(yaml.safe_load(config_yaml))
    except Exception as err:  # pydantic's error lists every field; its first line names the problem
        raise InvalidOption(f"mergekit rejects the config ({str(err).splitlines()[0]})", fix="compare with mergekit_yaml()'s output") from None
    for ref in config.referenced_models():
        if not Path(str(ref.model.path)).is_dir():
            raise InvalidOption(f"mergekit config names {ref.model.path}, which is not a local folder", fix="save each model with save_pretrained() first (nothing is downloaded)")
    options = MergeOptions(device="cpu", copy_tokenizer=True, quiet=True, write_model_card=False, lazy_unpickle=False)
    return atomic_folder(Path(out_dir), lambda tmp: run_merge(config, str(tmp), options=options))


def load_safetensors_dir(folder: str | os.PathLike) -> State:
    """Every tensor of the ``*.safetensors`` files in a model folder (mergekit's output, for instance)."""
    from safetensors.torch import load_file

    files = sorted(Path(folder).glob("*.safetensors"))
    if not files:
        raise InvalidOption(f"no .safetensors file in {folder}", fix="run the merge first")
    out: State = {}
    for f in files:
        out.update(load_file(str(f)))
    return out


def max_difference(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor]) -> float:
    """Largest absolute difference between two state dicts, over the tensors both hold."""
    shared = [k for k in a if k in b]
    if not shared:
        raise InvalidOption("the two state dicts share no tensor name", fix="compare weights of the same architecture")
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in shared)
