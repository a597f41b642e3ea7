"""Lab 04's checks catch real mistakes: each is fed the wrong implementations a learner writes (each must fail
with a message naming the mistake), an unusual but correct implementation (must pass), a function that changes
its input, and a TODO stub (not done). The server checks talk to a real llama.cpp server (few, short requests)."""

from __future__ import annotations

import asyncio
import doctest
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from verdicts import failed_with, todo

import course_utils.checks.serving as serving_checks
from course_utils.checks.serving import (
    check_ask_server,
    check_fire,
    check_fit_history,
    check_kv_bytes,
    check_stream_timings,
    reference_fit_history,
    server_prompt_tokens,
)


def test_docstring_examples():
    assert doctest.testmod(serving_checks).failed == 0


# ----------------------------------------------------------------------------- stream timings
def timings_with(count_empty=False, first_any=False, gaps=lambda n: n - 1, from_start=False, one=0.0):
    def stream_timings(start, stamped):
        times = [t for t, text in stamped if text or count_empty]
        first = stamped[0][0] if first_any else times[0]
        n = len(times)
        if n == 1 and one is not None:
            return first - start, one, n
        tpot = ((times[-1] - (start if from_start else times[0])) / gaps(n))
        return first - start, tpot, n
    return stream_timings


@pytest.mark.parametrize("wrong, words", [
    (timings_with(count_empty=True), ["empty text are not tokens"]),
    (timings_with(first_any=True), ["first piece", "empty"]),
    (timings_with(gaps=lambda n: n), ["gaps", "divide"]),
    (timings_with(from_start=True, gaps=lambda n: n), ["wait for the first token"]),
    (timings_with(one=None), ["divided by zero"]),
    (lambda start, stamped: (lambda t: (t[0], (t[-1] - t[0]) / max(len(t) - 1, 1), len(t)))([x for x, s in stamped if s]), ["time stamp", "subtract"]),
    (lambda start, stamped: stamped.sort() or timings_with()(start, stamped) if stamped.pop() else None, ["in place"]),
])
def test_stream_timings_mistakes_are_named(wrong, words):
    verdict = check_stream_timings(wrong)
    failed_with(verdict, *words)
    assert "times[0] - start" not in verdict.message


def test_stream_timings_unusual_and_todo():
    def via_numpy(start, stamped, clock_offset=0.0):  # numpy diff, an extra argument with a default
        import numpy as np
        t = np.array([s for s, text in stamped if text]) + clock_offset
        return float(t[0] - start), float(np.diff(t).mean()) if t.size > 1 else 0.0, int(t.size)
    assert check_stream_timings(via_numpy).passed, check_stream_timings(via_numpy)
    assert check_stream_timings(timings_with()).passed
    assert check_stream_timings(todo).status == "not done"


# ----------------------------------------------------------------------------- KV bytes
@pytest.mark.parametrize("wrong, words", [
    (lambda layers, heads, dim, b=2: layers * heads * dim * b, ["what does the cache hold"]),
    (lambda layers, heads, dim, b=2: 2 * layers * heads * dim * b * 8, ["bits", "bytes"]),
    (lambda layers, heads, dim, b=2: 2 * heads * dim * b, ["every layer"]),
    (lambda layers, heads, dim, b=2: 2 * layers * heads * dim, ["bytes_per_value is not used"]),
    (lambda layers, heads, dim, b=2: 2 * layers * heads * dim * 2, ["bytes_per_value is not used"]),  # only right at the default
])
def test_kv_bytes_mistakes_are_named(wrong, words):
    verdict = check_kv_bytes(wrong)
    failed_with(verdict, *words)
    assert "2 (K and V)" not in verdict.message


def test_kv_bytes_unusual_and_todo():
    import math
    assert check_kv_bytes(lambda *dims: math.prod((2, *dims))).passed  # one product over all the factors
    assert check_kv_bytes(todo).status == "not done"


# ----------------------------------------------------------------------------- the real server
@pytest.fixture(scope="module")
def url(llama_server):
    return llama_server.base_url


def ask_with(**options):
    def ask_server(base_url, question):
        import openai
        client = openai.OpenAI(base_url=base_url, api_key="sk-local")
        reply = client.chat.completions.create(model="smollm2", messages=[{"role": "user", "content": question}], **options)
        return reply.choices[0].message.content
    return ask_server


def test_ask_server_mistakes_are_named(url):
    failed_with(check_ask_server(ask_with(max_tokens=4, temperature=0.0), url), "max_tokens")
    failed_with(check_ask_server(ask_with(max_tokens=32, temperature=1.5, seed=3), url), "greedy")

    def whole_reply(base_url, question):
        import openai
        return openai.OpenAI(base_url=base_url, api_key="sk-local").chat.completions.create(
            model="smollm2", messages=[{"role": "user", "content": question}], max_tokens=32, temperature=0.0)
    failed_with(check_ask_server(whole_reply, url), "a str")


