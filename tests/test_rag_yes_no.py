"""course_utils.rag.yes_no: yes/no read from the model's probabilities (the real SmolLM2), calibration
thresholds, paired comparisons; and rag.check_grounded, the citation check of lesson 07."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from course_utils import evaluation as ev
from course_utils import rag
from course_utils.errors import DataError, InvalidOption


@pytest.fixture(scope="module")
def hf():
    from course_utils.assets import load_hf_model

    return load_hf_model()


# ----------------------------------------------------------------------------- prompts
def test_the_prompt_is_lesson_09s_boolq_prompt():
    from course_utils.evaldata import boolq

    row = boolq()[0]
    assert rag.yes_no_prompt(row["question"], row["passage"]) == ev.boolq(limit=1)[0].context
    assert rag.yes_no_prompt("is it? ") == "Question: is it?\nAnswer:"
    with pytest.raises(DataError):
        rag.yes_no_prompt(None)


def test_content_free_prompts_carry_no_content():
    closed, opened = rag.content_free_prompts(False), rag.content_free_prompts(True)
    assert len(closed) == len(opened) == len(rag.CONTENT_FREE)
    assert all("N/A" in p or "[MASK]" in p or p.startswith("Question: ?") for p in closed)
    assert opened[0] == "N/A\nQuestion: N/A?\nAnswer:" and closed[0] == "Question: N/A?\nAnswer:"


def test_truncate_tokens_keeps_the_start(hf):
    _, tok = hf
    text = "The Nile is the longest river in Africa. " * 20
    short = rag.truncate_tokens(text, tok, 12)
    assert len(tok(short, add_special_tokens=False)["input_ids"]) <= 12 and text.startswith(short)
    assert rag.truncate_tokens("Short.", tok, 12) == "Short."
    with pytest.raises(InvalidOption):
        rag.truncate_tokens(text, tok, 0)


# ----------------------------------------------------------------------------- thresholds and pairs
def test_best_threshold_maximises_accuracy_on_the_calibration_split():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=200)
    gold = scores + rng.normal(scale=0.5, size=200) > 0.7  # the right threshold is near 0.7, not 0
    t = rag.best_threshold(scores, gold)
    best = max(((scores > c) == gold).mean() for c in np.linspace(-4, 4, 2001))
    assert ((scores > t) == gold).mean() == pytest.approx(best)
    assert t > 0.2


def test_best_threshold_can_say_always_yes_and_prefers_zero_on_ties():
    assert rag.best_threshold([-3.0, -2.0, -1.0], [True, True, True]) < -3.0  # everything above it: always yes
    assert rag.best_threshold([1.0, 2.0], [False, False]) > 2.0
    assert rag.best_threshold([-1.0, 1.0], [False, True]) == 0.0  # every threshold in (-1, 1) ties: 0 is chosen
    with pytest.raises(DataError):
        rag.best_threshold([0.1, 0.2], [True])


def test_paired_difference_is_the_mean_of_per_question_differences():
    rng = np.random.default_rng(1)
    a = rng.random(300) < 0.7
    b = a.copy()
    b[:30] = ~b[:30]  # b differs from a on 30 questions only
    d = rag.paired_difference(a, b)
    diffs = a.astype(float) - b.astype(float)
    assert d.mean == pytest.approx(diffs.mean()) and d.n == 300
    assert d.a_only + d.b_only == 30 and d.a_only - d.b_only == pytest.approx(300 * d.mean)
    assert d.stderr == pytest.approx(diffs.std(ddof=1) / math.sqrt(300))
    # pairing: far narrower than two independent standard errors of these (highly correlated) accuracies
    unpaired = math.hypot(ev.binomial_stderr(a.mean(), 300), ev.binomial_stderr(b.mean(), 300))
    assert d.stderr < 0.6 * unpaired
    assert d.ci95[0] < d.mean < d.ci95[1]
    same = rag.paired_difference(a, a)
    assert same.mean == 0 and same.stderr == 0
    assert rag.paired_difference(b, a).mean == pytest.approx(-d.mean)
    with pytest.raises(DataError):
        rag.paired_difference([1, 0], [1])


# ----------------------------------------------------------------------------- the scorer, with the real model
def test_log_odds_are_the_next_token_log_probabilities(hf, tmp_path):
    import torch

    model, tok = hf
    prompts = [rag.yes_no_prompt("is paris the capital of france", "Paris is the capital of France."), rag.yes_no_prompt("is the sky green")]
    scorer = rag.YesNoScorer(model, tok, name="smollm2|fp32", cache_dir=tmp_path)
    got = scorer.log_odds(prompts)
    yes, no = (tok(" yes", add_special_tokens=False)["input_ids"], tok(" no", add_special_tokens=False)["input_ids"])
    assert len(yes) == len(no) == 1
    with torch.inference_mode():
        for prompt, value in zip(prompts, got, strict=True):
            logits = model(input_ids=torch.tensor([tok(prompt, add_special_tokens=False)["input_ids"]])).logits[0, -1]
            logp = torch.log_softmax(logits.double(), dim=-1)
            assert value == pytest.approx(float(logp[yes[0]] - logp[no[0]]), abs=1e-3)
    assert scorer.scored == 2


def test_scores_are_cached_per_model_and_prompts_and_a_damaged_cache_is_reported(hf, tmp_path):
    model, tok = hf
    prompts = [rag.yes_no_prompt("is water wet"), rag.yes_no_prompt("is fire cold")]
    scorer = rag.YesNoScorer(model, tok, name="smollm2|fp32", cache_dir=tmp_path)
    first = scorer.log_odds(prompts)
    again = rag.YesNoScorer(model, tok, name="smollm2|fp32", cache_dir=tmp_path)
    assert np.array_equal(again.log_odds(prompts), first) and again.scored == 0  # read from disk
    other = rag.YesNoScorer(model, tok, name="another model", cache_dir=tmp_path)
    assert other.cache_path(prompts) != scorer.cache_path(prompts)
    assert scorer.cache_path(prompts[:1]) != scorer.cache_path(prompts)
    path = scorer.cache_path(prompts)
    assert json.loads(path.read_text())["n"] == 2
    path.write_text("{not json")
    with pytest.raises(DataError, match="damaged"):
        again.log_odds(prompts)
    assert path.read_text() == "{not json"  # reported, not overwritten
    with pytest.raises(DataError):
        scorer.log_odds([])


# ----------------------------------------------------------------------------- citations
def test_a_citation_counts_only_when_its_source_holds_the_details():
    sources = ["The Kindle Fire is a tablet computer developed by Amazon, released in November 2011.", "Bananas are yellow."]
    right = rag.check_grounded("The Kindle Fire was released by Amazon in November 2011 [1].", sources)
    made_up = rag.check_grounded("The Kindle Fire was released by Amazon on 2 November 2011 [1].", sources)
    wrong_source = rag.check_grounded("The Kindle Fire was released by Amazon in November 2011 [2].", sources)
    assert [c.supported for c in right] == [True] and right[0].unsupported == ()
    assert [c.supported for c in made_up] == [False] and made_up[0].unsupported == ("2",)
    assert "does not contain '2'" in made_up[0].why()
    assert [c.supported for c in wrong_source] == [False]
