"""The vector store: a persistent Chroma collection fed with our own embeddings.

We embed texts ourselves (:class:`~course_utils.embeddings.Embedder`) and hand Chroma the vectors,
so Chroma never needs (or downloads) an embedding model of its own::

    with VectorStore("my_store", "notes") as store:     # a folder on disk, a named collection
        store.add(chunks)                               # embedded in batches; resumable
        store.search("How do I reset it?", k=3)        # nearest chunks, best first

Consistency: :meth:`VectorStore.add` checks all input before writing anything, then writes one
batch per Chroma call (a batch is stored completely or not at all). If it stops half-way (an error,
Ctrl-C), the store holds whole batches only, and calling ``add`` again with the same chunks embeds
just the missing ones. :func:`cached_store` relies on that to build an index once and reopen it
on every later run without re-embedding.

A store that cannot be read (a damaged ``chroma.sqlite3``, say) raises :class:`CorruptStore` and
is left exactly as it is: the course never overwrites or deletes a store.

Taught in: lesson 07 (add, query, delete, count, reopen, resume); lesson 10 (the handbook store of
the agent's search tool) and lesson 11 (documents mode) build on it.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..embeddings import Embedder, check_k
from ..errors import DataError, InvalidOption
from .documents import RESERVED_METADATA, Chunk, as_chunks, text_id
from .retrievers import Hit, check_queries, check_query

COLLECTION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,510}[A-Za-z0-9]$")
DATABASE = "chroma.sqlite3"
SQLITE_MAGIC = b"SQLite format 3\x00"  # the first 16 bytes of every SQLite database file


class CorruptStore(DataError):
    """A vector store on disk that Chroma cannot read. The course leaves it untouched."""


@dataclass(frozen=True)
class AddReport:
    """What :meth:`VectorStore.add` did: chunks embedded now, already present, time, store size."""

    added: int
    skipped: int
    seconds: float
    total: int

    def __str__(self) -> str:
        rate = f", {self.added / self.seconds:.0f} chunks/s" if self.added and self.seconds > 0 else ""
        return f"embedded {self.added} chunks, {self.skipped} already stored, {self.seconds:.1f} s{rate}; the store holds {self.total}"


# ----------------------------------------------------------------------------- opening a store safely
def _keep_fix(path: Path) -> str:
    return (f"move the folder {path} away (or delete it) yourself: the course never deletes a store. "
            "A cached store is then rebuilt on the next run")


def check_store_folder(path: Path) -> None:
    """Refuse, before Chroma touches anything, a store path that is a file or whose database is not SQLite."""
    if path.exists() and not path.is_dir():
        raise DataError(f"the store path {path} is a file, not a folder", fix="pass a folder for the store (it is created if missing)")
    database = path / DATABASE
    if database.is_dir() or (database.exists() and not database.is_file()):
        raise CorruptStore(f"the vector store at {path} is damaged: {DATABASE} is not a file", fix=_keep_fix(path))
    if database.is_file():
        try:
            with database.open("rb") as fh:
                head = fh.read(len(SQLITE_MAGIC))
        except OSError as err:
            raise DataError(f"cannot read the vector store at {path} ({err.strerror})", fix="check the folder's permissions") from None
        if head != SQLITE_MAGIC:
            raise CorruptStore(f"the vector store at {path} is corrupt: {DATABASE} is not a SQLite database (it starts with {head[:12]!r})",
                               fix=_keep_fix(path))


def _chroma_client(path: Path) -> Any:
    """A Chroma client for ``path``; any Chroma failure to read it becomes a :class:`CorruptStore`."""
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")  # Chroma must not phone home
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    try:
        client = chromadb.PersistentClient(path=str(path), settings=ChromaSettings(anonymized_telemetry=False))
        client.list_collections()  # reads the database: a damaged one fails here, not later
    except Exception as err:  # chromadb raises its own InternalError, and sqlite3's errors
        raise CorruptStore(f"the vector store at {path} cannot be read ({type(err).__name__}: {err}); it is damaged, "
                           "or was written by another chromadb version", fix=_keep_fix(path)) from None
    return client


class VectorStore:
    """A persistent Chroma collection whose vectors come from our own :class:`Embedder`.

    The collection records which embedder built it; reopening it with a different one is an error
    (its vectors would not be comparable).

    >>> from course_utils.rag import chunk_documents
    >>> with VectorStore("/tmp/demo-store", "demo") as store:     # doctest: +SKIP
    ...     store.add(chunk_documents({"a": "Cats purr.", "b": "Tax is due in April."}))
    ...     store.search("When do I pay taxes?", k=1)[0].doc_id
    'b'
    """

    def __init__(
        self, path: str | os.PathLike, name: str = "documents", embedder: Embedder | None = None, create: bool = True
    ) -> None:
        if not isinstance(name, str) or not COLLECTION_NAME.match(name) or ".." in name:
            raise InvalidOption(
                f"{name!r} is not a valid collection name",
                fix="use 3-512 characters from a-z, A-Z, 0-9, '.', '_', '-', starting and ending with a letter or digit",
            )
        if not isinstance(path, str | os.PathLike):
            raise InvalidOption(f"the store path must be a folder name, got {type(path).__name__}", fix="pass e.g. 'my_store'")
        self.path, self.name = Path(path).expanduser(), name
        check_store_folder(self.path)
        if not create and not (self.path / DATABASE).is_file():
            raise DataError(f"there is no vector store at {self.path}", fix="check the path, or create one with VectorStore(path, name)")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise DataError(f"cannot create the store folder {self.path} ({err.strerror})", fix="pick a folder you can write to") from None
        self.embedder = embedder or Embedder()
        self._client = _chroma_client(self.path)
        try:
            self._collection = self._open_collection(create)
        except BaseException:
            self._client.close()  # do not keep the database open for a store we refuse
            raise
        space = (self._collection.configuration_json or {}).get("hnsw", {}) or {}
        self.space = space.get("space", "l2")
        self._count: int | None = None

    def _open_collection(self, create: bool) -> Any:
        existing = [c.name for c in self._client.list_collections()]
        if self.name not in existing:
            if not create:
                have = ", ".join(existing) or "none"
                raise DataError(f"no collection {self.name!r} in the store at {self.path} (it has: {have})", fix="check the name, or pass create=True to make a new one")
            return self._client.create_collection(
                self.name, embedding_function=None, configuration={"hnsw": {"space": "cosine"}},
                metadata={"embedder": self.embedder.name, "dim": self.embedder.dim},
            )
        collection = self._client.get_collection(self.name, embedding_function=None)
        meta = collection.metadata or {}
        if "embedder" in meta and (meta["embedder"], meta.get("dim")) != (self.embedder.name, self.embedder.dim):
            raise DataError(
                f"collection {self.name!r} was built with {meta['embedder']} ({meta.get('dim')} dimensions), not {self.embedder.name} ({self.embedder.dim})",
                fix=f"open it with Embedder() for {meta['embedder']}, or build a new collection for this embedder",
            )
        return collection

    @classmethod
    def open(cls, path: str | os.PathLike, name: str, embedder: Embedder | None = None) -> VectorStore:
        """Open an existing collection; an unknown path or name is a :class:`DataError`."""
        return cls(path, name, embedder, create=False)

    @staticmethod
    def collections(path: str | os.PathLike) -> list[str]:
        """Names of the collections stored at ``path``."""
        path = Path(path).expanduser()
        check_store_folder(path)
        if not (path / DATABASE).is_file():
            return []
        client = _chroma_client(path)
        try:
            return sorted(c.name for c in client.list_collections())
        finally:
            client.close()

    # ------------------------------------------------------------------ writing
    def add(self, chunks: Sequence[Chunk | str], batch_size: int = 128, progress: Callable[[int, int], Any] | None = None) -> AddReport:
        """Embed and store chunks (or plain strings, whose id is a hash of their text).

        Everything is validated first (non-empty texts, unique ids, simple metadata), so bad input
        changes nothing. Chunks whose id is already stored with the same text are skipped: calling
        ``add`` again after an interruption resumes where it stopped. An id already stored with
        *different* text is an error (delete it first). ``progress(done, total)`` is called after
        each batch.
        """
        batch_size = check_k(batch_size, "batch_size")
        items = as_chunks(chunks)
        started = time.perf_counter()
        stored = self._stored_hashes([c.id for c in items])
        todo = []
        for c in items:
            if c.id not in stored:
                todo.append(c)
            elif stored[c.id] != text_id(c.text):
                raise DataError(
                    f"id {c.id!r} is already in the store with a different text",
                    fix=f"delete the old one first (store.delete([{c.id!r}])) or give the new chunk another id",
                )
        todo.sort(key=lambda c: len(c.text))  # batches of similar length: less padding
        for start in range(0, len(todo), batch_size):
            batch = todo[start:start + batch_size]
            vectors = self.embedder.embed([c.text for c in batch])
            if vectors.shape != (len(batch), self._dim()):
                raise DataError(f"the embedder returned shape {vectors.shape}, expected {(len(batch), self._dim())}", fix="use the embedder this collection was built with")
            self._collection.add(  # one call = one transaction: the batch is stored whole or not at all
                ids=[c.id for c in batch], embeddings=vectors, documents=[c.text for c in batch],
                metadatas=[{**c.metadata, "doc_id": c.doc_id, "start": c.start, "sha": text_id(c.text)} for c in batch],
            )
            self._count = None
            if progress is not None:
                progress(min(start + batch_size, len(todo)), len(todo))
        return AddReport(len(todo), len(items) - len(todo), time.perf_counter() - started, self.count())

    def delete(self, ids: Sequence[str] | None = None, doc_id: str | None = None) -> int:
        """Remove chunks by id, or every chunk of one document. Returns how many were removed."""
        if (ids is None) == (doc_id is None):
            raise InvalidOption("delete() needs either ids=[...] or doc_id=...", fix="pass exactly one of them")
        before = self.count()
        if ids is not None:
            ids = [ids] if isinstance(ids, str) else list(ids)
            if ids:
                self._collection.delete(ids=ids)
        else:
            self._collection.delete(where={"doc_id": doc_id})
        self._count = None
        return before - self.count()

    # ------------------------------------------------------------------ reading
    def count(self) -> int:
        if self._count is None:
            self._count = self._collection.count()
        return self._count

    def __len__(self) -> int:
        return self.count()

    def get(self, ids: Sequence[str]) -> list[Chunk]:
        """The stored chunks with these ids (missing ids are left out)."""
        got = self._collection.get(ids=[ids] if isinstance(ids, str) else list(ids), include=["documents", "metadatas"])
        return [_chunk_from(i, d, m) for i, d, m in zip(got["ids"], got["documents"], got["metadatas"], strict=True)]

    def ids(self) -> list[str]:
        """Every stored chunk id."""
        return list(self._collection.get(include=[])["ids"])

    def search(self, query: str, k: int = 5, where: Mapping[str, Any] | None = None) -> list[Hit]:
        """The ``k`` chunks nearest to ``query``, best first (``where``: a Chroma metadata filter)."""
        return self.search_vectors(self.embedder.embed_query(check_query(query))[None], k, where)[0]

    def search_many(self, queries: Sequence[str], k: int = 5, where: Mapping[str, Any] | None = None) -> list[list[Hit]]:
        """:meth:`search` for many queries: embedded in batches, one Chroma call per 256 queries."""
        return self.search_vectors(self.embedder.embed(check_queries(queries)), k, where)

    def search_vectors(self, vectors: np.ndarray, k: int = 5, where: Mapping[str, Any] | None = None) -> list[list[Hit]]:
        """Nearest chunks for query vectors you embedded yourself (rows of ``vectors``)."""
        k = check_k(k)
        if self.count() == 0:
            raise DataError(f"the collection {self.name!r} is empty", fix="add documents first: store.add(chunks)")
        k = min(k, self.count())
        results: list[list[Hit]] = []
        for start in range(0, len(vectors), 256):
            r = self._collection.query(
                query_embeddings=np.asarray(vectors[start:start + 256], dtype=np.float32), n_results=k,
                where=dict(where) if where else None, include=["documents", "metadatas", "distances"],
            )
            for ids, docs, metas, dists in zip(r["ids"], r["documents"], r["metadatas"], r["distances"], strict=True):
                results.append([
                    Hit(c.id, c.text, c.doc_id, self._similarity(dist), rank, {**c.metadata, "start": c.start})
                    for rank, (c, dist) in enumerate(zip(map(_chunk_from, ids, docs, metas), dists, strict=True), start=1)
                ])
        return results

    def _similarity(self, distance: float) -> float:
        # Chroma returns distances; turn them into cosine similarity (vectors are unit length).
        if self.space == "l2":
            return 1.0 - float(distance) / 2.0  # squared L2 of unit vectors = 2 - 2 cos
        return 1.0 - float(distance)  # "cosine" and "ip" distances are 1 - cos

    def _dim(self) -> int:
        return int((self._collection.metadata or {}).get("dim", self.embedder.dim))

    def _stored_hashes(self, ids: list[str]) -> dict[str, str]:
        stored: dict[str, str] = {}
        for start in range(0, len(ids), 1000):
            got = self._collection.get(ids=ids[start:start + 1000], include=["metadatas"])
            stored.update({i: str((m or {}).get("sha", "")) for i, m in zip(got["ids"], got["metadatas"], strict=True)})
        return stored

    def close(self) -> None:
        """Release the database files (safe to call twice)."""
        self._client.close()

    def __enter__(self) -> VectorStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"VectorStore({str(self.path)!r}, {self.name!r}, {self.count()} chunks, {self.embedder!r})"


def _chunk_from(id_: str, text: str, meta: Mapping[str, Any] | None) -> Chunk:
    meta = dict(meta or {})
    doc_id, start = str(meta.pop("doc_id", id_)), int(meta.pop("start", 0))
    for key in RESERVED_METADATA:
        meta.pop(key, None)
    return Chunk(id_, text, doc_id, start, meta)


def cached_store(
    chunks: Sequence[Chunk], prefix: str = "rag", embedder: Embedder | None = None, cache_dir: str | os.PathLike | None = None,
    batch_size: int = 128,
) -> tuple[VectorStore, AddReport]:
    """A store holding exactly ``chunks``, built on first use and reopened (no re-embedding) later.

    The collection's name is ``prefix`` plus a hash of the embedder and every chunk's id and text,
    so different chunks never share a store. It lives in ``<course cache>/rag/<name>/``. An
    interrupted build is finished by the next call (``add`` is resumable); a damaged one raises
    :class:`CorruptStore` and is left for you to look at.
    """
    from ..config import settings

    embedder = embedder or Embedder()
    digest = hashlib.sha1(f"{embedder.name}|{embedder.precision}".encode())
    for c in as_chunks(chunks):
        digest.update(f"\x00{c.id}\x01{c.text}".encode())
    name = f"{prefix}-{digest.hexdigest()[:12]}"
    root = Path(cache_dir) if cache_dir is not None else settings().cache_dir / "rag"
    store = VectorStore(root / name, name, embedder)
    try:
        return store, store.add(chunks, batch_size=batch_size)
    except BaseException:
        store.close()
        raise
