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
# **Run time:** 26 s on a 2-core CPU (Intel(R) Xeon(R) Processor), measured by `course run` on 2026-12-01; a slower machine takes longer.
#
# Everything here runs offline. The model is **SmolLM2-135M-Instruct** (Hugging Face, Apache-2.0): a real
# instruction-tuned chat model with 135 million parameters, small enough to chat on a laptop's CPU. The
# bundled file stores most of its weights in 4-bit blocks (GGUF format, type Q4_1); section 5 opens the file
# and measures what that saves, and how fast each backend answers on this machine.

# %%
# Colab only: install the course (~5 min the first time). Does nothing on your own machine.
import sys
if "google.colab" in sys.modules:
    # !git clone -q --depth 1 https://github.com/local-llm-lab/local-llm-lab /content/local-llm-lab
    # !bash /content/local-llm-lab/tools/install.sh --system

# %% tags=["parameters"]
BACKEND = "auto"  # "auto", "llamacpp", "transformers" or "gpt4all" (more backends in lesson 04)
MODEL = None  # None = the bundled SmolLM2-135M-Instruct; or a .gguf path / HF folder / hub id
SEED = 0
MAX_TOKENS = 48

# %%
from IPython.display import Markdown, display

from course_utils import get_backend, record, setup_notebook
from course_utils.assets import bundled_model_check
from course_utils.machine import describe

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
if bundled_model_check(MODEL, "SmolLM2 answers Berlin and ends its turn itself"):
    assert "Berlin" in reply.text and reply.finish_reason == "stop"

# %% [markdown]
# The answer comes with its bookkeeping: how many tokens the model read (the prompt) and wrote (the
# completion), why it stopped, and how long it took.

# %%
# NBVAL_IGNORE_OUTPUT
print(f"prompt tokens: {reply.prompt_tokens}, completion tokens: {reply.completion_tokens}, finish: {reply.finish_reason}")
print(f"time to first token: {reply.timings.ttft_s * 1000:.0f} ms, then {reply.timings.tpot_s * 1000:.1f} ms per token")

# %% [markdown]
# `finish: stop` means the model ended its turn by itself (with a special end-of-turn token; asserted above for
# the bundled model); `length` would mean it was still writing when `max_tokens` ran out.
#
# Why so many prompt tokens for such a short question? The backend wraps the messages in the model's **chat
# template**, including a default system prompt. This is the exact text the model reads (lesson 01 takes it apart):

# %%
print(llm.format_chat(question))
n_words = len(question[0]["content"].split())
print(f"{n_words} words in the question, {reply.prompt_tokens} tokens in the prompt the model read")

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
#   prompt (*prefill*): the more prompt tokens, the more work before the first token (exercise 2 measures it).
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
if bundled_model_check(MODEL, "seed 2 samples another story than seed 1"):
    assert seeded[2][0] != seeded[1][0]
if sampler is not llm:
    sampler.close()

# %% [markdown]
# The two `seed 1` lines are identical (asserted); `seed 2` took another path (asserted for the bundled model).
# `complete()` continues raw text without the chat template. `stop` ends the output at a string of your choice,
# here the end of a line:

# %%
# NBVAL_IGNORE_OUTPUT
shopping = "Shopping list:\n1. apples\n2. bread\n3."
full = llm.complete(shopping, max_tokens=20)
cut = llm.complete(shopping, max_tokens=20, stop=["\n"])
print(f"without stop: {full.text!r} ({full.finish_reason})")
print(f"stop=['\\n']:  {cut.text!r} ({cut.finish_reason})")
assert cut.text == full.text.split("\n")[0]  # the same text, cut before the first newline
if bundled_model_check(MODEL, "SmolLM2 continues the list over several lines"):
    assert "\n" in full.text and len(cut.text) < len(full.text) and cut.finish_reason == "stop"

# %% [markdown]
# The cut text is exactly the first line of the uncut one (asserted): the stop string itself is not returned,
# and `finish_reason` says `stop`.

