"""Lab 09's checks catch real mistakes: each is fed the wrong implementations a learner writes (each must fail
with a message naming the mistake), an unusual but correct implementation (must pass), a function that changes
its input, and a TODO stub (not done). The first failure never shows the next hint step."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
from verdicts import failed_with, todo

from course_utils.checks.evaluation import (
    GSM8K_TARGET,
    HELD_OUT_SEED,
    check_acc_norm,
    check_gsm8k_extract,
    check_score_item,
    check_stderr,
    check_winogrande_partial,
    gsm8k_outputs,
    reference_extract,
)


# ----------------------------------------------------------------------------- 1. acc_norm
def pick_by(score, last_on_tie=False):
    def pick(logprobs, choices):
        values = [score(lp, c) for lp, c in zip(logprobs, choices)]
        return max(range(len(values)), key=lambda i: (values[i], i if last_on_tie else -i))
    return pick


def test_acc_norm_reference_passes_and_todo_is_not_done():
    assert check_acc_norm(pick_by(lambda lp, c: lp / len(c))).passed
    assert check_acc_norm(todo).status == "not done"


def test_acc_norm_unusual_but_correct_passes():
    """NumPy's argmax (first on ties), returning a NumPy integer."""
    def pick(logprobs, choices):
        return np.argmax(np.asarray(logprobs) / np.array([len(c) for c in choices]))
    assert check_acc_norm(pick).passed, check_acc_norm(pick)


@pytest.mark.parametrize("wrong, words", [
    (pick_by(lambda lp, c: lp), ["sum", "acc, not acc_norm"]),
    (pick_by(lambda lp, c: lp / (len(c) + 1)), ["one character more"]),
    (pick_by(lambda lp, c: lp / len(c.split())), ["words"]),
    (pick_by(lambda lp, c: lp / len(c), last_on_tie=True), ["tie", "first"]),
    (lambda logprobs, choices: min(range(len(choices)), key=lambda i: logprobs[i] / len(choices[i])), ["smallest"]),
    (lambda logprobs, choices: max(logprobs[i] / len(choices[i]) for i in range(len(choices))), ["index"]),
])
def test_acc_norm_mistakes_are_named(wrong, words):
    failed_with(check_acc_norm(wrong), *words)


def test_acc_norm_that_changes_its_input_fails():
    def pick(logprobs, choices):
        for i, c in enumerate(choices):
            logprobs[i] /= len(c)
        return max(range(len(logprobs)), key=lambda i: (logprobs[i], -i))
    failed_with(check_acc_norm(pick), "in place")


# ----------------------------------------------------------------------------- 2. standard error
def stderr_with(se, empty_raises=True, accuracy=lambda k, n: k / n):
    def fn(correct):
        n = len(correct)
        if n == 0 and empty_raises:
            raise ValueError("no outcomes")
        k = sum(bool(c) for c in correct)
        p = accuracy(k, n)
        return p, se(p, n)
    return fn


def test_stderr_reference_passes_and_todo_is_not_done():
    assert check_stderr(stderr_with(lambda p, n: math.sqrt(p * (1 - p) / n))).passed
    assert check_stderr(todo).status == "not done"


def test_stderr_unusual_but_correct_passes():
    """NumPy: the population standard deviation of the outcomes over sqrt(n), as a list."""
    def fn(correct):
        if not len(correct):
            raise ValueError("empty")
        x = np.asarray(correct, dtype=float)
        return [x.mean(), x.std(ddof=0) / np.sqrt(x.size)]
    assert check_stderr(fn).passed, check_stderr(fn)


