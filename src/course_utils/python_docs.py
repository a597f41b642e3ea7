"""Python's standard-library reference as a second retrieval test set: technical documentation, asked
about the way a programmer asks.

BoolQ's questions were written by people looking at their passage, so they share its words; a programmer
searching documentation does not ("How do I delete a folder that still has files in it?" has to find
``shutil.rmtree``, "Recursively delete a directory tree."). This corpus is the reference documentation of
the interpreter that runs the course: one document per documented public function, class, method and
property of the modules in :data:`MODULES` (about 2,900 documents on Python 3.11), each its name,
signature and docstring, read with :mod:`inspect` — offline, and nothing is copied into the course. The
questions (``data/python_docs_questions.jsonl``, 81 of them) were written by hand for this course, each
with the documents that answer it (any one counts as a hit: ``os.makedirs`` and ``pathlib.Path.mkdir`` both
answer "create a directory including any missing parents").

>>> docs, questions = python_docs_corpus()
>>> len(docs) > 2500, len(questions) >= 40
(True, True)
>>> docs["shutil.rmtree"].splitlines()[0].startswith("shutil.rmtree(")
True
>>> questions[0].question, questions[0].relevant
('How do I delete a folder that still has files in it?', ('shutil.rmtree',))

Another Python version documents a few names differently: a relevant id this interpreter lacks is left out
of its question, and a question left with none is an error.

Taught in: benchmarks/rag.py (retrieval quality beyond BoolQ). Core layer: imports only
:mod:`.datafiles` and :mod:`.errors`.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .datafiles import data_path, read_jsonl
from .errors import DataError

QUESTIONS_FILE = "python_docs_questions.jsonl"
_MODULE_NAMES = """
builtins os os.path shutil pathlib json re datetime time collections itertools functools subprocess string textwrap
random statistics math csv tempfile glob fnmatch zipfile tarfile gzip hashlib base64 urllib.parse urllib.request
argparse logging heapq bisect copy pickle sqlite3 threading concurrent.futures unicodedata difflib operator enum
dataclasses contextlib io sys platform uuid secrets decimal fractions struct calendar shlex pprint traceback inspect
timeit signal socket http.client email.message html queue multiprocessing configparser getpass locale typing asyncio
xml.etree.ElementTree ipaddress mimetypes zoneinfo warnings weakref codecs array
"""
MODULES = tuple(_MODULE_NAMES.split())


@dataclass(frozen=True)
class DocQuestion:
    """A question a programmer might type, and the ids of the documents that answer it."""

    question: str
    relevant: tuple[str, ...]


def _docstring(obj: Any) -> str | None:
    """The object's own docstring: functions, classes (else their ``__init__``'s), methods and properties.

    Constants are left out: their ``__doc__`` is their type's.
    """
    kinds = (inspect.isroutine(obj), inspect.isclass(obj), isinstance(obj, property), inspect.ismethoddescriptor(obj))
    if not any(kinds):
        return None
    doc = getattr(obj, "__doc__", None)
    if not doc and inspect.isclass(obj) and "__init__" in vars(obj):
        doc = vars(obj)["__init__"].__doc__
    return inspect.cleandoc(doc) if isinstance(doc, str) and doc.strip() else None


def _public_names(module: Any, name: str) -> Iterator[tuple[str, Any]]:
    """The module's public API: ``__all__`` where it has one, otherwise what it defines itself."""
    if hasattr(module, "__all__"):
        yield from ((n, getattr(module, n, None)) for n in module.__all__)
        return
    homes = (None, name, module.__name__, "_" + name.rsplit(".", 1)[-1])  # bisect's functions live in _bisect
    for n, obj in sorted(vars(module).items()):
        if not n.startswith("_") and getattr(obj, "__module__", None) in homes:
            yield n, obj


def _signature(obj: Any) -> str:
    if isinstance(obj, property) or not callable(obj):
        return ""
    try:
        return str(inspect.signature(obj))
    except (TypeError, ValueError):  # many built-ins have none
        return ""


def _members(cls: type) -> Iterator[tuple[str, Any]]:
    """Public members of ``cls``, with those it inherits from *private* classes of its own module (argparse's
    ``ArgumentParser.add_argument`` is defined on ``_ActionsContainer``). What a public base defines is
    documented once, on that base: ``pathlib.Path.glob``, not again as ``PosixPath.glob``."""
    seen: set[str] = set()
    for base in cls.__mro__:
        if base is not cls and (base.__module__ != cls.__module__ or not base.__name__.startswith("_")):
            continue
        for member, value in vars(base).items():
            if not member.startswith("_") and member not in seen:
                seen.add(member)
                yield member, value.__func__ if isinstance(value, (staticmethod, classmethod)) else value


def _entries(name: str) -> Iterator[tuple[str, Any, str]]:
    module = importlib.import_module(name)
    prefix = "" if name == "builtins" else f"{name}."
    for attr, obj in _public_names(module, name):
        doc = None if inspect.ismodule(obj) else _docstring(obj)
        if doc is None:
            continue
        yield prefix + attr, obj, doc
        if inspect.isclass(obj):
            for member, value in _members(obj):
                if (member_doc := _docstring(value)) is not None:
                    yield f"{prefix}{attr}.{member}", value, member_doc


def python_docs(modules: tuple[str, ...] | list[str] = MODULES) -> dict[str, str]:
    """{doc id: name + signature + docstring} for the documented public API of ``modules``.

    >>> python_docs(["bisect"])["bisect.insort_right"].splitlines()[0]
    'bisect.insort_right(a, x, lo=0, hi=None, *, key=None)'
    """
    docs: dict[str, str] = {}
    for name in modules:
        for doc_id, obj, doc in _entries(name):
            docs.setdefault(doc_id, f"{doc_id}{_signature(obj)}\n\n{doc}")
    return docs


def python_docs_questions() -> list[DocQuestion]:
    """The hand-written questions of ``data/python_docs_questions.jsonl``, in file order."""
    rows = read_jsonl(data_path(QUESTIONS_FILE), required={"question", "relevant"})
    return [DocQuestion(row["question"], tuple(row["relevant"])) for row in rows]


def python_docs_corpus() -> tuple[dict[str, str], list[DocQuestion]]:
    """The documents and the questions, each question keeping only the relevant ids this Python has."""
    docs = python_docs()
    questions = []
    for q in python_docs_questions():
        present = tuple(r for r in q.relevant if r in docs)
        if not present:
            raise DataError(f"no document answers {q.question!r}: this Python documents none of {', '.join(q.relevant)}",
                            fix=f"add an id this interpreter has to its line in data/{QUESTIONS_FILE}")
        questions.append(DocQuestion(q.question, present))
    return docs, questions
