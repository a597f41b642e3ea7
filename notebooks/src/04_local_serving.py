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
# **Run time:** 56 s on a 2-core CPU (Intel(R) Xeon(R) Processor), measured by `course run` on 2026-12-02; a slower machine takes longer.

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
SWEEP_REPEATS = 2  # load-test runs per level, in turns; each level keeps its least disturbed run

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

from IPython.display import Markdown, display

from course_utils import CourseError
from course_utils.backends import available_backends

conversation = [
    {"role": "system", "content": "You are a concise assistant."},
    {"role": "user", "content": "What is the capital of France?"},
]
FRENCH_WORDS = {"le", "la", "les", "du", "des", "au", "est", "une"}


def verdict(text):
    """A crude but honest judge of an answer to our question: does it name Paris, and in English?"""
    words = {w.strip(".,:;!?'\"").lower() for w in text.split()}
    if "Paris" not in text:
        return "WRONG: does not name Paris"
    if words & FRENCH_WORDS:
        return "names Paris, but rambles in French: not an answer to an English question"
    return "right: names Paris"


answers = {}
for name in available_backends():
    started = time.perf_counter()
    try:
        with get_backend(name, model=MODEL) as backend:
            reply = backend.chat(conversation, max_tokens=MAX_TOKENS)
        answers[name] = reply.text
        print(f"ran         {name:<12} ({time.perf_counter() - started:4.1f} s) {reply.text[:70]!r}\n{'':25}-> {verdict(reply.text)}")
    except CourseError as err:
        answers[name] = None
        print(f"unavailable {name:<12} {type(err).__name__}: {err}")

# %% [markdown]
# What to notice:
# - A backend that is missing says so in one line and how to start it (`ollama` and `openai` need a server
#   that is not running yet), instead of a 40-line connection traceback.
# - Each answer is judged, not just shown: `verdict` checks whether it names Paris, and whether it is in
#   French (a French article or "est"), which nobody asked for.
# - llama.cpp and GPT4All read the same 4-bit GGUF file; transformers runs an fp32 copy *de-quantized from
#   that file* (lesson 05, section 3): the same weights, but not the same arithmetic (llama.cpp rounds the
#   activations to 8 bits inside its 4-bit matrix products), so not always the same words (lesson 00, section 5).

# %%
assert answers["llamacpp"] and answers["transformers"], "the in-process backends must always work"
available_now = [name for name, text in answers.items() if text]
print("available without a server:", available_now)
wrong = {name: verdict(text) for name, text in answers.items() if text and not verdict(text).startswith("right")}
if wrong:
    lines = "\n".join(f"- **{name}**: {v}." for name, v in wrong.items())
    starts = ", ".join(f"*{text.split()[0] if text.split() else '(empty)'}* ({name})" for name, text in answers.items() if text)
    display(Markdown(f"Not every backend got it right:\n{lines}\n\nA small model is fragile: a small numerical "
                     f"difference can change the first greedy token (the replies begin with {starts}), and every later "
                     "token follows that turn: greedy decoding never goes back. This is why the course judges answers "
                     "with checks like `verdict`, and why lesson 09 measures quality on hundreds of questions, not one."))
else:
    display(Markdown("Every backend that ran named Paris, in English, on this run."))

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

server = LlamaServer(model=MODEL)
print(" ".join(a if "/" not in a else "…/" + a.rsplit("/", 1)[-1] for a in server.args[1:]))

# %% [markdown]
# `LlamaServer` always adds `--interrupt_requests false`, which matters in section 6: by default
# llama-cpp-python's server *ends a running stream early* whenever another request arrives. Start it and ask
# which models it serves (the `/v1/models` endpoint):

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
print("->", verdict(response.choices[0].message.content))
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
print("".join(text for _, text in stamps), "\n->", verdict("".join(text for _, text in stamps)))
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
print(via_backend.text, "\n->", verdict(via_backend.text))
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
# Where prompt tokens show as 0 (printed above): llama-cpp-python's server sends no `usage` while streaming, and only the server
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
print(message.content, "\n->", verdict(message.content))
print(message.response_metadata["token_usage"])
texts_by_client = {"openai client": response.choices[0].message.content, "course backend": via_backend.text, "LangChain": message.content}
print("distinct answers from the three clients:", len(set(texts_by_client.values())))

