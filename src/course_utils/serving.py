"""Serving many users: a small load test against a local OpenAI-compatible server, and KV-cache memory.

A server's two numbers pull against each other: **latency** (how long one user waits) and
**throughput** (tokens per second for everyone together). :func:`load_test` sends ``n_requests`` chat
requests with ``concurrency`` of them in flight at once and reports both::

    with LlamaServer(extra_args=("--interrupt_requests", "false")) as server:     # doctest: +SKIP
        print(load_test(server.base_url, concurrency=4, n_requests=8).summary())

Counts are bounded (at most 32 in flight, 256 requests) and, unless ``allow_remote=True``, only a server
on this machine (loopback) is accepted: a load test is not something to point at a shared service by
accident.

Note on llama-cpp-python's server: it runs one request at a time, and by default (``interrupt_requests``)
it *ends a running stream early* as soon as another request waits. Streamed load tests therefore need
``--interrupt_requests false``; non-streamed requests simply queue.

KV-cache memory per token of context is ``2 (K and V) × layers × KV heads × head dim × bytes``:

>>> kv_cache_bytes_per_token(n_layers=30, n_kv_heads=3, head_dim=64)     # SmolLM2-135M, fp16
23040
>>> kv_cache_bytes_per_token(**KNOWN_SHAPES["Llama-3.1-8B"]) // 1024     # KiB per token
128
"""

from __future__ import annotations

import contextlib
import io
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from .errors import BackendUnavailable, InvalidOption
from .timing import best_of_turns

MAX_CONCURRENCY = 32
MAX_REQUESTS = 256
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}

# Published configs (config.json on the Hugging Face hub) of models too big for this course's CPU budget
KNOWN_SHAPES: dict[str, dict[str, int]] = {
    "SmolLM2-135M": {"n_layers": 30, "n_kv_heads": 3, "head_dim": 64},
    "Llama-2-7B": {"n_layers": 32, "n_kv_heads": 32, "head_dim": 128},  # no grouped-query attention
    "Mistral-7B": {"n_layers": 32, "n_kv_heads": 8, "head_dim": 128},
    "Llama-3.1-8B": {"n_layers": 32, "n_kv_heads": 8, "head_dim": 128},
}


