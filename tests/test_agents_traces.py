"""Tool-call traces and the agent's LoRA adapter (lesson 10): no peeking at held-out tasks, the right format."""

from __future__ import annotations

import json

import pytest

from course_utils import agents, lora
from course_utils.datafiles import data_path
from course_utils.errors import DataError, InvalidOption


@pytest.fixture(scope="module")
def traces() -> list[agents.Trace]:
    return agents.load_traces()


def _question(trace: agents.Trace) -> str:
    return next(m["content"] for m in trace.messages if m["role"] == "user")


def test_traces_come_from_train_tasks_only(traces):
    train = {t["id"] for t in agents.load_tasks(split="train")}
    held_out = {t["id"] for t in agents.load_tasks(split="test")}
    ids = {t.task_id for t in traces}
    assert ids <= train and not ids & held_out
    assert len(ids) >= 0.9 * len(train)  # nearly every train task gave a trace (a dropped one is a search miss)


def test_no_held_out_question_or_near_duplicate_in_the_traces(traces):
    questions = [_question(t) for t in traces]
    for task in agents.load_tasks(split="test") + agents.load_tasks():  # held out, and the 30 the lesson shows
        close = [q for q in questions if agents.near_duplicate(task["question"], q)]
        assert not close, f"{task['id']} {task['question']!r} is in the traces as {close[0]!r}"
    text = "\n".join(m["content"] for t in traces for m in t.messages if m["role"] == "user") + "\n".join(t.response for t in traces)
    for task in agents.load_tasks(split="test"):
        if task["tool"] == "run_python":  # held-out words and numbers never appear in a train program or question
            code = task["arguments"]["code"]
            assert code not in text, task["id"]


def test_every_trace_is_a_valid_step_and_ends_with_the_expected_answer(traces):
    answers = {t["id"]: t["answer"] for t in agents.load_tasks(split="train")}
    for trace in traces:
        call = agents.parse_step(trace.response)
        assert call.tool in {"calculate", "search", "run_python", "final_answer"}
        if call.tool == "final_answer":
            assert agents.answer_matches(call.arguments["answer"], answers[trace.task_id])
        assert trace.messages[0]["role"] == "system" and "{tools}" not in trace.messages[0]["content"]


def test_reference_traces_run_the_real_loop_and_tools():
    task = {"id": "x", "question": "What is 12 times 11?", "tool": "calculate", "answer": "132", "arguments": {"expression": "12 * 11"}}
    first, second = agents.reference_traces([task], [agents.calculate])
    assert json.loads(first.response) == {"tool": "calculate", "arguments": {"expression": "12 * 11"}}
    assert second.messages[-1]["content"].startswith("Result of calculate: 132")  # the tool really ran
    assert "last step" in second.messages[-1]["content"]  # the loop's own last-step note, as at test time
    wrong = dict(task, answer="133")  # the tool's result does not hold the expected answer: no trace
    assert agents.reference_traces([wrong], [agents.calculate]) == []
    none_task = {"id": "y", "question": "What colour is grass?", "tool": "none", "answer": "green", "arguments": {"answer": "green"}}
    [only] = agents.reference_traces([none_task], [agents.calculate])
    assert json.loads(only.response)["tool"] == "final_answer"
    with pytest.raises(DataError, match="arguments"):
        agents.reference_traces([{k: v for k, v in task.items() if k != "arguments"}], [agents.calculate])


def test_the_traces_file_is_what_the_generator_writes_for_calculator_tasks(traces):
    calc = [t for t in agents.load_tasks(split="train") if t["tool"] == "calculate"][:5]
    # the lesson's three tools (the system prompt lists all three); search is never called for calculator tasks
    tools = [agents.make_tool(agents.calculate), agents.make_search_tool(None, k=1), agents.make_python_tool(timeout_s=5.0)]
    made = agents.reference_traces(calc, tools)
    stored = [t for t in traces if t.task_id in {c["id"] for c in calc}]
    assert [(t.messages, t.response) for t in made] == [(t.messages, t.response) for t in stored]


