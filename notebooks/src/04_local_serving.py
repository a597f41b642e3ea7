# %% [markdown]
# # 04 · Local serving: every backend, a real server, many users
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/local-llm-lab/local-llm-lab/blob/main/notebooks/04_local_serving.ipynb)
#
# **What you will learn**
# - how the same conversation runs through every local runtime the course knows: llama.cpp, transformers,
#   GPT4All, Ollama and any OpenAI-compatible server, and what to do when one is not there;
# - how to start a real local OpenAI-compatible server from a notebook, talk to it with the `openai` client
#   and with LangChain, and stop it cleanly;
# - what an Ollama `Modelfile` says (model, system prompt, parameters, chat template) and how to use it;
# - how to measure TTFT, TPOT and tokens/s from *any* stream, and compare backends in a table and a plot;
# - what happens to latency and throughput when several users talk to one server at once, and what
#   batching, KV-cache memory and servers like vLLM change.
#
# **Prerequisites:** lesson 00 (TTFT and TPOT), lesson 03 helps (generation options).
#
# **Run time:** 38 s on a 2-core CPU (Intel(R) Xeon(R) Processor), measured by `course run` on 2026-12-01; a slower machine takes longer.

# %%
# Colab only: install the course (~5 min the first time). Does nothing on your own machine.
import sys
if "google.colab" in sys.modules:
    # !git clone -q --depth 1 https://github.com/local-llm-lab/local-llm-lab /content/local-llm-lab
    # !bash /content/local-llm-lab/tools/install.sh --system

# %% tags=["parameters"]
BACKEND = "auto"  # not used for the comparison (it runs every backend); kept for the course's runner
MODEL = None  # None = the bundled SmolLM2-135M-Instruct (GGUF) for every local backend
SEED = 0
MAX_TOKENS = 24  # tokens per answer in the comparison
REPEATS = 1  # timed runs per backend (median); raise to 3 for steadier numbers
LEVELS = (1, 2, 4)  # requests in flight at once, for the load test
REQUESTS = 8  # requests per concurrency level (bounded: at most 256)
LOAD_TOKENS = 16  # tokens per request in the load test

# %%
from course_utils import get_backend, record, setup_notebook

cfg = setup_notebook(seed=SEED)

# %% [markdown]
# ## 1. One conversation, every backend
#
# `get_backend(name)` gives the same interface for five runtimes. Some run the model **in this process**
# (`llamacpp`, `transformers`, `gpt4all`); two talk to a **server** over HTTP (`ollama`, `openai`). A
# backend that cannot start raises a `CourseError` whose message says why and how to fix it, so we can
# try them all and explain the ones that are missing:

# %%
import time

from course_utils import CourseError
from course_utils.backends import available_backends

conversation = [
    {"role": "system", "content": "You are a concise assistant."},
    {"role": "user", "content": "What is the capital of France?"},
]
answers = {}
for name in available_backends():
    started = time.perf_counter()
    try:
        with get_backend(name, model=MODEL) as backend:
            reply = backend.chat(conversation, max_tokens=MAX_TOKENS)
        answers[name] = reply.text
        print(f"✓ {name:<12} ({time.perf_counter() - started:4.1f} s) {reply.text[:70]!r}")
    except CourseError as err:
        answers[name] = None
        print(f"✗ {name:<12} {type(err).__name__}: {err}")

# %% [markdown]
# What to notice:
# - The three in-process backends answered. `ollama` and `openai` need a server that is not running yet:
#   the message says so and how to start one, instead of a 40-line connection traceback.
# - llama.cpp and GPT4All read the same 4-bit GGUF file; transformers runs an fp32 copy. Same model, but
#   not always the same words (lesson 00, section 5).

# %%
assert answers["llamacpp"] and answers["transformers"], "the in-process backends must always work"
available_now = [name for name, text in answers.items() if text]
print("available without a server:", available_now)

# %% [markdown]
# ## 2. A real local OpenAI-compatible server
#
# The OpenAI chat API has become the common language of LLM serving: llama.cpp's server, vLLM, Ollama,
# LM Studio, text-generation-webui and LocalAI all speak it. Code written against it moves from your
# laptop to a GPU cluster by changing one URL.
#
# `LlamaServer` starts `python -m llama_cpp.server` (from llama-cpp-python) as a child process on a free
# port of 127.0.0.1 (loopback: not reachable from other machines). This is the command it runs:

