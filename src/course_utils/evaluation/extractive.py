"""Extractive question answering scored the way SQuAD scores it: exact match and token F1 (lesson 11).

Both compare *normalised* answers (Rajpurkar et al. 2016, the official evaluation script): lower case,
punctuation and the articles "a", "an", "the" removed, spaces collapsed. A question may have several
reference answers (SQuAD has up to three annotators'); a prediction gets its best score against any.
Token F1 gives partial credit: "the Eiffel Tower in Paris" against "Eiffel Tower" shares 2 of 4 tokens.

>>> normalize_answer("The  Eiffel Tower!")
'eiffel tower'
>>> squad_exact("eiffel tower", ["The Eiffel Tower", "Paris"])
1.0
>>> round(squad_f1("the Eiffel Tower in Paris", ["Eiffel Tower"]), 3)
0.667
>>> squad_f1("1889", ["in 1889", "1889"])
1.0
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence

from ..errors import DataError

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower case, no punctuation, no articles, single spaces: SQuAD's normalisation."""
    text = "".join(ch for ch in str(text).lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def _references(references: Sequence[str]) -> Sequence[str]:
    if isinstance(references, str) or not references:
        raise DataError("need a list of one or more reference answers", fix='pass e.g. ["Eiffel Tower"]')
    return references


def squad_exact(prediction: str, references: Sequence[str]) -> float:
    """1.0 when the normalised prediction equals a normalised reference, else 0.0."""
    pred = normalize_answer(prediction)
    return float(any(pred == normalize_answer(r) for r in _references(references)))


def _f1(prediction: str, reference: str) -> float:
    pred, ref = normalize_answer(prediction).split(), normalize_answer(reference).split()
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def squad_f1(prediction: str, references: Sequence[str]) -> float:
    """The best token F1 (harmonic mean of token precision and recall) against any reference."""
    return max(_f1(prediction, r) for r in _references(references))