def test_near_duplicate():
    assert agents.near_duplicate("What is the capital of Spain?", "what is the capital of spain")
    assert agents.near_duplicate("Which animal is the office mascot?", "Which animal is the office's mascot?")
    assert not agents.near_duplicate("What is 48 times 73?", "What is 41 times 73?")
    assert not agents.near_duplicate("What colour is snow?", "What colour is grass?")
    # same template, other numbers: another task (the split's design), not a copy
    assert not agents.near_duplicate("Use Python to compute the sum of the numbers from 1 to 60.", "Use Python to compute the sum of the numbers from 1 to 61.")
    assert agents.near_duplicate("Use Python to compute the sum of the numbers from 1 to 60.", "Use Python to compute the sum of all the numbers from 1 to 60.")


class _Tokenizer:
    """Just enough of a tokenizer: one id per character, a chat template that joins the turns."""

    eos_token, pad_token_id, eos_token_id = "$", 0, 36

    def apply_chat_template(self, messages, tokenize, add_generation_prompt):
        return "".join(f"<{m['role']}>{m['content']}" for m in messages) + ("<assistant>" if add_generation_prompt else "")

    def encode(self, text, add_special_tokens=False):
        return [ord(c) for c in text]


def test_encode_trace_trains_only_on_the_reply():
    trace = agents.Trace("t", [{"role": "user", "content": "hi"}], "ok")
    ids, labels = agents.encode_trace(_Tokenizer(), trace)
    n_prompt = len("<user>hi<assistant>")
    assert labels[:n_prompt] == [lora.IGNORE_INDEX] * n_prompt
    assert labels[n_prompt:] == ids[n_prompt:] == [ord(c) for c in "ok$"]
    batch = next(agents.trace_batches(_Tokenizer(), [trace, agents.Trace("u", [{"role": "user", "content": "a longer one"}], "x")], batch_size=2))
    assert batch.input_ids.shape[0] == 2 and batch.n_targets == len("ok$") + len("x$")


def test_apply_adapter_needs_the_transformers_backend():
    class Llama:
        name = "llamacpp"

    with pytest.raises(InvalidOption, match="transformers"):
        agents.apply_adapter(Llama())


def test_the_shipped_adapter_is_small_and_named_by_its_traces_and_recipe():
    folder = agents.shipped_adapter()
    log = json.loads((folder / "training.json").read_text())
    assert folder.name == agents.adapter_key(data_path(agents.TRACES_FILE), log["recipe"])
    assert (folder / "adapter_model.safetensors").stat().st_size < 8e6
    assert log["losses"][-1] < 0.5 * log["losses"][0]  # it learned the traces


def _fake_adapter(folder, weights: bytes):
    folder.mkdir()
    (folder / "adapter_config.json").write_text('{"peft_type": "LORA"}')
    (folder / "adapter_model.safetensors").write_bytes(weights)
    return folder


def test_agent_gguf_is_named_by_the_adapter_it_holds(tmp_path):
    one, two = _fake_adapter(tmp_path / "one", b"1"), _fake_adapter(tmp_path / "two", b"2")
    cache = tmp_path / "cache"
    names = {agents.agent_gguf_path(a, cache_dir=cache).name for a in (one, two, False)}
    assert len(names) == 3  # another adapter, or none, is another file: a retrained adapter never reuses a stale GGUF
    assert agents.agent_gguf_path(one, cache_dir=cache) == agents.agent_gguf_path(one, cache_dir=cache)
    assert agents.agent_gguf_path(one, outtype="f16", cache_dir=cache) != agents.agent_gguf_path(one, cache_dir=cache)
    assert agents.agent_gguf_path(None, cache_dir=cache) == agents.agent_gguf_path(agents.shipped_adapter(), cache_dir=cache)


def test_agent_gguf_returns_the_cached_file_without_exporting_again(tmp_path):
    adapter = _fake_adapter(tmp_path / "a", b"weights")  # not loadable: exporting it would raise
    cached = agents.agent_gguf_path(adapter, cache_dir=tmp_path)
    cached.write_bytes(b"GGUF")
    assert agents.agent_gguf(adapter, cache_dir=tmp_path) == cached and cached.read_bytes() == b"GGUF"


def test_agent_gguf_refuses_a_folder_that_is_no_adapter(tmp_path):
    with pytest.raises(DataError, match="not a LoRA adapter folder"):
        agents.agent_gguf(tmp_path, cache_dir=tmp_path)