# %%
# NBVAL_IGNORE_OUTPUT
sent = time.perf_counter()
lc_timings = measure_stream(chat_model.stream("Name three colours."), start=sent)
print(f"LangChain stream: {lc_timings.completion_tokens} tokens, TTFT {lc_timings.ttft_s * 1000:.0f} ms, "
      f"{lc_timings.tokens_per_s:.0f} tokens/s")
assert 1 <= lc_timings.completion_tokens <= MAX_TOKENS

# %% [markdown]
# What to notice: three client libraries, one server. They all send the same request, so where their answers
# differ (the count of distinct answers is printed above), the difference comes from the server's prompt cache,
# not from the client. The `usage` numbers come from the server. `measure_stream` timed LangChain's `AIMessageChunk`s without knowing anything about LangChain.
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
# What to notice, computed from the table above (numbers vary between machines and runs, so the sentences
# below are chosen from this run's numbers):

# %%
# NBVAL_IGNORE_OUTPUT
def times_slower(a, b):
    """How many times slower backend a decodes than backend b (TPOT ratio)."""
    return ran.loc[a, "TPOT ms"] / ran.loc[b, "TPOT ms"]


notes = []
if "openai" in ran.index:
    server_ttft, local_ttft = ran.loc["openai", "TTFT ms"], ran.loc["llamacpp", "TTFT ms"]
    if server_ttft < local_ttft:
        notes.append(f"**TTFT**: the server answered first ({server_ttft:.0f} ms vs {local_ttft:.0f} ms in-process) although it adds an "
                     "HTTP round trip, JSON and its own chat-template rendering: it has seen this conversation before and reuses "
                     "its KV cache (prompt caching, section 2), while the course's `llamacpp` backend resets its cache for "
                     "reproducible answers and reads the whole prompt again.")
    else:
        notes.append(f"**TTFT**: the server took {server_ttft:.0f} ms vs {local_ttft:.0f} ms in-process: TTFT includes reading the "
                     "prompt (prefill), and the server adds an HTTP round trip, JSON and its own chat-template rendering.")
llama_family = [n for n in ("llamacpp", "gpt4all", "openai") if n in ran.index]
spread = ran.loc[llama_family, "TPOT ms"].max() / ran.loc[llama_family, "TPOT ms"].min()
tpots = ", ".join(f"{n} {ran.loc[n, 'TPOT ms']:.1f} ms" for n in llama_family)
notes.append(f"**TPOT** (decode speed): {', '.join(llama_family)} all run llama.cpp kernels on the same 4-bit file: {tpots}, "
             + ("within 1.5× of each other, as expected." if spread < 1.5 else
                f"a spread of {spread:.1f}×: on a busy machine each row is measured at a different moment, so this says more about "
                "the machine than about the engines (`benchmarks/backends.py` measures them side by side)."))
ratio = times_slower("transformers", "llamacpp")
if ratio >= 2:
    how = f"**{ratio:.1f}× slower** per token than llama.cpp"
elif ratio >= 1.2:
    how = f"{ratio:.1f}× slower per token than llama.cpp: less than the usual gap, so this run was probably disturbed"
else:
    how = (f"{ratio:.2f}× llama.cpp's time per token, no slower on this run: with this few tokens and a busy machine, "
           "one measurement is not enough (raise `REPEATS`, or run `benchmarks/backends.py`)")
notes.append(f"**transformers** runs fp32 PyTorch (it reads 32 bits per weight for every token, the GGUF 5: lesson 05) and is {how}.")
display(Markdown("\n".join(f"- {n}" for n in notes)))
_ = record("transformers TPOT / llama.cpp TPOT", ratio, note="04 comparison, one run each, not side by side", fmt=".1f")

# %% [markdown]
# - **Load time** is paid once per process: this is why people run a server that keeps the model loaded.
# - On a busy machine everything slows down, and each row above was measured at a different moment;
#   `benchmarks/backends.py` measures each backend's ratio to raw llama-cpp-python side by side in one run,
#   which cancels most of that noise.
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