# %% [markdown]
# ## 5. Switching backend
#
# Two in-process backends run the same model in different forms. `llamacpp` runs the GGUF file directly;
# `transformers` runs a 32-bit float (fp32) copy of the same weights, made from the GGUF once and cached. How
# much smaller is the GGUF file, and why? Its header lists every tensor with its type and size in bytes:

# %%
# NBVAL_IGNORE_OUTPUT
from pathlib import Path

from course_utils.assets import hf_model_dir, resolve_gguf
from course_utils.quant import gguf_tensors

gguf_path = resolve_gguf(MODEL)
tensors = pd.DataFrame([{"type": t.type, "name": t.name, "weights": t.n_elements, "bytes": t.n_bytes} for t in gguf_tensors(gguf_path)])
by_type = tensors.groupby("type").agg(tensors=("type", "size"), example=("name", "first"), weights=("weights", "sum"), bytes=("bytes", "sum"))
by_type["bits per weight"] = (8 * by_type["bytes"] / by_type["weights"]).round(2)
gguf_bytes = gguf_path.stat().st_size
fp32_bytes = sum(f.stat().st_size for f in Path(hf_model_dir(MODEL)).glob("*.safetensors"))  # the cached fp32 copy
size_ratio = fp32_bytes / gguf_bytes
print(by_type.to_string(formatters={"weights": "{:,}".format, "bytes": "{:,}".format}))
print(f"\nwhole file {gguf_bytes / 1e6:.0f} MB, {8 * gguf_bytes / by_type['weights'].sum():.2f} bits per weight on average; "
      f"the fp32 copy {fp32_bytes / 1e6:.0f} MB: {size_ratio:.1f}x larger")
record("GGUF file vs fp32 copy", size_ratio, note=f"{gguf_bytes / 1e6:.0f} MB vs {fp32_bytes / 1e6:.0f} MB", fmt=".1f")
if bundled_model_check(MODEL, "the bundled file is Q4_1 at 5 bits per weight, 4-8x smaller than fp32"):
    assert by_type.loc["Q4_1", "bits per weight"] == 5.0 and 4 < size_ratio < 8

# %% [markdown]
# "4-bit" is not 4 bits per weight. Q4_1 stores weights in blocks of 32: 32 four-bit codes (16 bytes) plus a
# scale and a minimum (2 bytes each, fp16) per block, 20 bytes for 32 weights = **5 bits** per weight (the header
# says the same, above; the block layout is `block_q4_1` in llama.cpp's `ggml-common.h`). The other rows of the
# table keep more bits: Q8_0 is 8-bit codes plus one fp16 scale per 32 weights (8.5 bits; in the bundled file the
# token-embedding matrix, a fifth of the weights), F32 the small norm vectors. So the file is the factor printed
# above smaller than fp32, not 32 / 4 = 8×. Lesson 05 takes these formats apart.
#
# Now the same chat through both backends, twice each, alternating, keeping each backend's faster run (on a
# shared machine a burst of load from another program then spoils one run, not the comparison):

# %%
# NBVAL_IGNORE_OUTPUT
from course_utils.timing import best_of_turns

pair = {name: get_backend(name, model=MODEL) for name in ("llamacpp", "transformers")}
chats = {name: (lambda b=backend: b.chat(messages, max_tokens=MAX_TOKENS)) for name, backend in pair.items()}
best = best_of_turns(chats, repeats=2, cost=lambda r: -r.timings.tokens_per_s)  # A, B, A, B: each keeps its fastest
speeds = pd.DataFrame([{"backend": name, "TTFT ms": round(r.timings.ttft_s * 1000), "TPOT ms": round(r.timings.tpot_s * 1000, 1),
                        "tokens/s": round(r.timings.tokens_per_s, 1), "answer": r.text[:60] + "..."}
                       for name, r in best.items()]).set_index("backend")
speeds

# %%
# NBVAL_IGNORE_OUTPUT
speedup = best["llamacpp"].timings.tokens_per_s / best["transformers"].timings.tokens_per_s
record("llamacpp decode tokens/s", best["llamacpp"].timings.tokens_per_s, note="SmolLM2-135M Q4_1, this machine", fmt=".1f")
record("transformers decode tokens/s", best["transformers"].timings.tokens_per_s, note="same model, fp32 PyTorch", fmt=".1f")
record("speed-up llama.cpp vs transformers", speedup, note=describe(), fmt=".1f")
if speedup >= 2:
    verdict = f"On this run llama.cpp decoded **{speedup:.1f}×** as many tokens per second as transformers."
