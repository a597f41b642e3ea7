"""Lab 06's checks catch realistic wrong answers (❌ naming the mistake), accept unusual right ones (✅),
say "not done" for the TODO stub, and keep the solution-level hint (``more=``) out of the first ❌."""

from __future__ import annotations

import collections

import numpy as np
import pytest
import torch
from verdicts import fails_naming, todo

from course_utils import embeddings as emb
from course_utils.bm25 import tokenize
from course_utils.checks import embeddings as checks


class RememberingEmbedder:
    """The real MiniLM, each list of texts embedded once (the checks embed the same sentences many times)."""

    def __init__(self):
        self.real, self.seen = emb.Embedder(), {}

    def embed(self, texts):
        key = tuple(texts)
        if key not in self.seen:
            self.seen[key] = self.real.embed(list(texts))
        return self.seen[key].copy()


@pytest.fixture(scope="module")
def embedder():
    return RememberingEmbedder()


# ----------------------------------------------------------------------------- 1. cosine
def cos_in_place(a, b):
    a /= np.linalg.norm(a)
    return float(a @ b / np.linalg.norm(b))


@pytest.mark.parametrize(("wrong", "words"), [
    (lambda a, b: float(a @ b), ("dot product",)),
    (lambda a, b: float(a @ b / np.linalg.norm(a)), ("length of `a` only",)),
    (lambda a, b: float(a @ b / (np.linalg.norm(a) ** 2)), ("length of `a` twice",)),
    (lambda a, b: float(a @ b // (np.linalg.norm(a) * np.linalg.norm(b))), ("rounded down", "//")),
    (lambda a, b: abs(float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))), ("sign is lost",)),
    (lambda a, b: float(a @ b / (len(a) * len(b))), ("number of entries",)),
    (lambda a, b: float(a @ b / (np.abs(a).sum() * np.abs(b).sum())), ("L1",)),
    (cos_in_place, ("in place",)),
])
def test_cosine_mistakes(wrong, words):
    assert fails_naming(checks.check_cosine(wrong), *words)


def test_cosine_right_answers_and_stub():
    def by_torch(a, b):
        return torch.nn.functional.cosine_similarity(torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64), dim=0).item()

    def by_angle(a, b, eps=0.0):  # an extra argument with a default; sums instead of norms
        a, b = np.asarray(a, float), np.asarray(b, float)
        return (a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum() + eps)

    assert checks.check_cosine(by_torch).passed
    assert checks.check_cosine(by_angle).passed
    assert checks.check_cosine(emb.cosine).passed
    assert checks.check_cosine(todo).status == "not done"


# ----------------------------------------------------------------------------- 2. search
def search_ok(q, m, k):
    return [i for i, _ in emb.top_k(q, m, k)]


def search_in_place(q, m, k):
    m /= np.linalg.norm(m, axis=1, keepdims=True)
    return list(np.argsort(-(m @ q))[:k])


def cosines(q, m):
    return m @ q / (np.linalg.norm(m, axis=1) * np.linalg.norm(q))


@pytest.mark.parametrize(("wrong", "words"), [
    (lambda q, m, k: list(np.argsort(-(m @ q))[:k]), ("dot product", "normalise")),
    (lambda q, m, k: list(np.argsort(-((m / np.linalg.norm(m, axis=0)) @ q))[:k]), ("columns", "axis=1")),
    (lambda q, m, k: list(np.argsort(cosines(q, m))[:k]), ("least similar",)),
    (lambda q, m, k: list(np.argsort(cosines(q, m))[-k:]), ("least similar first",)),
    (lambda q, m, k: list(np.argsort(-cosines(q, m))[:k + 1]), ("k + 1",)),
    (lambda q, m, k: list(np.argsort(-cosines(q, m))[:5]), ("5 results whatever k",)),
    (search_in_place, ("in place",)),
])
def test_search_mistakes(wrong, words):
    assert fails_naming(checks.check_search(wrong), *words)


def test_search_right_answers_and_stub():
    def by_sorted(query, matrix, k, reverse=True):  # plain Python sorting, an extra argument
        scores = [emb.cosine(row, query) for row in matrix]
        return sorted(range(len(matrix)), key=lambda i: scores[i], reverse=reverse)[:k]

    assert checks.check_search(search_ok).passed
    assert checks.check_search(by_sorted).passed
    assert checks.check_search(lambda q, m, k: torch.topk(torch.as_tensor(cosines(q, m)), k).indices).passed
    assert checks.check_search(todo).status == "not done"