# %%
# NBVAL_CHECK_OUTPUT
big = kv.loc["Llama-3.1-8B"]
gqa_saving = kv.loc["Llama-2-7B", "KiB/token"] / big["KiB/token"]
display(Markdown(
    f"- An 8B model's cache costs {big['KiB/token']:.0f} KiB per token: a single 4k-token conversation holds "
    f"{big['MiB per 4k-token chat']:.0f} MiB, on top of 16 GB of fp16 weights (8 billion × 2 bytes). Memory for the "
    "cache, not arithmetic, limits how many users one GPU can serve.\n"
    f"- Llama-2-7B has as many KV heads as query heads ({kv.loc['Llama-2-7B', 'n_kv_heads']}); Llama-3.1 and Mistral share "
    f"{big['n_kv_heads']:.0f} KV heads between 32 query heads (**grouped-query attention**, head counts from each model's "
    f"published `config.json`), which cuts the cache by {gqa_saving:.0f}×. An 8-bit cache halves it again."))

# %% [markdown]
# ## 6. Many users, one server
#
# Now the server gets several requests at once. `load_test` sends `REQUESTS` requests with `concurrency` of
# them in flight (a thread pool), each a short greedy chat, and measures every request's latency and the
# total throughput. It only targets servers on this machine and keeps the counts bounded. `sweep` runs it at
# each level of `LEVELS`, `SWEEP_REPEATS` times in turns, and keeps each level's least disturbed run (the
# shortest wall time): on a busy machine a stall then cannot make one level look slow on its own.
#
# First, why `LlamaServer` turns interruption off. A second server with llama-cpp-python's own default
# (`--interrupt_requests true`: the last value given wins), and two streamed requests at once:

# %%
# NBVAL_IGNORE_OUTPUT
from course_utils.serving import load_test

with LlamaServer(model=MODEL, extra_args=("--interrupt_requests", "true")) as default_server:
    clash = load_test(default_server.base_url, concurrency=2, n_requests=2, max_tokens=LOAD_TOKENS)
print([(r.completion_tokens, r.finish_reason or "cut short") for r in clash.requests])
assert default_server.process is None  # stopped when the `with` block ended
cut_short = [r for r in clash.requests if r.completion_tokens < LOAD_TOKENS]
if cut_short:
    display(Markdown(f"{len(cut_short)} of the 2 streams ended early, with {', '.join(str(r.completion_tokens) for r in cut_short)} "
                     f"of {LOAD_TOKENS} tokens: llama-cpp-python's server runs one request at a time and, by default, "
                     "*interrupts* the running stream when another waits."))
else:
    display(Markdown("This time both streams got all their tokens: the second request arrived only after the first had "
                     "finished, so there was nothing to interrupt (it depends on timing). When a request does wait, "
                     "llama-cpp-python's server, which runs one request at a time, *interrupts* the running stream by default."))

# %% [markdown]
# Interrupting is friendly for a single user who edits and resends a prompt, useless for many users. With
# interruption off, requests queue instead:

# %%
# NBVAL_IGNORE_OUTPUT
from course_utils.serving import plot_sweep, sweep

load_test(server.base_url, concurrency=1, n_requests=1, max_tokens=4)  # warm-up
scaling = sweep(server.base_url, levels=LEVELS, n_requests=REQUESTS, max_tokens=LOAD_TOKENS, repeats=SWEEP_REPEATS)
scaling.round(2)

# %%
fig = plot_sweep(scaling)
assert (scaling["errors"] == 0).all()
assert (scaling["tokens/request"] == LOAD_TOKENS).all()  # no request was cut short

# %%
lo, hi = scaling.index[0], scaling.index[-1]
latency_growth = scaling.loc[hi, "p50 latency s"] / scaling.loc[lo, "p50 latency s"]
ttft_growth = scaling.loc[hi, "mean TTFT s"] / scaling.loc[lo, "mean TTFT s"]
assert scaling.loc[hi, "avg in flight"] > 1.5 * scaling.loc[lo, "avg in flight"], "more requests in flight must mean more waiting"
if hi >= 2 * lo:  # with twice as many in flight, each request waits behind at least one other
    assert ttft_growth > 1.5, f"queueing shows up as a longer wait for the first token; it grew only {ttft_growth:.2f}x"
    assert latency_growth > 1.3, f"p50 latency grew only {latency_growth:.2f}x from {lo} to {hi} requests in flight"

# %% [markdown]
# What to notice, from the table (the sentences are chosen from this run's numbers):

