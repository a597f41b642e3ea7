# %% [markdown]
# # Lab 04 · Local serving: time it, call it, size it, load it
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/local-llm-lab/local-llm-lab/blob/main/labs/04_local_serving_lab.ipynb)
#
# Five exercises on lesson 04: four checked against the course's own code and the real server, and one you build
# and the check measures against the server's own token counts. Replace each `raise NotImplementedError` with your code, run the cell,
# then run the check below it: ✅ means right, ❌ comes with a hint, ⏳ means not done yet. A first ❌ says what is
# wrong; `hint("stream timings")` (the check's name) gives more.
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
from course_utils import setup_notebook
from course_utils.checks import hint  # noqa: F401  (hint("stream timings") in a cell of your own)
from course_utils.checks.serving import (
    HISTORY_BUDGET,
    check_ask_server,
    check_fire,
    check_fit_history,
    check_kv_bytes,
    check_stream_timings,
    server_prompt_tokens,
)
from course_utils.server import LlamaServer

cfg = setup_notebook(seed=SEED)
# a real local OpenAI-compatible server; requests queue instead of interrupting each other
server = LlamaServer(model=MODEL, extra_args=("--interrupt_requests", "false")).start()
print("server at", server.base_url)

# %% [markdown]
# ## Exercise 1: TTFT and TPOT from a stream's stamps
#
# A stream was recorded as `(time_s, text)` pairs: when each piece arrived and its text. Write
# `stream_timings(start, stamped)` returning `(ttft_s, tpot_s, n_tokens)`: pieces with an empty text are not
# tokens; TTFT is the first token's time minus `start`; TPOT is the mean gap between tokens after the first
# (0.0 with fewer than two tokens).

# %%
# NBVAL_CHECK_OUTPUT
def stream_timings(start: float, stamped: list[tuple[float, str]]) -> tuple[float, float, int]:
    # TODO: keep the stamps whose text is not empty, then compute the three numbers
    raise NotImplementedError


check_stream_timings(stream_timings)

# %% [markdown]
# Your function on a real stream from the server (its numbers depend on this machine):

# %%
# NBVAL_IGNORE_OUTPUT
import time

from course_utils import get_backend

with get_backend("openai", base_url=server.base_url) as remote:
    sent = time.perf_counter()
    stamped = [(time.perf_counter(), chunk.text) for chunk in remote.chat_stream([{"role": "user", "content": "Name three fruits."}], max_tokens=24)]
try:
    ttft, tpot, n = stream_timings(sent, stamped)
    print(f"{n} tokens, TTFT {ttft * 1000:.0f} ms, TPOT {tpot * 1000:.1f} ms")
except NotImplementedError:
    print("(finish exercise 1 to see this)")

# %% [markdown]
# ## Exercise 2: call the local server with the `openai` client
#
# Write `ask_server(base_url, question)` that uses `openai.OpenAI(base_url=..., api_key="sk-local")` to send
# one user message to the model the server serves (`"smollm2"`, or ask `client.models.list()`), greedy
# (`temperature=0.0`) with `max_tokens=32`, and returns the answer text.

# %%
# NBVAL_CHECK_OUTPUT
def ask_server(base_url: str, question: str) -> str:
    # TODO: make an openai.OpenAI client for base_url and call client.chat.completions.create(...)
    raise NotImplementedError


check_ask_server(ask_server, server.base_url)

# %% [markdown]
# ## Exercise 3: KV-cache bytes per token
#
# Write `kv_bytes(n_layers, n_kv_heads, head_dim, bytes_per_value)`: how many bytes of KV cache one token of
# context takes (remember what K and V stand for). SmolLM2-135M has 30 layers, 3 KV heads of size 64;
# Llama-3.1-8B 32 layers, 8 KV heads of size 128.

# %%
# NBVAL_CHECK_OUTPUT
def kv_bytes(n_layers: int, n_kv_heads: int, head_dim: int, bytes_per_value: int = 2) -> int:
    # TODO: one formula
    raise NotImplementedError


check_kv_bytes(kv_bytes)

# %% [markdown]
# ## Exercise 4: a tiny load test
#
# Write `fire(base_url, concurrency, n_requests)` that sends `n_requests` short chat requests
# (`max_tokens=8`, greedy) with `concurrency` of them in flight at once, and returns the list of their
# latencies in seconds (one per request, measured inside each request). Use
# `concurrent.futures.ThreadPoolExecutor`. The check runs `fire(url, 1, 2)` and `fire(url, 2, 4)`: one at a time,
# the latencies add up to at most the wall time; because this server answers one request at a time,
# overlapping requests wait for each other, so their latencies add up to more than the wall time.

# %%
# NBVAL_CHECK_OUTPUT
def fire(base_url: str, concurrency: int, n_requests: int) -> list[float]:
    # TODO: a function that times one request, run with ThreadPoolExecutor(max_workers=concurrency)
    raise NotImplementedError


check_fire(fire, server.base_url)

# %% [markdown]
# ## Exercise 5: fit a long chat into the context (measured)
#
# A chat grows until it no longer fits the model's context. Write `fit_history(base_url, messages, budget)`:
# keep the system message (first) and as many of the **newest** messages as fit in `budget` prompt tokens
# **as the server counts them** (its chat template adds tokens around every message), whole and unchanged;
# the last message (the question) always stays. `server_prompt_tokens(base_url, messages)` asks the server
# (one request that generates one token) and returns its `usage.prompt_tokens`. The check makes long chats you
# never see, sends what you keep to the server, and passes when the server's count is within the budget and
# at least 90 % of the tokens the reference solution keeps; it prints both. Keep the number of requests small.

# %%
# NBVAL_IGNORE_OUTPUT
demo = [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "Hello there!"}]
print(f"budget {HISTORY_BUDGET} tokens; the server counts {server_prompt_tokens(server.base_url, demo)} prompt tokens for {demo}")

# %%
def fit_history(base_url: str, messages: list[dict[str, str]], budget: int) -> list[dict[str, str]]:
    # TODO: the system message + the longest run of newest messages whose server count fits the budget
    raise NotImplementedError

# %%
# NBVAL_IGNORE_OUTPUT
check_fit_history(fit_history, server.base_url)

# %%
server.stop()
