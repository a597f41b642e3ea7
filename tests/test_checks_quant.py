"""Lab 05's checks catch real mistakes: each is fed the wrong implementations a learner writes (each must fail
with a message naming the mistake), an unusual but correct implementation (must pass), a function that changes
its input, and a TODO stub (not done). The budget exercise is measured on held-out text with the real model."""

from __future__ import annotations

import doctest
import math
import statistics
import struct

import numpy as np
import pytest
import torch
from verdicts import failed_with, todo

import course_utils.checks.quant as quant_checks
from course_utils import quant
from course_utils.checks.quant import (
    check_absmax_int8,
    check_fit_budget,
    check_groupwise_int4,
    check_model_bytes,
    check_perplexity,
    check_q4_1_block,
    reference_fit_budget,
)


def test_docstring_examples():
    assert doctest.testmod(quant_checks).failed == 0


# ----------------------------------------------------------------------------- absmax int8
def absmax_with(top, levels=127, rounding=torch.round):
    def quantize(x):
        scale = top(x) / levels
        return rounding(x / scale).clamp(-127, 127).to(torch.int8), scale
    return quantize


def dequantize(codes, scale):
    return codes.to(torch.float32) * scale


@pytest.mark.parametrize("wrong, words", [
    (absmax_with(lambda x: x.max().item()), ["largest |x|", "negative"]),
    (absmax_with(lambda x: x.abs().max().item(), levels=128), ["127"]),
    (absmax_with(lambda x: x.abs().max().item(), rounding=torch.trunc), ["half a step", "integer"]),
    (lambda x: (torch.round(x / (x.abs().max() / 127)), (x.abs().max() / 127).item()), ["integers"]),
    (lambda x: (lambda s: (torch.round(x.div_(s)).to(torch.int8), s))(x.abs().max().item() / 127), ["in place"]),
])
def test_absmax_mistakes_are_named(wrong, words):
    verdict = check_absmax_int8(wrong, dequantize)
    failed_with(verdict, *words)
    assert "torch.round(x / scale)" not in verdict.message


def test_absmax_unusual_and_todo():
    def numpy_quantize(x, dtype=np.int8):  # numpy arrays in and out, an extra argument
        a = np.asarray(x, dtype=np.float64)
        scale = float(np.abs(a).max()) / 127
        return np.rint(a / scale).astype(dtype), scale
    verdict = check_absmax_int8(numpy_quantize, lambda c, s: np.asarray(c, dtype=np.float32) * s)
    assert verdict.passed, verdict
    assert check_absmax_int8(absmax_with(lambda x: x.abs().max().item()), dequantize).passed
    assert check_absmax_int8(todo, dequantize).status == "not done"


# ----------------------------------------------------------------------------- group-wise int4
def groupwise(w, group_size):
    g = w.reshape(-1, group_size)
    scale = g.abs().amax(dim=1, keepdim=True) / 7
    return (torch.round(g / scale).clamp(-7, 7) * scale).reshape(w.shape)


@pytest.mark.parametrize("wrong, words", [
    (lambda w, g: quant.fake_quantize(w, bits=4, granularity="channel"), ["one scale per row"]),
    (lambda w, g: groupwise(w.t().contiguous(), g).t(), ["columns", "consecutive"]),
    (lambda w, g: groupwise(w, 32), ["group_size=64", "argument"]),  # works only at the value of the first case
    (lambda w, g: (lambda gr, s: (torch.round(gr / s).clamp(-15, 15) * s).reshape(w.shape))(w.reshape(-1, g), w.reshape(-1, g).abs().amax(1, keepdim=True) / 15),
     ["different values", "16"]),
    (lambda w, g: (lambda gr, s: (torch.floor(gr / s).clamp(-7, 7) * s).reshape(w.shape))(w.reshape(-1, g), w.reshape(-1, g).abs().amax(1, keepdim=True) / 7),
     ["half a step"]),
    (lambda w, g: w.copy_(groupwise(w, g)), ["in place"]),
])
def test_groupwise_mistakes_are_named(wrong, words):
    verdict = check_groupwise_int4(wrong)
    failed_with(verdict, *words)
    assert "clamp(-7, 7)" not in verdict.message