elif speedup > 1.1:
    verdict = (f"On this run llama.cpp decoded only **{speedup:.1f}×** as fast as transformers: less than its smaller "
               "file suggests, so something else limited it (other programs on the machine, its memory bandwidth).")
else:
    verdict = (f"On this run llama.cpp was **not** clearly faster ({speedup:.2f}×). Timings on a shared machine can say "
               "anything; run the cell again when the machine is quiet.")
display(Markdown(verdict + f" Machine: {describe()}. Each generated token reads every weight once: "
                 f"{fp32_bytes / 1e6:.0f} MB for transformers, {gguf_bytes / 1e6:.0f} MB for llama.cpp."))

# %% [markdown]
# Why can a smaller file be faster? To generate one token the model must read all its weights from memory, and
# for a single chat on a CPU that reading, more than the arithmetic, sets the pace; llama.cpp's kernels also
# multiply the 4-bit blocks directly. The prefill (TTFT) is a different kind of work, many tokens at once, and
# need not follow the same order: compare the TTFT column.
#
# The answers can differ too. Both backends decode greedily from "the same" model, but llama.cpp computes with
# the 5-bit weights (and 8-bit activations), transformers in fp32. A small numeric difference changes which token
# is most likely at some step, and from there the texts go their own ways. Sometimes it matters:

# %%
# NBVAL_IGNORE_OUTPUT
france = [{"role": "user", "content": "What is the capital of France?"}]
capital = {name: backend.chat(france, max_tokens=24).text for name, backend in pair.items()}
for name, text in capital.items():
    print(f"{name:>12}: {text}")
right = {name: "Paris" in text for name, text in capital.items()}
if bundled_model_check(MODEL, "the fp32 copy of SmolLM2 answers Paris"):
    assert right["transformers"]
for backend in pair.values():
    backend.close()

# %%
# NBVAL_IGNORE_OUTPUT
wrong = [name for name, ok in right.items() if not ok]
if wrong == ["llamacpp"]:
    display(Markdown(f"**llama.cpp got it wrong**: {capital['llamacpp'][:60]!r} does not name Paris, while the fp32 copy "
                     "does. The fluent-looking answer is made up. That is quantization damage: with 5 bits per weight this "
                     "tiny model lost the fact that fp32 still has, and greedy decoding then writes whatever follows best. "
                     "One question proves little either way; lesson 05 measures the damage on real text."))
elif wrong:
    display(Markdown(f"**{' and '.join(wrong)} got it wrong**: "
                     + "; ".join(f"{n}: {capital[n][:60]!r}" for n in wrong)
                     + ". The answer does not name Paris: a made-up answer written as fluently as a right one."))
else:
    display(Markdown("Both backends name Paris this time: the numeric differences did not change this answer."))

# %% [markdown]
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
# - The GGUF file stores most weights as Q4_1, 5 bits per weight (4-bit codes plus a scale and a minimum per
#   block of 32), several times smaller than fp32. Backends differ in speed (measured side by side in section 5),
#   and even in greedy output when their arithmetic differs: a quantized model can lose a fact the fp32 copy knows.
# - `COURSE_BACKEND` and `COURSE_MODEL` switch backend and model for every notebook.
#
# ## Exercises
#
# Open [`labs/00_setup_lab.ipynb`](../labs/00_setup_lab.ipynb): write a helper that asks a question, join a
# stream yourself, compute TPOT from token timestamps, and make sampling reproducible. Its checks tell you when
# you are right.
# Its measured exercise (answer with a capital's name alone, scored on countries the lab never shows) reports your number beside the target and the reference solution's.
# Then try:
# 1. Section 5 asked for the capital of France. Ask for five other capitals with both backends: how often does
#    each get it wrong? Is one question enough to judge a quantized model?
# 2. Make the prompt 10× longer (repeat a paragraph) and watch TTFT. Does TPOT change?
