# %% [markdown]
# # Lab 07 · RAG: the pieces, from scratch
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/local-llm-lab/local-llm-lab/blob/main/labs/07_rag_lab.ipynb)
#
# Six short exercises on lesson 07, a seventh check that puts two of them to work, and an eighth exercise where
# you build a retriever that must beat BM25 on documents and questions it has never seen. Replace each
# `raise NotImplementedError` with your code, run the cell, and read the check's verdict: ✅ means right,
# ❌ comes with a hint, ⏳ means not done yet.
#
# You will write fixed-size chunking with overlap, recall@k and MRR, BM25 scoring, reciprocal rank fusion,
# citation parsing and a prompt-injection filter, then run your fusion as a hybrid retriever over a real
# Chroma store of BoolQ passages.
#
# **Prerequisites:** lesson 07.
#
# **Run time:** 34 s on a 2-core CPU (Intel(R) Xeon(R) Processor), measured by `course run` on 2026-12-02; a slower machine takes longer.
#
# The small index is built once and cached.

# %%
# Colab only: install the course (~5 min the first time). Does nothing on your own machine.
import sys
if "google.colab" in sys.modules:
    # !git clone -q --depth 1 https://github.com/local-llm-lab/local-llm-lab /content/local-llm-lab
    # !bash /content/local-llm-lab/tools/install.sh --system

# %% tags=["parameters"]
BACKEND = "auto"  # not used: no text is generated in this lab
MODEL = None
SEED = 0
N_PASSAGES = 60  # BoolQ passages in the lab's index (exercise 7)

# %%
import math
import re
from collections import Counter

import numpy as np

from course_utils import rag, setup_notebook
from course_utils.bm25 import tokenize
from course_utils.checks.rag import (
    check_beats_bm25, check_bm25, check_citations, check_fixed_chunks, check_hybrid, check_injection_filter, check_recall_mrr,
    check_rrf,
)

cfg = setup_notebook(seed=SEED)
docs, questions = rag.boolq_corpus(N_PASSAGES)
chunks = rag.chunk_documents(docs, "sentences", size=800)
store, report = rag.cached_store(chunks, prefix="lab07")
print(f"{len(docs)} passages, {len(chunks)} chunks, {len(questions)} questions; {report}")

# %% [markdown]
# ## Exercise 1: fixed-size chunks with overlap
#
# Write `fixed_chunks(text, size, overlap)`: windows of `size` characters; each window starts `size - overlap`
# characters after the previous one; stop once a window reaches the end of the text (so no window lies entirely
# inside the previous one), keeping the last, shorter window. `fixed_chunks("abcdefghij", 4, 1)` is
# `["abcd", "defg", "ghij"]`. An empty text gives `[]`; the check also tries two-digit sizes and `overlap=0`.

# %%
def fixed_chunks(text: str, size: int, overlap: int) -> list[str]:
    chunks = []
    for start in range(0, len(text), size - overlap):
        chunks.append(text[start:start + size])
        if start + size >= len(text):
            break
    return chunks


check_fixed_chunks(fixed_chunks)

# %% [markdown]
# ## Exercise 2: recall@k and MRR
#
# `rankings` is a list (one per query) of ranked document ids, best first; `relevant` holds the one right id per
# query.
# - `recall_at_k(rankings, relevant, k)`: the fraction of queries whose right id is among the first `k`.
# - `mrr(rankings, relevant)`: the mean over queries of `1 / rank` of the right id (ranks start at 1), or 0 when it
#   is not in the ranking.

# %%
def recall_at_k(rankings: list[list[str]], relevant: list[str], k: int) -> float:
    return sum(rel in ranking[:k] for ranking, rel in zip(rankings, relevant)) / len(rankings)


def mrr(rankings: list[list[str]], relevant: list[str]) -> float:
    total = 0.0
    for ranking, rel in zip(rankings, relevant):
        if rel in ranking:
            total += 1 / (ranking.index(rel) + 1)
    return total / len(rankings)


check_recall_mrr(recall_at_k, mrr)

# %% [markdown]
# ## Exercise 3: BM25
#
# Write `bm25_scores(query, docs, k1=1.2, b=0.75)` returning one score per document (a numpy array). Tokenize
# with `tokenize` (lower-case words, stop words removed). For each **distinct** query word `w` present in a
# document `d`:
#
# `idf(w) × tf × (k1 + 1) / (tf + k1 × (1 − b + b × len(d) / avg_len))`
#
# with `tf` the count of `w` in `d`, `len(d)` its number of tokens, `avg_len` the average over all documents,
# and `idf(w) = log(1 + (N − df + 0.5) / (df + 0.5))` where `N` is the number of documents and `df` how many
# contain `w`. `Counter(tokens)` counts words. The check also calls it with other `k1` and `b`, and with a query
# that repeats a word.

# %%
def bm25_scores(query: str, docs: list[str], k1: float = 1.2, b: float = 0.75) -> np.ndarray:
    counts = [Counter(tokenize(d)) for d in docs]
    lengths = [sum(c.values()) for c in counts]
    avg_len = sum(lengths) / len(lengths)
    scores = np.zeros(len(docs))
    for word in set(tokenize(query)):
        df = sum(word in c for c in counts)
        if df == 0:
            continue
        idf = math.log(1 + (len(docs) - df + 0.5) / (df + 0.5))
        for i, c in enumerate(counts):
            tf = c[word]
            if tf:
                scores[i] += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * lengths[i] / avg_len))
    return scores


