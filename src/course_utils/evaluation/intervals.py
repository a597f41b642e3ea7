"""How sure is a measured rate or a measured gain? Confidence intervals for small samples (lessons 09, 11).

* :func:`wilson_interval` for a proportion (a pass rate, an accuracy). Unlike p ± 1.96·SE it stays
  inside [0, 1] and does not shrink to nothing when every item passed (Wilson 1927).
* :func:`mean_interval` for the mean of per-item scores (token F1, a loss).
* :func:`paired_difference` for "B is better than A" measured on the *same* items: the standard error
  of the per-item differences, which is much smaller than the two separate standard errors when the
  items vary a lot but the two systems vary together.

>>> low, high = wilson_interval(36, 40)
>>> round(low, 3), round(high, 3)
(0.769, 0.96)
>>> [round(x, 3) for x in wilson_interval(10, 10)]     # all passed: still not certain
[0.722, 1.0]
>>> d = paired_difference([0.0, 0.5, 1.0, 0.0], [0.5, 0.5, 1.0, 1.0])
>>> d.mean, round(d.stderr, 3), round(d.low, 3), round(d.high, 3)
(0.375, 0.239, -0.094, 0.844)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import DataError

Z95 = 1.959964  # the normal quantile for a two-sided 95% interval


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval (95% by default) for ``successes`` out of ``n``."""
    if n < 1 or not 0 <= successes <= n:
        raise DataError(f"need 0 <= successes <= n and n >= 1, got {successes} of {n}", fix="pass counts, e.g. (36, 40)")
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    # At 0 and n successes the ends are exactly 0 and 1; rounding could put them a hair inside the estimate
    low = 0.0 if successes == 0 else min(p, max(0.0, centre - half))
    high = 1.0 if successes == n else max(p, min(1.0, centre + half))
    return low, high


@dataclass(frozen=True)
class Estimate:
    """A mean with its standard error and a normal 95% interval."""

    mean: float
    stderr: float
    n: int

    @property
    def low(self) -> float:
        return self.mean - Z95 * self.stderr

    @property
    def high(self) -> float:
        return self.mean + Z95 * self.stderr

    def __str__(self) -> str:
        return f"{self.mean:.3f} ± {self.stderr:.3f} (95% CI {self.low:.3f} to {self.high:.3f}, n={self.n})"


def mean_interval(values: Sequence[float]) -> Estimate:
    """Mean of per-item ``values`` and its standard error (sample standard deviation / sqrt(n))."""
    n = len(values)
    if n < 2:
        raise DataError(f"need at least 2 values for a standard error, got {n}", fix="score more items")
    mean = sum(values) / n
    variance = sum((v - mean) ** 2 for v in values) / (n - 1)
    return Estimate(mean, math.sqrt(variance / n), n)


def paired_difference(before: Sequence[float], after: Sequence[float]) -> Estimate:
    """Mean of ``after[i] - before[i]`` over the same items, with its standard error."""
    if len(before) != len(after):
        raise DataError(f"{len(before)} scores before but {len(after)} after", fix="score both systems on the same items")
    return mean_interval([b - a for a, b in zip(before, after, strict=True)])
