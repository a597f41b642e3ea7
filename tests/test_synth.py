"""Synthetic data: schema-constrained generation with the real model, validation, deduplication, LoRA format."""

from __future__ import annotations

import json

import jsonschema
import pytest

from course_utils.errors import InvalidOption
from course_utils.evaldata import boolq_passages
from course_utils.lora import load_examples
from course_utils.synth import (
    QA_SCHEMA,
    deduplicate,
    generate_qa,
    normalize_text,
    short_passage,
    to_lora_examples,
    validate_all,
    validate_record,
    write_jsonl,
)

PASSAGE = "Marie Curie was born in Warsaw in 1867. She won the Nobel Prize in Physics in 1903."


@pytest.mark.parametrize(("record", "problem"), [
    ({"question": "Where was Marie Curie born?", "answer": "Warsaw"}, None),
    ({"question": "In which year was she born?", "answer": "  1867. "}, None),  # spaces and punctuation aside
    ({"question": "Where was Marie Curie born?", "answer": "Paris"}, "answer not in passage"),
    ({"question": "Where was Marie Curie born", "answer": "Warsaw"}, "question does not end with '?'"),
    ({"question": "Was Marie Curie born in Warsaw?", "answer": "Warsaw"}, "question contains the answer"),
    ({"question": "Where was Marie Curie born?", "answer": ", "}, "answer has no letters or digits"),
    ({"question": "Where was Marie Curie born?", "answer": "War"}, "answer not in passage"),  # whole words only
    ({"question": "Where?", "answer": "Warsaw"}, "schema: 'Where?' is too short"),
    ({"question": "Where was Marie Curie born?"}, "schema: 'answer' is a required property"),
    ({"question": "Where was Marie Curie born?", "answer": ["Warsaw"]}, "schema: ['Warsaw'] is not of type 'string'"),
    ({"error": "invalid JSON (Unterminated string)"}, "invalid JSON (Unterminated string)"),
    ({"question": "What did the committee decide yesterday?", "answer": "Warsaw"}, "question shares no content word with the passage"),
    ({"question": "How many times was Marie Curie born?", "answer": "Warsaw"}, "question asks for a number, the answer has none"),
    ({"question": "In which year did Marie Curie live in Warsaw?", "answer": "Nobel Prize"}, "question asks for a date, the answer is none"),
    ({"question": "Who was born in Warsaw in the year?", "answer": "1867"}, "question asks for a person, the answer is a number"),
    ({"question": "When did Marie Curie win the prize?", "answer": "1903"}, None),
    ({"question": "What is the name of the year Marie Curie was born?", "answer": "1867"}, "question asks for a name, the answer is a number"),
    ("not a dict", "not a JSON object (str)"),
])
def test_validate_record(record, problem):
    problems = validate_record(record, PASSAGE)
    assert (problems[0] if problems else None) == problem


def test_validate_uses_the_records_own_passage():
    assert validate_record({"question": "Where was Marie Curie born?", "answer": "Warsaw", "passage": PASSAGE}) == []
    assert validate_record({"question": "Where was Marie Curie born?", "answer": "Warsaw"}) == ["no passage to check the answer against"]


def test_deduplicate_and_report():
    records = [
        {"question": "Where was Marie Curie born?", "answer": "Warsaw", "passage": PASSAGE},
        {"question": "where was marie curie born", "answer": "Warsaw", "passage": PASSAGE},  # same question
        {"question": "Which prize did she win in 1903?", "answer": "Nobel Prize in Physics", "passage": PASSAGE},
        {"question": "Which prize did she win?", "answer": "a medal", "passage": PASSAGE},
        {"error": "invalid JSON", "passage": PASSAGE},
    ]
    unique, dropped = deduplicate(records)
    assert dropped == 1 and len(unique) == 4
    report = validate_all(unique, duplicates=dropped)
    assert len(report.valid) == 2 and len(report.rejected) == 2 and report.total == 5
    assert report.pass_rate == pytest.approx(0.4)
    assert report.reasons == {"answer not in passage": 1, "invalid JSON": 1, "duplicate question": 1}
    assert "2/5 records usable (40%)" in report.summary()


def test_lora_format_round_trip(tmp_path):
    records = [{"question": f"Question number {i} about her?", "answer": "Warsaw", "passage": PASSAGE} for i in range(5)]
    examples = to_lora_examples(records)
    assert examples[0].response == "Warsaw" and PASSAGE in examples[0].prompt and "Question number 0" in examples[0].prompt
    path = write_jsonl(records, tmp_path / "synthetic.jsonl", test_fraction=0.2)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["split"] for r in rows] == ["train"] * 4 + ["test"]
    train, test = load_examples("train", path=path), load_examples("test", path=path)  # lesson 08's loader reads it
    assert len(train) == 4 and len(test) == 1 and train[0].prompt == examples[0].prompt
    assert not list(tmp_path.glob("*.tmp"))  # written atomically


def test_short_passage_and_normalize():
    assert short_passage(PASSAGE, sentences=1) == "Marie Curie was born in Warsaw in 1867."
    assert normalize_text("  Nobel-Prize, 1903!") == "nobelprize 1903"
    with pytest.raises(InvalidOption):
        generate_qa(object(), "one passage, not a list")  # type: ignore[arg-type]