# %%
# NBVAL_IGNORE_OUTPUT
first, last = scaling.iloc[0], scaling.iloc[-1]
alone = LOAD_TOKENS / first["p50 latency s"]  # what one request gets when it has the server to itself
growth = last["throughput tokens/s"] / first["throughput tokens/s"]
notes = [f"**Latency grows with concurrency** (asserted above): p50 latency {first['p50 latency s']:.2f} s → {last['p50 latency s']:.2f} s "
         f"({latency_growth:.1f}×) and mean TTFT {first['mean TTFT s']:.2f} s → {last['mean TTFT s']:.2f} s ({ttft_growth:.1f}×) from {lo} to {hi} "
         "requests in flight, because a request waits in the queue while the others are generated. The p90 is the user "
         "who waited longest."]
throughputs = " → ".join(f"{v:.1f}" for v in scaling["throughput tokens/s"])
if growth < 1.5:
    notes.append(f"**Throughput stays roughly flat** ({throughputs} tokens/s, ×{growth:.2f} from {lo} to {hi}): the server "
                 "decodes one sequence at a time, so all users together get about what one request gets when it has the "
                 f"server to itself ({alone:.1f} tokens/s at concurrency {lo}).")
else:
    notes.append(f"**Throughput grew ×{growth:.1f}** ({throughputs} tokens/s). A one-at-a-time server cannot decode faster "
                 "for more users; what grows is the share of time it is busy. At concurrency 1 it idles between the end of "
                 "one request and the arrival of the next (HTTP, JSON, the client's thread), and on a busy machine one slow "
                 "request (see the p90) stalls the whole queue of one; with more requests waiting, the next one is already there. "
                 f"Compare with one request alone: {alone:.1f} tokens/s (from the p50 latency at concurrency {lo}).")
notes.append(f"**Average in flight** is Little's law: the sum of all latencies divided by the wall time is the mean number "
             f"of requests in the system: {' → '.join(f'{v:.2f}' for v in scaling['avg in flight'])}. It follows the "
             "concurrency level: requests are *waiting*, not being served together.")
display(Markdown("\n".join(f"- {n}" for n in notes)))
_ = record("one request alone (tokens/s)", round(alone, 1), note="LOAD_TOKENS / p50 latency at concurrency 1")
_ = record(f"server throughput at concurrency {hi} (tokens/s)", round(last["throughput tokens/s"], 1), note=f"x{growth:.2f} vs concurrency {lo}")
_ = record(f"p50 latency growth {lo} -> {hi} users", round(latency_growth, 1), note="x", fmt=".1f")

# %% [markdown]
# ### What changes for serving many users
#
# A decode step for one sequence reads *all* the weights from memory to produce one token: the CPU or GPU
# mostly waits for memory. Reading the weights once and using them for 32 sequences costs hardly more than
# for one. That is **batching**, and it is where real servers get their throughput:
#
# - **Continuous batching** ([vLLM](https://docs.vllm.ai), TGI, llama.cpp's C++ `llama-server`): new requests
#   join the running batch at the next decode step and finished ones leave, instead of waiting for a whole
#   batch to end. Throughput then grows with concurrency until the compute units are busy: the vLLM paper
#   (Kwon et al., "Efficient Memory Management for Large Language Model Serving with PagedAttention", SOSP 2023)
#   reports 2–4× the throughput of earlier GPU servers at the same latency.
# - **Paged KV cache** (vLLM's PagedAttention): the cache is stored in fixed-size pages allocated as a
#   conversation grows, like virtual memory, instead of one maximum-length block per user. Less waste means
#   more users in the same memory (section 5), and shared prefixes (a common system prompt) are stored once.
# - **Slots** (`llama-server --parallel 4 --cont-batching`, Ollama's `OLLAMA_NUM_PARALLEL`): N conversations
#   decode together, the context (`--ctx-size`) is split between them. The Python server used above has none
#   of this: it is fine for one user and for teaching, not for a team.
# - **LM Studio** (desktop app, llama.cpp/MLX inside), **text-generation-webui** (a web UI with several
#   loaders) and **LocalAI** (a drop-in OpenAI API for many model types) are convenient front ends for one
#   machine. All of them, and vLLM, expose the OpenAI API, so `get_backend("openai", base_url=...)`, the
#   `openai` client and LangChain work unchanged: only `OPENAI_BASE_URL` changes.
#
# Does batching help on this 2-core CPU too? llama.cpp's C++ `llama-server` with one slot per request in
# flight (`LlamaCppServer`, the engine behind `course serve`), the same load test. It is not on PyPI:
# `bash tools/build_llama_server.sh` compiles it once (6-10 min); without it this cell says so and moves on.