# %%
from course_utils.server import LlamaServer

server = LlamaServer(model=MODEL, extra_args=("--interrupt_requests", "false"))
print(" ".join(a if "/" not in a else "…/" + a.rsplit("/", 1)[-1] for a in server.args[1:]))

# %% [markdown]
# `--interrupt_requests false` matters in section 6: by default this server *ends a running stream early*
# whenever another request arrives. Start it and ask which models it serves (the `/v1/models` endpoint):

# %%
# NBVAL_IGNORE_OUTPUT
import httpx

started = time.perf_counter()
server.start()
print(f"server ready at {server.base_url} in {time.perf_counter() - started:.1f} s")
models = httpx.get(f"{server.base_url}/models", timeout=10).json()
print([m["id"] for m in models["data"]])

# %% [markdown]
# ### The `openai` client
#
# The official client does not care that the "OpenAI" server is a 135M model on your CPU. `api_key` must be
# set but a local server ignores it.

# %%
# NBVAL_IGNORE_OUTPUT
import openai

client = openai.OpenAI(base_url=server.base_url, api_key="sk-local")
response = client.chat.completions.create(model="smollm2", messages=conversation, max_tokens=MAX_TOKENS, temperature=0.0)
print(response.choices[0].message.content)
print(response.usage)

# %% [markdown]
# The server applied SmolLM2's chat template itself (it reads it from the GGUF file) and reports token
# counts in `usage`. With `stream=True` the answer comes as a stream of small chunks, one token each.
#
# ### TTFT and TPOT from any stream, from scratch
#
# Timing a stream needs only a clock: note when the request was sent, stamp each piece of text as it
# arrives, and the rest is arithmetic. Chunks without text (the first one only says `role: assistant`, the
# last one only carries `finish_reason`) are not tokens.

# %%
# NBVAL_IGNORE_OUTPUT
sent = time.perf_counter()
stamps = []
stream = client.chat.completions.create(model="smollm2", messages=conversation, max_tokens=MAX_TOKENS, temperature=0.0, stream=True)
for event in stream:
    if event.choices and event.choices[0].delta.content:
        stamps.append((time.perf_counter(), event.choices[0].delta.content))

ttft = stamps[0][0] - sent
tpot = (stamps[-1][0] - stamps[0][0]) / (len(stamps) - 1)
print("".join(text for _, text in stamps))
print(f"{len(stamps)} tokens, TTFT {ttft * 1000:.0f} ms, TPOT {tpot * 1000:.1f} ms = {1 / tpot:.0f} tokens/s")

# %% [markdown]
# `course_utils.metrics.measure_stream` does the same for a stream from any source: course backends,
# the `openai` client, LangChain, Ollama's raw JSON lines, plain strings, or `(time, text)` pairs stamped
# earlier. Given our stamps it must agree with the hand computation:

# %%
from course_utils.metrics import measure_stream

timings = measure_stream(stamps, start=sent)
assert abs(timings.ttft_s - ttft) < 1e-9 and abs(timings.tpot_s - tpot) < 1e-9
assert timings.completion_tokens == len(stamps)
print(f"measure_stream agrees: TTFT {timings.ttft_s * 1000:.0f} ms, {timings.tokens_per_s:.0f} tokens/s")

# %% [markdown]
# ### The course's `openai` backend and LangChain
#
# The same server through `get_backend("openai", base_url=...)`: now every course notebook can run against
# it (set `COURSE_BACKEND=openai` and `OPENAI_BASE_URL`).

# %%
# NBVAL_IGNORE_OUTPUT
remote = get_backend("openai", base_url=server.base_url)
via_backend = remote.chat(conversation, max_tokens=MAX_TOKENS)
print(via_backend.text)
print("prompt tokens reported:", via_backend.prompt_tokens, "| completion tokens:", via_backend.completion_tokens)
print("same text as the first request:", via_backend.text == response.choices[0].message.content)
assert 1 <= via_backend.completion_tokens <= MAX_TOKENS

