# %% [markdown]
# # Lab 11 · A local assistant app: measure speech, check synthetic data, stream a reply
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/local-llm-lab/local-llm-lab/blob/main/labs/11_app_lab.ipynb)
#
# Three exercises on lesson 11. Replace each `raise NotImplementedError` with your code, run the cell, then look at
# the check below it: ✅ means right, ❌ says what is wrong and where to look, ⏳ means not done yet. If a ❌ is not
# enough, `hint("word error rate")` (or the name of another check, after it has run) goes one step further. Never
# change an input (a record, the history list) in place: the caller still needs it.
#
# **Run time:** 8 s on a 2-core CPU (Intel(R) Xeon(R) Processor), measured by `course run` on 2026-12-02; a slower machine takes longer.

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
from course_utils import get_backend, setup_notebook
from course_utils.checks import hint
from course_utils.checks.app import check_stream_handler, check_validator, check_wer, qa_records

cfg = setup_notebook(seed=SEED)
backend = get_backend(BACKEND, model=MODEL)

# %% [markdown]
# ## Exercise 1: word error rate
#
# Write `word_error_rate(reference, hypothesis)`: normalise both texts (lower case, punctuation removed,
# split into words), find the fewest word substitutions, deletions and insertions that turn the reference into
# the hypothesis (the Levenshtein distance over words: a table `d[i][j]` for the first `i` reference words and
# the first `j` hypothesis words), and divide by the number of reference words. A reference without words has no
# error rate: raise `ValueError`. The check compares with the lesson's `speech.wer` on fixed pairs (long ones too)
# and on 40 random ones.

# %%
# NBVAL_CHECK_OUTPUT
import re


def normalise(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9' ]+", " ", text.lower().replace("-", " ")).split()


def word_error_rate(reference: str, hypothesis: str) -> float:
    ref, hyp = normalise(reference), normalise(hypothesis)
    if not ref:
        raise ValueError("the reference has no words, so the word error rate is undefined")
    d = [[i + j if i * j == 0 else 0 for j in range(len(hyp) + 1)] for i in range(len(ref) + 1)]
    for i in range(1, len(ref) + 1):
        for j in range(1, len(hyp) + 1):
            same = ref[i - 1] == hyp[j - 1]
            d[i][j] = min(d[i - 1][j - 1] + (0 if same else 1),  # match or substitution
                          d[i - 1][j] + 1,  # deletion
                          d[i][j - 1] + 1)  # insertion
    return d[len(ref)][len(hyp)] / len(ref)


check_wer(word_error_rate)

# %% [markdown]
# ## Exercise 2: a validator for synthetic records (build and measure)
#
# The model wrote records like `{"question": ..., "answer": ...}` about a passage. Write
# `is_valid(record, passage)` that returns `True` only when: the record matches `QA_SCHEMA` (use
# `jsonschema`), the answer occurs in the passage, the question ends with "?", and the question does not contain
# the answer. Compare texts with `normalize_text` (lower case, no punctuation), and as whole words. A record from a
# model can miss a field or hold a number where text belongs: return `False`, never raise.
#
# `qa_records(60, seed=0)` gives 60 records as a small model writes them, each with its passage and a label: `"ok"`,
# or the one defect it has. Try your validator on them. The check first tries a few edge cases, then measures it on
# **200 records it writes with a seed of its own** (held out): it must reject at least 95% of the bad records
# (recall) and keep at least 95% of the good ones. It prints both beside the targets and the reference's.

# %%
# NBVAL_CHECK_OUTPUT
from course_utils.synth import QA_SCHEMA, normalize_text

shown = qa_records(60, seed=0)
for record, _passage, label in shown[:3]:
    print(label, record)


def is_valid(record: dict, passage: str) -> bool:
    import jsonschema

    try:
        jsonschema.validate(record, QA_SCHEMA)
    except jsonschema.ValidationError:
        return False
    question, answer, text = (f" {normalize_text(t)} " for t in (record["question"], record["answer"], passage))
    return (answer.strip() != "" and answer in text and record["question"].strip().endswith("?")
            and answer not in question)


wrong = [(label, record) for record, passage, label in shown if is_valid(record, passage) != (label == "ok")]
print(f"{len(shown) - len(wrong)} of {len(shown)} shown records judged right", wrong[:2])

check_validator(is_valid)

# %% [markdown]
# ## Exercise 3: a streaming chat handler
#
# A chat UI calls a generator and redraws the reply at every `yield`. Write `stream_reply(backend, message,
# history)`: if the message is empty (or only spaces), yield one line starting with "⚠️" and stop, without calling
# the model. Otherwise send `history` plus the new user message to `backend.chat_stream(...)` (greedy:
# `temperature=0.0`, `max_tokens=64`) and, for every chunk with text, yield the reply so far. Leave `history` as it
# is (the UI owns it). The check streams from stand-in backends (one sends empty chunks between the pieces), then
# compares your last update with the real model's greedy reply.

# %%
# NBVAL_CHECK_OUTPUT
def stream_reply(backend, message: str, history: list[dict]):
    if not message.strip():
        yield "⚠️ Type a message first."
        return
    reply = ""
    for chunk in backend.chat_stream([*history, {"role": "user", "content": message}], max_tokens=64, temperature=0.0):
        if chunk.text:
            reply += chunk.text
            yield reply


check_stream_handler(stream_reply, backend)

# %% [markdown]
# Your handler with the real model (each line is one redraw of the UI):

# %%
# NBVAL_IGNORE_OUTPUT
try:
    for partial in stream_reply(backend, "What is the capital of Germany?", []):
        print(repr(partial))
except NotImplementedError:
    print("(finish exercise 3 to see this)")

# %%
backend.close()
