"""Latency measures for generation: time to first token (TTFT) and time per output token (TPOT).

TTFT is what a user waits before anything appears: tokenizing, reading the whole prompt (prefill)
and choosing the first token. TPOT is the steady pace after that (decode). Tokens per second of
decoding is ``1 / tpot_s``.

>>> timer = StreamTimer(start=0.0)
>>> for t in (0.5, 0.6, 0.7):
...     timer.token(now=t)
>>> timings = timer.finish(prompt_tokens=10, now=0.7)
>>> round(timings.ttft_s, 3), round(timings.tpot_s, 3), round(timings.tokens_per_s)
(0.5, 0.1, 10)
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Timings:
    """Measured latency of one generation (seconds)."""

    ttft_s: float  # call start -> first generated token
    tpot_s: float  # mean gap between later tokens (0.0 when fewer than 2 tokens)
    total_s: float  # call start -> last token
    prompt_tokens: int
    completion_tokens: int

    @property
    def tokens_per_s(self) -> float:
        """Decode speed: output tokens per second after the first token."""
        return 1.0 / self.tpot_s if self.tpot_s > 0 else 0.0

    @property
    def prefill_tokens_per_s(self) -> float:
        """Prompt tokens processed per second up to the first token (an upper bound on prefill time)."""
        return self.prompt_tokens / self.ttft_s if self.ttft_s > 0 else 0.0

    def as_dict(self) -> dict[str, float]:
        row = asdict(self)
        row["tokens_per_s"] = self.tokens_per_s
        return row


class StreamTimer:
    """Stamp each generated token; :meth:`finish` turns the stamps into :class:`Timings`."""

    def __init__(self, start: float | None = None) -> None:
        self.start = time.perf_counter() if start is None else start
        self.first: float | None = None
        self.last: float | None = None
        self.count = 0

    def token(self, now: float | None = None) -> None:
        now = time.perf_counter() if now is None else now
        if self.first is None:
            self.first = now
        self.last = now
        self.count += 1

    def finish(self, prompt_tokens: int, now: float | None = None) -> Timings:
        now = time.perf_counter() if now is None else now
        first = self.first if self.first is not None else now
        last = self.last if self.last is not None else now
        tpot = (last - first) / (self.count - 1) if self.count > 1 else 0.0
        return Timings(
            ttft_s=first - self.start,
            tpot_s=tpot,
            total_s=last - self.start,
            prompt_tokens=prompt_tokens,
            completion_tokens=self.count,
        )