# ----------------------------------------------------------------------------- 3. mean pooling
def pool_in_place(hidden, mask):
    hidden *= mask[..., None]
    return hidden.sum(1) / mask.sum(1, keepdims=True)


@pytest.mark.parametrize(("wrong", "words"), [
    (lambda h, m: h.mean(1), ("padding included",)),
    (lambda h, m: (h * m[..., None]).sum(1) / h.shape[1], ("number of positions",)),
    (lambda h, m: (h * m[..., None]).sum(1), ("summed",)),
    (lambda h, m: (h * m[..., None]).sum(1) / m.sum(), ("whole batch",)),
    (lambda h, m: h[:, 0], ("first token",)),
    (lambda h, m: (h * m[..., None]).sum(0) / m.sum(0)[..., None], ("shape",)),
    (pool_in_place, ("in place",)),
])
def test_mean_pool_mistakes(wrong, words):
    assert fails_naming(checks.check_mean_pool(wrong), *words)


def test_mean_pool_right_answers_and_stub():
    def by_loop(hidden, mask):
        return np.stack([hidden[i][np.asarray(mask[i], bool)].mean(0) for i in range(len(hidden))])

    def by_torch(hidden, mask):
        h = torch.as_tensor(hidden)
        m = torch.as_tensor(mask).to(h.dtype).unsqueeze(-1)
        return (h * m).sum(1) / m.sum(1).clamp(min=1)

    assert checks.check_mean_pool(by_loop).passed
    assert checks.check_mean_pool(by_torch).passed
    assert checks.check_mean_pool(checks.reference_mean_pool).passed
    assert checks.check_mean_pool(todo).status == "not done"


# ----------------------------------------------------------------------------- 4. PCA
def pca_in_place(x):
    x -= x.mean(0)
    return x @ np.linalg.svd(x, full_matrices=False)[2][:2].T


def pca_no_centre(x):
    return x @ np.linalg.svd(x, full_matrices=False)[2][:2].T


def pca_columns(x):
    xc = x - x.mean(0)
    return xc @ np.linalg.svd(xc, full_matrices=False)[2][:, :2]


def pca_last(x):
    xc = x - x.mean(0)
    return xc @ np.linalg.svd(xc, full_matrices=False)[2][-2:].T


@pytest.mark.parametrize(("wrong", "words"), [
    (pca_no_centre, ("centre the data first",)),
    (pca_columns, ("columns of Vt",)),
    (pca_last, ("last two directions",)),
    (lambda x: x[:, :2], ("first two columns of X",)),
    (lambda x: np.linalg.svd(x - x.mean(0), full_matrices=False)[2][:2], ("two directions",)),
    (pca_in_place, ("in place",)),
])
def test_pca_mistakes(wrong, words):
    assert fails_naming(checks.check_pca(wrong), *words)


def test_pca_right_answers_and_stub():
    def by_eigh(x):  # eigenvectors of the covariance instead of an SVD
        xc = x - x.mean(0)
        values, vectors = np.linalg.eigh(xc.T @ xc)
        return xc @ vectors[:, np.argsort(-values)[:2]]

    def by_u_s(x):
        u, s, _ = np.linalg.svd(x - x.mean(0), full_matrices=True)
        return u[:, :2] * s[:2]

    assert checks.check_pca(by_eigh).passed
    assert checks.check_pca(by_u_s).passed
    assert checks.check_pca(lambda x: emb.pca_2d(x)[0]).passed
    assert checks.check_pca(todo).status == "not done"


# ----------------------------------------------------------------------------- 5. nearest neighbours
def nn_ok(vectors, i, k):
    sims = vectors @ vectors[i]
    sims[i] = -np.inf
    return list(np.argsort(-sims)[:k])


def nn_in_place(vectors, i, k):
    vectors[i] = -vectors[i]  # "hide" row i by flipping it
    sims = vectors @ -vectors[i]
    return [j for j in np.argsort(-sims) if j != i][:k]


