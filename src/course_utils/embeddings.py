"""Sentence embeddings: vectors whose directions carry meaning, from the bundled MiniLM model.

An embedding model maps a text to a fixed-size vector (384 numbers for all-MiniLM-L6-v2) so that
texts with similar meaning point in similar directions. Similarity is the cosine of the angle
between two vectors; with unit-length vectors that is just the dot product.

>>> import numpy as np
>>> float(cosine([1.0, 0.0], [1.0, 1.0]))        # 45 degrees
0.7071067811865475
>>> emb = Embedder()                                  # doctest: +SKIP
>>> emb.embed(["a cat", "a kitten", "tax law"]).shape  # doctest: +SKIP
(3, 384)

:class:`Embedder` wraps the local model (nothing is downloaded) and embeds in batches of similar
length, so little work is wasted on padding. :func:`mean_pooled_hidden_states` turns a *chat* model
into a (worse) embedder, for comparison in lesson 06.

Taught in: lesson 06 (embeddings, cosine similarity, search in numpy); used by lesson 07 (RAG) and
lesson 10 (grounding).
"""

from __future__ import annotations

import contextlib
import os
import threading
import warnings
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import InvalidOption

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

MINILM_NAME = "all-MiniLM-L6-v2"
PRECISIONS = ("fp32", "bf16", "int8")


# ----------------------------------------------------------------------------- vector maths
def cosine(a: Any, b: Any) -> float:
    """Cosine similarity of two vectors: a·b / (|a| |b|), from -1 (opposite) to 1 (same direction).

    >>> round(float(cosine([1, 2, 3], [2, 4, 6])), 6)
    1.0
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise InvalidOption(f"cosine needs two vectors of the same length, got shapes {a.shape} and {b.shape}", fix="pass two 1-D arrays of equal length")
    norms = np.linalg.norm(a) * np.linalg.norm(b)
    if norms == 0:
        raise InvalidOption("cosine is undefined for a zero vector", fix="drop all-zero vectors (e.g. texts with no known words) first")
    return float(a @ b / norms)


def normalize(matrix: Any) -> np.ndarray:
    """Scale each row to unit length (rows of zeros stay zero), as float32."""
    m = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(m, axis=-1, keepdims=True)
    return m / np.where(norms == 0, 1, norms)


def cosine_matrix(queries: Any, items: Any) -> np.ndarray:
    """All cosine similarities between the rows of ``queries`` (q, d) and ``items`` (n, d): shape (q, n)."""
    return normalize(np.atleast_2d(queries)) @ normalize(np.atleast_2d(items)).T


def top_k(query: Any, items: Any, k: int = 5) -> list[tuple[int, float]]:
    """Semantic search in numpy: the ``k`` rows of ``items`` most similar to ``query``, best first.

    >>> [(i, round(s, 3)) for i, s in top_k([1, 0], [[0, 1], [1, 0.1], [1, 1]], k=2)]
    [(1, 0.995), (2, 0.707)]
    """
    check_k(k)
    q, m = np.atleast_2d(np.asarray(query, dtype=np.float32)), np.atleast_2d(np.asarray(items, dtype=np.float32))
    if m.size == 0:
        raise InvalidOption("there is nothing to search: items is empty", fix="embed some texts first, e.g. items = embedder.embed(texts)")
    if q.shape[-1] != m.shape[-1]:
        raise InvalidOption(f"the query has {q.shape[-1]} dimensions but the items have {m.shape[-1]}", fix="embed the query and the items with the same model")
    scores = cosine_matrix(q, m)[0]
    k = min(k, len(scores))
    best = np.argpartition(-scores, k - 1)[:k]  # the k best in O(n), then sort only those
    best = best[np.argsort(-scores[best], kind="stable")]
    return [(int(i), float(scores[i])) for i in best]


def pca_2d(vectors: Any) -> tuple[np.ndarray, np.ndarray]:
    """Project vectors onto their two directions of largest variance (PCA via SVD).

    Returns (coordinates (n, 2), fraction of the total variance each of the 2 axes explains).
    Signs of the axes are arbitrary; we flip each so its largest coordinate is positive.
    """
    x = np.asarray(vectors, dtype=float)
    if x.ndim != 2 or len(x) < 2:
        raise InvalidOption(f"PCA needs at least 2 vectors in a 2-D array, got shape {x.shape}", fix="pass a matrix with one vector per row")
    centred = x - x.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    coords = centred @ vt[:2].T
    signs = np.sign(coords[np.abs(coords).argmax(axis=0), [0, 1]])
    variance = s**2 / (s**2).sum()
    return coords * np.where(signs == 0, 1, signs), variance[:2]


def check_k(k: Any, name: str = "k") -> int:
    """``k`` (how many results) as an int; anything but a positive whole number is an :class:`InvalidOption`.

    Shared by every search in the course (:func:`top_k`, BM25, the RAG retrievers).
    """
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k <= 0:
        raise InvalidOption(f"{name} must be a positive whole number, got {k!r}", fix=f"pass {name}=5 (or another number >= 1)")
    return int(k)


# ----------------------------------------------------------------------------- the course's sentences
SENTENCES_FILE, QUERIES_FILE = "embeddings_sentences.jsonl", "embeddings_queries.jsonl"


def course_sentences() -> list[dict[str, str]]:
    """Lesson 06's 48 short sentences: ``{"id", "topic", "text"}``, 8 each on 6 topics."""
    from .datafiles import data_path, read_jsonl

    return read_jsonl(data_path(SENTENCES_FILE), required={"id", "topic", "text"})


