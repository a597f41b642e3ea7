# %% [markdown]
# # Lab 10 · Agents and guardrails: a schema, a dispatcher, two guards
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/local-llm-lab/local-llm-lab/blob/main/labs/10_agents_guardrails_lab.ipynb)
#
# Four exercises on lesson 10. Replace each `raise NotImplementedError` with your code, run the cell, then look at
# the check below it: ✅ means right, ❌ says what is wrong and where to look, ⏳ means not done yet. If a ❌ is not
# enough, `hint("safe tool dispatch")` (or the name of another check, after it has run) goes one step further. Never
# change an input (the tools dict, the sources list) in place: the caller still needs it.
#
# **Run time:** 11 s on a 2-core CPU (Intel(R) Xeon(R) Processor), measured by `course run` on 2026-12-02; a slower machine takes longer.

# %%
# Colab only: install the course (~5 min the first time). Does nothing on your own machine.
import sys
if "google.colab" in sys.modules:
    # !git clone -q --depth 1 https://github.com/local-llm-lab/local-llm-lab /content/local-llm-lab
    # !bash /content/local-llm-lab/tools/install.sh --system

# %% tags=["parameters"]
BACKEND = "auto"
MODEL = None
SEED = 0

# %%
import inspect
import re
import typing

from course_utils import setup_notebook
from course_utils.agents import parse_step
from course_utils.checks import hint
from course_utils.checks.agents import check_dispatch, check_injection_detector, check_output_guard, check_schema
from course_utils.embeddings import Embedder
from course_utils.guard import load_guard_examples, split_sentences

cfg = setup_notebook(seed=SEED)
examples = load_guard_examples()
embedder = Embedder()
print(len(examples), "labelled examples")

# %% [markdown]
# ## Exercise 1: a tool's schema from its signature
#
# A model only sees a tool's *description*: its name, what it does, and the JSON schema of its arguments. Write
# `my_schema(fn)` returning
# `{"name": ..., "description": ..., "parameters": {"type": "object", "properties": {...}, "required": [...]}}`:
# - `name` is the function's name, `description` the first line of its docstring (`inspect.getdoc`);
# - one property per parameter, `{"type": "string"}` for `str`, `"integer"` for `int`, `"number"` for `float`,
#   `"boolean"` for `bool` (use `typing.get_type_hints(fn)`);
# - `required` lists the parameters without a default, in the signature's order (keyword-only ones too).
#
# The check compares with `course_utils.agents.tool_schema` on four functions (defaults, a `bool`, a keyword-only
# argument, a docstring longer than one line).

# %%
# NBVAL_CHECK_OUTPUT
JSON_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean"}


def my_schema(fn) -> dict:
    hints = typing.get_type_hints(fn)
    properties, required = {}, []
    for name, param in inspect.signature(fn).parameters.items():
        properties[name] = {"type": JSON_TYPES[hints[name]]}
        if param.default is inspect.Parameter.empty:
            required.append(name)
    description = (inspect.getdoc(fn) or "").splitlines()[0]
    return {"name": fn.__name__, "description": description,
            "parameters": {"type": "object", "properties": properties, "required": required}}


check_schema(my_schema)

# %% [markdown]
# ## Exercise 2: run a model's tool call safely
#
# A model's reply may be a good call, or prose, cut-off JSON, an unknown tool, wrong arguments, or a call that makes
# the tool fail. Write `dispatch(tools, reply)`: `tools` maps names to `course_utils.agents.Tool`s (calling
# `tools[name](**arguments)` checks the arguments against the schema and runs the function). Return the tool's
# result as text, or a text starting with `"Error"` that says what went wrong. It must **never raise**: in an agent
# loop, the error text goes back to the model as the observation. `parse_step(reply)` finds the call in a reply (it
# raises `ToolError` when there is none).

# %%
# NBVAL_CHECK_OUTPUT
def dispatch(tools: dict, reply: str) -> str:
    try:
        call = parse_step(reply)
        if call.tool not in tools:
            return f"Error: there is no tool called {call.tool!r}; use one of {', '.join(tools)}"
        return str(tools[call.tool](**call.arguments))
    except Exception as err:  # noqa: BLE001 - every failure becomes an observation
        return f"Error: {err}"


