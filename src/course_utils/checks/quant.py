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

from . import Verdict, call_unchanged, close_enough, run_check

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

        w = _outlier_weights()
        cases = [("a weight matrix", w[:8] / 3), ("a tensor whose largest |x| is negative", w[24:40]), ("a 1-D tensor", w[5, :37] * 7)]
        for what, x in cases:
            out = call_unchanged(quantize, x)
            if out is None:
                raise NotImplementedError
            if not isinstance(out, tuple) or len(out) != 2:
                return "absmax_quantize should return a pair (codes, scale)"
            codes, scale = _as_tensor(out[0]), float(out[1])
            if codes.is_floating_point():
                return f"codes should be integers (e.g. torch.int8), got {codes.dtype}"
            if codes.shape != x.shape:
                return f"codes should have the input's shape {tuple(x.shape)}, got {tuple(codes.shape)}"
            expected_scale = x.abs().max().item() / 127
            if math.isclose(scale, x.max().item() / 127, rel_tol=1e-4) and not math.isclose(scale, expected_scale, rel_tol=1e-4):
                return f"for {what} your scale comes from the largest x, not the largest |x|: the negative extreme gets clipped"
            if math.isclose(scale, x.abs().max().item() / 128, rel_tol=1e-4) or math.isclose(scale, x.abs().max().item() / 255, rel_tol=1e-4):
                return f"for {what} the scale is {scale:.6g}: int8 codes are symmetric here, the largest |x| must map to code 127"
            if not math.isclose(scale, expected_scale, rel_tol=1e-4):
                return f"for {what} the scale is {scale:.6g}, expected {expected_scale:.6g}: one scale for the whole tensor, from its largest magnitude"
            if codes.abs().max().item() != 127 or codes.min().item() < -127:
                return f"for {what} codes should span -127..127 (the largest |x| gets ±127); got {codes.min().item()}..{codes.max().item()}"
            back = _as_tensor(call_unchanged(dequantize, codes, scale)).to(torch.float32)
            if back.shape != x.shape:
                return f"absmax_dequantize should give the input's shape {tuple(x.shape)}, got {tuple(back.shape)}"
            err = (back - x).abs().max().item()
            if err > scale / 2 * (1 + 1e-4):
                return f"for {what} the round trip is off by up to {err:.3g}, more than half a step ({scale / 2:.3g}): look at how you turn x / scale into an integer"
        return True

    return run_check("absmax int8", test, absmax_quantize, absmax_dequantize,
                     hint="one scale for the tensor, so that its largest magnitude lands exactly on the last code; round to the nearest code",
                     more="scale = x.abs().max() / 127; codes = torch.round(x / scale).to(torch.int8); back = codes.float() * scale")