check_bm25(bm25_scores, docs=list(docs.values())[:40])

# %% [markdown]
# ## Exercise 4: reciprocal rank fusion
#
# Write `rrf(rankings, k=60)`: given several ranked lists of ids, give each id the sum over the lists of
# `1 / (k + rank)` (rank from 1, only the lists it appears in) and return `[(id, score), ...]`, highest score
# first. It merges rankings whose scores are not comparable (cosines and BM25 scores). The check tries several `k`
# and your function must leave the lists it is given unchanged.

# %%
def rrf(rankings: list[list[str]], k: int = 60) -> list[tuple[str, float]]:
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1 / (k + rank)
    return sorted(scores.items(), key=lambda pair: -pair[1])


check_rrf(rrf)

# %% [markdown]
# ## Exercise 5: which sources did the answer cite?
#
# Write `cited_sources(text, n_sources)`: the source numbers cited in `text` as `[2]` or `[1, 3]`, in order of first
# appearance, each once, keeping only numbers from 1 to `n_sources` (a model may invent `[7]` when there are 3
# sources). `cited_sources("A [2]. B [1, 2] and [9].", 3)` is `[2, 1]`. Numbers may have two digits (`[12]`).

# %%
def cited_sources(text: str, n_sources: int) -> list[int]:
    found: list[int] = []
    for group in re.findall(r"\[([\d,\s]+)\]", text):
        for number in re.findall(r"\d+", group):
            n = int(number)
            if 1 <= n <= n_sources and n not in found:
                found.append(n)
    return found


check_citations(cited_sources)

# %% [markdown]
# ## Exercise 6: a prompt-injection filter
#
# Write `looks_injected(text)`: True when a retrieved text contains an instruction aimed at the model ("ignore all
# previous instructions", "reply only with ...", "you are now ...", "disregard the question", "do not mention
# ..."). The check runs it on six attacks (at most one may slip through) and on 300 real BoolQ passages (none may
# be flagged). Regular expressions with `re.IGNORECASE` work well.

# %%
def looks_injected(text: str) -> bool:
    patterns = [
        r"\bignore\b.{0,30}\b(instructions?|directions?|rules)\b",
        r"\bdisregard\b.{0,40}\b(question|instructions?|rules)\b",
        r"\b(reply|respond|answer|say) only\b",
        r"\byou are now\b",
        r"\bdo not (mention|tell|reveal|cite)\b",
        r"\bnew instructions?\s*:",
        r"\bsystem prompt\b",
    ]
    return any(re.search(p, text, re.IGNORECASE) for p in patterns)


check_injection_filter(looks_injected)

# %% [markdown]
# ## Exercise 7: your fusion as a hybrid retriever
#
# Nothing new to write: the check runs dense retrieval (the Chroma store built above) and BM25 for every question,
# fuses the two rankings with **your** `rrf`, and compares recall@5 with the reference hybrid.

# %%
check_hybrid(rrf, store, chunks, questions)

# %% [markdown]
# ## Exercise 8: a retriever that beats BM25 on questions it has never seen (build and measure)
#
# Build `build_retriever(docs)`: `docs` maps document ids to texts; return a function `search(question, k)` giving
# the ids of the `k` best documents, best first, each id once. Use anything from this lab and lesson 07: chunking,
# the Chroma store (`rag.cached_store(chunks, prefix=...)` embeds once and caches), `rag.BM25Retriever`, your `rrf`.
# Leave `docs` unchanged.
#
# **Measured:** the check hands your function documents this lab never shows (about 300 entries of Python's own
# reference documentation, `course_utils.python_docs`) and asks the course's 81 hand-written programmer questions
# ("How do I delete a folder that still has files in it?"). **Target:** recall@5 at least 5 points above BM25's on
# the same documents. The check prints your recall beside the target and the reference hybrid's. (The first run
# embeds the documents: about a minute on 2 cores; later runs reuse the cache.)

# %%
def build_retriever(docs: dict[str, str]):
    chunks = rag.chunk_documents(docs, "sentences", size=800)
    dense, sparse = rag.cached_store(chunks, prefix="lab07-mine")[0], rag.BM25Retriever(chunks)
    doc_of = {c.id: c.doc_id for c in chunks}

    def search(question: str, k: int) -> list[str]:
        ranked = [[h.id for h in dense.search(question, 30)], [h.id for h in sparse.search(question, 30)]]
        return list(dict.fromkeys(doc_of[i] for i, _ in rrf(ranked)))[:k]  # chunk ids -> document ids, each once

    return search


check_beats_bm25(build_retriever)

# %% [markdown]
# ## Going further
#
# - Give the dense ranking twice the weight in `rrf` (pass it twice) and measure recall@5 and MRR with your own
#   functions: does the hybrid now beat dense alone?
# - Try `fixed_chunks` with sizes 200, 500 and 1000 on the lab's passages, build a store for each with
#   `rag.cached_store`, and compare their MRR with `rag.evaluate_retrieval`.