def course_queries() -> list[dict[str, str]]:
    """Lesson 06's 28 search queries: ``{"query", "relevant"}`` (the id of the one matching
    sentence). They are paraphrases that share few words with their sentence, on purpose."""
    from .datafiles import data_path, read_jsonl

    return read_jsonl(data_path(QUERIES_FILE), required={"query", "relevant"})


# ----------------------------------------------------------------------------- the embedder
def cpu_has_native_bf16() -> bool:
    """True when this CPU computes in bfloat16 natively (AVX512-BF16 or AMX; read from /proc/cpuinfo).

    Without it, PyTorch emulates bfloat16 and ``precision="bf16"`` is slower than fp32.
    """
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            flags = next((line for line in fh if line.startswith("flags")), "")
    except OSError:  # not Linux
        return False
    return any(f in flags.split() for f in ("avx512_bf16", "amx_bf16"))


@lru_cache(maxsize=4)
def _load_sentence_transformer(path: str, quantize: bool) -> SentenceTransformer:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    with warnings.catch_warnings():  # tqdm warns about missing Jupyter widgets on import
        warnings.simplefilter("ignore")
        from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    model = SentenceTransformer(path, device="cpu", local_files_only=True)
    model.eval()
    if quantize:
        model = _quantize_int8(model)
    return model


def _quantize_int8(model: Any) -> Any:
    """Dynamic int8 quantization of the Linear layers, except the feed-forward output layers.

    Those layers read the GELU activations, which have a few very large values (outliers); one
    int8 scale per tensor cannot represent them well, and quantizing them cost ~6% cosine with the
    fp32 embeddings in our measurements (0.94 instead of 0.99). Keeping them in fp32 keeps the
    embeddings within ~1% of the original.
    """
    import torch

    names = {name for name, module in model.named_modules()
             if isinstance(module, torch.nn.Linear) and not name.endswith("output.dense")}
    with warnings.catch_warnings():  # torch.ao.quantization prints deprecation notices
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(model, names, dtype=torch.qint8)


