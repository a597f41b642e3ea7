"""Quantizing one tensor: integer codes plus one scale (and offset) per group of weights, and back.

Three schemes (``absmax``, ``zeropoint``, ``minmax``) and four granularities (``tensor``,
``channel``, ``group``, ``block``): see the package docstring. 4-bit codes are packed two per byte.

>>> w = torch.tensor([[0.1, -0.4, 0.25, 1.0]])
>>> q = quantize(w, bits=8)                       # absmax, one scale per row
>>> q.int_codes().tolist()
[[13, -51, 32, 127]]
>>> (dequantize(q) - w).abs().max().item() <= q.scales.float().max().item() / 2
True

Taught in: lesson 05 (lab 05 has the learner write absmax and zero-point by hand); lesson 08 (QLoRA).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ..errors import DataError, InvalidOption

SUPPORTED_BITS = (4, 8)
SCHEMES = ("absmax", "zeropoint", "minmax")
GRANULARITIES = ("tensor", "channel", "group", "block")


@dataclass
class QTensor:
    """A quantized tensor: everything needed to rebuild it, nothing more.

    ``codes`` are unsigned bytes, one per weight, or two per byte when ``bits == 4`` (first code in
    the low nibble). Absmax codes are stored shifted by ``2**(bits-1)`` (so -7..7 becomes 1..15);
    :meth:`int_codes` gives the signed codes back. ``zero_points`` holds the integer zero-points
    (zeropoint scheme, uint8) or the group minimums (minmax scheme, scales' dtype); absmax has none.
    """

    codes: torch.Tensor  # uint8; packed two per byte when bits == 4
    scales: torch.Tensor  # one per group, shape (n_groups, 1)
    zero_points: torch.Tensor | None  # one per group, shape (n_groups, 1), or None (absmax)
    shape: tuple[int, ...]
    bits: int
    scheme: str
    granularity: str
    group_size: int | None
    dtype: torch.dtype  # dtype of the original tensor (what dequantize returns)

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def n_groups(self) -> int:
        return self.scales.numel()

    @property
    def nbytes(self) -> int:
        """Bytes stored: codes + scales + zero-points (or minimums)."""
        total = tensor_bytes(self.codes) + tensor_bytes(self.scales)
        return total + (tensor_bytes(self.zero_points) if self.zero_points is not None else 0)

    @property
    def bits_per_weight(self) -> float:
        """Average storage per weight, scales and offsets included (int4 absmax g32, fp16: 4.5)."""
        return 8 * self.nbytes / self.numel

    def unsigned_codes(self) -> torch.Tensor:
        """The codes as stored, one per weight (unpacked), shape ``(n_groups, group_len)``."""
        codes = _unpack_int4(self.codes, self.numel) if self.bits == 4 else self.codes.reshape(-1)
        return codes.reshape(self.n_groups, -1)

    def int_codes(self) -> torch.Tensor:
        """Integer codes in the tensor's shape: absmax -qmax..qmax, zeropoint ``code - zero``,
        minmax the stored ``0..2**bits-1``."""
        u = self.unsigned_codes().to(torch.int16)
        if self.scheme == "absmax":
            u = u - 2 ** (self.bits - 1)
        elif self.scheme == "zeropoint":
            u = u - self.zero_points.to(torch.int16)
        return u.reshape(self.shape)

    def dequantize(self) -> torch.Tensor:
        return dequantize(self)


def quantize(
    w: torch.Tensor,
    bits: int = 8,
    scheme: str = "absmax",
    granularity: str | None = None,
    group_size: int | None = None,
    scale_dtype: Any = None,
) -> QTensor:
    """Quantize a float tensor to ``bits`` (4 or 8) with one scale per group.

    ``scheme``: ``"absmax"``, ``"zeropoint"`` or ``"minmax"`` (see :mod:`course_utils.quant`).
    ``granularity``: ``"tensor"``, ``"channel"`` (one scale per row, i.e. per output channel of a
    ``nn.Linear`` weight), ``"group"`` (``group_size`` consecutive weights of a row) or ``"block"``
    (``group_size`` consecutive weights of the flattened tensor). Default: ``"group"`` when
    ``group_size`` is given, else ``"channel"``. Scales are float16 unless ``scale_dtype`` says
    otherwise.

    Every weight is rounded to the nearest level, so ``|w - dequantize(q)| <= scale / 2`` (minmax:
    plus the float16 rounding of the stored minimum).
    """
    granularity = check_quantize_args(w, bits, scheme, granularity, group_size)
    scale_dtype = scale_dtype or torch.float16
    x = _as_groups(w.detach().to(torch.float32), granularity, group_size)  # (n_groups, group_len)
    levels = 2**bits - 1
    zero_points = None
    if scheme == "absmax":
        qmax = 2 ** (bits - 1) - 1
        amax = x.abs().amax(dim=1, keepdim=True)
        scale = _store_scale(amax / qmax, amax, qmax, scale_dtype)
        signed = torch.round(x / scale.to(torch.float32)).clamp_(-qmax, qmax)
        unsigned = signed + 2 ** (bits - 1)  # shift -qmax..qmax to 1..levels (unsigned storage)
    elif scheme == "zeropoint":  # the range contains 0, so 0.0 is a level and is stored exactly
        lo = x.amin(dim=1, keepdim=True).clamp(max=0.0)
        span = x.amax(dim=1, keepdim=True).clamp(min=0.0) - lo
        scale = _store_scale(span / levels, span, levels, scale_dtype)
        s = scale.to(torch.float32)
        zero = torch.round(-lo / s).clamp_(0, levels)
        unsigned = (torch.round(x / s) + zero).clamp_(0, levels)
        zero_points = zero.to(torch.uint8)
    else:  # minmax: levels from min to max, the (float) minimum stored as the offset
        zero_points = _round_down(x.amin(dim=1, keepdim=True), scale_dtype)
        m = zero_points.to(torch.float32)
        span = x.amax(dim=1, keepdim=True) - m
        scale = _store_scale(span / levels, span, levels, scale_dtype)
        unsigned = torch.round((x - m) / scale.to(torch.float32)).clamp_(0, levels)
    unsigned = unsigned.to(torch.uint8).reshape(-1)
    codes = _pack_int4(unsigned) if bits == 4 else unsigned
    return QTensor(codes, scale, zero_points, tuple(w.shape), bits, scheme, granularity, group_size, w.dtype)


def dequantize(q: QTensor) -> torch.Tensor:
    """Rebuild the (approximate) float tensor: ``code * scale + offset`` per group.

    The offset is ``-2**(bits-1) * scale`` (absmax), ``-zero * scale`` (zeropoint) or the stored
    minimum (minmax).
    """
    scale = q.scales.to(torch.float32)
    if q.scheme == "absmax":
        offset = -(2 ** (q.bits - 1)) * scale
    elif q.scheme == "zeropoint":
        offset = -q.zero_points.to(torch.float32) * scale
    else:
        offset = q.zero_points.to(torch.float32)
    w = torch.addcmul(offset, q.unsigned_codes().to(torch.float32), scale)  # one pass: code * scale + offset
    return w.reshape(q.shape).to(q.dtype)


def fake_quantize(w: torch.Tensor, **kwargs: Any) -> torch.Tensor:
    """``dequantize(quantize(w, **kwargs))``: the tensor as the quantized model will see it."""
    return dequantize(quantize(w, **kwargs))


def quantization_error(w: torch.Tensor, q: QTensor | torch.Tensor) -> dict[str, float]:
    """Max and mean absolute error, and relative RMS error, of a quantized version of ``w``."""
    approx = dequantize(q) if isinstance(q, QTensor) else q
    diff = (approx.to(torch.float32) - w.to(torch.float32)).flatten()
    rms = w.to(torch.float32).pow(2).mean().sqrt().item()
    return {
        "max_abs": diff.abs().max().item(),
        "mean_abs": diff.abs().mean().item(),
        "rel_rms": diff.pow(2).mean().sqrt().item() / rms if rms > 0 else 0.0,
    }


def check_quantize_args(w: Any, bits: int, scheme: str, granularity: str | None, group_size: int | None) -> str:
    """Validate the options (CourseError with a fix otherwise); returns the granularity to use."""
    if not isinstance(w, torch.Tensor):
        raise DataError(f"quantize() needs a torch.Tensor, got {type(w).__name__}", fix="pass torch.as_tensor(x, dtype=torch.float32)")
    if not w.is_floating_point():
        raise DataError(f"only float tensors can be quantized, got dtype {w.dtype}", fix="pass a float32/float16/bfloat16 tensor, e.g. w.float()")
    if w.numel() == 0:
        raise DataError("the tensor is empty", fix="pass a tensor with at least one element")
    if not torch.isfinite(w.abs().max()):  # max propagates nan and inf: one cheap pass
        raise DataError("the tensor holds inf or nan", fix="quantize finite weights only")
    if isinstance(bits, bool) or bits not in SUPPORTED_BITS:
        raise InvalidOption(f"bits={bits!r} is not supported", fix=f"use one of {SUPPORTED_BITS}")
    if scheme not in SCHEMES:
        raise InvalidOption(f"unknown scheme {scheme!r}", fix=f"use one of {SCHEMES}")
    granularity = granularity or ("group" if group_size is not None else "channel")
    if granularity not in GRANULARITIES:
        raise InvalidOption(f"unknown granularity {granularity!r}", fix=f"use one of {GRANULARITIES}")
    if granularity in ("group", "block"):
        if not isinstance(group_size, int) or isinstance(group_size, bool) or group_size < 2:
            raise InvalidOption(f"group_size={group_size!r} is not a whole number >= 2", fix="use e.g. group_size=32 or 128")
        if granularity == "group" and w.shape[-1] % group_size:
            raise InvalidOption(
                f"group_size={group_size} does not divide the row length {w.shape[-1]}",
                fix=f"use a group size that divides {w.shape[-1]} ({_divisor_hint(w.shape[-1])}), or granularity='block' "
                    "to cut the flattened tensor into blocks (as bitsandbytes does)",
            )
        if granularity == "block" and w.numel() % group_size:
            raise InvalidOption(f"group_size={group_size} does not divide the {w.numel()} weights", fix=f"use a block size that divides {w.numel()}")
    elif group_size is not None:
        raise InvalidOption(f"group_size is only used with granularity 'group' or 'block', not {granularity!r}", fix="drop group_size or set granularity='group'")
    return granularity


def _divisor_hint(n: int) -> str:
    found = [g for g in (32, 64, 16, 128, 8, 4, 2) if n % g == 0]
    return "e.g. " + ", ".join(map(str, found[:3])) if found else "none of the usual sizes does"


def _as_groups(x: torch.Tensor, granularity: str, group_size: int | None) -> torch.Tensor:
    """View ``x`` as (n_groups, group_len): each row of the view shares one scale."""
    if granularity in ("group", "block"):
        return x.reshape(-1, group_size)  # rows are whole groups ("group": checked to tile each row)
    if granularity == "channel" and x.dim() >= 2:
        return x.reshape(x.shape[0], -1)
    return x.reshape(1, -1)  # "tensor" (and "channel" of a 1-D tensor: it is one channel)


def _store_scale(scale: torch.Tensor, span: torch.Tensor, steps: int, dtype: Any) -> torch.Tensor:
    """Round scales to their storage dtype so that ``steps`` steps still cover ``span``.

    Rounding a scale *down* would push the largest weights past the last code (clipped: more
    error than half a step), so such scales move up to the next representable value. The codes are
    then computed with the stored scale.
    """
    stored = scale.to(dtype)
    if not torch.isfinite(stored).all():
        raise DataError(f"weights too large for {dtype} scales", fix="pass scale_dtype=torch.float32")
    short = stored.to(torch.float32) * steps < span * (1 - 1e-6)  # 1e-6: ignore float32 noise
    stored = torch.where(short, torch.nextafter(stored, torch.full_like(stored, float("inf"))), stored)
    # an all-equal group (scale 0) gets scale 1 (its codes are 0: rebuilt exactly)
    return torch.where(scale > 0, stored, torch.ones_like(stored))


def _round_down(value: torch.Tensor, dtype: Any) -> torch.Tensor:
    """``value`` in ``dtype``, never above it (a minimum rounded up would clip the smallest weight)."""
    stored = value.to(dtype)
    high = stored.to(torch.float32) > value
    return torch.where(high, torch.nextafter(stored, torch.full_like(stored, float("-inf"))), stored)


def _pack_int4(codes: torch.Tensor) -> torch.Tensor:
    """Two 4-bit codes per byte: element 2i in the low nibble, 2i+1 in the high nibble."""
    if codes.numel() % 2:
        codes = torch.cat([codes, codes.new_zeros(1)])
    pairs = codes.reshape(-1, 2)
    return pairs[:, 0] | (pairs[:, 1] << 4)


def _unpack_int4(packed: torch.Tensor, numel: int) -> torch.Tensor:
    return torch.stack([packed & 0x0F, packed >> 4], dim=1).reshape(-1)[:numel]


def tensor_bytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()
