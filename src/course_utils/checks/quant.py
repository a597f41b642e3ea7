"""Checks for lab 05 (quantization). Each ``check_*`` takes the learner's function and returns a
:class:`~course_utils.checks.Verdict`; none of them raises.

>>> def todo(x):
...     raise NotImplementedError
>>> check_perplexity(todo).status
'not done'
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from . import Verdict, run_check

# SmolLM2-135M's quantizable linear layers: (out_features, in_features) x 30 layers
SMOLLM2_LINEAR_SHAPES = [(576, 576), (192, 576), (192, 576), (576, 576), (1536, 576), (1536, 576), (576, 1536)] * 30
SMOLLM2_OTHER_PARAMS = 134_515_008 - sum(r * c for r, c in SMOLLM2_LINEAR_SHAPES)  # embeddings + norms


def _outlier_weights(rows: int = 48, cols: int = 256, seed: int = 5) -> Any:
    import torch

    g = torch.Generator().manual_seed(seed)
    w = torch.randn(rows, cols, generator=g) * 0.05
    w[3, 17], w[30, 200] = 2.5, -1.7  # two outliers, ~50x the typical weight
    return w


def _as_tensor(x: Any) -> Any:
    import torch

    return x if isinstance(x, torch.Tensor) else torch.as_tensor(x)


# ----------------------------------------------------------------------------- exercise 1
def check_absmax_int8(absmax_quantize: Callable[..., Any], absmax_dequantize: Callable[..., Any]) -> Verdict:
    """``absmax_quantize(x) -> (codes, scale)`` per tensor, ``absmax_dequantize(codes, scale) -> x``."""

    def test(quantize: Callable[..., Any], dequantize: Callable[..., Any]) -> bool | str:
        import torch

        x = _outlier_weights()[:8] / 3
        out = quantize(x)
        if not isinstance(out, tuple) or len(out) != 2:
            return "absmax_quantize should return a pair (codes, scale)"
        codes, scale = _as_tensor(out[0]), float(out[1])
        if codes.is_floating_point():
            return f"codes should be integers (e.g. torch.int8), got {codes.dtype}"
        if codes.shape != x.shape:
            return f"codes should have the input's shape {tuple(x.shape)}, got {tuple(codes.shape)}"
        expected_scale = x.abs().max().item() / 127
        if not math.isclose(scale, expected_scale, rel_tol=1e-4):
            return f"scale is {scale:.6g}, expected max|x| / 127 = {expected_scale:.6g}"
        if codes.abs().max().item() != 127 or codes.min().item() < -127:
            return f"codes should span -127..127 (the largest |x| gets ±127); got {codes.min().item()}..{codes.max().item()}"
        back = _as_tensor(dequantize(codes, scale)).to(torch.float32)
        err = (back - x).abs().max().item()
        if err > scale / 2 * (1 + 1e-4):
            return f"round trip error {err:.3g} is more than half a step ({scale / 2:.3g}): round to the nearest code"
        return True

    return run_check("absmax int8", test, absmax_quantize, absmax_dequantize, hint="codes = round(x / scale), scale = max|x| / 127")


# ----------------------------------------------------------------------------- exercise 2
def check_groupwise_int4(groupwise_int4: Callable[..., Any], max_rel_rms: dict[int, float] | None = None) -> Verdict:
    """``groupwise_int4(w, group_size) -> w_hat``: ``w`` quantized to 4 bits per group of
    ``group_size`` weights of each row, then de-quantized.

    Passes when every group uses at most 16 distinct values (really 4 bits), every weight is within
    half a step of its group (step = max|group| / 7), the relative RMS error on a tensor with
    outliers is below ``max_rel_rms[group_size]`` (absmax gets 0.104 and 0.130 for groups of 32 and
    64; one scale per row 0.20), and it beats one scale for the whole tensor.
    """
    bounds = max_rel_rms or {32: 0.11, 64: 0.14}

    def test(fn: Callable[..., Any]) -> bool | str:
        import torch

        from ..quant import fake_quantize

        w = _outlier_weights()
        for group_size, bound_rms in bounds.items():
            w_hat = _as_tensor(fn(w.clone(), group_size)).to(torch.float32)
            if w_hat.shape != w.shape:
                return f"the result should have the input's shape {tuple(w.shape)}, got {tuple(w_hat.shape)}"
            groups, hat_groups = w.reshape(-1, group_size), w_hat.reshape(-1, group_size)
            levels = max(len(torch.unique(g)) for g in hat_groups)
            if levels > 16:
                return f"a group of {group_size} holds {levels} different values: 4 bits give at most 16"
            bound = groups.abs().amax(dim=1, keepdim=True) / 7 / 2 * (1 + 2e-3) + 1e-7
            if ((hat_groups - groups).abs() > bound).any():
                return f"with group_size={group_size} some weights are more than half a step (max|group| / 14) away: one scale per group of {group_size}, round to nearest"
            rel_rms = ((w_hat - w).pow(2).mean().sqrt() / w.pow(2).mean().sqrt()).item()
            if rel_rms > bound_rms:
                return f"with group_size={group_size} the relative RMS error is {rel_rms:.3f}, above the bound {bound_rms}"
        per_tensor = fake_quantize(w, bits=4, granularity="tensor")
        if (w_hat - w).abs().mean() >= (per_tensor - w).abs().mean():
            return "no better than one scale for the whole tensor: each group needs its own scale"
        return True

    return run_check("group-wise int4", test, groupwise_int4, hint="w.reshape(-1, group_size), one absmax scale per row of that view")


# ----------------------------------------------------------------------------- exercise 3
def check_model_bytes(int4_model_bytes: Callable[..., Any]) -> Verdict:
    """``int4_model_bytes(linear_shapes, other_params, group_size) -> int``: bytes of a model whose
    linear layers are int4 (packed, 0.5 byte per weight) with one float16 scale per group, and all
    other parameters float32."""

    def test(fn: Callable[..., Any]) -> bool | str:
        from ..quant import expected_linear_bytes

        for group_size in (32, 128):
            shapes = SMOLLM2_LINEAR_SHAPES if group_size == 32 else [(64, 256), (128, 512)]
            others = SMOLLM2_OTHER_PARAMS if group_size == 32 else 1000
            got = fn(shapes, others, group_size)
            want = 4 * others + sum(expected_linear_bytes(s, bits=4, group_size=group_size, granularity="block") for s in shapes)
            if not isinstance(got, (int, float)) or got != want:
                codes = sum(r * c for r, c in shapes) // 2
                if got == want - codes:
                    return "the codes are missing: 0.5 byte per weight"
                if isinstance(got, (int, float)) and got == want + codes:
                    return "4-bit codes take half a byte each, not one byte"
                return f"got {got!r} bytes for group_size={group_size}, expected {want:,}; count codes + 2 bytes per scale + 4 bytes per other parameter"
        return True

    return run_check("int4 model size", test, int4_model_bytes, hint="weights * 0.5 + (weights / group_size) * 2 + others * 4")


# ----------------------------------------------------------------------------- exercise 4
def check_q4_1_block(dequantize_block: Callable[[bytes], Any], tensor: str = "blk.3.ffn_up.weight") -> Verdict:
    """``dequantize_block(raw) -> 32 floats`` from the 20 bytes of a Q4_1 block; must equal the
    ``gguf`` library's result exactly, on several blocks of a real tensor."""

    def test(fn: Callable[[bytes], Any]) -> bool | str:
        import numpy as np

        from ..quant import gguf_dequantize, q4_1_block_bytes

        reference = gguf_dequantize(tensor).reshape(-1, 32)
        for block in (0, 1, 777, reference.shape[0] - 1):
            mine = np.asarray(fn(q4_1_block_bytes(tensor, block)), dtype=np.float32).reshape(-1)
            if mine.size != 32:
                return f"a block holds 32 weights, got {mine.size} values"
            if not np.array_equal(mine, reference[block]):
                if np.array_equal(np.sort(mine), np.sort(reference[block])):
                    return "right values, wrong order: byte j holds weight j (low nibble) and weight j + 16 (high nibble)"
                worst = np.abs(mine - reference[block]).max()
                return f"block {block} differs from gguf's by up to {worst:.3g}; value = d * q + m with d, m the two float16 at the start"
        return True

    return run_check("Q4_1 block", test, dequantize_block, hint="struct.unpack('<ee', raw[:4]) gives d and m")


# ----------------------------------------------------------------------------- exercise 5
def check_perplexity(perplexity_fn: Callable[..., Any]) -> Verdict:
    """``perplexity_fn(probs) -> float``: perplexity from the probabilities the model gave to each
    actual next token."""

    def test(fn: Callable[..., Any]) -> bool | str:
        cases = [([0.25] * 4, 4.0), ([0.5, 0.25, 0.125], 4.0), ([0.9, 0.1], 1 / math.sqrt(0.09)), ([1.0], 1.0)]
        for probs, want in cases:
            got = fn(list(probs))
            if got is None:
                return "the function returned None"
            if not math.isclose(float(got), want, rel_tol=1e-6):
                return f"perplexity of {probs} should be {want:.4f}, got {float(got):.4f}; it is exp(-mean(log p))"
        return True

    return run_check("perplexity", test, perplexity_fn, hint="math.exp(-sum(math.log(p) for p in probs) / len(probs))")
