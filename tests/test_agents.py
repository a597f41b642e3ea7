"""Agents: tool schemas from signatures, the calculator, the sandboxed Python tool, the loop and its failures."""

from __future__ import annotations

import json
import re
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


# ----------------------------------------------------------------------------- the package and its examples
def test_every_agents_module_runs_its_examples():
    import doctest
    import importlib

    for name in ("", ".tools", ".builtin_tools", ".policies", ".loop", ".measuring"):
        module = importlib.import_module(f"course_utils.agents{name}")
        assert "lesson 10" in module.__doc__
        result = doctest.testmod(module)
        assert result.failed == 0 and result.attempted > 0, name


def test_the_package_keeps_every_name_lessons_use():
    from course_utils import agents

    for name in agents.__all__:
        assert getattr(agents, name) is not None, name
    assert agents.HANDBOOK["wifi"] == agents.load_handbook()["wifi"] and len(agents.HANDBOOK) == 10


def test_default_step_budget_holds_the_longest_step_the_grammar_admits(llamacpp):
    from course_utils.agents import STEP_MAX_TOKENS

    tools = [make_tool(calculate), make_search_tool(None), make_python_tool()]
    longest = 0
    for branch in step_schema(tools)["anyOf"]:
        props = branch["properties"]
        arguments = {k: "7" * v["maxLength"] for k, v in props["arguments"]["properties"].items()}  # a digit is a token
        step = json.dumps({"thought": "7" * props["thought"]["maxLength"], "tool": props["tool"]["const"], "arguments": arguments})
        longest = max(longest, llamacpp.count_tokens(step))
    assert longest <= STEP_MAX_TOKENS
    assert BackendPolicy(llamacpp).max_tokens == STEP_MAX_TOKENS


# ----------------------------------------------------------------------------- bad input: one clear line each
def one_line(err: BaseException) -> str:
    text = str(err)
    assert "\n" not in text and "Fix:" in text, text
    return text


def test_tools_refuse_wrong_argument_types_with_a_clear_line():
    def place(count: int, tags: list[str], ratio: float = 1.0) -> str:
        """Place some things."""
        return f"{count} {tags} {ratio}"

    tool = make_tool(place)
    assert tool(count=3.0, tags=["a"]) == "3 ['a'] 1.0"  # JSON's 3.0 is an integer
    for arguments, message in [({"count": 2.5, "tags": []}, "must be an integer"),
                               ({"count": True, "tags": []}, "must be an integer"),
                               ({"count": 1, "tags": ["a", 2]}, "'tags[1]' of place must be a string"),
                               ({"count": 1, "tags": "a"}, "must be an array"),
                               ({"count": 1, "tags": [], "ratio": float("nan")}, "finite number")]:
        with pytest.raises(ToolError, match=re.escape(message)) as err:
            tool(**arguments)
        one_line(err.value)
    with pytest.raises(ToolError, match="named arguments only") as err:
        tool(3, ["a"])
    one_line(err.value)


def test_unknown_tool_is_a_tool_error_naming_the_real_ones():
    from course_utils.agents import ToolCall

    agent = Agent(ScriptedPolicy(["{}"]), [calculate])
    with pytest.raises(ToolError, match="no tool called 'weather'") as err:
        agent.call_tool(ToolCall("weather", {"city": "Oslo"}))
    assert "calculate, final_answer" in one_line(err.value)
    with pytest.raises(ToolError, match="must be a tool's name"):
        parse_step('{"tool": ["calculate"], "arguments": {}}')


