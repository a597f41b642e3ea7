"""Prompt helpers (few-shot builders, context-window strategies), and the sampling functions checked
against what the backends really do with the real model."""

from __future__ import annotations

import doctest
from itertools import islice

import pytest
import torch

import course_utils.prompting as prompting
from course_utils.backends import GenerationOptions, get_backend
from course_utils.errors import ContextOverflow, InvalidOption
from course_utils.prompting import (
    chat_token_counter,
    context_budget,
    drop_middle,
    few_shot_messages,
    few_shot_prompt,
    fit_to_context,
    keep_last_turns,
    truncate_oldest,
)
from course_utils.sampling import choose_token

PROMPT = "The best thing about living by the sea is"


def words(messages):
    """A toy token counter: one token per word plus one per message (its role marker)."""
    return sum(len(m["content"].split()) + 1 for m in messages)


def conversation(turns: int = 12) -> list[dict[str, str]]:
    chat = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "My name is Ada."}, {"role": "assistant", "content": "Hello Ada!"}]
    for i in range(turns):
        chat += [{"role": "user", "content": f"Question {i} about something rather long and wordy."},
                 {"role": "assistant", "content": f"Answer {i}, which is also rather long and wordy indeed."}]
    return chat + [{"role": "user", "content": "What is my name?"}]


def test_docstring_examples():
    assert doctest.testmod(prompting).failed == 0


# ----------------------------------------------------------------------------- few-shot builders
def test_few_shot_prompt_layout():
    prompt = few_shot_prompt([("2+2", "4"), ("3+5", "8")], "1+6", instruction="Add the numbers.")
    assert prompt == "Add the numbers.\n\nInput: 2+2\nOutput: 4\n\nInput: 3+5\nOutput: 8\n\nInput: 1+6\nOutput:"
    assert few_shot_prompt([], "x", "Q", "A") == "Q: x\nA:"


def test_few_shot_messages_alternate_roles():
    msgs = few_shot_messages([("a", "1"), ("b", "2")], "c", system="Label it.")
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert [m["content"] for m in msgs] == ["Label it.", "a", "1", "b", "2", "c"]
    assert few_shot_messages([], "c") == [{"role": "user", "content": "c"}]


@pytest.mark.parametrize("bad", ["ab", [("only one",)], [("a", 1)], [["a", "b", "c"]]])
def test_few_shot_rejects_bad_examples(bad):
    with pytest.raises(InvalidOption, match="Fix:"):
        few_shot_prompt(bad, "q")
    with pytest.raises(InvalidOption):
        few_shot_messages(bad, "q")


# ----------------------------------------------------------------------------- strategies, toy counter
def test_keep_last_turns_keeps_system_and_newest_messages():
    chat, budget = conversation(), 60
    assert words(chat) > budget
    out = keep_last_turns(chat, words, budget)
    assert words(out) <= budget
    assert out[0] == chat[0] and out[-1] == chat[-1]
    assert out[1:] == chat[len(chat) - len(out) + 1 :]  # a suffix: the newest messages, whole
    older = chat[len(chat) - len(out)]
    assert words([chat[0], older, *out[1:]]) > budget  # the next older message would not have fitted


def test_drop_middle_keeps_the_first_exchange():
    chat, budget = conversation(), 60
    out = drop_middle(chat, words, budget, marker="[omitted]")
    assert words(out) <= budget
    assert out[:3] == chat[:3]  # system prompt + "My name is Ada." + "Hello Ada!"
    assert out[3] == {"role": "system", "content": "[omitted]"}
    assert out[-1] == chat[-1] and out[4:] == chat[len(chat) - len(out) + 4 :]
    assert "Ada" not in " ".join(m["content"] for m in keep_last_turns(chat, words, budget))


def test_strategies_return_everything_when_it_fits():
    chat = conversation(turns=1)
    for strategy in (keep_last_turns, truncate_oldest):
        assert strategy(chat, words, 1000) == chat
    assert drop_middle(chat, words, 1000, marker="[omitted]") == chat  # nothing dropped: no marker


