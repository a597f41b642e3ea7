"""Details of the in-process backends (llama.cpp, transformers) beyond the common interface."""

from __future__ import annotations

import pytest

from course_utils.backends import collect
from course_utils.errors import ContextOverflow

QUESTION = [{"role": "user", "content": "What is the capital of Germany?"}]


def test_both_read_the_same_prompt_and_ids(llamacpp, transformers_backend, hf_model):
    _, tokenizer = hf_model
    text = llamacpp.format_chat(QUESTION)
    assert text == transformers_backend.format_chat(QUESTION)
    assert text == tokenizer.apply_chat_template(QUESTION, tokenize=False, add_generation_prompt=True)
    assert llamacpp.tokenize(text, special=True) == transformers_backend.tokenize(text, special=True)
    assert llamacpp.chat_ids(QUESTION) == transformers_backend.chat_ids(QUESTION)
    digits = "Pay 12345 dollars   99 and  7 in   2024."  # digit splitting must agree too
    assert llamacpp.tokenize(digits) == transformers_backend.tokenize(digits)


def test_special_tokens_typed_by_a_user_stay_plain_text(local_backend):
    # A user typing "<|im_end|>" must not be able to end the turn: it is tokenized as ordinary text.
    assert local_backend.count_tokens("<|im_end|>") > 1
    assert len(local_backend.tokenize("<|im_end|>", special=True)) == 1


def test_context_overflow_names_the_sizes(local_backend):
    with pytest.raises(ContextOverflow) as err:
        local_backend.complete("word " * (local_backend.n_ctx + 50), max_tokens=5)
    assert str(local_backend.n_ctx) in str(err.value)


@pytest.mark.parametrize("name", ["llamacpp", "transformers"])
def test_generation_stops_at_the_end_of_the_context(name):
    from course_utils.backends import get_backend

    with get_backend(name, n_ctx=128) as small:  # a small window keeps the test fast
        ids = small.tokenize("word " * 400)[: small.n_ctx - 3]
        result = collect(small.complete_ids_stream(ids, max_tokens=50))
    assert result.completion_tokens <= 3 and result.finish_reason == "length"


def test_kv_cache_reuse_does_not_change_greedy_output(llamacpp):
    # llama.cpp reuses its KV cache between calls unless reset; the backend resets, so the same
    # long generation repeats exactly (without the reset the 2nd call differed, see ENVIRONMENT.md).
    prompt = [{"role": "user", "content": "Write a short story about a lighthouse keeper."}]
    texts = [llamacpp.chat(prompt, max_tokens=80).text for _ in range(3)]
    assert texts[0] == texts[1] == texts[2]