def test_schemas_from_functions_that_cannot_be_tools():
    def positional(x: int, /) -> int:
        """Positional only."""
        return x

    def odd_hint(x: complex) -> complex:
        """A complex number."""
        return x

    def bad_reference(x: NoSuchType) -> int:  # noqa: F821
        """Refers to a type that does not exist."""
        return 1

    cases = [(lambda x: x, "cannot be a tool name"), (positional, "positional-only"), (odd_hint, "parameter 'x' of 'odd_hint'"),
             (bad_reference, "cannot read the signature"), (dict, "must be a function"), ("calculate", "must be a function")]
    for fn, message in cases:
        with pytest.raises(InvalidOption, match=re.escape(message)) as err:
            tool_schema(fn)
        one_line(err.value)
    with pytest.raises(InvalidOption, match="cannot be a tool name"):
        make_tool(calculate, name="my calculator")


def test_agent_refuses_bad_tool_lists_and_policies():
    for kwargs, message in [({"tools": calculate}, "must be a list"), ({"tools": [calculate, calculate]}, "two tools are called 'calculate'"),
                            ({"policy": "llamacpp"}, "policy must be a backend or a function"),
                            ({"system_prompt": "no slot"}, "{tools} slot")]:
        arguments = {"policy": ScriptedPolicy(["{}"]), "tools": [calculate], **kwargs}
        with pytest.raises(InvalidOption, match=re.escape(message)) as err:
            Agent(**arguments)
        one_line(err.value)
    with pytest.raises(InvalidOption, match="at least one reply"):
        ScriptedPolicy([])
    with pytest.raises(InvalidOption, match="max_tokens"):
        BackendPolicy(object.__new__(type("FakeBackend", (), {"chat": lambda self: None})), max_tokens=0)
    with pytest.raises(InvalidOption, match="needs a course backend"):
        BackendPolicy("llamacpp")


def test_a_policy_that_returns_no_text_is_an_error_in_the_trace():
    replies = iter([None, call(FINAL, answer="ok")])
    run = Agent(lambda messages, schema: next(replies), [calculate]).run("q")
    assert run.answer == "ok" and "must be text" in run.steps[0].error


def test_a_tool_returning_what_json_cannot_hold_still_gives_an_observation():
    def tags() -> dict:
        """Returns a set inside a dict."""
        return {"tags": {"b"}}

    run = Agent(ScriptedPolicy([call("tags"), call(FINAL, answer="ok")]), [tags]).run("q")
    assert run.steps[0].observation == '{"tags": "{\'b\'}"}' and run.answer == "ok"


@pytest.mark.parametrize(("expression", "message"), [
    ("2 ** 1000", "too big"), ("10 ** 10 ** 10", "too big"), ("(10 ** 60) * (10 ** 60)", "reasonable size"),
    ("9" * 150, "reasonable size"), ("1e999", "reasonable size"), ("exp(1000)", "cannot compute"),
    ("1 / 0", "division by zero"), ("5 % 0", "cannot compute"), ("7 // 0", "cannot compute"), ("0 ** -1", "cannot compute"),
    ("sqrt(-1)", "math domain error"), ("log(0)", "cannot compute"),
    ("x * 2", "the name 'x'"), ("pi.real", "attribute access"), ("(1).__class__", "attribute access"), ("[1][0]", "indexing"), ("[1, 2]", "a list"),
    ("'7' * 3", "(text)"), ("True + 1", "the value True"), ("1,234 + 5", "commas"), ("round(2.5, ndigits=1)", "keyword"),
    ("1 < 2", "comparisons"), ("1 +" * 100 + " 1", "too long"), ("(" * 120 + "1" + ")" * 79, "not an arithmetic expression"),
    ("-" * 150 + "1", None), ("2 **", "not an arithmetic expression"), ("   ", "needs an arithmetic expression"),
])
def test_calculator_bad_input_gets_one_clear_line(expression, message):
    if message is None:  # a long but legal chain of signs is fine
        assert calculate(expression) == 1
        return
    with pytest.raises(ToolError) as err:
        calculate(expression)
    assert message in one_line(err.value)


def test_calculator_rejects_non_text_and_keeps_big_legal_numbers():
    with pytest.raises(ToolError, match="as text"):
        calculate(42)
    assert calculate("2 ** 100") == 2**100 and calculate("1e100") == 1e100


