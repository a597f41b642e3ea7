"""Closing the synthetic-data loop: the SQuAD loader, SQuAD's scores, confidence intervals, the cached adapter."""

from __future__ import annotations

import math

import pytest
import torch

from course_utils.errors import DataError
from course_utils.evaluation.extractive import normalize_answer, squad_exact, squad_f1
from course_utils.evaluation.intervals import mean_interval, paired_difference, wilson_interval
from course_utils.evaluation.tasks import squad
from course_utils.lora import Example, lora_layers
from course_utils.synth import adapter_recipe, answer_reading, cached_adapter, lora_prompt


def test_squad_items_are_answerable_from_their_passage():
    items = squad()
    assert len(items) == 1000 and len({it.id for it in items}) == 1000
    short = squad(max_passage_chars=400)
    assert 0 < len(short) < 1000 and all(len(it.passage) <= 400 for it in short)
    assert squad(limit=5, max_passage_chars=400) == short[:5]
    for it in items[:200]:
        assert it.question and it.answers and "\nQuestion:" not in it.passage
        assert any(normalize_answer(a) in normalize_answer(it.passage) for a in it.answers), it


def test_squad_scores():
    assert normalize_answer("An  Apple, the pie!") == "apple pie"
    assert squad_exact("the Nobel Prize", ["Nobel prize"]) == 1.0 and squad_exact("Nobel", ["Nobel Prize"]) == 0.0
    assert squad_f1("Nobel", ["Nobel Prize"]) == pytest.approx(2 / 3)  # precision 1, recall 1/2
    assert squad_f1("Paris, France", ["London", "Paris"]) == pytest.approx(2 / 3)  # the best reference counts
    assert squad_f1("", ["Paris"]) == 0.0 and squad_f1("xyz", ["Paris"]) == 0.0
    with pytest.raises(DataError):
        squad_f1("Paris", "Paris")  # a string is not a list of references


def test_intervals():
    low, high = wilson_interval(0, 30)
    assert low == 0.0 and 0.0 < high < 0.15  # none passed, yet up to ~11% is plausible
    for k, n in [(1, 3), (36, 40), (299, 300)]:
        low, high = wilson_interval(k, n)
        assert 0 <= low < k / n < high <= 1
    wide, narrow = wilson_interval(8, 10), wilson_interval(80, 100)
    assert wide[1] - wide[0] > narrow[1] - narrow[0]  # more items, narrower interval
    est = mean_interval([1.0, 2.0, 3.0, 4.0])
    assert est.mean == 2.5 and est.stderr == pytest.approx(math.sqrt(5 / 3 / 4))
    # paired: the same shift on very different items is measured precisely
    before = [0.0, 0.9, 0.2, 0.7, 0.4]
    d = paired_difference(before, [b + 0.1 for b in before])
    assert d.mean == pytest.approx(0.1) and d.stderr == pytest.approx(0.0, abs=1e-12) and d.low > 0
    with pytest.raises(DataError):
        paired_difference([0.1], [0.2, 0.3])
    with pytest.raises(DataError):
        wilson_interval(5, 4)


def _examples():
    passage = "Marie Curie was born in Warsaw in 1867. She won the Nobel Prize in Physics in 1903."
    pairs = [("Where was Marie Curie born?", "Warsaw"), ("When was Marie Curie born?", "1867"),
             ("Which prize did she win in 1903?", "Nobel Prize"), ("When did she win the Nobel Prize?", "1903")]
    return [Example(lora_prompt({"passage": passage, "question": q}), a, i) for i, (q, a) in enumerate(pairs)]


def test_wilson_interval_always_holds_its_estimate_and_reaches_the_ends_exactly():
    for n in range(1, 120):
        for k in range(n + 1):
            low, high = wilson_interval(k, n)
            assert 0.0 <= low <= k / n <= high <= 1.0, (k, n)
        assert wilson_interval(n, n)[1] == 1.0 and wilson_interval(0, n)[0] == 0.0  # not a rounding hair inside


def test_cached_adapter_trains_once_then_reloads(hf_model, tmp_path):
    base, tokenizer = hf_model
    before = {k: v.clone() for k, v in base.state_dict().items()}
    settings = adapter_recipe(steps=2, batch_size=2, r=2, alpha=4.0)
    first = cached_adapter(base, tokenizer, _examples(), settings, cache_dir=tmp_path)
    assert not first.cached and len(first.losses) == 2 and first.folder.parent == tmp_path
    assert all(torch.equal(v, base.state_dict()[k]) for k, v in before.items())  # the base is untouched
    again = cached_adapter(base, tokenizer, _examples(), settings, cache_dir=tmp_path)
    assert again.cached and again.losses == [] and again.folder == first.folder
    ids = tokenizer("Passage: Warsaw.", return_tensors="pt").input_ids
    with torch.no_grad():
        assert torch.allclose(first.model(ids).logits, again.model(ids).logits, atol=1e-5)
        assert not torch.allclose(first.model(ids).logits, base(ids).logits, atol=1e-4)  # training changed something
    assert len(lora_layers(again.model)) == 4 * base.config.num_hidden_layers
    other = cached_adapter(base, tokenizer, _examples()[:3], settings, cache_dir=tmp_path)
    assert other.folder != first.folder and not other.cached  # other data, another adapter
    (first.folder / "adapter_model.safetensors").write_bytes(b"damaged")
    with pytest.raises(DataError, match="damaged"):
        cached_adapter(base, tokenizer, _examples(), settings, cache_dir=tmp_path)
    assert (first.folder / "adapter_model.safetensors").read_bytes() == b"damaged"  # reported, not overwritten
    with pytest.raises(DataError, match="batch"):
        cached_adapter(base, tokenizer, _examples()[:1], settings, cache_dir=tmp_path)


def test_answer_reading_scores_each_item(hf_model):
    base, tokenizer = hf_model
    items = squad(limit=3, max_passage_chars=400)
    scores = answer_reading(base, tokenizer, items, max_new_tokens=8)
    assert len(scores.answers) == len(scores.f1) == len(scores.exact) == 3
    for answer, f1, exact, item in zip(scores.answers, scores.f1, scores.exact, items):
        assert f1 == squad_f1(answer, item.answers) and exact == squad_exact(answer, item.answers)
        assert exact <= f1
    assert scores.mean_f1 == pytest.approx(sum(scores.f1) / 3)
    with pytest.raises(DataError):
        answer_reading(base, tokenizer, [])
