"""Where the course's files are, and how every file the course writes is written: atomically.

Core layer: imports nothing from the rest of ``course_utils`` but :mod:`.errors`.

A cache or store that a crash, a full disk or Ctrl-C leaves half-written is worse than none: the
next run trusts it. So every writer here first fills a temporary file (or folder) *next to* the
target, flushes it, then moves it into place with one rename. A reader sees the old version or the
complete new one, never a mix, and a failed write leaves no temporary file behind.

>>> import tempfile, pathlib
>>> target = pathlib.Path(tempfile.mkdtemp()) / "notes" / "hello.txt"
>>> atomic_write_text(target, "hi\\n").read_text()
'hi\\n'
>>> with atomic_file(target) as fh:
...     _ = fh.write("replaced")
>>> target.read_text(), sorted(p.name for p in target.parent.iterdir())
('replaced', ['hello.txt'])

Taught in: lesson 00 (the cache), used by every module that writes (caches, stores, exports).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from .errors import DataError


# ----------------------------------------------------------------------------- the course folder
def project_root() -> Path:
    """The course checkout: the nearest parent (of the working folder, then of this file) holding
    ``notebooks/`` and ``pyproject.toml``."""
    for start in (Path.cwd(), Path(__file__).resolve()):
        for folder in (start, *start.parents):
            if (folder / "notebooks").is_dir() and (folder / "pyproject.toml").is_file():
                return folder
    raise DataError("cannot find the course folder (one with notebooks/ and pyproject.toml)",
                    fix="run the command from inside the course checkout")


def data_path(name: str) -> Path:
    """The course file ``name`` in the checkout's ``data/`` folder.

    >>> data_path("agent_tasks.jsonl").name
    'agent_tasks.jsonl'
    """
    return project_root() / "data" / name


# ----------------------------------------------------------------------------- atomic writers
@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path`` for writing; on a clean exit it replaces ``path``.

    ``mode`` is ``"w"`` (text) or ``"wb"`` (bytes). If the block raises, ``path`` is untouched and
    the temporary file is removed.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_file writes whole files: mode must be 'w' or 'wb', not {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".tmp-{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else encoding) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically; returns the path."""
    with atomic_file(path, "w", encoding=encoding) as fh:
        fh.write(text)
    return Path(path)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns the path."""
    with atomic_file(path, "wb") as fh:
        fh.write(data)
    return Path(path)


def atomic_output(path: str | os.PathLike, write: Callable[[Path], Any]) -> Path:
    """Let ``write(tmp_path)`` create a file (a tool that wants a file name, e.g. a GGUF writer or a
    subprocess), then move it to ``path``. A failure leaves ``path`` as it was and no temporary file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".tmp-{path.stem}-", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return path


def atomic_folder(folder: str | os.PathLike, write: Callable[[Path], Any], replace: bool = True) -> Path:
    """Let ``write(tmp)`` fill a temporary folder beside ``folder``, then move it into place.

    With ``replace=False`` an existing complete ``folder`` (another process finished first) is kept
    and the new copy discarded: the way to fill a cache that several processes may build at once.

    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "model"
    >>> _ = atomic_folder(out, lambda tmp: (tmp / "config.json").write_text("{}"))
    >>> sorted(p.name for p in out.parent.iterdir()), (out / "config.json").read_text()
    (['model'], '{}')
    """
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{folder.name}-", dir=folder.parent))
    try:
        write(tmp)
        if folder.exists():
            if not replace:
                return folder
            old = folder.with_name(f".old-{folder.name}-{os.getpid()}")
            folder.rename(old)
            tmp.rename(folder)
            shutil.rmtree(old, ignore_errors=True)
        else:
            try:
                tmp.rename(folder)
            except OSError:
                if replace or not folder.exists():  # not a lost race with another builder: a real failure
                    raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder
