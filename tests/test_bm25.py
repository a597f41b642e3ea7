"""course_utils.bm25: BM25 from scratch, checked against the formula computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from course_utils.bm25 import BM25, tokenize
from course_utils.errors import DataError, InvalidOption

DOCS = ["the cat sat on the mat", "dogs chase cats and cats chase mice", "a mat shop sells a mat and a rug", "quantum physics"]


def test_tokenize_lowercases_and_drops_stopwords():
    assert tokenize("The Cat, the HAT and 42 rats!") == ["cat", "hat", "42", "rats"]


def test_scores_match_the_formula_by_hand():
    k1, b = 1.2, 0.75
    index = BM25(DOCS, k1=k1, b=b)
    lengths = [len(tokenize(d)) for d in DOCS]  # [3, 6, 6, 2]
    avg = sum(lengths) / len(lengths)

    def term(tf, df, length):
        idf = math.log(1 + (len(DOCS) - df + 0.5) / (df + 0.5))
        return idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * length / avg))

    expected = [term(1, 2, lengths[0]), 0.0, term(2, 2, lengths[2]), 0.0]  # "mat": in docs 0 (once) and 2 (twice)
    assert np.allclose(index.scores("mat"), expected, atol=1e-6)
    both = index.scores("mat cat")
    assert both[0] == pytest.approx(term(1, 2, lengths[0]) + term(1, 1, lengths[0]), abs=1e-6)
    assert np.allclose(index.scores("mat mat MAT"), index.scores("mat"))  # a repeated query word counts once
    assert not index.scores("unknown words only").any()


def test_search_ranks_and_leaves_out_zero_scores():
    index = BM25(DOCS)
    assert [i for i, _ in index.search("mat", k=10)] == [2, 0]
    assert [i for i, _ in index.search("cats chase", k=1)] == [1]
    assert index.search("nothing matches", k=3) == []
    assert "4 documents" in repr(index)
    with pytest.raises(InvalidOption):
        index.search("mat", k=0)


def test_bad_input():
    with pytest.raises(DataError):
        BM25([])
    with pytest.raises(DataError):
        BM25("not a list")
    with pytest.raises(InvalidOption):
        BM25(DOCS, b=2)
