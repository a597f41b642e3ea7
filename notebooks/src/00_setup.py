# %% [markdown]
# # 00 · Setup: your first local LLM
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/local-llm-lab/local-llm-lab/blob/main/notebooks/00_setup.ipynb)
#
# **What you will learn**
# - what the course installed and where the model files live;
# - how to chat with a real language model running on your own CPU, first as a whole answer, then as a stream;
# - what *time to first token* (TTFT) and *time per output token* (TPOT) mean, measured;
# - how to switch backend (llama.cpp, transformers, ...) and model with one setting.
#
# **Prerequisites:** Python basics. Nothing about LLMs yet.
#
# **Run time:** 18 s on a 2-core CPU (Intel(R) Xeon(R) Processor), measured by `course run` on 2026-12-01; a slower machine takes longer.
#
# Everything here runs offline. The model is **SmolLM2-135M-Instruct** (Hugging Face, Apache-2.0): a real
# instruction-tuned chat model, small enough (135 million parameters, 98 MB as a 4-bit GGUF file) to answer
# in a fraction of a second on a laptop.

# %%
# Colab only: install the course (~5 min the first time). Does nothing on your own machine.
import sys
if "google.colab" in sys.modules:
    # !git clone -q --depth 1 https://github.com/local-llm-lab/local-llm-lab /content/local-llm-lab
    # !bash /content/local-llm-lab/tools/install.sh --system

# %% tags=["parameters"]
BACKEND = "auto"  # "auto", "llamacpp" or "transformers" (more backends in lesson 04)
MODEL = None  # None = the bundled SmolLM2-135M-Instruct; or a .gguf path / HF folder / hub id
SEED = 0
MAX_TOKENS = 48

# %%
from course_utils import get_backend, record, setup_notebook
from course_utils.assets import bundled_model_check

cfg = setup_notebook(seed=SEED)

# %% [markdown]
# ## 1. What is installed
#
# `course doctor` (in a terminal) checks everything. The same facts from Python:

# %%
# NBVAL_IGNORE_OUTPUT
import pandas as pd

from course_utils.doctor import asset_locations, package_versions

pd.DataFrame(package_versions().items(), columns=["package", "version"]).set_index("package").T

# %% [markdown]
# `llama_cpp_python` runs quantized GGUF models with llama.cpp's fast CPU kernels; `torch` and `transformers`
# run the same model as ordinary PyTorch modules (slower, but every weight is visible: lesson 02 opens it up).
# Packages shown as "not installed" belong to later lessons.
#
# The model and data come from PyPI packages, not from a model hub, so nothing is downloaded while you learn:

# %%
# NBVAL_IGNORE_OUTPUT
for label, (path, detail) in asset_locations().items():
    print(f"{label:<22} {detail:>7}  {path}")

# %% [markdown]
# ## 2. A first chat
#
# `get_backend("auto")` starts the first backend that works (llama.cpp, else transformers). A chat is a list of
# messages, each with a `role` and `content`:

# %%
# NBVAL_IGNORE_OUTPUT
import time

started = time.perf_counter()
llm = get_backend(BACKEND, model=MODEL)
print(f"loaded in {time.perf_counter() - started:.2f} s")
llm.info()

# %%
question = [{"role": "user", "content": "What is the capital of Germany?"}]
reply = llm.chat(question, max_tokens=MAX_TOKENS)
print(reply.text)
if bundled_model_check(MODEL, "SmolLM2 answers Berlin"):
    assert "Berlin" in reply.text

# %% [markdown]
# The answer comes with its bookkeeping: how many tokens the model read (the prompt) and wrote (the
# completion), why it stopped, and how long it took.

# %%
# NBVAL_IGNORE_OUTPUT
print(f"prompt tokens: {reply.prompt_tokens}, completion tokens: {reply.completion_tokens}, finish: {reply.finish_reason}")
print(f"time to first token: {reply.timings.ttft_s * 1000:.0f} ms, then {reply.timings.tpot_s * 1000:.1f} ms per token")

