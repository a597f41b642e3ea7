"""Lab 03's checks catch real mistakes: each is fed the wrong implementations a learner writes (each must fail
with a message naming the mistake), an unusual but correct implementation (must pass), a function that changes
its input, and a TODO stub (not done). The last exercise is measured on held-out words with the real model."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
import torch
from verdicts import failed_with, todo

import course_utils.checks.sampling as sampling_checks
from course_utils.checks.sampling import (
    check_few_shot,
    check_opposites_prompt,
    check_repetition_penalty,
    check_temperature_softmax,
    check_top_k,
    check_top_p,
    reference_opposite_prompt,
)
from course_utils.prompting import few_shot_messages
from course_utils.sampling import apply_repetition_penalty, top_k_filter, top_p_filter


def first_failure_hides_more(verdict, more_words):
    assert more_words not in verdict.message, verdict.message


def test_docstring_examples():
    assert doctest.testmod(sampling_checks).failed == 0


REAL = torch.randn(2000, generator=torch.Generator().manual_seed(0)) * 3  # stands in for real logits


# ----------------------------------------------------------------------------- temperature
def softmax_by_hand(logits, t):
    z = logits / t
    e = torch.exp(z - z.max())
    return e / e.sum()


@pytest.mark.parametrize("wrong, words", [
    (lambda x, t: softmax_by_hand(x * t * t, t), ["multiplied", "by t"]),
    (lambda x, t: torch.exp(x / t) / torch.exp(x / t).sum(), ["inf/nan", "overflow"]),
    (lambda x, t: torch.exp(x / t - (x / t).max()), ["add up", "divide"]),
    (lambda x, t: softmax_by_hand(x, 1.0), ["temperature is not used"]),
    (lambda x, t: softmax_by_hand(x.div_(t), 1.0), ["in place"]),
])
def test_temperature_mistakes_are_named(wrong, words):
    verdict = check_temperature_softmax(wrong, REAL)
    failed_with(verdict, *words)
    first_failure_hides_more(verdict, "z.max()")


def test_temperature_reference_unusual_and_todo():
    assert check_temperature_softmax(softmax_by_hand, REAL).passed
    numpy_version = lambda x, t: (lambda e: e / e.sum())(np.exp(x.numpy() / t - (x.numpy() / t).max()))  # noqa: E731
    assert check_temperature_softmax(numpy_version, REAL).passed, check_temperature_softmax(numpy_version, REAL)
    assert check_temperature_softmax(lambda x, t: torch.log_softmax(x / t, -1).exp().tolist()).passed  # a list, log-softmax
    assert check_temperature_softmax(todo).status == "not done"


# ----------------------------------------------------------------------------- top-k
def top_k_by_index(logits, k):
    """Keeps exactly k positions: ties with the k-th value are dropped."""
    if k <= 0 or k >= len(logits):
        return logits
    out = torch.full_like(logits, float("-inf"))
    idx = torch.topk(logits, k).indices
    out[idx] = logits[idx]
    return out


def top_k_in_place(logits, k):
    if 0 < k < len(logits):
        logits.masked_fill_(logits < torch.topk(logits, k).values[-1], float("-inf"))
    return logits


@pytest.mark.parametrize("wrong, words", [
    (lambda x, k: top_k_filter(-x, k).neg() if 0 < k < len(x) else x, ["smallest"]),
    (lambda x, k: x.masked_fill(x < torch.topk(x, k).values[-1], 0.0) if 0 < k < len(x) else x, ["-inf", "not 0"]),
    (top_k_by_index, ["tied"]),
    (lambda x, k: x.masked_fill(x <= torch.sort(x, descending=True).values[k], float("-inf")) if 0 < k < len(x) else x, ["tied"]),
    (lambda x, k: x.masked_fill(x < torch.topk(x, k + 1).values[-1], float("-inf")) if 0 < k < len(x) - 1 else x, ["off-by-one"]),
    (lambda x, k: x.masked_fill(x < torch.topk(x, max(k, 1)).values[-1], float("-inf")) if k < len(x) else x, ["k=0", "off"]),
    (top_k_in_place, ["in place"]),
])
def test_top_k_mistakes_are_named(wrong, words):
    verdict = check_top_k(wrong, REAL)
    failed_with(verdict, *words)
    first_failure_hides_more(verdict, "masked_fill")


def test_top_k_unusual_and_todo():
    assert check_top_k(top_k_filter, REAL).passed

    def by_sorting(logits, k, fill=float("-inf")):  # numpy, a sort instead of topk, an extra argument
        x = np.asarray(logits, dtype=np.float64)
        if k <= 0 or k >= x.size:
            return x
        kth = np.sort(x)[::-1][k - 1]
        return np.where(x >= kth, x, fill)
    assert check_top_k(by_sorting, REAL).passed, check_top_k(by_sorting, REAL)
    assert check_top_k(todo).status == "not done"


# ----------------------------------------------------------------------------- top-p
def top_p_with(cut):
    def top_p(logits, p):
        if p >= 1.0:
            return logits
        sorted_logits, order = torch.sort(logits, descending=True)
        probs = torch.softmax(sorted_logits, -1)
        drop_sorted = cut(probs, p)
        drop = torch.zeros_like(drop_sorted)
        drop[order] = drop_sorted
        return logits.masked_fill(drop, float("-inf"))
    return top_p


def top_p_unmapped(logits, p):
    if p >= 1.0:
        return logits
    sorted_logits, _ = torch.sort(logits, descending=True)
    probs = torch.softmax(sorted_logits, -1)
    return logits.masked_fill(probs.cumsum(-1) - probs >= p, float("-inf"))  # sorted decisions, original positions


@pytest.mark.parametrize("wrong, words", [
    (top_p_with(lambda probs, p: probs.cumsum(-1) >= p), ["to or past"]),
    (top_p_with(lambda probs, p: probs.cumsum(-1) - probs > p), ["stop as soon"]),
    (top_p_unmapped, ["original positions"]),
])
def test_top_p_mistakes_are_named(wrong, words):
    verdict = check_top_p(wrong, REAL)
    failed_with(verdict, *words)
    first_failure_hides_more(verdict, "cumsum(0)")


def test_top_p_unusual_in_place_and_todo():
    assert check_top_p(top_p_filter, REAL).passed

    def loop(logits, p):  # plain Python over a ranking, numpy out
        probs = torch.softmax(logits, -1).tolist()
        ranked = sorted(range(len(probs)), key=lambda i: -probs[i])
        keep, total = set(), 0.0
        for i in ranked:
            if total >= p and keep:
                break
            keep.add(i)
            total += probs[i]
        return np.array([v if i in keep else -np.inf for i, v in enumerate(logits.tolist())])
    assert check_top_p(loop, REAL).passed, check_top_p(loop, REAL)

    def in_place(logits, p):
        out = top_p_filter(logits, p)
        logits.copy_(out)
        return logits
    failed_with(check_top_p(in_place, REAL), "in place")
    assert check_top_p(todo).status == "not done"


# ----------------------------------------------------------------------------- repetition penalty
def penalty_with(rule, once=True):
    def penalty(logits, previous_ids, p):
        out = logits.clone()
        for i in (set(previous_ids) if once else previous_ids):
            out[i] = rule(out[i], p)
        return out
    return penalty


@pytest.mark.parametrize("wrong, words", [
    (penalty_with(lambda v, p: v / p), ["negative", "goes *up*"]),
    (penalty_with(lambda v, p: v / p if v > 0 else v * p, once=False), ["penalised once"]),
    (lambda x, ids, p: apply_repetition_penalty(x, ids, p) - (x != x).float() + (torch.arange(len(x)) == len(x) - 1).float() * 0.1,
     ["never seen", "keep"]),
    (lambda x, ids, p: x.clone().index_put_((torch.tensor(list(set(ids)), dtype=torch.long) % 10,),
                                            apply_repetition_penalty(x, ids, p)[torch.tensor(list(set(ids)), dtype=torch.long)])
     if ids else x, ["penalty("]),  # two-digit ids cut to their last digit
])
def test_repetition_penalty_mistakes_are_named(wrong, words):
    verdict = check_repetition_penalty(wrong)
    failed_with(verdict, *words)
    first_failure_hides_more(verdict, "logits.clone()")


def test_repetition_penalty_unusual_in_place_and_todo():
    def vectorised(logits, previous_ids, penalty, *, fill=None):  # torch.where over a mask, an unused keyword
        seen = torch.zeros_like(logits, dtype=torch.bool)
        seen[list(previous_ids)] = True
        return torch.where(seen & (logits > 0), logits / penalty, torch.where(seen, logits * penalty, logits))
    assert check_repetition_penalty(vectorised).passed, check_repetition_penalty(vectorised)

    def in_place(logits, previous_ids, penalty):
        for i in set(previous_ids):
            logits[i] = logits[i] / penalty if logits[i] > 0 else logits[i] * penalty
        return logits
    failed_with(check_repetition_penalty(in_place), "in place")
    assert check_repetition_penalty(todo).status == "not done"


# ----------------------------------------------------------------------------- few-shot messages
def few_shot_ok(examples, query, system=None):
    messages = [{"role": "system", "content": system}] if system is not None else []
    for x, y in examples:
        messages += [{"role": "user", "content": x}, {"role": "assistant", "content": y}]
    return messages + [{"role": "user", "content": query}]


@pytest.mark.parametrize("wrong, words", [
    (lambda ex, q, system=None: [{"role": "system", "content": system or "You are helpful."}] + few_shot_ok(ex, q)[0:], ["system=none"]),
    (lambda ex, q, system=None: few_shot_ok([(y, x) for x, y in ex], q, system), ["contents"]),
    (lambda ex, q, system=None: few_shot_ok(ex, q, system)[:-1] if ex else few_shot_ok(ex, q, system), ["roles"]),
    (lambda ex, q, system=None: [{"role": "user", "content": "\n".join(f"{x} -> {y}" for x, y in ex) + "\n" + q}], ["roles"]),
    (lambda ex, q, system=None: [("user", q)], ["list of"]),
])
def test_few_shot_mistakes_are_named(wrong, words):
    verdict = check_few_shot(wrong)
    failed_with(verdict, *words)
    first_failure_hides_more(verdict, "'role': 'user', 'content': input")


def test_few_shot_unusual_in_place_and_todo():
    def recursive(examples, query, system=None, extra=()):  # recursion, tuples in, an extra argument
        if not examples:
            head = [{"role": "system", "content": system}] if system is not None else []
            return head + [{"role": "user", "content": query}]
        rest = recursive(examples[1:], query, system)
        cut = 1 if system is not None else 0
        x, y = examples[0]
        return rest[:cut] + [{"role": "user", "content": x}, {"role": "assistant", "content": y}] + rest[cut:]
    assert check_few_shot(recursive).passed, check_few_shot(recursive)
    assert check_few_shot(few_shot_messages).passed

    def appends(examples, query, system=None):
        examples.append((query, ""))
        return few_shot_ok(examples[:-1], query, system)
    failed_with(check_few_shot(appends), "in place")
    assert check_few_shot(todo).status == "not done"


# ----------------------------------------------------------------------------- opposites prompt (measured)
@pytest.fixture(scope="module")
def model_and_tokenizer(hf_model):
    return hf_model


def test_opposites_reference_prompt_reaches_the_target(model_and_tokenizer):
    verdict = check_opposites_prompt(reference_opposite_prompt, *model_and_tokenizer)
    assert verdict.passed, verdict
    assert "target 85%" in verdict.message and "reference" in verdict.message


def test_opposites_unusual_prompt_passes(model_and_tokenizer):
    """Arrow lines with other example words and an instruction: another format that also works."""
    shots = [("first", "last"), ("in", "out"), ("up", "down"), ("good", "bad"), ("win", "lose")]
    prompt = lambda w: "Opposites:\n" + "".join(f"{a} -> {b}\n" for a, b in shots) + f"{w} ->"  # noqa: E731
    assert check_opposites_prompt(prompt, *model_and_tokenizer).passed, check_opposites_prompt(prompt, *model_and_tokenizer)


@pytest.mark.parametrize("lazy, words", [
    (lambda w: f"The opposite of {w} is", ["target 85%", "reference", "missed"]),  # zero-shot: the lazy prompt misses
    (lambda w: f"{w} ->", ["target 85%", "missed"]),
    (lambda w: f"hot -> cold\nbig -> small\n{w} ->", ["held-out pair"]),  # tuned on the held-out words
    (lambda w: "Word: up\nOpposite: down\n\nWord: good\nOpposite: bad\n\nWord:\nOpposite:", ["does not contain"]),
    (lambda w: ["Word:", w], ["a str"]),
])
def test_opposites_lazy_or_leaky_prompts_fail(model_and_tokenizer, lazy, words):
    verdict = check_opposites_prompt(lazy, *model_and_tokenizer)
    failed_with(verdict, *words)
    first_failure_hides_more(verdict, "no trailing space")


def test_opposites_todo_is_not_done(model_and_tokenizer):
    assert check_opposites_prompt(todo, *model_and_tokenizer).status == "not done"
