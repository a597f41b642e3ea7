"""The crewai side of benchmarks/crewai_team.py. It runs in crewai's own environment, never the course's.

crewai 1.15.30 pins ``openai<3`` and ``pydantic<2.13``, which the course's environment cannot take, so
``tools/install.sh --crewai`` gives it a venv of its own (``.venv-crewai``). This script imports only
the standard library and crewai. It reads one JSON object on stdin:

    {"base_url": "http://127.0.0.1:PORT/v1", "tools_url": "http://127.0.0.1:PORT",
     "tools": [{"name", "description", "parameters"}], "mode": "single" | "crew",
     "tasks": [{"id", "question"}], "max_iter": 3}

and writes one line per task to stdout: ``RESULT {"id", "answer", "seconds", "error"}`` (crewai prints
its own lines there too). The tools are
the course's own (calculator, handbook search, sandboxed Python): each crewai tool posts its arguments
to ``tools_url`` and returns what the course's tool returned, so both sides call the same code.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.request
from typing import Any

os.environ.setdefault("CREWAI_DISABLE_TELEMETRY", "true")  # nothing leaves the machine
os.environ.setdefault("OTEL_SDK_DISABLED", "true")
os.environ.setdefault("CREWAI_TRACING_ENABLED", "false")

from crewai import LLM, Agent, Crew, Process, Task  # noqa: E402
from crewai.tools import BaseTool  # noqa: E402
from pydantic import Field, create_model  # noqa: E402

JSON_TYPES = {"string": str, "number": float, "integer": int, "boolean": bool}


def remote_tool(spec: dict[str, Any], tools_url: str) -> BaseTool:
    """A crewai tool with the course tool's name, description and arguments, which calls the course tool."""
    properties = spec["parameters"].get("properties", {})
    fields = {name: (JSON_TYPES.get(p.get("type"), str), Field(description=p.get("description", name)))
              for name, p in properties.items()}
    schema = create_model(f"{spec['name']}_arguments", **fields)

    def run(self: BaseTool, **arguments: Any) -> str:
        request = urllib.request.Request(f"{tools_url}/{spec['name']}", data=json.dumps(arguments).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as reply:
            return json.loads(reply.read())["observation"]

    cls = type(f"{spec['name']}_tool", (BaseTool,), {"_run": run, "__annotations__": {"args_schema": type[Any]}})
    return cls(name=spec["name"], description=spec["description"], args_schema=schema)


def single(llm: LLM, tools: list[BaseTool], question: str, max_iter: int) -> str:
    """One crewai agent with the three tools and one task: the counterpart of the course's single agent."""
    agent = Agent(role="Assistant", goal="Answer the user's question correctly, using a tool when it helps",
                  backstory="You answer questions for a company, with a calculator, a handbook search and Python.",
                  tools=tools, llm=llm, max_iter=max_iter, allow_delegation=False, verbose=False)
    task = Task(description=question, expected_output="The answer, in a few words", agent=agent)
    return str(Crew(agents=[agent], tasks=[task], process=Process.sequential, verbose=False).kickoff())


def crew(llm: LLM, tools: list[BaseTool], question: str, max_iter: int) -> str:
    """planner -> worker -> critic as a sequential crew: the counterpart of ``course_utils.agents.Team``."""
    names = ", ".join(t.name for t in tools)
    planner = Agent(role="Planner", goal="Choose the one tool that answers the question, or none",
                    backstory=f"You plan an assistant's work. Its tools: {names}.", llm=llm, max_iter=1,
                    allow_delegation=False, verbose=False)
    worker = Agent(role="Worker", goal="Answer the question with the planned tool",
                   backstory="You follow the plan and answer from the tool's result.", tools=tools, llm=llm,
                   max_iter=max_iter, allow_delegation=False, verbose=False)
    critic = Agent(role="Critic", goal="Check the worker's answer against the tool's result",
                   backstory="You accept a right answer and correct a wrong one.", llm=llm, max_iter=1,
                   allow_delegation=False, verbose=False)
    plan = Task(description=f"Question: {question}\nWhich tool answers it ({names}, or none)?",
                expected_output="One tool name, or none", agent=planner)
    work = Task(description=f"Answer the question: {question}", expected_output="The answer, in a few words",
                agent=worker, context=[plan])
    review = Task(description=f"Question: {question}\nCheck the worker's answer. Give the final answer.",
                  expected_output="The final answer, in a few words", agent=critic, context=[work])
    return str(Crew(agents=[planner, worker, critic], tasks=[plan, work, review], process=Process.sequential,
                    verbose=False).kickoff())


def main() -> None:
    job = json.load(sys.stdin)
    llm = LLM(model="openai/smollm2", base_url=job["base_url"], api_key="sk-local", temperature=0, max_tokens=128)
    tools = [remote_tool(spec, job["tools_url"]) for spec in job["tools"]]
    run = {"single": single, "crew": crew}[job["mode"]]
    for task in job["tasks"]:
        started, answer, error = time.perf_counter(), None, None
        try:
            answer = run(llm, tools, task["question"], job.get("max_iter", 3))
        except Exception as err:  # a failed task is a result, not the end of the run
            error = f"{type(err).__name__}: {err}"[:300]
        print("RESULT", json.dumps({"id": task["id"], "answer": answer, "seconds": time.perf_counter() - started, "error": error}), flush=True)


if __name__ == "__main__":
    main()
