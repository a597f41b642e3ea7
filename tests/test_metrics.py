"""measure_stream on synthetic stamped streams and real streams; compare_backends with a dead backend."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from course_utils.backends import GenerationResult, StreamChunk
from course_utils.errors import InvalidOption
from course_utils.metrics import Timings, compare_backends, measure_stream, plot_comparison

MESSAGES = [{"role": "user", "content": "Name a colour."}]


def test_measure_stream_on_stamped_strings():
    t = measure_stream([(1.4, "The"), (1.5, " sky"), (1.7, " is"), (1.8, " blue")], start=1.0, prompt_tokens=12)
    assert t.ttft_s == pytest.approx(0.4)
    assert t.tpot_s == pytest.approx(0.4 / 3)
    assert t.tokens_per_s == pytest.approx(7.5)
    assert t.total_s == pytest.approx(0.8)
    assert (t.prompt_tokens, t.completion_tokens) == (12, 4)


def test_measure_stream_skips_empty_pieces_and_understands_client_chunks():
    openai_chunk = lambda text: SimpleNamespace(choices=[SimpleNamespace(delta=SimpleNamespace(content=text))])  # noqa: E731
    langchain_chunk = SimpleNamespace(content="lang")
    ollama_line = {"message": {"role": "assistant", "content": "ol"}, "done": False}
    stream = [(0.1, openai_chunk(None)), (0.2, openai_chunk("Hi")), (0.3, langchain_chunk), (0.5, ollama_line), (0.9, openai_chunk(""))]
    t = measure_stream(stream, start=0.0)
    assert t.completion_tokens == 3  # the role-only first chunk and the empty last one are not tokens
    assert t.ttft_s == pytest.approx(0.2)
    assert t.tpot_s == pytest.approx(0.15)


def test_measure_stream_uses_the_exact_count_of_a_final_course_chunk():
    result = GenerationResult("abcd", 5, 4, "length", Timings(0, 0, 0, 5, 4))
    # two text pieces that carried 4 tokens between them
    t = measure_stream([(0.2, StreamChunk("ab")), (0.5, StreamChunk("cd")), (0.5, StreamChunk("", done=True, result=result))], start=0.0)
    assert t.completion_tokens == 4
    assert t.tpot_s == pytest.approx(0.1)
    assert t.prompt_tokens == 5


def test_measure_stream_with_no_tokens():
    t = measure_stream([(0.3, "")], start=0.0)
    assert (t.completion_tokens, t.tpot_s, t.tokens_per_s) == (0, 0.0, 0.0)


def test_measure_stream_on_a_real_stream_matches_the_backend(llamacpp):
    stream = list(llamacpp.chat_stream(MESSAGES, max_tokens=12))
    inner = stream[-1].result
    # replay the stream with invented stamps: the count comes from the real stream
    t = measure_stream([(0.1 * (i + 1), c) for i, c in enumerate(stream)], start=0.0)
    assert t.completion_tokens == inner.completion_tokens
    assert t.prompt_tokens == inner.prompt_tokens
    live = measure_stream(llamacpp.chat_stream(MESSAGES, max_tokens=12))
    assert live.completion_tokens == inner.completion_tokens
    assert 0 < live.ttft_s <= live.total_s


def test_compare_backends_reports_an_unavailable_backend_instead_of_crashing(llamacpp):
    df = compare_backends({"llamacpp": {}, "ollama": {"host": "http://127.0.0.1:9"}}, MESSAGES, max_tokens=8, repeats=1)
    assert list(df.index) == ["llamacpp", "ollama"]
    ok, dead = df.loc["llamacpp"], df.loc["ollama"]
    assert ok["status"] == "ok" and ok["reason"] == ""
    assert ok["tokens"] >= 1 and ok["TTFT ms"] > 0 and ok["load s"] > 0
    assert dead["status"] == "unavailable"
    assert "BackendUnavailable" in dead["reason"] and "127.0.0.1:9" in dead["reason"]
    assert math.isnan(dead["TTFT ms"])
    fig = plot_comparison(df)
    left, right = fig.axes
    assert "ms" in left.get_ylabel() and "tokens/s" in right.get_ylabel()
    assert len(left.patches) == 1  # only the backend that ran gets a bar
    assert "ollama" in fig._suptitle.get_text()


def test_compare_backends_rejects_bad_arguments():
    with pytest.raises(InvalidOption):
        compare_backends(["llamacpp"], MESSAGES, repeats=0)
    with pytest.raises(InvalidOption):
        compare_backends([], MESSAGES)
    df = compare_backends(["no-such-backend"], MESSAGES, repeats=1)
    assert df.loc["no-such-backend", "status"] == "unavailable" and "InvalidOption" in df.loc["no-such-backend", "reason"]
