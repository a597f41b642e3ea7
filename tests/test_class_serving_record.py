"""data/class_serving.json: the recording lesson 04 shows is complete, self-consistent, and what the benchmark writes."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pytest

from course_utils.machine import machine
from course_utils.paths import data_path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
ENGINES = {"llama-cpp-python", "llama-server", "course serve (llama-server)", "vllm"}


@pytest.fixture(scope="module")
def recorded() -> dict:
    return json.loads(data_path("class_serving.json").read_text())


def test_every_level_and_engine_is_there(recorded):
    cells = {(r["learners"], r["engine"]) for r in recorded["rows"]}
    assert cells == {(n, e) for n in (1, 4, 16, 32) for e in ENGINES}


def test_every_request_was_answered(recorded):
    for r in recorded["rows"]:
        ok, sent = map(int, r["requests"].split("/"))
        assert ok == sent >= max(8, 2 * r["learners"]), r


def test_ratios_follow_from_the_throughputs(recorded):
    """A hand-edited figure would break these: each ratio is its engine's tokens/s over llama-cpp-python's."""
    base = {r["learners"]: float(r["tokens/s"]) for r in recorded["rows"] if r["engine"] == "llama-cpp-python"}
    for r in recorded["rows"]:
        ratio = float(r["x llama-cpp-python"])
        assert ratio == pytest.approx(float(r["tokens/s"]) / base[r["learners"]], rel=0.05, abs=0.02), r
        assert float(r["p50 s"]) <= float(r["p95 s"]), r


def test_it_was_recorded_on_a_quiet_machine(recorded):
    for key in ("machine_start", "machine_end"):
        m = recorded[key]
        assert m["load_1min"] <= m["cores"], f"{key}: load {m['load_1min']} on {m['cores']} cores"


def test_the_benchmark_writes_what_the_lesson_reads(tmp_path):
    from class_serving import write_results

    rows = [{"learners": 1, "engine": "llama-cpp-python", "requests": "8/8", "tokens/s": "30", "p50 s": "0.5",
             "p95 s": "0.6", "TTFT s": "0.1", "x llama-cpp-python": "1.00"}]
    args = argparse.Namespace(tokens=32, parallel=32, ctx=512, rounds=2, threads=None)
    out = tmp_path / "run.json"
    write_results(out, rows, args, "SmolLM2-135M: Q4_1 GGUF", machine())
    back = json.loads(out.read_text())
    assert back["rows"] == rows and back["settings"]["tokens"] == 32
    assert back["machine_start"]["cores"] >= 1 and back["benchmark"] == "benchmarks/class_serving.py"
    assert not list(tmp_path.glob(".*"))  # no temporary file left beside it
