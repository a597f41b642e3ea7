"""Quantization by hand: int8/int4 codes, scales and zero-points, for one tensor or a whole model.

Quantizing stores each weight as a small integer *code* plus, for a group of weights, a *scale*
(and, for asymmetric schemes, an offset); de-quantizing multiplies back. Three schemes:

* **absmax** (symmetric): ``scale = max|w| / qmax`` with ``qmax = 2**(bits-1) - 1``, codes in
  ``[-qmax, qmax]``, ``w ≈ code * scale``. Zero stays exactly zero.
* **zeropoint** (asymmetric, integer zero-point, as in PyTorch, ONNX, GPTQ): the range
  ``[min(w, 0), max(w, 0)]`` is spread over all ``2**bits`` codes, ``w ≈ (code - zero) * scale``.
* **minmax** (asymmetric, float offset, as in llama.cpp's Q4_1): ``scale = (max - min) / (2**bits - 1)``,
  ``w ≈ code * scale + min``; the group's minimum is stored (float16) instead of an integer zero.

Who shares one scale is the *granularity*: the whole tensor (``"tensor"``), one output row
(``"channel"``), ``group_size`` consecutive weights of a row (``"group"``; the size must divide the
row), or ``group_size`` consecutive weights of the flattened tensor (``"block"``, as bitsandbytes
does; a block may run from one row into the next). Finer groups cost more scales but keep one
outlier from ruining everyone else's precision.

Storage (what :func:`model_size_bytes` counts): codes are ``uint8``; 4-bit codes are packed two per
byte (0.5 byte per weight); scales are ``float16`` unless you pass ``scale_dtype``; integer
zero-points are ``uint8`` (one byte each, even for 4 bits: simple, and they are few); minmax
offsets have the scales' dtype.

**Simulated quantization.** :func:`quantize_model` swaps each ``nn.Linear`` for a
:class:`QuantLinear` that keeps only codes, scales and offsets, and **de-quantizes its weight on the
fly** in every forward pass, then multiplies in the activations' dtype (fp32). The model in memory
is really small, and the numbers it computes are exactly those of the de-quantized weights; but it
is not faster: real int4 kernels (llama.cpp, ExLlamaV2, Marlin) multiply the codes block by block
without building the fp32 matrix.

The GGUF helpers read the file with the ``gguf`` library and de-quantize a Q4_1 block by hand.

One module per concept::

    tensor.py     QTensor, quantize, dequantize, fake_quantize, quantization_error (one tensor)
    linear.py     QuantLinear, quantize_model (a whole model, de-quantized on the fly)
    size.py       stored_tensors, model_size_bytes, size_breakdown, expected_linear_bytes
    gguf_file.py  gguf_metadata, gguf_tensors, gguf_tensor_data, gguf_dequantize (the gguf library)
    q4_1.py       one Q4_1 block de-quantized by hand, and the same vectorised with NumPy
    gguf_quantize.py  quantize_gguf (llama.cpp's own quantizer: k-quants, Q8_0...), tensor_types

Every name is importable from here: ``from course_utils import quant`` then ``quant.quantize(...)``.

Taught in: lesson 05 and lab 05 (lesson 08's QLoRA quantizes its frozen base with it).
"""

from __future__ import annotations

from .gguf_file import GGUFTensor, gguf_dequantize, gguf_metadata, gguf_tensor_data, gguf_tensors
from .gguf_quantize import QUANT_TYPES, quantize_gguf, tensor_types
from .linear import QuantLinear, quantize_model
from .q4_1 import (
    Q4_1_BLOCK,
    Q4_1_BLOCK_BYTES,
    dequantize_q4_1,
    dequantize_q4_1_block,
    q4_1_block_bytes,
)
from .size import expected_linear_bytes, model_size_bytes, size_breakdown, stored_tensors
from .tensor import (
    GRANULARITIES,
    SCHEMES,
    SUPPORTED_BITS,
    QTensor,
    check_quantize_args,
    dequantize,
    fake_quantize,
    quantization_error,
    quantize,
    tensor_bytes,
)

__all__ = [
    "QUANT_TYPES", "quantize_gguf", "tensor_types",
    "GRANULARITIES", "Q4_1_BLOCK", "Q4_1_BLOCK_BYTES", "SCHEMES", "SUPPORTED_BITS",
    "GGUFTensor", "QTensor", "QuantLinear",
    "check_quantize_args", "dequantize", "dequantize_q4_1", "dequantize_q4_1_block", "expected_linear_bytes",
    "fake_quantize", "gguf_dequantize", "gguf_metadata", "gguf_tensor_data", "gguf_tensors", "model_size_bytes",
    "q4_1_block_bytes", "quantization_error", "quantize", "quantize_model", "size_breakdown", "stored_tensors",
    "tensor_bytes",
]
