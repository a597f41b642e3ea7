"""Checks for lab 06 (embeddings): cosine, search, mean pooling, PCA, nearest neighbours, and a
topic classifier measured on held-out sentences.

Taught in lesson 06. Each ``check_*`` runs the learner's function on inputs it makes itself (random
vectors from a fixed seed, rows of different lengths, integer vectors, opposite vectors, padding of
several lengths, several ``k``) and compares with :mod:`course_utils.embeddings`. A wrong result is
compared with what the usual mistakes give (the dot product, one norm only, ``//``, the wrong axis,
padding averaged in, the wrong rows of ``Vt``, the query among its own neighbours), so the message
names the mistake, not the solution. A function that changes its inputs in place fails.

The last exercise is built and measured: the learner's classifier is trained on lesson 06's 48
sentences and scored on :data:`HELDOUT_TOPICS`, sentences written for this check that the lab never
shows; the check prints the learner's accuracy beside the target and the reference's.

>>> check_cosine(lambda a, b: 1.0).status
'failed'
>>> check_cosine(cosine_reference).status
'passed'
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .. import embeddings as emb
from . import Mistake, Verdict, call_unchanged, run_check

_RNG_SEED = 6
TOPIC_TARGET = 0.8  # accuracy the topic classifier must reach on the held-out sentences
REFERENCE_K = 3  # neighbours that vote in the reference classifier


def _vectors(n: int, d: int, seed: int = _RNG_SEED) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, d))


def _returned(value: Any) -> Any:
    if value is None:
        raise Mistake("your function returned None: did you forget `return`?")
    return value


def _indices(value: Any) -> list[int]:
    try:
        return [int(i) for i in _returned(value)]
    except (TypeError, ValueError):
        raise Mistake(f"return a list of row indices (ints), got {type(value).__name__}") from None


def _first_match(got: Any, variants: Sequence[tuple[Any, str]], same: Callable[[Any, Any], bool]) -> str | None:
    return next((message for value, message in variants if same(got, value)), None)


# ----------------------------------------------------------------------------- exercise 1
def cosine_reference(a: Any, b: Any) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def _cosine_variants(a: np.ndarray, b: np.ndarray) -> list[tuple[float, str]]:
    dot, na, nb = float(a @ b), float(np.linalg.norm(a)), float(np.linalg.norm(b))
    return [
        (dot, "you returned the dot product: divide it by the lengths of both vectors"),
        (dot / na, "you divided by the length of `a` only: divide by the lengths of both vectors"),
        (dot / nb, "you divided by the length of `b` only: divide by the lengths of both vectors"),
        (dot / (na * na), "you divided by the length of `a` twice: use the lengths of `a` and `b`"),
        (dot / (float(np.abs(a).sum()) * float(np.abs(b).sum())), "you divided by the sums of absolute values (L1); the length is the Euclidean norm"),
        (dot / (len(a) * len(b)), "you divided by the number of entries; the length of a vector is its Euclidean norm, np.linalg.norm"),
        (dot // (na * nb), "the result was rounded down: use / rather than //"),
        (abs(dot) / (na * nb), "the sign is lost: opposite vectors have cosine -1, do not take abs()"),
    ]


def check_cosine(fn: Callable[[Any, Any], float]) -> Verdict:
    """``fn(a, b)`` must return the cosine similarity of two 1-D arrays (any lengths, signs, int or float)."""

    def test(fn: Callable[..., Any]) -> bool | str:
        x = _vectors(4, 384)
        cases = [([2.0, 1.0], [1.0, 3.0]), ([1, 0], [1, 1]), ([1.0, 2.0, 3.0], [2.0, 4.0, 6.0]), ([1.0, 1.0], [-1.0, -1.0]), ([3, 4], [4, 3]),
                 (x[0], x[1]), (x[2], 5 * x[2] + 0.1 * x[3]), (3 * x[1], 0.5 * x[3])]
        for a, b in cases:
            a, b = np.asarray(a), np.asarray(b)
            got = _returned(call_unchanged(fn, a, b))
            try:
                got = float(got)
            except (TypeError, ValueError):
                return f"return one number (a float), got {type(got).__name__}"
            want = cosine_reference(a, b)
            if np.isclose(got, want, atol=1e-6):
                continue
            where = f"for a = {np.round(a[:3], 2)}{'...' if len(a) > 3 else ''}, b = {np.round(b[:3], 2)}{'...' if len(b) > 3 else ''}"
            named = _first_match(got, _cosine_variants(a.astype(float), b.astype(float)), lambda g, v: np.isclose(g, v, atol=1e-6))
            return f"{where} you returned {got:.4f}, expected {want:.4f}" + (f": {named}" if named else "")
        return True

    return run_check("cosine similarity", test, fn, hint="a cosine is a dot product divided by two lengths (np.linalg.norm)",
                     more="a @ b / (np.linalg.norm(a) * np.linalg.norm(b))")


# ----------------------------------------------------------------------------- exercise 2
def _search_variants(query: np.ndarray, items: np.ndarray, k: int, want: list[int]) -> list[tuple[list[int], str]]:
    cos = emb.cosine_matrix(query, items)[0]
    by_columns = items / np.linalg.norm(items, axis=0, keepdims=True) @ query
    return [
        (list(np.argsort(-(items @ query))[:k]), "you ranked by dot product; the rows have different lengths, so normalise them first (cosine)"),
        (list(np.argsort(-by_columns)[:k]), "you normalised the columns (axis=0); each row is one item: normalise along axis=1"),
        (list(np.argsort(cos)[:k]), "those are the least similar rows: sort the scores from highest to lowest"),
        (list(np.argsort(cos)[-k:]), "right items, but least similar first: the best match comes first"),
        (want[::-1], "right items, but least similar first: the best match comes first"),
        (list(np.argsort(-cos)[: k + 1]), f"asked for k={k} results, you returned k + 1: check the slice"),
        (list(np.argsort(-cos)[: k - 1]), f"asked for k={k} results, you returned k - 1: check the slice"),
        (list(np.argsort(-cos)[:5]), f"you returned 5 results whatever k is (here k={k}): use the k you are given"),
    ]


def check_search(fn: Callable[[Any, Any, int], list[int]]) -> Verdict:
    """``fn(query, matrix, k)`` must return the indices of the ``k`` most similar rows, best first."""

    def test(fn: Callable[..., Any]) -> bool | str:
        scale = np.random.default_rng(1).uniform(0.2, 5.0, size=(50, 1)) * np.linspace(0.3, 3.0, 16)
        items = _vectors(50, 16) * scale  # rows of different lengths, columns of different spreads
        for seed, k in [(1, 3), (2, 1), (3, 7), (4, 12), (5, 50)]:
            query = items[seed * 7] / 3 + 0.8 * _vectors(1, 16, seed)[0]
            got = _indices(call_unchanged(fn, query, items, k))
            want = [i for i, _ in emb.top_k(query, items, k)]
            if got == want:
                continue
            named = _first_match(got, _search_variants(query, items, k, want), lambda g, v: g == [int(i) for i in v])
            if named:
                return named
            if len(got) != k:
                return f"asked for k={k} results, got {len(got)}"
            if sorted(got) == sorted(want):
                return f"right items, wrong order for k={k}: sort from most to least similar"
            return f"for k={k} search returned {got[:8]}, expected {want[:8]}"
        return True

    return run_check("semantic search", test, fn, hint="cosine: normalise the rows (axis=1) and the query, take dot products, best first",
                     more="scores = (matrix / np.linalg.norm(matrix, axis=1, keepdims=True)) @ query; np.argsort(-scores)[:k]")


# ----------------------------------------------------------------------------- exercise 3
def reference_mean_pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    m = np.asarray(mask)[..., None].astype(float)
    return (np.asarray(hidden, dtype=float) * m).sum(1) / m.sum(1)


def _pool_variants(hidden: np.ndarray, mask: np.ndarray) -> list[tuple[np.ndarray, str]]:
    m = mask[..., None].astype(float)
    masked = (hidden * m).sum(1)
    return [
        (hidden.mean(1), "you averaged over every position, padding included: only the real tokens (mask 1) count"),
        (masked / hidden.shape[1], "you divided by the number of positions (padding included): divide by each text's number of real tokens"),
        (masked, "you summed the real tokens' states: divide by each text's number of real tokens"),
        (masked / m.sum(), "you divided by the real tokens of the whole batch: divide by each text's own count (sum over axis=1)"),
        (hidden[:, 0], "you took the first token's state: average the states of all real tokens"),
        (np.stack([hidden[i, int(n) - 1] for i, n in enumerate(mask.sum(1))]), "you took the last real token's state: average all real tokens"),
        ((hidden * m).max(1), "that is max pooling: average the real tokens' states"),
    ]


def check_mean_pool(fn: Callable[[Any, Any], Any]) -> Verdict:
    """``fn(hidden (b, t, d), mask (b, t))`` must average each text's hidden states over its real tokens."""

    def test(fn: Callable[..., Any]) -> bool | str:
        hidden = _vectors(3 * 6 * 4, 1).reshape(3, 6, 4) + 1.0
        masks = [np.array([[1, 1, 1, 1, 1, 1], [1, 1, 0, 0, 0, 0], [1, 1, 1, 0, 0, 0]]),
                 np.array([[1, 1, 1, 1, 0, 0], [1, 0, 0, 0, 0, 0], [1, 1, 1, 1, 1, 0]], dtype=bool)]
        for mask in masks:
            got = np.asarray(_returned(call_unchanged(fn, hidden, mask)), dtype=float)
            want = reference_mean_pool(hidden, mask)
            if got.shape != want.shape:
                return f"hidden has shape {hidden.shape} (texts, tokens, dim): the result should have shape {want.shape} (one vector per text), got {got.shape}"
            if np.allclose(got, want, atol=1e-6):
                continue
            named = _first_match(got, _pool_variants(hidden, mask.astype(int)), lambda g, v: np.allclose(g, v, atol=1e-6))
            return named or "the averages differ from the expected ones: sum over the token axis (axis=1) and divide by each text's number of real tokens"
        return True

    return run_check("mean pooling", test, fn, hint="multiply by the mask (so padding adds 0), sum over tokens, divide by the real tokens' count",
                     more="(hidden * mask[..., None]).sum(axis=1) / mask.sum(axis=1, keepdims=True)")


