"""Lab 07's checks catch realistic wrong answers (❌ naming the mistake), accept unusual right ones (✅),
say "not done" for the TODO stub, and keep the solution-level hint (``more=``) out of the first ❌."""

from __future__ import annotations

import math
import re
from collections import Counter

import numpy as np
import pytest
from verdicts import fails_naming, todo

from course_utils import rag
from course_utils.bm25 import BM25, tokenize
from course_utils.checks import rag as checks


@pytest.fixture(scope="module")
def lab_index():
    """The lab's own small index (cached like the lab's), for the hybrid check."""
    docs, questions = rag.boolq_corpus(60)
    chunks = rag.chunk_documents(docs, "sentences", size=800)
    store, _ = rag.cached_store(chunks, prefix="lab07")
    return store, chunks, questions


# ----------------------------------------------------------------------------- 1. fixed-size chunks
def chunks_no_overlap(text, size, overlap):
    return [text[i:i + size] for i in range(0, len(text), size)]


def chunks_run_on(text, size, overlap):
    return [text[i:i + size] for i in range(0, len(text), size - overlap)]


def chunks_drop_tail(text, size, overlap):
    return [text[i:i + size] for i in range(0, max(len(text) - size + 1, 0), size - overlap)]


def chunks_step_by_overlap(text, size, overlap):
    return chunks_run_on(text, size, size - overlap) if overlap else chunks_no_overlap(text, size, 0)


@pytest.mark.parametrize(("wrong", "words"), [
    (chunks_no_overlap, ("do not overlap",)),
    (chunks_run_on, ("adds nothing new",)),
    (chunks_drop_tail, ("end of the text is missing",)),
    (chunks_step_by_overlap, ("fixed_chunks(",)),
    (lambda text, size, overlap: [text[i:i + size + 1] for i in range(0, len(text), size - overlap)], ("longer than size",)),
])
def test_fixed_chunks_mistakes(wrong, words):
    assert fails_naming(checks.check_fixed_chunks(wrong), *words)


def test_fixed_chunks_right_answers_and_stub():
    def by_while(text, size, overlap, keep_empty=False):  # a while loop and an extra argument
        out, start = [], 0
        while start < len(text):
            out.append(text[start:start + size])
            if start + size >= len(text):
                break
            start += size - overlap
        return out

    assert checks.check_fixed_chunks(checks.reference_fixed_chunks).passed
    assert checks.check_fixed_chunks(by_while).passed
    assert checks.check_fixed_chunks(todo).status == "not done"


# ----------------------------------------------------------------------------- 2. recall@k and MRR
def recall_plus_one(rankings, relevant, k):
    return rag.recall_at_k(rankings, relevant, k + 1)


def recall_count(rankings, relevant, k):
    return sum(r in ranking[:k] for ranking, r in zip(rankings, relevant))


def mrr_from_zero(rankings, relevant):
    return sum(1 / (ranking.index(r) + 2) for ranking, r in zip(rankings, relevant) if r in ranking) / len(rankings)


def mrr_hits_only(rankings, relevant):
    ranks = [ranking.index(r) + 1 for ranking, r in zip(rankings, relevant) if r in ranking]
    return sum(1 / x for x in ranks) / len(ranks)


def recall_in_place(rankings, relevant, k):
    rankings[0].sort()
    return rag.recall_at_k(rankings, relevant, k)


@pytest.mark.parametrize(("recall", "mrr", "words"), [
    (recall_plus_one, rag.mrr, ("k + 1",)),
    (recall_count, rag.mrr, ("number of hits",)),
    (rag.recall_at_k, mrr_from_zero, ("off by one",)),
    (rag.recall_at_k, mrr_hits_only, ("miss counts 0",)),
    (lambda r, rel, k: 1.0, rag.mrr, ("expected",)),
    (recall_in_place, rag.mrr, ("in place",)),
])
def test_recall_mrr_mistakes(recall, mrr, words):
    assert fails_naming(checks.check_recall_mrr(recall, mrr), *words)


