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

>>> w = torch.tensor([[0.1, -0.4, 0.25, 1.0]])
>>> q = quantize(w, bits=8)                       # absmax, one scale per row
>>> q.int_codes().tolist()
[[13, -51, 32, 127]]
>>> (dequantize(q) - w).abs().max().item() <= q.scales.float().max().item() / 2
True

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
"""

from __future__ import annotations

import copy
import functools
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from .errors import DataError, InvalidOption

if TYPE_CHECKING:
    import numpy as np

SUPPORTED_BITS = (4, 8)
SCHEMES = ("absmax", "zeropoint", "minmax")
GRANULARITIES = ("tensor", "channel", "group", "block")
Q4_1_BLOCK = 32  # weights per Q4_1 block
Q4_1_BLOCK_BYTES = 20  # fp16 scale d + fp16 minimum m + 16 bytes of 4-bit codes


# ----------------------------------------------------------------------------- one tensor
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
        total = _tensor_bytes(self.codes) + _tensor_bytes(self.scales)
        return total + (_tensor_bytes(self.zero_points) if self.zero_points is not None else 0)

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

    ``scheme``: ``"absmax"``, ``"zeropoint"`` or ``"minmax"`` (see the module docstring).
    ``granularity``: ``"tensor"``, ``"channel"`` (one scale per row, i.e. per output channel of a
    ``nn.Linear`` weight), ``"group"`` (``group_size`` consecutive weights of a row) or ``"block"``
    (``group_size`` consecutive weights of the flattened tensor). Default: ``"group"`` when
    ``group_size`` is given, else ``"channel"``. Scales are float16 unless ``scale_dtype`` says
    otherwise.

    Every weight is rounded to the nearest level, so ``|w - dequantize(q)| <= scale / 2`` (minmax:
    plus the float16 rounding of the stored minimum).
    """
    granularity = _check_args(w, bits, scheme, granularity, group_size)
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


def _check_args(w: Any, bits: int, scheme: str, granularity: str | None, group_size: int | None) -> str:
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


def _tensor_bytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


# ----------------------------------------------------------------------------- a whole model
class QuantLinear(nn.Module):
    """A ``nn.Linear`` whose weight is stored as codes + scales (+ zero-points).

    The weight is de-quantized on the fly in each forward pass (see the module docstring), so the
    stored model is small and the arithmetic is that of the de-quantized weights.
    """

    def __init__(self, q: QTensor, bias: torch.Tensor | None = None) -> None:
        super().__init__()
        self.out_features, self.in_features = q.shape
        self.bits, self.scheme, self.granularity, self.group_size = q.bits, q.scheme, q.granularity, q.group_size
        self.weight_dtype = q.dtype
        self.register_buffer("codes", q.codes)
        self.register_buffer("scales", q.scales)
        self.register_buffer("zero_points", q.zero_points)  # None is allowed and not saved
        self.bias = nn.Parameter(bias.detach().clone(), requires_grad=False) if bias is not None else None

    @classmethod
    def from_linear(cls, linear: nn.Linear, **quant_kwargs: Any) -> QuantLinear:
        return cls(quantize(linear.weight.detach(), **quant_kwargs), linear.bias)

    def qtensor(self) -> QTensor:
        return QTensor(self.codes, self.scales, self.zero_points, (self.out_features, self.in_features),
                       self.bits, self.scheme, self.granularity, self.group_size, self.weight_dtype)

    @property
    def weight(self) -> torch.Tensor:
        """The de-quantized weight (built on demand, not stored)."""
        return dequantize(self.qtensor())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x, self.weight.to(x.dtype), None if self.bias is None else self.bias.to(x.dtype))

    def extra_repr(self) -> str:
        groups = f", {self.granularity} size {self.group_size}" if self.group_size else f", per-{self.granularity}"
        return f"in_features={self.in_features}, out_features={self.out_features}, int{self.bits} {self.scheme}{groups}"


