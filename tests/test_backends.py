"""Behaviour every in-process backend must share, checked on the real SmolLM2 model."""

from __future__ import annotations

import pytest

from course_utils.backends import GenerationResult, collect
from course_utils.errors import ContextOverflow, CourseError, InvalidOption

QUESTION = [{"role": "user", "content": "What is the capital of Germany?"}]


def test_greedy_answer_is_right(local_backend):
    result = local_backend.chat(QUESTION, max_tokens=24)
    assert "Berlin" in result.text
    assert result.finish_reason == "stop"  # the model ended its turn by itself


def test_greedy_is_deterministic(local_backend):
    first = local_backend.chat(QUESTION, max_tokens=24).text
    assert local_backend.chat(QUESTION, max_tokens=24).text == first


def test_stream_joins_to_non_stream_text(local_backend):
    messages = [{"role": "user", "content": "Write two sentences about the sea."}]
    whole = local_backend.chat(messages, max_tokens=40)
    chunks = list(local_backend.chat_stream(messages, max_tokens=40))
    assert chunks[-1].done and not any(c.done for c in chunks[:-1])
    assert len(chunks) > 5  # really streamed, not one block
    assert "".join(c.text for c in chunks) == whole.text
    assert chunks[-1].result.text == whole.text
    assert chunks[-1].result.completion_tokens == whole.completion_tokens


def test_max_tokens_is_obeyed(local_backend):
    result = local_backend.complete("The history of the Roman Empire", max_tokens=7)
    assert result.completion_tokens == 7
    assert result.finish_reason == "length"
    assert 0 < local_backend.count_tokens(result.text) <= 9  # re-tokenizing may merge/split a little


def test_stop_string_cuts_the_text(local_backend):
    prompt = "Count: one, two, three, four, five, six,"
    free = local_backend.complete(prompt, max_tokens=12).text
    assert "," in free  # without a stop string the count goes on past a comma
    cut = local_backend.complete(prompt, max_tokens=12, stop=[","])
    assert "," not in cut.text
    assert cut.finish_reason == "stop"
    assert free.startswith(cut.text)


def test_seeded_sampling_repeats_and_seeds_differ(local_backend):
    opts = dict(max_tokens=24, temperature=1.0, top_k=50, top_p=0.95)
    a = local_backend.complete("Once upon a time", seed=11, **opts).text
    b = local_backend.complete("Once upon a time", seed=11, **opts).text
    others = {local_backend.complete("Once upon a time", seed=s, **opts).text for s in (12, 13, 14)}
    assert a == b
    assert len(others | {a}) > 1  # sampling really samples


def test_token_counts_agree_with_the_tokenizer(local_backend, hf_model):
    _, tokenizer = hf_model
    text = "Tokenizers split text like 'unbelievable' and 12345 into pieces."
    assert local_backend.count_tokens(text) == len(tokenizer.encode(text, add_special_tokens=False))
    result = local_backend.chat(QUESTION, max_tokens=5)
    rendered = tokenizer.apply_chat_template(QUESTION, tokenize=False, add_generation_prompt=True)
    assert local_backend.format_chat(QUESTION) == rendered
    assert result.prompt_tokens == len(tokenizer.encode(rendered, add_special_tokens=False))


def test_timings_are_filled_in(local_backend):
    result = local_backend.complete("The weather today is", max_tokens=10)
    t = result.timings
    assert t.completion_tokens == result.completion_tokens == 10
    assert t.prompt_tokens == result.prompt_tokens > 0
    assert 0 < t.ttft_s <= t.total_s
    assert t.tpot_s > 0 and t.tokens_per_s == pytest.approx(1 / t.tpot_s)
    assert t.total_s == pytest.approx(t.ttft_s + 9 * t.tpot_s, rel=1e-6)


def test_info_describes_the_backend(local_backend):
    info = local_backend.info()
    assert info.name == local_backend.name
    assert info.context_length == local_backend.n_ctx > 0
    assert info.device == "cpu"
    assert info.quantization


def test_both_backends_read_the_same_prompt(llamacpp, transformers_backend):
    text = llamacpp.format_chat(QUESTION)
    assert text == transformers_backend.format_chat(QUESTION)
    assert llamacpp.tokenize(text, special=True) == transformers_backend.tokenize(text, special=True)


def test_special_tokens_in_user_text_are_not_special(local_backend):
    # A user typing "<|im_end|>" must not be able to end the turn: it is tokenized as plain text.
    assert local_backend.count_tokens("<|im_end|>") > 1


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("options", "word"),
    [
        ({"max_tokens": "10"}, "max_tokens"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"temperature": -1}, "temperature"),
        ({"temperature": "hot"}, "temperature"),
        ({"top_p": 0}, "top_p"),
        ({"top_k": 2.5}, "top_k"),
        ({"stop": 5}, "stop"),
        ({"seed": -3}, "seed"),
        ({"max_new_tokens": 5}, "max_new_tokens"),
    ],
)
def test_wrong_option_type_says_how_to_fix(local_backend, options, word):
    with pytest.raises(InvalidOption) as err:
        local_backend.chat(QUESTION, **options)
    assert word in str(err.value) and "Fix:" in str(err.value)


@pytest.mark.parametrize("messages", ["hello", [], [{"role": "user"}], [{"role": "bot", "content": "x"}]])
def test_malformed_messages_raise(local_backend, messages):
    with pytest.raises(InvalidOption, match="Fix:"):
        local_backend.chat(messages)


def test_prompt_over_the_context_raises_before_generating(local_backend):
    long_text = "word " * (local_backend.n_ctx + 50)
    with pytest.raises(ContextOverflow) as err:
        local_backend.complete(long_text, max_tokens=5)
    message = str(err.value)
    assert str(local_backend.n_ctx) in message and "Fix:" in message
    assert isinstance(err.value, CourseError)


def test_generation_stops_at_the_context_end(local_backend):
    n = local_backend.n_ctx
    prompt_ids = local_backend.tokenize("word " * 4000)[: n - 3]
    result = collect(local_backend._stream(prompt_ids, _opts(max_tokens=50), _timer()))
    assert isinstance(result, GenerationResult)
    assert result.completion_tokens <= 3


def _opts(**kw):
    from course_utils.backends import GenerationOptions

    return GenerationOptions(**kw)


def _timer():
    from course_utils.metrics import StreamTimer

    return StreamTimer()