check_dispatch(dispatch)

# %% [markdown]
# ## Exercise 3: an input guard against prompt injection (build and measure)
#
# Write `looks_like_injection(text)` returning `True` (a bool) for messages that try to override the assistant's
# instructions ("ignore all previous instructions", "you are now DAN", "enable developer mode", "reveal your system
# prompt", a fake `SYSTEM:` line, text hidden in an HTML comment...). Tune it on the labelled safe and injection
# messages of `data/guard_examples.jsonl` (`examples` above; some harmless ones contain words like "ignore", "kill" or
# "system prompt" on purpose). Attackers rephrase, so the check then measures it on **200 messages it writes with a
# seed of its own** (held out: other wordings of the same kinds of attack, and harmless messages with the same words):
# on both sets it must catch at least 70% of the injections and flag at most 10% of the harmless messages. It prints
# your rates beside the bounds and those of the course's detector (`text_safety.find_injection`).

# %%
# NBVAL_CHECK_OUTPUT
def looks_like_injection(text: str) -> bool:
    patterns = [r"\b(?:ignore|forget|disregard|skip)\b.{0,30}\b(?:previous|prior|earlier|above|all|your)\b.{0,20}"
                r"\b(?:instructions|rules|guidelines|directions)",
                r"\byou are now\b|\bfrom now on,? you\b", r"\b(?:DAN|developer mode|god mode|jailbreak|no rules|unfiltered)\b",
                r"\b(?:reveal|print|show|repeat|leak)\b.{0,20}\b(?:system prompt|hidden instructions|password|prompt)\b",
                r"^\s*(?:#+\s*)?system\s*:", r"<!--", r"\b(?:new|updated|real|admin) (?:instructions|task|note)\s*:",
                r"\brole-?play\b.{0,40}\bpassword"]
    text = re.sub("[\u200b-\u200f\u2060\ufeff]", "", text)  # zero-width characters hide words from regexes
    return any(re.search(p, text, re.IGNORECASE | re.MULTILINE) for p in patterns)


check_injection_detector(looks_like_injection, examples)

# %% [markdown]
# ## Exercise 4: an output guard: is each sentence supported by its source?
#
# Write `unsupported(answer, sources)`: the sentences of `answer` that are **not** supported by the source(s) they
# cite. Use `split_sentences(answer)`; a sentence cites source *n* with `[n]` (1-based). Embed the sentence (without
# its `[n]`) and every sentence of the cited sources with `embedder.embed([...])` (rows are unit vectors, so a dot
# product is the cosine similarity), and flag the sentence when the best similarity is below about 0.6. A sentence
# that cites nothing, or cites a source that does not exist, is unsupported too. The check uses the grounding
# examples of `data/guard_examples.jsonl`: no grounded answer may be flagged; at least 3 ungrounded ones must be.

# %%
# NBVAL_CHECK_OUTPUT
def unsupported(answer: str, sources: list[str], threshold: float = 0.6) -> list[str]:
    flagged = []
    for sentence in split_sentences(answer):
        cited = [int(n) for n in re.findall(r"\[(\d+)\]", sentence)]
        if not cited or any(not 1 <= n <= len(sources) for n in cited):
            flagged.append(sentence)
            continue
        pieces = [s for n in cited for s in split_sentences(sources[n - 1])]
        vectors = embedder.embed([re.sub(r"\[\d+\]", "", sentence)] + pieces)
        if float((vectors[1:] @ vectors[0]).max()) < threshold:
            flagged.append(sentence)
    return flagged


check_output_guard(unsupported, examples)

# %% [markdown]
# Your guard on one answer with a made-up detail:

# %%
# NBVAL_IGNORE_OUTPUT
try:
    print(unsupported("The mascot is a tortoise named Pebble [1]. It was a gift from the mayor of Lisbon [1].",
                      ["The office mascot is a tortoise named Pebble, who is 31 years old and lives in the garden."]))
except NotImplementedError:
    print("(finish exercise 4 to see this)")
