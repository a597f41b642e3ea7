"""Quantize a GGUF file with llama.cpp itself, as a learner does with their own models (lesson 05).

The usual workflow: export the model at 16 bits (``export.export_gguf(model, path, outtype="f16")``, or
llama.cpp's ``convert_hf_to_gguf.py``), then let llama.cpp's quantizer (``llama_model_quantize``, the
function behind its ``llama-quantize`` tool) write the smaller types from that file:

    f16 = export_gguf(model, "model-f16.gguf", outtype="f16")
    q4 = quantize_gguf(f16, "model-Q4_K_M.gguf", "Q4_K_M")
    tensor_types(q4)        # which type each matrix really got (see below)

**k-quants** (``Q4_K``, ``Q5_K``, ``Q6_K``; llama.cpp PR #1684) pack 256 weights per super-block, so they need
rows whose length is a multiple of 256. A model whose hidden size is not (SmolLM2-135M: 576) gets a
*fallback* type for those matrices (``Q5_0``/``Q5_1``/``Q8_0``), and the quantizer says so on stderr;
:func:`tensor_types` shows what each file really holds. The ``_M`` ("medium") mixes also give more bits to
the tensors that are most sensitive (``attn_v``, ``ffn_down``).

>>> sorted(QUANT_TYPES)[:3]
['Q4_0', 'Q4_1', 'Q4_K_M']
>>> quantize_gguf("in.gguf", "out.gguf", "Q3_X")
Traceback (most recent call last):
...
course_utils.errors.InvalidOption: unknown quantization type 'Q3_X'. Fix: use one of Q4_0, Q4_1, Q4_K_M, Q4_K_S, Q5_0, Q5_1, Q5_K_M, Q5_K_S, Q6_K, Q8_0
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import os
from collections import Counter
from pathlib import Path

from ..errors import DataError, InvalidOption, ModelNotFound
from ..paths import atomic_output

QUANT_TYPES = ("Q4_0", "Q4_1", "Q4_K_M", "Q4_K_S", "Q5_0", "Q5_1", "Q5_K_M", "Q5_K_S", "Q6_K", "Q8_0")
FLOAT_FILE_TYPES = {0: "F32", 1: "F16", 32: "BF16"}  # general.file_type values of unquantized files


def quantize_gguf(source: str | os.PathLike, target: str | os.PathLike, kind: str, n_threads: int | None = None) -> Path:
    """Write ``target``: the GGUF ``source`` (f32, f16 or bf16) quantized by llama.cpp to ``kind``.

    The file appears only when complete (written under a temporary name, then renamed). Quantizing a file
    that is already quantized is refused: the codes would be rounded a second time.
    """
    if kind not in QUANT_TYPES:
        raise InvalidOption(f"unknown quantization type {kind!r}", fix=f"use one of {', '.join(QUANT_TYPES)}")
    source = Path(source)
    if not source.is_file():
        raise ModelNotFound(f"no GGUF file at {source}", fix="export one first: export.export_gguf(model, path, outtype='f16')")
    _check_unquantized(source)
    import llama_cpp

    from ..backends.llamacpp import quiet_stderr

    params = llama_cpp.llama_model_quantize_default_params()
    params.nthread = n_threads or os.cpu_count() or 1
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{kind}")

    def write(tmp: Path) -> None:
        # llama.cpp lists every tensor it converts: on the C streams, and through llama-cpp-python's log
        # callback on Python's sys.stderr
        with quiet_stderr(fds=(1, 2)), contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            status = llama_cpp.llama_model_quantize(str(source).encode(), str(tmp).encode(), ctypes.byref(params))
        if status != 0:
            raise DataError(f"llama.cpp could not quantize {source} to {kind} (status {status})",
                            fix="check that the source is a complete f16/f32 GGUF of a model llama.cpp supports")

    return atomic_output(target, write)


def tensor_types(path: str | os.PathLike) -> Counter[str]:
    """How many tensors of each storage type a GGUF file holds, e.g. ``Counter({'Q5_1': 180, 'F32': 61, ...})``."""
    from .gguf_file import gguf_tensors

    return Counter(t.type for t in gguf_tensors(path))


def _check_unquantized(path: Path) -> None:
    from .gguf_file import gguf_metadata

    try:
        file_type = gguf_metadata(path).get("general.file_type")
    except Exception as err:  # noqa: BLE001 - any unreadable header is one clear error
        raise DataError(f"{path} is not a readable GGUF file ({err})", fix="re-export it") from None
    if file_type is not None and int(file_type) not in FLOAT_FILE_TYPES:
        raise InvalidOption(f"{path.name} is already quantized (general.file_type {file_type}): its codes would be rounded twice",
                            fix="quantize from an f16/f32 export of the model (export.export_gguf(model, path, outtype='f16'))")
