"""Reading a GGUF file (llama.cpp's model format) with the ``gguf`` library: metadata, tensors, data.

The header is parsed once per file and cached; the tensor data is memory-mapped, not read.

Taught in: lesson 05 (what is inside the course's Q4_1 file); lesson 08 and lab 08 (comparing weights).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import DataError

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class GGUFTensor:
    name: str
    type: str  # "Q4_1", "Q8_0", "F32", ...
    shape: tuple[int, ...]  # PyTorch order (rows, cols); GGUF lists dimensions fastest-first
    n_elements: int
    n_bytes: int
    offset: int  # byte offset of the tensor's data in the file

    @property
    def bits_per_weight(self) -> float:
        return 8 * self.n_bytes / self.n_elements


def _reader(path: str | os.PathLike | None) -> Any:
    """A ``gguf.GGUFReader`` for ``path`` (default: the course model), cached: parsing the header
    (50k vocabulary strings) takes seconds, the tensor data itself is memory-mapped, not read."""
    from ..assets import resolve_gguf

    path = Path(path) if path is not None else resolve_gguf(None)
    if not path.is_file():
        raise DataError(f"no GGUF file at {path}", fix="pass the path of a .gguf file (course_utils.assets.smollm2_gguf())")
    stat = path.stat()
    return _cached_reader(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=2)
def _cached_reader(path: str, size: int, mtime_ns: int) -> Any:  # size/mtime: a changed file is re-read
    import gguf

    try:
        return gguf.GGUFReader(path)
    except (ValueError, OSError) as err:
        raise DataError(f"{path} is not a readable GGUF file ({err})", fix="pass a complete .gguf model file") from None


def gguf_metadata(path: str | os.PathLike | None = None, max_items: int = 8) -> dict[str, Any]:
    """The key/value metadata of a GGUF file; long arrays (the vocabulary) are summarised."""
    import gguf

    meta: dict[str, Any] = {}
    for key, field in _reader(path).fields.items():
        if key.startswith("GGUF."):
            continue
        kind = field.types[0] if field.types else None
        if kind == gguf.GGUFValueType.ARRAY:
            n = len(field.data)
            items = [field.contents(i) for i in range(min(n, max_items))] if n else []
            meta[key] = items if n <= max_items else f"[{n} items: {', '.join(map(repr, items[:3]))}, ...]"
        else:
            meta[key] = field.contents()
    return meta


def gguf_tensors(path: str | os.PathLike | None = None) -> list[GGUFTensor]:
    """Every tensor of a GGUF file: name, type, shape (PyTorch order), size in bytes, offset."""
    return [
        GGUFTensor(t.name, t.tensor_type.name, tuple(int(d) for d in reversed(t.shape)), int(t.n_elements), int(t.n_bytes), int(t.data_offset))
        for t in _reader(path).tensors
    ]


def gguf_tensor_data(name: str, path: str | os.PathLike | None = None) -> tuple[Any, str]:
    """The raw stored data of one tensor (uint8 blocks for quantized types) and its type name."""
    for t in _reader(path).tensors:
        if t.name == name:
            return t.data, t.tensor_type.name
    raise DataError(f"the GGUF file has no tensor {name!r}", fix="list the names with gguf_tensors()")


def gguf_dequantize(name: str, path: str | os.PathLike | None = None) -> np.ndarray:
    """One tensor de-quantized by the ``gguf`` library, shape in PyTorch order."""
    import gguf

    data, kind = gguf_tensor_data(name, path)
    return gguf.quants.dequantize(data, gguf.GGMLQuantizationType[kind])
