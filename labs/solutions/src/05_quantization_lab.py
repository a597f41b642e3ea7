# %% [markdown]
# # Lab 05 · Quantization: int8, int4 and a GGUF block by hand
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/local-llm-lab/local-llm-lab/blob/main/labs/05_quantization_lab.ipynb)
#
# Six exercises on lesson 05: five checked against the course's own code, and one you build and the check measures
# on held-out text. Replace each `raise NotImplementedError` with your code, run the cell,
# then look at the check below it: ✅ means right, ❌ comes with a hint, ⏳ means not done yet.
#
# **Prerequisites:** lesson 05.
#
# **Run time:** 32 s on a 2-core CPU (Intel(R) Xeon(R) Processor), measured by `course run` on 2026-12-02; a slower machine takes longer.
#
# Exercises 1-5 run no model; exercise 6 runs SmolLM2 to measure perplexity.

# %%
# Colab only: install the course (~5 min the first time). Does nothing on your own machine.
import sys
if "google.colab" in sys.modules:
    # !git clone -q --depth 1 https://github.com/local-llm-lab/local-llm-lab /content/local-llm-lab
    # !bash /content/local-llm-lab/tools/install.sh --system

# %% tags=["parameters"]
BACKEND = "auto"  # unused: the exercises work on tensors and on the GGUF file's bytes
MODEL = None
SEED = 0

# %%
from course_utils import setup_notebook
from course_utils.checks import hint  # noqa: F401  (hint("perplexity") in a cell of your own)
from course_utils.checks.quant import (
    SMOLLM2_LINEAR_SHAPES,
    SMOLLM2_OTHER_PARAMS,
    budget_bytes,
    budget_weights,
    check_absmax_int8,
    check_fit_budget,
    check_groupwise_int4,
    check_model_bytes,
    check_perplexity,
    check_q4_1_block,
    perplexity_with,
)

cfg = setup_notebook(seed=SEED)

import math
import struct

import torch

# %% [markdown]
# ## Exercise 1: absmax int8
#
# Write `absmax_quantize(x)` for a whole tensor: `scale = max|x| / 127` and `codes = round(x / scale)` as
# `torch.int8`; return `(codes, scale)`. Then `absmax_dequantize(codes, scale)`, which gives the floats back.
# The check wants every weight back within half a step (`scale / 2`).

# %%
def absmax_quantize(x: torch.Tensor) -> tuple[torch.Tensor, float]:
    scale = x.abs().max().item() / 127
    return torch.round(x / scale).to(torch.int8), scale


def absmax_dequantize(codes: torch.Tensor, scale: float) -> torch.Tensor:
    return codes.to(torch.float32) * scale


check_absmax_int8(absmax_quantize, absmax_dequantize)

# %% [markdown]
# ## Exercise 2: group-wise int4 with an error bound
#
# Write `groupwise_int4(w, group_size)`: quantize a 2-D weight to **4 bits** with one absmax scale per group
# of `group_size` consecutive weights of each row (codes -7..7, `scale = max|group| / 7`), and return the
# **de-quantized** tensor (same shape as `w`). `w.reshape(-1, group_size)` gives one group per row.
#
# The check uses a weight matrix with two large outliers and wants: at most 16 distinct values per group,
# every weight within half a step of its group, a relative RMS error below 12 %, and better than one scale
# for the whole tensor.

# %%
def groupwise_int4(w: torch.Tensor, group_size: int) -> torch.Tensor:
    groups = w.reshape(-1, group_size)
    scale = groups.abs().amax(dim=1, keepdim=True) / 7
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))  # an all-zero group: any scale works
    codes = torch.round(groups / scale).clamp(-7, 7)
    return (codes * scale).reshape(w.shape)


check_groupwise_int4(groupwise_int4)

# %% [markdown]
# ## Exercise 3: how many bytes?
#
# Write `int4_model_bytes(linear_shapes, other_params, group_size)`: the size in bytes of a model whose linear
# layers (a list of `(out_features, in_features)`) are stored as packed int4 codes (half a byte per weight)
# with one **float16** scale per group of `group_size` weights, and whose `other_params` parameters stay
# **float32**. The check tries SmolLM2's 210 linear layers with groups of 32, and a small case with 128.

# %%
print(f"SmolLM2: {len(SMOLLM2_LINEAR_SHAPES)} linear layers, {sum(r * c for r, c in SMOLLM2_LINEAR_SHAPES):,} weights; "
      f"{SMOLLM2_OTHER_PARAMS:,} other parameters")