# %%
# NBVAL_IGNORE_OUTPUT
from course_utils.server import LlamaCppServer, llama_server_binary

batched = None
if llama_server_binary() is None:
    print("llama-server is not built on this machine: run `bash tools/build_llama_server.sh` once to see this comparison")
else:
    with LlamaCppServer(model=MODEL, parallel=max(LEVELS)) as slots_server:
        load_test(slots_server.base_url, concurrency=1, n_requests=1, max_tokens=4)  # warm-up
        batched = sweep(slots_server.base_url, levels=LEVELS, n_requests=REQUESTS, max_tokens=LOAD_TOKENS, repeats=SWEEP_REPEATS)
    side_by_side = pd.DataFrame({"one at a time (llama_cpp.server)": scaling["throughput tokens/s"],
                                 f"{max(LEVELS)} slots (llama-server)": batched["throughput tokens/s"]})
    print("throughput, tokens/s for all users together:")
    print(side_by_side.round(1).to_string())

# %%
# NBVAL_IGNORE_OUTPUT
if batched is not None:
    slots_growth = batched["throughput tokens/s"].iloc[-1] / batched["throughput tokens/s"].iloc[0]
    slots_latency_growth = batched["p50 latency s"].iloc[-1] / batched["p50 latency s"].iloc[0]
    trend = "grew" if slots_growth >= 1.1 else "fell" if slots_growth <= 0.9 else "stayed about level"
    text = (f"With {max(LEVELS)} slots, throughput {trend} (×{slots_growth:.2f} from {lo} to {hi} requests in flight; the "
            f"one-at-a-time server: ×{growth:.2f}), and p50 latency grew ×{slots_latency_growth:.2f} (one at a time: ×{latency_growth:.2f}). ")
    if slots_growth >= 1.3 and slots_growth > 1.2 * growth:
        text += "Batching pays even on a CPU: one pass over the weights serves several sequences. "
    else:
        text += "On this run batching did not pay off clearly. "
    alone_a, alone_b = scaling["throughput tokens/s"].iloc[0], batched["throughput tokens/s"].iloc[0]
    if max(alone_a, alone_b) > 1.5 * min(alone_a, alone_b):
        text += (f"At concurrency {lo}, where batching plays no part, the two servers gave {alone_a:.1f} and {alone_b:.1f} tokens/s "
                 "although both run llama.cpp's kernels on the same file: this run was disturbed (a busy machine), so read these "
                 "numbers with care and rerun on a quiet machine. ")
    text += "On a GPU a single sequence leaves most arithmetic units idle, which is where batching gains most (the vLLM paper above)."
    display(Markdown(text))
    _ = record(f"llama-server {max(LEVELS)} slots throughput growth {lo} -> {hi}", slots_growth, note=f"x; one-at-a-time server x{growth:.2f}", fmt=".2f")

# %% [markdown]
# ### A class of 32: what `benchmarks/class_serving.py` recorded
#
# A teacher sharing one machine between 20–40 learners needs the same comparison at 1, 4, 16 and 32 requests in
# flight, and with the engine teachers use most, vLLM (its CPU build, `bash tools/install.sh --vllm`, an
# environment of its own). That takes several minutes and a second environment, too much for this lesson, so the
# benchmark records it: `python benchmarks/class_serving.py --vllm .venv-vllm/bin/python --out data/class_serving.json`.
# The cell below reads the recording, **not this run**, and prints the machine it was measured on. Run the benchmark
# on your own server to replace it. The engines serve the same model but not the same file: the llama.cpp servers
# read the Q4_1 GGUF, vLLM (which does not run that format) the course's bf16 copy converted from it.

# %%
import json

import matplotlib.pyplot as plt

from course_utils.paths import data_path

