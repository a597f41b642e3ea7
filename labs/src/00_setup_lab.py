# %% [markdown]
# # Lab 00 · Setup: talk to your model
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/local-llm-lab/local-llm-lab/blob/main/labs/00_setup_lab.ipynb)
#
# Five exercises on lesson 00; the last one is measured on questions the check picks. Replace each `raise NotImplementedError` with your code, run the cell,
# then run the check below it: ✅ means right, ❌ comes with a hint, ⏳ means not done yet.
#
# **Run time:** 4 s on a 2-core CPU (Intel(R) Xeon(R) Processor), measured by `course run` on 2026-12-02; a slower machine takes longer.

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
from course_utils.backends import backend_with
from course_utils.checks.setup import (
    TARGET_EXACT,
    check_ask,
    check_join_stream,
    check_reproducible,
    check_short_answers,
    check_tpot,
)

cfg = setup_notebook(seed=SEED)
llm = get_backend(BACKEND, model=MODEL)

# %% [markdown]
# ## Exercise 1: ask a question
#
# Write `ask(backend, question)` that sends one user message and returns the answer **text**, greedy
# (`temperature=0.0`) with `max_tokens=48`.

# %%
# NBVAL_CHECK_OUTPUT
def ask(backend, question: str) -> str:
    # TODO: build the messages list and call backend.chat(...)
    raise NotImplementedError


check_ask(ask, llm)

# %% [markdown]
# ## Exercise 2: join a stream yourself
#
# Write `join_stream(backend, prompt)` that calls `backend.complete_stream(prompt, max_tokens=20)`, joins the
# text of the chunks, and returns `(text, number_of_chunks_with_text)`. (The last chunk has `done=True` and an
# empty text: it carries the result.)

# %%
# NBVAL_CHECK_OUTPUT
def join_stream(backend, prompt: str) -> tuple[str, int]:
    # TODO: loop over the chunks
    raise NotImplementedError


check_join_stream(join_stream, llm)

# %% [markdown]
# ## Exercise 3: time per output token
#
# A stream started at time `start` and produced tokens at the times in `stamps` (seconds). Write
# `tpot(start, stamps)`: the mean time between tokens *after the first one* (return 0.0 if there are fewer
# than two tokens).

# %%
# NBVAL_CHECK_OUTPUT
def tpot(start: float, stamps: list[float]) -> float:
    # TODO
    raise NotImplementedError


check_tpot(tpot)

# %% [markdown]
# ## Exercise 4: reproducible sampling
#
# Write `sample_twice(backend)` that continues `"Once upon a time"` twice with sampling (temperature above 0,
# `max_tokens=20`) and returns both texts. Make the two texts identical.

# %%
# NBVAL_CHECK_OUTPUT
def sample_twice(backend) -> tuple[str, str]:
    # TODO
    raise NotImplementedError


sampler = backend_with("seeded_sampling", llm, model=MODEL)  # llm, or llama.cpp if llm cannot seed (GPT4All)
check_reproducible(sample_twice, sampler)

# %% [markdown]
# ## Exercise 5: short, exact answers (build and measure)
#
# Programs that call a model want an answer they can use as it is: `"Paris"`, not `"The capital of France is
# Paris."`. Write `capital_of(backend, country)` that returns **only the name** of the country's capital. How you
# get there is up to you: the question's wording, a system message, a completion prompt with examples, `stop=`
# strings, `max_tokens`, cleaning up the text. A 135M-parameter model copies a pattern far more reliably than
# it follows an instruction.
#
# The check asks about ten countries that appear nowhere in this lab and counts the answers that are exactly
# the capital's name (spaces and a final full stop aside). It prints your share beside the target and beside
# the score of the reference solution's prompt.

# %%
print(llm.chat([{"role": "user", "content": "What is the capital of France?"}], temperature=0.0, max_tokens=24).text)
print(f"target: at least {TARGET_EXACT:.0%} exact answers")


def capital_of(backend, country: str) -> str:
    # TODO: get the model to answer with the name alone (look at what it says to a plain question first)
    raise NotImplementedError


check_short_answers(capital_of, llm)

# %%
if sampler is not llm:
    sampler.close()
llm.close()
