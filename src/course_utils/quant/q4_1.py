"""llama.cpp's Q4_1 format by hand: 32 weights in 20 bytes, ``w = d * q + m`` per block.

>>> import struct
>>> raw = struct.pack("<ee", 0.5, -1.0) + bytes([0x21] * 16)   # d = 0.5, m = -1, codes 1 (low) and 2 (high)
>>> dequantize_q4_1_block(raw)[0], dequantize_q4_1_block(raw)[16]
(-0.5, 0.0)

Taught in: lesson 05 (one block of the course model de-quantized by hand, checked against ``gguf``) and lab 05.
"""

from __future__ import annotations

import os
import struct
from typing import TYPE_CHECKING

from ..errors import DataError, InvalidOption
from .gguf_file import gguf_tensor_data

if TYPE_CHECKING:
    import numpy as np


Q4_1_BLOCK = 32  # weights per Q4_1 block
Q4_1_BLOCK_BYTES = 20  # fp16 scale d + fp16 minimum m + 16 bytes of 4-bit codes


def q4_1_block_bytes(name: str, block: int = 0, path: str | os.PathLike | None = None) -> bytes:
    """The 20 raw bytes of Q4_1 block number ``block`` of tensor ``name``."""
    data, kind = gguf_tensor_data(name, path)
    if kind != "Q4_1":
        raise DataError(f"tensor {name!r} is {kind}, not Q4_1", fix="pick a Q4_1 tensor, e.g. 'blk.0.attn_q.weight'")
    flat = data.reshape(-1)
    n_blocks = flat.size // Q4_1_BLOCK_BYTES
    if not 0 <= block < n_blocks:
        raise InvalidOption(f"block {block} is out of range", fix=f"use 0 <= block < {n_blocks}")
    start = block * Q4_1_BLOCK_BYTES
    return flat[start:start + Q4_1_BLOCK_BYTES].tobytes()


def dequantize_q4_1_block(raw: bytes) -> list[float]:
    """De-quantize one Q4_1 block by hand: 32 weights from 20 bytes.

    Layout (llama.cpp ``block_q4_1``): ``d`` (float16 scale), ``m`` (float16 minimum), then 16
    bytes; byte ``j`` holds weight ``j`` in its low nibble and weight ``j + 16`` in its high nibble.
    Each weight is ``d * q + m``. The result is rounded to float32, like llama.cpp and ``gguf``.
    """
    if len(raw) != Q4_1_BLOCK_BYTES:
        raise DataError(f"a Q4_1 block is {Q4_1_BLOCK_BYTES} bytes, got {len(raw)}", fix="pass q4_1_block_bytes(name, block)")
    d, m = struct.unpack("<ee", raw[:4])  # 'e' = IEEE float16, little-endian
    low = [b & 0x0F for b in raw[4:]]
    high = [b >> 4 for b in raw[4:]]
    # d*q and d*q + m are exact in float64 (few significant bits); one rounding to float32 follows,
    # which is exactly what float32 arithmetic gives
    return [_to_float32(d * q + m) for q in low + high]


def dequantize_q4_1(data: np.ndarray) -> np.ndarray:
    """The same recipe, vectorised with NumPy over every block of a Q4_1 tensor (raw uint8 data)."""
    import numpy as np

    blocks = np.ascontiguousarray(data).reshape(-1, Q4_1_BLOCK_BYTES)
    d = blocks[:, 0:2].copy().view(np.float16).astype(np.float32)
    m = blocks[:, 2:4].copy().view(np.float16).astype(np.float32)
    qs = blocks[:, 4:]
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.float32)  # weights 0..15, then 16..31
    return (d * q + m).reshape(*data.shape[:-1], -1)


def _to_float32(x: float) -> float:
    return struct.unpack("<f", struct.pack("<f", x))[0]
