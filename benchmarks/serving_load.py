"""Load test of the OpenAI-compatible server path: many clients at once against a real llama.cpp server.

16 clients (threads, each with its own ``openai`` client) send greedy chat requests for 60 s to
``course_utils.server.LlamaServer`` (a real ``llama_cpp.server`` process on 127.0.0.1), then wait for the
replies still in flight. Every request asks the model to repeat a number no other request uses, so a
reply that lacks its own number, or carries another request's number, is a lost or mixed-up reply.
At the end the server is stopped and the script checks that the process is gone and its port is free.

It prints: requests done, errors, mismatches (and how many were mix-ups), p50/p95 latency, tokens/s,
and the machine (cores, load average before and after, CPU model): on a busy machine every figure
moves, so read them beside the load. The statistics come from ``course_utils.serving`` (the same
``RequestResult``/``LoadTestResult`` as lesson 04's load test); loopback only.

    .venv/bin/python benchmarks/serving_load.py [--clients 16] [--seconds 60] [--max-tokens 24]
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import random
import re
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from course_utils.serving import MAX_CONCURRENCY, LoadTestResult, RequestResult, check_loopback  # noqa: E402

MAX_TOTAL_REQUESTS = 20_000  # a bound, like serving.MAX_REQUESTS: a teaching load test, not a stress test
CODES = random.Random(1234).sample(range(10_000, 100_000), MAX_TOTAL_REQUESTS)  # a unique 5-digit number per request
PROMPT = "Repeat this number exactly: {code}"


def answer_format(code: str) -> dict:
    """A JSON schema that allows only ``{"code": "<this request's number>"}``.

    SmolLM2-135M copies a 5-digit number unreliably (in a first run 8 of 18 replies changed a digit:
    25315 -> 25316, 67767 -> 67,890), which would hide a server mix-up among the model's own slips. With
    the reply constrained by the request's own schema (llama.cpp turns it into a grammar), a reply that
    carries another request's number can only come from the server mixing requests up.
    """
    return {"type": "json_object",
            "schema": {"type": "object", "properties": {"code": {"type": "string", "const": code}}, "required": ["code"]}}
NUMBER = re.compile(r"\d{5}")


@dataclass(frozen=True)
class Reply:
    """One request of the run: who sent it, the number it asked for, and what came back."""

    client: int
    code: str
    text: str
    result: RequestResult


@dataclass(frozen=True)
class Check:
    """How the replies match their requests."""

    done: int  # requests answered without error
    errors: int  # requests that failed (connection, HTTP error, timeout)
    lost: int  # answered, but with an empty reply
    missing_own: int  # the reply does not contain its own number
    mixed_up: int  # the reply contains a number that another request asked for
    mismatches: int  # replies that do not belong to their request: any of the three above


def check_replies(replies: list[Reply]) -> Check:
    """Match every reply with its own request; a number of another request in a reply is a mix-up."""
    codes = {r.code for r in replies}
    ok = [r for r in replies if not r.result.error]
    lost = {r.result.index for r in ok if not r.text.strip()}
    missing = {r.result.index for r in ok if r.text.strip() and r.code not in r.text}
    mixed = {r.result.index for r in ok if any(n != r.code and n in codes for n in NUMBER.findall(r.text))}
    return Check(done=len(ok), errors=len(replies) - len(ok), lost=len(lost), missing_own=len(missing),
                 mixed_up=len(mixed), mismatches=len(lost | missing | mixed))


def run_clients(base_url: str, clients: int, seconds: float | None = None, requests_per_client: int | None = None,
                max_tokens: int = 24, timeout_s: float = 900.0, model: str = "smollm2") -> tuple[list[Reply], float]:
    """``clients`` threads send requests until ``seconds`` have passed (or each sent ``requests_per_client``).

    Requests in flight when the time is up are waited for. Returns every reply and the wall time.
    """
    import openai

    check_loopback(base_url)
    if not 1 <= clients <= MAX_CONCURRENCY:
        raise SystemExit(f"--clients must be from 1 to {MAX_CONCURRENCY}")
    if (seconds is None) == (requests_per_client is None):
        raise SystemExit("give either seconds or requests_per_client")
    numbering, lock, replies = itertools.count(), threading.Lock(), []
    started = time.perf_counter()
    deadline = started + seconds if seconds is not None else float("inf")

    def client_loop(client_id: int) -> None:
        with openai.OpenAI(base_url=base_url, api_key="sk-local", timeout=timeout_s, max_retries=0) as client:
            for sent_by_me in itertools.count():
                if time.perf_counter() >= deadline or (requests_per_client is not None and sent_by_me >= requests_per_client):
                    return
                with lock:
                    index = next(numbering)
                if index >= MAX_TOTAL_REQUESTS:
                    return
                code = str(CODES[index])
                sent = time.perf_counter()
                try:
                    reply = client.chat.completions.create(model=model, max_tokens=max_tokens, temperature=0.0,
                                                           messages=[{"role": "user", "content": PROMPT.format(code=code)}],
                                                           response_format=answer_format(code))
                    latency = time.perf_counter() - sent
                    tokens = reply.usage.completion_tokens if reply.usage else 0
                    text = reply.choices[0].message.content or ""
                    result = RequestResult(index, latency, latency, tokens, reply.choices[0].finish_reason or "")
                except openai.OpenAIError as err:
                    text, result = "", RequestResult(index, time.perf_counter() - sent, float("nan"), 0, "error", f"{type(err).__name__}: {err}")
                with lock:
                    replies.append(Reply(client_id, code, text, result))

    threads = [threading.Thread(target=client_loop, args=(c,), name=f"client-{c}") for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sorted(replies, key=lambda r: r.result.index), time.perf_counter() - started


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def machine() -> str:
    model = platform.processor() or "unknown CPU"
    try:
        text = Path("/proc/cpuinfo").read_text()
        names = [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")]
        model = names[0] if names else model
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {model}"


def load() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg()) + " (1 / 5 / 15 min)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--max-tokens", type=int, default=24)
    parser.add_argument("--threads", type=int, default=None, help="llama.cpp threads (default: COURSE_THREADS or 2)")
    args = parser.parse_args()

    from course_utils.server import LlamaServer

    print(f"machine: {machine()}; load average before: {load()}")
    server = LlamaServer(n_threads=args.threads)
    with server:
        process, port = server.process, server.port
        print(f"server: llama_cpp.server pid {process.pid} on {server.base_url}; {args.clients} clients for {args.seconds:g} s, "
              f"max_tokens {args.max_tokens}, greedy")
        replies, wall = run_clients(server.base_url, args.clients, seconds=args.seconds, max_tokens=args.max_tokens)
    stopped = process.poll() is not None
    free = port_is_free(port)

    check = check_replies(replies)
    stats = LoadTestResult(args.clients, args.max_tokens, wall, [r.result for r in replies])
    per_client = [sum(1 for r in replies if r.client == c) for c in range(args.clients)]
    print(f"requests done: {check.done} of {len(replies)} sent (per client: min {min(per_client)}, max {max(per_client)}); "
          f"wall {wall:.1f} s incl. draining the ones in flight at {args.seconds:g} s")
    print(f"errors: {check.errors}")
    print(f"mismatches: {check.mismatches} (lost {check.lost}, own number missing {check.missing_own}, "
          f"another request's number {check.mixed_up})")
    print(f"latency: p50 {stats.latency_percentile(50):.2f} s, p95 {stats.latency_percentile(95):.2f} s")
    print(f"throughput: {stats.throughput_tokens_per_s:.1f} generated tokens/s, {stats.requests_per_s:.2f} requests/s, "
          f"{stats.mean_in_flight:.1f} requests in flight on average")
    print(f"shutdown: process {'exited (code ' + str(process.returncode) + ')' if stopped else 'STILL RUNNING'}, "
          f"port {port} {'free' if free else 'STILL IN USE'}")
    for r in [r for r in replies if r.result.error][:3]:
        print(f"  error example: {r.result.error[:200]}")
    for r in [r for r in replies if not r.result.error and r.code not in r.text][:3]:
        print(f"  mismatch example: asked {r.code}, got {r.text[:80]!r}")
    print(f"machine: {machine()}; load average after: {load()}")
    if check.errors or check.mismatches or not stopped or not free:
        raise SystemExit(1)


if __name__ == "__main__":
    from _table import with_machine

    raise SystemExit(with_machine(main))
