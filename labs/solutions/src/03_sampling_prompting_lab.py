# %% [markdown]
# # Lab 03 · Sampling & prompting: the filters by hand
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/local-llm-lab/local-llm-lab/blob/main/labs/03_sampling_prompting_lab.ipynb)
#
# Six exercises on lesson 03: five filters and prompt builders checked against the course's own, and one prompt you
# design and the check measures on held-out words. Replace each `raise NotImplementedError` with your code, run the cell,
# then look at the check below it: ✅ means right, ❌ comes with a hint, ⏳ means not done yet. The checks compare
# your functions with `course_utils.sampling` and `course_utils.prompting`, on small hand-made logits and on
# SmolLM2's real next-token logits. A first ❌ says what is wrong; `hint("top-k")` (the check's name) gives more.
#
# Each function takes and returns a 1-D PyTorch tensor of logits (one score per vocabulary token). Removed
# tokens get `float("-inf")`, so that softmax gives them probability 0. Never change the tensor you are given:
# work on a copy (`logits.clone()`) or build a new one.
#
# **Run time:** 14 s on a 2-core CPU (Intel(R) Xeon(R) Processor), measured by `course run` on 2026-12-02; a slower machine takes longer.

# %%
# Colab only: install the course (~5 min the first time). Does nothing on your own machine.
import sys
if "google.colab" in sys.modules:
    # !git clone -q --depth 1 https://github.com/local-llm-lab/local-llm-lab /content/local-llm-lab
    # !bash /content/local-llm-lab/tools/install.sh --system

# %% tags=["parameters"]
BACKEND = "auto"  # unused: the exercises work on the PyTorch model's logits directly
MODEL = None
SEED = 0
PROMPT = "The best thing about living by the sea is"

# %%
from course_utils import setup_notebook
from course_utils.assets import load_hf_model
from course_utils.checks import hint  # noqa: F401  (hint("top-k") in a cell of your own)
from course_utils.checks.sampling import (
    check_few_shot,
    check_opposites_prompt,
    check_repetition_penalty,
    check_temperature_softmax,
    check_top_k,
    check_top_p,
)

cfg = setup_notebook(seed=SEED)

import torch

model, tokenizer = load_hf_model(MODEL)
prompt_ids = tokenizer.encode(PROMPT, add_special_tokens=False)
with torch.inference_mode():
    real_logits = model(input_ids=torch.tensor([prompt_ids])).logits[0, -1]  # the checks use these too
print(f"{len(prompt_ids)} prompt tokens -> {real_logits.numel():,} next-token logits")

# %% [markdown]
# ## Exercise 1: softmax with a temperature
#
# Write `temperature_softmax(logits, temperature)`: the probabilities `softmax(logits / T)`. T < 1 must sharpen
# the distribution, T > 1 flatten it. Make it work for large logits too: subtract the largest value before
# `torch.exp` (it cancels out, and no `exp` can overflow). Use `torch.exp` and `sum`, not `torch.softmax`.

