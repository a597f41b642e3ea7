"""The course's multiple-choice scorer against lm-evaluation-harness, item by item (issue 19).

Both score the first N bundled ARC-Easy validation items with the same in-memory fp32 SmolLM2
(the course's cached conversion). lm-eval runs its own code: its HFLM model, its task machinery on
the same prompt, its acc / acc_norm rules; its predicted choices are read back from its own
``process_results`` (course_utils.evaluation.lmeval), not recomputed by course code.
"""

from __future__ import annotations

import pytest

from course_utils import evaluation as ev

pytest.importorskip("lm_eval", reason="lm-evaluation-harness is in the test extra: pip install -e '.[test]'")
from course_utils.evaluation import lmeval  # noqa: E402

N_ITEMS = 120  # >= 100 (issue 19); about half a minute for lm-eval on 2 idle cores
pytestmark = pytest.mark.timeout(3600)  # the fixture runs both harnesses: minutes when the machine is shared


@pytest.fixture(scope="module")
def both(hf_model):
    model, tokenizer = hf_model
    items = ev.load_task("arc_easy", limit=N_ITEMS).items
    ours = ev.score_multiple_choice(ev.HFScorer(model, tokenizer), items, task="arc_easy")
    theirs = lmeval.run_lm_eval(model, tokenizer, limit=N_ITEMS)
    return items, ours, theirs


def test_same_items_in_the_same_order(both):
    items, ours, theirs = both
    assert len(theirs.items) == len(ours.items) == N_ITEMS
    assert [t.id for t in theirs.items] == [s.id for s in ours.items] == [i.id for i in items]
    assert theirs.requests == sum(len(i.choices) for i in items)  # one request per choice: the same continuations


def test_log_likelihoods_agree_within_1e3(both):
    _, ours, theirs = both
    worst = max(abs(a - b) for s, t in zip(ours.items, theirs.items) for a, b in zip(s.logprobs, t.lls, strict=True))
    assert worst < 1e-3


def test_same_predicted_choice_for_acc_and_acc_norm_on_every_item(both):
    _, ours, theirs = both
    acc_diff = [s.id for s, t in zip(ours.items, theirs.items) if s.pred != t.pred]
    norm_diff = [s.id for s, t in zip(ours.items, theirs.items) if s.pred_norm != t.pred_norm]
    assert acc_diff == [] and norm_diff == []
    # lm-eval's own per-item verdicts and its aggregate numbers, too
    assert [float(s.pred == s.label) for s in ours.items] == [t.acc for t in theirs.items]
    assert [float(s.pred_norm == s.label) for s in ours.items] == [t.acc_norm for t in theirs.items]
    assert ours.acc == pytest.approx(theirs.acc, abs=1e-12) and ours.acc_norm == pytest.approx(theirs.acc_norm, abs=1e-12)


def test_acc_norm_divides_by_the_answer_without_its_leading_space(both):
    """The cause of the old disagreement: dividing by len(" " + answer) picks differently on some items."""
    items, ours, theirs = both
    assert all(s.norm_chars == tuple(len(c) - 1 for c in i.choices) for s, i in zip(ours.items, items))
    with_space = [ev.acc_norm_prediction(s.logprobs, s.n_chars) for s in ours.items]
    flipped = [s.id for s, w, t in zip(ours.items, with_space, theirs.items) if w != t.pred_norm]
    assert flipped, "on these items both rules agree: the test would not notice the old normalisation"


def test_lm_eval_predictions_come_from_lm_eval_itself(both):
    """Reading lm-eval's picks back through its process_results gives argmax for acc (a sanity check
    that the gold-swapping trick reads what lm-eval computed)."""
    _, _, theirs = both
    for t in theirs.items:
        assert t.pred == max(range(len(t.lls)), key=lambda i: (t.lls[i], -i))
        assert 0 <= t.pred_norm < len(t.lls)
