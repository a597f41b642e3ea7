"""Checks for lab 04 (local serving): stream timings, the openai client, KV-cache memory, a load test."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ..metrics import measure_stream
from ..serving import KNOWN_SHAPES, kv_cache_bytes_per_token
from . import NotDone, Verdict, run_check

STAMPED_CASES = (
    (0.0, [(0.5, "The"), (0.6, " sea"), (0.8, " is"), (0.9, " calm")]),
    (2.0, [(2.1, ""), (2.4, "Hi"), (2.45, ""), (2.5, "!"), (2.5, "")]),  # empty pieces are not tokens
    (1.0, [(1.3, "Yes")]),
)


def check_stream_timings(stream_timings: Callable[[float, list[tuple[float, str]]], tuple[float, float, int]]) -> Verdict:
    """``stream_timings(start, stamped)`` -> (TTFT s, TPOT s, number of tokens) from (time, text) pairs."""

    def test(fn: Callable[..., Any]) -> bool | str:
        for start, stamped in STAMPED_CASES:
            got = fn(start, list(stamped))
            if got is None:
                raise NotDone
            if not (isinstance(got, tuple) and len(got) == 3):
                return "return a triple: (ttft_s, tpot_s, n_tokens)"
            want = measure_stream(stamped, start=start)
            ttft, tpot, n = got
            if n != want.completion_tokens:
                return f"for {stamped} you counted {n} tokens, expected {want.completion_tokens} (skip pieces with empty text)"
            if abs(ttft - want.ttft_s) > 1e-9:
                return f"for start={start} and {stamped} TTFT should be {want.ttft_s:.3f} s, got {ttft}"
            if abs(tpot - want.tpot_s) > 1e-9:
                return f"for {stamped} TPOT should be {want.tpot_s:.4f} s, got {tpot}"
        return True

    return run_check("stream timings", test, stream_timings,
                     hint="TTFT = first token's time - start; TPOT = (last - first) / (tokens - 1), 0.0 for one token")


def check_ask_server(ask_server: Callable[[str, str], str], base_url: str) -> Verdict:
    """``ask_server(base_url, question)``: the greedy answer (max_tokens=32) from the server, via the openai client."""

    def test(fn: Callable[[str, str], str]) -> bool | str:
        import openai

        question = "What is the capital of France?"
        with openai.OpenAI(base_url=base_url, api_key="sk-local", max_retries=0) as client:
            model = client.models.list().data[0].id

            def ask(q: str, max_tokens: int) -> str:
                return client.chat.completions.create(model=model, messages=[{"role": "user", "content": q}],
                                                      max_tokens=max_tokens, temperature=0.0).choices[0].message.content or ""

            # The server reuses the KV cache of its previous request, which can change greedy output. Put
            # it in the same state before both calls, so the same request must give the same answer.
            ask("Hello!", 1)
            answer = fn(base_url, question)
            if not isinstance(answer, str):
                return f"return the answer text (a str), got {type(answer).__name__}: use reply.choices[0].message.content"
            ask("Hello!", 1)
            reference = ask(question, 32)
        if answer.strip() != reference.strip():
            return f"got {answer[:50]!r}, the server's greedy answer is {reference[:50]!r}"
        return True

    return run_check("ask the server", test, ask_server,
                     hint="openai.OpenAI(base_url=..., api_key='sk-local'), then client.chat.completions.create(model=..., messages=[...], max_tokens=32, temperature=0.0)")


def check_kv_bytes(kv_bytes: Callable[[int, int, int, int], int]) -> Verdict:
    """``kv_bytes(n_layers, n_kv_heads, head_dim, bytes_per_value)``: KV-cache bytes per token of context."""

    def test(fn: Callable[..., Any]) -> bool | str:
        cases = [(KNOWN_SHAPES[name], b) for name in ("SmolLM2-135M", "Llama-3.1-8B", "Llama-2-7B") for b in (2, 1)]
        for shape, b in cases:
            got = fn(shape["n_layers"], shape["n_kv_heads"], shape["head_dim"], b)
            if got is None:
                raise NotDone
            want = kv_cache_bytes_per_token(**shape, bytes_per_value=b)
            if got == want / 2:
                return f"for {shape} with {b}-byte values you got {got}: half of {want}. Did you forget that both K and V are cached?"
            if got != want:
                return f"for {shape} with {b}-byte values expected {want} bytes, got {got}"
        return True

    return run_check("KV-cache bytes per token", test, kv_bytes, hint="2 (K and V) x layers x KV heads x head_dim x bytes per value")


def check_fire(fire: Callable[[str, int, int], list[float]], base_url: str) -> Verdict:
    """``fire(base_url, concurrency, n_requests)``: latencies (s) of n requests sent ``concurrency`` at a time."""

    def test(fn: Callable[..., Any]) -> bool | str:
        started = time.perf_counter()
        latencies = fn(base_url, 2, 4)
        wall = time.perf_counter() - started
        if latencies is None:
            raise NotDone
        if not isinstance(latencies, list | tuple) or len(latencies) != 4:
            return f"fire(url, 2, 4) should return a list of 4 latencies, got {latencies!r:.80}"
        if not all(isinstance(x, int | float) and 0 < x <= wall + 0.05 for x in latencies):
            return f"latencies should be seconds between 0 and the whole run ({wall:.2f} s), got {latencies}"
        # the server answers one request at a time: requests sent together wait for each other, so the
        # latencies add up to more than the wall time; sent one after another they add up to about the wall time
        if sum(latencies) < 1.3 * wall:
            return f"the latencies add up to {sum(latencies):.2f} s in {wall:.2f} s: the requests did not overlap"
        return True

    return run_check("tiny load test", test, fire,
                     hint="ThreadPoolExecutor(max_workers=concurrency).map(one_request, range(n_requests)); time each request inside one_request")
