"""course_utils.embeddings: vector maths from scratch, the MiniLM embedder, chat-model pooling."""

from __future__ import annotations

import numpy as np
import pytest

from course_utils import embeddings as emb
from course_utils.errors import InvalidOption


@pytest.fixture(scope="module")
def embedder():
    return emb.Embedder()


def test_cosine_and_top_k_match_numpy():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=8), rng.normal(size=8)
    assert emb.cosine(a, b) == pytest.approx(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
    assert emb.cosine(a, 3 * a) == pytest.approx(1.0) and emb.cosine(a, -a) == pytest.approx(-1.0)
    items = rng.normal(size=(30, 8)) * rng.uniform(0.1, 10, size=(30, 1))  # lengths differ: cosine != dot
    expected = np.argsort(-(items / np.linalg.norm(items, axis=1, keepdims=True)) @ (a / np.linalg.norm(a)))[:4]
    assert [i for i, _ in emb.top_k(a, items, 4)] == list(expected)
    assert emb.cosine_matrix(items[:3], items).shape == (3, 30)
    with pytest.raises(InvalidOption, match="zero vector"):
        emb.cosine([0, 0], [1, 2])
    with pytest.raises(InvalidOption):
        emb.cosine([1, 2], [1, 2, 3])
    with pytest.raises(InvalidOption, match="k must be"):
        emb.top_k(a, items, 0)


def test_pca_matches_the_covariance_eigenvectors():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(60, 5)) * [5, 2, 1, 0.5, 0.1]
    coords, variance = emb.pca_2d(x)
    centred = x - x.mean(0)
    eigvals, eigvecs = np.linalg.eigh(np.cov(centred.T))
    top = eigvecs[:, ::-1][:, :2]
    for c in range(2):
        assert np.allclose(np.abs(coords[:, c]), np.abs(centred @ top[:, c]), atol=1e-8)
    assert variance[0] > variance[1] and variance.sum() == pytest.approx(eigvals[::-1][:2].sum() / eigvals.sum())
    with pytest.raises(InvalidOption):
        emb.pca_2d([[1, 2]])


def test_embedder_gives_unit_vectors_in_input_order(embedder):
    texts = ["A cat sleeps on the sofa.", "Stock markets fell sharply today after the bank raised rates.", "Hi"]
    vectors = embedder.embed(texts)
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32 and embedder.dim == 384
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    for text, row in zip(texts, vectors, strict=True):  # sorting by length must not scramble rows
        assert np.allclose(embedder.embed_query(text), row, atol=1e-5)
    assert np.allclose(embedder.embed(texts, sort_by_length=False, batch_size=1), vectors, atol=1e-5)
    assert embedder.embed([]).shape == (0, 384)
    assert embedder.name == "all-MiniLM-L6-v2" and embedder.max_tokens == 256
    assert embedder.count_tokens(["hello world"]) == [4]  # [CLS] hello world [SEP]
    with pytest.raises(InvalidOption, match="single string"):
        embedder.embed("one text")
    with pytest.raises(InvalidOption):
        embedder.embed(["ok", 3])


def test_embeddings_capture_meaning(embedder):
    cat, kitten, tax = embedder.embed(["A cat is sitting on the mat.", "A kitten rests on a rug.", "The tax return is due in April."])
    assert cat @ kitten > cat @ tax + 0.3


def test_course_sentences_are_found_by_minilm_far_better_than_by_words(embedder):
    sentences, queries = emb.course_sentences(), emb.course_queries()
    assert len(sentences) == 48 and len({s["id"] for s in sentences}) == 48 and len(queries) == 28
    ids = [s["id"] for s in sentences]
    gold = np.array([ids.index(q["relevant"]) for q in queries])
    sims = embedder.embed([q["query"] for q in queries]) @ embedder.embed([s["text"] for s in sentences]).T
    assert (sims.argmax(1) == gold).mean() >= 0.85


@pytest.mark.parametrize(("precision", "min_cosine"), [("bf16", 0.999), ("int8", 0.97)])
def test_faster_precisions_stay_close(embedder, precision, min_cosine):
    texts = [s["text"] for s in emb.course_sentences()[:16]]
    fp32 = embedder.embed(texts)
    fast = emb.Embedder(precision=precision).embed(texts)
    assert fast.dtype == np.float32 and np.allclose(np.linalg.norm(fast, axis=1), 1, atol=1e-3)
    assert (fp32 * fast).sum(1).mean() > min_cosine
    assert not np.array_equal(fp32, fast)  # it really ran differently
    with pytest.raises(InvalidOption, match="precision"):
        emb.Embedder(precision="fp8")


def test_mean_pooled_hidden_states_ignore_padding(hf_model):
    model, tokenizer = hf_model
    texts = ["Short one.", "A much longer sentence that needs several more tokens than the first."]
    states = emb.mean_pooled_hidden_states(model, tokenizer, texts)
    assert states.shape == (model.config.num_hidden_layers + 1, 2, model.config.hidden_size)
    alone = emb.mean_pooled_hidden_states(model, tokenizer, texts[:1])
    assert np.allclose(states[:, 0], alone[:, 0], atol=1e-4)  # padding in the batch changes nothing
    assert np.allclose(np.linalg.norm(states, axis=-1), 1, atol=1e-5)
    with pytest.raises(InvalidOption):
        emb.mean_pooled_hidden_states(model, tokenizer, [])


def test_bad_search_input_gets_one_clear_line():
    items = np.eye(3)
    for query, rows, match in [([1, 0, 0], np.zeros((0, 3)), "nothing to search"), ([1, 0], items, "2 dimensions but the items have 3")]:
        with pytest.raises(InvalidOption, match=match) as err:
            emb.top_k(query, rows, k=2)
        assert "Fix:" in str(err.value)
    for k in (0, -1, 2.5, True, "3"):
        with pytest.raises(InvalidOption, match="k must be a positive whole number"):
            emb.top_k([1, 0, 0], items, k=k)
    assert emb.check_k(np.int64(4)) == 4
    for threads in (0, -2, 1.5):
        with pytest.raises(InvalidOption, match="threads"):
            emb.Embedder(threads=threads)