def int4_model_bytes(linear_shapes: list[tuple[int, int]], other_params: int, group_size: int) -> int:
    weights = sum(rows * cols for rows, cols in linear_shapes)
    codes = weights // 2  # two 4-bit codes per byte
    scales = 2 * (weights // group_size)  # one float16 per group
    return codes + scales + 4 * other_params


check_model_bytes(int4_model_bytes)

# %% [markdown]
# ## Exercise 4: a Q4_1 block from raw bytes
#
# A Q4_1 block of the GGUF file is 20 bytes: a float16 scale `d`, a float16 minimum `m`, then 16 bytes of
# 4-bit codes. Byte `j` holds weight `j` in its low nibble (`b & 0x0F`) and weight `j + 16` in its high nibble
# (`b >> 4`); each weight is `d * q + m`. Write `dequantize_block(raw)` returning the 32 weights in order.
# `struct.unpack("<ee", raw[:4])` reads the two float16 numbers. The check compares with the `gguf` library
# on real blocks, bit for bit.

# %%
def dequantize_block(raw: bytes) -> list[float]:
    d, m = struct.unpack("<ee", raw[:4])
    codes = [b & 0x0F for b in raw[4:]] + [b >> 4 for b in raw[4:]]
    return [d * q + m for q in codes]


check_q4_1_block(dequantize_block)

# %% [markdown]
# ## Exercise 5: perplexity
#
# A model gave the actual next tokens of a text the probabilities `probs`. Write `perplexity(probs)`:
# `exp` of the mean negative log-probability. A model that always gives the right token probability 1/4 has
# perplexity 4.

# %%
def perplexity(probs: list[float]) -> float:
    return math.exp(-sum(math.log(p) for p in probs) / len(probs))


check_perplexity(perplexity)

# %% [markdown]
# ## Exercise 6: fit a byte budget (measured)
#
# Quantize the 28 linear weights of SmolLM2's first four decoder layers into **at most 4.5 bits per weight**
# (codes, scales and offsets all counted) while the model's perplexity on **held-out** text stays within
# **+3 %** of the unquantized model's. Write `fit_budget(weights, budget_bytes)`: `weights` maps each layer's
# name to its weight; return a dict with a `QTensor` for every name, made with `quant.quantize(w, ...)` (any
# options per layer). The check counts your QTensors' bytes, puts their de-quantized weights into the model,
# scores text you never see (BoolQ passages the lesson and this lab do not use), and prints your perplexity
# beside the target and the reference solution's.
#
# What the options cost, measured on one weight:

# %%
# NBVAL_IGNORE_OUTPUT
from course_utils import quant
from course_utils.assets import load_hf_model
from course_utils.evaldata import boolq_passages
from course_utils.evaluation import token_stream

model, tokenizer = load_hf_model(MODEL)
weights = budget_weights(model)
print(f"{len(weights)} weights, {sum(w.numel() for w in weights.values()):,} numbers; budget {budget_bytes(weights):,} bytes")
w = next(iter(weights.values()))
for option in (dict(bits=8), dict(bits=4, scheme="minmax", group_size=32), dict(bits=4, scheme="zeropoint", group_size=32),
               dict(bits=4, group_size=32), dict(bits=4, scheme="zeropoint", granularity="block", group_size=192), dict(bits=4)):
    print(f"{quant.quantize(w, **option).bits_per_weight:6.3f} bits per weight  {option}")

# %% [markdown]
# One scale for all of them fits only at the coarse end. Your own measurements go on **calibration** text
# (other passages than the check's): `calibration_perplexity({name: dequantized weight, ...})` gives the
# perplexity with those weights replaced (`{}`: the unquantized model).

# %%
# NBVAL_IGNORE_OUTPUT
calibration_ids = token_stream(lambda s: tokenizer.encode(s, add_special_tokens=False), boolq_passages(20), max_tokens=512)


def calibration_perplexity(replaced: dict[str, torch.Tensor]) -> float:
    return perplexity_with(model, calibration_ids, replaced)


print(f"calibration perplexity, unquantized: {calibration_perplexity({}):.3f}")

# %%
CHEAP = dict(bits=4, scheme="zeropoint", granularity="block", group_size=192)  # 4.125 bits
RICH = dict(bits=4, scheme="minmax", group_size=32)  # 5 bits; lossless on this model (its weights come from a Q4_1 file)
KINDS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def fit_budget(weights: dict[str, torch.Tensor], budget_bytes: int) -> dict[str, quant.QTensor]:
    base = calibration_perplexity({})
    damage = {kind: calibration_perplexity({n: quant.fake_quantize(w, **CHEAP) for n, w in weights.items() if n.endswith(kind)}) - base
              for kind in KINDS}  # each kind of layer rounded alone
    plan = {n: quant.quantize(w, **CHEAP) for n, w in weights.items()}
    for kind in sorted(KINDS, key=damage.get, reverse=True):  # the most damaged kind gets the bytes first
        trial = plan | {n: quant.quantize(w, **RICH) for n, w in weights.items() if n.endswith(kind)}
        if sum(q.nbytes for q in trial.values()) <= budget_bytes:
            plan = trial
    print("calibration damage:", {k: round(v, 3) for k, v in sorted(damage.items(), key=lambda kv: -kv[1])})
    print("5 bits for:", sorted({n.rsplit(".", 1)[1] for n, q in plan.items() if q.scheme == "minmax"}))
    return plan

# %%
# NBVAL_IGNORE_OUTPUT
check_fit_budget(fit_budget, model, tokenizer)

# %% [markdown]
# ## Going further
#
# - Change `groupwise_int4` to a zero-point (asymmetric) version: codes 0..15 and an integer zero-point per
#   group. Does it pass the same check? Is its error smaller? (Compare with
#   `course_utils.quant.fake_quantize(w, bits=4, scheme="zeropoint", group_size=32)`.)
# - With your `int4_model_bytes`, find the group size at which the scales cost as much as 1 bit per weight.
