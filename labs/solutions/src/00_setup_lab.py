# %% [markdown]
# # Lab 00 · Setup: talk to your model (solutions)
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/local-llm-lab/local-llm-lab/blob/main/labs/00_setup_lab.ipynb)
#
# Four short exercises on lesson 00. Replace each `raise NotImplementedError` with your code, run the cell,
# then run the check below it: ✅ means right, ❌ comes with a hint, ⏳ means not done yet.
#
# **Run time:** 7 s on a 2-core CPU (Intel(R) Xeon(R) Processor), measured by `course run` on 2026-12-01; a slower machine takes longer.

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
from course_utils.checks.setup import check_ask, check_join_stream, check_reproducible, check_tpot

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
    messages = [{"role": "user", "content": question}]
    return backend.chat(messages, temperature=0.0, max_tokens=48).text


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
    pieces = [chunk.text for chunk in backend.complete_stream(prompt, max_tokens=20) if chunk.text]
    return "".join(pieces), len(pieces)


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
    if len(stamps) < 2:
        return 0.0
    return (stamps[-1] - stamps[0]) / (len(stamps) - 1)


check_tpot(tpot)

# %% [markdown]
# ## Exercise 4: reproducible sampling
#
# Write `sample_twice(backend)` that continues `"Once upon a time"` twice with sampling (temperature above 0,
# `max_tokens=20`) and returns both texts. Make the two texts identical.

# %%
# NBVAL_CHECK_OUTPUT
def sample_twice(backend) -> tuple[str, str]:
    first = backend.complete("Once upon a time", max_tokens=20, temperature=0.9, seed=42).text
    second = backend.complete("Once upon a time", max_tokens=20, temperature=0.9, seed=42).text
    return first, second


sampler = backend_with("seeded_sampling", llm, model=MODEL)  # llm, or llama.cpp if llm cannot seed (GPT4All)
check_reproducible(sample_twice, sampler)

# %%
if sampler is not llm:
    sampler.close()
llm.close()