# %% [markdown]
# Notice `finish: stop`: the model ended its turn by itself (with a special end-of-turn token). With
# `max_tokens` too small it would say `length` instead.
#
# Why so many prompt tokens for a 7-word question? The backend wraps the messages in the model's **chat template**,
# including a default system prompt. This is the exact text the model reads (lesson 01 takes it apart):

# %%
print(llm.format_chat(question))

# %% [markdown]
# ## 3. Streaming, and what TTFT and TPOT mean
#
# A chat app shows the answer while it is being written. `chat_stream` yields pieces as soon as each token is
# decoded; the last chunk carries the full result with its timings.

# %%
# NBVAL_IGNORE_OUTPUT
messages = [{"role": "user", "content": "Give me three tips for learning a new language."}]
for chunk in llm.chat_stream(messages, max_tokens=MAX_TOKENS):
    print(chunk.text, end="", flush=True)
streamed = chunk.result
print(f"\n\n[{streamed.completion_tokens} tokens, TTFT {streamed.timings.ttft_s * 1000:.0f} ms, "
      f"TPOT {streamed.timings.tpot_s * 1000:.1f} ms = {streamed.timings.tokens_per_s:.0f} tokens/s]")

# %% [markdown]
# Two numbers describe the speed a user feels:
#
# - **TTFT, time to first token**: the wait before anything appears. The model must first read the whole
#   prompt (*prefill*), so TTFT grows with prompt length.
# - **TPOT, time per output token**: the pace after that (*decode*), one token at a time. Tokens per second = 1 / TPOT.
#
# Streaming does not make generation faster, it makes the wait *feel* shorter. And the streamed text is
# exactly what the non-streamed call returns:

# %%
whole = llm.chat(messages, max_tokens=MAX_TOKENS)
assert whole.text == streamed.text
print("stream == non-stream:", whole.text == streamed.text)

# %% [markdown]
# ## 4. Generation options
#
# Every backend takes the same options: `max_tokens`, `temperature`, `top_k`, `top_p`, `repeat_penalty`,
# `seed` and `stop`. The default, `temperature=0`, is **greedy**: always the most likely next token, so the same
# prompt gives the same answer. With a temperature above 0 the model *samples*, and a `seed` makes the
# sampling repeatable (lesson 03 explains each option):

# %%
# NBVAL_IGNORE_OUTPUT
from course_utils.backends import backend_with

sampler = backend_with("seeded_sampling", llm, model=MODEL)  # llm itself, or llama.cpp if llm cannot seed (GPT4All)
story = "Once upon a time"
seeded = {}
for seed in (1, 1, 2):
    seeded.setdefault(seed, []).append(text := sampler.complete(story, max_tokens=16, temperature=0.9, seed=seed).text)
    print(f"seed {seed}: {story}{text}")
assert len(set(seeded[1])) == 1  # the same seed, the same sample
if sampler is not llm:
    sampler.close()

# %% [markdown]
# The two `seed 1` lines are identical (asserted); `seed 2` took another path. `complete()` continues raw text without
# the chat template. `stop` ends the output at a string of your choice:

# %%
# NBVAL_IGNORE_OUTPUT
print(llm.complete("Monday, Tuesday, Wednesday,", max_tokens=20).text)
print(llm.complete("Monday, Tuesday, Wednesday,", max_tokens=20, stop=["Friday"]).text)

# %% [markdown]
# ## 5. Switching backend
#
# The same question through both in-process backends. `llamacpp` runs the 4-bit GGUF file directly;
# `transformers` runs a 32-bit float copy of the same weights (made from the GGUF once and cached).

