"""Lesson 14's tools: calibration (ECE, reliability bins, abstention), the judge's parsing and agreement,
closed-book answers with their probabilities (on the real model)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from course_utils import calibration as cal
from course_utils import closed_book as cb
from course_utils import judging as jg
from course_utils.errors import DataError, InvalidOption


# ----------------------------------------------------------------------------- calibration
def random_outcomes(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    conf = rng.uniform(0, 1, n)
    conf[:5] = [0.0, 1.0, 0.1, 0.5, 0.9]  # exactly on bin edges, and the two ends
    right = (rng.uniform(0, 1, n) < conf ** 2).astype(float)
    return conf, right


@pytest.mark.parametrize("n_bins", [1, 5, 10, 15])
def test_reliability_bins_match_sklearn_calibration_curve(n_bins):
    from sklearn.calibration import calibration_curve

    conf, right = random_outcomes(300, seed=n_bins)
    prob_true, prob_pred = calibration_curve(right, conf, n_bins=n_bins, strategy="uniform")
    bins = [b for b in cal.reliability_bins(conf, right, n_bins) if b.count]
    assert np.allclose(prob_true, [b.accuracy for b in bins]) and np.allclose(prob_pred, [b.confidence for b in bins])
    assert sum(b.count for b in cal.reliability_bins(conf, right, n_bins)) == len(conf)  # 0.0 and 1.0 are counted


def test_ece_is_the_count_weighted_gap():
    conf, right = random_outcomes(200, seed=3)
    bins = cal.reliability_bins(conf, right, 10)
    want = sum(b.count / 200 * abs(b.accuracy - b.confidence) for b in bins if b.count)
    assert cal.expected_calibration_error(conf, right) == pytest.approx(want)
    assert cal.expected_calibration_error([0.7] * 10, [1] * 7 + [0] * 3) == pytest.approx(0.0)
    assert cal.expected_calibration_error([1.0, 0.0], [1, 0]) == 0.0


def test_bin_edges_go_to_the_lower_bin_and_one_to_the_last():
    assert cal.bin_index([0.0, 0.1, 0.2, 0.5, 1.0], 10).tolist() == [0, 0, 1, 4, 9]


def test_accuracy_coverage_keeps_ties_together():
    curve = cal.accuracy_coverage([0.9, 0.9, 0.5, 0.2], [1, 0, 1, 0])
    assert curve.thresholds.tolist() == [0.9, 0.5, 0.2]
    assert curve.coverage.tolist() == [0.5, 0.75, 1.0]
    assert curve.accuracy.tolist() == [0.5, pytest.approx(2 / 3), 0.5]
    assert curve.at(0.6) == (0.5, 0.5) and curve.at(0.5) == (0.75, pytest.approx(2 / 3))
    coverage, accuracy = curve.at(0.95)  # above every confidence: answers nothing
    assert coverage == 0.0 and math.isnan(accuracy)


def test_choose_threshold_takes_the_most_answers_that_reach_the_target():
    conf, right = [0.95, 0.9, 0.8, 0.7, 0.6], [1, 1, 0, 1, 0]
    assert cal.choose_threshold(conf, right, 1.0) == 0.9
    assert cal.choose_threshold(conf, right, 0.75) == 0.7  # 3 of 4 at >= 0.7
    assert cal.choose_threshold(conf, right, 0.0) == 0.6
    assert cal.choose_threshold([0.5, 0.4], [0, 0], 0.5) == math.inf
    with pytest.raises(InvalidOption):
        cal.choose_threshold(conf, right, 1.5)


def test_auroc_and_brier():
    from sklearn.metrics import roc_auc_score

    conf, right = random_outcomes(100, seed=7)
    assert cal.auroc(conf, right) == pytest.approx(roc_auc_score(right, conf))
    assert cal.brier_score([0.8, 0.3], [1, 0]) == pytest.approx((0.04 + 0.09) / 2)


@pytest.mark.parametrize("conf, right", [([], []), ([0.5], [1, 0]), ([1.2], [1]), ([-0.1], [0]), ([math.nan], [1]), ([0.5], [2])])
def test_bad_outcomes_get_one_clear_error(conf, right):
    with pytest.raises(DataError, match="Fix:"):
        cal.expected_calibration_error(conf, right)


def test_bad_bin_counts():
    for bad in (0, -1, 2.5, True, "10"):
        with pytest.raises(InvalidOption):
            cal.reliability_bins([0.5], [1], n_bins=bad)


# ----------------------------------------------------------------------------- the judge
def test_kappa_matches_sklearn_and_handles_constant_graders():
    from sklearn.metrics import cohen_kappa_score

    rng = np.random.default_rng(0)
    for _ in range(20):
        a = rng.integers(0, 2, 30).tolist()
        b = [x if rng.uniform() < 0.7 else 1 - x for x in a]
        assert jg.cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b))
    assert math.isnan(jg.cohen_kappa([1, 1, 1], [1, 1, 1]))  # chance agreement is 1: undefined
    assert jg.cohen_kappa([True, True, False], [True, True, True]) == 0.0  # one grader says yes to everything
    with pytest.raises(DataError):
        jg.cohen_kappa([1, 0], [1])


def test_kappa_interval_covers_the_estimate_and_shrinks_with_more_items():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 2, 400).tolist()
    b = [x if rng.uniform() < 0.8 else 1 - x for x in a]
    small, large = jg.kappa_interval(a[:40], b[:40], n_boot=500), jg.kappa_interval(a, b, n_boot=500)
    assert small.low < small.mean < small.high and large.stderr < small.stderr
    assert jg.kappa_interval(a[:40], b[:40], n_boot=500, seed=3) != jg.kappa_interval(a[:40], b[:40], n_boot=500, seed=4)


def test_verdicts_parse_and_bad_replies_are_named():
    assert jg.parse_verdict('{"verdict": "correct"}') is True
    assert jg.parse_pair('{ "better" : "B"}') == "B"
    for bad in ("correct", '{"verdict": "maybe"}', '{"answer": "A"}', "[1]"):
        with pytest.raises(DataError, match="Fix:"):
            jg.parse_verdict(bad)


def test_debiased_pair_keeps_only_verdicts_that_survive_the_swap():
    longer = lambda q, first, second: "A" if len(first) >= len(second) else "B"  # noqa: E731  a consistent preference
    assert jg.debiased_pair(longer, "q", "long answer", "short") == "A"
    assert jg.debiased_pair(longer, "q", "short", "long answer") == "B"
    assert jg.debiased_pair(lambda *_: "B", "q", "x", "y") == "tie"
    with pytest.raises(DataError):
        jg.debiased_pair(lambda *_: "first", "q", "x", "y")


def test_padding_only_adds_length():
    padded = jg.pad_answer("Paris")
    assert padded.startswith("Paris.") and len(padded) > 100 and jg.pad_answer("Paris.") == padded


def test_messages_carry_the_question_reference_and_candidate():
    user = jg.verdict_messages("Q?", "Rome", "Milan")[1]["content"]
    assert "Q?" in user and "Reference answer: Rome" in user and "Candidate answer: Milan" in user
    user = jg.pair_messages("Q?", "first one", "second one")[1]["content"]
    assert user.index("Answer A: first one") < user.index("Answer B: second one")


# ----------------------------------------------------------------------------- closed book
def test_closed_book_questions_carry_every_accepted_answer():
    tqa = cb.closed_book_questions("trivia_qa", limit=3)
    assert len(tqa) == 3 and "Sunset Boulevard" in tqa[0].answers and "Sunset Blvd" in tqa[0].answers
    nq = cb.closed_book_questions("nq_open", limit=2, start=1)
    assert nq[0].question == cb.closed_book_questions("nq_open", limit=2)[1].question
    with pytest.raises(InvalidOption):
        cb.closed_book_questions("squad")


def test_contains_answer_needs_whole_words():
    assert cb.contains_answer("The cache is set by COURSE_CACHE.", ["COURSE_CACHE"])
    assert not cb.contains_answer("Romeo and Juliet", ["Rome"])


def test_greedy_answers_match_the_backend_and_their_probabilities_match_the_scorer(llamacpp):
    from course_utils import evaluation as ev

    scorer = ev.LlamaCppScorer(None, n_ctx=512)
    try:
        prompts = [cb.few_shot_prompt(q) for q in ("What is the capital of Germany?", "Who painted the Mona Lisa?")]
        got = cb.answer_with_probability(scorer.llm, prompts)
        again = cb.answer_with_probability(scorer.llm, prompts[::-1])[::-1]  # another order, another cache: same numbers
        for prompt, answer, other in zip(prompts, got, again):
            assert answer.finished and 0 < answer.probability <= 1
            assert answer.text == llamacpp.complete(prompt, max_tokens=16, temperature=0.0, stop=["\n"]).text.strip()
            assert answer.logprobs == pytest.approx(other.logprobs, abs=1e-3)
            # the scorer of lesson 09 gives the same log-probability to the same continuation
            tokenize = lambda s: scorer.llm.tokenize(s.encode(), add_bos=False, special=False)  # noqa: E731
            ctx = tokenize(prompt)
            cont = tokenize(prompt + " " + answer.text + "\n")[len(ctx):]
            (total,), = scorer.score([], [ev.ChoiceGroup(0, [0], ctx, [cont])])
            assert total == pytest.approx(math.fsum(answer.logprobs), abs=0.05)
        assert "berlin" in got[0].text.lower()
    finally:
        scorer.close()