def test_ask_server_unusual_and_todo(url):
    def with_httpx(base_url, question, timeout=60.0):  # the HTTP API by hand instead of the openai client
        import httpx
        body = {"model": "smollm2", "messages": [{"role": "user", "content": question}], "max_tokens": 32, "temperature": 0.0}
        return httpx.post(f"{base_url}/chat/completions", json=body, headers={"Authorization": "Bearer sk-local"},
                          timeout=timeout).json()["choices"][0]["message"]["content"]
    assert check_ask_server(with_httpx, url).passed, check_ask_server(with_httpx, url)
    assert check_ask_server(todo, url).status == "not done"


def one_request(base_url, i):
    import openai
    client = openai.OpenAI(base_url=base_url, api_key="sk-local")
    sent = time.perf_counter()
    client.chat.completions.create(model="smollm2", messages=[{"role": "user", "content": f"Say hello to user {i}."}],
                                   max_tokens=8, temperature=0.0)
    return time.perf_counter() - sent


def test_fire_mistakes_are_named(url):
    sequential = lambda base_url, c, n: [one_request(base_url, i) for i in range(n)]  # noqa: E731
    failed_with(check_fire(sequential, url), "did not overlap")

    def all_at_once(base_url, c, n):
        with ThreadPoolExecutor(max_workers=n + 1) as pool:
            return list(pool.map(lambda i: one_request(base_url, i), range(n)))
    failed_with(check_fire(all_at_once, url), "concurrency=1", "overlapped")

    def from_run_start(base_url, c, n):
        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=c) as pool:
            return list(pool.map(lambda i: (one_request(base_url, i), time.perf_counter() - start)[1], range(n)))
    failed_with(check_fire(from_run_start, url), "start of the whole run")

    def one_per_worker(base_url, c, n):
        with ThreadPoolExecutor(max_workers=c) as pool:
            return list(pool.map(lambda i: one_request(base_url, i), range(c)))
    failed_with(check_fire(one_per_worker, url), "one per request")


def test_fire_unusual_and_todo(url):
    def with_asyncio(base_url, concurrency, n_requests):  # asyncio and a semaphore instead of threads
        import openai

        async def main():
            client, gate = openai.AsyncOpenAI(base_url=base_url, api_key="sk-local"), asyncio.Semaphore(concurrency)

            async def one(i):
                async with gate:
                    sent = time.perf_counter()
                    await client.chat.completions.create(model="smollm2", messages=[{"role": "user", "content": f"Hi {i}"}],
                                                         max_tokens=8, temperature=0.0)
                    return time.perf_counter() - sent
            return await asyncio.gather(*(one(i) for i in range(n_requests)))
        return list(asyncio.run(main()))
    assert check_fire(with_asyncio, url).passed, check_fire(with_asyncio, url)
    assert check_fire(todo, url).status == "not done"


# ----------------------------------------------------------------------------- fit the context (measured)
def test_fit_history_reference_passes_and_reports(url):
    verdict = check_fit_history(reference_fit_history, url)
    assert verdict.passed, verdict
    assert "reference" in verdict.message and "target 90%" in verdict.message


def test_fit_history_unusual_passes(url):
    """Grow from the newest message one at a time (more requests than a binary search, same answer)."""
    def grow(base_url, messages, budget):
        keep = 1
        while keep < len(messages) - 1 and server_prompt_tokens(base_url, messages[:1] + messages[-(keep + 1):]) <= budget:
            keep += 1
        return messages[:1] + messages[-keep:]
    assert check_fit_history(grow, url).passed, check_fit_history(grow, url)


def by_estimate(per_message):
    def fit(base_url, messages, budget):
        kept, total = [], per_message(messages[0])
        for m in reversed(messages[1:]):
            if total + per_message(m) > budget:
                break
            kept.insert(0, m)
            total += per_message(m)
        return messages[:1] + kept
    return fit


@pytest.mark.parametrize("lazy, words", [
    (by_estimate(lambda m: len(m["content"].split())), ["over the budget", "server's count"]),  # words are not tokens
    (by_estimate(lambda m: len(m["content"]) // 2), ["target is 90%"]),  # a safe over-estimate wastes the context
    (lambda base_url, messages, budget: messages[:1] + messages[-2:], ["target is 90%"]),
    (lambda base_url, messages, budget: messages[:12] + messages[-1:], ["oldest"]),
    (lambda base_url, messages, budget: messages[-9:], ["system message"]),
    (lambda base_url, messages, budget: [messages.pop(0)] + messages[-3:], ["in place"]),
])
def test_fit_history_lazy_or_wrong_fail(url, lazy, words):
    verdict = check_fit_history(lazy, url)
    failed_with(verdict, *words)
    assert "binary search" not in verdict.message


def test_fit_history_todo_is_not_done(url):
    assert check_fit_history(todo, url).status == "not done"
