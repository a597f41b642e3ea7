"""Documents and chunks: read text files, cut them into pieces an embedder can read whole.

>>> chunk_text("One. Two two. Three three three.", "sentences", size=20)
['One. Two two.', 'Three three three.']
>>> [(c.id, c.start) for c in chunk_documents({"a": "Cats purr. Dogs bark."}, "sentences", size=12)]
[('a#0', 0), ('a#1', 11)]

Every chunk is an exact slice of its document (``text == document[start:start + len(text)]``), so
a chunk can always be traced back to where it came from. Four strategies (:func:`chunk_spans`):
fixed-size windows with overlap, whole sentences, whole paragraphs, or the whole document.

Bad input gets one clear line: a missing folder, an empty one, a binary or non-UTF-8 file, a
size of 0 or an overlap as large as the size.

Taught in: lesson 07 (chunking strategies, measured), lesson 11 (documents mode reads a folder).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import DataError, InvalidOption
from ..text_safety import sentence_spans, strip_span

RESERVED_METADATA = ("doc_id", "start", "sha")  # set by the store; a chunk's own metadata may not use them


@dataclass(frozen=True)
class Chunk:
    """A piece of a document: ``text == document[start:start + len(text)]``."""

    id: str
    text: str
    doc_id: str
    start: int = 0
    metadata: Mapping[str, Any] = field(default_factory=dict)


def text_id(text: str) -> str:
    """A short content hash: the id of a chunk given as a plain string, and the store's change check.

    >>> text_id("Cats purr.")
    '9b91edc20cf42bed'
    """
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


# ----------------------------------------------------------------------------- reading files
def read_text_file(path: str | os.PathLike) -> str:
    """Read a text file that must be UTF-8 (a clear error, not mojibake, when it is not)."""
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path} is a folder, not a file", fix="pass the folder itself to load_documents(), or a file inside it")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"cannot read {path}: there is no such file", fix="check the file name (and the folder you run from)") from None
    except OSError as err:
        raise DataError(f"cannot read {path} ({err.strerror})", fix="check the file name and its permissions") from None
    if b"\x00" in data[:8192]:
        raise DataError(f"{path} looks like a binary file, not text (it contains NUL bytes)",
                        fix="leave it out (load_documents(folder, pattern='*.md') reads only matching files), or export it as text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise DataError(
            f"{path} is not UTF-8 text (byte 0x{data[err.start]:02x} at position {err.start})",
            fix=f"re-save it as UTF-8, e.g. `iconv -f latin1 -t utf-8 {path.name} > fixed.txt`, or leave it out",
        ) from None


def load_documents(source: str | os.PathLike | Iterable[str | os.PathLike], pattern: str = "*.md") -> dict[str, str]:
    """Read documents: a folder (every file matching ``pattern``, recursively) or a list of files.

    Returns {document id (path relative to the folder, or file name): text}; empty files are left out.
    """
    if isinstance(source, bytes) or not isinstance(source, str | os.PathLike | Iterable):
        raise InvalidOption(f"documents come from a folder or a list of files, got {type(source).__name__}",
                            fix="pass a folder, e.g. load_documents('my_notes/')")
    if not isinstance(pattern, str) or not pattern:
        raise InvalidOption(f"pattern must be a file pattern like '*.md', got {pattern!r}", fix="use pattern='*.md' or '*.txt'")
    if isinstance(source, str | os.PathLike) and Path(source).is_dir():
        root = Path(source)
        files = sorted(p for p in root.rglob(pattern) if p.is_file())
        if not files:
            raise DataError(f"no non-empty documents found in {root}: no file matches {pattern!r}", fix="check the folder, or pass another pattern, e.g. pattern='*.txt'")
        docs = {p.relative_to(root).as_posix(): read_text_file(p) for p in files}
    else:
        files = [Path(source)] if isinstance(source, str | os.PathLike) else [Path(p) for p in source]
        if isinstance(source, str | os.PathLike) and not files[0].exists():
            raise DataError(f"there is no file or folder {files[0]}", fix="check the path (and the folder you run from)")
        docs = {p.name: read_text_file(p) for p in files}
    docs = {k: v for k, v in docs.items() if v.strip()}
    if not docs:
        raise DataError(f"no non-empty documents found in {source}", fix=f"check the path (and pattern={pattern!r} for a folder)")
    return docs


# ----------------------------------------------------------------------------- where to cut
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")
_WORD = re.compile(r"\S+")
STRATEGIES = ("fixed", "sentences", "paragraphs", "none")


def _check_size(size: Any, overlap: Any = 0, unit: str = "characters") -> None:
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise InvalidOption(f"chunk size must be a positive number of characters, got {size!r}", fix="use e.g. size=400")
    if unit == "characters" and (isinstance(overlap, bool) or not isinstance(overlap, int) or not 0 <= overlap < size):
        raise InvalidOption(f"overlap must be a whole number from 0 to size - 1, got {overlap!r} (size={size})", fix="use e.g. overlap=size // 5")
    if unit != "characters" and (isinstance(overlap, bool) or not isinstance(overlap, int) or overlap < 0):
        raise InvalidOption(f"overlap counts {unit} repeated between chunks: a whole number >= 0, got {overlap!r}", fix="use overlap=0 or 1")


def fixed_spans(text: str, size: int = 400, overlap: int = 80) -> list[tuple[int, int]]:
    """(start, end) of windows of at most ``size`` characters, overlapping by about ``overlap``.

    Windows end and start at word boundaries (a word longer than ``size`` is its own window).

    >>> t = "the cat sat on the mat"
    >>> [t[a:b] for a, b in fixed_spans(t, size=10, overlap=4)]
    ['the cat', 'cat sat on', 'on the mat']
    """
    _check_size(size, overlap)
    words = [(m.start(), m.end()) for m in _WORD.finditer(text)]

    def next_window(i: int, j: int) -> int:  # the first word starting within the last `overlap` chars, >= 1 word on
        return next((w for w in range(i + 1, j + 1) if words[w][0] >= words[j][1] - overlap), j + 1)

    return _greedy_windows(words, size, next_window)


def _greedy_windows(pieces: list[tuple[int, int]], size: int, next_start: Callable[[int, int], int]) -> list[tuple[int, int]]:
    """Spans from ``pieces[i]`` to the last ``pieces[j]`` that still fits in ``size`` characters; the next
    span starts at ``next_start(i, j)`` (always > i), until the last piece is covered."""
    spans: list[tuple[int, int]] = []
    i = 0
    while i < len(pieces):
        j = i
        while j + 1 < len(pieces) and pieces[j + 1][1] - pieces[i][0] <= size:
            j += 1
        spans.append((pieces[i][0], pieces[j][1]))
        if j == len(pieces) - 1:
            break
        i = next_start(i, j)
    return spans


def _pack(text: str, units: list[tuple[int, int]], size: int, overlap_units: int = 0) -> list[tuple[int, int]]:
    """Greedily join consecutive units (sentences, paragraphs) into spans of at most ``size`` chars.

    A unit longer than ``size`` is cut with :func:`fixed_spans`.
    """
    pieces: list[tuple[int, int]] = []
    for a, b in units:  # cut oversized units first
        if b - a > size:
            pieces += [(a + s, a + e) for s, e in fixed_spans(text[a:b], size, min(size // 5, size - 1))]
        else:
            pieces.append((a, b))
    return _greedy_windows(pieces, size, lambda i, j: max(i + 1, j + 1 - overlap_units))


def _paragraph_spans(text: str) -> list[tuple[int, int]]:
    paragraphs, start = [], 0
    for m in [*_PARAGRAPH_BREAK.finditer(text), None]:
        end = m.start() if m else len(text)
        if text[start:end].strip():
            paragraphs.append(strip_span(text, start, end))
        start = m.end() if m else len(text)
    return paragraphs


def chunk_spans(text: str, strategy: str = "sentences", size: int = 400, overlap: int = 0) -> list[tuple[int, int]]:
    """Where to cut ``text``: a list of (start, end).

    * ``"fixed"``: windows of ``size`` characters overlapping by ``overlap`` characters;
    * ``"sentences"``: whole sentences packed up to ``size`` characters (``overlap`` = sentences repeated);
    * ``"paragraphs"``: whole paragraphs (blank-line separated) packed up to ``size`` characters,
      long paragraphs split by sentences (``overlap`` = pieces repeated);
    * ``"none"``: the whole document as one chunk (the embedder truncates what it cannot read).
    """
    if not isinstance(text, str):
        raise DataError(f"a document must be a str, got {type(text).__name__}", fix="read files with read_text_file() first")
    if strategy == "fixed":
        return fixed_spans(text, size, overlap)
    if strategy == "sentences":
        _check_size(size, overlap, unit="sentences")
        return _pack(text, sentence_spans(text), size, overlap)
    if strategy == "paragraphs":
        _check_size(size, overlap, unit="paragraphs")
        units = [s for a, b in _paragraph_spans(text)
                 for s in ([(a, b)] if b - a <= size else [(a + x, a + y) for x, y in sentence_spans(text[a:b])])]
        return _pack(text, units, size, overlap)
    if strategy == "none":
        return [strip_span(text, 0, len(text))] if text.strip() else []
    raise InvalidOption(f"unknown chunking strategy {strategy!r}", fix=f"use one of {', '.join(map(repr, STRATEGIES))}")


def chunk_text(text: str, strategy: str = "sentences", size: int = 400, overlap: int = 0) -> list[str]:
    """The chunks of one text as strings (see :func:`chunk_spans` for the strategies)."""
    return [text[a:b] for a, b in chunk_spans(text, strategy, size, overlap)]


def chunk_documents(
    docs: Mapping[str, str] | Sequence[str], strategy: str = "sentences", size: int = 400, overlap: int = 0
) -> list[Chunk]:
    """Chunk every document; chunk ids are ``"<doc_id>#<n>"``. A list of texts gets ids "doc-0", ..."""
    if isinstance(docs, str):
        raise DataError("chunk_documents takes several documents, got one string", fix="pass [text] or {'my-doc': text}")
    if not isinstance(docs, Mapping | Iterable):
        raise DataError(f"chunk_documents takes a dict or a list of texts, got {type(docs).__name__}", fix="pass load_documents(folder)")
    items = docs.items() if isinstance(docs, Mapping) else ((f"doc-{i}", t) for i, t in enumerate(docs))
    chunks = [
        Chunk(f"{doc_id}#{n}", text[a:b], str(doc_id), a)
        for doc_id, text in items
        for n, (a, b) in enumerate(chunk_spans(text, strategy, size, overlap))
    ]
    if not chunks:
        raise DataError("the corpus is empty: no document has any text", fix="check that your documents were read correctly")
    return chunks


# ----------------------------------------------------------------------------- checking chunks
def as_chunks(chunks: Sequence[Chunk | str]) -> list[Chunk]:
    """Validate chunks before anything uses them (a plain string becomes a chunk whose id is
    :func:`text_id` of its text); raise before anything is written."""
    if isinstance(chunks, str | Chunk):
        chunks = [chunks]
    items = [c if isinstance(c, Chunk) else Chunk(text_id(c), c, text_id(c)) if isinstance(c, str) else None for c in chunks]
    if not items:
        raise DataError("nothing to add: the list of chunks is empty", fix="check that your documents were read and chunked (chunk_documents)")
    for c, original in zip(items, chunks, strict=True):
        if c is None:
            raise DataError(f"cannot add a {type(original).__name__}", fix="pass Chunk objects (from chunk_documents) or strings")
        if not isinstance(c.text, str) or not c.text.strip():
            raise DataError(f"chunk {c.id!r} has no text", fix="drop empty chunks before adding")
        if not isinstance(c.id, str) or not c.id:
            raise DataError(f"chunk id {c.id!r} must be a non-empty string", fix="give every chunk a string id")
        for key, value in c.metadata.items():
            if key in RESERVED_METADATA:
                raise InvalidOption(f"metadata key {key!r} of chunk {c.id!r} is reserved", fix=f"rename it: {', '.join(RESERVED_METADATA)} are set by the store")
            if not isinstance(value, bool | str | int | float):
                raise DataError(f"metadata {key}={value!r} of chunk {c.id!r} is not a str, int, float or bool", fix="store only simple values (e.g. json.dumps(value))")
    seen: dict[str, int] = {}
    for c in items:
        seen[c.id] = seen.get(c.id, 0) + 1
    duplicates = [i for i, n in seen.items() if n > 1]
    if duplicates:
        raise DataError(f"{len(duplicates)} duplicate id(s), e.g. {duplicates[:3]}", fix="give every chunk a unique id (chunk_documents makes '<doc>#<n>'), or drop repeated texts")
    return items  # type: ignore[return-value]