def test_truncate_oldest_fills_the_budget_with_a_cut_message():
    chat, budget = conversation(), 61
    out = truncate_oldest(chat, words, budget)
    whole = keep_last_turns(chat, words, budget)
    assert words(whole) < words(out) <= budget
    cut = out[1]
    assert cut["content"].startswith("…") and cut not in chat
    original = chat[len(chat) - len(out) + 1]
    assert original["content"].endswith(cut["content"][1:]) and cut["role"] == original["role"]
    assert out[2:] == whole[1:]


def test_overflow_and_bad_budget_are_clear_errors():
    chat = [{"role": "user", "content": "word " * 100}]
    for strategy in (keep_last_turns, drop_middle, truncate_oldest):
        with pytest.raises(ContextOverflow, match="Fix:"):
            strategy(chat, words, 50)
        with pytest.raises(InvalidOption):
            strategy(chat, words, 0)
    with pytest.raises(InvalidOption):
        keep_last_turns([], words, 50)


# ----------------------------------------------------------------------------- strategies, real model
def test_counter_matches_the_backend_prompt_tokens(llamacpp):
    chat = conversation(turns=1)
    assert chat_token_counter(llamacpp)(chat) == llamacpp.chat(chat, max_tokens=1).prompt_tokens


def test_fit_to_context_turns_an_overflow_into_a_working_chat():
    with get_backend("llamacpp", n_ctx=256) as small:
        chat = conversation(turns=12)
        count = chat_token_counter(small)
        assert count(chat) > small.n_ctx
        with pytest.raises(ContextOverflow):
            small.chat(chat, max_tokens=4)
        for strategy in ("keep_last_turns", "drop_middle", "truncate_oldest"):
            fitted = fit_to_context(small, chat, max_tokens=16, strategy=strategy)
            assert count(fitted) <= context_budget(small, 16) == small.n_ctx - 16
            assert small.chat(fitted, max_tokens=4).completion_tokens >= 1
        with pytest.raises(InvalidOption):
            fit_to_context(small, chat, max_tokens=16, strategy="summarise")
        with pytest.raises(InvalidOption):
            context_budget(small, 256)


# ----------------------------------------------------------------------------- sampling = what the backends do
def test_transformers_backend_samples_exactly_like_choose_token(transformers_backend):
    """Redo 6 sampled steps by hand (fresh forward pass each step, same seeded generator)."""
    backend, steps = transformers_backend, 6
    opts = GenerationOptions(temperature=0.9, top_k=40, top_p=0.95, repeat_penalty=1.3, seed=11)
    prompt_ids = backend.tokenize(PROMPT)
    stream = backend.generate_ids(prompt_ids, opts)
    sampled = list(islice(stream, steps))
    stream.close()

    generator = torch.Generator().manual_seed(11)
    ids = list(prompt_ids)
    with torch.inference_mode():
        for _ in range(steps):
            logits = backend.model(input_ids=torch.tensor([ids])).logits[0, -1]
            ids.append(int(choose_token(logits, 0.9, 40, 0.95, 1.3, previous_ids=ids, generator=generator)))
    assert ids[len(prompt_ids):] == sampled

    greedy = list(islice(backend.generate_ids(prompt_ids, GenerationOptions()), steps))
    assert sampled != greedy  # the seed really sampled: the match above is not greedy == greedy


def test_greedy_is_the_argmax_of_the_logits(transformers_backend):
    ids = transformers_backend.tokenize(PROMPT)
    with torch.inference_mode():
        logits = transformers_backend.model(input_ids=torch.tensor([ids])).logits[0, -1]
    first = next(transformers_backend.generate_ids(ids, GenerationOptions(temperature=0.0)))
    assert first == int(logits.argmax())


@pytest.mark.parametrize("temperature", [0.7, 1.5])
def test_top_k_1_is_greedy_on_every_backend(local_backend, temperature):
    greedy = local_backend.complete(PROMPT, max_tokens=8)
    sampled = local_backend.complete(PROMPT, max_tokens=8, temperature=temperature, top_k=1, seed=5)
    assert sampled.text == greedy.text
    if temperature > 1:  # without top_k=1 this temperature samples something else (p(greedy start) < 0.15)
        assert local_backend.complete(PROMPT, max_tokens=8, temperature=temperature, seed=5).text != greedy.text
