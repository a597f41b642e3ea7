"""Checks for lab 09 (evaluation): acc_norm, a standard error, GSM8K answer extraction measured on
held-out model outputs, WinoGrande's partial scoring, one item scored with the real model.

Each ``check_*`` takes the learner's function and returns a :class:`~course_utils.checks.Verdict`;
none of them raises. The checks call the learner's function through
:func:`~course_utils.checks.call_unchanged` (changing an input list in place fails), use inputs
away from the easy ones (two-digit lengths, ties that are not at index 0, counts that do not
divide evenly) and compare a wrong result with what the usual mistakes give, so the message names
the mistake. Exercise 3 builds and measures: the extractor is scored on model outputs the check
writes itself (:func:`gsm8k_outputs` with a seed the lab never shows), beside the target and the
reference extractor's score.

>>> def todo(*args):
...     raise NotImplementedError
>>> check_acc_norm(todo).status
'not done'
>>> check_acc_norm(lambda logprobs, choices: max(range(len(choices)), key=lambda i: logprobs[i] / len(choices[i]))).status
'passed'
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any

from . import Mistake, NotDone, Verdict, call_unchanged, run_check
from .gsm8k_outputs import gsm8k_outputs, reference_extract

LESSON = "lesson 09"


def _index(value: Any, n: int) -> int:
    """The learner's answer as an index from 0 to n - 1 (ints, NumPy or 0-d torch integers, whole floats)."""
    import operator

    if value is None:
        raise NotDone
    try:
        if isinstance(value, bool):
            raise TypeError
        i = operator.index(value)
    except TypeError:
        if not (isinstance(value, float) and value.is_integer()):
            raise Mistake(f"return the index of the chosen answer (a whole number from 0 to {n - 1}), got {value!r:.40}") from None
        i = int(value)
    if not 0 <= i < n:
        raise Mistake(f"return an index from 0 to {n - 1}, got {i}")
    return i


# ----------------------------------------------------------------------------- exercise 1
def _pick(scores: list[float]) -> int:
    """The first index of the largest score (ties: the first)."""
    return max(range(len(scores)), key=lambda i: (scores[i], -i))


ACC_NORM_CASES = [
    ([-6.0, -9.0], ["Paris", "the capital city of France"]),  # the sum says 0, per character 1
    ([-2.0, -8.0, -3.0], ["a", "bb", "cc"]),  # counting a joining space as well would say 0
    ([-4.0, -4.0], ["four", "five"]),  # a tie: the first
    ([-12.0, -3.0, -30.0], ["x x x x x x", "y", "z" * 39]),
    ([-9.0, -18.0, -18.0, -40.0], ["nine", "a longer one", "twelve chars", "the longest of all four answers"]),  # a tie at 1 and 2
    ([-21.0, -10.5], ["twenty-one chars long", "ten chars!"]),  # two-digit lengths: len + 1 picks the other
    ([-5.0, -12.0, -30.0], ["a cat", "a grey rabbit", "an enormous elephant, a hippo"]),  # words, tokens and characters disagree
]


def _acc_norm_variants(logprobs: list[float], choices: list[str]) -> list[tuple[int, str]]:
    n = range(len(choices))
    last = lambda s: max(n, key=lambda i: (s[i], i))  # noqa: E731
    per_char = [lp / len(c) for lp, c in zip(logprobs, choices)]
    return [
        (_pick([lp / (len(c) + 1) for lp, c in zip(logprobs, choices)]),
         "you counted one character more than the answer has (the joining space?): lm-eval divides by len(choice) of the text as given"),
        (_pick(list(logprobs)), "you picked the largest *sum* of log-probabilities: that is acc, not acc_norm"),
        (_pick([lp / max(len(c.split()), 1) for lp, c in zip(logprobs, choices)]),
         "you divided by the number of words; acc_norm divides by the number of characters"),
        (last(per_char), "on a tie you returned the last of the tied answers; the first one wins"),
        (min(n, key=lambda i: per_char[i]), "you picked the *smallest* log-probability per character; the best answer has the largest (least negative)"),
        (_pick([lp * len(c) for lp, c in zip(logprobs, choices)]), "you multiplied by the length; divide by it"),
    ]


