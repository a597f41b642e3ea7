"""Agents: tool schemas from signatures, the calculator, the sandboxed Python tool, the loop and its failures."""

from __future__ import annotations

import json
import typing

import pytest

from course_utils.agents import (
    FINAL,
    Agent,
    BackendPolicy,
    ScriptedPolicy,
    Tool,
    ToolError,
    answer_matches,
    calculate,
    evaluate_agent,
    json_type,
    load_tasks,
    make_python_tool,
    make_search_tool,
    make_tool,
    parse_step,
    step_schema,
    summarize,
    tool_schema,
    validate_arguments,
)
from course_utils.errors import InvalidOption


def convert(amount: float, currency: typing.Literal["EUR", "USD"], rounded: bool = True, note: str | None = None) -> str:
    """Convert an amount of money.

    Args:
        amount: how much money
        currency: the target currency
        rounded: round to cents
        note: anything to add
    """
    return f"{amount} {currency}"


def call(tool: str, **arguments) -> str:
    return json.dumps({"thought": "t", "tool": tool, "arguments": arguments})


# ----------------------------------------------------------------------------- schemas
def test_schema_comes_from_signature_and_docstring():
    schema = tool_schema(convert)
    assert schema["name"] == "convert" and schema["description"] == "Convert an amount of money."
    props = schema["parameters"]["properties"]
    assert props["amount"] == {"type": "number", "description": "how much money"}
    assert props["currency"] == {"type": "string", "enum": ["EUR", "USD"], "description": "the target currency"}
    assert props["rounded"]["type"] == "boolean" and props["rounded"]["default"] is True
    assert props["note"]["type"] == "string"
    assert schema["parameters"]["required"] == ["amount", "currency"]


def test_json_types_of_containers():
    assert json_type(list[int]) == {"type": "array", "items": {"type": "integer"}}
    assert json_type(dict[str, int]) == {"type": "object"}
    assert json_type(int | str) == {"anyOf": [{"type": "integer"}, {"type": "string"}]}


def test_schema_needs_hints_and_a_docstring():
    def no_doc(x: int) -> int:
        return x

    def no_hint(x):
        """Does something."""

    for fn in (no_doc, no_hint):
        with pytest.raises(InvalidOption):
            tool_schema(fn)


def test_validate_arguments_says_what_is_wrong():
    tool = make_tool(convert)
    assert validate_arguments(tool, {"amount": 3, "currency": "EUR"}) == {"amount": 3.0, "currency": "EUR"}
    with pytest.raises(ToolError, match="missing currency"):
        validate_arguments(tool, {"amount": 3})
    with pytest.raises(ToolError, match="unknown colour"):
        validate_arguments(tool, {"amount": 3, "currency": "EUR", "colour": "red"})
    with pytest.raises(ToolError, match="must be a number"):
        validate_arguments(tool, {"amount": "three", "currency": "EUR"})
    with pytest.raises(ToolError, match="one of"):
        validate_arguments(tool, {"amount": 3, "currency": "GBP"})


# ----------------------------------------------------------------------------- the calculator
@pytest.mark.parametrize(("expression", "value"), [("17 * 23", 391), ("2 ** 10", 1024), ("(45 + 55) * 12", 1200),
                                                   ("sqrt(729)", 27.0), ("1000 / 8", 125.0), ("-3 + 5 % 3", -1), ("1,234", 1234)])
def test_calculator_does_arithmetic(expression, value):
    assert calculate(expression) == value


@pytest.mark.parametrize("expression", ["__import__('os').system('ls')", "open('/etc/passwd').read()", "x + 1",
                                        "'a' * 3", "(1).__class__", "[1, 2]", "9 ** 9 ** 9", "lambda: 1", "print(1)", ""])
def test_calculator_refuses_anything_but_arithmetic(expression):
    with pytest.raises(ToolError):
        calculate(expression)


def test_calculator_reports_division_by_zero_as_a_tool_error():
    with pytest.raises(ToolError, match="cannot compute"):
        calculate("1 / 0")


# ----------------------------------------------------------------------------- the sandboxed python tool
@pytest.fixture(scope="module")
def python_tool() -> Tool:
    return make_python_tool(timeout_s=2.0)


def test_python_tool_runs_code(python_tool):
    assert python_tool(code="print(sum(range(101)))") == "5050"


