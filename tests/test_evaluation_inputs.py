"""What a learner types into the evaluation functions by mistake gets one clear line (issue 14 §4).

Each case raises a CourseError subclass whose message names the problem and says ``Fix:``; none
needs a model except the last few, which use the session's real one.
"""

from __future__ import annotations

import pytest

from course_utils import evaluation as ev
from course_utils.errors import CourseError, DataError, InvalidOption, ModelNotFound


def one_line(err: pytest.ExceptionInfo) -> str:
    text = str(err.value)
    assert "Fix:" in text and "\n" not in text.split("Fix:")[0], text
    return text


# ----------------------------------------------------------------------------- tasks
@pytest.mark.parametrize("name, words", [("arc-easy", "did you mean 'arc_easy'"), ("ARC_Easy", "did you mean 'arc_easy'"),
                                         ("hellaswag10", "did you mean 'hellaswag'"), ("gsm8k", "generation task"),
                                         ("quantum_physics", "unknown task")])
def test_unknown_task_names_suggest_the_right_one(name, words):
    with pytest.raises(InvalidOption) as err:
        ev.load_task(name)
    assert words in one_line(err) and "arc_easy" in str(err.value)


@pytest.mark.parametrize("name", [None, 3, ["arc_easy"]])
def test_a_task_name_that_is_not_a_string(name):
    with pytest.raises(InvalidOption) as err:
        ev.load_task(name)
    assert "task name is a string" in one_line(err)


@pytest.mark.parametrize("loader", [ev.arc, ev.hellaswag, ev.mmlu, ev.winogrande, ev.piqa, ev.boolq, ev.gsm8k, ev.humaneval])
@pytest.mark.parametrize("limit", [0, -1, 2.5, "10", True])
def test_every_loader_refuses_a_bad_limit(loader, limit):
    with pytest.raises(InvalidOption) as err:
        loader(limit=limit)
    assert "limit" in one_line(err)


def test_a_huge_limit_gives_the_whole_set():
    assert len(ev.load_task("arc_easy", limit=10**9).items) == len(ev.load_task("arc_easy").items) == 570


def test_mmlu_subject_as_a_string_and_a_wrong_subject():
    items = ev.mmlu(subjects="astronomy", limit=3)
    assert {i.id.split("/")[0] for i in items} == {"astronomy"}
    with pytest.raises(DataError) as err:
        ev.mmlu(subjects=["astronomyy"], limit=3)
    assert "no MMLU subject" in one_line(err)
    with pytest.raises(InvalidOption):
        ev.mmlu(shots=6)


# ----------------------------------------------------------------------------- items
@pytest.mark.parametrize("kwargs, words", [
    (dict(context="Q?", choices=(" yes",), label=0), "1 choice"),
    (dict(context="Q?", choices=(), label=0), "0 choice"),
    (dict(context="Q?", choices=" yes no", label=0), "list of strings"),
    (dict(context="Q?", choices=(" yes", ""), label=0), "empty or non-text choice"),
    (dict(context="Q?", choices=(" yes", 2), label=0), "empty or non-text choice"),
    (dict(context="Q?", choices=(" yes", " no"), label=2), "label 2"),
    (dict(context="Q?", choices=(" yes", " no"), label="yes"), "label 'yes'"),
    (dict(context=("a", "b", "c"), choices=(" yes", " no"), label=0), "3 contexts for 2 choices"),
    (dict(context=42, choices=(" yes", " no"), label=0), "context must be a string"),
])
def test_malformed_items(kwargs, words):
    with pytest.raises(DataError) as err:
        ev.MCItem(**kwargs)
    assert words in one_line(err)


def test_items_given_as_lists_are_kept_as_tuples():
    item = ev.MCItem("Q?", [" yes", " no"], 1)
    assert item.choices == (" yes", " no") and item.norm_lengths() == (3, 2)


@pytest.mark.parametrize("items, words", [([], "no items"), (ev.MCItem("Q?", (" a", " b"), 0), "one MCItem"),
                                          ([{"context": "Q?", "choices": [" a", " b"]}], "MCItem objects"),
                                          ("arc_easy", "list of MCItem")])