# ----------------------------------------------------------------------------- exercise 4
def _pca_variants(x: np.ndarray) -> list[tuple[np.ndarray, str]]:
    xc = x - x.mean(0)
    _, _, vt = np.linalg.svd(xc, full_matrices=False)
    _, _, vt_raw = np.linalg.svd(x, full_matrices=False)
    return [
        (x @ vt_raw[:2].T, "centre the data first (subtract the mean of each column) before the SVD"),
        (xc @ vt_raw[:2].T, "centre the data before the SVD, not only before projecting"),
        (x @ vt[:2].T, "project the centred data, not the raw X"),
        (xc @ vt[:, :2], "you used the first two columns of Vt: the principal directions are its rows, Vt[:2]"),
        (xc @ vt[-2:].T, "you used the last two directions (least variance): the first rows of Vt explain the most"),
        (xc[:, :2], "you kept the first two columns of X: project onto the principal directions instead"),
        (x[:, :2], "you kept the first two columns of X: project onto the principal directions instead"),
        ((xc / x.std(0)) @ np.linalg.svd(xc / x.std(0), full_matrices=False)[2][:2].T, "you scaled each column to unit variance: only centre it"),
    ]


def _same_up_to_sign(got: np.ndarray, want: np.ndarray, tol: float = 1e-5) -> bool:
    return got.shape == want.shape and all(
        np.allclose(got[:, c], want[:, c], atol=tol) or np.allclose(got[:, c], -want[:, c], atol=tol) for c in range(want.shape[1]))