def test_python_tool_kills_an_infinite_loop(python_tool):
    with pytest.raises(ToolError, match="stopped after 2 s"):
        python_tool(code="while True:\n    pass")


def test_python_tool_blocks_the_network(python_tool):
    code = "import socket\ns = socket.create_connection(('93.184.216.34', 80), timeout=1)\nprint('connected')"
    with pytest.raises(ToolError, match="network access is blocked"):
        python_tool(code=code)


def test_python_tool_blocks_writes_outside_its_folder(python_tool, tmp_path):
    target = tmp_path / "escaped.txt"
    with pytest.raises(ToolError, match="blocked"):
        python_tool(code=f"open({str(target)!r}, 'w').write('x')")
    assert not target.exists()
    assert python_tool(code="open('inside.txt', 'w').write('ok')\nprint(open('inside.txt').read())") == "ok"


def test_agent_trace_shows_a_sandbox_kill(python_tool):
    agent = Agent(ScriptedPolicy([call("run_python", code="while True: pass"), call(FINAL, answer="gave up")]), [python_tool])
    run = agent.run("loop forever")
    assert run.stopped == "answer" and "time limit" in run.steps[0].error
    assert "error:" in run.show()


# ----------------------------------------------------------------------------- parsing and the loop
def test_parse_step_finds_the_json_call_in_prose():
    got = parse_step('Sure. {"tool": "calculate", "arguments": {"expression": "1+1"}} done')
    assert (got.tool, got.arguments) == ("calculate", {"expression": "1+1"})
    with pytest.raises(ToolError, match="no tool call"):
        parse_step("The answer is 4.")
    with pytest.raises(ToolError, match="must be a JSON object"):
        parse_step('{"tool": "calculate", "arguments": "1+1"}')


def test_agent_uses_a_tool_then_answers():
    policy = ScriptedPolicy([call("calculate", expression="17 * 23"), call(FINAL, answer="391")])
    run = Agent(policy, [calculate]).run("What is 17 times 23?")
    assert run.stopped == "answer" and run.answer == "391" and run.tools_used == ["calculate"]
    assert run.steps[0].observation == "391"
    # the model saw the observation before answering
    assert any("Result of calculate: 391" in m["content"] for m in run.messages)


def test_agent_stops_at_the_step_limit():
    policy = ScriptedPolicy([call("calculate", expression="1 + 1")])  # never answers
    run = Agent(policy, [calculate], max_steps=3).run("loop")
    assert run.stopped == "step_limit" and run.answer is None
    assert len(run.steps) == 3 and policy.calls == 3
    assert "step limit" in run.show()


@pytest.mark.parametrize(("reply", "expected"), [
    (call("weather", city="Oslo"), "no tool called 'weather'"),
    (call("calculate", expr="1+1"), "missing expression"),
    (call("calculate", expression=42), "must be a string"),
    ('{"tool": "calculate", "arguments": {"expression": "1+', "no tool call found"),
    ("I think it is 4.", "no tool call found"),
    (call("calculate", expression="import os"), "not an arithmetic expression"),
    (call(FINAL, answer=""), "non-empty"),
])
def test_bad_calls_become_errors_in_the_trace(reply, expected):
    policy = ScriptedPolicy([reply, call(FINAL, answer="done")])
    run = Agent(policy, [calculate], max_steps=3).run("question")
    assert run.stopped == "answer" and run.answer == "done"
    assert expected in run.steps[0].error
    assert run.messages[3]["content"].startswith("Error:")  # the model is told what went wrong


def test_a_crashing_tool_is_reported_not_raised():
    def broken(x: int) -> int:
        """Always fails."""
        raise RuntimeError("disk on fire")

    run = Agent(ScriptedPolicy([call("broken", x=1), call(FINAL, answer="ok")]), [broken]).run("q")
    assert "RuntimeError: disk on fire" in run.steps[0].error and run.answer == "ok"


def test_a_failing_model_call_stops_the_loop_with_an_explanation():
    def policy(messages, schema):
        raise InvalidOption("the server went away", fix="restart it")

    run = Agent(policy, [calculate]).run("q")
    assert run.stopped == "policy_error" and "server went away" in run.show()