@pytest.mark.parametrize(("wrong", "words"), [
    (lambda v, i, k: list(np.argsort(-(v @ v[i]))[:k]), ("itself",)),
    (lambda v, i, k: nn_ok(v, i, k)[:-1], ("k=", "off by one")),
    (lambda v, i, k: nn_ok(v, i, k)[::-1], ("wrong order",)),
    (lambda v, i, k: list(np.argsort(v @ v[i])[1:k + 1]), ("least similar",)),
    (lambda v, i, k: nn_ok(v, i, 3), ("k=1",)),
    (nn_in_place, ("in place",)),
])
def test_nearest_neighbours_mistakes(wrong, words, embedder):
    assert fails_naming(checks.check_nearest_neighbours(wrong, embedder), *words)


def test_nearest_neighbours_right_answers_and_stub(embedder):
    def skip_first(vectors, i, k):  # row i is its own best match (a unit vector), so drop the first hit
        return list(np.argsort(-(vectors @ vectors[i]), kind="stable")[1:k + 1])

    assert checks.check_nearest_neighbours(nn_ok, embedder).passed
    assert checks.check_nearest_neighbours(skip_first, embedder).passed
    assert checks.check_nearest_neighbours(todo, embedder).status == "not done"


# ----------------------------------------------------------------------------- 6. topic classifier (build and measure)
def knn_topics(embedder, k=3):
    def classify(train_texts, train_topics, texts):
        sims = embedder.embed(texts) @ embedder.embed(train_texts).T
        return [collections.Counter(train_topics[j] for j in np.argsort(-row)[:k]).most_common(1)[0][0] for row in sims]
    return classify


def centroid_topics(embedder):  # another right design: the nearest topic centre
    def classify(train_texts, train_topics, texts):
        vectors, names = embedder.embed(train_texts), sorted(set(train_topics))
        centres = np.stack([vectors[[t == n for t in train_topics]].mean(0) for n in names])
        return [names[j] for j in np.argmax(embedder.embed(texts) @ centres.T, axis=1)]
    return classify


def word_overlap_topics(train_texts, train_topics, texts):  # lazy: compares words, not meanings
    bags = [set(tokenize(t)) for t in train_texts]
    out = []
    for text in texts:
        words = set(tokenize(text))
        scores = [len(words & bag) / len(words | bag) for bag in bags]
        out.append(train_topics[int(np.argmax(scores))])
    return out


def classify_in_place(train_texts, train_topics, texts):
    train_topics.sort()  # "tidies" the caller's list
    return [train_topics[0]] * len(texts)


@pytest.mark.parametrize(("wrong", "words"), [
    (word_overlap_topics, ("target 80%", "compare meanings")),
    (lambda tt, tp, texts: [collections.Counter(tp).most_common(1)[0][0]] * len(texts), ("every text got the topic",)),
    (lambda tt, tp, texts: tp[: len(texts) - 1], ("one topic per text",)),
    (lambda tt, tp, texts: ["space"] * len(texts), ("not one of the training topics",)),
    (classify_in_place, ("in place",)),
])
def test_topic_classifier_mistakes(wrong, words, embedder):
    assert fails_naming(checks.check_topic_classifier(wrong, embedder), *words)


def test_topic_classifier_reports_the_numbers_and_accepts_right_designs(embedder, capsys):
    assert checks.check_topic_classifier(knn_topics(embedder), embedder).passed
    printed = capsys.readouterr().out
    assert "target 80%" in printed and "the reference" in printed and "held-out sentences" in printed
    assert checks.check_topic_classifier(centroid_topics(embedder), embedder).passed
    assert checks.check_topic_classifier(knn_topics(embedder, k=1), embedder).passed
    assert checks.check_topic_classifier(todo, embedder).status == "not done"


def test_topic_classifier_target_is_not_met_by_chance(embedder):
    """The held-out set is balanced and the target is far above guessing, and a higher target fails the reference."""
    topics = collections.Counter(t for t, _ in checks.HELDOUT_TOPICS)
    assert set(topics) == {s["topic"] for s in emb.course_sentences()} and len(set(topics.values())) == 1
    assert 3 / len(topics) < checks.TOPIC_TARGET
    assert not checks.check_topic_classifier(knn_topics(embedder), embedder, target=1.01).passed