# ----------------------------------------------------------------------------- exercise 2
def check_groupwise_int4(groupwise_int4: Callable[..., Any], max_rel_rms: dict[int, float] | None = None) -> Verdict:
    """``groupwise_int4(w, group_size) -> w_hat``: ``w`` quantized to 4 bits per group of
    ``group_size`` weights of each row, then de-quantized.

    Passes when every group uses at most 16 distinct values (really 4 bits), every weight is within
    half a step of its group (step = max|group| / 7), the relative RMS error on a tensor with
    outliers is below ``max_rel_rms[group_size]`` (absmax gets 0.104 and 0.130 for groups of 32 and
    64; one scale per row 0.20), and it beats one scale for the whole tensor.
    """
    bounds = max_rel_rms or {32: 0.11, 64: 0.14, 16: 0.11}

    def test(fn: Callable[..., Any]) -> bool | str:
        import torch

        from ..quant import fake_quantize

        w = _outlier_weights()
        for group_size, bound_rms in bounds.items():
            out = call_unchanged(fn, w, group_size)
            if out is None:
                raise NotImplementedError
            w_hat = _as_tensor(out).to(torch.float32)
            if w_hat.shape != w.shape:
                return f"the result should have the input's shape {tuple(w.shape)}, got {tuple(w_hat.shape)}"
            groups, hat_groups = w.reshape(-1, group_size), w_hat.reshape(-1, group_size)
            levels = max(len(torch.unique(g)) for g in hat_groups)
            if levels > 16:
                by_column = w_hat.t().reshape(-1, group_size)
                if max(len(torch.unique(g)) for g in by_column) <= 16:
                    return f"with group_size={group_size} your groups run down the columns: a group is {group_size} consecutive weights of one row"
                for size in (32, 64):  # smaller groups hold at most 16 weights anyway
                    if size < group_size and group_size % size == 0 and max(len(torch.unique(g)) for g in w_hat.reshape(-1, size)) <= 16:
                        return f"with group_size={group_size} your groups hold {size} weights: use the group_size argument"
                return f"with group_size={group_size} a group holds {levels} different values: 4 bits give at most 16 (look at the range of your codes)"
            bound = groups.abs().amax(dim=1, keepdim=True) / 7 / 2 * (1 + 2e-3) + 1e-7
            if ((hat_groups - groups).abs() > bound).any():
                if close_enough(w_hat, fake_quantize(w, bits=4, granularity="channel"), 1e-6):
                    return f"with group_size={group_size} you used one scale per row: the row's outlier makes the step coarse for all its weights"
                return (f"with group_size={group_size} some weights are more than half a step (max|group| / 14) away: "
                        f"each run of {group_size} consecutive weights of a row needs its own scale, and rounding to the nearest code")
            rel_rms = ((w_hat - w).pow(2).mean().sqrt() / w.pow(2).mean().sqrt()).item()
            if rel_rms > bound_rms:
                return f"with group_size={group_size} the relative RMS error is {rel_rms:.3f}, above the bound {bound_rms}"
            per_tensor = fake_quantize(w, bits=4, granularity="tensor")
            if (w_hat - w).abs().mean() >= (per_tensor - w).abs().mean():
                return "no better than one scale for the whole tensor: each group needs its own scale"
        return True

    return run_check("group-wise int4", test, groupwise_int4,
                     hint="view the weights so that each row of the view is one group; each group gets its own absmax scale for codes -7..7",
                     more="g = w.reshape(-1, group_size); scale = g.abs().amax(1, keepdim=True) / 7; (torch.round(g / scale).clamp(-7, 7) * scale).reshape(w.shape)")


# ----------------------------------------------------------------------------- exercise 3
def check_model_bytes(int4_model_bytes: Callable[..., Any]) -> Verdict:
    """``int4_model_bytes(linear_shapes, other_params, group_size) -> int``: bytes of a model whose
    linear layers are int4 (packed, 0.5 byte per weight) with one float16 scale per group, and all
    other parameters float32."""

    def test(fn: Callable[..., Any]) -> bool | str:
        from ..quant import expected_linear_bytes

        cases = [(SMOLLM2_LINEAR_SHAPES, SMOLLM2_OTHER_PARAMS, 32), (SMOLLM2_LINEAR_SHAPES, SMOLLM2_OTHER_PARAMS, 64),
                 ([(64, 256), (128, 512)], 1000, 128), ([(16, 96)], 0, 48), ([(8, 32)], 7, 16)]
        for shapes, others, group_size in cases:
            got = call_unchanged(fn, list(shapes), others, group_size)
            if got is None:
                raise NotImplementedError
            want = 4 * others + sum(expected_linear_bytes(s, bits=4, group_size=group_size, granularity="block") for s in shapes)
            if isinstance(got, (int, float)) and not isinstance(got, bool) and got == want:
                continue
            if not isinstance(got, (int, float)) or isinstance(got, bool):
                return f"return a number of bytes, got {type(got).__name__}"
            weights = sum(r * c for r, c in shapes)
            where = f"for group_size={group_size} ({len(shapes)} layer(s), {others:,} other parameters)"
            codes, scales = weights // 2, 2 * (weights // group_size)
            if got == want - codes:
                return f"{where}: the codes are missing: every weight still needs its 4 bits"
            if got == want + codes:
                return f"{where}: 4-bit codes take half a byte each, not one byte"
            if got == want + scales:
                return f"{where}: the scales are float16 (2 bytes each), you counted 4"
            if got == want - scales:
                return f"{where}: the scales are missing: one float16 per group of {group_size}"
            if got == want - 2 * others:
                return f"{where}: the other parameters stay float32, 4 bytes each"
            if got == want - 4 * others:
                return f"{where}: the other (not quantized) parameters are missing"
            return f"got {got!r} bytes {where}, expected {want:,}"
        return True

    return run_check("int4 model size", test, int4_model_bytes,
                     hint="three parts: the 4-bit codes, one float16 scale per group, and the float32 parameters that are not quantized",
                     more="weights * 0.5 + (weights / group_size) * 2 + others * 4")


