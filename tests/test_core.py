"""Settings, errors, options, timings, stop strings and incremental decoding (no model needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from course_utils.backends.base import GenerationOptions, IncrementalDecoder, StopMatcher
from course_utils.config import Settings
from course_utils.errors import CourseError, InvalidOption, ModelNotFound
from course_utils.timing import StreamTimer


def test_settings_defaults_and_env():
    assert Settings.from_env({}).backend == "auto"
    cfg = Settings.from_env({"COURSE_MODEL": "/m.gguf", "COURSE_BACKEND": "LlamaCpp", "COURSE_CACHE": "/tmp/x",
                             "COURSE_SEED": "5", "COURSE_CTX": "4096", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"})
    assert (cfg.model, cfg.backend, cfg.cache_dir, cfg.seed, cfg.n_ctx) == ("/m.gguf", "llamacpp", Path("/tmp/x"), 5, 4096)
    assert cfg.openai_base_url == "http://127.0.0.1:9/v1"
    assert Settings.from_env({"COURSE_MODEL": "  "}).model is None  # blank means default


def test_settings_reject_non_numbers():
    with pytest.raises(InvalidOption, match="COURSE_CTX.*Fix:"):
        Settings.from_env({"COURSE_CTX": "big"})


@pytest.mark.parametrize(("name", "raw"), [("COURSE_THREADS", "0"), ("COURSE_THREADS", "-2"), ("COURSE_CTX", "0"),
                                           ("COURSE_CTX", "-512"), ("COURSE_SEED", "-1")])
def test_settings_reject_zero_and_negative_sizes(name, raw):
    with pytest.raises(InvalidOption) as err:
        Settings.from_env({name: raw})
    assert f"{name}={raw}" in str(err.value) and "Fix:" in str(err.value)
    assert Settings.from_env({name: "1"})  # the smallest allowed value (0 for the seed) still works


def test_course_error_message_has_the_fix():
    err = ModelNotFound("no model at /x.", fix="set COURSE_MODEL")
    assert str(err) == "no model at /x. Fix: set COURSE_MODEL"
    assert isinstance(err, CourseError) and err.fix == "set COURSE_MODEL"


def test_options_normalise_stop_and_reject_unknowns():
    assert GenerationOptions(stop="\n").stop == ("\n",)
    assert GenerationOptions.from_kwargs(max_tokens=3, seed=None).max_tokens == 3
    with pytest.raises(InvalidOption, match="temprature"):
        GenerationOptions.from_kwargs(temprature=0.5)
    with pytest.raises(InvalidOption):
        GenerationOptions(stop=[""])
    with pytest.raises(InvalidOption):
        GenerationOptions(max_tokens=True)  # a bool is not a count


def test_seed_none_gives_fresh_seeds():
    seeds = {GenerationOptions().resolved_seed() for _ in range(5)}
    assert len(seeds) > 1
    assert GenerationOptions(seed=9).resolved_seed() == 9


def test_stream_timer_arithmetic():
    timer = StreamTimer(start=10.0)
    for t in (10.4, 10.5, 10.6, 10.7):
        timer.token(now=t)
    t = timer.finish(prompt_tokens=20, now=10.8)
    assert t.ttft_s == pytest.approx(0.4)
    assert t.tpot_s == pytest.approx(0.1)
    assert t.total_s == pytest.approx(0.7)
    assert t.tokens_per_s == pytest.approx(10.0)
    assert t.prefill_tokens_per_s == pytest.approx(50.0)
    assert (t.prompt_tokens, t.completion_tokens) == (20, 4)


def test_stream_timer_with_no_tokens():
    t = StreamTimer(start=0.0).finish(prompt_tokens=3, now=0.2)
    assert t.completion_tokens == 0 and t.tpot_s == 0.0 and t.tokens_per_s == 0.0


@pytest.mark.parametrize(
    ("pieces", "stops", "expected"),
    [
        (["Hello", " world"], [], "Hello world"),
        (["Hello\n", "\nWorld"], ["\n\n"], "Hello"),
        (["ab", "c", "END", "more"], ["END"], "abc"),
        (["x E", "N", "x"], ["END"], "x ENx"),  # a partial match that does not complete is released
        (["one, two"], [",", "two"], "one"),  # the earliest stop wins
    ],
)
def test_stop_matcher(pieces, stops, expected):
    matcher = StopMatcher(stops)
    out = "".join(matcher.feed(p) for p in pieces) + matcher.flush()
    assert out == expected


def test_stop_matcher_never_emits_part_of_a_stop():
    matcher = StopMatcher(["<END>"])
    emitted = [matcher.feed(c) for c in "ok <EN"]
    assert "".join(emitted) == "ok "
    assert matcher.feed("D> tail") == "" and matcher.stopped


def test_incremental_decoder_waits_for_whole_characters():
    data = "héllo 🙂!".encode()
    decode = lambda ids: bytes(ids).decode("utf-8", errors="replace")  # noqa: E731  one "token" per byte
    decoder = IncrementalDecoder(decode)
    pieces = [decoder.add(b) for b in data] + [decoder.flush()]
    assert "".join(pieces) == "héllo 🙂!"
    assert all("\ufffd" not in p for p in pieces)