def test_recall_mrr_right_answers_and_stub():
    def recall_np(rankings, relevant, k):
        return float(np.mean([rel in set(r[:k]) for r, rel in zip(rankings, relevant)]))

    def mrr_loop(rankings, relevant, cutoff=None):  # an extra argument with a default
        total = 0.0
        for ranking, rel in zip(rankings, relevant):
            for rank, doc in enumerate(ranking[:cutoff], start=1):
                if doc == rel:
                    total += 1 / rank
                    break
        return total / len(rankings)

    assert checks.check_recall_mrr(recall_np, mrr_loop).passed
    assert checks.check_recall_mrr(todo, rag.mrr).status == "not done"
    assert checks.check_recall_mrr(rag.recall_at_k, todo).status == "not done"


# ----------------------------------------------------------------------------- 3. BM25
def bm25_ref(query, docs, k1=1.2, b=0.75, distinct=True, idf=None, presence=False, lengths=True):
    counts = [Counter(tokenize(d)) for d in docs]
    lens = [sum(c.values()) for c in counts]
    avg = sum(lens) / len(lens)
    words = set(tokenize(query)) if distinct else tokenize(query)
    scores = np.zeros(len(docs))
    for w in words:
        df = sum(w in c for c in counts)
        if not df:
            continue
        weight = idf(len(docs), df) if idf else math.log(1 + (len(docs) - df + 0.5) / (df + 0.5))
        for i, c in enumerate(counts):
            if c[w]:
                tf = 1 if presence else c[w]
                length = lens[i] if lengths else avg
                scores[i] += weight * tf * (k1 + 1) / (tf + k1 * (1 - b + b * length / avg))
    return scores


@pytest.mark.parametrize(("wrong", "words"), [
    (lambda q, docs, k1=1.2, b=0.75: bm25_ref(q, docs, k1, b, distinct=False), ("counted twice",)),
    (lambda q, docs, k1=1.2, b=0.75: bm25_ref(q, docs, k1, b, idf=lambda n, df: math.log(n / df)), ("log(N / df)",)),
    (lambda q, docs, k1=1.2, b=0.75: bm25_ref(q, docs, k1, b, presence=True), ("tf is the number of times",)),
    (lambda q, docs, k1=1.2, b=0.75: bm25_ref(q, docs, k1, b, lengths=False), ("document length",)),
    (lambda q, docs, k1=1.2, b=0.75: bm25_ref(q, docs), ("whatever was passed", "k1=2.0")),
    (lambda q, docs: bm25_ref(q, docs), ("unexpected keyword",)),
])
def test_bm25_mistakes(wrong, words):
    assert fails_naming(checks.check_bm25(wrong), *words)


def test_bm25_right_answers_and_stub():
    assert checks.check_bm25(lambda q, docs, k1=1.2, b=0.75: BM25(docs, k1=k1, b=b).scores(q)).passed
    assert checks.check_bm25(lambda q, docs, k1=1.2, b=0.75: bm25_ref(q, docs, k1, b).tolist()).passed  # a list is fine
    assert checks.check_bm25(todo).status == "not done"


# ----------------------------------------------------------------------------- 4. RRF
def rrf_from_zero(rankings, k=60):
    scores = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking):
            scores[item] = scores.get(item, 0) + 1 / (k + rank)
    return sorted(scores.items(), key=lambda p: -p[1])


def rrf_k60(rankings, k=60):
    return rag.reciprocal_rank_fusion(rankings, k=60)


def rrf_ascending(rankings, k=60):
    return rag.reciprocal_rank_fusion(rankings, k=k)[::-1]


def rrf_in_place(rankings, k=60):
    for ranking in rankings:
        ranking.reverse()
    return rag.reciprocal_rank_fusion([r[::-1] for r in rankings], k=k)


def rrf_first_list_only(rankings, k=60):
    return rag.reciprocal_rank_fusion(rankings[:1], k=k)


