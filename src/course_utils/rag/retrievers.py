"""Retrievers: anything with ``search(query, k)`` that returns :class:`Hit` objects, best first.

Three kinds, one interface, so :func:`retrieve`, :func:`~course_utils.rag.answer` and
:func:`~course_utils.rag.evaluate_retrieval` work with each:

* dense: :class:`~course_utils.rag.VectorStore` (MiniLM vectors in Chroma);
* keyword: :class:`BM25Retriever` (:mod:`course_utils.bm25`, from scratch);
* both: :class:`HybridRetriever`, fused with :func:`reciprocal_rank_fusion`.

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
    weights = [1.0] * len(rankings) if weights is None else list(weights)
    if len(weights) != len(rankings) or any(not isinstance(w, int | float) or w < 0 for w in weights):
        raise InvalidOption(f"need one weight >= 0 per ranking, got {weights!r} for {len(rankings)} rankings",
                            fix="pass e.g. weights=[1.0, 0.5]")
    scores: dict[str, float] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + weight / (k + rank)
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))


class HybridRetriever:
    """Dense + keyword retrieval fused with reciprocal rank fusion over the top ``depth`` of each.

    ``sparse_weight`` scales the keyword list's votes (1.0: equal say); ``rrf_k`` is the fusion's k.
    """

    def __init__(self, dense: Retriever, sparse: Retriever, depth: int = 30, rrf_k: int = 60, sparse_weight: float = 1.0) -> None:
        self.dense, self.sparse, self.depth, self.rrf_k = dense, sparse, check_k(depth, "depth"), rrf_k
        self.weights = (1.0, sparse_weight)

    def _fuse(self, dense: list[Hit], sparse: list[Hit], k: int) -> list[Hit]:
        by_id = {h.id: h for h in [*sparse, *dense]}  # dense hits win: same chunk, same text
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
