# %% [markdown]
# # Lab 09 · Evaluation: scoring rules, error bars and answer extraction
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/local-llm-lab/local-llm-lab/blob/main/labs/09_evaluation_lab.ipynb)
#
# Five exercises on lesson 09. Replace each `raise NotImplementedError` with your code, run the cell, then look at
# the check below it: ✅ means right, ❌ says what is wrong and where to look, ⏳ means not done yet. If a ❌ is not
# enough, `hint("acc_norm")` (or the name of another check, after it has run) goes one step further. Never change
# an input list in place: the caller still needs it.
#
# **Prerequisites:** lesson 09.
#
# **Run time:** 12 s on a 2-core CPU (Intel(R) Xeon(R) Processor), measured by `course run` on 2026-12-02; a slower machine takes longer.
#
# Exercise 5 runs the model on two questions.

# %%
# Colab only: install the course (~5 min the first time). Does nothing on your own machine.
import sys
if "google.colab" in sys.modules:
    # !git clone -q --depth 1 https://github.com/local-llm-lab/local-llm-lab /content/local-llm-lab
    # !bash /content/local-llm-lab/tools/install.sh --system

# %% tags=["parameters"]
BACKEND = "auto"  # unused: exercise 5 runs the transformers model directly
MODEL = None
SEED = 0

# %%
from course_utils import setup_notebook
from course_utils.checks import hint
from course_utils.checks.evaluation import (
    check_acc_norm,
    check_gsm8k_extract,
    check_score_item,
    check_stderr,
    check_winogrande_partial,
    gsm8k_outputs,
)

cfg = setup_notebook(seed=SEED)

import math
import re

import torch

# %% [markdown]
# ## Exercise 1: acc_norm
#
# Given each choice's summed log-probability and the choice texts, return the index of the choice with the
# largest log-probability **per character** (`len(choice)`), as lm-evaluation-harness's `acc_norm` does. The texts
# are the answers as the data set gives them: the space that joins each to the question is scored, but lm-eval
# does not count it (lesson 09, section 3). On a tie, the first one wins.

# %%
def acc_norm_pick(logprobs: list[float], choices: list[str]) -> int:
    # TODO: divide each log-probability by the length of its choice; return the index of the largest
    raise NotImplementedError


check_acc_norm(acc_norm_pick)

# %% [markdown]
# ## Exercise 2: accuracy with its standard error
#
# From a list of outcomes (1/True = right, 0/False = wrong) return `(accuracy, standard error)` with the
# binomial standard error $\sqrt{p(1-p)/n}$. An empty list has no accuracy: raise `ValueError`.

# %%
def accuracy_with_stderr(correct: list[int]) -> tuple[float, float]:
    # TODO: the fraction right and its binomial standard error; an empty list raises ValueError
    raise NotImplementedError


check_stderr(accuracy_with_stderr)

# %% [markdown]
# ## Exercise 3: extract GSM8K's final answer from what a small model writes (build and measure)
#
# GSM8K is scored by exact match of the final number, so the score is only as good as the extractor. Write
# `extract_answer(text)`: the final answer of a worked solution as a plain string (drop `,` and `$`; `"2.50"` becomes
# `"2.5"`, `"18.00"` becomes `"18"`, `"100"` stays `"100"`), or `None` when the text holds no number. Lesson 09's
# rule (the number after "answer is", else the last number) is a start. But small models do not stop at their
# answer: they write "#### 18" or "Answer: 18" as well as "The answer is 18", then keep going with a remark that holds
# a number, or with a whole new "Question:" and its own answer.
#
# `gsm8k_outputs(40, seed=0)` gives 40 such outputs with their gold answers: look at them, tune your extractor on
# them. The check first tries a few edge cases, then measures your extractor on **300 outputs it writes with a seed
# of its own** (held out: never shown here): at least 95% must agree with the gold answer. It prints your agreement
# beside the target, the reference extractor's and the lesson's `extract_number`.

# %%
dev = gsm8k_outputs(40, seed=0)
for text, gold in dev[:3]:
    print(repr(text), "->", gold)


def extract_answer(text: str) -> str | None:
    # TODO: a regular expression for numbers like -1,250.50 or $18; find where the answer is written; ignore what follows it
    raise NotImplementedError


check_gsm8k_extract(extract_answer)

# %% [markdown]
# ## Exercise 4: WinoGrande's partial scoring
#
# A WinoGrande sentence has a blank `_` and two options. Partial scoring puts each option into the *context*
# (the text before `_`) and scores the **same** continuation (the text after `_`, stripped, with one leading
# space) after each. Return `((context_1, context_2), continuation)`. The check tries sentences with the blank at the
# start, right before "'s" and before extra spaces, then the first 40 WinoGrande items.

# %%
def winogrande_partial(sentence: str, option1: str, option2: str) -> tuple[tuple[str, str], str]:
    # TODO: split at the "_"
    raise NotImplementedError


check_winogrande_partial(winogrande_partial)

# %% [markdown]
# ## Exercise 5: score one question with the real model
#
# Write `score_item(model, tokenizer, context, choices)`: for each choice, the summed log-probability of its
# tokens after the context, from one forward pass over `context + choice`. Tokenize like the harness:
# `ctx = encode(context)`, `cont = encode(context + choice)[len(ctx):]`. The logits at position `i` predict token
# `i + 1`. The check compares your numbers with the library's on two ARC-Easy questions.

# %%
from course_utils.assets import load_hf_model

model, tokenizer = load_hf_model(MODEL)
torch.set_num_threads(cfg.n_threads)


def score_item(model, tokenizer, context: str, choices: list[str]) -> list[float]:
    # TODO: for each choice: ids of context and continuation, one forward pass, log_softmax, add up
    raise NotImplementedError


check_score_item(score_item, model, tokenizer)

# %% [markdown]
# ## Going further
#
# - Change `score_item` to run the context once and reuse its `past_key_values` for every choice (the lesson's
#   speed-up), and check it still passes.
# - `course eval arc_easy --backend llamacpp --limit 100` scores the Q4_1 model from the command line.
