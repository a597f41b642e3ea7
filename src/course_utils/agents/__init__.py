"""Agents: a model that calls tools in a loop until it can answer. Taught in lesson 10.

The pieces, one module each, read in this order::

    tools.py          a plain function -> name, description, JSON schema; arguments checked
    builtin_tools.py  the calculator (ast, never eval), search over a RAG store, sandboxed Python
    policies.py       one step as JSON (the schema a grammar enforces); who writes the steps
    loop.py           the ReAct loop (thought -> action -> observation -> ... -> answer)
    measuring.py      tasks, scores, rates and failure kinds
    traces.py         a good agent's tool-call traces (train split) and the LoRA adapter trained on them
    team.py           several roles on one task: planner -> worker -> critic

Used together::

    calc = make_tool(calculate)                  # a plain function -> name, description, JSON schema
    tools = [calc, make_search_tool(store), make_python_tool()]
    agent = Agent(BackendPolicy(get_backend("auto")), tools, max_steps=4)
    run = agent.run("What is 17 times 23?")
    print(run.show())                            # thought -> action -> observation -> ... -> answer

* **Tools** are plain Python functions. :func:`tool_schema` reads the signature (type hints,
  defaults) and the docstring (first paragraph = description, ``Args:`` lines = parameter
  descriptions) with :mod:`inspect` and :mod:`typing` and writes the JSON schema a model sees.
* **Tool calls are JSON**: ``{"thought": ..., "tool": ..., "arguments": {...}}``. With
  ``grammar=True`` the backend constrains decoding to :func:`step_schema` (llama.cpp turns the JSON
  schema into a grammar and masks every token that would break it), so even a 135M model writes a
  parseable call naming a real tool with arguments of the right types. The grammar constrains the
  *format*, not the *judgement*: the model can still pick the wrong tool or the wrong numbers.
* **The loop** (ReAct: reason, act, observe) runs at most ``max_steps`` model calls. Every problem:
  text that is not JSON, an unknown tool, bad arguments, a tool that raises, the step limit: becomes
  an ``error`` line in the trace and an observation the model can react to. The loop never raises
  because of what the model wrote, and never runs forever.

>>> from course_utils import agents
>>> agents.calculate("17 * 23"), agents.tool_schema(agents.calculate)["parameters"]["required"]
(391, ['expression'])
"""

from __future__ import annotations

from typing import Any

from .builtin_tools import (
    HANDBOOK_FILE,
    MAX_EXPONENT,
    MAX_LENGTH,
    MAX_MAGNITUDE,
    calculate,
    handbook_store,
    load_handbook,
    make_python_tool,
    make_search_tool,
)
from .loop import SYSTEM_PROMPT, Agent, AgentRun, Step, describe_tools
from .measuring import (
    FAILURE_KINDS,
    NO_TOOL,
    SPLIT_TASKS_FILE,
    TASKS_FILE,
    TaskResult,
    answer_matches,
    by_tool,
    check_task,
    evaluate_agent,
    failure_counts,
    failure_kind,
    load_tasks,
    solved_interval,
    summarize,
)
from .policies import (
    STEP_MAX_TOKENS,
    BackendPolicy,
    LangChainPolicy,
    Policy,
    ScriptedPolicy,
    ToolCall,
    parse_step,
    step_schema,
    to_langchain,
)
from .team import CRITIC_PROMPT, PLANNER_PROMPT, Team, TeamRecord, critic_schema, plan_schema
from .tools import (
    FINAL,
    Tool,
    ToolError,
    json_type,
    make_tool,
    parse_docstring,
    tool_schema,
    validate_arguments,
)
from .traces import (
    ADAPTER_DIR,
    ADAPTER_PROMPT,
    ADAPTER_STEPS,
    TRACES_FILE,
    Trace,
    adapter_agent,
    adapter_key,
    agent_gguf,
    agent_gguf_path,
    apply_adapter,
    encode_trace,
    load_traces,
    near_duplicate,
    reference_traces,
    shipped_adapter,
    trace_batches,
)

__all__ = [
    "ADAPTER_DIR", "ADAPTER_PROMPT", "ADAPTER_STEPS", "TRACES_FILE", "Trace", "adapter_agent", "adapter_key", "agent_gguf", "agent_gguf_path", "apply_adapter",
    "encode_trace", "load_traces", "near_duplicate", "reference_traces", "shipped_adapter", "trace_batches",
    "FAILURE_KINDS", "FINAL", "HANDBOOK", "HANDBOOK_FILE", "MAX_EXPONENT", "MAX_LENGTH", "MAX_MAGNITUDE", "NO_TOOL",
    "SPLIT_TASKS_FILE", "STEP_MAX_TOKENS", "SYSTEM_PROMPT", "TASKS_FILE",
    "Agent", "AgentRun", "BackendPolicy", "LangChainPolicy", "Policy", "ScriptedPolicy", "Step", "TaskResult", "Tool",
    "ToolCall", "ToolError",
    "answer_matches", "by_tool", "calculate", "check_task", "describe_tools", "evaluate_agent", "failure_counts",
    "failure_kind", "handbook_store", "json_type", "load_handbook", "load_tasks", "make_python_tool",
    "make_search_tool", "make_tool", "parse_docstring", "parse_step", "solved_interval", "step_schema", "summarize", "to_langchain",
    "tool_schema", "validate_arguments",
    "CRITIC_PROMPT", "PLANNER_PROMPT", "Team", "TeamRecord", "critic_schema", "plan_schema",
]


def __getattr__(name: str) -> Any:  # HANDBOOK (a dict) is read from data/ when first used, not at import
    if name == "HANDBOOK":
        return load_handbook()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