def test_a_tasks_file_with_a_bad_line_names_the_file_and_line(tmp_path):
    from course_utils.errors import DataError

    good = {"id": "a", "question": "What is 2 + 2?", "tool": "calculate", "answer": "4"}
    cases = [("not json", "line 2 is not JSON"), (json.dumps({"id": "b", "question": "q?"}), "line 2 needs the keys"),
             (json.dumps({**good, "id": "b", "question": " "}), "line 2 needs a non-empty text 'question'"),
             (json.dumps({**good, "id": "b", "answer": True}), "line 2 needs an expected 'answer'"),
             (json.dumps({**good, "id": "b", "tool": 3}), "line 2 needs a non-empty text 'tool'"),
             (json.dumps(good), "task id 'a' more than once")]
    for line, message in cases:
        path = tmp_path / "tasks.jsonl"
        path.write_text(json.dumps(good) + "\n" + line + "\n", encoding="utf-8")
        with pytest.raises(DataError, match=re.escape(message)) as err:
            load_tasks(str(path))
        assert "tasks.jsonl" in one_line(err.value)
    (tmp_path / "empty.jsonl").write_text("\n", encoding="utf-8")
    with pytest.raises(DataError, match="holds no tasks"):
        load_tasks(str(tmp_path / "empty.jsonl"))
    with pytest.raises(DataError, match="cannot read"):
        load_tasks(str(tmp_path / "missing.jsonl"))
    one = tmp_path / "one.jsonl"
    one.write_text(json.dumps(good) + "\n", encoding="utf-8")
    with pytest.raises(InvalidOption, match="no split 'test'"):
        load_tasks(str(one), split="test")


def test_evaluate_agent_refuses_tasks_it_cannot_score():
    from course_utils.errors import DataError

    agent = Agent(ScriptedPolicy([call(FINAL, answer="4")]), [calculate])
    with pytest.raises(InvalidOption, match="expect the tool 'weather'") as err:
        evaluate_agent(agent, [{"id": 1, "question": "Rain?", "tool": "weather", "answer": "no"}])
    one_line(err.value)
    with pytest.raises(DataError, match="task 1 needs the keys"):
        evaluate_agent(agent, [{"question": "What is 2 + 2?"}])


def test_a_bad_handbook_file_is_reported(tmp_path):
    from course_utils.agents import load_handbook
    from course_utils.errors import DataError

    path = tmp_path / "handbook.jsonl"
    path.write_text('{"topic": "a", "text": "x"}\n{"topic": "a", "text": "y"}\n', encoding="utf-8")
    with pytest.raises(DataError, match="topic 'a' twice") as err:
        load_handbook(str(path))
    one_line(err.value)


# ----------------------------------------------------------------------------- failure kinds
def test_failure_kinds_name_why_a_task_failed():
    from course_utils.agents import failure_counts, failure_kind

    task = {"id": "t", "question": "What is 17 times 23?", "tool": "calculate", "answer": "391"}
    scripts = {
        None: [call("calculate", expression="17 * 23"), call(FINAL, answer="391")],
        "no call": ["It is 391, I think.", call(FINAL, answer="390")],
        "wrong tool": [call(FINAL, answer="381")],
        "bad arguments": [call("calculate", expression="17 times 23"), call(FINAL, answer="17")],
        "step limit": [call("calculate", expression="17 * 23")],
        "wrong final answer": [call("calculate", expression="17 * 23"), call(FINAL, answer="It is 17 * 23.")],
    }
    results = []
    for kind, script in scripts.items():
        [result] = evaluate_agent(Agent(ScriptedPolicy(script), [calculate], max_steps=2, answer_on_last_step=False), [task])
        assert failure_kind(result) == kind, (kind, result.run.show())
        results.append(result)
    assert failure_counts(results) == {"solved": 1, "no call": 1, "wrong tool": 1, "bad arguments": 1, "step limit": 1, "wrong final answer": 1}