recorded = json.loads(data_path("class_serving.json").read_text())
at = recorded["machine_start"]
print(f"recorded by {recorded['benchmark']} on {recorded['date']}: {at['cores']} cores, {at['cpu']}, "
      f"load {at['load_1min']} at the start and {recorded['machine_end']['load_1min']} at the end; "
      f"{recorded['settings']['tokens']} tokens per reply; {recorded['settings']['weights']}")
classroom = pd.DataFrame(recorded["rows"])
for column in ("tokens/s", "p50 s", "p95 s"):
    classroom[column] = classroom[column].astype(float)
print("\nthroughput, tokens/s for all learners together:")
print(classroom.pivot(index="learners", columns="engine", values="tokens/s").to_string())
print("\np95 time for one reply, s:")
print(classroom.pivot(index="learners", columns="engine", values="p95 s").to_string())

fig, ax = plt.subplots(figsize=(6, 3.5))
for engine, rows in classroom.groupby("engine"):
    ax.plot(rows["learners"], rows["tokens/s"], marker="o", label=engine)
ax.set(xscale="log", xlabel="learners with a request in flight", ylabel="tokens/s, all learners together",
       title=f"One {at['cores']}-core machine serving a class (recorded {recorded['date']})")
levels = sorted(classroom["learners"].unique())
ax.set_xticks(levels, labels=[str(n) for n in levels])
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# What to notice, read from the recording by the next cell: which engine serves the most learners at once, by how
# much, and what that does to the slowest replies.

# %%
busiest = classroom[classroom["learners"] == classroom["learners"].max()].set_index("engine")
one = classroom[classroom["learners"] == classroom["learners"].min()].set_index("engine")
base = busiest.loc["llama-cpp-python"]
best = busiest["tokens/s"].idxmax()
text = (f"With {int(base['learners'])} learners at once, llama-cpp-python's server (one request at a time) gave {base['tokens/s']:.0f} tokens/s "
        f"and a p95 reply of {base['p95 s']:.1f} s; the fastest engine, **{best}**, gave {busiest.loc[best, 'tokens/s']:.0f} tokens/s "
        f"(×{busiest.loc[best, 'tokens/s'] / base['tokens/s']:.1f}) with a p95 of {busiest.loc[best, 'p95 s']:.1f} s. ")
if "vllm" in busiest.index:
    text += (f"With one learner, where there is nothing to batch, vLLM gave {one.loc['vllm', 'tokens/s']:.0f} tokens/s against "
             f"llama-cpp-python's {one.loc['llama-cpp-python', 'tokens/s']:.0f}: batching engines pay off under load, not for one user. ")
if "course serve (llama-server)" in busiest.index:
    cost = 1 - busiest.loc["course serve (llama-server)", "tokens/s"] / busiest.loc["llama-server", "tokens/s"]
    text += ("`course serve`'s front door (API key and request log) in front of llama-server "
             + (f"cost {cost:.0%} of its throughput at that level." if cost >= 0.02 else f"made no measurable difference ({-cost:+.0%} throughput)."))
display(Markdown(text))

# %% [markdown]
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
# - KV-cache memory per token is 2 × layers × KV heads × head size × bytes (section 5 computed it for this model
#   and for 7-8B models): memory for the cache limits how many users one GPU serves.
# - A one-request-at-a-time server under load: latency grows with the number of users, and throughput cannot
#   grow beyond keeping the one decoder busy (section 6 printed by how much it changed on this run).
#   Continuous batching, paged KV caches and parallel slots (vLLM, llama-server) are what change that.
#
# ## Exercises
#
# Open [`labs/04_local_serving_lab.ipynb`](../labs/04_local_serving_lab.ipynb): compute TTFT and TPOT from the
# stamps of a real stream, call the local server with the `openai` client, compute KV-cache bytes per token,
# and write a tiny load test yourself.
# Its measured exercise (fit a chat into a prompt-token budget as the real server counts it) reports your number beside the target and the reference solution's.
# Then try:
# 1. Run section 6 with `stream=False` in `load_test`. Which number can you no longer see?
# 2. Start the server with `n_threads=1` and repeat the load test. What happens to throughput, and why?
# 3. How many 8k-token conversations of Llama-3.1-8B fit into the 80 GB of an H100 next to its 16 GB of
#    fp16 weights? With an 8-bit KV cache?
