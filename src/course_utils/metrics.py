"""Comparing backends side by side: the same chat through each, timed the same way.

Tools layer: builds on :mod:`.timing` (TTFT/TPOT of any stream) and :mod:`.backends`. ``Timings``,
``StreamTimer`` and ``measure_stream`` live in :mod:`.timing` and are re-exported here for the
lessons that import them from ``course_utils.metrics``. Taught in lesson 04.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from .timing import StreamTimer, Timings, measure_stream

__all__ = ["StreamTimer", "Timings", "compare_backends", "measure_stream", "plot_comparison"]


def compare_backends(names: Sequence[str] | Mapping[str, Mapping[str, Any]], messages: Sequence[Mapping[str, str]],
                     max_tokens: int = 32, repeats: int = 2, warmup: bool = True) -> Any:
    """Load each backend, stream the same chat ``repeats`` times, and tabulate the medians.

    ``names`` is a list of backend names, or a dict ``{name: get_backend keyword arguments}`` (e.g.
    ``{"openai": {"base_url": server.base_url}}``). Greedy decoding, so every backend does comparable
    work. A backend that cannot start gets a row with ``status="unavailable"`` and the reason, never an
    exception. Returns a pandas DataFrame indexed by backend with columns status, load s, TTFT ms,
    TPOT ms, tokens/s, tokens, reason.
    """
    import statistics

    import pandas as pd

    from .backends import get_backend
    from .errors import CourseError, InvalidOption

    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise InvalidOption(f"repeats must be a whole number >= 1, got {repeats!r}", fix="pass repeats=2")
    wanted = dict(names) if isinstance(names, Mapping) else {n: {} for n in names}
    if not wanted:
        raise InvalidOption("no backend names given", fix='pass e.g. ["llamacpp", "gpt4all"]')
    rows = []
    for name, kwargs in wanted.items():
        row: dict[str, Any] = {"backend": name, "status": "ok", "load s": float("nan"), "TTFT ms": float("nan"),
                               "TPOT ms": float("nan"), "tokens/s": float("nan"), "tokens": 0, "reason": ""}
        started = time.perf_counter()
        try:
            backend = get_backend(name, **dict(kwargs))
        except CourseError as err:
            row.update(status="unavailable", reason=f"{type(err).__name__}: {err}")
            rows.append(row)
            continue
        row["load s"] = time.perf_counter() - started
        try:
            if warmup:  # the first call pays one-off costs (buffers, caches, a connection)
                backend.chat(messages, max_tokens=2)
            runs = []
            for _ in range(repeats):
                begin = time.perf_counter()
                runs.append(measure_stream(backend.chat_stream(messages, max_tokens=max_tokens), start=begin))
        except CourseError as err:
            row.update(status="failed", reason=f"{type(err).__name__}: {err}")
        else:
            tpot = statistics.median(t.tpot_s for t in runs)
            row.update({"TTFT ms": statistics.median(t.ttft_s for t in runs) * 1000, "TPOT ms": tpot * 1000,
                        "tokens/s": 1.0 / tpot if tpot > 0 else float("nan"),
                        "tokens": int(statistics.median(t.completion_tokens for t in runs))})
        finally:
            backend.close()
        rows.append(row)
    return pd.DataFrame(rows).set_index("backend")


def plot_comparison(df: Any, title: str = "Backends on the same chat") -> Any:
    """Two bar charts from :func:`compare_backends`: TTFT (ms) and decode speed (tokens/s)."""
    import matplotlib.pyplot as plt

    from .plots import labelled

    ok = df[df["status"] == "ok"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6))
    left.bar(ok.index, ok["TTFT ms"], color="tab:orange")
    labelled(left, "Time to first token (lower is better)", "backend", "TTFT (ms)")
    right.bar(ok.index, ok["tokens/s"], color="tab:blue")
    labelled(right, "Decode speed (higher is better)", "backend", "tokens/s")
    for ax in (left, right):
        ax.tick_params(axis="x", rotation=20)
    missing = [n for n in df.index if n not in ok.index]
    fig.suptitle(title + (f"  (not available: {', '.join(missing)})" if missing else ""), fontsize=10)
    fig.tight_layout()
    return fig