# %%
# NBVAL_IGNORE_OUTPUT
rows = []
for name in ("llamacpp", "transformers"):
    started = time.perf_counter()
    with get_backend(name, model=MODEL) as backend:
        load_s = time.perf_counter() - started
        r = backend.chat(messages, max_tokens=MAX_TOKENS)
    rows.append({"backend": name, "load s": round(load_s, 2), "TTFT ms": round(r.timings.ttft_s * 1000),
                 "TPOT ms": round(r.timings.tpot_s * 1000, 1), "tokens/s": round(r.timings.tokens_per_s),
                 "answer": r.text[:60] + "..."})
speeds = pd.DataFrame(rows).set_index("backend")
speeds

# %%
# NBVAL_IGNORE_OUTPUT
record("llamacpp decode tokens/s", speeds.loc["llamacpp", "tokens/s"], note="SmolLM2-135M Q4_1, this machine")
record("transformers decode tokens/s", speeds.loc["transformers", "tokens/s"], note="same model, fp32 PyTorch")
record("speed-up llama.cpp vs transformers", round(speeds.loc["llamacpp", "tokens/s"] / speeds.loc["transformers", "tokens/s"], 1), fmt=".1f")

# %% [markdown]
# What to notice:
# - llama.cpp decodes several times faster: 4-bit weights mean 8× less memory to read per token, and its
#   kernels are written for CPUs. Lesson 05 measures what the 4 bits cost in quality.
# - The answers can differ! Both backends use greedy decoding on "the same" model, but one computes with
#   4-bit weights and 8-bit activations, the other in fp32. Small numeric differences change which token
#   is most likely at some step, and from there the texts go their own ways.
#
# To switch for a whole notebook, set the `BACKEND` parameter above, or the environment variable
# `COURSE_BACKEND` before starting Jupyter (`COURSE_BACKEND=transformers make lab`).
#
# ## 6. Switching model
#
# `COURSE_MODEL` (or the `MODEL` parameter) chooses the model: a `.gguf` file for llama.cpp, a folder saved
# with `save_pretrained`, or a Hugging Face hub id for transformers. On Colab with a GPU and internet you could use
# `COURSE_MODEL=HuggingFaceTB/SmolLM2-1.7B-Instruct` and `COURSE_BACKEND=transformers`; every notebook then runs
# with the bigger model. Mistakes give one line that says how to fix them:

# %%
from course_utils import CourseError

for attempt in ({"name": "llamacpp", "model": "/models/missing.gguf"}, {"name": "vllm-turbo"}):
    try:
        get_backend(**attempt)
    except CourseError as err:
        print(f"{type(err).__name__}: {err}\n")

# %% [markdown]
# ## 7. On Colab
#
# The install cell at the top clones the course and runs `tools/install.sh --system` (it keeps Colab's own
# PyTorch). llama.cpp is compiled once, which takes a few minutes. A Colab GPU is used by transformers when you
# load a bigger model; the bundled 135M model is fast enough on the CPU.

# %%
llm.close()

# %% [markdown]
# ## Summary
#
# - The course runs a real chat model, SmolLM2-135M-Instruct, offline on your CPU, through one interface:
#   `get_backend(name).chat(messages)`, `.chat_stream(...)`, `.complete(...)`, `.count_tokens(...)`, `.info()`.
# - Answers come with token counts and timings. TTFT is the wait for the first token (prefill), TPOT the pace
#   after it (decode).
# - Greedy decoding (temperature 0) is repeatable; sampling is repeatable with a seed.
# - Backends differ in speed, and even in greedy output when their arithmetic differs (4-bit vs fp32).
# - `COURSE_BACKEND` and `COURSE_MODEL` switch backend and model for every notebook.
#
# ## Exercises
#
# Open [`labs/00_setup_lab.ipynb`](../labs/00_setup_lab.ipynb): write a helper that asks a question, join a
# stream yourself, compute TPOT from token timestamps, and make sampling reproducible. Its checks tell you when
# you are right. Then try:
# 1. Ask "What is the capital of France?" with both backends. Which one gets it right? Why might that be?
# 2. Make the prompt 10× longer (repeat a paragraph) and watch TTFT. Does TPOT change?
