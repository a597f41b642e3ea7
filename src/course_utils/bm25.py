"""BM25, the classic keyword ranking function, from scratch (the "sparse" retriever of lesson 07).

For a query, each document gets, for every query word it contains::

    idf(word) * tf * (k1 + 1) / (tf + k1 * (1 - b + b * doc_length / average_length))

* ``tf``: how often the word occurs in the document; the score saturates (``k1``): the tenth
  "python" adds far less than the first;
* ``idf``: rare words count more than common ones: ``ln(1 + (N - df + 0.5) / (df + 0.5))`` with
  ``df`` the number of documents holding the word (Lucene's variant, never negative);
* ``b``: long documents are penalised a little, since they contain many words by chance.

Every per-(word, document) weight is computed once when the index is built, so a query only adds up
a few precomputed arrays: a few milliseconds for thousands of documents.

Taught in: lesson 07 (keyword retrieval; its lab writes BM25 from scratch). Used by
:class:`course_utils.rag.BM25Retriever`.

>>> bm25 = BM25(["the cat sat on the mat", "dogs chase cats", "a quiet mat shop"])
>>> [i for i, _ in bm25.search("mat for a cat", k=2)]
[0, 2]
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np

from .embeddings import check_k
from .errors import DataError, InvalidOption

# Very common English words carry no information for ranking; dropping them also makes queries faster.
STOPWORDS = frozenset({
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "can", "could", "did", "do", "does",
    "for", "from", "had", "has", "have", "he", "her", "his", "i", "if", "in", "into", "is", "it",
    "its", "me", "my", "no", "not", "of", "on", "or", "our", "she", "should", "so", "than", "that",
    "the", "their", "them", "then", "there", "these", "they", "this", "to", "us", "was", "we",
    "were", "what", "when", "where", "which", "who", "will", "with", "would", "you", "your",
})
_WORD = re.compile(r"[a-z0-9]+")


def tokenize(text: str) -> list[str]:
    """Lower-case words and numbers, stop words removed.

    >>> tokenize("Is the Eiffel Tower in Paris? It is 330 m tall.")
    ['eiffel', 'tower', 'paris', '330', 'm', 'tall']
    """
    return [w for w in _WORD.findall(text.lower()) if w not in STOPWORDS]


class BM25:
    """A BM25 index over ``documents`` (a list of strings); documents are referred to by position."""

    def __init__(
        self, documents: Sequence[str], k1: float = 1.2, b: float = 0.75,
        tokenizer: Callable[[str], list[str]] = tokenize,
    ) -> None:
        if isinstance(documents, str) or not documents:
            raise DataError("BM25 needs a non-empty list of documents", fix="pass a list of strings, e.g. the chunks' texts")
        if not all(isinstance(d, str) for d in documents):
            raise DataError("every BM25 document must be a string", fix="pass a list of str")
        if k1 < 0 or not 0 <= b <= 1:
            raise InvalidOption(f"BM25 needs k1 >= 0 and 0 <= b <= 1, got k1={k1}, b={b}", fix="use the usual k1=1.2, b=0.75")
        self.k1, self.b, self.tokenizer = k1, b, tokenizer
        counts = [Counter(tokenizer(d)) for d in documents]
        self.n_docs = len(documents)
        self.doc_lengths = np.array([sum(c.values()) for c in counts], dtype=np.float32)
        self.avg_length = float(self.doc_lengths.mean()) or 1.0
        postings: dict[str, tuple[list[int], list[int]]] = {}
        for doc, c in enumerate(counts):
            for word, tf in c.items():
                docs, tfs = postings.setdefault(word, ([], []))
                docs.append(doc)
                tfs.append(tf)
        norm = k1 * (1 - b + b * self.doc_lengths / self.avg_length)  # per-document length factor
        self.idf: dict[str, float] = {}
        self._postings: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for word, (docs, tfs) in postings.items():
            d, tf = np.array(docs, dtype=np.int64), np.array(tfs, dtype=np.float32)
            self.idf[word] = math.log(1 + (self.n_docs - len(d) + 0.5) / (len(d) + 0.5))
            self._postings[word] = (d, (self.idf[word] * tf * (k1 + 1) / (tf + norm[d])).astype(np.float32))

    @property
    def vocabulary_size(self) -> int:
        return len(self._postings)

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every document for ``query`` (0 where no query word occurs)."""
        if not isinstance(query, str):
            raise InvalidOption(f"the query must be a string, got {type(query).__name__}", fix="pass the question as text")
        total = np.zeros(self.n_docs, dtype=np.float32)
        for word in set(self.tokenizer(query)):  # each distinct query word counts once
            if word in self._postings:
                docs, weights = self._postings[word]
                total[docs] += weights  # docs are distinct within one posting list
        return total

    def search(self, query: str, k: int = 10) -> list[tuple[int, float]]:
        """The ``k`` best (document index, score), best first; documents scoring 0 are left out."""
        k = check_k(k)
        s = self.scores(query)
        k = min(k, self.n_docs)
        best = np.argpartition(-s, k - 1)[:k]
        best = best[np.lexsort((best, -s[best]))]  # by score, ties by position: deterministic
        return [(int(i), float(s[i])) for i in best if s[i] > 0]

    def __repr__(self) -> str:
        return f"BM25({self.n_docs} documents, {self.vocabulary_size} words, k1={self.k1}, b={self.b})"