@pytest.mark.parametrize(("wrong", "words"), [
    (rrf_from_zero, ("off by one",)),
    (rrf_k60, ("use the k you are given",)),
    (rrf_ascending, ("best first",)),
    (rrf_in_place, ("in place",)),
    (rrf_first_list_only, ("should score exactly the ids",)),
])
def test_rrf_mistakes(wrong, words):
    assert fails_naming(checks.check_rrf(wrong), *words)


def test_rrf_right_answers_and_stub():
    def rrf_counter(rankings, k=60, weights=None):  # Counter and an extra argument
        total = Counter()
        for w, ranking in zip(weights or [1] * len(rankings), rankings):
            total.update({item: w / (k + rank) for rank, item in enumerate(ranking, start=1)})
        return total.most_common()

    assert checks.check_rrf(rrf_counter).passed
    assert checks.check_rrf(lambda rankings, k=60: rag.reciprocal_rank_fusion(rankings, k)).passed
    assert checks.check_rrf(todo).status == "not done"


# ----------------------------------------------------------------------------- 5. citations
def cite_ok(text, n):
    return rag.parse_citations(text, n)[0]


def cite_one_digit(text, n):
    out = []
    for group in re.findall(r"\[([\d,\s]+)\]", text):
        for d in re.findall(r"\d", group):
            if 1 <= int(d) <= n and int(d) not in out:
                out.append(int(d))
    return out


@pytest.mark.parametrize(("wrong", "words"), [
    (lambda text, n: [int(x) for x in re.findall(r"\[(\d+)\]", text)], ("each source once",)),
    (lambda text, n: list(dict.fromkeys(int(x) for g in re.findall(r"\[([\d,\s]+)\]", text) for x in re.findall(r"\d+", g))), ("1 to n_sources",)),
    (lambda text, n: sorted(cite_ok(text, n)), ("order of first appearance",)),
    (cite_one_digit, ("two digits",)),
    (lambda text, n: list(dict.fromkeys(int(x) for x in re.findall(r"\[(\d+)\]", text) if 1 <= int(x) <= n)), ("several numbers",)),
])
def test_citation_mistakes(wrong, words):
    assert fails_naming(checks.check_citations(wrong), *words)


def test_citation_right_answers_and_stub():
    def by_scanning(text, n_sources, seen=None):  # no regular expression at all
        seen, out, inside, number = [], [], False, ""
        for ch in text:
            if ch == "[":
                inside, number, group, ok = True, "", [], True
            elif inside and ch.isdigit():
                number += ch
            elif inside and ch in ", ]":
                if number:
                    group.append(int(number))
                number = ""
                if ch == "]":
                    inside = False
                    if ok:
                        out += group
            elif inside:
                ok = False
        for x in out:
            if 1 <= x <= n_sources and x not in seen:
                seen.append(x)
        return seen

    assert checks.check_citations(cite_ok).passed
    assert checks.check_citations(by_scanning).passed
    assert checks.check_citations(todo).status == "not done"


# ----------------------------------------------------------------------------- 6. injection filter
@pytest.mark.parametrize(("wrong", "words"), [
    (lambda text: True, ("ordinary passages were flagged",)),
    (lambda text: False, ("attacks got through",)),
    (lambda text: "ignore" in text, ("attacks got through",)),
    (lambda text: bool(re.search(r"ignore|instructions|only|not", text, re.I)), ("ordinary passages were flagged",)),
])
def test_injection_filter_mistakes(wrong, words):
    assert fails_naming(checks.check_injection_filter(wrong), *words)


def test_injection_filter_right_answers_and_stub():
    assert checks.check_injection_filter(lambda text: bool(rag.find_injection(text))).passed
    assert checks.check_injection_filter(todo).status == "not done"