def test_generation_follows_the_schema(llamacpp):
    passages = [short_passage(p) for p in boolq_passages(3)]
    records = generate_qa(llamacpp, passages, max_tokens=96)
    assert len(records) == 3
    for record, passage in zip(records, passages):
        assert record["passage"] == passage
        # the grammar makes every reply parse and match the schema, whatever the content
        assert "error" not in record, record["raw"]
        jsonschema.validate({k: record[k] for k in ("question", "answer")}, QA_SCHEMA)
        assert json.loads(record["raw"]) == {"question": record["question"], "answer": record["answer"]}
    report = validate_all(records)
    assert report.total == 3 and len(report.valid) + len(report.rejected) == 3


def test_spans_strategy_puts_the_answer_in_the_passage(llamacpp):
    from course_utils.synth import answer_candidates

    passages = [short_passage(p) for p in boolq_passages(5)[1:3]]
    records = generate_qa(llamacpp, passages, max_tokens=96, strategy="spans")
    for record, passage in zip(records, passages):
        assert "error" not in record, record
        assert record["answer"] in answer_candidates(passage)  # the grammar allowed nothing else
        assert "answer not in passage" not in validate_record(record)
    assert answer_candidates("no names or numbers here.") == []
    (empty,) = generate_qa(llamacpp, ["no names or numbers here."], strategy="spans")
    assert empty["error"] == "no candidate answers in the passage"
    with pytest.raises(InvalidOption, match="strategy"):
        generate_qa(llamacpp, passages, strategy="magic")


def test_question_schema_accepts_only_questions_that_fit_the_answer():
    import re

    from course_utils.synth import answer_kind, question_schema

    year = question_schema("1867")
    validator = jsonschema.Draft202012Validator(year)
    assert validator.is_valid({"question": "In which year was Marie Curie born?"})
    assert not validator.is_valid({"question": "Who was born in Warsaw?"})  # a year is not a person
    assert not validator.is_valid({"question": "In which year was she born"})  # no "?"
    assert not validator.is_valid({"question": 'In which year was "she" born?'})  # no quote to escape in JSON
    assert not validator.is_valid({"question": "When? Really, when was it?"})  # one "?" only, at the end
    name = question_schema("Warsaw")["properties"]["question"]["pattern"]
    assert re.match(name, "Where was Marie Curie born?") and not re.match(name, "How many cities are there?")
    assert [answer_kind(a) for a in ("2024", "312", "3.5", "Nobel Prize")] == ["year", "number", "number", "name"]


def test_ranked_candidates_look_only_at_the_passage():
    from course_utils.synth import answer_candidates, ranked_candidates

    passage = "Warsaw is the capital of Poland. Warsaw had 1,860,281 people in 2021, and the Vistula runs through it."
    ranked = ranked_candidates(passage)
    assert sorted(ranked) == sorted(answer_candidates(passage))  # the same spans, reordered
    assert ranked[-1] == "Warsaw"  # the passage's topic, named twice, comes last
    assert ranked[:2] == ["1,860,281", "2021"]  # numbers first


def test_clean_reports_duplicates_and_interval():
    from course_utils.synth import clean

    records = [{"question": "Where was Marie Curie born?", "answer": "Warsaw", "passage": PASSAGE}] * 3 + \
              [{"question": "When did Marie Curie win the prize?", "answer": "1903", "passage": PASSAGE}]
    report = clean(records)
    assert (len(report.valid), report.duplicates, report.total) == (2, 2, 4)
    low, high = report.interval()
    assert low < report.pass_rate == 0.5 < high


def test_pipeline_writes_questions_for_answers_the_code_picked(llamacpp):
    from course_utils.synth import generate_for_answers, question_schema, ranked_candidates

    passages = [short_passage(p) for p in boolq_passages(6)[3:6]] + ["it is so, as we all see."]
    run = generate_for_answers(llamacpp, passages, tries=2)
    assert len(run.delivered) == len(passages) and len(run.first_attempts) == len(passages)
    assert run.delivered[-1]["error"] == "no candidate answers in the passage" and run.delivered[-1]["raw"] == ""
    for i, passage in enumerate(passages[:-1]):
        tried = [r for r in run.attempts if r["passage_index"] == i]
        assert [r["attempt"] for r in tried] == list(range(1, len(tried) + 1)) and len(tried) <= 2
        assert [r["answer"] for r in tried] == ranked_candidates(passage)[:len(tried)]  # in the ranked order
        for r in tried:
            assert "error" not in r, r  # the grammar made every reply parse
            jsonschema.validate({"question": r["question"]}, question_schema(r["answer"]))
        passed = [not validate_record(r) for r in tried]
        assert True not in passed[:-1]  # it stops at the first record that passes
        assert run.delivered[i] == tried[-1]
    assert run.generations == len(run.attempts) - 1
    with pytest.raises(InvalidOption, match="tries"):
        generate_for_answers(llamacpp, passages, tries=0)


def test_number_words_are_numbers():
    from course_utils.synth import answer_kind, ranked_candidates

    passage = "In mathematics, parity is the property of an integer: it falls in one of two categories, even or odd."
    assert ranked_candidates(passage)[:2] == ["one", "two"] and answer_kind("two") == "number"
    assert validate_record({"question": "How many categories of integer are there?", "answer": "two"}, passage) == []
    assert validate_record({"question": "How many categories of integer are there?", "answer": "parity"}, passage) == \
        ["question asks for a number, the answer has none"]