# ----------------------------------------------------------------------------- exercise 4
def check_q4_1_block(dequantize_block: Callable[[bytes], Any], tensor: str = "blk.3.ffn_up.weight") -> Verdict:
    """``dequantize_block(raw) -> 32 floats`` from the 20 bytes of a Q4_1 block; must equal the
    ``gguf`` library's result exactly, on several blocks of a real tensor."""

    def test(fn: Callable[[bytes], Any]) -> bool | str:
        import struct

        import numpy as np

        from ..quant import gguf_dequantize, q4_1_block_bytes

        reference = gguf_dequantize(tensor).reshape(-1, 32)
        for block in (0, 1, 777, reference.shape[0] - 1):
            raw = q4_1_block_bytes(tensor, block)
            out = fn(raw)
            if out is None:
                raise NotImplementedError
            mine = np.asarray(out, dtype=np.float32).reshape(-1)
            if mine.size != 32:
                return f"a block holds 32 weights, got {mine.size} values"
            if np.array_equal(mine, reference[block]):
                continue
            if np.array_equal(np.sort(mine), np.sort(reference[block])):
                return f"block {block}: right values, wrong order: byte j holds weight j (low nibble) and weight j + 16 (high nibble)"
            d, m = struct.unpack("<ee", raw[:4])
            codes = np.array([b & 0x0F for b in raw[4:]] + [b >> 4 for b in raw[4:]], dtype=np.float32)
            if np.allclose(mine, m * codes + d, atol=1e-6):
                return f"block {block}: d and m are swapped: the first float16 is the scale d, the second the minimum m"
            if np.allclose(mine, d * codes, atol=1e-6):
                return f"block {block}: the minimum m is missing: each weight is d * q + m"
            worst = np.abs(mine - reference[block]).max()
            return f"block {block} differs from gguf's by up to {worst:.3g}: look at how the two float16 numbers and the nibbles are read"
        return True

    return run_check("Q4_1 block", test, dequantize_block,
                     hint="the block starts with two little-endian float16 numbers (d, then m); the 16 bytes after them hold two codes each",
                     more="d, m = struct.unpack('<ee', raw[:4]); codes = [b & 0x0F for b in raw[4:]] + [b >> 4 for b in raw[4:]]; [d * q + m for q in codes]")


# ----------------------------------------------------------------------------- exercise 5
def check_perplexity(perplexity_fn: Callable[..., Any]) -> Verdict:
    """``perplexity_fn(probs) -> float``: perplexity from the probabilities the model gave to each
    actual next token."""

    def test(fn: Callable[..., Any]) -> bool | str:
        twelve = [0.5, 0.25, 0.125, 0.9, 0.1, 0.3, 0.7, 0.05, 0.6, 0.2, 0.45, 0.35]
        cases = [[0.25] * 4, [0.5, 0.25, 0.125], [0.9, 0.1], [1.0], twelve, [0.1] * 400]
        for probs in cases:
            try:
                got = call_unchanged(fn, list(probs))
            except (ZeroDivisionError, OverflowError) as err:
                if len(probs) < 100:
                    raise
                return f"for {len(probs)} probabilities of 0.1 your code raised {type(err).__name__}: multiplying many small probabilities underflows to 0; add log-probabilities instead"
            if got is None:
                raise NotImplementedError
            logs = [math.log(p) for p in probs]
            want = math.exp(-sum(logs) / len(probs))
            try:
                value = float(got)
            except (TypeError, ValueError):
                return f"return one number (a float), got {type(got).__name__}"
            if math.isclose(value, want, rel_tol=1e-6):
                continue
            where = f"for the {len(probs)} probabilities {probs[:4]}{' ...' if len(probs) > 4 else ''}"
            if math.isclose(value, 2 ** (-sum(logs) / len(probs)), rel_tol=1e-6) or math.isclose(value, 2 ** (-sum(math.log2(p) for p in probs) / len(probs)), rel_tol=1e-6):
                return f"{where}: got {value:.4f}, expected {want:.4f}: the log and the power must use the same base (math.log with math.exp)"
            if len(probs) > 1 and math.isclose(value, math.exp(-sum(logs) / (len(probs) + 1)), rel_tol=1e-6) or \
                    len(probs) > 1 and math.isclose(value, math.exp(-sum(logs) / (len(probs) - 1)), rel_tol=1e-6):
                return f"{where}: got {value:.4f}, expected {want:.4f}: average over exactly len(probs) tokens"
            if math.isclose(value, math.exp(-sum(logs)), rel_tol=1e-6) and len(probs) > 1:
                return f"{where}: got {value:.4f}, expected {want:.4f}: you summed the log-probabilities; perplexity uses their mean"
            if math.isclose(value, 1 / (sum(probs) / len(probs)), rel_tol=1e-6):
                return f"{where}: got {value:.4f}, expected {want:.4f}: one over the mean probability is not it; average the log-probabilities"
            if math.isfinite(want) and not math.isfinite(value):
                return f"{where}: got {value}: multiplying many small probabilities underflows; add log-probabilities instead"
            return f"{where}: got {value:.4f}, expected {want:.4f}"
        return True

    return run_check("perplexity", test, perplexity_fn,
                     hint="perplexity is exp of the average surprise (negative log-probability) per token",
                     more="math.exp(-sum(math.log(p) for p in probs) / len(probs))")


