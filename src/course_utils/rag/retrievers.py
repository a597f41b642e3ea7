"""Retrievers: anything with ``search(query, k)`` that returns :class:`Hit` objects, best first.

Three kinds, one interface, so :func:`retrieve`, :func:`~course_utils.rag.answer` and
:func:`~course_utils.rag.evaluate_retrieval` work with each:

* dense: :class:`~course_utils.rag.VectorStore` (MiniLM vectors in Chroma);
* keyword: :class:`BM25Retriever` (:mod:`course_utils.bm25`, from scratch);
* both: :class:`HybridRetriever`, fused by rank (:func:`reciprocal_rank_fusion`) or by score
  (:func:`score_fusion`).

>>> from course_utils.rag import chunk_documents
>>> bm25 = BM25Retriever(chunk_documents({"cats": "Cats purr.", "tax": "Income tax is due in April."}))
>>> [h.doc_id for h in retrieve(bm25, "When is income tax due?", k=1)]
['tax']

Taught in: lesson 07 (dense vs BM25 vs hybrid, measured), lesson 10 (the agent's search tool),
lesson 11 (documents mode).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..bm25 import BM25
from ..embeddings import check_k
from ..errors import InvalidOption
from .documents import Chunk, as_chunks


@dataclass(frozen=True)
class Hit:
    """One retrieved chunk. ``rank`` starts at 1; ``score`` is higher for better matches."""

    id: str
    text: str
    doc_id: str
    score: float
    rank: int
    metadata: Mapping[str, Any] = field(default_factory=dict)


class Retriever(Protocol):
    def search(self, query: str, k: int = 5) -> list[Hit]: ...


def check_query(query: Any) -> str:
    """A query must be a non-empty string (an :class:`InvalidOption` otherwise)."""
    if not isinstance(query, str) or not query.strip():
        raise InvalidOption(f"the query must be a non-empty string, got {query!r:.60}", fix="pass the question as text")
    return query


def check_queries(queries: Any) -> list[str]:
    """A list of queries, each non-empty (one string instead of a list is an error, not 40 queries)."""
    if isinstance(queries, str) or not isinstance(queries, Sequence):
        raise InvalidOption(f"search_many takes a list of queries, got {type(queries).__name__}", fix="pass [query], or use search(query)")
    return [check_query(q) for q in queries]


class BM25Retriever:
    """Keyword search (BM25, :mod:`course_utils.bm25`) over chunks, returning :class:`Hit` like the store."""

    def __init__(self, chunks: Sequence[Chunk], k1: float = 1.2, b: float = 0.75) -> None:
        self.chunks = as_chunks(chunks)
        self.bm25 = BM25([c.text for c in self.chunks], k1=k1, b=b)

    def search(self, query: str, k: int = 5) -> list[Hit]:
        found = self.bm25.search(check_query(query), check_k(k))
        return [Hit(self.chunks[i].id, self.chunks[i].text, self.chunks[i].doc_id, s, r, {**self.chunks[i].metadata, "start": self.chunks[i].start})
                for r, (i, s) in enumerate(found, start=1)]

    def search_many(self, queries: Sequence[str], k: int = 5) -> list[list[Hit]]:
        return [self.search(q, k) for q in check_queries(queries)]


def fusion_weights(weights: Sequence[float] | None, n_lists: int) -> list[float]:
    """One weight >= 0 per list to fuse (all 1.0 when ``weights`` is None); an :class:`InvalidOption` otherwise."""
    weights = [1.0] * n_lists if weights is None else list(weights)
    if len(weights) != n_lists or any(not isinstance(w, int | float) or w < 0 for w in weights):
        raise InvalidOption(f"need one weight >= 0 per list, got {weights!r} for {n_lists} lists", fix="pass e.g. weights=[1.0, 0.5]")
    return weights


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[str]], k: int = 60, weights: Sequence[float] | None = None,
) -> list[tuple[str, float]]:
    """Merge ranked lists of ids: list ``i`` gives an id ``weights[i] / (k + rank)``. Best first.

    It needs no score calibration (BM25 scores and cosines are not comparable), only ranks. A smaller
    ``k`` trusts the top of each list more; a weight below 1 trusts a list less (Cormack et al. 2009 use
    k = 60 and equal weights).

    >>> reciprocal_rank_fusion([["a", "b", "c"], ["b", "c", "d"]], k=1)[:2]
    [('b', 0.8333333333333333), ('c', 0.5833333333333333)]
    >>> reciprocal_rank_fusion([["a", "b"], ["b", "a"]], k=1, weights=[1.0, 0.5])[0][0]
    'a'
    """
    weights = fusion_weights(weights, len(rankings))
    scores: dict[str, float] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + weight / (k + rank)
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))


def score_fusion(scored: Sequence[Sequence[tuple[str, float]]], weights: Sequence[float] | None = None) -> list[tuple[str, float]]:
    """Merge scored lists of ids by their scores: each list is min-max scaled to 0..1 (its best id 1,
    its last 0), an id missing from a list gets 0 there, and the scaled scores add up with ``weights``.

    Unlike :func:`reciprocal_rank_fusion` it keeps *how much* better the top hit is: a cosine of 0.71
    against 0.40 outweighs one of 0.52 against 0.51, where ranks see the same "first, second".
    Scaling each list by its own range is what makes cosines and BM25 scores addable (the "min-max"
    normalisation of Bruch et al. 2023, "An Analysis of Fusion Functions for Hybrid Retrieval").

    >>> score_fusion([[("a", 0.9), ("b", 0.5), ("c", 0.4)], [("c", 12.0), ("b", 3.0)]], weights=[0.7, 0.3])
    [('a', 0.7), ('c', 0.3), ('b', 0.14)]
    """
    weights = fusion_weights(weights, len(scored))
    fused: dict[str, float] = {}
    for items, weight in zip(scored, weights, strict=True):
        if not items:
            continue
        low, high = min(s for _, s in items), max(s for _, s in items)
        for item, score in items:
            scaled = (score - low) / (high - low) if high > low else 1.0
            fused[item] = fused.get(item, 0.0) + weight * scaled
    return sorted(((i, round(v, 12)) for i, v in fused.items()), key=lambda kv: (-kv[1], kv[0]))


FUSIONS = ("rrf", "scores")


class HybridRetriever:
    """Dense + keyword retrieval over the top ``depth`` of each, fused by rank or by score.

    ``fusion="rrf"`` (the default): :func:`reciprocal_rank_fusion` with its ``rrf_k``.
    ``fusion="scores"``: :func:`score_fusion`, the dense list weighted ``1 - sparse_weight``.
    ``sparse_weight`` is the keyword list's say (with RRF 1.0 means an equal vote).
    """

    def __init__(self, dense: Retriever, sparse: Retriever, depth: int = 30, rrf_k: int = 60, sparse_weight: float = 1.0,
                 fusion: str = "rrf") -> None:
        if fusion not in FUSIONS:
            raise InvalidOption(f"fusion must be one of {', '.join(FUSIONS)}, got {fusion!r}", fix="use fusion='rrf' or fusion='scores'")
        if fusion == "scores" and not (isinstance(sparse_weight, int | float) and 0 <= sparse_weight <= 1):
            raise InvalidOption(f"with fusion='scores' the keyword weight is a share from 0 to 1, got {sparse_weight!r}",
                                fix="use e.g. sparse_weight=0.3")
        self.dense, self.sparse, self.depth, self.rrf_k = dense, sparse, check_k(depth, "depth"), rrf_k
        self.fusion = fusion
        self.weights = (1.0 - sparse_weight, sparse_weight) if fusion == "scores" else (1.0, sparse_weight)

    def _fuse(self, dense: list[Hit], sparse: list[Hit], k: int) -> list[Hit]:
        by_id = {h.id: h for h in [*sparse, *dense]}  # dense hits win: same chunk, same text
        if self.fusion == "scores":
            fused = score_fusion([[(h.id, h.score) for h in dense], [(h.id, h.score) for h in sparse]], self.weights)[:k]
        else:
            fused = reciprocal_rank_fusion([[h.id for h in dense], [h.id for h in sparse]], self.rrf_k, self.weights)[:k]
        return [Hit(i, by_id[i].text, by_id[i].doc_id, s, r, by_id[i].metadata) for r, (i, s) in enumerate(fused, start=1)]

    def search(self, query: str, k: int = 5) -> list[Hit]:
        k = check_k(k)
        return self._fuse(self.dense.search(query, self.depth), self.sparse.search(query, self.depth), k)

    def search_many(self, queries: Sequence[str], k: int = 5) -> list[list[Hit]]:
        k = check_k(k)
        dense = search_many(self.dense, queries, self.depth)
        sparse = search_many(self.sparse, queries, self.depth)
        return [self._fuse(d, s, k) for d, s in zip(dense, sparse, strict=True)]


def search_many(retriever: Retriever, queries: Sequence[str], k: int) -> list[list[Hit]]:
    """``retriever.search_many`` where it has one (batched), else one search per query."""
    queries = check_queries(queries)
    many = getattr(retriever, "search_many", None)
    return many(queries, k) if many else [retriever.search(q, k) for q in queries]


def retrieve(retriever: Retriever, question: str, k: int = 5) -> list[Hit]:
    """The ``k`` best chunks for ``question`` from any retriever (store, BM25, hybrid), best first."""
    if not callable(getattr(retriever, "search", None)):
        raise InvalidOption(f"a {type(retriever).__name__} cannot search", fix="pass a VectorStore, BM25Retriever or HybridRetriever")
    return retriever.search(check_query(question), check_k(k))
