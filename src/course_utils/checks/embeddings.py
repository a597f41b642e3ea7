"""Checks for lab 06 (embeddings): each compares the learner's function with ``course_utils.embeddings``.

>>> check_cosine(lambda a, b: 1.0).status
'failed'
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .. import embeddings as emb
from . import Verdict, run_check

_RNG_SEED = 6


def _vectors(n: int, d: int, seed: int = _RNG_SEED) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, d))


# ----------------------------------------------------------------------------- exercise 1
def check_cosine(fn: Callable[[Any, Any], float]) -> Verdict:
    """``fn(a, b)`` must return the cosine similarity of two 1-D arrays."""

    def test(fn: Callable[..., Any]) -> bool | str:
        cases = [([1.0, 0.0], [0.0, 1.0]), ([1.0, 2.0, 3.0], [2.0, 4.0, 6.0]), ([1.0, 1.0], [-1.0, -1.0])]
        x = _vectors(4, 384)
        cases += [(x[0], x[1]), (x[2], 5 * x[2] + 0.1 * x[3])]
        for a, b in cases:
            got = fn(np.asarray(a), np.asarray(b))
            if got is None:
                return "your function returned None: did you forget `return`?"
            want = emb.cosine(a, b)
            if not np.isclose(float(got), want, atol=1e-6):
                if np.isclose(float(got), float(np.dot(a, b)), atol=1e-6):
                    return f"for {np.round(a[:3], 2)}... you returned the dot product {float(got):.3f}; divide by both lengths to get {want:.3f}"
                return f"cosine({np.round(a[:3], 2)}..., {np.round(b[:3], 2)}...) gave {float(got):.4f}, expected {want:.4f}"
        return True

    return run_check("cosine similarity", test, fn, hint="a @ b / (np.linalg.norm(a) * np.linalg.norm(b))")


# ----------------------------------------------------------------------------- exercise 2
def check_search(fn: Callable[[Any, Any, int], list[int]]) -> Verdict:
    """``fn(query, matrix, k)`` must return the indices of the ``k`` most similar rows, best first."""

    def test(fn: Callable[..., Any]) -> bool | str:
        items = _vectors(50, 16)
        for seed, k in [(1, 1), (2, 3), (3, 5)]:
            query = items[seed * 7] + 0.5 * _vectors(1, 16, seed)[0]
            got = fn(query, items, k)
            if got is None:
                return "your function returned None: did you forget `return`?"
            got = [int(i) for i in got]
            want = [i for i, _ in emb.top_k(query, items, k)]
            if len(got) != k:
                return f"asked for k={k} results, got {len(got)}"
            if sorted(got) == sorted(want) and got != want:
                return f"right items, wrong order: {got} instead of {want}; sort from most to least similar"
            if got != want:
                by_dot = list(np.argsort(-(items @ query))[:k])
                if got == by_dot:
                    return "you ranked by dot product; the rows have different lengths, so normalise them first (cosine)"
                return f"search returned {got}, expected {want}"
        return True

    return run_check("semantic search", test, fn, hint="normalise the rows and the query, take dot products, then np.argsort(-scores)[:k]")


# ----------------------------------------------------------------------------- exercise 3
def reference_mean_pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    m = mask[..., None].astype(float)
    return (hidden * m).sum(1) / m.sum(1)


def check_mean_pool(fn: Callable[[Any, Any], Any]) -> Verdict:
    """``fn(hidden (b, t, d), mask (b, t))`` must average each text's hidden states over its real tokens."""

    def test(fn: Callable[..., Any]) -> bool | str:
        hidden = _vectors(3 * 5, 4).reshape(3, 5, 4)
        mask = np.array([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 0, 0, 0, 0]])
        got = fn(hidden.copy(), mask.copy())
        if got is None:
            return "your function returned None: did you forget `return`?"
        got = np.asarray(got, dtype=float)
        want = reference_mean_pool(hidden, mask)
        if got.shape != want.shape:
            return f"the result should have shape {want.shape} (one vector per text), got {got.shape}"
        if np.allclose(got, hidden.mean(1)):
            return "you averaged over every position, padding included; multiply by the mask and divide by the number of real tokens"
        if not np.allclose(got, want, atol=1e-6):
            return "the averages differ from the expected ones (check the sum over the token axis, axis=1)"
        return True

    return run_check("mean pooling", test, fn, hint="(hidden * mask[..., None]).sum(axis=1) / mask.sum(axis=1, keepdims=True)")


# ----------------------------------------------------------------------------- exercise 4
def check_pca(fn: Callable[[Any], Any]) -> Verdict:
    """``fn(X)`` must project the rows of X onto their 2 principal components -> (n, 2)."""

    def test(fn: Callable[..., Any]) -> bool | str:
        x = _vectors(40, 10) * np.linspace(3, 0.2, 10)  # clear 1st and 2nd directions
        got = fn(x.copy())
        if got is None:
            return "your function returned None: did you forget `return`?"
        got = np.asarray(got, dtype=float)
        want, _ = emb.pca_2d(x)
        if got.shape != (40, 2):
            return f"expected shape (40, 2), got {got.shape}"
        for c in range(2):  # each axis may point either way
            if not (np.allclose(got[:, c], want[:, c], atol=1e-5) or np.allclose(got[:, c], -want[:, c], atol=1e-5)):
                if np.allclose(np.abs(got[:, c] - got[:, c].mean()), np.abs(want[:, c]), atol=1e-5):
                    return "centre the data first (subtract the mean of each column) before the SVD"
                return f"component {c + 1} differs from the expected projection (did you centre X and use the first two rows of Vt?)"
        return True

    return run_check("PCA to 2-D", test, fn, hint="Xc = X - X.mean(0); _, _, Vt = np.linalg.svd(Xc, full_matrices=False); return Xc @ Vt[:2].T")


# ----------------------------------------------------------------------------- exercise 5
def check_nearest_neighbours(fn: Callable[[Any, int, int], list[int]], embedder: emb.Embedder | None = None) -> Verdict:
    """``fn(vectors, i, k)`` must return the k rows nearest to row i, *excluding i itself*, best first
    (tried on MiniLM embeddings of the course sentences)."""

    def test(fn: Callable[..., Any]) -> bool | str:
        sentences = emb.course_sentences()
        vectors = (embedder or emb.Embedder()).embed([s["text"] for s in sentences])
        for i in (0, 9, 20, 30, 41):
            got = fn(vectors.copy(), i, 3)
            if got is None:
                return "your function returned None: did you forget `return`?"
            got = [int(j) for j in got]
            if i in got:
                return f"the neighbours of sentence {i} include sentence {i} itself; leave it out"
            sims = vectors @ vectors[i]
            sims[i] = -np.inf
            want = list(np.argsort(-sims)[:3])
            if got != want:
                return f"neighbours of sentence {i}: got {got}, expected {want}"
        return True

    return run_check("nearest neighbours", test, fn, hint="similarities = vectors @ vectors[i]; set similarities[i] = -inf; take the top k")