@pytest.mark.parametrize("wrong, words", [
    (stderr_with(lambda p, n: math.sqrt(p * (1 - p) / (n - 1)) if n > 1 else 0.0), ["n - 1"]),
    (stderr_with(lambda p, n: p * (1 - p) / n), ["variance", "square root"]),
    (stderr_with(lambda p, n: math.sqrt(p * (1 - p)) / n), ["divided the square root by n"]),
    (stderr_with(lambda p, n: math.sqrt(p / n)), ["(1 - p)"]),
    (stderr_with(lambda p, n: math.sqrt(p * (1 - p) / n), accuracy=lambda k, n: k // n), ["integer division"]),
    (stderr_with(lambda p, n: math.sqrt(p * (1 - p) / n), empty_raises=False), ["divided by zero"]),
])
def test_stderr_mistakes_are_named(wrong, words):
    failed_with(check_stderr(wrong), *words)


def test_stderr_that_returns_zero_for_no_outcomes_fails():
    def fn(correct):
        if not correct:
            return 0.0, 0.0
        return stderr_with(lambda p, n: math.sqrt(p * (1 - p) / n))(correct)
    failed_with(check_stderr(fn), "no outcomes", "valueerror")


def test_stderr_that_sorts_its_input_fails():
    def fn(correct):
        correct.sort()
        return stderr_with(lambda p, n: math.sqrt(p * (1 - p) / n))(correct)
    failed_with(check_stderr(fn), "in place")


# ----------------------------------------------------------------------------- 3. GSM8K extraction (build and measure)
NUMBER = r"-?\$?\d[\d,]*(?:\.\d+)?"


def tidy(value):
    value = value.replace(",", "").replace("$", "")
    return value.rstrip("0").rstrip(".") if "." in value else value


def lesson_rule(text):
    """The lesson's rule as the exercise used to ask: after "answer is", else the last number (no cutting)."""
    after = re.split(r"answer is", text, flags=re.I)
    found = re.findall(NUMBER, after[-1])[:1] if len(after) > 1 else []
    found = found or re.findall(NUMBER, text)[-1:]
    return tidy(found[0]) if found else None


def test_the_held_out_outputs_are_not_the_ones_the_lab_shows():
    assert HELD_OUT_SEED != 0
    shown = {t for t, gold in gsm8k_outputs(40, seed=0) if gold is not None}  # the few texts without a number repeat
    assert not shown & {t for t, _ in gsm8k_outputs(300, seed=HELD_OUT_SEED)}


def test_the_reference_extractor_reaches_the_target_and_the_lesson_rule_does_not():
    outputs = gsm8k_outputs(300, seed=HELD_OUT_SEED)
    reference = sum(reference_extract(t) == g for t, g in outputs) / len(outputs)
    lazy = sum(lesson_rule(t) == g for t, g in outputs) / len(outputs)
    assert reference >= GSM8K_TARGET > lazy + 0.1, (reference, lazy)


def test_gsm8k_reference_passes_and_todo_is_not_done(capsys):
    assert check_gsm8k_extract(reference_extract).passed
    printed = capsys.readouterr().out
    assert "held-out" in printed and "target 95%" in printed and "reference extractor 100.0%" in printed
    assert check_gsm8k_extract(todo).status == "not done"
    assert check_gsm8k_extract(lambda text: None).status == "not done"


def test_gsm8k_unusual_but_correct_passes():
    """No regular expression for the marker: str.rfind over the markers, Decimal for the number's form."""
    from decimal import Decimal

    def extract(text):
        text = text.split("\nQuestion:")[0]
        cut = max(text.lower().rfind(m) + len(m) if text.lower().rfind(m) >= 0 else -1 for m in ("answer is", "answer:", "####"))
        tail = re.findall(NUMBER, text[cut:]) if cut >= 0 else []
        found = tail[:1] or re.findall(NUMBER, text)[-1:]
        if not found:
            return None
        value = Decimal(found[0].replace(",", "").replace("$", ""))
        return str(value.quantize(Decimal(1))) if value == value.to_integral() else str(value.normalize())
    assert check_gsm8k_extract(extract).passed, check_gsm8k_extract(extract)


@pytest.mark.parametrize("wrong, words", [
    (lambda t: (lambda f: tidy(f[-1]) if f else None)(re.findall(NUMBER, t)), ["answer is", "not the last number"]),
    (lambda t: (lambda v: v.rstrip("0").rstrip(".") if v else None)(reference_extract(t)), ["keeps its zeros"]),
    (lambda t: (lambda f: f[-1].replace("$", "") if f else None)(re.findall(NUMBER, t.split("answer is")[-1])), ["separator"]),
    (lambda t: reference_extract(t.replace("-", "")), ["minus"]),
    (lambda t: (lambda f: f[-1].replace(",", "").replace("$", "") if f else None)(re.findall(NUMBER, t.split("answer is")[-1])),
     ["whole numbers"]),
    (lambda t: reference_extract(t) or "0", ["none"]),
])
def test_gsm8k_edge_case_mistakes_are_named(wrong, words):
    failed_with(check_gsm8k_extract(wrong), *words)


def test_gsm8k_lesson_rule_passes_the_edge_cases_but_misses_the_held_out_target(capsys):
    message = failed_with(check_gsm8k_extract(lesson_rule), "held-out", "target 95%", "reference extractor")
    assert "gold answer is" in message
    assert "your extractor agrees" in capsys.readouterr().out


def test_gsm8k_extractor_that_ignores_hash_markers_misses_the_target():
    def extract(text):  # cuts at "Question:" but knows only "answer is"
        return lesson_rule(text.split("\nQuestion:")[0])
    failed_with(check_gsm8k_extract(extract), "held-out", "target")


# ----------------------------------------------------------------------------- 4. WinoGrande partial scoring
def partial_reference(sentence, option1, option2):
    i = sentence.index("_")
    return (sentence[:i] + option1, sentence[:i] + option2), " " + sentence[i + 1:].strip()


def test_winogrande_reference_passes_and_todo_is_not_done():
    assert check_winogrande_partial(partial_reference).passed
    assert check_winogrande_partial(todo).status == "not done"


def test_winogrande_unusual_but_correct_passes():
    """str.partition instead of an index, lists instead of tuples."""
    def partial(sentence, option1, option2):
        before, _, after = sentence.partition("_")
        return [[before + o for o in (option1, option2)], " " + after.strip()]
    assert check_winogrande_partial(partial).passed, check_winogrande_partial(partial)


@pytest.mark.parametrize("wrong, words", [
    (lambda s, a, b: (partial_reference(s, a, b)[0], partial_reference(s, a, b)[1].lstrip()), ["one space"]),
    (lambda s, a, b: (partial_reference(s, a, b)[0], " " + s.split("_")[1]), ["strip"]),
    (lambda s, a, b: ((s.replace("_", a), s.replace("_", b)), partial_reference(s, a, b)[1]), ["before '_'", "not the whole sentence"]),
    (lambda s, a, b: tuple(reversed(partial_reference(s, a, b)[0])) and (partial_reference(s, b, a)[0], partial_reference(s, a, b)[1]),
     ["wrong order"]),
    (lambda s, a, b: ((s.split("_")[0] + " " + a, s.split("_")[0] + " " + b), partial_reference(s, a, b)[1]), ["added a space"]),
    (lambda s, a, b: ((s.split("_")[0], s.split("_")[0]), " " + a + s.split("_")[1]), ["into the *context*"]),
])
def test_winogrande_mistakes_are_named(wrong, words):
    failed_with(check_winogrande_partial(wrong), *words)


# ----------------------------------------------------------------------------- 5. score one item (the real model)
def scorer(read=lambda logp, ctx, cont: [logp[len(ctx) - 1 + j, t].item() for j, t in enumerate(cont)], combine=sum, norm=torch.log_softmax):
    def score_item(model, tokenizer, context, choices):
        encode = lambda s: tokenizer.encode(s, add_special_tokens=False)  # noqa: E731
        ctx = encode(context)
        out = []
        for choice in choices:
            cont = encode(context + choice)[len(ctx):]
            with torch.inference_mode():
                logits = model(torch.tensor([ctx + cont])).logits[0].double()
            out.append(combine(read(norm(logits, dim=-1), ctx, cont)))
        return out
    return score_item


def test_score_item_reference_passes_and_todo_is_not_done(hf_model):
    model, tokenizer = hf_model
    assert check_score_item(scorer(), model, tokenizer).passed
    assert check_score_item(todo, model, tokenizer).status == "not done"


def test_score_item_unusual_but_correct_passes(hf_model):
    """All choices in one padded batch, gathering the log-probabilities with torch.gather; returns a tensor."""
    model, tokenizer = hf_model

    def score_item(model, tokenizer, context, choices):
        encode = lambda s: tokenizer.encode(s, add_special_tokens=False)  # noqa: E731
        ctx = encode(context)
        conts = [encode(context + c)[len(ctx):] for c in choices]
        width = len(ctx) + max(map(len, conts))
        ids = torch.tensor([ctx + c + [0] * (width - len(ctx) - len(c)) for c in conts])
        with torch.inference_mode():
            logp = torch.log_softmax(model(ids).logits.double(), dim=-1)
        totals = []
        for row, cont in enumerate(conts):
            positions = torch.arange(len(ctx) - 1, len(ctx) - 1 + len(cont))
            totals.append(logp[row, positions].gather(1, torch.tensor(cont)[:, None]).sum())
        return torch.stack(totals)
    assert check_score_item(score_item, model, tokenizer).passed, check_score_item(score_item, model, tokenizer)


@pytest.mark.parametrize("kind, words", [
    ("shifted", ["one position too late"]),
    ("mean", ["averaged"]),
    ("probability", ["probabilities (softmax)"]),
    ("logits", ["raw logits"]),
    ("last", ["only the last token"]),
])
def test_score_item_mistakes_are_named(hf_model, kind, words):
    model, tokenizer = hf_model
    wrong = {
        "shifted": scorer(read=lambda logp, ctx, cont: [logp[min(len(ctx) + j, logp.shape[0] - 1), t].item() for j, t in enumerate(cont)]),
        "mean": scorer(combine=lambda xs: sum(xs) / len(xs)),
        "probability": scorer(norm=torch.softmax),
        "logits": scorer(norm=lambda x, dim: x),
        "last": scorer(combine=lambda xs: xs[-1]),
    }[kind]
    failed_with(check_score_item(wrong, model, tokenizer), *words)


def test_score_item_that_changes_the_choices_fails(hf_model):
    model, tokenizer = hf_model

    def score_item(model, tokenizer, context, choices):
        out = scorer()(model, tokenizer, context, choices)
        choices.reverse()
        return out
    failed_with(check_score_item(score_item, model, tokenizer), "in place")
