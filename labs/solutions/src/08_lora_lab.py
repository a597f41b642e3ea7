# %% [markdown]
# # Lab 08 · LoRA: the pieces of a fine-tune, by hand
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/local-llm-lab/local-llm-lab/blob/main/labs/08_lora_lab.ipynb)
#
# Five short exercises on lesson 08 and a sixth where you train an adapter that must reach a target on held-out
# prompts. Replace each `raise NotImplementedError` with your code, run the cell,
# then look at the check below it: ✅ means right, ❌ comes with a hint, ⏳ means not done yet.
#
# **Run time:** 1 min 0 s on a 2-core CPU (Intel(R) Xeon(R) Processor), measured by `course run` on 2026-12-02; a slower machine takes longer.

# %%
# Colab only: install the course (~5 min the first time). Does nothing on your own machine.
import sys
if "google.colab" in sys.modules:
    # !git clone -q --depth 1 https://github.com/local-llm-lab/local-llm-lab /content/local-llm-lab
    # !bash /content/local-llm-lab/tools/install.sh --system

# %% tags=["parameters"]
BACKEND = "auto"  # unused: the exercises work on the PyTorch model directly
MODEL = None
SEED = 0

# %%
from course_utils import setup_notebook
from course_utils.assets import load_hf_model
from course_utils.checks.lora import (
    check_dates_adapter,
    check_lora_forward,
    check_lora_param_count,
    check_merge,
    check_qk_permutation,
    check_sft_labels,
)

cfg = setup_notebook(seed=SEED)

import copy

import numpy as np
import torch

from course_utils import lora

model, tokenizer = load_hf_model(MODEL)

# %% [markdown]
# ## Exercise 1: the LoRA forward pass
#
# A LoRA layer keeps the frozen weight `W` (out × in) and adds a low-rank update made of `A` (r × in) and
# `B` (out × r), scaled by `alpha / r`:
#
# `y = x Wᵀ + (alpha / r) · x Aᵀ Bᵀ`
#
# Write `lora_forward(x, W, A, B, alpha, r)` for a batch `x` of shape (tokens, in). Compute the update as two thin
# products, `(x @ A.T) @ B.T`, not by building the (out × in) matrix `B @ A`: that is what makes LoRA cheap. The
# check tries several `alpha` and `r` (one where `alpha / r` is not a whole number) and your function must leave its
# inputs unchanged.

# %%
def lora_forward(x: torch.Tensor, W: torch.Tensor, A: torch.Tensor, B: torch.Tensor, alpha: float, r: int) -> torch.Tensor:
    frozen = x @ W.T
    update = (x @ A.T) @ B.T  # (tokens, in) -> (tokens, r) -> (tokens, out)
    return frozen + (alpha / r) * update


# %%
# NBVAL_CHECK_OUTPUT
check_lora_forward(lora_forward)

# %% [markdown]
# ## Exercise 2: how many parameters does LoRA train?
#
# Write `count_lora_parameters(model, targets, r)`: the number of adapter weights added when every linear layer
# whose name ends in one of `targets` (e.g. `"q_proj"`) gets an `A` and a `B` of rank `r`. Walk
# `model.named_modules()`; a linear layer has `in_features` and `out_features`. The last part of a module's name is
# `name.rpartition(".")[2]`.
#
# (Lesson 08 found 921,600 for r = 8 on all four attention projections.)

# %%
def count_lora_parameters(model, targets: tuple[str, ...], r: int) -> int:
    total = 0
    for name, module in model.named_modules():
        if name.rpartition(".")[2] in targets and isinstance(module, torch.nn.Linear):
            total += r * (module.in_features + module.out_features)  # A: r x in, B: out x r
    return total


# %%
# NBVAL_CHECK_OUTPUT
check_lora_param_count(count_lora_parameters, model)

# %% [markdown]
# ## Exercise 3: merge the update into the weight
#
# After training, the adapter can be folded into the weight so the model runs with no extra cost:
# `W' = W + (alpha / r) · B A`. Write `merge_weights(W, A, B, alpha, r)` returning `W'` as a **new** tensor (do
# not change `W` in place: it is the frozen base; `alpha / r` need not be a whole number). The check also verifies that `x @ W'.T` equals your
# `lora_forward` from exercise 1.

# %%
def merge_weights(W: torch.Tensor, A: torch.Tensor, B: torch.Tensor, alpha: float, r: int) -> torch.Tensor:
    return W + (alpha / r) * (B @ A)  # (out, r) @ (r, in) -> (out, in)


