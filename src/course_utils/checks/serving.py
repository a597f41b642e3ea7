"""Checks for lab 04 (local serving): stream timings, the openai client, KV-cache memory, a load test.

Each check runs the learner's function on inputs it makes itself (streams with empty pieces, one token
and more than ten; shapes of three real models and 1-, 2- and 4-byte values; a load test at two
concurrency levels against the real server) and names the usual mistake when the result is wrong
(empty pieces counted, TPOT divided by the number of tokens, K or V forgotten, bits for bytes,
requests that never overlap, latencies measured from the start of the run). The solution-level hint is
only shown by ``hint(name)``. A function that changes its input fails.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ..metrics import measure_stream
from ..serving import KNOWN_SHAPES, kv_cache_bytes_per_token
from . import Mistake, NotDone, Verdict, call_unchanged, run_check

STAMPED_CASES = (
    (0.0, [(0.5, "The"), (0.6, " sea"), (0.8, " is"), (0.9, " calm")]),
    (2.0, [(2.1, ""), (2.4, "Hi"), (2.45, ""), (2.5, "!"), (2.5, "")]),  # empty pieces are not tokens
    (1.0, [(1.3, "Yes")]),
    (10.0, [(10.25, "")] + [(10.5 + 0.1 * i + 0.01 * (i % 3), f" w{i}") for i in range(12)] + [(12.0, "")]),  # 12 tokens
)


def check_stream_timings(stream_timings: Callable[[float, list[tuple[float, str]]], tuple[float, float, int]]) -> Verdict:
    """``stream_timings(start, stamped)`` -> (TTFT s, TPOT s, number of tokens) from (time, text) pairs."""

    def test(fn: Callable[..., Any]) -> bool | str:
        for start, stamped in STAMPED_CASES:
            try:
                got = call_unchanged(fn, start, list(stamped))
            except ZeroDivisionError:
                return "with a single token your function divided by zero: TPOT has no gap to average then, return 0.0"
            if got is None:
                raise NotDone
            if not (isinstance(got, tuple) and len(got) == 3):
                return "return a triple: (ttft_s, tpot_s, n_tokens)"
            want = measure_stream(stamped, start=start)
            ttft, tpot, n = got
            times = [t for t, text in stamped if text]
            where = f"for a stream of {len(stamped)} pieces ({want.completion_tokens} with text) starting at {start}"
            if n != want.completion_tokens:
                if n == len(stamped):
                    return f"{where} you counted {n} tokens: pieces with an empty text are not tokens"
                return f"{where} you counted {n} tokens, expected {want.completion_tokens}"
            if abs(ttft - want.ttft_s) > 1e-9:
                if abs(ttft - (stamped[0][0] - start)) < 1e-9:
                    return f"{where} TTFT is {ttft:.3f} s: that is the first piece, but it is empty; time the first piece with text"
                if abs(ttft - times[0]) < 1e-9:
                    return f"{where} TTFT is {ttft:.3f} s: a time stamp, not a duration; subtract the start"
                return f"{where} TTFT should be {want.ttft_s:.3f} s, got {ttft}"
            if abs(tpot - want.tpot_s) > 1e-9:
                if n > 1 and abs(tpot - (times[-1] - times[0]) / n) < 1e-9:
                    return f"{where} TPOT is {tpot:.4f} s: {n} tokens have {n - 1} gaps between them; divide by that"
                if n > 1 and abs(tpot - (times[-1] - start) / n) < 1e-9:
                    return f"{where} TPOT is {tpot:.4f} s: it includes the wait for the first token (that is TTFT); average only the gaps after it"
                return f"{where} TPOT should be {want.tpot_s:.4f} s, got {tpot}"
        return True

    return run_check("stream timings", test, stream_timings,
                     hint="only pieces with text are tokens; TTFT waits for the first of them, TPOT averages the gaps between them",
                     more="times = [t for t, text in stamped if text]; TTFT = times[0] - start; TPOT = (times[-1] - times[0]) / (len(times) - 1), 0.0 for one token")


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
        got, want = answer.strip(), reference.strip()
        if got != want:
            if got and (want.startswith(got) or got.startswith(want)):
                return f"got {answer[:50]!r} ({len(got)} characters), the server's answer with max_tokens=32 is {len(want)} characters: set max_tokens"
            return f"got {answer[:50]!r}, the server's greedy answer is {reference[:50]!r}: greedy means no sampling at all (look at the temperature)"
        return True

    return run_check("ask the server", test, ask_server,
                     hint="one chat completion with the openai client pointed at the local base_url; greedy, 32 tokens at most; return only the text",
                     more="openai.OpenAI(base_url=..., api_key='sk-local'), then client.chat.completions.create(model=..., messages=[...], max_tokens=32, temperature=0.0).choices[0].message.content")


def check_kv_bytes(kv_bytes: Callable[[int, int, int, int], int]) -> Verdict:
    """``kv_bytes(n_layers, n_kv_heads, head_dim, bytes_per_value)``: KV-cache bytes per token of context."""

    def test(fn: Callable[..., Any]) -> bool | str:
        cases = [(KNOWN_SHAPES[name], b) for name in ("SmolLM2-135M", "Llama-3.1-8B", "Llama-2-7B") for b in (1, 4, 2)]
        for shape, b in cases:
            got = call_unchanged(fn, shape["n_layers"], shape["n_kv_heads"], shape["head_dim"], b)
            if got is None:
                raise NotDone
            want = kv_cache_bytes_per_token(**shape, bytes_per_value=b)
            where = f"for {shape} with {b}-byte values"
            if got == want:
                continue
            if b != 2 and got == want * 2 / b:
                return f"{where} you got {got}: the value for 2-byte values; bytes_per_value is not used"
            if b != 1 and got == want / b:
                return f"{where} you got {got}: the number of values, not bytes (bytes_per_value is not used)"
            if got == want / 2:
                return f"{where} you got {got}: half of {want}. What does the cache hold for every token?"
            if got == want * 8:
                return f"{where} you got {got}: that counts bits; the answer is in bytes"
            if got == want / shape["n_layers"]:
                return f"{where} you got {got}: one layer's worth; every layer keeps its own cache"
            return f"{where} expected {want} bytes, got {got}"
        return True

    return run_check("KV-cache bytes per token", test, kv_bytes,
                     hint="count what is stored per token: two tensors, in every layer, for every KV head, head_dim values each",
                     more="2 (K and V) x layers x KV heads x head_dim x bytes per value")


def check_fire(fire: Callable[[str, int, int], list[float]], base_url: str) -> Verdict:
    """``fire(base_url, concurrency, n_requests)``: latencies (s) of n requests sent ``concurrency`` at a time."""

    def run(fn: Callable[..., Any], concurrency: int, n: int) -> tuple[list[float], float]:
        started = time.perf_counter()
        latencies = fn(base_url, concurrency, n)
        wall = time.perf_counter() - started
        if latencies is None:
            raise NotDone
        if not isinstance(latencies, list | tuple) or len(latencies) != n:
            raise Mistake(f"fire(url, {concurrency}, {n}) should return a list of {n} latencies, one per request, got {latencies!r:.80}")
        if not all(isinstance(x, int | float) and 0 < x <= wall + 0.05 for x in latencies):
            raise Mistake(f"latencies should be seconds between 0 and the whole run ({wall:.2f} s), got {[round(x, 3) for x in latencies]}")
        return list(latencies), wall

    def test(fn: Callable[..., Any]) -> bool | str:
        # one at a time: each latency is its own request's, so they add up to at most the wall time
        latencies, wall = run(fn, 1, 2)
        if sum(latencies) > 1.05 * wall + 0.02:
            if latencies[1] > latencies[0] and abs(latencies[1] - wall) < 0.1 * wall:
                return (f"with concurrency=1 the latencies {[round(x, 2) for x in latencies]} add up to more than the {wall:.2f} s run: "
                        "they are measured from the start of the whole run; time each request from its own start")
            return (f"with concurrency=1 the latencies add up to {sum(latencies):.2f} s in {wall:.2f} s: the requests overlapped; "
                    "use at most `concurrency` at once")
        # the server answers one request at a time: requests sent together wait for each other, so the
        # latencies add up to more than the wall time; sent one after another they add up to about the wall time
        latencies, wall = run(fn, 2, 4)
        if sum(latencies) < 1.3 * wall:
            return f"with concurrency=2 the latencies add up to {sum(latencies):.2f} s in {wall:.2f} s: the requests did not overlap"
        return True

    return run_check("tiny load test", test, fire,
                     hint="a pool of `concurrency` workers, each request timed on its own",
                     more="ThreadPoolExecutor(max_workers=concurrency).map(one_request, range(n_requests)); time each request inside one_request")


# ----------------------------------------------------------------------------- 5. fit a chat into the context (measured)
HISTORY_BUDGET = 320  # prompt tokens, as the server counts them (chat template included)
HISTORY_FILL_TARGET = 0.9  # share of the reference's kept prompt tokens the learner's chat must reach
_WORDS = ("river", "market", "winter", "engine", "garden", "ticket", "window", "letter", "island", "bridge", "candle",
          "forest", "pocket", "silver", "doctor", "yellow", "thunder", "kitchen", "bicycle", "library", "morning", "planet")
_REFERENCE_FIT: dict[tuple[str, int], tuple[int, int]] = {}  # (base_url, chat) -> (messages kept, prompt tokens)


def held_out_chats(seed: int = 4, n_chats: int = 2, n_turns: int = 14) -> list[list[dict[str, str]]]:
    """Long chats the check makes itself: a system message, ``n_turns`` exchanges of random words, a question."""
    import random

    rng = random.Random(seed)

    def sentence() -> str:
        return " ".join(rng.choice(_WORDS) for _ in range(rng.randint(6, 16))).capitalize() + "."

    chats = []
    for i in range(n_chats):
        chat = [{"role": "system", "content": f"You are assistant number {i + 1}. Answer briefly."}]
        for _ in range(n_turns):
            chat += [{"role": "user", "content": sentence()}, {"role": "assistant", "content": sentence()}]
        chats.append(chat + [{"role": "user", "content": "Which words did I use most?"}])
    return chats


def server_prompt_tokens(base_url: str, messages: list[dict[str, str]]) -> int:
    """How many prompt tokens the server counts for ``messages`` (one request, one generated token)."""
    import openai

    with openai.OpenAI(base_url=base_url, api_key="sk-local", max_retries=0) as client:
        reply = client.chat.completions.create(model="smollm2", messages=messages, max_tokens=1, temperature=0.0)
    return reply.usage.prompt_tokens


def reference_fit_history(base_url: str, messages: list[dict[str, str]], budget: int) -> list[dict[str, str]]:
    """The reference solution: the system message and the longest run of newest messages that fits,
    found by binary search with the server's own counts (about log2(len) requests)."""
    system, rest = messages[:1], messages[1:]
    lo, hi = 1, len(rest)  # the newest message (the question) always stays
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if server_prompt_tokens(base_url, system + rest[-mid:]) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return system + rest[-lo:]