def check_pca(fn: Callable[[Any], Any]) -> Verdict:
    """``fn(X)`` must project the rows of X onto their 2 principal components -> (n, 2)."""

    def test(fn: Callable[..., Any]) -> bool | str:
        tall = _vectors(40, 10) * np.linspace(3, 0.2, 10) + np.linspace(5, -5, 10)  # clear 1st and 2nd directions, not centred
        wide = _vectors(8, 20, seed=2) * np.linspace(2, 0.5, 20) + 3.0  # fewer rows than columns
        for x in (tall, wide):
            got = np.asarray(_returned(call_unchanged(fn, x)), dtype=float)
            want, _ = emb.pca_2d(x)
            if got.shape != want.shape:
                if got.shape == (2, x.shape[1]):
                    return f"you returned the two directions {got.shape}; project the centred data onto them to get shape {want.shape}"
                return f"for X of shape {x.shape} expected shape {want.shape} (one point per row), got {got.shape}"
            if _same_up_to_sign(got, want):
                continue
            named = _first_match(got, _pca_variants(x), lambda g, v: _same_up_to_sign(g, v))
            return named or f"for X of shape {x.shape} the projection differs from the expected one (centre, SVD, first two directions)"
        return True

    return run_check("PCA to 2-D", test, fn, hint="centre X, take its SVD, and project onto the two directions of largest variance",
                     more="Xc = X - X.mean(0); _, _, Vt = np.linalg.svd(Xc, full_matrices=False); return Xc @ Vt[:2].T")