def test_groupwise_unusual_and_todo():
    def zero_point(w, group_size):  # asymmetric, 16 levels from min to max: also within half an absmax step
        return quant.fake_quantize(w, bits=4, scheme="minmax", group_size=group_size, scale_dtype=torch.float32)
    assert check_groupwise_int4(zero_point).passed, check_groupwise_int4(zero_point)
    assert check_groupwise_int4(groupwise).passed
    assert check_groupwise_int4(todo).status == "not done"


# ----------------------------------------------------------------------------- model bytes
def size_with(code_bytes=0.5, scale_bytes=2, other_bytes=4):
    def size(shapes, others, group_size):
        weights = sum(r * c for r, c in shapes)
        return int(weights * code_bytes + weights // group_size * scale_bytes + others * other_bytes)
    return size


@pytest.mark.parametrize("wrong, words", [
    (size_with(code_bytes=1), ["half a byte"]),
    (size_with(scale_bytes=4), ["float16", "2 bytes"]),
    (size_with(scale_bytes=0), ["scales are missing"]),
    (size_with(other_bytes=2), ["float32"]),
    (size_with(code_bytes=0), ["codes are missing"]),
    (lambda shapes, others, g: size_with()(shapes, others, 32), ["group_size=64"]),  # only right at the first case's value
    (lambda shapes, others, g: shapes.pop() and size_with()(shapes, others, g), ["in place"]),
])
def test_model_bytes_mistakes_are_named(wrong, words):
    verdict = check_model_bytes(wrong)
    failed_with(verdict, *words)
    assert "weights * 0.5" not in verdict.message


def test_model_bytes_unusual_and_todo():
    def per_layer(shapes, others, group_size, bits=4):  # layer by layer, in bits, an extra argument
        total_bits = sum(r * c * bits + (r * c // group_size) * 16 for r, c in shapes)
        return total_bits // 8 + others * 4
    assert check_model_bytes(per_layer).passed, check_model_bytes(per_layer)
    assert check_model_bytes(todo).status == "not done"


# ----------------------------------------------------------------------------- Q4_1 block
def block_with(order="split", swap=False, minimum=True):
    def dequantize_block(raw):
        d, m = struct.unpack("<ee", raw[:4])
        if swap:
            d, m = m, d
        lo, hi = [b & 0x0F for b in raw[4:]], [b >> 4 for b in raw[4:]]
        codes = lo + hi if order == "split" else [q for b in raw[4:] for q in (b & 0x0F, b >> 4)]
        return [d * q + (m if minimum else 0.0) for q in codes]
    return dequantize_block


@pytest.mark.parametrize("wrong, words", [
    (block_with(order="interleaved"), ["wrong order", "low nibble"]),
    (block_with(swap=True), ["swapped"]),
    (block_with(minimum=False), ["minimum m is missing"]),
    (lambda raw: [v + 1e-3 for v in block_with()(raw)], ["differs"]),
])
def test_q4_1_mistakes_are_named(wrong, words):
    verdict = check_q4_1_block(wrong)
    failed_with(verdict, *words)
    assert "struct.unpack('<ee', raw[:4])" not in verdict.message


def test_q4_1_unusual_and_todo():
    def numpy_block(raw):  # numpy views of the bytes instead of struct
        d, m = np.frombuffer(raw[:4], dtype="<f2").astype(np.float32)
        q = np.frombuffer(raw[4:], dtype=np.uint8)
        return np.concatenate([q & 0x0F, q >> 4]).astype(np.float32) * d + m
    assert check_q4_1_block(numpy_block).passed, check_q4_1_block(numpy_block)
    assert check_q4_1_block(block_with()).passed
    assert check_q4_1_block(todo).status == "not done"


# ----------------------------------------------------------------------------- perplexity
@pytest.mark.parametrize("wrong, words", [
    (lambda probs: 2 ** (-sum(math.log(p) for p in probs) / len(probs)), ["same base"]),
    (lambda probs: math.exp(-sum(math.log(p) for p in probs) / (len(probs) + 1)), ["exactly len(probs)"]),
    (lambda probs: math.exp(-sum(math.log(p) for p in probs)), ["summed", "mean"]),
    (lambda probs: len(probs) / sum(probs), ["mean probability"]),
    (lambda probs: math.prod(probs) ** (-1 / len(probs)), ["underflows"]),
    (lambda probs: math.exp(-sum(math.log(probs.pop()) for _ in range(len(probs))) / 1), ["in place"]),
])
def test_perplexity_mistakes_are_named(wrong, words):
    verdict = check_perplexity(wrong)
    failed_with(verdict, *words)
    assert "math.exp(-sum(" not in verdict.message


def test_perplexity_unusual_and_todo():
    assert check_perplexity(lambda probs: 1 / statistics.geometric_mean(probs)).passed
    assert check_perplexity(lambda probs: float(np.exp(-np.log(np.asarray(probs)).mean()))).passed
    assert check_perplexity(todo).status == "not done"


# ----------------------------------------------------------------------------- fit the budget (measured)
@pytest.fixture(scope="module")
def model_and_tokenizer(hf_model):
    return hf_model


def uniform(**kw):
    return lambda weights, budget: {n: quant.quantize(w, **kw) for n, w in weights.items()}


def test_budget_reference_reaches_the_target_and_says_so(model_and_tokenizer):
    verdict = check_fit_budget(reference_fit_budget, *model_and_tokenizer)
    assert verdict.passed, verdict
    assert "target" in verdict.message and "reference solution" in verdict.message and "bits per weight" in verdict.message


def test_budget_unusual_plan_passes(model_and_tokenizer):
    """Another plan: zero-point groups of 32 (4.75 bits) for down_proj only, groups of 64 elsewhere, written as a loop."""
    def plan(weights, budget):
        out = {}
        for name, w in weights.items():
            out[name] = quant.quantize(w, bits=4, scheme="minmax", group_size=32) if name.endswith(("down_proj", "v_proj", "o_proj")) \
                else quant.quantize(w, bits=4, scheme="absmax", granularity="block", group_size=192)
        assert sum(q.nbytes for q in out.values()) <= budget
        return out
    verdict = check_fit_budget(plan, *model_and_tokenizer)
    assert verdict.passed, verdict


@pytest.mark.parametrize("lazy, words", [
    (uniform(bits=4, group_size=32), ["target", "reference solution", "not good enough"]),  # fits, misses the target
    (uniform(bits=4, scheme="minmax", group_size=32), ["over the budget"]),  # lossless here, but 5 bits
    (uniform(bits=8), ["over the budget"]),
    (lambda weights, budget: {n: quant.fake_quantize(w, bits=4, group_size=32) for n, w in weights.items()}, ["plain tensor", "qtensor"]),
    (lambda weights, budget: {n: quant.quantize(w, bits=4, group_size=32) for n, w in list(weights.items())[:-1]}, ["missing"]),
    (lambda weights, budget: {n: quant.quantize(w.mul_(1.0), bits=4, group_size=32) for n, w in weights.items()} and weights.clear(), ["in place"]),
])
def test_budget_lazy_or_wrong_plans_fail(model_and_tokenizer, lazy, words):
    verdict = check_fit_budget(lazy, *model_and_tokenizer)
    failed_with(verdict, *words)
    assert "v_proj, o_proj and down_proj" not in verdict.message


def test_budget_todo_is_not_done(model_and_tokenizer):
    assert check_fit_budget(todo, *model_and_tokenizer).status == "not done"