def test_a_no_tool_task_expects_an_answer_at_once():
    from course_utils.agents import NO_TOOL, by_tool

    task = {"id": "n", "question": "What is the capital of Germany?", "tool": NO_TOOL, "answer": "Berlin"}
    [direct] = evaluate_agent(Agent(ScriptedPolicy([call(FINAL, answer="Berlin")]), [calculate]), [task])
    [detour] = evaluate_agent(Agent(ScriptedPolicy([call("calculate", expression="1"), call(FINAL, answer="Berlin")]), [calculate]), [task])
    assert direct.right_tool and direct.correct and not detour.right_tool and detour.correct
    assert by_tool([direct, detour])[NO_TOOL]["right tool"] == 0.5


# ----------------------------------------------------------------------------- the generated train / held-out split
def _generator():
    import importlib.util

    from course_utils.paths import data_path

    spec = importlib.util.spec_from_file_location("make_agent_tasks", data_path("make_agent_tasks.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_split_file_is_what_its_seeded_script_writes():
    from course_utils.paths import data_path

    rows = _generator().build_rows()
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    assert data_path("agent_task_splits.jsonl").read_text(encoding="utf-8") == text


def test_held_out_tasks_are_unseen():
    from course_utils.agents import NO_TOOL

    train, test = load_tasks(split="train"), load_tasks(split="test")
    lesson = {t["question"] for t in load_tasks()}
    assert len(test) >= 50 and len(train) >= 3 * len(test)
    assert {t["tool"] for t in test} == {t["tool"] for t in train} == {"calculate", "search", "run_python", NO_TOOL}
    assert not {t["question"] for t in test} & ({t["question"] for t in train} | lesson)
    assert not {t["question"] for t in train} & lesson
    # a held-out fact, word or number is asked about nowhere else
    facts = {fact: answer for fact, _, answer, _ in _generator().FACTS}
    test_answers = {t["answer"] for t in test if t["tool"] == "search"}
    seen_answers = {t["answer"] for t in train + load_tasks() if t["tool"] == "search"}
    assert len([f for f, a in facts.items() if a in test_answers and a not in seen_answers]) >= 8
    words = _generator().WORDS
    assert not any(w in t["question"] for t in train for w in words["test"])


def test_reference_calls_give_the_expected_answers():
    from course_utils.agents import load_handbook

    handbook = " ".join(load_handbook().values()).lower()
    python = make_python_tool(timeout_s=5.0)
    for task in load_tasks(split="test") + load_tasks(split="train")[:40]:
        if task["tool"] == "calculate":
            assert answer_matches(str(calculate(task["arguments"]["expression"])), task["answer"]), task
        elif task["tool"] == "search":
            assert task["answer"].lower() in handbook, task
        elif task["tool"] == "run_python" and task["split"] == "test":  # every held-out program, in the sandbox
            assert answer_matches(python(**task["arguments"]), task["answer"]), task


def test_solved_interval_is_wilson_and_brackets_the_rate():
    from types import SimpleNamespace

    from course_utils.agents import solved_interval

    def results(k, n):
        return [SimpleNamespace(correct=i < k) for i in range(n)]

    rate, low, high = solved_interval(results(12, 16))
    assert rate == 0.75 and low < rate < high
    # Wilson's interval for 12 of 16 at 95%, computed from its formula
    z, p, n = 1.959963984540054, 0.75, 16
    centre, half = (p + z * z / (2 * n)) / (1 + z * z / n), z / (1 + z * z / n) * ((p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5)
    assert abs(low - (centre - half)) < 1e-9 and abs(high - (centre + half)) < 1e-9
    assert solved_interval(results(0, 8))[1] == 0.0 and solved_interval(results(8, 8))[2] == 1.0
    assert solved_interval(results(12, 16), confidence=0.99)[1] < low  # more confidence, wider interval