# ----------------------------------------------------------------------------- KV-cache memory
def kv_cache_bytes_per_token(n_layers: int, n_kv_heads: int, head_dim: int, bytes_per_value: float = 2) -> int:
    """Bytes of KV cache one token of context occupies: K and V, for every layer and KV head.

    ``bytes_per_value``: 2 for fp16 (llama.cpp's and vLLM's default), 1 for an 8-bit cache.
    """
    for name, value in (("n_layers", n_layers), ("n_kv_heads", n_kv_heads), ("head_dim", head_dim)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidOption(f"{name} must be a whole number >= 1, got {value!r}", fix="read it from the model's config (e.g. num_key_value_heads)")
    if not isinstance(bytes_per_value, int | float) or bytes_per_value <= 0:
        raise InvalidOption(f"bytes_per_value must be > 0, got {bytes_per_value!r}", fix="use 2 for fp16, 1 for 8-bit")
    return int(2 * n_layers * n_kv_heads * head_dim * bytes_per_value)


def gguf_shape(path: str | Path | None = None) -> dict[str, int]:
    """Layers, attention heads, KV heads and head size of a GGUF model, read from its metadata.

    A vocab-only load: llama.cpp reads the header and vocabulary, not the weights (about a second).
    """
    from llama_cpp import Llama

    from .assets import resolve_gguf
    from .backends.llamacpp import quiet_stderr

    with quiet_stderr(), contextlib.redirect_stderr(io.StringIO()):  # C-level and Python-level log lines
        meta = Llama(model_path=str(resolve_gguf(None if path is None else str(path))), vocab_only=True, verbose=False).metadata
    arch = meta.get("general.architecture", "llama")

    def get(key: str) -> int:
        return int(meta[f"{arch}.{key}"])

    n_heads, n_embd = get("attention.head_count"), get("embedding_length")
    return {"n_layers": get("block_count"), "n_heads": n_heads, "n_kv_heads": get("attention.head_count_kv"),
            "head_dim": n_embd // n_heads, "n_embd": n_embd}


# ----------------------------------------------------------------------------- load test
@dataclass(frozen=True)
class RequestResult:
    """One request of a load test (seconds from when it was sent)."""

    index: int
    latency_s: float  # sent -> last byte of the answer
    ttft_s: float  # sent -> first token (streamed), or = latency_s (not streamed)
    completion_tokens: int
    finish_reason: str  # "stop", "length", "" (cut short), or "error"
    error: str = ""


@dataclass(frozen=True)
class LoadTestResult:
    """All requests of one load test at one concurrency level."""

    concurrency: int
    max_tokens: int
    wall_s: float  # first request sent -> last answer complete
    requests: list[RequestResult] = field(default_factory=list)

    @property
    def ok(self) -> list[RequestResult]:
        return [r for r in self.requests if not r.error]

    @property
    def throughput_tokens_per_s(self) -> float:
        """Generated tokens per second, all users together."""
        return sum(r.completion_tokens for r in self.ok) / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def requests_per_s(self) -> float:
        return len(self.ok) / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def mean_in_flight(self) -> float:
        """Average number of requests in the system (sent, not yet answered): Little's law, sum of latencies / wall time."""
        return sum(r.latency_s for r in self.ok) / self.wall_s if self.wall_s > 0 else 0.0

    def latency_percentile(self, p: float) -> float:
        """The ``p``-th percentile (0-100) of request latency in seconds (nearest-rank)."""
        values = sorted(r.latency_s for r in self.ok)
        if not values:
            return float("nan")
        rank = max(1, min(len(values), int(-(-p * len(values) // 100))))  # ceil(p/100 * n)
        return values[rank - 1]

    def summary(self) -> dict[str, float]:
        ok = self.ok
        return {
            "concurrency": self.concurrency,
            "requests": len(self.requests),
            "errors": len(self.requests) - len(ok),
            "p50 latency s": self.latency_percentile(50),
            "p90 latency s": self.latency_percentile(90),
            "mean TTFT s": statistics.fmean(r.ttft_s for r in ok) if ok else float("nan"),
            "tokens/request": statistics.fmean(r.completion_tokens for r in ok) if ok else float("nan"),
            "throughput tokens/s": self.throughput_tokens_per_s,
            "requests/s": self.requests_per_s,
            "avg in flight": self.mean_in_flight,
            "wall s": self.wall_s,
        }


def _check_bounds(concurrency: int, n_requests: int, max_tokens: int) -> None:
    for name, value, top in (("concurrency", concurrency, MAX_CONCURRENCY), ("n_requests", n_requests, MAX_REQUESTS), ("max_tokens", max_tokens, 4096)):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= top:
            raise InvalidOption(f"{name} must be a whole number from 1 to {top}, got {value!r}", fix=f"pass a smaller {name} (this is a teaching load test, not a stress test)")


def check_loopback(base_url: str) -> str:
    """``base_url`` if its host is this machine; InvalidOption otherwise."""
    host = urlparse(base_url).hostname or ""
    if host not in LOOPBACK_HOSTS:
        raise InvalidOption(f"{base_url} is not a server on this machine", fix="load-test only your own local server (127.0.0.1), or pass allow_remote=True if you own that server")
    return base_url


def load_test(base_url: str, concurrency: int, n_requests: int, max_tokens: int = 16, stream: bool = True,
              prompt: str = "Write one sentence about the sea.", model: str | None = None, timeout: float = 120.0,
              allow_remote: bool = False, api_key: str = "sk-local") -> LoadTestResult:
    """Send ``n_requests`` greedy chat requests, ``concurrency`` at a time, and time each one.

    Each request asks ``prompt`` prefixed with its number (so no two prompts are identical and a
    prompt cache cannot answer for free). A request that fails is recorded with its error; the test
    itself does not raise. With ``stream=True`` TTFT is measured per request (queueing shows up there).
    ``api_key``: for a server that asks for one (``course serve``).
    """
    import openai

    _check_bounds(concurrency, n_requests, max_tokens)
    if not allow_remote:
        check_loopback(base_url)
    client = openai.OpenAI(base_url=base_url, api_key=api_key, timeout=timeout, max_retries=0)
    if model is None:
        try:
            model = client.models.list().data[0].id
        except (openai.APIConnectionError, openai.APIStatusError, IndexError):
            client.close()
            raise BackendUnavailable(f"no OpenAI-compatible server with a model answers at {base_url}", fix="start one first, e.g. `with LlamaServer() as server:`") from None

    def one(index: int) -> RequestResult:
        messages = [{"role": "user", "content": f"({index + 1}) {prompt}"}]
        sent = time.perf_counter()
        try:
            if not stream:
                reply = client.chat.completions.create(model=model, messages=messages, max_tokens=max_tokens, temperature=0.0)
                latency = time.perf_counter() - sent
                tokens = reply.usage.completion_tokens if reply.usage else 0
                return RequestResult(index, latency, latency, tokens, reply.choices[0].finish_reason or "")
            first, tokens, finish = None, 0, ""
            with client.chat.completions.create(model=model, messages=messages, max_tokens=max_tokens, temperature=0.0, stream=True) as events:
                for event in events:
                    for choice in event.choices:
                        if choice.delta.content:
                            first = first or time.perf_counter()
                            tokens += 1  # llama.cpp and vLLM stream one token per delta
                        finish = choice.finish_reason or finish
            latency = time.perf_counter() - sent
            return RequestResult(index, latency, (first or time.perf_counter()) - sent, tokens, finish)
        except openai.OpenAIError as err:
            return RequestResult(index, time.perf_counter() - sent, float("nan"), 0, "error", f"{type(err).__name__}: {err}")

    started = time.perf_counter()
    try:
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            results = list(pool.map(one, range(n_requests)))
    finally:
        client.close()
    return LoadTestResult(concurrency, max_tokens, time.perf_counter() - started, results)


def sweep(base_url: str, levels: tuple[int, ...] = (1, 2, 4), n_requests: int = 8, repeats: int = 1, **kwargs: Any) -> Any:
    """:func:`load_test` at each concurrency level; a pandas DataFrame with one row per level.

    With ``repeats`` > 1 the levels run in turns (1, 2, 4, 1, 2, 4, ...) and each level keeps its least
    disturbed run (:func:`course_utils.timing.best_of_turns`), so a busy machine hurts all levels alike instead of one.
    """
    import pandas as pd

    if isinstance(repeats, bool) or not isinstance(repeats, int) or not 1 <= repeats <= 5:
        raise InvalidOption(f"repeats must be a whole number from 1 to 5, got {repeats!r}", fix="pass repeats=2 on a busy machine, 1 on a quiet one")
    runs = {c: (lambda c=c: load_test(base_url, c, n_requests, **kwargs)) for c in dict.fromkeys(levels)}
    best = best_of_turns(runs, repeats, cost=lambda run: run.wall_s)
    return pd.DataFrame([run.summary() for run in best.values()]).set_index("concurrency")


def plot_sweep(df: Any, title: str = "One local server, more users at once") -> Any:
    """Latency (p50, p90) and throughput against concurrency, from :func:`sweep`."""
    import matplotlib.pyplot as plt

    from .plots import labelled

    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6))
    left.plot(df.index, df["p50 latency s"], "o-", label="p50")
    left.plot(df.index, df["p90 latency s"], "s--", label="p90")
    left.legend()
    labelled(left, "Latency per request", "requests in flight (concurrency)", "latency (s)")
    right.plot(df.index, df["throughput tokens/s"], "o-", color="tab:green")
    right.set_ylim(bottom=0)
    labelled(right, "Throughput, all users together", "requests in flight (concurrency)", "generated tokens/s")
    for ax in (left, right):
        ax.set_xticks(list(df.index))
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