def _is_suffix_with_system(got: list[dict[str, str]], chat: list[dict[str, str]]) -> str:
    if not isinstance(got, list) or not all(isinstance(m, dict) for m in got):
        return "return a list of message dicts (a shortened copy of the chat)"
    if not got or got[0] != chat[0]:
        return "the system message must stay first: it tells the model how to behave"
    if len(got) < 2 or got[-1] != chat[-1]:
        return "the last message (the user's question) must stay: it is what the model answers"
    kept = [dict(m) for m in got[1:]]
    if kept != chat[len(chat) - len(kept):]:
        return "keep whole messages, unchanged, and drop the *oldest* ones: what you kept is not the newest run of the chat"
    return ""


def check_fit_history(fit_history: Callable[[str, list[dict[str, str]], int], Any], base_url: str) -> Verdict:
    """``fit_history(base_url, messages, budget)``: the system message plus as many of the newest messages as
    fit in ``budget`` prompt tokens *as the server counts them*. Measured on chats the check makes (never
    shown in the lab) against the real server's ``usage.prompt_tokens``; passes within the budget and at
    ``HISTORY_FILL_TARGET`` of the tokens the reference keeps."""
    measured: list[str] = []

    def test(fn: Callable[..., Any]) -> bool | str:
        rows = []
        for i, chat in enumerate(held_out_chats()):
            got = call_unchanged(fn, base_url, [dict(m) for m in chat], HISTORY_BUDGET)
            if got is None:
                raise NotDone
            if problem := _is_suffix_with_system(got, chat):
                return problem
            used = server_prompt_tokens(base_url, got)
            key = (base_url, i)
            if key not in _REFERENCE_FIT:
                ref = reference_fit_history(base_url, chat, HISTORY_BUDGET)
                _REFERENCE_FIT[key] = (len(ref), server_prompt_tokens(base_url, ref))
            ref_kept, ref_used = _REFERENCE_FIT[key]
            rows.append(f"chat {i + 1}: {len(got)} of {len(chat)} messages, {used} tokens (reference {ref_kept}, {ref_used})")
            if used > HISTORY_BUDGET:
                return (f"chat {i + 1} ({len(chat)} messages): the server counts {used} prompt tokens for what you kept, over the budget of "
                        f"{HISTORY_BUDGET}; estimates from characters or words are not the server's count (the template adds tokens too)")
            if used < HISTORY_FILL_TARGET * ref_used:
                return (f"chat {i + 1}: you kept {len(got)} messages, {used} prompt tokens; {ref_kept} messages ({ref_used} tokens) fit in "
                        f"{HISTORY_BUDGET}: the target is {HISTORY_FILL_TARGET:.0%} of that")
        measured.append(f"budget {HISTORY_BUDGET} prompt tokens, target {HISTORY_FILL_TARGET:.0%} of the reference's; " + "; ".join(rows))
        return True

    verdict = run_check("fit the context", test, fit_history,
                        hint="only the server knows how many tokens a chat takes (its template adds tokens around each message): ask it",
                        more="binary search on how many of the newest messages to keep; server_prompt_tokens(base_url, [system] + rest[-k:]) <= budget")
    return Verdict(verdict.name, verdict.status, measured[0]) if verdict.passed else verdict
