# %% [markdown]
# # Lab 12 · Merging models: the methods by hand, then a merge with both skills
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/local-llm-lab/local-llm-lab/blob/main/labs/12_merging_lab.ipynb)
#
# Four short exercises on lesson 12 and a fifth that puts two of them to work on the real model. Replace each
# `raise NotImplementedError` with your code, run the cell, and read the check's verdict: ✅ means right, ❌ says
# what is wrong and where to look, ⏳ means not done yet.
#
# You will write task vectors, task arithmetic, SLERP and TIES-merging for PyTorch state dicts (`{name: tensor}`),
# then choose the λs of a merge of lesson 12's two specialists (dates → `YYYY-MM-DD`, quantities → `23 kg`) that
# keeps at least 75% of *each* specialist's skill on held-out prompts, measured by the check.
#
# **Prerequisites:** lesson 12.
#
# **Run time:** 31 s on a 2-core CPU (Intel(R) Xeon(R) Processor), measured by `course run` on 2026-12-01; a slower machine takes longer.
#
# The two specialists' adapters ship with the course in `data/merging_adapters/`; nothing is trained here.

# %%
# Colab only: install the course (~5 min the first time). Does nothing on your own machine.
import sys
if "google.colab" in sys.modules:
    # !git clone -q --depth 1 https://github.com/local-llm-lab/local-llm-lab /content/local-llm-lab
    # !bash /content/local-llm-lab/tools/install.sh --system

# %% tags=["parameters"]
BACKEND = "auto"  # not used: no text is generated in this lab
MODEL = None  # the base model of the specialists (default: the bundled SmolLM2-135M-Instruct)
SEED = 0

# %%
from course_utils import setup_notebook
from course_utils.assets import load_hf_model
from course_utils.checks.merging import (
    check_merge_target, check_slerp, check_task_arithmetic, check_task_vector, check_ties,
)

cfg = setup_notebook(seed=SEED)

import torch

torch.set_num_threads(cfg.n_threads)
model, tokenizer = load_hf_model(MODEL)

# %% [markdown]
# ## Exercise 1: a task vector
#
# A fine-tune's *task vector* is what fine-tuning changed, tensor by tensor. Write `task_vector(fine, base)` for two
# state dicts with the same names and shapes. Return a **new** dict: the check hands you its own tensors and looks
# at them afterwards, so do not change `fine` or `base` in place.

# %%
def task_vector(fine: dict[str, torch.Tensor], base: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {name: fine[name] - base[name] for name in base}


# %%
check_task_vector(task_vector)

# %% [markdown]
# ## Exercise 2: task arithmetic
#
# Write `task_arithmetic(base, vectors, lambdas)`: the base weights plus each task vector scaled by its own λ
# (`lambdas[i]` belongs to `vectors[i]`). λ may be 0 (leave that skill out) or negative (subtract a skill). Again,
# return a new dict and leave the inputs as they are.

# %%
def task_arithmetic(base: dict[str, torch.Tensor], vectors: list[dict[str, torch.Tensor]],
                    lambdas: list[float]) -> dict[str, torch.Tensor]:
    merged = {}
    for name, weight in base.items():
        merged[name] = weight + sum(lam * tau[name] for lam, tau in zip(lambdas, vectors))
    return merged


# %%
check_task_arithmetic(task_arithmetic)

# %% [markdown]
# ## Exercise 3: SLERP
#
# Write `slerp(a, b, t)` for two tensors of the same shape, each seen as *one* long vector: `t = 0` gives `a`,
# `t = 1` gives `b`, and in between the result moves along the arc, not the straight line. You need the angle θ
# between the two vectors. When they are (almost) parallel, `sin θ` is about zero: use plain linear interpolation
# there (lesson 12 uses the threshold |cos θ| > 0.9995). Return a tensor of the inputs' shape.

# %%
def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    x, y = a.flatten().double(), b.flatten().double()
    cos = torch.dot(x / x.norm(), y / y.norm()).clamp(-1.0, 1.0)
    if cos.abs() > 0.9995:
        out = (1 - t) * x + t * y
    else:
        theta = torch.arccos(cos)
        out = (torch.sin((1 - t) * theta) * x + torch.sin(t * theta) * y) / torch.sin(theta)
    return out.reshape(a.shape).to(a.dtype)


# %%
check_slerp(slerp)

# %% [markdown]
# ## Exercise 4: TIES-merging of one tensor
#
# Write `ties_merge(taus, density)` for a list of task-vector tensors of one shape (one per model). Return the
# merged task vector:
#
# 1. **trim** each tensor on its own: keep its `max(1, int(density * numel))` entries of largest magnitude, zero
#    the others;
# 2. **elect** a sign per position: the direction with more total mass among the trimmed values (a tie counts as +);
# 3. **disjoint mean**: per position, the mean of the trimmed entries whose sign equals the elected one; positions
#    where none agrees get 0.
#
# Do not zero entries of the caller's tensors.

# %%
def ties_merge(taus: list[torch.Tensor], density: float) -> torch.Tensor:
    trimmed = []
    for tau in taus:
        k = max(1, int(density * tau.numel()))
        keep = tau.abs().flatten().topk(k).indices
        out = torch.zeros(tau.numel(), dtype=tau.dtype)
        out[keep] = tau.flatten()[keep]
        trimmed.append(out.reshape(tau.shape))
    stacked = torch.stack(trimmed)
    sign = torch.where(stacked.sum(dim=0) >= 0, 1.0, -1.0)
    agree = torch.sign(stacked) == sign
    return (stacked * agree).sum(dim=0) / agree.sum(dim=0).clamp(min=1)


# %%
check_ties(ties_merge)

# %% [markdown]
# ## Exercise 5: one model with both skills
#
# The check loads lesson 12's two specialists (the adapters shipped in `data/merging_adapters/`) and hands your `build_merge` three state
# dicts of the real model: `base`, `dates` and `units`. Build the merge with **your** `task_vector` and
# `task_arithmetic`, with λs you choose. The check then scores the merged model on held-out prompts of both tasks
# that lesson 12 did not print, and passes when the merge keeps at least 75% of *each* specialist's gain in exact
# match over the base. It prints your number beside the reference solution's.
#
# Lesson 12's plot over λ tells you where to start.

# %%
LAMBDA_DATES, LAMBDA_UNITS = 1.0, 1.0


def build_merge(base: dict[str, torch.Tensor], dates: dict[str, torch.Tensor],
                units: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    vectors = [task_vector(dates, base), task_vector(units, base)]
    return task_arithmetic(base, vectors, [LAMBDA_DATES, LAMBDA_UNITS])


# %%
check_merge_target(build_merge, model, tokenizer)

# %% [markdown]
# ## Going further
#
# - Try `ties_merge` on the real task vectors: build `{name: ties_merge([tau_d[name], tau_u[name]], 0.2)}` and pass
#   `base + that` to `check_merge_target`. Does it keep more or less than task arithmetic?
# - Put your `slerp` to work on the two task vectors (t = 0.5) and compare with λ = 0.5 and λ = 0.71.
# - Run mergekit on the same merge (`course_utils.merging.mergekit_yaml` and `run_mergekit`) and compare its
#   weights with your `build_merge` (`course_utils.merging.max_difference`).
