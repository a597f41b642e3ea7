"""Made-up GSM8K solutions for lab 09's exercise 3, written the ways small models write them, and the
reference answer extractor the check sets beside the learner's.

The check (:func:`course_utils.checks.evaluation.check_gsm8k_extract`) measures an extractor on outputs
from a seed the lab never shows; the lab shows ``gsm8k_outputs(40, seed=0)`` to tune on.
"""

from __future__ import annotations

import random
import re

__all__ = ["gsm8k_outputs", "reference_extract"]


def _canonical(value: float | int) -> str:
    text = f"{value:.2f}" if isinstance(value, float) else str(value)
    return text.rstrip("0").rstrip(".") if "." in text else text


def _amount(rng: random.Random) -> tuple[str, str]:
    """A final answer as a model writes it, and as the gold answer (a plain number)."""
    kind = rng.choice(["int", "int", "big", "money", "cents", "negative", "percent"])
    if kind == "int":
        v = rng.randint(2, 999)
        return str(v), str(v)
    if kind == "big":
        v = rng.randint(1000, 250000)
        return f"{v:,}", str(v)
    if kind == "money":
        v = rng.randint(3, 5000)
        return rng.choice([f"${v:,}", f"${v}.00", f"{v} dollars"]), str(v)
    if kind == "cents":
        v = rng.randint(1, 400) + rng.choice([0.5, 0.25, 0.75, 0.1])
        return rng.choice([f"{v:.2f}", f"${v:.2f}"]), _canonical(v)
    if kind == "negative":
        v = -rng.randint(1, 60)
        return str(v), str(v)
    v = rng.randint(5, 95)
    return f"{v}%", str(v)


_STEPS = [
    "She buys {a} packs of {b} eggs, so she has {a} * {b} = {ab} eggs.",
    "He walks {a} km a day for {b} days: {a} * {b} = {ab} km.",
    "There are {a} + {b} = {apb} children in the two classes.",
    "The shop sold {b} of its {ab} apples, leaving {ab} - {b} = {abmb}.",
    "Each ticket costs ${a}, so {b} tickets cost ${ab}.",
]
_ENDINGS = [  # (template, has a marker)
    ("So the answer is {x}.", True), ("The answer is {x}.", True), ("The answer is: {x}", True), ("#### {x}", True),
    ("Answer: {x}", True), ("So the final answer is {x}.", True), ("Therefore, the answer is {x}", True),
    ("So in total it is {x}.", False), ("That makes {x} altogether.", False),
]
_AFTER = [  # what a small model writes after its answer (it keeps going)
    "", "", " I hope this helps!", "\n\nQuestion: A farmer has {c} cows and buys {d} more. How many cows does he have?\nAnswer: {c} + {d} = {cpd}. The answer is {cpd}.",
    "\nQuestion: Tom reads {c} pages a day. How many pages does he read in {d} days?\nAnswer: {c} * {d} = {cd}",
    " It took {d} steps to get there.", " (Check: {c} + {d} = {cpd}, so that is right.)",
]


def gsm8k_outputs(n: int = 40, seed: int = 0) -> list[tuple[str, str | None]]:
    """``n`` made-up GSM8K solutions written the ways small models write them, each with its gold answer.

    The final answer comes after "The answer is", "Answer:", "####" or no marker at all, as
    "1,250", "$18.00", "2.50", "-4" or "25%"; then the model often keeps going (another "Question:"
    with its own numbers, a remark with a number). One in 25 has no number (gold ``None``).

    >>> text, gold = gsm8k_outputs(3, seed=1)[0]
    >>> isinstance(text, str) and (gold is None or gold.lstrip("-").replace(".", "").isdigit())
    True
    """
    rng = random.Random(seed)
    out: list[tuple[str, str | None]] = []
    for _ in range(n):
        if rng.random() < 0.04:
            out.append((rng.choice(["I am not sure how to solve this.", "Let me think about it step by step."]), None))
            continue
        a, b, c, d = (rng.randint(2, 40) for _ in range(4))
        steps = " ".join(s.format(a=a, b=b, ab=a * b, apb=a + b, abmb=a * b - b) for s in rng.sample(_STEPS, rng.randint(1, 3)))
        written, gold = _amount(rng)
        ending, marked = rng.choice(_ENDINGS)
        after = rng.choice(_AFTER if marked else _AFTER[:5])  # with no marker, a remark with a number would hide the answer
        text = f"{steps} {ending.format(x=written)}{after.format(c=c, d=d, cpd=c + d, cd=c * d)}"
        out.append((text, gold))
    return out


_NUMBER = re.compile(r"-?\$?\d[\d,]*(?:\.\d+)?")
_MARKER = re.compile(r"answer is|answer:|####", re.IGNORECASE)


def reference_extract(text: str) -> str | None:
    r"""The reference extractor of exercise 3: cut the text where a new "Question:" starts, take the
    first number after the last answer marker ("answer is", "Answer:", "####"), else the last number.

    >>> reference_extract("So the answer is $1,250.00. It took 3 steps.\n\nQuestion: 4 + 5?")
    '1250'
    """
    text = re.split(r"\n\s*Question:", text)[0]
    markers = list(_MARKER.finditer(text))
    tail = text[markers[-1].end():] if markers else ""
    found = _NUMBER.findall(tail)[:1] or _NUMBER.findall(text)[-1:]
    if not found:
        return None
    value = found[0].replace(",", "").replace("$", "")
    return value.rstrip("0").rstrip(".") if "." in value else value
