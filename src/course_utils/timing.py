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

Core layer: imports nothing from ``course_utils`` but its errors. Taught in lesson 00 (TTFT, TPOT) and
lesson 04 (measuring any stream).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

from .errors import InvalidOption

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


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


# ----------------------------------------------------------------------------- fair comparisons on a busy machine
def best_of_turns(contenders: Mapping[K, Callable[[], T]], repeats: int = 2, *, cost: Callable[[T], float]) -> dict[K, T]:
    """Run the contenders in turns, ``repeats`` rounds (A, B, A, B, ...), keep each one's cheapest result.

    A burst of load from another program then spoils one run of one contender, not the comparison: each
    contender's best run is the one least disturbed. ``cost`` says what "best" means (seconds, or minus
    tokens/s). Results keep the contenders' order.

    >>> clock = iter([5.0, 2.0, 1.0, 3.0])  # A takes 5 s then 1 s; B 2 s then 3 s
    >>> best_of_turns({"A": lambda: next(clock), "B": lambda: next(clock)}, repeats=2, cost=lambda s: s)
    {'A': 1.0, 'B': 2.0}
    """
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise InvalidOption(f"repeats must be a whole number >= 1, got {repeats!r}", fix="pass repeats=2 or 3")
    best: dict[K, T] = {}
    for _ in range(repeats):
        for name, run in contenders.items():
            result = run()
            if name not in best or cost(result) < cost(best[name]):
                best[name] = result
    return best


# ----------------------------------------------------------------------------- any stream, from any source
def _piece_text(item: Any) -> str:
    """The text carried by one stream item, whatever produced it.

    Understands course ``StreamChunk``s, plain strings/bytes, OpenAI chat/completion chunks
    (``choices[0].delta.content`` / ``choices[0].text``), LangChain message chunks (``.content``) and
    Ollama's streamed dicts (``message.content`` / ``response``).
    """
    if isinstance(item, str):
        return item
    if isinstance(item, bytes):
        return item.decode("utf-8", errors="replace")
    if isinstance(item, dict):  # Ollama's raw JSON lines, or llama-cpp-python's OpenAI-style dicts
        if item.get("choices"):
            return "".join(str((c.get("delta") or {}).get("content") or c.get("text") or "") for c in item["choices"])
        message = item.get("message") or {}
        return str(message.get("content") or item.get("response") or "")
    choices = getattr(item, "choices", None)
    if choices is not None:  # OpenAI client chunks
        parts = []
        for choice in choices:
            delta = getattr(choice, "delta", None)
            parts.append((getattr(delta, "content", None) if delta is not None else getattr(choice, "text", None)) or "")
        return "".join(parts)
    for attr in ("text", "content"):  # course StreamChunk / LangChain AIMessageChunk / ollama ChatResponse
        value = getattr(item, attr, None)
        if isinstance(value, str):
            return value
    message = getattr(item, "message", None)
    return str(getattr(message, "content", "") or "")


def measure_stream(chunks: Iterable[Any], start: float | None = None, prompt_tokens: int = 0,
                   clock: Callable[[], float] = time.perf_counter) -> Timings:
    """Consume any stream and measure TTFT, TPOT and tokens/s from when its pieces arrive.

    ``chunks`` yields pieces of text in any form (see :func:`_piece_text`), or ``(time_s, piece)``
    pairs that were stamped already. Pieces with no text (role headers, the final "done" chunk) are
    not tokens. Each text piece counts as one token, unless the stream ends with a course
    ``StreamChunk(done=True)`` whose result knows the exact count. ``start`` is when the request was sent
    (default: now; with a client that sends on ``create()``, stamp ``start`` before calling it).

    >>> t = measure_stream([(0.5, "Hel"), (0.6, "lo"), (0.7, "!"), (0.7, "")], start=0.0)
    >>> round(t.ttft_s, 3), round(t.tpot_s, 3), t.completion_tokens
    (0.5, 0.1, 3)
    """
    begin = clock() if start is None else start
    timer = StreamTimer(start=begin)
    exact_count = None
    end = begin
    for item in chunks:
        stamp = None
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], int | float):
            stamp, item = item
        now = clock() if stamp is None else float(stamp)
        end = now
        result = getattr(item, "result", None)
        if getattr(item, "done", False) and result is not None:
            exact_count = result.completion_tokens
            prompt_tokens = prompt_tokens or result.prompt_tokens
        if _piece_text(item):
            timer.token(now=now)
    timings = timer.finish(prompt_tokens=prompt_tokens, now=end)
    if exact_count is not None and exact_count != timer.count and exact_count > 1 and timer.first is not None:
        # several tokens arrived in one piece: spread the decode time over the real token count
        tpot = ((timer.last or timer.first) - timer.first) / (exact_count - 1)
        timings = Timings(timings.ttft_s, tpot, timings.total_s, prompt_tokens, exact_count)
    return timings
