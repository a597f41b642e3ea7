"""Retrieval metrics: is the right document among the first results, and how high?

* recall@k: the fraction of queries with a relevant document among the first ``k`` results;
* MRR (mean reciprocal rank): the average of 1 / (rank of the first relevant document), 0 when
  it is missing, so a hit at rank 1 counts 1, at rank 2 counts 0.5, ...

Both are measured over *documents*: several chunks of one document count once, at the rank of its
best chunk (:func:`doc_ranking`). :func:`evaluate_retrieval` runs a retriever over a query set and
reports both, with the time per query.

>>> recall_at_k([["a", "b"], ["c", "d"]], ["b", "x"], k=2)
0.5
>>> mrr([["a", "b"], ["c", "d"], ["e"]], ["b", "c", "x"])
0.5

Taught in: lesson 07 (dense vs BM25 vs hybrid, chunking strategies; its lab writes both metrics).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..embeddings import check_k
from ..errors import DataError, InvalidOption
from .retrievers import Hit, Retriever, search_many


def doc_ranking(hits: Sequence[Hit]) -> list[str]:
    """Document ids in the order their first chunk appears (several chunks of a doc count once)."""
    return list(dict.fromkeys(h.doc_id for h in hits))


def _relevant_sets(relevant: Sequence[str | Iterable[str]]) -> list[set[str]]:
    return [{r} if isinstance(r, str) else set(r) for r in relevant]


def _check_rankings(rankings: Sequence[Any], relevant: Sequence[Any]) -> None:
    if isinstance(rankings, str) or isinstance(relevant, str):
        raise InvalidOption("rankings and relevant ids are lists (one entry per query), got a string", fix="wrap it: [query]")
    if len(rankings) != len(relevant):
        raise InvalidOption(f"{len(rankings)} rankings but {len(relevant)} relevance judgements", fix="pass one relevant id (or set of ids) per query")
    if not rankings:
        raise DataError("no queries to evaluate", fix="pass at least one query")


def recall_at_k(rankings: Sequence[Sequence[str]], relevant: Sequence[str | Iterable[str]], k: int) -> float:
    """Fraction of queries with a relevant id among the first ``k`` of their ranking."""
    k = check_k(k)
    _check_rankings(rankings, relevant)
    return sum(bool(set(r[:k]) & rel) for r, rel in zip(rankings, _relevant_sets(relevant), strict=True)) / len(rankings)


def mrr(rankings: Sequence[Sequence[str]], relevant: Sequence[str | Iterable[str]], k: int | None = None) -> float:
    """Mean reciprocal rank: the average of 1 / (rank of the first relevant id), 0 if absent
    (from the first ``k`` when given)."""
    if k is not None:
        k = check_k(k)
    _check_rankings(rankings, relevant)
    total = 0.0
    for ranking, rel in zip(rankings, _relevant_sets(relevant), strict=True):
        cut = ranking[:k] if k is not None else ranking
        total += next((1.0 / n for n, item in enumerate(cut, start=1) if item in rel), 0.0)
    return total / len(rankings)


@dataclass(frozen=True)
class RetrievalScores:
    """Document-level retrieval quality of one retriever on one query set."""

    name: str
    recall: dict[int, float]
    mrr: float
    n_queries: int
    seconds: float

    @property
    def ms_per_query(self) -> float:
        return 1000 * self.seconds / self.n_queries

    def row(self) -> dict[str, Any]:
        return {"retriever": self.name, **{f"recall@{k}": round(v, 3) for k, v in self.recall.items()},
                "MRR@10": round(self.mrr, 3), "ms/query": round(self.ms_per_query, 1)}


def evaluate_retrieval(
    retriever: Retriever, queries: Sequence[str], relevant: Sequence[str | Iterable[str]], ks: Sequence[int] = (1, 5),
    depth: int = 30, name: str = "",
) -> RetrievalScores:
    """Recall@k (each k in ``ks``) and MRR@10 over *documents*: ``relevant`` holds doc ids.

    Each query fetches ``depth`` chunks, which are collapsed to documents (:func:`doc_ranking`).
    """
    if isinstance(queries, str):
        raise InvalidOption("queries must be a list of questions, got one string", fix="wrap it: [question]")
    _check_rankings(list(queries), relevant)
    ks = [check_k(k) for k in ks]
    started = time.perf_counter()
    rankings = [doc_ranking(hits) for hits in search_many(retriever, list(queries), check_k(depth, "depth"))]
    seconds = time.perf_counter() - started
    return RetrievalScores(
        name or type(retriever).__name__, {k: recall_at_k(rankings, relevant, k) for k in ks},
        mrr(rankings, relevant, k=10), len(rankings), seconds,
    )