# %% [markdown]
# Greedy, same prompt, same server, yet the text may differ from the first request. The server keeps the
# KV cache of its last request and reuses the longest shared prefix of the next prompt (**prompt caching**:
# a repeated prompt skips most of the prefill, so TTFT drops). Reading the prompt in different pieces
# changes the floating-point rounding a little, and that can flip a near-tie between two tokens (lesson 00
# met the same effect in-process, which is why the course's `llamacpp` backend resets its cache). Servers
# trade this bit-for-bit reproducibility for speed; do not build tests on exact server output.
#
# Prompt tokens show as 0: llama-cpp-python's server sends no `usage` while streaming, and only the server
# knows the chat template it applied, so the backend reports "unknown" rather than a guess. (vLLM, Ollama
# and llama.cpp's C++ `llama-server` do send it.)
#
# LangChain's `ChatOpenAI` talks to the same endpoint. One trap: recent versions send the newer
# `max_completion_tokens` field, which this server ignores, so the length limit goes in `extra_body`:

# %%
# NBVAL_IGNORE_OUTPUT
from langchain_openai import ChatOpenAI

chat_model = ChatOpenAI(base_url=server.base_url, api_key="sk-local", model="smollm2", temperature=0,
                        extra_body={"max_tokens": MAX_TOKENS})
message = chat_model.invoke([("system", "You are a concise assistant."), ("user", "What is the capital of France?")])
print(message.content)
print(message.response_metadata["token_usage"])

# %%
# NBVAL_IGNORE_OUTPUT
sent = time.perf_counter()
lc_timings = measure_stream(chat_model.stream("Name three colours."), start=sent)
print(f"LangChain stream: {lc_timings.completion_tokens} tokens, TTFT {lc_timings.ttft_s * 1000:.0f} ms, "
      f"{lc_timings.tokens_per_s:.0f} tokens/s")
assert 1 <= lc_timings.completion_tokens <= MAX_TOKENS

# %% [markdown]
# What to notice: three client libraries, one server, the same answer. The `usage` numbers come from the
# server. `measure_stream` timed LangChain's `AIMessageChunk`s without knowing anything about LangChain.
#
# ## 3. Ollama: a Modelfile, a system prompt, parameters
#
# [Ollama](https://ollama.com) packages llama.cpp as a background service (`ollama serve`, port 11434)
# with a model library (`ollama pull smollm2:135m`). Its Python client is what the `ollama` backend uses.
# Is a server running here?

# %%
try:
    with get_backend("ollama") as ollama_llm:
        print("Ollama answers:", ollama_llm.chat(conversation, max_tokens=MAX_TOKENS).text)
except CourseError as err:
    print(f"{type(err).__name__}: {err}")

# %% [markdown]
# A **Modelfile** turns a GGUF file into an Ollama model with its own defaults: which weights (`FROM`), a
# baked-in system prompt (`SYSTEM`), sampling and context settings (`PARAMETER`) and the chat template
# (`TEMPLATE`, Go template syntax; this one is SmolLM2's ChatML). We write one next to the course's build
# files:

# %%
# NBVAL_CHECK_OUTPUT
from pathlib import Path

from course_utils.assets import resolve_gguf

gguf_path = resolve_gguf(MODEL)
modelfile = f'''FROM {gguf_path}
SYSTEM """You are a concise assistant. Answer in one sentence."""
PARAMETER temperature 0
PARAMETER num_ctx 2048
PARAMETER stop "<|im_end|>"
TEMPLATE """{{{{ if .System }}}}<|im_start|>system
{{{{ .System }}}}<|im_end|>
{{{{ end }}}}{{{{ range .Messages }}}}<|im_start|>{{{{ .Role }}}}
{{{{ .Content }}}}<|im_end|>
{{{{ end }}}}<|im_start|>assistant
"""
'''
build_dir = Path("../build/ollama") if Path("../build").is_dir() else Path.home() / ".cache" / "local-llm-lab" / "ollama"
build_dir.mkdir(parents=True, exist_ok=True)
(build_dir / "Modelfile").write_text(modelfile)
print(modelfile.replace(str(gguf_path), "<the bundled SmolLM2 .gguf>"))

# %% [markdown]
# Two commands make and run it. They run here only if the `ollama` program is installed (it cannot be
# installed on the course machines, so usually this just prints them):

# %%
import shutil
import subprocess

commands = [["ollama", "create", "smollm2-concise", "-f", str(build_dir / "Modelfile")],
            ["ollama", "run", "smollm2-concise", "What is the capital of France?"]]
