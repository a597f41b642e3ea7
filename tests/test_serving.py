"""The load test against a real local server, its bounds, and KV-cache arithmetic."""

from __future__ import annotations

import pytest

from course_utils.errors import BackendUnavailable, InvalidOption
from course_utils.serving import (
    KNOWN_SHAPES,
    LoadTestResult,
    RequestResult,
    gguf_shape,
    kv_cache_bytes_per_token,
    load_test,
    plot_sweep,
    sweep,
)


def test_kv_cache_bytes_per_token():
    assert kv_cache_bytes_per_token(30, 3, 64) == 2 * 30 * 3 * 64 * 2 == 23_040
    assert kv_cache_bytes_per_token(30, 3, 64, bytes_per_value=1) == 11_520
    assert kv_cache_bytes_per_token(**KNOWN_SHAPES["Llama-3.1-8B"]) == 131_072
    assert kv_cache_bytes_per_token(**KNOWN_SHAPES["Llama-2-7B"]) == 4 * 131_072  # 4x the KV heads
    with pytest.raises(InvalidOption):
        kv_cache_bytes_per_token(0, 3, 64)
    with pytest.raises(InvalidOption):
        kv_cache_bytes_per_token(30, 3, 64, bytes_per_value=0)


def test_gguf_shape_of_the_bundled_model():
    shape = gguf_shape()
    assert shape == {"n_layers": 30, "n_heads": 9, "n_kv_heads": 3, "head_dim": 64, "n_embd": 576}
    assert {k: shape[k] for k in ("n_layers", "n_kv_heads", "head_dim")} == KNOWN_SHAPES["SmolLM2-135M"]


def test_load_test_bounds_and_loopback_only():
    with pytest.raises(InvalidOption, match="concurrency"):
        load_test("http://127.0.0.1:1/v1", concurrency=0, n_requests=2)
    with pytest.raises(InvalidOption, match="n_requests"):
        load_test("http://127.0.0.1:1/v1", concurrency=2, n_requests=10_000)
    with pytest.raises(InvalidOption, match="not a server on this machine"):
        load_test("http://example.com/v1", concurrency=1, n_requests=1)


def test_load_test_statistics():
    reqs = [RequestResult(i, latency, latency / 2, 10, "length") for i, latency in enumerate([1.0, 2.0, 3.0, 4.0])]
    reqs.append(RequestResult(4, 0.1, float("nan"), 0, "error", "APIConnectionError"))
    r = LoadTestResult(concurrency=2, max_tokens=10, wall_s=5.0, requests=reqs)
    assert len(r.ok) == 4
    assert r.throughput_tokens_per_s == pytest.approx(8.0)
    assert r.requests_per_s == pytest.approx(0.8)
    assert (r.latency_percentile(50), r.latency_percentile(90), r.latency_percentile(100)) == (2.0, 4.0, 4.0)
    s = r.summary()
    assert s["errors"] == 1 and s["requests"] == 5 and s["mean TTFT s"] == pytest.approx(1.25)
    assert s["avg in flight"] == pytest.approx(10.0 / 5.0)


def test_load_test_against_the_real_server_non_streamed(llama_server):
    result = load_test(llama_server.base_url, concurrency=2, n_requests=3, max_tokens=4, stream=False)
    assert len(result.requests) == 3 and not [r.error for r in result.requests if r.error]
    assert sorted(r.index for r in result.requests) == [0, 1, 2]
    assert all(1 <= r.completion_tokens <= 4 for r in result.requests)
    assert max(r.latency_s for r in result.requests) <= result.wall_s
    assert result.throughput_tokens_per_s > 0


def test_load_test_streamed_counts_tokens(llama_server):
    # one at a time: llama-cpp-python's server would cut a running stream short when another request waits
    result = load_test(llama_server.base_url, concurrency=1, n_requests=2, max_tokens=5)
    assert len(result.requests) == 2
    for r in result.requests:
        assert not r.error
        assert r.finish_reason == "length" and r.completion_tokens == 5
        assert 0 < r.ttft_s <= r.latency_s


def test_a_dead_server_gives_errors_not_exceptions():
    from course_utils.server import free_port

    with pytest.raises(BackendUnavailable, match="no OpenAI-compatible server"):
        load_test(f"http://127.0.0.1:{free_port()}/v1", concurrency=1, n_requests=1)
    dead = load_test(f"http://127.0.0.1:{free_port()}/v1", concurrency=2, n_requests=2, model="smollm2", timeout=5)
    assert [r.finish_reason for r in dead.requests] == ["error", "error"]
    assert all("Connection" in r.error for r in dead.requests)


def test_sweep_rejects_bad_repeats():
    for bad in (0, 6, 1.5, True):
        with pytest.raises(InvalidOption, match="repeats must be a whole number"):
            sweep("http://127.0.0.1:1/v1", repeats=bad)


def test_sweep_with_repeats_keeps_one_row_per_level(llama_server):
    df = sweep(llama_server.base_url, levels=(1, 2), n_requests=2, max_tokens=2, stream=False, repeats=2)
    assert list(df.index) == [1, 2]
    assert (df["requests"] == 2).all() and (df["errors"] == 0).all()


def test_sweep_and_plot(llama_server):
    df = sweep(llama_server.base_url, levels=(1, 2), n_requests=2, max_tokens=3, stream=False)
    assert list(df.index) == [1, 2]
    assert (df["requests"] == 2).all() and (df["errors"] == 0).all()
    fig = plot_sweep(df)
    assert [ax.get_ylabel() for ax in fig.axes] == ["latency (s)", "generated tokens/s"]
