"""Retrieval-augmented generation (RAG): find the passages that answer a question, then let the model
answer from them, citing its sources.

The pipeline, one function or class per step, one module per concept::

    docs = load_documents("my_notes/")                       # documents.py: {doc_id: text}, UTF-8 checked
    chunks = chunk_documents(docs, "sentences", size=400)   # documents.py: pieces the embedder reads whole
    store = VectorStore("my_store", "notes")                 # store.py: a persistent Chroma collection
    store.add(chunks)                                        # embedded in batches; resumable
    hits = retrieve(store, "How do I reset it?", k=3)        # retrievers.py: nearest chunks, best first
    reply = answer("How do I reset it?", store, get_backend("auto"))   # answer.py
    print(reply.show())                                      # text with [1], [2] + the sources

and the measurements (metrics.py): :func:`evaluate_retrieval` (recall@k and MRR at the document
level) for any retriever: dense (:class:`VectorStore`), keyword (:class:`BM25Retriever`) or both
fused (:class:`HybridRetriever`). The BoolQ passages bundled with the course are the real test
corpus (:func:`~course_utils.evaldata.boolq_corpus`): each question's relevant document is the
passage it was written about. Whether retrieval helps the model *answer* is measured by reading
its yes/no probabilities, calibrated (yes_no.py: :class:`YesNoScorer`, :func:`best_threshold`,
:func:`paired_difference`). Injection detection, citations, sentences and source lists come from
:mod:`course_utils.text_safety`, shared with the guardrails and the app.

Every name a lesson or lab uses is importable from here: ``from course_utils import rag`` then
``rag.chunk_documents(...)``, ``rag.VectorStore(...)``, and so on.

>>> from course_utils import rag
>>> rag.chunk_text("One. Two two. Three three three.", "sentences", size=20)
['One. Two two.', 'Three three three.']

Taught in: lesson 07 (the whole pipeline), lesson 10 (the agent's search tool), lesson 11 (the
app's documents mode).
"""

from __future__ import annotations

from ..evaldata import Question, boolq_corpus
from ..text_safety import (
    INJECTION_PATTERNS,
    attribute_sentences,
    find_injection,
    format_sources,
    parse_citations,
    sentence_spans,
    verify_citations,
)
from .answer import (
    GUARD_PROMPT,
    SYSTEM_PROMPT,
    Answer,
    GroundedCheck,
    answer,
    ask_yes_no,
    build_messages,
    check_grounded,
    describe_injection,
    parse_yes_no,
    yes_no_messages,
)
from .documents import (
    RESERVED_METADATA,
    Chunk,
    as_chunks,
    chunk_documents,
    chunk_spans,
    chunk_text,
    fixed_spans,
    load_documents,
    read_text_file,
    text_id,
)
from .metrics import RetrievalScores, doc_ranking, evaluate_retrieval, mrr, recall_at_k
from .retrievers import (
    BM25Retriever,
    Hit,
    HybridRetriever,
    Retriever,
    check_query,
    reciprocal_rank_fusion,
    retrieve,
    score_fusion,
    search_many,
)
from .store import COLLECTION_NAME, AddReport, CorruptStore, VectorStore, cached_store
from .yes_no import (
    CONTENT_FREE,
    PairedDifference,
    YesNoScorer,
    best_threshold,
    content_free_prompts,
    paired_difference,
    truncate_tokens,
    yes_no_prompt,
)

__all__ = [
    "CONTENT_FREE", "GroundedCheck", "PairedDifference", "YesNoScorer", "best_threshold", "check_grounded",
    "content_free_prompts", "paired_difference", "truncate_tokens", "yes_no_prompt",
    "COLLECTION_NAME", "GUARD_PROMPT", "INJECTION_PATTERNS", "RESERVED_METADATA", "SYSTEM_PROMPT",
    "AddReport", "Answer", "BM25Retriever", "Chunk", "CorruptStore", "Hit", "HybridRetriever", "Question",
    "RetrievalScores", "Retriever", "VectorStore",
    "answer", "as_chunks", "ask_yes_no", "attribute_sentences", "boolq_corpus", "build_messages", "cached_store",
    "check_query", "chunk_documents", "chunk_spans", "chunk_text", "describe_injection", "doc_ranking",
    "evaluate_retrieval", "find_injection", "fixed_spans", "format_sources", "load_documents", "mrr",
    "parse_citations", "parse_yes_no", "read_text_file", "recall_at_k", "reciprocal_rank_fusion", "retrieve",
    "score_fusion", "search_many", "sentence_spans", "text_id", "verify_citations", "yes_no_messages",
]