if shutil.which("ollama"):
    for command in commands:
        print("$", " ".join(command))
        print(subprocess.run(command, capture_output=True, text=True, timeout=300).stdout)
else:
    print("ollama is not installed here; on your machine you would run:")
    for command in commands:
        print("  $", " ".join(command))

# %% [markdown]
# Then `get_backend("ollama", model="smollm2-concise")` uses it, and Ollama's OpenAI-compatible endpoint
# works with the `openai` backend too: `get_backend("openai", base_url="http://127.0.0.1:11434/v1")`.
# Options passed per request (`temperature=...`) override the Modelfile's `PARAMETER`s.
#
# ## 4. TTFT and TPOT across backends
#
# `compare_backends` loads each backend, sends the same conversation (greedy, after one warm-up call),
# times the stream with `measure_stream`, and returns one row per backend. Backends that cannot start get
# a row with the reason:

# %%
# NBVAL_IGNORE_OUTPUT
from course_utils.metrics import compare_backends, plot_comparison

backends = {"llamacpp": {"model": MODEL}, "transformers": {"model": MODEL}, "gpt4all": {"model": MODEL},
            "ollama": {}, "openai": {"base_url": server.base_url}}
comparison = compare_backends(backends, conversation, max_tokens=MAX_TOKENS, repeats=REPEATS)
comparison.round({"load s": 2, "TTFT ms": 0, "TPOT ms": 1, "tokens/s": 1}).assign(reason=comparison["reason"].str[:60])

# %%
ran = comparison[comparison["status"] == "ok"]
assert {"llamacpp", "transformers", "openai"} <= set(ran.index)
assert (ran["tokens"] >= 1).all() and (ran["TTFT ms"] > 0).all()
assert (comparison.loc[comparison["status"] != "ok", "reason"] != "").all()
fig = plot_comparison(comparison)

# %%
# NBVAL_IGNORE_OUTPUT
for name in ran.index:
    record(f"{name} TTFT ms", round(ran.loc[name, "TTFT ms"]), note="04 comparison, this machine")
    record(f"{name} decode tokens/s", round(ran.loc[name, "tokens/s"]), note="04 comparison, this machine")

# %% [markdown]
# What to notice (numbers vary between machines and runs; the pattern does not):
# - **TTFT** includes reading the prompt (prefill). The server adds an HTTP round trip, JSON and the
#   server's own chat-template rendering, a few milliseconds on loopback.
# - **TPOT** is decode speed. llama.cpp, GPT4All and the server all run llama.cpp kernels on the same 4-bit
#   file, so they should be close; transformers runs fp32 PyTorch and is several times slower.
# - **Load time** is paid once per process: this is why people run a server that keeps the model loaded.
# - On a busy machine everything slows down; `benchmarks/backends.py` measures each backend's ratio to raw
#   llama-cpp-python in one run, which cancels most of that noise.
#
# ## 5. How much memory does a user cost? The KV cache
#
# To generate token *n*, attention needs the keys and values of tokens 1 … n-1 at every layer. A server
# keeps them in the **KV cache**, one per conversation. Its size per token of context is
#
# $$2\,(\text{K and V}) \times \text{layers} \times \text{KV heads} \times \text{head size} \times \text{bytes per value}$$
#
# SmolLM2's shape comes straight from its GGUF metadata:

# %%
# NBVAL_CHECK_OUTPUT
from course_utils.assets import bundled_model_check
from course_utils.serving import KNOWN_SHAPES, gguf_shape, kv_cache_bytes_per_token

shape = gguf_shape(MODEL)
print(shape)
if bundled_model_check(MODEL, "SmolLM2 uses grouped-query attention"):
    assert shape["n_kv_heads"] < shape["n_heads"]  # grouped-query attention: 3 KV heads serve 9 query heads

# %%
# NBVAL_CHECK_OUTPUT
import pandas as pd

shapes = {"this model": {k: shape[k] for k in ("n_layers", "n_kv_heads", "head_dim")}} | {
    name: s for name, s in KNOWN_SHAPES.items() if name != "SmolLM2-135M"}