def check_acc_norm(acc_norm_pick: Callable[..., Any]) -> Verdict:
    """``acc_norm_pick(logprobs, choices) -> index``: the choice with the largest log-probability per
    character of the answer text (lm-evaluation-harness's acc_norm); the first one on a tie.
    ``choices`` are the answers as the data set gives them, without the space that joins each to
    the question: lm-eval divides by ``len(choice)`` of exactly these strings."""

    def test(fn: Callable[..., Any]) -> bool | str:
        got = [_index(call_unchanged(fn, list(lp), list(ch)), len(ch)) for lp, ch in ACC_NORM_CASES]
        want = [_pick([lp / len(c) for lp, c in zip(logprobs, choices)]) for logprobs, choices in ACC_NORM_CASES]
        if got == want:
            return True
        first = next(k for k, (g, w) in enumerate(zip(got, want)) if g != w)
        logprobs, choices = ACC_NORM_CASES[first]
        where = f"for logprobs {logprobs} and choices {choices} you picked {got[first]}, expected {want[first]}"
        variants = [_acc_norm_variants(lp, ch) for lp, ch in ACC_NORM_CASES]
        for v, (_, message) in enumerate(variants[0]):
            if all(case[v][0] == g for case, g in zip(variants, got)):  # this mistake explains every answer
                return f"{where}: {message}"
        return where

    return run_check("acc_norm", test, acc_norm_pick, hint=f"{LESSON}, section 2 (acc_norm from scratch) and section 3 (the same answers as lm-evaluation-harness): what acc_norm divides by",
                     more="per_char = [lp / len(c) for lp, c in zip(logprobs, choices)]; the index of the largest, the first on a tie")


