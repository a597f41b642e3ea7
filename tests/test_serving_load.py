"""benchmarks/serving_load.py: every reply is matched with its own request (no timing asserted here)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from serving_load import Reply, check_replies, port_is_free, run_clients  # noqa: E402

from course_utils.serving import RequestResult  # noqa: E402


def reply(index: int, code: str, text: str, error: str = "") -> Reply:
    return Reply(client=index % 2, code=code, text=text, result=RequestResult(index, 0.1, 0.1, 3, "error" if error else "stop", error))


def test_matching_replies_pass():
    check = check_replies([reply(0, "12345", "12345"), reply(1, "67890", "Repeat this number exactly: 67890")])
    assert (check.done, check.errors, check.mismatches) == (2, 0, 0)


def test_swapped_lost_and_failed_replies_are_caught():
    replies = [reply(0, "11111", "22222"), reply(1, "22222", "11111"),  # two replies swapped between requests
               reply(2, "33333", "   "),  # an empty reply
               reply(3, "44444", "The number is 4444."),  # its own number garbled
               reply(4, "55555", "", error="APITimeoutError: Request timed out."),
               reply(5, "66666", "66666 and 11111")]  # its own number, plus another request's
    check = check_replies(replies)
    assert check.errors == 1 and check.done == 5
    assert check.lost == 1 and check.missing_own == 3 and check.mixed_up == 3
    assert check.mismatches == 5  # each wrong reply counted once


def test_small_run_against_the_real_server(llama_server):
    replies, wall = run_clients(llama_server.base_url, clients=4, requests_per_client=3, max_tokens=24, timeout_s=600)
    assert len(replies) == 12 and wall > 0
    assert sorted(r.client for r in replies) == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    assert len({r.code for r in replies}) == 12  # each request asked for a number of its own
    check = check_replies(replies)
    assert check.errors == 0, [r.result.error for r in replies if r.result.error]
    assert check.mismatches == 0, [(r.code, r.text) for r in replies]
    assert all(r.result.completion_tokens > 0 for r in replies)


def test_loopback_only_and_bounds():
    with pytest.raises(Exception, match="not a server on this machine"):
        run_clients("http://example.com/v1", clients=1, requests_per_client=1)
    with pytest.raises(SystemExit):
        run_clients("http://127.0.0.1:1/v1", clients=100, requests_per_client=1)


def test_port_is_free_sees_a_listener():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        assert not port_is_free(s.getsockname()[1])
    # a port nobody holds can be bound
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert port_is_free(port)