# ----------------------------------------------------------------------------- exercise 5
def check_nearest_neighbours(fn: Callable[[Any, int, int], list[int]], embedder: emb.Embedder | None = None) -> Verdict:
    """``fn(vectors, i, k)`` must return the k rows nearest to row i, *excluding i itself*, best first
    (tried on MiniLM embeddings of the course sentences, for several rows and k)."""

    def test(fn: Callable[..., Any]) -> bool | str:
        sentences = emb.course_sentences()
        vectors = (embedder or emb.Embedder()).embed([s["text"] for s in sentences])
        for i, k in ((0, 3), (9, 1), (20, 5), (33, 4), (len(vectors) - 1, 10)):
            got = _indices(call_unchanged(fn, vectors, i, k))
            raw = vectors @ vectors[i]
            sims = raw.copy()
            sims[i] = -np.inf
            want = [int(j) for j in np.argsort(-sims)[:k]]
            if got == want:
                continue
            if i in got:
                return f"the neighbours of sentence {i} include sentence {i} itself; leave it out"
            if len(got) != k:
                return f"asked for k={k} neighbours of sentence {i}, got {len(got)}" + (": the slice is off by one" if abs(len(got) - k) == 1 else "")
            if sorted(got) == sorted(want):
                return f"right neighbours of sentence {i}, wrong order: the most similar comes first"
            least = [int(j) for j in np.argsort(raw)]
            if got in (least[:k], least[1:k + 1], least[-k - 1:-1][::-1]):
                return f"those are the rows least similar to sentence {i}: sort from highest to lowest similarity"
            return f"neighbours of sentence {i} (k={k}): got {got}, expected {want}"
        return True

    return run_check("nearest neighbours", test, fn, hint="the dot products of row i with every row, with row i itself left out, best first",
                     more="similarities = vectors @ vectors[i]; similarities[i] = -np.inf; np.argsort(-similarities)[:k]")