class Embedder:
    """all-MiniLM-L6-v2 (or another local sentence-transformers model), offline, on the CPU.

    * ``embed(texts)`` -> float32 array (n, dim), each row unit length (so dot = cosine);
    * texts are sorted by length before batching: a batch pads to its longest text, so mixing a
      20-word and a 200-word text wastes 90% of the short one's compute;
    * the model reads at most ``max_tokens`` word pieces (256) and silently ignores the rest:
      chunk long documents first (:mod:`course_utils.rag.documents`).

    ``precision`` trades exactness for speed (measured in ``benchmarks/rag.py``):

    * ``"fp32"`` (default): the reference; same vectors as sentence-transformers and LangChain;
    * ``"bf16"``: matrix products in bfloat16 (cosine with fp32 > 0.9999). About 1.8x faster on CPUs
      that support it natively (:func:`cpu_has_native_bf16`), much slower on those that do not;
    * ``"int8"``: dynamic int8 quantization of most Linear layers (cosine with fp32 ~0.99); about
      1.4x faster on any recent x86 CPU.

    ``threads`` sets PyTorch's thread count for the whole process (None: leave it; PyTorch uses one
    per core).
    """

    def __init__(
        self, model: str | os.PathLike | None = None, batch_size: int = 32, precision: str = "fp32",
        threads: int | None = None,
    ) -> None:
        from .assets import minilm_dir

        self.path = Path(model).expanduser() if model is not None else minilm_dir()
        if not (self.path / "modules.json").is_file() and not (self.path / "config.json").is_file():
            from .errors import ModelNotFound

            raise ModelNotFound(f"no sentence-transformers model at {self.path}", fix="pass the folder of a local model, or leave model=None for the bundled MiniLM")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise InvalidOption(f"batch_size must be a positive integer, got {batch_size!r}", fix="use batch_size=32")
        if precision not in PRECISIONS:
            raise InvalidOption(f"precision={precision!r} is not supported", fix=f"use one of {', '.join(PRECISIONS)}")
        self.batch_size = batch_size
        self.precision = precision
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
            raise InvalidOption(f"threads must be a positive whole number or None, got {threads!r}", fix="use threads=2, or leave threads=None")
        if threads is not None:
            import torch

            torch.set_num_threads(int(threads))
        self._lock = threading.Lock()

    @property
    def model(self) -> SentenceTransformer:
        """The loaded SentenceTransformer (loaded once per process and cached)."""
        return _load_sentence_transformer(str(self.path), self.precision == "int8")

    @property
    def name(self) -> str:
        """A readable model name: the folder name (the bundled one is called all-MiniLM-L6-v2)."""
        from .assets import minilm_dir

        try:
            if self.path.resolve() == minilm_dir().resolve():
                return MINILM_NAME
        except Exception:  # the bundled package is missing: fall back to the folder name
            pass
        return self.path.name

    @property
    def dim(self) -> int:
        """Length of each embedding vector (384 for MiniLM)."""
        getter = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        return int(getter())

    @property
    def max_tokens(self) -> int:
        """Word pieces the model reads; longer texts are truncated."""
        return int(self.model.max_seq_length)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Word pieces in each text (including [CLS] and [SEP]), before truncation."""
        encoded = self.model.tokenizer(list(texts), add_special_tokens=True, verbose=False)  # no "too long" warning
        return [len(ids) for ids in encoded["input_ids"]]

    def embed(self, texts: Sequence[str], batch_size: int | None = None, sort_by_length: bool = True) -> np.ndarray:
        """Embed ``texts`` -> (len(texts), dim) float32, rows of unit length, in the input order."""
        if isinstance(texts, str | bytes):
            raise InvalidOption("embed() takes a list of texts, got a single string", fix="use embed([text]) or embed_query(text)")
        texts = list(texts)
        if not all(isinstance(t, str) for t in texts):
            bad = next(t for t in texts if not isinstance(t, str))
            raise InvalidOption(f"every text must be a str, got {type(bad).__name__} {bad!r:.40}", fix="convert your items with str() or drop them")
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        batch_size = batch_size or self.batch_size
        order = np.argsort([len(t) for t in texts], kind="stable") if sort_by_length else np.arange(len(texts))
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        with self._lock:  # one model per process: keep concurrent callers from interleaving
            for start in range(0, len(texts), batch_size):
                idx = order[start:start + batch_size]
                out[idx] = self._encode([texts[i] for i in idx])
        return out

    def embed_query(self, text: str) -> np.ndarray:
        """Embed one text -> (dim,) float32 unit vector."""
        if not isinstance(text, str):
            raise InvalidOption(f"embed_query needs a str, got {type(text).__name__}", fix="pass the question as a string")
        return self.embed([text])[0]

    def _encode(self, batch: list[str]) -> np.ndarray:
        # One forward pass over one batch (sentence-transformers would re-sort within it: harmless).
        import torch

        bf16 = torch.autocast("cpu", dtype=torch.bfloat16) if self.precision == "bf16" else contextlib.nullcontext()
        with bf16:
            vectors = self.model.encode(batch, batch_size=len(batch), convert_to_tensor=True,
                                        normalize_embeddings=True, show_progress_bar=False)
        return vectors.float().numpy()

    def __repr__(self) -> str:
        return f"Embedder({self.name!r}, {self.precision}, batch_size={self.batch_size})"


# ----------------------------------------------------------------------------- a chat model as embedder
def mean_pooled_hidden_states(
    model: Any, tokenizer: Any, texts: Sequence[str], batch_size: int = 16, max_tokens: int = 128
) -> np.ndarray:
    """Embed texts with a causal (chat) language model: average each layer's hidden states.

    Returns an array (n_layers + 1, len(texts), hidden_size): layer 0 is the token embeddings, the
    last is the final layer. Padding is masked out of the average. Rows are unit length.

    A chat model was trained to predict the next token, not to make similar texts similar, so its
    averaged states are a weak embedding; lesson 06 measures how weak, layer by layer.
    """
    import torch

    texts = list(texts)
    if not texts or not all(isinstance(t, str) and t.strip() for t in texts):
        raise InvalidOption("mean_pooled_hidden_states needs a non-empty list of non-empty strings", fix="drop empty texts first")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right"  # causal attention: real tokens never see right-hand padding
    order = np.argsort([len(t) for t in texts], kind="stable")
    body = getattr(model, "base_model", model)  # skip the LM head: its 49k-way logits are not needed
    layers: list[np.ndarray] = []
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            idx = order[start:start + batch_size]
            enc = tokenizer([texts[i] for i in idx], return_tensors="pt", padding=True, truncation=True, max_length=max_tokens)
            hidden = body(**enc, output_hidden_states=True).hidden_states  # tuple of (b, t, d)
            mask = enc["attention_mask"].unsqueeze(-1).float()
            pooled = torch.stack([(h.float() * mask).sum(1) / mask.sum(1) for h in hidden])  # (L+1, b, d)
            layers.append(pooled.numpy())
    stacked = np.concatenate(layers, axis=1)[:, np.argsort(order)]  # back to the input order
    return normalize(stacked)