# ----------------------------------------------------------------------------- exercise 6 (measured)
BUDGET_LAYERS = (0, 1, 2, 3)  # the decoder layers whose 28 linear weights the exercise quantizes
BUDGET_BITS_PER_WEIGHT = 4.5  # bytes allowed: this many bits per weight, scales and offsets included
PERPLEXITY_TARGET = 1.03  # held-out perplexity at most 3 % above the unquantized model's
HELD_OUT_TOKENS = 1024
_MEASURED: dict[tuple[int, str], float] = {}  # (id(model), "fp32" | "reference") -> held-out perplexity


def budget_weights(model: Any) -> dict[str, Any]:
    """Copies of the linear weights of decoder layers ``BUDGET_LAYERS``, by module name."""
    import torch

    return {name: m.weight.detach().clone() for name, m in model.named_modules()
            if isinstance(m, torch.nn.Linear) and ".layers." in name and int(name.split(".layers.")[1].split(".")[0]) in BUDGET_LAYERS}


def budget_bytes(weights: dict[str, Any]) -> int:
    """The byte budget for ``weights``: ``BUDGET_BITS_PER_WEIGHT`` bits per weight."""
    return int(sum(w.numel() for w in weights.values()) * BUDGET_BITS_PER_WEIGHT) // 8


def reference_fit_budget(weights: dict[str, Any], budget: int) -> dict[str, Any]:
    """The reference solution: min-max groups of 32 (lossless on this model's Q4_1 grid, 5 bits) for the
    tensors that hurt most when rounded (v_proj, o_proj, down_proj), zero-point blocks of 192 (4.125
    bits) for the others."""
    from ..quant import quantize

    sensitive = ("v_proj", "o_proj", "down_proj")
    return {name: quantize(w, bits=4, scheme="minmax", group_size=32) if name.endswith(sensitive)
            else quantize(w, bits=4, scheme="zeropoint", granularity="block", group_size=192) for name, w in weights.items()}


def held_out_ids(tokenizer: Any) -> list[int]:
    """Token ids the check scores: BoolQ passages from the end of the set (lesson 05 and the lab use the start)."""
    from ..evaldata import boolq_passages
    from ..evaluation import token_stream

    return token_stream(lambda s: tokenizer.encode(s, add_special_tokens=False), boolq_passages()[-40:], max_tokens=HELD_OUT_TOKENS)


def perplexity_with(model: Any, ids: list[int], replaced: dict[str, Any]) -> float:
    """Perplexity on ``ids`` with some linear weights replaced (put back afterwards)."""
    import torch

    from ..evaluation import perplexity

    originals = {name: model.get_submodule(name).weight.data.clone() for name in replaced}
    try:
        with torch.no_grad():
            for name, w in replaced.items():
                model.get_submodule(name).weight.data.copy_(w)
        return perplexity(model, ids=ids, window=512, batch_size=2).perplexity
    finally:
        with torch.no_grad():
            for name, w in originals.items():
                model.get_submodule(name).weight.data.copy_(w)


