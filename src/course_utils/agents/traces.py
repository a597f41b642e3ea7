"""Tool-call traces to learn from, and the small LoRA adapter trained on them. Taught in lesson 10 (section 5).

A 135M model does not know the agent's job: the SmolLM2 model card says function calling was trained
into the 1.7B model, not the 135M one. So we show it the job. A **trace** is what a good agent says in
the ReAct loop for one *training* task: the reference call, the real tool's real result, then the
``final_answer``. :func:`reference_traces` gets it by running the very same :class:`~.loop.Agent`
(same loop, same tools, same sandbox, same prompt) with a :class:`~.policies.ScriptedPolicy` that
replays the reference replies, and records every model call: the messages the model would have seen
and the reply it should write. Each such pair is one supervised example (lesson 08's recipe: the
loss only on the reply). Traces whose tool result does not hold the expected answer (the search
found another handbook entry) are dropped: they would teach the model to make answers up.

Only the ``train`` split is used; ``tests/test_agents_traces.py`` checks that no held-out question
(or a near-duplicate of one) is in the traces. ``data/make_agent_adapter.py`` writes the traces to
``data/agent_traces.jsonl`` and trains the adapter shipped in ``data/agent_adapter/``;
:func:`apply_adapter` loads it into a transformers backend's model (merged: plain weights again);
:func:`agent_gguf` merges it and exports a GGUF file (cached) for llama.cpp. Run it there: llama.cpp's
JSON-schema grammar allows the spaces ``json.dumps`` writes after ``:`` and ``,``, so the adapted model
writes its steps exactly as in the traces; a grammar that admits only compact JSON (llguidance with
``whitespace_flexible`` off, as the transformers backend runs it) forces other tokens than it was trained on.

>>> from .builtin_tools import calculate
>>> task = {"id": "t1", "question": "What is 6 times 7?", "tool": "calculate", "answer": "42",
...         "arguments": {"expression": "6 * 7"}}
>>> [(len(t.messages), t.response) for t in reference_traces([task], [calculate])]
[(2, '{"tool": "calculate", "arguments": {"expression": "6 * 7"}}'), (4, '{"tool": "final_answer", "arguments": {"answer": "42"}}')]
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import DataError, InvalidOption
from .loop import Agent
from .measuring import NO_TOOL, answer_matches, check_task
from .policies import BackendPolicy, ScriptedPolicy
from .tools import FINAL, Tool

__all__ = ["ADAPTER_DIR", "ADAPTER_PROMPT", "ADAPTER_STEPS", "TRACES_FILE", "Trace", "adapter_agent", "adapter_key", "apply_adapter",
           "agent_gguf", "agent_gguf_path", "encode_trace", "load_traces", "near_duplicate", "reference_traces", "shipped_adapter", "trace_batches"]

TRACES_FILE = "agent_traces.jsonl"  # written by data/make_agent_adapter.py from the train split
ADAPTER_DIR = "agent_adapter"  # data/agent_adapter/<key>/: the shipped LoRA adapter
ADAPTER_STEPS = 2  # the loop the traces come from: a tool call, then the answer (lesson 10's MAX_STEPS)
# The agent's prompt without the "thought" field: a step is ~20 tokens instead of ~60, and a model trained
# on traces has no use for a made-up reason. The traces and the lesson's agent use this same prompt.
ADAPTER_PROMPT = """You are an assistant that uses tools. Tools:
{tools}
- final_answer(answer): give the answer to the user.
Reply with one JSON object only: {{"tool": "<a tool name>", "arguments": {{<its arguments>}}}}.
Use a tool first, read its result, then reply with the final_answer tool."""


@dataclass(frozen=True)
class Trace:
    """One model call of a good agent: what it read (``messages``) and what it should write (``response``)."""

    task_id: str
    messages: list[dict[str, str]]
    response: str


def _step(tool: str, arguments: Mapping[str, Any]) -> str:
    return json.dumps({"tool": tool, "arguments": dict(arguments)}, ensure_ascii=False)


class _Recorder:
    """A policy that replays the reference replies and remembers what it was shown each time."""

    def __init__(self, replies: Sequence[str]) -> None:
        self.script, self.calls = ScriptedPolicy(replies), []

    def __call__(self, messages: list[dict[str, str]], schema: dict[str, Any] | None) -> str:
        reply = self.script(messages, schema)
        self.calls.append((list(messages), reply))
        return reply


def reference_traces(tasks: Sequence[Mapping[str, Any]], tools: Sequence[Tool | Callable[..., Any]],
                     system_prompt: str = ADAPTER_PROMPT, max_steps: int = ADAPTER_STEPS) -> list[Trace]:
    """The traces of a good agent on ``tasks`` (each needs its reference ``arguments``), through the real loop and tools.

    A task that needs no tool is one call (``final_answer`` at once); a tool task is two (the call,
    then the answer read from the tool's result). Tasks whose tool fails, or whose result does not
    contain the expected answer, give no trace.
    """
    traces = []
    for n, raw in enumerate(tasks, 1):
        task = check_task(raw, f"task {n}")
        if not isinstance(task.get("arguments"), Mapping):
            raise DataError(f"task {task['id']!r} has no reference 'arguments'", fix="use the tasks of data/agent_task_splits.jsonl")
        answer = _step(FINAL, {"answer": str(task["answer"])})
        replies = [answer] if task["tool"] == NO_TOOL else [_step(task["tool"], task["arguments"]), answer]
        recorder = _Recorder(replies)
        run = Agent(recorder, tools, max_steps=max_steps, system_prompt=system_prompt, thought=False).run(task["question"])
        observation = run.steps[0].observation or ""
        if run.errors or run.stopped != "answer" or (task["tool"] != NO_TOOL and not answer_matches(observation, str(task["answer"]))):
            continue
        traces += [Trace(str(task["id"]), messages, reply) for messages, reply in recorder.calls]
    return traces


def load_traces(path: str | os.PathLike | None = None) -> list[Trace]:
    """The traces in ``data/agent_traces.jsonl`` (or ``path``), one ``{"task_id", "messages", "response"}`` per line."""
    from ..datafiles import data_path, read_jsonl

    source = path or data_path(TRACES_FILE)
    traces = []
    for n, row in enumerate(read_jsonl(source, required={"task_id", "messages", "response"}), 1):
        messages = row["messages"]
        if not isinstance(messages, list) or not all(isinstance(m, dict) and {"role", "content"} <= set(m) for m in messages):
            raise DataError(f"{Path(source).name} line {n}: 'messages' must be a list of {{role, content}}", fix="run data/make_agent_adapter.py again")
        traces.append(Trace(str(row["task_id"]), messages, str(row["response"])))
    if not traces:
        raise DataError(f"{source} holds no traces", fix="run data/make_agent_adapter.py again")
    return traces


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.lower()))


def _content(text: str) -> tuple[list[str], list[str]]:
    """The numbers and the quoted words of a question: what makes one templated task another."""
    return sorted(re.findall(r"\d+(?:\.\d+)?", text)), sorted(w.lower() for w in re.findall(r"'([^']+)'", text))


def near_duplicate(a: str, b: str, threshold: float = 0.8) -> bool:
    """True when two questions are the same task reworded: the same numbers and quoted words, and at
    least ``threshold`` of their words shared (Jaccard). The same template with other numbers is another task.

    >>> near_duplicate("What is the capital of Spain?", "what is the capital of spain"), near_duplicate("What is 2 times 3?", "What is 4 times 3?")
    (True, False)
    """
    wa, wb = _words(a), _words(b)
    return _content(a) == _content(b) and bool(wa | wb) and len(wa & wb) / len(wa | wb) >= threshold


# ============================================================================= training data
def encode_trace(tokenizer: Any, trace: Trace) -> tuple[list[int], list[int]]:
    """``(input_ids, labels)``: the chat up to the assistant's turn, then the reply and end-of-turn; loss only on the reply."""
    from ..lora import IGNORE_INDEX

    prompt = tokenizer.apply_chat_template(trace.messages, tokenize=False, add_generation_prompt=True)
    prompt_ids = tokenizer.encode(prompt, add_special_tokens=False)
    reply_ids = tokenizer.encode(trace.response + (tokenizer.eos_token or ""), add_special_tokens=False)
    return prompt_ids + reply_ids, [IGNORE_INDEX] * len(prompt_ids) + reply_ids


def trace_batches(tokenizer: Any, traces: Sequence[Trace], batch_size: int = 8, seed: int = 0) -> Iterator[Any]:
    """Endless right-padded :class:`course_utils.lora.Batch` es of traces, shuffled each epoch with ``seed``."""
    import random

    import torch

    from ..lora import IGNORE_INDEX, Batch

    if not traces:
        raise DataError("no traces to train on", fix="pass load_traces()")
    encoded = [encode_trace(tokenizer, t) for t in traces]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    rng, order = random.Random(seed), list(range(len(encoded)))
    while True:
        rng.shuffle(order)
        for start in range(0, max(len(order) - batch_size + 1, 1), batch_size):
            chosen = [encoded[i] for i in order[start:start + batch_size]]
            length = max(len(ids) for ids, _ in chosen)
            ids = torch.full((len(chosen), length), pad, dtype=torch.long)
            labels = torch.full((len(chosen), length), IGNORE_INDEX, dtype=torch.long)
            mask = torch.zeros((len(chosen), length), dtype=torch.long)
            for row, (x, y) in enumerate(chosen):
                ids[row, :len(x)], labels[row, :len(y)], mask[row, :len(x)] = torch.tensor(x), torch.tensor(y), 1
            yield Batch(ids, mask, labels)


# ============================================================================= the shipped adapter
def adapter_key(traces_file: str | os.PathLike, recipe: Mapping[str, Any]) -> str:
    """A short hash of the traces and the training recipe: a change to either names a new adapter folder."""
    digest = hashlib.sha1(Path(traces_file).read_bytes())
    digest.update(json.dumps(dict(recipe), sort_keys=True).encode())
    return digest.hexdigest()[:12]


def shipped_adapter() -> Path:
    """The adapter folder in ``data/agent_adapter/`` (made by ``data/make_agent_adapter.py``)."""
    from ..datafiles import data_path

    folders = sorted(p for p in data_path(ADAPTER_DIR).glob("*") if (p / "adapter_config.json").is_file())
    if len(folders) != 1:
        raise DataError(f"data/{ADAPTER_DIR}/ should hold exactly one adapter folder, found {len(folders)}",
                        fix="run python data/make_agent_adapter.py (it replaces the old folder)")
    return folders[0]


def apply_adapter(backend: Any, folder: str | os.PathLike | None = None, merge: bool = True) -> Any:
    """Load the LoRA adapter into a **transformers** backend's model (in place); returns ``backend``.

    ``merge=True`` folds it into the weights (plain layers again, no extra cost per token);
    ``merge=False`` keeps the LoRA layers, so ``lora.lora_disabled(backend.model)`` runs the base model.

    Only the transformers backend holds PyTorch weights a LoRA adapter can be added to; llama.cpp and
    GPT4All run a fixed GGUF file (an adapter there would need its own GGUF conversion).
    """
    from .. import lora

    if getattr(backend, "name", None) != "transformers" or not hasattr(backend, "model"):
        raise InvalidOption(f"a LoRA adapter needs the transformers backend (PyTorch weights), got {getattr(backend, 'name', backend)!r}",
                            fix='use get_backend("transformers") for the adapter')
    if lora.lora_layers(backend.model):
        raise InvalidOption("this backend's model already has LoRA layers", fix="start a fresh transformers backend")
    lora.load_adapter(backend.model, folder or shipped_adapter())
    if merge:
        lora.merge_lora(backend.model)
    backend.model.eval()
    return backend


def adapter_agent(engine: Any, tools: Sequence[Tool | Callable[..., Any]], max_steps: int = ADAPTER_STEPS) -> Agent:
    """The agent the adapter was trained for, as lesson 10 measures it: the traces' system prompt, no thought
    field, grammar-constrained steps of at most 80 tokens. ``engine`` is any backend with a JSON grammar.

    A stand-in engine that always answers with the same step shows what the agent sends and does:

    >>> from types import SimpleNamespace
    >>> from course_utils.agents import calculate
    >>> step = '{"tool": "final_answer", "arguments": {"answer": "391"}}'
    >>> engine = SimpleNamespace(chat=lambda messages, **options: SimpleNamespace(text=step))
    >>> agent = adapter_agent(engine, [calculate])
    >>> agent.system_prompt.startswith("You are an assistant that uses tools."), agent.run("What is 17 times 23?").answer
    (True, '391')
    """
    return Agent(BackendPolicy(engine, grammar=True, max_tokens=80), tools, max_steps=max_steps, system_prompt=ADAPTER_PROMPT, thought=False)


def _adapter_folder(adapter: str | os.PathLike | None | bool) -> Path | None:
    if adapter is False:
        return None
    folder = shipped_adapter() if adapter is None or adapter is True else Path(adapter)
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        if not (folder / name).is_file():
            raise DataError(f"{folder} has no {name}: it is not a LoRA adapter folder", fix="pass a folder written by data/make_agent_adapter.py")
    return folder


def agent_gguf_path(adapter: str | os.PathLike | None | bool = None, outtype: str = "q8_0", cache_dir: str | os.PathLike | None = None) -> Path:
    """Where :func:`agent_gguf` keeps its file: ``<cache>/agents/{agent|base}-<hash>-<outtype>.gguf``.

    The hash covers the adapter's files, the bundled GGUF's name and ``outtype``: a retrained adapter
    gets a new file, never a stale one.

    >>> agent_gguf_path(False, cache_dir="/c").name
    'base-2ab7c7656bd0-q8_0.gguf'
    """
    from ..assets import smollm2_gguf
    from ..config import settings

    folder = _adapter_folder(adapter)
    digest = hashlib.sha1(f"{smollm2_gguf().name}|{outtype}|".encode())
    if folder is not None:
        for name in ("adapter_config.json", "adapter_model.safetensors"):
            digest.update((folder / name).read_bytes())
    root = Path(cache_dir) if cache_dir is not None else settings().cache_dir / "agents"
    return root / f"{'agent' if folder else 'base'}-{digest.hexdigest()[:12]}-{outtype}.gguf"


def agent_gguf(adapter: str | os.PathLike | None | bool = None, outtype: str = "q8_0", cache_dir: str | os.PathLike | None = None) -> Path:
    """The bundled model with the adapter merged in, as a GGUF file llama.cpp runs; cached, keyed by the adapter.

    ``adapter``: a folder (default: :func:`shipped_adapter`), or ``False`` for the base model exported
    the same way, so that a before/after comparison differs only by the adapter. The first call loads
    the model with transformers, merges the LoRA weights into it (``lora.merge_lora``: plain weights
    again) and writes it with lesson 08's :func:`course_utils.export.export_gguf` (under a temporary
    name, renamed when complete, so a reader never sees half a file); later calls return the cached
    file at once (:func:`agent_gguf_path`).
    """
    from .. import export, lora
    from ..assets import load_hf_model

    folder = _adapter_folder(adapter)
    path = agent_gguf_path(adapter, outtype, cache_dir)
    if path.is_file():
        return path
    model, _ = load_hf_model()
    if folder is not None:
        lora.load_adapter(model, folder)
        lora.merge_lora(model)
    return export.export_gguf(model, path, outtype=outtype, name="SmolLM2-135M-Instruct" + (" agent" if folder else ""))