# %%
def temperature_softmax(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    z = logits / temperature
    e = torch.exp(z - z.max())  # the largest entry becomes exp(0) = 1: no overflow
    return e / e.sum()

# %%
# NBVAL_CHECK_OUTPUT
check_temperature_softmax(temperature_softmax, real_logits)

# %% [markdown]
# ## Exercise 2: top-k
#
# Write `top_k(logits, k)`: keep the `k` largest logits unchanged and set every other one to `-inf`. Logits
# *tied* with the k-th largest value stay too (so a tie can keep more than k). With `k <= 0` or
# `k >= len(logits)` top-k is off: return the logits unchanged. `torch.topk(logits, k).values` gives the k
# largest values, largest first.

# %%
def top_k(logits: torch.Tensor, k: int) -> torch.Tensor:
    if k <= 0 or k >= logits.numel():
        return logits
    kth_best = torch.topk(logits, k).values[-1]
    return logits.masked_fill(logits < kth_best, float("-inf"))

# %%
# NBVAL_CHECK_OUTPUT
check_top_k(top_k, real_logits)

# %% [markdown]
# ## Exercise 3: top-p (nucleus)
#
# Write `top_p(logits, p)`: keep the smallest set of most likely tokens whose probabilities add up to at least
# `p`; set the others to `-inf`. With probabilities `[0.5, 0.3, 0.15, 0.05]` and `p = 0.8`, keep the first two
# (0.5 + 0.3 reaches 0.8); with `p = 0.81` keep three. The most likely token always stays; `p >= 1` keeps all.
#
# Steps: sort the logits in descending order (`torch.sort(..., descending=True)` also gives the original
# positions), turn them into probabilities, and drop a token when the tokens *before* it already reach `p`
# (cumulative sum minus its own probability). Then put the decisions back in the original order.

# %%
def top_p(logits: torch.Tensor, p: float) -> torch.Tensor:
    if p >= 1.0:
        return logits
    sorted_logits, order = torch.sort(logits, descending=True)
    probs = torch.softmax(sorted_logits, dim=-1)
    before = probs.cumsum(dim=-1) - probs  # probability of the tokens ranked above each one
    drop = torch.zeros_like(logits, dtype=torch.bool)
    drop[order] = before >= p  # position order[i] gets the decision for rank i
    return logits.masked_fill(drop, float("-inf"))

# %%
# NBVAL_CHECK_OUTPUT
check_top_p(top_p, real_logits)

# %% [markdown]
# ## Exercise 4: repetition penalty
#
# Write `repetition_penalty(logits, previous_ids, penalty)`: for every token id that occurs in `previous_ids`
# (once or many times: penalise it once), divide its logit by `penalty` if the logit is positive, multiply it by
# `penalty` if it is negative. Both make the token less likely when `penalty > 1`. Other logits stay as they are.

# %%
def repetition_penalty(logits: torch.Tensor, previous_ids: list[int], penalty: float) -> torch.Tensor:
    out = logits.clone()
    for i in set(previous_ids):
        out[i] = out[i] / penalty if out[i] > 0 else out[i] * penalty
    return out

# %%
# NBVAL_CHECK_OUTPUT
check_repetition_penalty(repetition_penalty)

# %% [markdown]
# ## Exercise 5: a few-shot chat
#
# Write `few_shot(examples, query, system=None)`: build the chat messages for few-shot prompting. `examples` is a
# list of `(input, output)` pairs; each becomes a user message with the input followed by an assistant message
# with the output, as if the model had answered them before. The `query` is the last user message. With a
# `system` prompt, put `{"role": "system", "content": system}` first; with `None`, add no system message.
#
# For `few_shot([("I loved it.", "positive")], "Never again.")`:
# ```
# [{"role": "user", "content": "I loved it."},
#  {"role": "assistant", "content": "positive"},
#  {"role": "user", "content": "Never again."}]
# ```

# %%
def few_shot(examples: list[tuple[str, str]], query: str, system: str | None = None) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": system}] if system is not None else []
    for text, label in examples:
        messages += [{"role": "user", "content": text}, {"role": "assistant", "content": label}]
    return messages + [{"role": "user", "content": query}]

# %%
# NBVAL_CHECK_OUTPUT
check_few_shot(few_shot)

# %% [markdown]
# ## Exercise 6: a prompt that makes the next token the answer (measured)
#
# Build `opposite_prompt(word)`: a plain-text prompt after which SmolLM2's **greedy next token** is the opposite
# of `word` ("hot" -> "cold"). Build any examples you show the model from `EXAMPLE_PAIRS` below (or other words
# of your own). The check measures your prompt on 20 **held-out** words you never see, greedy, with the real
# model: it passes at 85 % accuracy, and prints your accuracy beside the target and the reference solution's.
# A prompt that writes held-out pairs into itself is refused. Try your prompt with `next_token` first.

# %%
# NBVAL_IGNORE_OUTPUT
EXAMPLE_PAIRS = [("up", "down"), ("good", "bad"), ("near", "far"), ("win", "lose"), ("first", "last"), ("left", "right"), ("day", "night")]


def next_token(prompt: str) -> str:
    """SmolLM2's greedy next token after ``prompt`` (what the check compares)."""
    ids = tokenizer.encode(prompt, add_special_tokens=False)
    with torch.inference_mode():
        return tokenizer.decode([int(model(input_ids=torch.tensor([ids])).logits[0, -1].argmax())])


print(repr(next_token("The opposite of day is")))

# %%
# NBVAL_IGNORE_OUTPUT
def opposite_prompt(word: str) -> str:
    shots = "".join(f"Word: {a}\nOpposite: {b}\n\n" for a, b in EXAMPLE_PAIRS[:4])  # one fixed format, four times
    return f"{shots}Word: {word}\nOpposite:"  # no trailing space: the answer token starts with one


print(repr(next_token(opposite_prompt("day"))))

# %%
# NBVAL_IGNORE_OUTPUT
check_opposites_prompt(opposite_prompt, model, tokenizer)

# %% [markdown]
# ## Going further
#
# - Put your pieces together into `sample(logits, temperature, k, p, penalty, previous_ids, generator)` (penalty,
#   then temperature, top-k, top-p, softmax, `torch.multinomial`). With the same seeded `torch.Generator` it must
#   pick the same token as `course_utils.sampling.choose_token`.
# - Send `few_shot(...)` with a few sentiment examples to `get_backend("llamacpp").chat(...)`, then build the same
#   examples as plain text with `course_utils.prompting.few_shot_prompt` for `complete(...)`. Which format does
#   the 135M model follow better?
# - Write `keep_last_turns(messages, count, budget)` yourself and compare with `course_utils.prompting`.