# ----------------------------------------------------------------------------- exercise 6: build and measure
# Held-out sentences for the topic classifier, written for this check (never shown in the lab): each
# belongs to one of lesson 06's six topics, with few words in common with that topic's sentences.
HELDOUT_TOPICS: tuple[tuple[str, str], ...] = (
    ("cooking", "Grate some parmesan over the risotto just before serving."),
    ("cooking", "Marinate the chicken overnight in yoghurt, garlic and lemon."),
    ("cooking", "Preheat the oven to 180 degrees and grease the cake tin."),
    ("cooking", "Peel the potatoes, boil them, then mash them with a little milk."),
    ("cooking", "A pinch of sugar takes the sharp edge off a sour tomato soup."),
    ("astronomy", "Comets grow a glowing tail as they swing close to our star."),
    ("astronomy", "The telescope spotted a faint galaxy billions of years away."),
    ("astronomy", "Venus is the brightest object in the night sky after the Moon."),
    ("astronomy", "Neptune needs about 165 Earth years to circle once around the Sun."),
    ("astronomy", "A meteor shower peaks when our planet crosses a trail of comet dust."),
    ("sport", "The referee showed him a red card in the second half."),
    ("sport", "Our rowing crew trains on the river at dawn before the regatta."),
    ("sport", "He scored a hat-trick and the fans chanted his name."),
    ("sport", "The sprinter false-started and was disqualified from the final."),
    ("sport", "The golfer sank a long putt on the eighteenth hole to win the tournament."),
    ("finance", "The stock market fell sharply after the quarterly earnings report."),
    ("finance", "She set up a monthly transfer into her retirement pension."),
    ("finance", "A budget lists what you earn and what you spend each month."),
    ("finance", "The exchange rate between the euro and the dollar changed overnight."),
    ("finance", "Borrowers with a poor credit score pay higher rates on their loans."),
    ("health", "Eating plenty of vegetables and fruit keeps the gut healthy."),
    ("health", "See a doctor if the cough lasts longer than three weeks."),
    ("health", "Smoking damages the lungs and shortens life expectancy."),
    ("health", "A short nap after lunch can restore alertness."),
    ("health", "Antibiotics work against bacteria but do nothing against a cold."),
    ("computing", "The hard disk was full, so I deleted old videos to free space."),
    ("computing", "Press Ctrl and Z to undo the last change in most programs."),
    ("computing", "The website crashed because too many visitors arrived at once."),
    ("computing", "Two-factor authentication asks for a code from your phone when you log in."),
    ("computing", "Compile the source code before running the tests."),
)


def reference_topics(embedder: emb.Embedder, train_texts: Sequence[str], train_topics: Sequence[str], texts: Sequence[str],
                     k: int = REFERENCE_K) -> list[str]:
    """k-nearest-neighbour vote over MiniLM embeddings (ties: the topic of the nearer neighbour)."""
    sims = embedder.embed(list(texts)) @ embedder.embed(list(train_texts)).T
    out = []
    for row in sims:
        votes: dict[str, float] = {}
        for rank, j in enumerate(np.argsort(-row)[:k]):
            votes[train_topics[j]] = votes.get(train_topics[j], 0.0) + 1 - 1e-3 * rank
        out.append(max(votes, key=lambda t: votes[t]))
    return out


def check_topic_classifier(classify: Callable[..., Any], embedder: emb.Embedder | None = None, target: float = TOPIC_TARGET) -> Verdict:
    """``classify(train_texts, train_topics, texts)`` -> one topic per text; trained on lesson 06's 48
    sentences, it must label at least ``target`` of the held-out sentences right."""
    embedder = embedder or emb.Embedder()

    def test(fn: Callable[..., Any]) -> bool | str:
        sentences = emb.course_sentences()
        train_texts, train_topics = [s["text"] for s in sentences], [s["topic"] for s in sentences]
        texts, want = [t for _, t in HELDOUT_TOPICS], [topic for topic, _ in HELDOUT_TOPICS]
        got = _returned(call_unchanged(fn, train_texts, train_topics, texts))
        got = [str(t) for t in got] if not isinstance(got, str) else [got]
        if len(got) != len(texts):
            return f"return one topic per text: {len(texts)} texts in, {len(got)} topics out"
        unknown = sorted(set(got) - set(train_topics))
        if unknown:
            return f"{unknown[0]!r} is not one of the training topics {sorted(set(train_topics))}"
        yours = float(np.mean([g == w for g, w in zip(got, want)]))
        reference = float(np.mean([g == w for g, w in zip(reference_topics(embedder, train_texts, train_topics, texts), want)]))
        report = (f"your classifier labels {yours:.0%} of the {len(texts)} held-out sentences right (target {target:.0%}; "
                  f"the reference, a {REFERENCE_K}-nearest-neighbour vote over MiniLM embeddings, gets {reference:.0%})")
        print(report)
        if yours >= target:
            return True
        if len(set(got)) == 1:
            return f"{report}: every text got the topic {got[0]!r}; compare each text with the training sentences"
        return f"{report}: these sentences share few words with the training ones, so compare meanings (embeddings), not words"

    return run_check("topic classifier", test, classify, hint="embed both sets and let the most similar training sentences vote",
                     more="sims = embedder.embed(texts) @ embedder.embed(train_texts).T; for each row take the topics of np.argsort(-row)[:3] and keep the most common")
