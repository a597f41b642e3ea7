"""crewai beside the course's agent and team, on the same held-out tasks, model, server and tools.

    bash tools/install.sh --crewai                       # once: crewai in its own venv, .venv-crewai
    .venv/bin/python benchmarks/crewai_team.py           # every 6th held-out task (10), four settings
    .venv/bin/python benchmarks/crewai_team.py --every 1 # all 60 held-out tasks (slow: crewai's prompts are long)

Settings, each on the same tasks (every ``--every``-th task of data/agent_task_splits.jsonl's "test" split):

* course agent: lesson 10's single agent (the adapted model, the JSON-schema grammar, llama.cpp);
* course team: lesson 10's planner -> worker -> critic (``course_utils.agents.Team``);
* crewai agent: one crewai ``Agent`` with the same three tools and one ``Task``;
* crewai crew: a sequential crew of planner, worker and critic.

crewai 1.15.30 pins ``openai<3`` and ``pydantic<2.13``, so it cannot share the course's environment; it
runs in ``.venv-crewai`` (or ``--crewai-python``) as ``benchmarks/_crewai_driver.py``. Its agents talk to
a real server process on loopback serving the same adapted GGUF file: llama.cpp's own ``llama-server``
with ``--jinja`` (OpenAI-style tool calls through the model's chat template) when
tools/build_llama_server.sh has built it, else ``llama_cpp.server --chat_format chatml-function-calling``.
The second answers crewai's first call, but rejects the conversation crewai sends after a tool call
(HTTP 500: its request model does not accept the assistant message that carries the call), so with it
every task that calls a tool ends in an error: the table says which server ran. Its tools
post their arguments to a loopback server in this process that runs the course's own tools, so both
sides use the same calculator, handbook store and sandbox. Answers are scored by
``agents.answer_matches`` for all four; rates are printed with Wilson 95% intervals, beside the number of
tool calls that reached a tool (for the course's settings, in the runs that were scored; for crewai's,
every request its tools sent to the loopback server).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

ROOT = Path(__file__).resolve().parents[1]
DRIVER = Path(__file__).with_name("_crewai_driver.py")


def serve_tools(tools: dict) -> ThreadingHTTPServer:  # noqa: ANN001 (name -> course Tool)
    """A loopback server: POST /<tool> with the JSON arguments runs the course tool and returns its observation."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            server.calls += 1
            arguments = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
            try:
                observation = str(tools[self.path.strip("/")](**arguments))
            except Exception as err:  # the model's bad call is an observation, as in the course's loop
                observation = f"error: {err}"
            body = json.dumps({"observation": observation}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.calls = 0  # tool calls that reached the course's tools
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def run_crewai(python: str, mode: str, tasks: list[dict], base_url: str, tools_url: str, specs: list[dict],
               max_iter: int, timeout: float) -> list[dict]:
    """Run the driver in crewai's environment; one result per task (a task it never reached is an error)."""
    job = {"base_url": base_url, "tools_url": tools_url, "tools": specs, "mode": mode, "max_iter": max_iter,
           "tasks": [{"id": t["id"], "question": t["question"]} for t in tasks]}
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env |= {"CREWAI_DISABLE_TELEMETRY": "true", "OTEL_SDK_DISABLED": "true", "CREWAI_TRACING_ENABLED": "false"}
    try:
        done = subprocess.run([python, str(DRIVER)], input=json.dumps(job), capture_output=True, text=True,
                              env=env, timeout=timeout)
        out, err = done.stdout, done.stderr
    except subprocess.TimeoutExpired as expired:
        out, err = expired.stdout or "", f"timed out after {timeout:.0f} s"
        out = out.decode() if isinstance(out, bytes) else out
    results = {r["id"]: r for r in (json.loads(line[7:]) for line in out.splitlines() if line.startswith("RESULT {"))}
    if not results:
        print(f"crewai {mode}: no results; the driver's last error lines:\n{err[-1500:]}", file=sys.stderr)
    return [results.get(t["id"], {"id": t["id"], "answer": None, "seconds": 0.0, "error": "not reached"}) for t in tasks]


def crewai_server(model: str):  # noqa: ANN201 (a ManagedServer)
    """llama-server with OpenAI tool calls (``--jinja``) if it is built here, else llama-cpp-python's server."""
    from course_utils.server import LlamaCppServer, LlamaServer, llama_server_binary

    if llama_server_binary() is not None:
        return LlamaCppServer(model=model, n_ctx=4096, parallel=1, extra_args=("--jinja",))
    return LlamaServer(model=model, n_ctx=4096, extra_args=("--chat_format", "chatml-function-calling"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--every", type=int, default=6, help="every N-th held-out task (1 = all 60)")
    parser.add_argument("--crewai-python", default=str(ROOT / ".venv-crewai" / "bin" / "python"),
                        help="the Python of crewai's own environment (tools/install.sh --crewai makes it)")
    parser.add_argument("--max-iter", type=int, default=3, help="crewai's max_iter per agent (the course agent has 2 steps)")
    args = parser.parse_args()
    if not Path(args.crewai_python).is_file():
        raise SystemExit(f"no crewai environment at {args.crewai_python}. Fix: bash tools/install.sh --crewai")

    import pandas as pd

    from course_utils import get_backend
    from course_utils.agents import (
        ADAPTER_PROMPT,
        FINAL,
        Agent,
        BackendPolicy,
        Team,
        agent_gguf,
        answer_matches,
        calculate,
        evaluate_agent,
        handbook_store,
        load_tasks,
        make_python_tool,
        make_search_tool,
        make_tool,
    )
    from course_utils.evaluation import wilson_interval

    tasks = load_tasks(split="test")[:: args.every]
    gguf = agent_gguf()  # the bundled model with lesson 10's adapter merged in
    print(f"{len(tasks)} held-out tasks, model {gguf.name}", flush=True)
    rows, answers = [], {}
    with tempfile.TemporaryDirectory() as folder, handbook_store(folder) as store:
        tools = [make_tool(calculate), make_search_tool(store, k=1), make_python_tool()]

        def row(name: str, right: list[bool], seconds: float) -> None:
            low, high = wilson_interval(sum(right), len(right))
            rows.append({"setting": name, "right": f"{sum(right)}/{len(right)}", "rate": round(sum(right) / len(right), 2),
                         "95% CI": f"{low:.2f}-{high:.2f}", "s per task": round(seconds / len(right), 1)})
            print(rows[-1], flush=True)

        with get_backend("llamacpp", model=str(gguf)) as engine:
            worker = Agent(BackendPolicy(engine, grammar=True, max_tokens=80), tools, max_steps=2,
                           system_prompt=ADAPTER_PROMPT, thought=False)
            role = BackendPolicy(engine, grammar=True, max_tokens=24)
            for name, agent in (("course agent", worker), ("course team", Team(role, worker, role, retries=1))):
                started = time.perf_counter()
                results = evaluate_agent(agent, tasks)
                answers[name] = [r.run.answer for r in results]
                row(name, [r.correct for r in results], time.perf_counter() - started)
                rows[-1]["tool calls"] = sum(s.tool not in (None, FINAL) for r in results for s in r.run.steps)

        tool_server = serve_tools({t.name: t for t in tools})
        specs = [{"name": t.name, "description": t.description, "parameters": t.parameters} for t in tools]
        try:
            with crewai_server(str(gguf)) as llm:
                print(f"crewai's server: {llm.label}", flush=True)
                for mode, name in (("single", "crewai agent"), ("crew", "crewai crew")):
                    started, calls_before = time.perf_counter(), tool_server.calls
                    results = run_crewai(args.crewai_python, mode, tasks, llm.base_url,
                                         f"http://127.0.0.1:{tool_server.server_address[1]}", specs, args.max_iter,
                                         timeout=600 + 120 * len(tasks))
                    answers[name] = [r["answer"] if r["answer"] is not None else f"[{r['error']}]" for r in results]
                    row(name, [r["answer"] is not None and answer_matches(r["answer"], str(t["answer"]))
                               for r, t in zip(results, tasks)], time.perf_counter() - started)
                    rows[-1]["tool calls"] = tool_server.calls - calls_before
        finally:
            tool_server.shutdown()

    print(f"\n{len(tasks)} held-out tasks ({', '.join(sorted({t['tool'] for t in tasks}))}), the same model file for every setting")
    print(pd.DataFrame(rows).to_string(index=False))
    print("\nanswers, task by task (expected first):")
    frame = pd.DataFrame({"expected": [str(t["answer"]) for t in tasks]} | answers, index=[t["id"] for t in tasks])
    with pd.option_context("display.max_colwidth", 40, "display.width", 200):
        print(frame.to_string())


if __name__ == "__main__":
    from _table import with_machine

    raise SystemExit(with_machine(main))
