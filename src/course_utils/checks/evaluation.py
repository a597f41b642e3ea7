"""Checks for lab 09 (evaluation). Each ``check_*`` takes the learner's function and returns a
:class:`~course_utils.checks.Verdict`; none of them raises.

>>> def todo(*args):
...     raise NotImplementedError
>>> check_acc_norm(todo).status
'not done'
>>> check_acc_norm(lambda logprobs, choices: max(range(len(choices)), key=lambda i: logprobs[i] / len(choices[i]))).status
'passed'
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from . import Verdict, run_check


# ----------------------------------------------------------------------------- exercise 1
def check_acc_norm(acc_norm_pick: Callable[..., Any]) -> Verdict:
    """``acc_norm_pick(logprobs, choices) -> index``: the choice with the largest log-probability per
    character of the answer text (lm-evaluation-harness's acc_norm); the first one on a tie.
    ``choices`` are the answers as the data set gives them, without the space that joins each to
    the question: lm-eval divides by ``len(choice)`` of exactly these strings."""

    def test(fn: Callable[..., Any]) -> bool | str:
        cases = [
            ([-6.0, -9.0], ["Paris", "the capital city of France"], 1),  # the sum says 0, per char says 1
            ([-2.0, -8.0, -3.0], ["a", "bb", "cc"], 2),  # counting a joining space as well would say 0
            ([-4.0, -4.0], ["four", "five"], 0),  # tie: the first
            ([-12.0, -3.0, -30.0], ["x x x x x x", "y", "z" * 39], 2),
        ]
        for logprobs, choices, want in cases:
            got = fn(list(logprobs), list(choices))
            if got is None:
                return "the function returned None"
            if int(got) != want:
                with_space = max(range(len(logprobs)), key=lambda i: (logprobs[i] / (len(choices[i]) + 1), -i))
                if int(got) == with_space:
                    return f"for logprobs {logprobs} and choices {choices} you picked {got}: divide by len(choice) itself, lm-eval does not count the space before the answer"
                sums = int(max(range(len(logprobs)), key=lambda i: (logprobs[i], -i)))
                if int(got) == sums:
                    return f"for logprobs {logprobs} and choices {choices} you picked {got}, the largest *sum*: that is acc, not acc_norm"
                return f"for logprobs {logprobs} and choices {choices} expected {want}, got {got}"
        return True

    return run_check("acc_norm", test, acc_norm_pick, hint="divide each log-probability by len(choice), then take the index of the largest")


# ----------------------------------------------------------------------------- exercise 2
def check_stderr(stderr_fn: Callable[..., Any]) -> Verdict:
    """``stderr_fn(correct) -> (accuracy, standard error)`` from a list of 0/1 (or bool) outcomes,
    with the binomial standard error sqrt(p(1-p)/n)."""

    def test(fn: Callable[..., Any]) -> bool | str:
        cases = [([1, 0] * 50, 0.5, 0.05), ([True] * 3 + [False] * 7, 0.3, math.sqrt(0.21 / 10)), ([1] * 8, 1.0, 0.0)]
        for outcomes, p, se in cases:
            out = fn(list(outcomes))
            if not isinstance(out, tuple | list) or len(out) != 2:
                return "return a pair (accuracy, standard error)"
            acc, err = float(out[0]), float(out[1])
            if not math.isclose(acc, p, abs_tol=1e-9):
                return f"accuracy of {len(outcomes)} outcomes with {sum(outcomes)} right should be {p}, got {acc}"
            if math.isclose(err, math.sqrt(p * (1 - p) / (len(outcomes) - 1)), abs_tol=1e-9) and p not in (0.0, 1.0):
                return "you divided by n - 1 (the sample version): the binomial standard error divides by n"
            if not math.isclose(err, se, abs_tol=1e-9):
                return f"standard error for p={p}, n={len(outcomes)} should be {se:.4f}, got {err:.4f}"
        return True

    return run_check("standard error", test, stderr_fn, hint="p = sum(correct) / n; se = math.sqrt(p * (1 - p) / n)")


# ----------------------------------------------------------------------------- exercise 3
GSM8K_CASES = [
    ("Janet sells 16 - 3 - 4 = 9 duck eggs a day. She makes 9 * 2 = $18 every day. So the answer is 18.", "18"),
    ("He pays 3 * $1,200 = $3,600. So the answer is 3600.", "3600"),
    ("The total is 4 + 5 = 9 apples, then 9 - 2 = 7", "7"),
    ("So the answer is $1,250.", "1250"),
    ("The temperature fell by 12 degrees, so the answer is -4.", "-4"),
    ("She ran 2.50 miles. So the answer is 2.5", "2.5"),
    ("I do not know.", None),
]


def check_gsm8k_extract(extract: Callable[[str], Any]) -> Verdict:
    """``extract(text) -> str | None``: the final number of a GSM8K solution, as a plain string
    ("1,250" -> "1250", "$18" -> "18", "2.50" -> "2.5"), or None when there is no number."""

    def test(fn: Callable[[str], Any]) -> bool | str:
        for text, want in GSM8K_CASES:
            got = fn(text)
            if want is None:
                if got is not None:
                    return f"{text!r} holds no number: return None, got {got!r}"
                continue
            if got is None or str(got) != want:
                return f"from {text!r} expected {want!r}, got {got!r}"
        return True

    return run_check("GSM8K answer extraction", test, extract,
                     hint='take the number after "answer is" if there is one, else the last number; drop "," and "$"; strip trailing zeros after a "."')


# ----------------------------------------------------------------------------- exercise 4
def check_winogrande_partial(partial: Callable[[str, str, str], Any]) -> Verdict:
    """``partial(sentence, option1, option2) -> ((context1, context2), continuation)``: WinoGrande's
    partial scoring — each option replaces "_" in the context; the shared rest of the sentence, with
    a leading space, is the continuation."""

    def test(fn: Callable[[str, str, str], Any]) -> bool | str:
        from ..evaluation import winogrande

        cases = [("Sarah was a much better surgeon than Maria so _ always got the easier cases.", "Sarah", "Maria",
                  (("Sarah was a much better surgeon than Maria so Sarah", "Sarah was a much better surgeon than Maria so Maria"),
                   " always got the easier cases."))]
        for sentence, o1, o2, want in cases:
            got = fn(sentence, o1, o2)
            if not isinstance(got, tuple | list) or len(got) != 2 or len(got[0]) != 2:
                return "return ((context with option 1, context with option 2), continuation)"
            contexts, cont = (tuple(got[0]), got[1])
            if contexts != want[0]:
                return f"contexts should be {want[0]}, got {contexts}: the text before '_' plus the option"
            if cont != want[1]:
                return f"continuation should be {want[1]!r}, got {cont!r}: the text after '_', stripped, with one leading space"
        item = winogrande(limit=3)[2]
        return True if item.choices[0] == item.choices[1] else "the library item is inconsistent"

    return run_check("WinoGrande partial scoring", test, partial, hint="i = sentence.index('_'); contexts = sentence[:i] + option; continuation = ' ' + sentence[i + 1:].strip()")


# ----------------------------------------------------------------------------- exercise 5
def check_score_item(score_item: Callable[..., Any], model: Any, tokenizer: Any) -> Verdict:
    """``score_item(model, tokenizer, context, choices) -> list[float]``: the summed log-probability of
    each choice as a continuation of the context, like the lesson's ``choice_logprob``. Compared with
    ``course_utils.evaluation.score_multiple_choice`` on two real ARC-Easy questions."""

    def test(fn: Callable[..., Any]) -> bool | str:
        from ..evaluation import load_task, score_multiple_choice

        items = load_task("arc_easy", limit=2).items
        answers = [fn(model, tokenizer, item.context, list(item.choices)) for item in items]  # first: a TODO stops here
        want = score_multiple_choice(model, items, tokenizer)
        for item, ref, got in zip(items, want.items, answers):
            if got is None or len(got) != len(item.choices):
                return f"return one log-probability per choice ({len(item.choices)})"
            for c, (g, w) in enumerate(zip(got, ref.logprobs)):
                if abs(float(g) - w) > 5e-3:
                    if abs(float(g) - w) > 0 and float(g) > 0:
                        return "log-probabilities are <= 0: use log_softmax, not softmax or raw logits"
                    return f"choice {c} of {item.id}: expected {w:.3f}, got {float(g):.3f}. The token at position i is predicted by the logits at position i - 1"
        return True

    return run_check("score one item", test, score_item, hint="logits at positions len(ctx)-1 ... len(ctx)+len(cont)-2 predict the continuation tokens")
