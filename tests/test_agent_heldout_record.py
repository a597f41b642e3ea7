"""data/agent_heldout.json: lesson 10's recording of all 60 held-out tasks is of the shipped adapter, complete,
self-consistent, and what the benchmark writes."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from course_utils import agents
from course_utils.machine import machine
from course_utils.paths import data_path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))


@pytest.fixture(scope="module")
def recorded() -> dict:
    return json.loads(data_path("agent_heldout.json").read_text())


def test_it_measured_the_shipped_adapter(recorded):
    """A retrained adapter without a new recording fails here: the lesson would show another adapter's figures."""
    assert recorded["adapter"] == agents.shipped_adapter().name
    assert recorded["gguf"]["after"] == agents.agent_gguf_path().name
    assert recorded["gguf"]["before"] == agents.agent_gguf_path(False).name


def test_every_held_out_task_is_there_once(recorded):
    tasks = agents.load_tasks(split="test")
    for setting in ("before", "after"):
        rows = recorded["outcomes"][setting]
        assert [r["id"] for r in rows] == [t["id"] for t in tasks]
        assert [r["expected"] for r in rows] == [str(t["answer"]) for t in tasks]
        assert [r["tool"] for r in rows] == [t["tool"] for t in tasks]


def test_outcomes_follow_from_the_answers(recorded):
    """A hand-edited verdict breaks these: 'correct' is recomputed from the recorded answer, the failure from the rest."""
    for setting, rows in recorded["outcomes"].items():
        for r in rows:
            assert r["correct"] == agents.answer_matches(r["answer"], r["expected"]), (setting, r)
            assert (r["failure"] is None) == r["correct"], (setting, r)
            assert r["failure"] is None or r["failure"] in agents.FAILURE_KINDS, (setting, r)
            expected_first = agents.FINAL if r["tool"] == agents.NO_TOOL else r["tool"]
            assert r["right_tool"] == (r["first_tool"] == expected_first), (setting, r)
            assert 1 <= r["steps"] <= agents.ADAPTER_STEPS, (setting, r)


def test_it_was_recorded_on_a_quiet_machine(recorded):
    for key in ("machine_start", "machine_end"):
        m = recorded[key]
        assert m["load_1min"] <= m["cores"], f"{key}: load {m['load_1min']} on {m['cores']} cores"


def test_the_benchmark_writes_what_the_lesson_reads(tmp_path):
    from agent_heldout import write_record

    outcomes = {"before": [{"id": "test-calc-001", "tool": "calculate", "correct": False}], "after": []}
    out = tmp_path / "run.json"
    write_record(out, outcomes, {"before": "b.gguf", "after": "a.gguf"}, "abc", machine())
    back = json.loads(out.read_text())
    assert back["outcomes"] == outcomes and back["adapter"] == "abc" and back["gguf"]["after"] == "a.gguf"
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]  # no temporary file left behind