# ----------------------------------------------------------------------------- exercise 2
def check_stderr(stderr_fn: Callable[..., Any]) -> Verdict:
    """``stderr_fn(correct) -> (accuracy, standard error)`` from a list of 0/1 (or bool) outcomes,
    with the binomial standard error sqrt(p(1-p)/n); an empty list raises ValueError."""

    def test(fn: Callable[..., Any]) -> bool | str:
        rng = random.Random(9)
        cases = [[1, 0] * 50, [True] * 3 + [False] * 7, [1] * 8, [0] * 5, [1] * 23 + [0] * 14,
                 [rng.random() < 0.7 for _ in range(61)], [1]]
        for outcomes in cases:
            out = call_unchanged(fn, list(outcomes))
            if out is None:
                raise NotDone
            if not isinstance(out, tuple | list) or len(out) != 2:
                return "return a pair (accuracy, standard error)"
            acc, err = float(out[0]), float(out[1])
            n, k = len(outcomes), sum(bool(x) for x in outcomes)
            p = k / n
            where = f"with {k} right of {n}"
            if not math.isclose(acc, p, abs_tol=1e-9):
                if math.isclose(acc, k // n, abs_tol=1e-9) or math.isclose(acc, round(p, 2), abs_tol=1e-12):
                    return f"{where} the accuracy should be {p:.4f}, got {acc}: integer division (//) or rounding loses the fraction"
                return f"{where} the accuracy should be {p:.4f}, got {acc}"
            se = math.sqrt(p * (1 - p) / n)
            if math.isclose(err, se, abs_tol=1e-9):
                continue
            for wrong, message in (
                (math.sqrt(p * (1 - p) / (n - 1)) if n > 1 else -1.0, "you divided by n - 1 (the sample version): the binomial standard error divides by n"),
                (p * (1 - p) / n, "that is the variance p(1-p)/n; the standard error is its square root"),
                (math.sqrt(p * (1 - p)) / n, "you divided the square root by n; divide p(1-p) by n, then take the square root"),
                (math.sqrt(p / n), "the standard error is sqrt(p (1 - p) / n): the (1 - p) factor is missing"),
                (math.sqrt(p * (1 - p)), "the standard error shrinks with more questions: divide p(1-p) by n before the square root"),
            ):
                if math.isclose(err, wrong, abs_tol=1e-9):
                    return f"{where}: {message}"
            return f"{where} the standard error should be {se:.4f}, got {err:.4f}"
        try:
            fn([])
        except ValueError:
            return True
        except ZeroDivisionError:
            return "with no outcomes at all your function divided by zero: check for an empty list first and raise ValueError"
        return "with no outcomes at all there is no accuracy: raise ValueError, do not return a number"

    return run_check("standard error", test, stderr_fn, hint=f"{LESSON}, section 4: the error bar of an accuracy on n questions",
                     more="p = sum(correct) / n; se = math.sqrt(p * (1 - p) / n)")


# ----------------------------------------------------------------------------- exercise 3
GSM8K_CASES = [  # (text, the answer, what a wrong answer here means)
    ("Janet sells 16 - 3 - 4 = 9 duck eggs a day. She makes 9 * 2 = $18 every day. So the answer is 18.", "18", ""),
    ("He pays 3 * $1,200 = $3,600. So the answer is 3600.", "3600", "a whole number keeps its zeros: only zeros after a decimal point go"),
    ("The total is 4 + 5 = 9 apples, then 9 - 2 = 7", "7", "with no \"answer is\" take the last number"),
    ("So the answer is $1,250.", "1250", "drop the thousands separator and the $"),
    ("The temperature fell by 12 degrees, so the answer is -4.", "-4", "keep the minus sign"),
    ("She ran 2.50 miles. So the answer is 2.5", "2.5", ""),
    ("Each box holds 2.50 kg, so 4 boxes hold 10.00 kg. The answer is 10.00", "10", "18.0 and 10.00 are whole numbers: no decimal point left"),
    ("She saves 25 * 4 = 100 dollars. So the answer is 100.", "100", "a whole number keeps its zeros: only zeros after a decimal point go"),
    ("So the answer is 18. It took me 3 steps to get there.", "18", "take the number right after \"answer is\", not the last number of the text"),
    ("I do not know.", None, "a text without a number has no answer: return None"),
]


HELD_OUT_SEED = 9009  # the lab shows gsm8k_outputs(seed=0); the check measures on outputs from this seed
GSM8K_TARGET = 0.95


def _agreement(fn: Callable[[str], Any], outputs: list[tuple[str, str | None]]) -> tuple[float, list[tuple[str, Any, Any]]]:
    misses = []
    for text, gold in outputs:
        got = fn(text)
        got = None if got is None else str(got)
        if got != gold:
            misses.append((text, gold, got))
    return 1 - len(misses) / len(outputs), misses


def check_gsm8k_extract(extract: Callable[[str], Any], n_held_out: int = 300, target: float = GSM8K_TARGET) -> Verdict:
    """``extract(text) -> str | None``: the final number of a GSM8K solution, as a plain string
    ("1,250" -> "1250", "$18" -> "18", "2.50" -> "2.5"), or None when there is no number.

    First the edge cases above (each failure names its mistake), then the measurement: agreement
    with the gold answer on ``n_held_out`` model outputs the check writes with a seed of its own,
    printed beside the target and the reference extractor's agreement."""
    from ..evaluation import extract_number

    def test(fn: Callable[[str], Any]) -> bool | str:
        for text, want, why in GSM8K_CASES:
            got = fn(text)
            if got is None and want is not None and text == GSM8K_CASES[0][0]:
                raise NotDone  # a stub that returns None
            if (None if got is None else str(got)) != want:
                return f"from {text!r} expected {want!r}, got {got!r}" + (f": {why}" if why else "")
        outputs = gsm8k_outputs(n_held_out, seed=HELD_OUT_SEED)
        yours, misses = _agreement(fn, outputs)
        reference, _ = _agreement(reference_extract, outputs)
        lesson, _ = _agreement(extract_number, outputs)
        report = (f"on {n_held_out} held-out model outputs your extractor agrees with the gold answer on {yours:.1%} "
                  f"(target {target:.0%}; the reference extractor {reference:.1%}; the lesson's extract_number {lesson:.1%})")
        print(report)
        if yours >= target:
            return True
        text, gold, got = misses[0]
        return f"{report}. E.g. from {text!r} the gold answer is {gold!r}, you extracted {got!r}"

    return run_check("GSM8K answer extraction", test, extract,
                     hint="print your extractor's answers for gsm8k_outputs(seed=0) beside the gold ones and read the texts it gets wrong",
                     more='cut the text where a new "Question:" starts; the answer is the first number after the last "answer is", '
                          '"Answer:" or "####", else the last number; drop "," and "$"; strip trailing zeros after a "."')


# ----------------------------------------------------------------------------- exercise 4
WINOGRANDE_CASES = [  # (sentence, option1, option2): the blank in the middle, before "'s", at the start, before a comma
    ("Sarah was a much better surgeon than Maria so _ always got the easier cases.", "Sarah", "Maria"),
    ("The trophy would not fit in the brown suitcase because _'s too big.", "the trophy", "the suitcase"),
    ("_ was happy to lend the book to Ian because he had two copies.", "Kevin", "Ian"),
    ("Lindsey liked the beach more than the mountains, so when _ ,  the choice was easy.", "she travelled", "he travelled"),
]


def _partial_reference(sentence: str, option1: str, option2: str) -> tuple[tuple[str, str], str]:
    i = sentence.index("_")
    return (sentence[:i] + option1, sentence[:i] + option2), " " + sentence[i + 1:].strip()


def _partial_variants(sentence: str, o1: str, o2: str) -> list[tuple[Any, str]]:
    i = sentence.index("_")
    before, after = sentence[:i], sentence[i + 1:]
    (c1, c2), cont = _partial_reference(sentence, o1, o2)
    return [
        (((c1, c2), cont.lstrip()), "the continuation starts with one space (lm-eval's target delimiter): the model scores \" word\", not \"word\""),
        (((c1, c2), " " + after), "strip the text after '_' before adding the one leading space (lm-eval's partial_target does)"),
        (((c1, c2), after), "the continuation is the text after '_', stripped, with exactly one leading space"),
        (((before.rstrip() + " " + o1, before.rstrip() + " " + o2), cont) if before.rstrip() != before[:-1] or not before else None,
         "the context is the text before '_' exactly as it is, plus the option: no space added or removed"),
        (((before + " " + o1, before + " " + o2), cont), "you added a space between the text before '_' and the option: it already ends with one"),
        (((sentence.replace("_", o1), sentence.replace("_", o2)), cont),
         "the context ends where the blank is: the text before '_' plus the option, not the whole sentence"),
        (((c2, c1), cont), "the contexts are in the wrong order: option 1 first"),
        (((before, before), " " + o1 + after), "the option goes into the *context* (partial scoring), so both options share one continuation"),
    ]


def check_winogrande_partial(partial: Callable[[str, str, str], Any], n_real: int = 40) -> Verdict:
    """``partial(sentence, option1, option2) -> ((context1, context2), continuation)``: WinoGrande's
    partial scoring — each option replaces "_" in the context; the shared rest of the sentence,
    stripped, with one leading space, is the continuation. Tried on made-up sentences (the blank at
    the start, before "'s", before extra spaces) and on the first ``n_real`` WinoGrande items."""

    def test(fn: Callable[[str, str, str], Any]) -> bool | str:
        from ..evaldata import load_bundled
        from ..evaluation import winogrande

        rows = load_bundled("winogrande/winogrande_xl/validation")
        real = [(rows["sentence"][k], rows["option1"][k], rows["option2"][k]) for k in range(n_real)]
        library = winogrande(limit=n_real)
        for k, (sentence, o1, o2) in enumerate(WINOGRANDE_CASES + real):
            want = _partial_reference(sentence, o1, o2)
            if k >= len(WINOGRANDE_CASES):
                item = library[k - len(WINOGRANDE_CASES)]
                assert (tuple(item.context), item.choices[0]) == want  # the library agrees with the reference
            got = fn(sentence, o1, o2)
            if got is None:
                raise NotDone
            if not isinstance(got, tuple | list) or len(got) != 2 or not isinstance(got[0], tuple | list) or len(got[0]) != 2:
                return "return ((context with option 1, context with option 2), continuation)"
            got = ((got[0][0], got[0][1]), got[1])
            if got == want:
                continue
            where = f"for {sentence!r} with options {o1!r} / {o2!r}"
            for wrong, message in _partial_variants(sentence, o1, o2):
                if wrong is not None and got == wrong:
                    return f"{where}: {message}"
            if got[0] != want[0]:
                return f"{where} the contexts should be {want[0]}, got {got[0]}"
            return f"{where} the continuation should be {want[1]!r}, got {got[1]!r}"
        return True

    return run_check("WinoGrande partial scoring", test, partial, hint=f"{LESSON}, section 1's table: in partial scoring the option goes into the context; look at the spaces on both sides of the blank",
                     more="i = sentence.index('_'); contexts = sentence[:i] + option; continuation = ' ' + sentence[i + 1:].strip()")


# ----------------------------------------------------------------------------- exercise 5
def _token_logprobs(model: Any, tokenizer: Any, context: str, choice: str) -> dict[str, float]:
    """The right sum and what the usual mistakes give for one choice (one forward pass)."""
    import torch

    encode = lambda s: tokenizer.encode(s, add_special_tokens=False)  # noqa: E731
    ctx = encode(context)
    cont = encode(context + choice)[len(ctx):]
    with torch.inference_mode():
        logits = model(torch.tensor([ctx + cont])).logits[0].double()
    logp = torch.log_softmax(logits, dim=-1)
    rows = range(len(ctx) - 1, len(ctx) - 1 + len(cont))
    right = [float(logp[r, t]) for r, t in zip(rows, cont)]
    return {"right": sum(right), "mean": sum(right) / len(right),
            "shifted": sum(float(logp[r + 1, t]) for r, t in zip(rows, cont) if r + 1 < logp.shape[0]),
            "probability": sum(math.exp(x) for x in right), "logits": sum(float(logits[r, t]) for r, t in zip(rows, cont)),
            "last": right[-1], "first": right[0], "n": len(right)}


def check_score_item(score_item: Callable[..., Any], model: Any, tokenizer: Any) -> Verdict:
    """``score_item(model, tokenizer, context, choices) -> list[float]``: the summed log-probability of
    each choice as a continuation of the context, like the lesson's ``choice_logprob``. Compared with
    ``course_utils.evaluation.score_multiple_choice`` on two real ARC-Easy questions."""
    messages = {
        "mean": "you averaged the tokens' log-probabilities; add them up (normalising is acc_norm's job, not this function's)",
        "shifted": "the token at position i is predicted by the logits at position i - 1: you read each token's score one position too late",
        "probability": "you added probabilities (softmax); add log-probabilities (log_softmax)",
        "logits": "you added raw logits: turn them into log-probabilities with log_softmax first",
        "last": "you kept only the last token's log-probability: a multi-token answer needs all of its tokens",
        "first": "you kept only the first token's log-probability: a multi-token answer needs all of its tokens",
    }

    def test(fn: Callable[..., Any]) -> bool | str:
        from ..evaluation import load_task, score_multiple_choice

        items = load_task("arc_easy", limit=2).items
        answers = [call_unchanged(lambda context, choices: fn(model, tokenizer, context, choices), context=item.context, choices=list(item.choices))
                   for item in items]  # a TODO stops here
        if any(a is None for a in answers):
            raise NotDone
        want = score_multiple_choice(model, items, tokenizer)
        for item, ref, got in zip(items, want.items, answers):
            if len(got) != len(item.choices):
                return f"return one log-probability per choice ({len(item.choices)}), got {len(got)}"
            for c, (g, w) in enumerate(zip(got, ref.logprobs)):
                g = float(g)
                if abs(g - w) <= 5e-3:
                    continue
                where = f"choice {c} ({item.choices[c]!r}) of {item.id}: expected {w:.3f}, got {g:.3f}"
                parts = _token_logprobs(model, tokenizer, item.context, item.choices[c])
                for kind, message in messages.items():
                    if abs(g - parts[kind]) <= 5e-3 and (kind not in ("last", "first") or parts["n"] > 1):
                        return f"{where}: {message}"
                if g > 0:
                    return f"{where}: a log-probability is <= 0, yours is positive"
                return f"{where}: compare your token ids for the continuation with encode(context + choice)[len(ctx):]"
        return True

    return run_check("score one item", test, score_item, hint=f"{LESSON}, section 2 scores a choice with choice_logprob: read which logits score which token",
                     more="logits at positions len(ctx)-1 ... len(ctx)+len(cont)-2 predict the continuation tokens; sum their log_softmax values")
