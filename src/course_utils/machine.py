"""What machine a measurement ran on: cores, load, CPU model and the instruction sets that matter.

Every speed a lesson or benchmark prints depends on the machine, and on what else it was doing.
Benchmarks print :func:`describe` beside their ratios; ``course run --in-place`` stores
:meth:`Machine.as_metadata` in each notebook it executes and refuses to store outputs on a busy
machine (:func:`is_busy`).

>>> m = machine()
>>> m.cores >= 1 and m.load_1min >= 0
True
>>> describe(Machine(cores=2, load_1min=0.4, cpu="Example CPU", flags=("avx2", "avx512f")))
'2 cores, load 0.40 (1 min), Example CPU, avx2 avx512f'

Core layer (standard library only). Taught in lesson 00 (why timings differ between machines) and
used by every benchmark.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass

# instruction sets that change what a CPU does with a model (AVX-512 / AMX / bf16 matmuls, VNNI int8)
INTERESTING_FLAGS = ("avx2", "fma", "f16c", "avx512f", "avx512_bf16", "avx512_vnni", "avx_vnni", "amx_tile", "amx_bf16", "amx_int8")


@dataclass(frozen=True)
class Machine:
    cores: int
    load_1min: float  # processes running or waiting, averaged over the last minute
    cpu: str
    flags: tuple[str, ...] = ()

    @property
    def has_native_bf16(self) -> bool:
        """True when the CPU multiplies bf16 matrices in hardware (AVX-512 BF16 or AMX-BF16)."""
        return "avx512_bf16" in self.flags or "amx_bf16" in self.flags

    def as_metadata(self) -> dict[str, object]:
        return {"cores": self.cores, "load_1min": round(self.load_1min, 2), "cpu": self.cpu, "flags": list(self.flags)}


def machine() -> Machine:
    """This machine, now."""
    try:
        load = os.getloadavg()[0]
    except (OSError, AttributeError):  # Windows has no load average
        load = 0.0
    cpu, flags = _cpu_info()
    return Machine(cores=os.cpu_count() or 1, load_1min=load, cpu=cpu, flags=flags)


def _cpu_info() -> tuple[str, tuple[str, ...]]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            text = fh.read()
    except OSError:
        return platform.processor() or platform.machine(), ()
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    have = set(fields.get("flags", "").split())
    return fields.get("model name", platform.machine()), tuple(f for f in INTERESTING_FLAGS if f in have)


def describe(m: Machine | None = None) -> str:
    """One line: cores, load, CPU model, interesting instruction sets."""
    m = m or machine()
    return f"{m.cores} cores, load {m.load_1min:.2f} (1 min), {m.cpu}" + (f", {' '.join(m.flags)}" if m.flags else "")


def is_busy(m: Machine | None = None) -> bool:
    """More work waiting than there are cores: timings measured now would be slow and noisy."""
    m = m or machine()
    return m.load_1min > m.cores
