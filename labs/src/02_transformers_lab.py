# %% [markdown]
# # Lab 02 · Transformers: attention and the token loop by hand
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/local-llm-lab/local-llm-lab/blob/main/labs/02_transformers_lab.ipynb)
#
# Six exercises on lesson 02; the last one builds something and measures it. Replace each `raise NotImplementedError` with your code, run the cell,
# then look at the check below it: ✅ means right, ❌ comes with a hint, ⏳ means not done yet.
#
# **Run time:** 9 s on a 2-core CPU (Intel(R) Xeon(R) Processor), measured by `course run` on 2026-12-02; a slower machine takes longer.

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
from course_utils.checks.transformers import (
    check_attention,
    check_cached_generation,
    check_causal_mask,
    check_greedy_step,
    check_param_count,
    check_softmax,
)

cfg = setup_notebook(seed=SEED)

import math

import torch

model, tokenizer = load_hf_model(MODEL)

# %% [markdown]
# ## Exercise 1: softmax
#
# Write `softmax(x)`: turn scores into probabilities along the **last** dimension, `exp(x) / sum(exp(x))`.
# Make it work for large scores too: `exp(1000)` overflows to infinity. Subtracting the largest score first
# changes nothing mathematically (it cancels between top and bottom) and keeps every `exp` at most 1.
# Use only `torch.exp`, `max` and `sum`, not `torch.softmax`.

# %%
def softmax(x: torch.Tensor) -> torch.Tensor:
    # TODO: subtract the max along dim=-1 (keepdim=True), exponentiate, divide by the sum along dim=-1
    raise NotImplementedError


check_softmax(softmax)

# %% [markdown]
# ## Exercise 2: the causal mask
#
# Write `causal_mask(n)`: an (n, n) **boolean** tensor, `True` where query i may look at key j, that is where
# j ≤ i (itself and earlier tokens). For n = 3:
# ```
# [[ True, False, False],
#  [ True,  True, False],
#  [ True,  True,  True]]
# ```

# %%
def causal_mask(n: int) -> torch.Tensor:
    # TODO: compare row index i with column index j (torch.arange and broadcasting), or use .tril()
    raise NotImplementedError


check_causal_mask(causal_mask)

# %% [markdown]
# ## Exercise 3: single-head causal attention
#
# Write `attention(q, k, v)` for (tokens, d) tensors, using your `softmax` and `causal_mask`:
# 1. scores `q @ k.T`, divided by √d;
# 2. scores where the mask is False set to `-inf` (`scores.masked_fill(~mask, float("-inf"))`);
# 3. softmax of each row;
# 4. weights `@ v`.
#
# The check compares with PyTorch's `scaled_dot_product_attention(..., is_causal=True)`.

# %%
def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    # TODO: the four steps above
    raise NotImplementedError


check_attention(attention)

# %% [markdown]
# ## Exercise 4: the parameters of one layer
#
# Write `count_layer_parameters(config)`: how many parameters one of SmolLM2's 30 decoder layers holds,
# computed from the config alone (`config.hidden_size`, `config.intermediate_size`,
# `config.num_attention_heads`, `config.num_key_value_heads`, `config.head_dim`). A layer has:
# - attention: `q_proj` and `o_proj` (hidden × hidden each), `k_proj` and `v_proj` (hidden × (KV heads ×
#   head dim) each: grouped-query attention makes them smaller);
# - an MLP: `gate_proj`, `up_proj` (hidden × intermediate each) and `down_proj` (intermediate × hidden);
# - two RMSNorms with one weight per hidden dimension each. No biases.
#
# The check compares with `sum(p.numel() for p in model.model.layers[0].parameters())`.

# %%
def count_layer_parameters(config) -> int:
    # TODO: attention + MLP + norms
    raise NotImplementedError


check_param_count(count_layer_parameters, model)

# %% [markdown]
# ## Exercise 5: one greedy step with the real model
#
# Write `greedy_next_token(model, ids)`: given a list of token ids, run the model once and return the id (an
# `int`) of the most likely next token. The model wants a (batch, tokens) tensor,
# `model(input_ids=...).logits` has shape (batch, tokens, vocabulary), and the prediction for the *next* token
# sits at the **last** position. Wrap the call in `torch.inference_mode()`: no gradients are needed.

# %%
def greedy_next_token(model, ids: list[int]) -> int:
    # TODO: build torch.tensor([ids]), run the model, take argmax of the last position's logits
    raise NotImplementedError


check_greedy_step(greedy_next_token, model, tokenizer)

# %% [markdown]
# ## Exercise 6: greedy decoding with a KV cache (build and measure)
#
# Calling `greedy_next_token` in a loop runs the model on the *whole* sequence at every step, although the
# keys and values of the earlier tokens never change. Write `generate(model, ids, max_new_tokens, eos_token_id)`:
# greedy decoding that returns the **new** token ids (at most `max_new_tokens`; stop after `eos_token_id`, and
# keep it as the last one, as `model.generate` does). Call the model yourself, with
# `model(input_ids=..., past_key_values=past, use_cache=True)`: the output's `past_key_values` holds every
# layer's keys and values so far (lesson 02, section 6).
#
# The check picks its own prompts (a chat question whose answer ends with the end-of-turn token, a prompt with
# two-digit numbers, a single new token), requires exactly the tokens of `model.generate(..., do_sample=False)`,
# and counts the token positions your loop feeds to `model(...)`. The target: each prompt once, then one position
# per new token. It prints your count beside the target, the count of the course's `generate_greedy` and what a
# loop without a cache feeds.

# %%
def generate(model, ids: list[int], max_new_tokens: int, eos_token_id: int | None = None) -> list[int]:
    # TODO: the first call feeds the prompt; keep out.past_key_values and feed only the newest token after that
    raise NotImplementedError


check_cached_generation(generate, model, tokenizer)

# %% [markdown]
# ## Going further
#
# - Time your `generate` against a loop of `greedy_next_token` for 100 new tokens: how does the gap grow with
#   the length of the prompt? `course_utils.transformer.generate_greedy` keeps the seconds of every step.
# - Use your `attention` on SmolLM2's real weights: `model.model.layers[0].self_attn.q_proj.weight` is
#   (out, in), so `x @ W.T` projects. Why can you not compare with the model's own output directly? (Hint: RoPE
#   and the 9 heads.)