def test_wrong_item_lists_fail_before_any_model_is_loaded(items, words):
    with pytest.raises(DataError) as err:
        ev.score_multiple_choice(None, items)  # None would load llama.cpp: the items are checked first
    assert words in one_line(err)


def test_length_and_encoding_errors():
    with pytest.raises(DataError):
        ev.acc_norm_prediction([-1.0, -2.0], [3])
    with pytest.raises(DataError):
        ev.acc_norm_prediction([-1.0, -2.0], [3, 0])
    with pytest.raises(DataError):
        ev.encode_pair(lambda s: [ord(c) for c in s], "", "Paris")


# ----------------------------------------------------------------------------- models
def test_a_text_file_as_a_model(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a model\n")
    fake = tmp_path / "model.gguf"
    fake.write_text("not a model either\n")
    for path in (notes, fake):
        for call in (lambda p: ev.make_scorer(str(p)), lambda p: ev.perplexity_llamacpp(str(p), ids=[1, 2, 3])):
            with pytest.raises(ModelNotFound) as err:
                call(path)
            assert "not a GGUF" in one_line(err) and "Fix:" in one_line(err)
    with pytest.raises(ModelNotFound) as err:
        ev.LlamaCppScorer(str(tmp_path / "missing.gguf"))
    assert "no GGUF file" in one_line(err)


def test_wrong_model_types():
    with pytest.raises(InvalidOption) as err:
        ev.make_scorer(object())
    assert "log-probabilities" in one_line(err)
    with pytest.raises(InvalidOption) as err:
        ev.HFScorer("SmolLM2", None)
    assert "transformers causal LM" in one_line(err)
    with pytest.raises(InvalidOption) as err:
        ev.perplexity("model.gguf", ids=[1, 2, 3])
    assert "perplexity_llamacpp" in one_line(err)
    with pytest.raises(InvalidOption) as err:
        ev.llama_with_logits(12, n_ctx=64)
    assert "GGUF path" in one_line(err)
    with pytest.raises(InvalidOption) as err:
        ev.LlamaCppScorer(n_ctx=0)
    assert "n_ctx" in one_line(err)


@pytest.mark.parametrize("kwargs", [dict(max_tokens=0), dict(max_tokens=-5), dict(max_tokens=1.5)])
def test_perplexity_token_budget(kwargs):
    with pytest.raises(InvalidOption) as err:
        ev.token_stream(lambda s: [ord(c) for c in s], "some text", **kwargs)
    assert "max_tokens" in one_line(err)


def test_perplexity_inputs_of_the_wrong_type():
    encode = lambda s: [ord(c) for c in s]  # noqa: E731
    with pytest.raises(DataError) as err:
        ev.token_stream(encode, 123)
    assert "list of strings" in one_line(err)
    with pytest.raises(DataError) as err:
        ev.token_stream(encode, ["fine", None])
    assert "list of strings" in one_line(err)
    with pytest.raises(CourseError) as err:
        ev.perplexity(lambda **kw: None, ids="1 2 3")
    assert "token ids" in one_line(err)


def test_generation_tasks_need_a_backend_that_writes():
    with pytest.raises(InvalidOption) as err:
        ev.run_gsm8k("llamacpp", limit=1)
    assert "backend that writes text" in one_line(err)
    with pytest.raises(InvalidOption) as err:
        ev.run_humaneval(object(), limit=1)
    assert "backend that writes text" in one_line(err)


def test_generation_token_budget(llamacpp):
    for bad in (0, -3, 2.5):
        with pytest.raises(InvalidOption) as err:
            ev.run_gsm8k(llamacpp, limit=1, max_tokens=bad)
        assert "max_tokens" in one_line(err)


def test_bad_batch_sizes(hf_model):
    model, tokenizer = hf_model
    for key in ("batch_items", "batch_tokens"):
        for bad in (0, -1, 1.5, True):
            with pytest.raises(InvalidOption) as err:
                ev.HFScorer(model, tokenizer, **{key: bad})
            assert key in one_line(err)


def test_a_task_object_is_accepted_as_the_items(hf_model):
    model, tokenizer = hf_model
    task = ev.load_task("arc_easy", limit=2)
    assert ev.score_multiple_choice(model, task, tokenizer).n == 2
