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
# **Run time:** 3 s on a 2-core CPU (Intel(R) Xeon(R) Processor), measured by `course run` on 2026-12-02; a slower machine takes longer.

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
    # TODO: inspect.signature(fn).parameters gives names and defaults (inspect.Parameter.empty = none);
    #       typing.get_type_hints(fn) gives the types; inspect.getdoc(fn) the docstring
    raise NotImplementedError


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
    # TODO: parse the call, look up the tool, call it; turn every exception into "Error: ..."
    raise NotImplementedError


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
    # TODO: one case-insensitive regular expression per kind of attack (re.search(pattern, text, re.I))
    raise NotImplementedError


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
    # TODO: for each sentence, find its citations with re.findall(r"\[(\d+)\]", sentence), compare, collect the bad ones
    raise NotImplementedError


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
