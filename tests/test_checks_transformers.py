"""Lab 02's checks catch real mistakes: each exercise's check is fed the wrong implementations a learner
writes (each must fail with a message naming the mistake), an unusual but correct one (must pass), and the
TODO stub (not done); the first failure never shows the ``more=`` hint. The KV-cache exercise runs the real
SmolLM2 and must fail a loop without a cache on its position count."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from verdicts import failed_with, todo

from course_utils.checks import transformers as checks
from course_utils.transformer import causal_mask, generate_greedy


def test_every_todo_is_not_done(hf_model):
    model, tokenizer = hf_model
    assert checks.check_softmax(todo).status == "not done"
    assert checks.check_causal_mask(todo).status == "not done"
    assert checks.check_attention(todo).status == "not done"
    assert checks.check_param_count(todo, model).status == "not done"
    assert checks.check_greedy_step(todo, model, tokenizer).status == "not done"
    assert checks.check_greedy_step(lambda m, ids: None, model, tokenizer).status == "not done"
    assert checks.check_cached_generation(todo, model, tokenizer).status == "not done"


# ----------------------------------------------------------------------------- 1. softmax
def stable(x):
    e = torch.exp(x - x.max(-1, keepdim=True).values)
    return e / e.sum(-1, keepdim=True)


def softmax_numpy(x, axis=-1):
    """Unusual but correct: NumPy, log-sum-exp, an extra argument with a default."""
    a = np.asarray(x, dtype=np.float64)
    m = a.max(axis=axis, keepdims=True)
    return np.exp(a - m - np.log(np.exp(a - m).sum(axis=axis, keepdims=True)))


def softmax_in_place(x):
    x -= x.max(-1, keepdim=True).values
    x.exp_()
    return x / x.sum(-1, keepdim=True)


def test_softmax_reference_and_an_unusual_one_pass():
    assert checks.check_softmax(stable).passed
    assert checks.check_softmax(softmax_numpy).passed


@pytest.mark.parametrize("wrong, words", [
    (lambda x: torch.exp(x) / torch.exp(x).sum(-1, keepdim=True), ["overflow", "subtract"]),
    (lambda x: torch.softmax(x, 0), ["columns", "last dimension"]),
    (lambda x: torch.exp(x - x.max(-1, keepdim=True).values) / torch.exp(x - x.max(-1, keepdim=True).values).sum(-1), ["keepdim"]),
    (lambda x: torch.exp(x - x.max()) / torch.exp(x - x.max()).sum(-1, keepdim=True), ["whole", "each row's own maximum"]),
    (lambda x: torch.softmax(x, 1) if x.dim() > 1 else torch.softmax(x, 0), ["(2, 3, 5)", "dim=-1"]),
    (softmax_in_place, ["in place"]),
])
def test_softmax_mistakes_are_named(wrong, words):
    failed_with(checks.check_softmax(wrong), *words)


# ----------------------------------------------------------------------------- 2. causal mask
def test_mask_reference_and_an_unusual_one_pass():
    assert checks.check_causal_mask(causal_mask).passed
    assert checks.check_causal_mask(lambda n, dtype=bool: np.tri(n, dtype=dtype)).passed  # NumPy, an extra argument


@pytest.mark.parametrize("wrong, words", [
    (lambda n: torch.ones(n, n).triu().bool(), ["wrong way round"]),
    (lambda n: torch.ones(n, n).tril(-1).bool(), ["diagonal"]),
    (lambda n: torch.ones(n, n).tril(), ["boolean"]),
    (lambda n: torch.full((n, n), float("-inf")).triu(1), ["additive", "-inf"]),
    (lambda n: torch.ones(n, n + 1, dtype=torch.bool).tril(), ["shape (4, 4)"]),
    (lambda n: torch.ones(n, n, dtype=torch.bool).tril()[:, :n] if n < 10 else torch.ones(n, n, dtype=torch.bool).tril(1), ["12"]),
])
def test_mask_mistakes_are_named(wrong, words):
    failed_with(checks.check_causal_mask(wrong), *words)


# ----------------------------------------------------------------------------- 3. attention
def attention(q, k, v, scale="d", mask=True, dim=-1):
    d = {"d": q.shape[-1], "dd": q.shape[-1] ** 2, "v": v.shape[-1], "tokens": len(q), "none": 1}[scale]
    scores = q @ k.T / math.sqrt(d)
    if mask:
        scores = scores.masked_fill(~causal_mask(len(q)), float("-inf"))
    return torch.softmax(scores, dim) @ v


def attention_one_query_at_a_time(q, k, v, return_weights=False):
    """Unusual but correct: a loop over queries, each seeing keys 0..i, NumPy inside."""
    qn, kn, vn = (t.numpy().astype(np.float64) for t in (q, k, v))
    out = []
    for i in range(len(qn)):
        s = kn[: i + 1] @ qn[i] / np.sqrt(qn.shape[-1])
        w = np.exp(s - s.max())
        out.append((w / w.sum()) @ vn[: i + 1])
    return np.stack(out)


def attention_in_place(q, k, v):
    q /= math.sqrt(q.shape[-1])
    return torch.softmax((q @ k.T).masked_fill(~causal_mask(len(q)), float("-inf")), -1) @ v


def test_attention_reference_and_an_unusual_one_pass():
    assert checks.check_attention(attention).passed
    assert checks.check_attention(attention_one_query_at_a_time).passed


@pytest.mark.parametrize("wrong, words", [
    (lambda q, k, v: attention(q, k, v, scale="none"), ["not scaled"]),
    (lambda q, k, v: attention(q, k, v, scale="dd"), ["divided by d", "sqrt(d)"]),
    (lambda q, k, v: attention(q, k, v, scale="v"), ["v's width"]),
    (lambda q, k, v: attention(q, k, v, scale="tokens"), ["number of tokens"]),
    (lambda q, k, v: attention(q, k, v, mask=False), ["future"]),
    (lambda q, k, v: attention(q, k, v, dim=0), ["column"]),
    (attention_in_place, ["in place"]),
])
def test_attention_mistakes_are_named(wrong, words):
    failed_with(checks.check_attention(wrong), *words)


# ----------------------------------------------------------------------------- 4. parameters of a layer
def count(cfg, gqa=True, norms=2, mlp=3, attn=True):
    d, ff = cfg.hidden_size, cfg.intermediate_size
    kv = cfg.num_key_value_heads * cfg.head_dim if gqa else d
    return (2 * d * d + 2 * d * kv if attn else 2 * d * kv) + mlp * d * ff + norms * d


def test_param_count_reference_and_an_unusual_one_pass(hf_model):
    model, _ = hf_model
    assert checks.check_param_count(count, model).passed

    def from_a_layer_built_here(config, verbose=False):  # another way: build the layer and count
        layer = type(model.model.layers[0])(config, 0)
        return sum(p.numel() for p in layer.parameters())
    assert checks.check_param_count(from_a_layer_built_here, model).passed


@pytest.mark.parametrize("wrong, words", [
    (lambda c: count(c, gqa=False), ["grouped-query"]),
    (lambda c: count(c, norms=0), ["rmsnorm"]),
    (lambda c: count(c, norms=1), ["two rmsnorms"]),
    (lambda c: count(c, mlp=2), ["three matrices"]),
    (lambda c: count(c, attn=False), ["four matrices"]),
    (lambda c: 3_540_096, ["smaller config", "typed in"]),  # SmolLM2's number, typed in
])
def test_param_count_mistakes_are_named(hf_model, wrong, words):
    model, _ = hf_model
    failed_with(checks.check_param_count(wrong, model), *words)


# ----------------------------------------------------------------------------- 5. one greedy step
def step(model, ids, position=-1):
    with torch.inference_mode():
        return int(model(input_ids=torch.tensor([ids])).logits[0, position].argmax())


def test_greedy_step_reference_and_an_unusual_one_pass(hf_model):
    model, tokenizer = hf_model
    assert checks.check_greedy_step(step, model, tokenizer).passed

    def by_top_k(model, ids, temperature=1.0):  # the largest of the top-1 values, as a NumPy int
        with torch.inference_mode():
            return np.int64(torch.topk(model(torch.tensor([ids]), logits_to_keep=1).logits[0, -1], 1).indices[0])
    assert checks.check_greedy_step(by_top_k, model, tokenizer).passed


def appends(model, ids):
    ids.append(0)
    return step(model, ids[:-1])


@pytest.mark.parametrize("wrong, words", [
    (lambda m, ids: step(m, ids, 0), ["first position", "last position's scores"]),
    (lambda m, ids: int(m(input_ids=torch.tensor([ids])).logits.argmax()), ["all positions at once"]),
    (lambda m, ids: int(m(input_ids=torch.tensor([ids])).logits[0, -1].argmin()), ["least", "argmin"]),
    (lambda m, ids: m(input_ids=torch.tensor([ids])).logits[0, -1], ["one token id"]),
    (appends, ["in place"]),
])
def test_greedy_step_mistakes_are_named(hf_model, wrong, words):
    model, tokenizer = hf_model
    failed_with(checks.check_greedy_step(wrong, model, tokenizer), *words)


# ----------------------------------------------------------------------------- 6. greedy decoding with a KV cache (build and measure)
def cached(model, ids, max_new_tokens, eos_token_id=None, *, pass_cache=True, keep_eos=True, stop=True, with_prompt=False, extra=0):
    past, inputs, new = None, torch.tensor([ids]), []
    with torch.inference_mode():
        for _ in range(max_new_tokens + extra):
            out = model(input_ids=inputs, past_key_values=past, use_cache=True)
            past = out.past_key_values if pass_cache else None
            token = int(out.logits[0, -1].argmax())
            if stop and token == eos_token_id and not keep_eos:
                break
            new.append(token)
            if stop and token == eos_token_id:
                break
            inputs = torch.tensor([[token]])
    return list(ids) + new if with_prompt else new


def without_cache(model, ids, max_new_tokens, eos_token_id=None):
    seq, new = list(ids), []
    with torch.inference_mode():
        for _ in range(max_new_tokens):
            token = int(model(input_ids=torch.tensor([seq])).logits[0, -1].argmax())
            new.append(token)
            seq.append(token)
            if token == eos_token_id:
                break
    return new


def appends_to_ids(model, ids, max_new_tokens, eos_token_id=None):
    new = cached(model, ids, max_new_tokens, eos_token_id)
    ids.extend(new)
    return new


def test_cached_generation_reference_and_an_unusual_one_pass(hf_model, capsys):
    model, tokenizer = hf_model
    verdict = checks.check_cached_generation(cached, model, tokenizer)
    assert verdict.passed, verdict
    printed = capsys.readouterr().out
    assert "target at most" in printed and "generate_greedy" in printed and "without a cache" in printed
    # the course's loop, returning a GreedyRun (its .ids are taken)
    assert checks.check_cached_generation(lambda m, ids, n, eos=None: generate_greedy(m, ids, n, eos_token_id=eos), model, tokenizer).passed


@pytest.mark.parametrize("wrong, words", [
    (without_cache, ["target at most", "feed only the newest token"]),  # right tokens, too much work: the lazy loop
    (lambda *a: cached(*a, pass_cache=False), ["past_key_values"]),
    (lambda *a: cached(*a, stop=False), ["stops once it has produced eos"]),
    (lambda *a: cached(*a, keep_eos=False), ["keeps the eos token"]),
    (lambda *a: cached(*a, with_prompt=True), ["only the new ones"]),
    (lambda *a: cached(*a, extra=-1) if a[2] > 1 else [], ["exactly max_new_tokens"]),
    (lambda m, ids, n, eos=None: m.generate(torch.tensor([ids]), max_new_tokens=n, do_sample=False, eos_token_id=eos, pad_token_id=eos)[0, len(ids):],
     ["never called model(...)"]),
    (appends_to_ids, ["in place"]),
])
def test_cached_generation_mistakes_are_named(hf_model, wrong, words):
    model, tokenizer = hf_model
    failed_with(checks.check_cached_generation(wrong, model, tokenizer), *words)