def _measured(model: Any, ids: list[int], which: str, weights: dict[str, Any], budget: int) -> float:
    from ..quant import dequantize

    key = (id(model), which)
    if key not in _MEASURED:
        replaced = {} if which == "fp32" else {n: dequantize(q) for n, q in reference_fit_budget(weights, budget).items()}
        _MEASURED[key] = perplexity_with(model, ids, replaced)
    return _MEASURED[key]


def check_fit_budget(fit_budget: Callable[..., Any], model: Any, tokenizer: Any) -> Verdict:
    """``fit_budget(weights, budget_bytes) -> {name: QTensor}``: the 28 linear weights of SmolLM2's first
    four layers quantized into at most ``budget_bytes`` (4.5 bits per weight), with the model's perplexity on
    held-out text (the check's, never the learner's) at most ``PERPLEXITY_TARGET`` x the unquantized one.
    The verdict shows the learner's perplexity and bytes beside the target and the reference solution's."""
    measured: list[str] = []

    def test(fn: Callable[..., Any]) -> bool | str:
        import torch

        from ..quant import QTensor, dequantize

        weights = budget_weights(model)
        budget = budget_bytes(weights)
        out = call_unchanged(fn, weights, budget)
        if out is None:
            raise NotImplementedError
        if not isinstance(out, dict):
            return f"return a dict {{layer name: QTensor}}, got {type(out).__name__}"
        missing = [n for n in weights if n not in out]
        if missing:
            return f"{len(missing)} of the {len(weights)} weights are missing from your result, e.g. {missing[0]!r}: quantize every one"
        for name, q in out.items():
            if isinstance(q, torch.Tensor):
                return (f"{name!r} is a plain tensor: return the QTensor that course_utils.quant.quantize gives, "
                        "so that its bytes (codes, scales, offsets) can be counted")
            if not isinstance(q, QTensor):
                return f"{name!r} should be a QTensor, got {type(q).__name__}"
            if name in weights and tuple(q.shape) != tuple(weights[name].shape):
                return f"{name!r} has shape {tuple(q.shape)}, the weight is {tuple(weights[name].shape)}"
        used = sum(q.nbytes for n, q in out.items() if n in weights)  # codes, scales and offsets
        n_weights = sum(w.numel() for w in weights.values())
        if used > budget:
            return (f"your weights take {used:,} bytes ({8 * used / n_weights:.3f} bits per weight), over the budget of "
                    f"{budget:,} bytes ({BUDGET_BITS_PER_WEIGHT} bits per weight): something has to get fewer bytes")
        ids = held_out_ids(tokenizer)
        ppl = perplexity_with(model, ids, {n: dequantize(out[n]) for n in weights})
        base = _measured(model, ids, "fp32", weights, budget)
        ref = _measured(model, ids, "reference", weights, budget)
        line = (f"held-out perplexity {ppl:.3f} ({100 * (ppl / base - 1):+.2f} % vs fp32 {base:.3f}; target <= {PERPLEXITY_TARGET * base:.3f}, "
                f"+{100 * (PERPLEXITY_TARGET - 1):.0f} %) in {used:,} of {budget:,} bytes ({8 * used / n_weights:.3f} bits per weight); "
                f"reference solution {ref:.3f} ({100 * (ref / base - 1):+.2f} %)")
        measured.append(line)
        if ppl <= PERPLEXITY_TARGET * base:
            return True
        return f"{line}: the same rounding everywhere is not good enough in this budget"

    verdict = run_check("fit the budget", test, fit_budget,
                        hint="layers are not equally sensitive: try each kind of layer alone on the calibration text and spend the bytes where rounding hurts",
                        more="min-max groups of 32 are lossless on this model (its weights come from a Q4_1 file) but cost 5 bits; "
                             "give them to v_proj, o_proj and down_proj and 4-bit zero-point blocks of 192 to the rest")
    return Verdict(verdict.name, verdict.status, measured[0]) if verdict.passed else verdict
