"""Multiple-choice log-likelihood scoring and the task loaders (course_utils.evaluation)."""

from __future__ import annotations

import math

import pytest

from course_utils import evaluation as ev
from course_utils.errors import CourseError, DataError, InvalidOption
from course_utils.evaluation import generation, tasks


def hf_encode(tokenizer):
    return lambda s: tokenizer.encode(s, add_special_tokens=False)


def direct_logprob(model, tokenizer, context: str, continuation: str) -> float:
    """Sum of log p(continuation tokens) from one plain forward pass over the whole sequence."""
    import torch

    ctx, cont = ev.encode_pair(hf_encode(tokenizer), context, continuation)
    with torch.inference_mode():
        logits = model(torch.tensor([ctx + cont])).logits[0].double()
    logp = torch.log_softmax(logits, dim=-1)
    return sum(logp[len(ctx) - 1 + j, t].item() for j, t in enumerate(cont))


# ----------------------------------------------------------------------------- pure functions
def test_acc_and_acc_norm_differ_when_lengths_differ():
    logprobs, lengths = (-6.0, -9.0), (3, 30)  # the long choice has a worse sum but a better per-char score
    assert ev.acc_prediction(logprobs) == 0
    assert ev.acc_norm_prediction(logprobs, lengths) == 1
    item = ev.ItemScore("x", 1, logprobs, lengths, (1, 6))
    result = ev.MCResult("toy", [item, ev.ItemScore("y", 0, (-1.0, -2.0), (5, 5), (1, 1))], 0.5, 1.0, 10)
    assert result.acc == 0.5 and result.acc_norm == 1.0


def test_ties_pick_the_first_choice_like_argmax():
    assert ev.acc_prediction([-1.0, -1.0, -3.0]) == 0
    assert ev.acc_prediction([-3.0, -1.0, -1.0]) == 1


def test_binomial_stderr():
    assert ev.binomial_stderr(0.5, 100) == pytest.approx(0.05)
    assert ev.binomial_stderr(0.3, 570) == pytest.approx(math.sqrt(0.3 * 0.7 / 570))
    assert ev.binomial_stderr(1.0, 10) == 0.0
    with pytest.raises(DataError):
        ev.binomial_stderr(1.5, 10)


def test_encode_pair_moves_trailing_space_to_the_continuation():
    seen = []

    def tokenize(text):
        seen.append(text)
        return [ord(c) for c in text]

    ctx, cont = ev.encode_pair(tokenize, "Answer: ", "Paris")
    assert seen == ["Answer:", "Answer: Paris"]
    assert ctx == [ord(c) for c in "Answer:"] and cont == [ord(c) for c in " Paris"]


@pytest.mark.parametrize("text, number", [("5 + 4 = 9. So the answer is 9.", "9"), ("The answer is $1,250.", "1250"),
                                          ("it costs 18.50 dollars, then 3", "3"), ("So the answer is 18.0", "18"),
                                          ("The answer is -7 degrees", "-7"), ("no digits here", None)])
def test_extract_number(text, number):
    assert generation.extract_number(text) == number


# ----------------------------------------------------------------------------- task loaders
def test_task_loaders_build_harness_style_items():
    arc = tasks.load_task("arc_easy", limit=3)
    assert len(arc.items) == 3 and arc.metric == "acc_norm"
    first = arc.items[0]  # "Which technology was developed most recently?" answer A: cellular telephone
    assert first.context == "Question: Which technology was developed most recently?\nAnswer:"
    assert first.choices[first.label] == " cellular telephone"
    wino = tasks.load_task("winogrande", limit=1).items[0]
    assert wino.contexts()[0].endswith("Sarah") and wino.contexts()[1].endswith("Maria")
    assert wino.choices[0] == wino.choices[1] == " always got the easier cases."
    mmlu5 = tasks.mmlu(limit=4, shots=5)
    assert len({i.id.split("/")[0] for i in mmlu5}) == 4  # items alternate between subjects
    assert mmlu5[0].prefix.count("\nAnswer:") == 5 and mmlu5[0].choices == (" A", " B", " C", " D")
    assert tasks.load_task("boolq", limit=2).items[0].choices == (" no", " yes")


@pytest.mark.parametrize("name, limit", [("nope", 5), ("gsm8k", 5), ("arc_easy", 0), ("arc_easy", -1), ("arc_easy", 2.5), ("arc_easy", True)])
def test_bad_task_name_or_limit_is_a_course_error(name, limit):
    with pytest.raises(InvalidOption, match="Fix:"):
        tasks.load_task(name, limit)


def test_humaneval_harness_passes_the_reference_and_fails_a_wrong_body():
    from course_utils.sandbox import run_python

    item = tasks.humaneval(limit=1)[0]
    good = "    return any(abs(a - b) < threshold for i, a in enumerate(numbers) for j, b in enumerate(numbers) if i != j)\n"
    bad = "    return False\n\n\ndef helper():\n    pass\n"
    for body, expected in ((good, True), (bad, False)):
        program = generation.extract_code(item.prompt, body) + "\n\n" + item.answer + f"\n\ncheck({item.entry_point})\n"
        assert run_python(program, timeout_s=10).ok is expected


def test_no_items_and_unsupported_models_are_course_errors(hf_model):
    model, tokenizer = hf_model
    with pytest.raises(DataError):
        ev.score_multiple_choice(model, [], tokenizer)
    with pytest.raises(InvalidOption, match="log-probabilities"):
        ev.make_scorer(object())
    with pytest.raises(CourseError):
        ev.make_scorer(model)  # a transformers model without its tokenizer