def test_agent_rejects_bad_settings():
    with pytest.raises(InvalidOption):
        Agent(ScriptedPolicy(["{}"]), [calculate], max_steps=0)

    def final_answer(answer: str) -> str:
        """Clashes with the reserved name."""
        return answer

    with pytest.raises(InvalidOption, match="reserved"):
        Agent(ScriptedPolicy(["{}"]), [final_answer])


def test_step_schema_ties_each_tool_to_its_arguments():
    schema = step_schema([make_tool(calculate)])
    names = [b["properties"]["tool"]["const"] for b in schema["anyOf"]]
    assert names == ["calculate", FINAL]
    assert schema["anyOf"][0]["properties"]["arguments"]["required"] == ["expression"]


# ----------------------------------------------------------------------------- measuring
def test_task_file_is_well_formed():
    tasks = load_tasks()
    assert len(tasks) >= 30 and len({t["id"] for t in tasks}) == len(tasks)
    assert {t["tool"] for t in tasks} == {"calculate", "search", "run_python"}
    for t in tasks:  # the calculator tasks' answers are right
        if t["tool"] == "calculate":
            assert t["answer"]


def test_answer_matching():
    assert answer_matches("It is 391.", "391") and answer_matches("about 14.70", "14.7")
    assert not answer_matches("It is 3910.", "391") and not answer_matches(None, "1")
    assert answer_matches("The password is Tidepool42", "tidepool42")


def test_evaluate_agent_scores_calls_and_answers():
    tasks = [{"id": "a", "question": "What is 2 + 2?", "tool": "calculate", "answer": "4"},
             {"id": "b", "question": "What is 3 + 3?", "tool": "calculate", "answer": "6"}]
    replies = iter([call("calculate", expression="2 + 2"), call(FINAL, answer="4"), call("search", query="x"), call(FINAL, answer="7")])
    agent = Agent(lambda messages, schema: next(replies), [calculate], max_steps=2)
    results = evaluate_agent(agent, tasks)
    assert [(r.right_tool, r.valid_args, r.correct) for r in results] == [(True, True, True), (False, False, False)]
    assert summarize(results)["right answer"] == 0.5


# ----------------------------------------------------------------------------- the real model
def test_real_model_with_grammar_writes_a_parseable_valid_call(llamacpp):
    tools = [make_tool(calculate)]
    agent = Agent(BackendPolicy(llamacpp, grammar=True, max_tokens=256), tools, max_steps=1)  # room for the longest valid step
    run = agent.run("What is 17 times 23?")
    step = run.steps[0]
    call_ = parse_step(step.raw)  # the grammar guarantees a parseable call...
    assert call_.tool in ("calculate", FINAL)
    if call_.tool == "calculate":  # ... with arguments that match the tool's schema
        validate_arguments(tools[0], call_.arguments)
    assert "no tool call found" not in (step.error or "")


def test_search_tool_over_a_real_store(tmp_path):
    from course_utils.agents import handbook_store

    with handbook_store(str(tmp_path / "store")) as store:
        search = make_search_tool(store, k=1)
        assert "tidepool42" in search(query="guest wifi password")
        run = Agent(ScriptedPolicy([call("search", query="mascot name"), call(FINAL, answer="Pebble")]), [search]).run("mascot?")
        assert "Pebble" in run.steps[0].observation


def test_last_step_schema_admits_only_the_answer():
    seen = []

    def policy(messages, schema):
        seen.append([b["properties"]["tool"]["const"] for b in schema["anyOf"]])
        return call("calculate", expression="1 + 1")

    run = Agent(policy, [calculate], max_steps=3).run("q")
    assert seen == [["calculate", FINAL], ["calculate", FINAL], [FINAL]]
    assert sum("last step" in m["content"] for m in run.messages) == 1
    seen.clear()
    Agent(policy, [calculate], max_steps=2, answer_on_last_step=False).run("q")
    assert seen == [["calculate", FINAL], ["calculate", FINAL]]


def test_lab_checks_tell_wrong_from_right():
    from course_utils.checks.agents import check_dispatch, check_schema

    assert check_schema(tool_schema).passed
    assert check_schema(lambda fn: {"name": fn.__name__, "description": "", "parameters": {}}).status == "failed"

    def raising(tools, reply):
        return str(tools[parse_step(reply).tool](**parse_step(reply).arguments))

    def todo(tools, reply):
        raise NotImplementedError

    assert check_dispatch(raising).status == "failed"
    assert check_dispatch(todo).status == "not done"