rows = []
for name, s in shapes.items():
    per_token = kv_cache_bytes_per_token(**s)  # fp16 cache
    rows.append({"model": name, **s, "KiB/token": per_token / 1024, "MiB per 4k-token chat": per_token * 4096 / 2**20,
                 "4k chats in 16 GiB": 16 * 2**30 // (per_token * 4096)})
kv = pd.DataFrame(rows).set_index("model")
print(kv.round(1).to_string())

# %%
# NBVAL_IGNORE_OUTPUT
_ = record("KV cache bytes/token (this model, fp16)", kv.loc["this model", "KiB/token"] * 1024, fmt=".0f")
_ = record("KV cache KiB/token Llama-3.1-8B (fp16)", kv.loc["Llama-3.1-8B", "KiB/token"], fmt=".0f")

# %% [markdown]
# What to notice:
# - An 8B model's cache costs 128 KiB per token: a single 4k-token conversation holds 512 MiB, on top of
#   16 GB of fp16 weights. Memory for the cache, not arithmetic, limits how many users one GPU can serve.
# - Llama-2-7B has as many KV heads as query heads (32); Llama-3 and Mistral share 8 KV heads between 32
#   query heads (**grouped-query attention**), which cuts the cache by 4×. An 8-bit cache halves it again.
#
# ## 6. Many users, one server
#
# Now the server gets several requests at once. `load_test` sends `REQUESTS` requests with `concurrency` of
# them in flight (a thread pool), each a short greedy chat, and measures every request's latency and the
# total throughput. It only targets servers on this machine and keeps the counts bounded.
#
# First, why we started the server with `--interrupt_requests false`. A second server with the default
# settings, and two streamed requests at once:

# %%
# NBVAL_IGNORE_OUTPUT
from course_utils.serving import load_test

with LlamaServer(model=MODEL) as default_server:
    clash = load_test(default_server.base_url, concurrency=2, n_requests=2, max_tokens=LOAD_TOKENS)
print([(r.completion_tokens, r.finish_reason or "cut short") for r in clash.requests])
assert default_server.process is None  # stopped when the `with` block ended

# %% [markdown]
# One of the two streams ends early (often with no token at all): llama-cpp-python's server runs one
# request at a time and, by default, *interrupts* the running stream when another waits. Friendly for a
# single user who edits and resends a prompt, useless for many users. With interruption off, requests
# queue instead:

# %%
# NBVAL_IGNORE_OUTPUT
from course_utils.serving import plot_sweep, sweep

load_test(server.base_url, concurrency=1, n_requests=1, max_tokens=4)  # warm-up
scaling = sweep(server.base_url, levels=LEVELS, n_requests=REQUESTS, max_tokens=LOAD_TOKENS)
scaling.round(2)

# %%
fig = plot_sweep(scaling)
assert (scaling["errors"] == 0).all()
assert (scaling["tokens/request"] == LOAD_TOKENS).all()  # no request was cut short

# %% [markdown]
# What to notice:
# - **Latency grows with concurrency**: the p50 and p90 latencies and the mean TTFT rise, because a request
#   waits in the queue while the others are generated. The p90 is the user who waited longest.
# - **Throughput stays flat**: the server decodes one sequence at a time, so tokens/s for everyone together
#   cannot beat what one request gets when it has the server to itself (recorded below). On a busy machine
#   the concurrency-1 row can show less than that, because one slow request (see its p90) stalls the whole
#   queue of one; with more requests waiting, the server never sits idle between them.
# - **Average in flight** is Little's law: the sum of all latencies divided by the wall time is the mean
#   number of requests in the system. It follows the concurrency level: requests are *waiting*, not being
#   served together.

# %%
assert scaling["avg in flight"].iloc[-1] > 1.5 * scaling["avg in flight"].iloc[0], "more requests in flight must mean more waiting"
assert scaling["mean TTFT s"].iloc[-1] > scaling["mean TTFT s"].iloc[0], "queueing shows up as a longer wait for the first token"

# %%
# NBVAL_IGNORE_OUTPUT
first, last = scaling.iloc[0], scaling.iloc[-1]
alone = LOAD_TOKENS / first["p50 latency s"]  # what one request gets when it has the server to itself
_ = record("one request alone (tokens/s)", round(alone, 1), note="LOAD_TOKENS / p50 latency at concurrency 1")
_ = record(f"server throughput at concurrency {scaling.index[-1]} (tokens/s)", round(last["throughput tokens/s"], 1))
_ = record(f"p50 latency growth 1 -> {scaling.index[-1]} users", round(last["p50 latency s"] / first["p50 latency s"], 1), note="x", fmt=".1f")

# %% [markdown]
# ### What changes for serving many users
#
# A decode step for one sequence reads *all* the weights from memory to produce one token: the CPU or GPU
# mostly waits for memory. Reading the weights once and using them for 32 sequences costs hardly more than
# for one. That is **batching**, and it is where real servers get their throughput:
#
# - **Continuous batching** ([vLLM](https://docs.vllm.ai), TGI, llama.cpp's C++ `llama-server`): new requests
#   join the running batch at the next decode step and finished ones leave, instead of waiting for a whole
#   batch to end. Throughput then grows almost linearly with concurrency until the GPU is busy, and latency
#   grows slowly instead of in queue-sized steps.
# - **Paged KV cache** (vLLM's PagedAttention): the cache is stored in fixed-size pages allocated as a
#   conversation grows, like virtual memory, instead of one maximum-length block per user. Less waste means
#   more users in the same memory (section 5), and shared prefixes (a common system prompt) are stored once.
# - **Slots** (`llama-server --parallel 4 --cont-batching`, Ollama's `OLLAMA_NUM_PARALLEL`): N conversations
#   decode together, the context (`--ctx-size`) is split between them. The Python server used here has none
#   of this: it is fine for one user and for teaching, not for a team.
# - **LM Studio** (desktop app, llama.cpp/MLX inside), **text-generation-webui** (a web UI with several
#   loaders) and **LocalAI** (a drop-in OpenAI API for many model types) are convenient front ends for one
#   machine. All of them, and vLLM, expose the OpenAI API, so `get_backend("openai", base_url=...)`, the
#   `openai` client and LangChain work unchanged: only `OPENAI_BASE_URL` changes.
#
# Rules of thumb: for one user on a laptop, latency (TTFT, TPOT) is what counts and llama.cpp or Ollama is
# the right tool; for many users on a GPU, throughput per GPU is what counts and continuous batching with a
# paged KV cache (vLLM) is the standard answer.
#
# ## 7. Stop the server
#
# The process must end with the notebook, even after an error (`with LlamaServer() as server:` does that
# for you). Stopped, the port no longer answers:

# %%
remote.close()
client.close()
server.stop()
try:
    httpx.get(f"{server.base_url}/models", timeout=2)
    still_up = True
except httpx.HTTPError:
    still_up = False
assert server.process is None and not still_up
print("server stopped; the port no longer answers")

# %% [markdown]
# ## Summary
#
# - One interface, five runtimes: in-process (llama.cpp, transformers, GPT4All) and servers (Ollama, any
#   OpenAI-compatible server). A missing backend is an explained one-line error, not a crash.
# - `LlamaServer` runs a real OpenAI-compatible server on loopback; the `openai` client, LangChain's
#   `ChatOpenAI` and the course's `openai` backend all talk to it. Beware LangChain's `max_completion_tokens`.
# - An Ollama `Modelfile` fixes a model's weights, system prompt, parameters and chat template.
# - `measure_stream` turns any stream into TTFT, TPOT and tokens/s; `compare_backends` and `plot_comparison`
#   compare backends on the same conversation.
# - KV-cache memory per token is 2 × layers × KV heads × head size × bytes: 22.5 KiB for SmolLM2, 128 KiB for
#   an 8B model with grouped-query attention.
# - A one-request-at-a-time server under load: latency grows with the number of users, throughput stays flat.
#   Continuous batching, paged KV caches and parallel slots (vLLM, llama-server) are what change that.
#
# ## Exercises
#
# Open [`labs/04_local_serving_lab.ipynb`](../labs/04_local_serving_lab.ipynb): compute TTFT and TPOT from the
# stamps of a real stream, call the local server with the `openai` client, compute KV-cache bytes per token,
# and write a tiny load test yourself. Then try:
# 1. Run section 6 with `stream=False` in `load_test`. Which number can you no longer see?
# 2. Start the server with `n_threads=1` and repeat the load test. What happens to throughput, and why?
# 3. How many 8k-token conversations of Llama-3.1-8B fit into the 80 GB of an H100 next to its 16 GB of
#    fp16 weights? With an 8-bit KV cache?