# ----------------------------------------------------------------------------- the real model
def test_scorer_equals_a_direct_forward_pass(hf_model):
    model, tokenizer = hf_model
    item = tasks.load_task("arc_easy", limit=1).items[0]
    result = ev.score_multiple_choice(model, [item], tokenizer)
    for choice, got in zip(item.choices, result.items[0].logprobs):
        assert got == pytest.approx(direct_logprob(model, tokenizer, item.context, choice), abs=2e-3)
    assert result.items[0].n_chars == tuple(len(c) for c in item.choices)


def test_an_obvious_item_is_answered_right(hf_model):
    model, tokenizer = hf_model
    items = [ev.MCItem("one, two, three, four,", (" banana", " five", " seven"), 1, "count"),
             ev.MCItem("Monday, Tuesday, Wednesday,", (" Thursday", " purple", " Sunday"), 0, "days")]
    result = ev.score_multiple_choice(model, items, tokenizer)
    assert [s.pred for s in result.items] == [1, 0]
    assert result.acc == 1.0 and result.chance == pytest.approx(1 / 3)


def test_shared_context_scoring_equals_naive_scoring(hf_model):
    model, tokenizer = hf_model
    items = tasks.load_task("arc_easy", limit=5).items + tasks.winogrande(limit=2) + tasks.mmlu(limit=2, shots=2)
    fast = ev.score_multiple_choice(ev.HFScorer(model, tokenizer, batch_items=4), items)
    naive = ev.score_multiple_choice(ev.HFScorer(model, tokenizer, share_context=False), items)
    for a, b in zip(fast.items, naive.items):
        assert a.logprobs == pytest.approx(b.logprobs, abs=2e-3)
    assert fast.tokens < naive.tokens  # the contexts went through the model once, not once per choice


def test_reruns_give_identical_numbers(hf_model):
    model, tokenizer = hf_model
    items = tasks.load_task("arc_challenge", limit=4).items
    first = ev.score_multiple_choice(model, items, tokenizer)
    second = ev.score_multiple_choice(model, items, tokenizer)
    assert [s.logprobs for s in first.items] == [s.logprobs for s in second.items]


def test_llamacpp_scorer_equals_its_own_full_evaluation(hf_model):
    import numpy as np

    _, tokenizer = hf_model
    items = tasks.load_task("arc_easy", limit=2).items + tasks.winogrande(limit=1)
    scorer = ev.LlamaCppScorer(tokenizer=tokenizer, n_ctx=512)
    try:
        result = ev.score_multiple_choice(scorer, items)
        again = ev.score_multiple_choice(scorer, items)
        assert [s.logprobs for s in result.items] == [s.logprobs for s in again.items]  # reset between items
        llm = scorer.llm
        for item, scores in zip(items, result.items):
            for context, choice, got in zip(item.contexts(), item.choices, scores.logprobs):
                ctx, cont = ev.encode_pair(hf_encode(tokenizer), context, choice)
                llm.reset()
                llm.eval(ctx + cont)
                logits = np.asarray(llm.scores[len(ctx) - 1:len(ctx) + len(cont) - 1], dtype=np.float64)
                logp = logits - np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1, keepdims=True)) - logits.max(1, keepdims=True)
                want = float(logp[np.arange(len(cont)), cont].sum())
                assert got == pytest.approx(want, abs=0.05)
    finally:
        scorer.close()


# ----------------------------------------------------------------------------- packing, lengths, old names
def test_packed_rows_hide_other_answers_and_padding():
    ids, positions, segments = ev.pack_group([1, 2], [[3], [4, 5, 6], [7, 8]])
    assert ids == [1, 2, 4, 5, 7] and positions == [0, 1, 2, 3, 2] and segments == [0, 0, 2, 2, 3]  # 1-token answers add nothing
    short = ev.pack_group([9], [[10, 11]])[2]
    mask = ev.segment_mask([segments, short])
    assert mask.shape == (2, 5, 5)
    assert mask[0, 4].tolist() == [True, True, False, False, True]  # answer 3 sees the question and itself only
    assert not mask[1, :2, 2:].any()  # real tokens of the short row never see its padding
    assert mask[1, 4].tolist() == [True, False, True, True, True]  # padding sees the question and padding: no empty row


def test_batches_respect_the_item_and_token_budgets(hf_model):
    model, tokenizer = hf_model
    scorer = ev.HFScorer(model, tokenizer, batch_items=3, batch_tokens=100)
    lengths = [10, 50, 20, 40, 30, 120, 5]
    batches = scorer._batches(lengths)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert batches[0] == [5]  # longer than the budget: alone
    for b in batches:
        assert len(b) <= 3 and (len(b) == 1 or max(lengths[i] for i in b) * len(b) <= 100)


def test_norm_lengths_follow_the_delimiter():
    assert ev.MCItem("Q:", (" ab", " abcd"), 0).norm_lengths() == (2, 4)
    assert ev.MCItem("Q: ", ("ab", "abcd"), 0, delimiter="").norm_lengths() == (2, 4)
    assert ev.MCItem("Q:", ("ab", " abcd"), 0).norm_lengths() == (2, 4)  # no delimiter in front: counted as is
    arc = tasks.load_task("arc_easy", limit=3).items
    assert all(i.norm_lengths() == tuple(len(c.removeprefix(" ")) for c in i.choices) for i in arc)


def test_old_module_names_still_work():
    from course_utils import evaluate as old_evaluate
    from course_utils import tasks as old_tasks

    assert old_evaluate.score_multiple_choice is ev.score_multiple_choice and old_evaluate.perplexity is ev.perplexity
    assert old_tasks.load_task is ev.load_task and old_tasks.run_gsm8k is ev.run_gsm8k