# %%
# NBVAL_CHECK_OUTPUT
check_merge(merge_weights, lora_forward)

# %% [markdown]
# ## Exercise 4: labels for supervised fine-tuning
#
# A training example is the chat prompt followed by the answer (ending with the end-of-turn token). The model reads
# all of it, but the loss should count only the answer. Write `sft_example(prompt_ids, answer_ids)` returning
# `(input_ids, labels)`:
# - `input_ids`: the prompt ids followed by the answer ids;
# - `labels`: `-100` (ignored by PyTorch's cross-entropy) at every prompt position, then the answer ids unchanged.
#
# Do not shift anything: the model's loss compares position t's prediction with label t + 1 itself. Leave the two
# lists you are given unchanged.

# %%
def sft_example(prompt_ids: list[int], answer_ids: list[int]) -> tuple[list[int], list[int]]:
    input_ids = prompt_ids + answer_ids
    labels = [-100] * len(prompt_ids) + answer_ids
    return input_ids, labels


# %%
# NBVAL_CHECK_OUTPUT
check_sft_labels(sft_example, tokenizer)

# %% [markdown]
# ## Exercise 5: q and k rows in llama.cpp's order
#
# To export a model to GGUF, the rows of `q_proj` and `k_proj` must be reordered inside each head: Hugging Face's
# RoPE rotates dimension i together with dimension i + d/2 (d = rows per head), llama.cpp rotates neighbours
# (2i, 2i + 1). So each head's rows `0, 1, ..., d-1` must become `0, d/2, 1, d/2 + 1, 2, d/2 + 2, ...`.
#
# Write `permute(w, n_head)` for a NumPy array `w` of shape (n_head · d, in). One way: reshape to
# (n_head, 2, d/2, in), swap the two middle axes, reshape back. The check compares your result with the tensors
# stored in the bundled SmolLM2 GGUF (9 query heads, 3 key heads).

# %%
def permute(w: np.ndarray, n_head: int) -> np.ndarray:
    d = w.shape[0] // n_head  # rows per head
    return w.reshape(n_head, 2, d // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


# %%
# NBVAL_CHECK_OUTPUT
check_qk_permutation(permute, model)

# %% [markdown]
# ## Exercise 6: train an adapter that learns the dates task (build and measure)
#
# Now put it to work. Write `train_adapter(model, tokenizer, examples)`: fine-tune a **copy** of `model` with LoRA on
# the lesson's 400 training `examples` (`course_utils.lora.Example`: a `prompt` and its ISO `response`) and return
# the copy; `model` itself must stay unchanged. `course_utils.lora` has the pieces lesson 08 used:
# `inject_lora(model, r=..., alpha=...)` (in place: that is why you copy first), `batches(tokenizer, examples,
# batch_size)` (the labels are your exercise 4) and `train(model, batches, steps=..., lr=...)`. Choose the rank,
# the layers, the number of steps and the learning rate; keep the training short (lesson 08 took 8 steps of 8).
#
# **Measured:** the check writes 40 date prompts of its own (sentences and dates that are in neither split of
# the lesson's data) and scores the greedy exact match of your model's answers. **Target:** at least 60% (the base
# model gets almost none). The check prints your score beside the target, the base model's and that of the reference
# recipe (8 steps of 8, r = 8, alpha = 16, lr = 3e-3; trained once and cached).

# %%
def train_adapter(model, tokenizer, examples: list[lora.Example]):
    tuned = copy.deepcopy(model)  # inject_lora changes the model it is given
    lora.inject_lora(tuned, r=8, alpha=16)  # the four attention projections
    lora.train(tuned, lora.batches(tokenizer, examples, batch_size=8, seed=SEED), steps=8, lr=3e-3)
    return tuned


# %%
# NBVAL_IGNORE_OUTPUT
check_dates_adapter(train_adapter, model, tokenizer)

# %% [markdown]
# ## Going further
#
# - Put exercises 1 and 3 together: wrap `model.model.layers[0].self_attn.q_proj` in your own `nn.Module` that
#   calls `lora_forward`, give `B` random values, and check that replacing the weight by `merge_weights(...)`
#   gives the same layer output. Compare with `course_utils.lora.LoRALinear`.
# - Use `sft_example` with `course_utils.lora.lm_loss` on a batch of the lesson's data
#   (`course_utils.lora.load_examples`). What happens to the loss if you forget the mask?
# - Export `model` with `course_utils.export.export_gguf(model, "/tmp/base.gguf", outtype="f32")` and compare a few
#   tensors with the bundled file (`course_utils.quant.gguf_dequantize`).