# ----------------------------------------------------------------------------- 7. hybrid with the learner's fusion
@pytest.mark.parametrize(("wrong", "words"), [
    (rrf_ascending, ("pass exercise 4 first",)),
    (rrf_first_list_only, ("pass exercise 4 first",)),
    (lambda rankings, k=60: [(i, 1.0) for i in rankings[-1]], ("pass exercise 4 first",)),
])
def test_hybrid_mistakes(wrong, words, lab_index):
    assert fails_naming(checks.check_hybrid(wrong, *lab_index), *words)


def test_hybrid_right_answer_and_stub(lab_index):
    assert checks.check_hybrid(lambda rankings, k=60: rag.reciprocal_rank_fusion(rankings, k), *lab_index).passed
    assert checks.check_hybrid(todo, *lab_index).status == "not done"


# ----------------------------------------------------------------------------- 8. a retriever that beats BM25 (build and measure)
def doc_ids(hits, k):
    return list(dict.fromkeys(h.doc_id for h in hits))[:k]


def bm25_only(docs):  # lazy: the baseline itself
    sparse = rag.BM25Retriever(rag.chunk_documents(docs, "sentences", size=800))
    return lambda question, k: doc_ids(sparse.search(question, 20), k)


def first_documents(docs):  # lazy: no search at all
    return lambda question, k: list(docs)[:k]


def chunk_ids(docs):
    sparse = rag.BM25Retriever(rag.chunk_documents(docs, "sentences", size=800))
    return lambda question, k: [h.id for h in sparse.search(question, k)]


def repeats(docs):
    chunks = rag.chunk_documents(docs, "sentences", size=200)
    sparse = rag.BM25Retriever(chunks)
    return lambda question, k: [h.doc_id for h in sparse.search(question, k)]


def in_place(docs):
    docs.clear()
    return lambda question, k: []


def dense_only(docs):  # right: the embeddings alone already beat BM25 on these questions
    store, _ = rag.cached_store(rag.chunk_documents(docs, "sentences", size=800), prefix="lab07-heldout")
    return lambda question, k: doc_ids(store.search(question, 20), k)


def weighted_hybrid(docs, dense_weight=2.0):  # right: the lab's hybrid, trusting the dense list more
    chunks = rag.chunk_documents(docs, "sentences", size=800)
    store, _ = rag.cached_store(chunks, prefix="lab07-heldout")
    sparse = rag.BM25Retriever(chunks)
    by_id = {c.id: c.doc_id for c in chunks}

    def search(question, k):
        fused = rag.reciprocal_rank_fusion([[h.id for h in store.search(question, 30)], [h.id for h in sparse.search(question, 30)]],
                                           k=60, weights=[dense_weight, 1.0])
        return list(dict.fromkeys(by_id[i] for i, _ in fused))[:k]
    return search


@pytest.mark.parametrize(("wrong", "words"), [
    (bm25_only, ("that is BM25's recall", "target")),
    (first_documents, ("target", "the reference hybrid gets")),
    (chunk_ids, ("not a document id",)),
    (repeats, ("repeats a document",)),
    (in_place, ("in place",)),
    (lambda docs: None, ("returned None",)),
])
def test_beats_bm25_mistakes(wrong, words):
    assert fails_naming(checks.check_beats_bm25(wrong), *words)


def test_beats_bm25_right_answers_and_stub(capsys):
    assert checks.check_beats_bm25(weighted_hybrid).passed
    printed = capsys.readouterr().out
    assert "held-out questions" in printed and "BM25's" in printed and "the reference hybrid gets" in printed
    assert checks.check_beats_bm25(dense_only).passed
    assert checks.check_beats_bm25(todo).status == "not done"


def test_the_held_out_set_is_the_same_in_every_process_state():
    """Importing more modules changes which entries Python documents; the held-out set must not move with them."""
    before, questions = checks.heldout_corpus()
    import chromadb  # noqa: F401  (imports many modules)
    after, _ = checks.heldout_corpus()
    assert sorted(before) == sorted(after) and len(questions) >= 40
    assert all(r & set(before) for _, r in questions)