def quantize_model(
    model: nn.Module,
    bits: int = 8,
    scheme: str = "absmax",
    granularity: str | None = None,
    group_size: int | None = None,
    skip: tuple[str, ...] = ("lm_head",),
    scale_dtype: Any = None,
    inplace: bool = False,
) -> nn.Module:
    """Replace every ``nn.Linear`` (except names ending in ``skip``) by a :class:`QuantLinear`.

    ``lm_head`` is skipped by default: in SmolLM2 it *is* the token-embedding table (tied weights),
    which stays in its original dtype here. Returns a quantized copy unless ``inplace=True``.
    """
    def wanted(name: str, module: nn.Module) -> bool:
        return isinstance(module, nn.Linear) and not any(name == s or name.endswith("." + s) for s in skip)

    names = [name for name, module in model.named_modules() if wanted(name, module)]
    if not names:
        raise InvalidOption("the model has no nn.Linear layer to quantize", fix="pass a PyTorch model (e.g. from load_hf_model()), or check `skip`")
    for name in names:  # check every layer first: a bad option fails before anything changes
        _check_args(model.get_submodule(name).weight, bits, scheme, granularity, group_size)
    target = model if inplace else copy.deepcopy(model)
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = target.get_submodule(parent_name) if parent_name else target
        layer = QuantLinear.from_linear(target.get_submodule(name), bits=bits, scheme=scheme,
                                        granularity=granularity, group_size=group_size, scale_dtype=scale_dtype)
        setattr(parent, child, layer)
    return target


# ----------------------------------------------------------------------------- size accounting
def stored_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """The tensors a saved copy of ``model`` holds (its state_dict), each shared tensor once.

    Tied weights (SmolLM2's ``lm_head.weight`` is ``embed_tokens.weight``) appear once, under the
    first name. Tensors packed in tuples (PyTorch's dynamically quantized layers) are included.
    """
    seen: set[tuple[int, int, tuple[int, ...]]] = set()
    unique: dict[str, torch.Tensor] = {}

    def add(name: str, value: Any) -> None:
        if isinstance(value, (tuple, list)):
            for i, item in enumerate(value):
                add(f"{name}.{i}", item)
        elif isinstance(value, torch.Tensor) and value.numel():
            key = (value.untyped_storage().data_ptr(), value.storage_offset(), tuple(value.shape))
            if key not in seen:
                seen.add(key)
                unique[name] = value

    for name, value in model.state_dict(keep_vars=False).items():
        add(name, value)
    return unique


def model_size_bytes(model: nn.Module) -> int:
    """Bytes needed to store ``model``: every stored tensor at its dtype, shared ones once."""
    return sum(_tensor_bytes(t) for t in stored_tensors(model).values())


def size_breakdown(model: nn.Module) -> dict[str, int]:
    """Where the bytes go: quantized codes, scales, zero-points, and every other (unquantized) tensor.

    The values add up to :func:`model_size_bytes`.
    """
    parts = {"codes": 0, "scales": 0, "zero_points": 0, "unquantized": 0}
    quantized = {f"{name}.{part}" if name else part: part for name, m in model.named_modules()
                 if isinstance(m, QuantLinear) for part in ("codes", "scales", "zero_points")}
    for name, t in stored_tensors(model).items():
        parts[quantized.get(name, "unquantized")] += _tensor_bytes(t)
    return parts


def expected_linear_bytes(shape: tuple[int, int], bits: int, group_size: int | None = None,
                          scheme: str = "absmax", granularity: str | None = None, scale_bytes: int = 2) -> int:
    """Bytes of one quantized ``(out, in)`` weight by the formula: codes at ``bits`` (packed), one
    scale per group, and one zero-point (1 byte) or minimum (``scale_bytes``) per group.

    >>> expected_linear_bytes((576, 576), bits=4, group_size=32)   # 165,888 code bytes + 10,368 scales * 2
    186624
    """
    n = shape[0] * shape[1]
    granularity = granularity or ("group" if group_size else "channel")
    groups = {"tensor": 1, "channel": shape[0], "group": n // (group_size or n), "block": n // (group_size or n)}[granularity]
    codes = (n * bits + 7) // 8
    offsets = {"absmax": 0, "zeropoint": 1, "minmax": scale_bytes}[scheme]
    return codes + groups * (scale_bytes + offsets)


# ----------------------------------------------------------------------------- GGUF
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
    from .assets import resolve_gguf

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
