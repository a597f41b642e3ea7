# %% [markdown]
# # 03 · Sampling & prompting: choosing the next token, and asking well
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/local-llm-lab/local-llm-lab/blob/main/notebooks/03_sampling_prompting.ipynb)
#
# **What you will learn**
# - how the model's next-token **logits** become probabilities, and what **temperature**, **top-k**, **top-p**
#   and **repetition penalty** do to them: each written from scratch in NumPy, then checked against
#   `course_utils.sampling`;
# - that this is what the backends really do: greedy = the argmax, `top_k=1` = greedy at any temperature, and
#   a seeded sample of the transformers backend reproduced token for token by hand;
# - how diverse the same prompt's continuations get as the temperature rises, measured;
# - prompting: the chat template as raw text, system prompts, few-shot examples, chain-of-thought, and,
#   honestly, what a 135M-parameter model makes of each;
# - JSON output **forced** by a llama.cpp grammar, and what happens at the **context limit**: a clear error,
#   then three ways to truncate a conversation so it fits.
#
# **Prerequisites:** lessons 00 (backends, generation options), 01 (tokens) and 02 (logits, the generation loop).
#
# **Run time:** 53 s on a 2-core CPU (Intel(R) Xeon(R) Processor), measured by `course run` on 2026-12-01; a slower machine takes longer.

# %%
# Colab only: install the course (~5 min the first time). Does nothing on your own machine.
import sys
if "google.colab" in sys.modules:
    # !git clone -q --depth 1 https://github.com/local-llm-lab/local-llm-lab /content/local-llm-lab
    # !bash /content/local-llm-lab/tools/install.sh --system

# %% tags=["parameters"]
BACKEND = "auto"  # generation experiments; sections 1-5 also load transformers (its logits), 11 llama.cpp (grammars)
MODEL = None  # None = the bundled SmolLM2-135M-Instruct; a .gguf path works for every section
SEED = 0
PROMPT = "The best thing about living by the sea is"
TEMPERATURES = (0.3, 0.7, 1.0, 1.5)
N_SAMPLES = 8  # samples per temperature in the diversity experiment
SAMPLE_TOKENS = 12  # tokens per sample
CTX_DEMO = 512  # the small context window of section 12

# %%
from course_utils import get_backend, record, setup_notebook

cfg = setup_notebook(seed=SEED)

import json

import jsonschema
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from course_utils import ContextOverflow, sampling
from course_utils.assets import bundled_model_check
from course_utils.backends import GenerationOptions, backend_with
from course_utils.plots import labelled
from course_utils.prompting import (
    STEP_BY_STEP,
    STRATEGIES,
    chat_token_counter,
    context_budget,
    few_shot_messages,
    few_shot_prompt,
    fit_to_context,
)

# %% [markdown]
# ## 1. Logits → probabilities
#
# Lesson 02 ended with the model's output: one score, a **logit**, per vocabulary entry, for the token that comes
# next. We load the transformers backend because it gives us the PyTorch model itself (`hf.model`), so every
# logit is visible; the other backend, llama.cpp, is started too for the generation experiments.

# %%
llm = get_backend(BACKEND, model=MODEL)  # "auto" = llama.cpp: ~6x faster for generating text
hf = llm if llm.name == "transformers" else get_backend("transformers", model=MODEL)
backends = {b.name: b for b in (llm, hf)}  # both, once each
prompt_ids = hf.tokenize(PROMPT)
with torch.inference_mode():
    logits_t = hf.model(input_ids=torch.tensor([prompt_ids])).logits[0, -1]  # the last position predicts the next token
logits = logits_t.double().numpy()
print(f"backends: {llm.name} (generation) and {hf.name} (logits)")
print(f"{len(prompt_ids)} prompt tokens -> {logits.size:,} logits, from {logits.min():.1f} to {logits.max():.1f}")

# %% [markdown]
# 49,152 numbers, one per token of the vocabulary, on no particular scale. **Softmax** turns them into
# probabilities: exponentiate (everything becomes positive, and bigger logits win by a lot), then divide by the
# sum. Subtracting the largest logit first changes nothing (it cancels) but keeps `exp` from overflowing.

# %%
def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max())
    return e / e.sum()


probs = softmax(logits)
assert np.isclose(probs.sum(), 1.0) and np.allclose(probs, torch.softmax(logits_t, -1).numpy(), atol=1e-6)
top = np.argsort(-probs)[:10]
pd.DataFrame({"token": [repr(hf.detokenize([int(i)])) for i in top], "id": top,
              "logit": logits[top].round(2), "probability": probs[top].round(4)})

# %% [markdown]
# What to notice: the model is far from sure. " that" and " the" share about two thirds of the probability; the
# rest is spread thinly over tens of thousands of tokens (the ten shown hold about 80%). Sampling means drawing the
# next token from this table, which is why the same prompt can continue in many ways. Our NumPy softmax matches
# PyTorch's (asserted).

# %%
record("p(top next token)", float(probs[top[0]]), note=f"{hf.detokenize([int(top[0])])!r} after {PROMPT!r}", fmt=".3f")
record("p(top 10 tokens)", float(probs[top].sum()), note="of 49,152", fmt=".3f");

# %% [markdown]
# ## 2. Temperature
#
# Divide the logits by a temperature T before softmax. T < 1 stretches the gaps between logits, so the likely
# tokens get likelier (at T → 0 only the top token is left: greedy); T > 1 shrinks them and flattens the
# distribution. From scratch, then checked against `course_utils.sampling.apply_temperature`:

# %%
def with_temperature(z: np.ndarray, t: float) -> np.ndarray:
    return softmax(z / t)


def entropy_bits(p: np.ndarray) -> float:
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


rows = []
for t in TEMPERATURES:
    p = with_temperature(logits, t)
    assert np.allclose(p, torch.softmax(sampling.apply_temperature(logits_t, t), -1).numpy(), atol=1e-6)
    rows.append({"T": t, "p(top token)": p.max(), "tokens for 90%": int((np.cumsum(np.sort(p)[::-1]) < 0.9).sum() + 1),
                 "entropy (bits)": entropy_bits(p)})
by_temperature = pd.DataFrame(rows).set_index("T").round(3)
assert by_temperature["p(top token)"].is_monotonic_decreasing and by_temperature["entropy (bits)"].is_monotonic_increasing
by_temperature

# %% [markdown]
# As T rises, the top token loses probability, the number of tokens needed to cover 90% of the probability
# explodes, and the entropy (the average surprise, in bits) climbs. Both trends are asserted. The picture:

# %%
shown = np.argsort(-probs)[:12]
fig, ax = plt.subplots(figsize=(9, 4))
for t in TEMPERATURES:
    ax.plot(range(len(shown)), with_temperature(logits, t)[shown], marker="o", label=f"T = {t}")
ax.set_xticks(range(len(shown)), [hf.detokenize([int(i)]) for i in shown], rotation=45, ha="right")
ax.legend()
labelled(ax, f"Next token after {PROMPT!r}", "candidate next token (most likely first)", "probability (0 to 1)")
plt.show()

# %% [markdown]
# Same ranking at every temperature (dividing by T never reorders tokens), very different shapes: at T = 0.3 the
# top token takes almost everything, at T = 1.5 the curve is nearly flat and unlikely tokens get real chances.
#
# ## 3. Top-k and top-p
#
# Even at T = 1 the thousands of unlikely tokens together hold a lot of probability, and one bad draw derails a
# text. Two filters cut the tail before sampling by setting logits to −∞ (probability 0):
# - **top-k** keeps the k most likely tokens;
# - **top-p** (nucleus sampling) keeps the smallest set of most likely tokens whose probabilities add up to p,
#   so it keeps few tokens when the model is sure and many when it is not.
#
# From scratch in NumPy:

# %%
def top_k_np(z: np.ndarray, k: int) -> np.ndarray:
    if k <= 0 or k >= z.size:
        return z
    kth_best = np.sort(z)[-k]
    return np.where(z < kth_best, -np.inf, z)


def top_p_np(z: np.ndarray, p: float) -> np.ndarray:
    if p >= 1.0:
        return z
    order = np.argsort(-z)  # most likely first
    ranked = softmax(z)[order]
    before = np.cumsum(ranked) - ranked  # probability of the tokens ranked above each one
    keep = np.zeros(z.size, dtype=bool)
    keep[order] = before < p  # keep a token while the ones above it have not reached p yet
    return np.where(keep, z, -np.inf)


for k in (1, 5, 50):
    assert np.array_equal(np.isfinite(top_k_np(logits, k)), torch.isfinite(sampling.top_k_filter(logits_t, k)).numpy())
for p in (0.5, 0.9, 0.95):
    assert np.array_equal(np.isfinite(top_p_np(logits, p)), torch.isfinite(sampling.top_p_filter(logits_t, p)).numpy())
nucleus = pd.DataFrame({f"T = {t}": [int(np.isfinite(top_p_np(logits / t, p)).sum()) for p in (0.5, 0.9, 0.95)] for t in TEMPERATURES},
                       index=["top_p = 0.5", "top_p = 0.9", "top_p = 0.95"])
nucleus

# %% [markdown]
# Our filters keep exactly the tokens `course_utils.sampling.top_k_filter` and `top_p_filter` keep (asserted).
# The table counts the tokens top-p keeps when it is applied *after* the temperature, as `course_utils` (and
# Hugging Face's `generate`) do: the hotter the distribution, the bigger the nucleus. Top-k would keep k tokens
# at every temperature.

# %%
record("top_p=0.9 nucleus at T=1", int(np.isfinite(top_p_np(logits, 0.9)).sum()), note="tokens kept, of 49,152")
filtered = {"no filter": probs, "top_k = 5": softmax(top_k_np(logits, 5)), "top_p = 0.9": softmax(top_p_np(logits, 0.9))}
fig, ax = plt.subplots(figsize=(9, 4))
for i, (name, p) in enumerate(filtered.items()):
    ax.bar(np.arange(len(shown)) + (i - 1) * 0.27, p[shown], width=0.27, label=name)
ax.set_xticks(range(len(shown)), [hf.detokenize([int(i)]) for i in shown], rotation=45, ha="right")
ax.legend()
labelled(ax, "Probabilities after filtering (T = 1), renormalised", "candidate next token (most likely first)", "probability (0 to 1)")
plt.show()
assert np.isclose(filtered["top_k = 5"][shown[:5]].sum(), 1.0) and filtered["top_k = 5"][shown[5]] == 0

# %% [markdown]
# After a filter, softmax shares all the probability among the survivors, so each kept token gets *more* likely:
# with top-k = 5 the five bars add up to 1 and everything else is exactly 0.
#
# ## 4. Repetition penalty
#
# Small models love loops ("la Femme, la Femme, la Femme, ..."). The CTRL paper's **repetition penalty** makes
# every token already in the text less likely: its logit is divided by the penalty if positive, multiplied if
# negative (dividing a negative number would *raise* it).

# %%
def repetition_penalty_np(z: np.ndarray, previous_ids: list[int], penalty: float) -> np.ndarray:
    z = z.copy()
    seen = np.unique(previous_ids)  # a token seen five times is penalised once
    z[seen] = np.where(z[seen] > 0, z[seen] / penalty, z[seen] * penalty)
    return z


penalised = repetition_penalty_np(logits, prompt_ids, 1.3)
assert np.allclose(penalised, sampling.apply_repetition_penalty(logits_t, prompt_ids, 1.3).numpy(), atol=1e-5)
the, that = hf.tokenize(" the")[0], int(top[0])
assert the in prompt_ids and softmax(penalised)[the] < probs[the]
print(f"p(' the')  {probs[the]:.3f} -> {softmax(penalised)[the]:.3f}   (' the' is in the prompt)")
print(f"p(' that') {probs[that]:.3f} -> {softmax(penalised)[that]:.3f}   (not in the prompt)")

# %% [markdown]
# " the" occurs in the prompt ("by the sea"), so it is penalised and loses probability; " that" is not, so it
# gains what " the" lost. The effect on a whole text, greedy decoding with and without the penalty:

# %%
loop_prompt = "My favourite foods are pizza, pasta,"
distinct_share = {}
for penalty in (1.0, 1.3):
    words = llm.complete(loop_prompt, max_tokens=30, repeat_penalty=penalty).text.split()
    distinct_share[penalty] = len(set(words)) / len(words)
    print(f"repeat_penalty={penalty}: {len(set(words))}/{len(words)} distinct words\n  {loop_prompt} {' '.join(words)}")
assert distinct_share[1.3] > distinct_share[1.0]

# %% [markdown]
# Without the penalty the model soon repeats itself ("chocolate chip cookies and chocolate chip cookies"); with
# 1.3 it (almost) never repeats a word. The price: the penalty also hits words that *should* recur (names, "the",
# the end-of-turn marker from the chat template), so values above ~1.3 make texts odd. Note a difference between
# backends: `course_utils.sampling` (transformers) penalises every token of the prompt and the answer so far,
# while llama.cpp only looks at the **last 64 tokens**.
#
# ## 5. Is this what the backends do?
#
# **Greedy = argmax.** With `temperature=0` both backends pick the most likely token. `generate_ids` is the raw
# token loop behind `chat` and `complete`, so we can take its first token:

# %%
def first_token(backend, **options) -> int:
    stream = backend.generate_ids(prompt_ids, GenerationOptions(**options))
    token = next(stream)
    stream.close()
    return token


greedy_first = {name: first_token(b, temperature=0.0) for name, b in backends.items()}
print({name: (token, hf.detokenize([token])) for name, token in greedy_first.items()}, "| argmax:", int(logits.argmax()))
assert greedy_first["transformers"] == int(logits.argmax())
if bundled_model_check(MODEL, "both backends pick the same first token"):
    assert len(set(greedy_first.values())) == 1  # llama.cpp's arithmetic differs, but the top token leads clearly (0.45 vs 0.23)

# %% [markdown]
# **Top-k = 1 is greedy, at any temperature.** Only one token survives the filter, so there is nothing left to draw:

# %%
rows = []
for backend in backends.values():
    greedy = backend.complete(PROMPT, max_tokens=8).text
    for t in (0.7, 1.5):
        seed = SEED if backend.supports_seeded_sampling else None  # GPT4All's sampler takes no seed (and needs none here)
        sampled = backend.complete(PROMPT, max_tokens=8, temperature=t, top_k=1, seed=seed).text
        rows.append({"backend": backend.name, "temperature": t, "top_k=1 text": sampled, "same as greedy": sampled == greedy})
top1 = pd.DataFrame(rows)
assert top1["same as greedy"].all()
top1

# %% [markdown]
# **A seeded sample, reproduced by hand.** The transformers backend samples with `course_utils.sampling` and a
# `torch.Generator` seeded with `seed`. So if we run the model ourselves, apply the same steps in the same order
# (penalty, temperature, top-k, top-p, softmax, draw) and draw from a generator seeded the same way, we must get
# the very same tokens:

# %%
opts = GenerationOptions(temperature=0.9, top_k=50, top_p=0.95, repeat_penalty=1.2, seed=SEED, max_tokens=8)
stream = hf.generate_ids(prompt_ids, opts)
backend_ids = [next(stream) for _ in range(opts.max_tokens)]
stream.close()

generator = torch.Generator().manual_seed(opts.seed)
ids, steps = list(prompt_ids), []
with torch.inference_mode():
    for _ in range(opts.max_tokens):
        z = hf.model(input_ids=torch.tensor([ids])).logits[0, -1]
        z = sampling.apply_repetition_penalty(z, ids, opts.repeat_penalty)
        z = sampling.top_p_filter(sampling.top_k_filter(sampling.apply_temperature(z, opts.temperature), opts.top_k), opts.top_p)
        p = torch.softmax(z, -1)
        token = int(torch.multinomial(p, 1, generator=generator)[0])
        steps.append({"token": repr(hf.detokenize([token])), "p(token)": round(float(p[token]), 3), "candidates kept": int(torch.isfinite(z).sum())})
        ids.append(token)
assert ids[len(prompt_ids):] == backend_ids
print("backend:", repr(hf.detokenize(backend_ids)), "\nby hand:", repr(hf.detokenize(ids[len(prompt_ids):])))
pd.DataFrame(steps)

# %% [markdown]
# Token for token the same (asserted), although our loop recomputes the whole sequence at every step while the
# backend uses a KV cache (lesson 02). The table shows how often the draw is *not* the top token: a token with
# p = 0.2 gets picked one time in five.
#
# llama.cpp samples with its own C++ code and random numbers, so its samples cannot match these. Its sampler
# chain also runs in another order: top-k, top-p, *then* temperature. With top-p and T ≠ 1 the nucleus differs:

# %%
t, p = 1.5, 0.9
temperature_first = int(torch.isfinite(sampling.top_p_filter(sampling.apply_temperature(logits_t, t), p)).sum())
top_p_first = int(torch.isfinite(sampling.top_p_filter(logits_t, p)).sum())
print(f"top_p={p}, T={t}: {temperature_first:,} tokens kept with temperature first (course_utils, Hugging Face), "
      f"{top_p_first:,} with top-p first (llama.cpp)")
assert temperature_first > top_p_first

# %% [markdown]
# Same options, different candidate sets: "temperature 1.5, top-p 0.9" is a much wilder setting in
# `transformers` than in llama.cpp. Options with the same name do not always mean exactly the same thing across
# tools. (llama.cpp's other defaults, min-p 0.05 for one, are switched off by the course's backend.)
#
# ## 6. Diversity vs temperature
#
# Now sample the same prompt many times at each temperature (different seeds) and count how different the
# continuations are: how many are distinct, and **distinct-2**, the share of word pairs (bigrams) that are
# unique across all samples (1.0 = no pair repeated).

# %%
def distinct_2(texts: list[str]) -> float:
    pairs = [tuple(w[i:i + 2]) for text in texts for w in [text.split()] for i in range(len(w) - 1)]
    return len(set(pairs)) / max(1, len(pairs))


sampler = backend_with("seeded_sampling", llm, model=MODEL)  # llm, or llama.cpp if llm cannot seed its sampler (GPT4All)
samples = {t: [sampler.complete(PROMPT, max_tokens=SAMPLE_TOKENS, temperature=t, seed=SEED + i).text for i in range(N_SAMPLES)]
           for t in TEMPERATURES}
diversity = pd.DataFrame({"distinct continuations": [len(set(s)) for s in samples.values()],
                          "distinct-2": [round(distinct_2(s), 3) for s in samples.values()]}, index=pd.Index(TEMPERATURES, name="T"))
diversity

# %% [markdown]
# Three samples from each end:

# %%
for t in (TEMPERATURES[0], TEMPERATURES[-1]):
    for text in samples[t][:3]:
        print(f"T={t}: {PROMPT}{text}")

# %% [markdown]
# The low-temperature samples mostly start alike (" that it allows you to ..."), the hot ones go anywhere. As a plot:

# %%
fig, ax = plt.subplots()
ax.plot(diversity.index, diversity["distinct-2"], marker="o", label="distinct-2 (unique word pairs / all pairs)")
ax.plot(diversity.index, diversity["distinct continuations"] / N_SAMPLES, marker="s", label=f"distinct continuations / {N_SAMPLES}")
ax.set_ylim(0, 1.05)
ax.legend()
labelled(ax, f"{N_SAMPLES} samples of {SAMPLE_TOKENS} tokens per temperature ({sampler.name})", "temperature T", "diversity (fraction, 0 to 1)")
plt.show()
assert diversity["distinct-2"].iloc[-1] > diversity["distinct-2"].iloc[0]
record(f"distinct-2 at T={TEMPERATURES[0]}", diversity["distinct-2"].iloc[0], note=f"{N_SAMPLES} samples x {SAMPLE_TOKENS} tokens")
record(f"distinct-2 at T={TEMPERATURES[-1]}", diversity["distinct-2"].iloc[-1], note=f"{N_SAMPLES} samples x {SAMPLE_TOKENS} tokens");

# %% [markdown]
# What to notice: at low temperature most samples share their first words (or are identical), at high
# temperature almost every word pair is new (the rise is asserted). More diversity is not better text: the
# T = 1.5 samples drift into nonsense. Typical settings for chat are T ≈ 0.7 with top-p ≈ 0.9; for facts,
# code or extraction, greedy (T = 0) is the usual choice.
#
# ## 7. The chat template, as raw text
#
# Everything from here on is about *what we ask*. A chat is not sent to the model as a list of messages: the
# backend renders it with the model's **chat template** into one string with special marker tokens, and the
# model simply continues that text. `format_chat` shows the string:

# %%
# NBVAL_CHECK_OUTPUT
conversation = [{"role": "system", "content": "You are a concise assistant."},
                 {"role": "user", "content": "Name a colour."},
                 {"role": "assistant", "content": "Blue."},
                 {"role": "user", "content": "Another one?"}]
print(llm.format_chat(conversation))

# %% [markdown]
# SmolLM2 uses the ChatML format: each message is `<|im_start|>role`, a newline, the content and `<|im_end|>`.
# The string ends with an open `<|im_start|>assistant` line: the model's "answer" is just its continuation, and
# it ends its turn by producing `<|im_end|>` itself. Each marker is a *single* special token, but only when we
# tokenize with `special=True`; as plain text it is split into pieces:

# %%
# NBVAL_CHECK_OUTPUT
print("special=True :", llm.tokenize("<|im_start|>user", special=True))
print("special=False:", llm.tokenize("<|im_start|>user", special=False))

# %% [markdown]
# That is why user text can never fake a marker: the backends tokenize user content as plain text. And if you
# send no system message, the template adds a default one:

# %%
# NBVAL_CHECK_OUTPUT
print(llm.format_chat([{"role": "user", "content": "Name a colour."}]))

# %% [markdown]
# ## 8. System prompts
#
# The system message sets the rules for the whole conversation. The same question under three system prompts
# (greedy, so any difference comes from the prompt):

# %%
question = "What is the capital of Italy?"
system_prompts = [None, "You are a pirate. Always talk like a pirate, say Arr!", "You are a helpful assistant who always answers in Spanish."]
answers = {}
for system in system_prompts:
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": question}]
    answers[system or "(default)"] = llm.chat(messages, max_tokens=40).text
    print(f"[{system or 'default system prompt'}]\n{answers[system or '(default)']}\n")
assert len(set(answers.values())) == len(answers)  # every system prompt changed the answer

# %% [markdown]
# Each system prompt changes the answer (asserted), but look at *how*. When we ran it with llama.cpp (the default
# backend), the default system prompt gave a loop of made-up Italian, the pirate named Rome in a chatty tone, and
# the Spanish prompt got shaky Spanish that does say "Roma". A 135M model follows the *style* of instructions far better than their content;
# bigger models follow both much more reliably. Never trust a tiny model with facts.
#
# ## 9. Few-shot prompting
#
# Instead of describing the task, show it. We label the sentiment of 8 short reviews three ways (greedy):
# - **zero-shot** chat: just ask;
# - **few-shot completion**: four labelled examples as plain text, ending with `Sentiment:` so the continuation
#   *is* the label (`few_shot_prompt`);
# - **few-shot chat**: the same four examples as earlier user/assistant turns (`few_shot_messages`).

# %%
shots = [("I loved every minute of this film.", "positive"), ("The plot was boring and the acting was worse.", "negative"),
         ("A wonderful, heartwarming story.", "positive"), ("I want my two hours back.", "negative")]
reviews = [("What a fantastic soundtrack!", "positive"), ("The worst meal I have ever eaten.", "negative"),
           ("The staff were friendly and helpful.", "positive"), ("It broke after one day.", "negative"),
           ("Absolutely brilliant performances.", "positive"), ("Terribly slow and very confusing.", "negative"),
           ("A joy from start to finish.", "positive"), ("I would not recommend it to anyone.", "negative")]
print(few_shot_prompt(shots[:2], reviews[0][0], input_label="Review", output_label="Sentiment"))

# %% [markdown]
# (That is the completion prompt, shown with two of the four examples.) Now all three ways on all 8 reviews:

# %%
def label_of(text: str) -> str | None:
    """The first of "positive"/"negative" the answer mentions (None if neither)."""
    found = [(text.lower().find(w), w) for w in ("positive", "negative") if w in text.lower()]
    return min(found)[1] if found else None


ways = {
    "zero-shot chat": lambda r: llm.chat([{"role": "user", "content": f"Is the sentiment of this review positive or negative? Review: {r}"}], max_tokens=12).text,
    "few-shot completion": lambda r: llm.complete(few_shot_prompt(shots, r, "Review", "Sentiment"), max_tokens=3, stop=["\n"]).text,
    "few-shot chat": lambda r: llm.chat(few_shot_messages(shots, r, system="Classify the sentiment of each review as positive or negative."), max_tokens=4).text,
}
outputs = {way: [ask(review) for review, _ in reviews] for way, ask in ways.items()}
truth = [label for _, label in reviews]
few_shot = pd.DataFrame({way: {"accuracy": np.mean([label_of(o) == y for o, y in zip(outs, truth)]),
                               "answer is just the label": np.mean([o.strip().lower() in ("positive", "negative") for o in outs]),
                               "answer to review 1": outs[0]} for way, outs in outputs.items()}).T
few_shot

# %%
record("sentiment accuracy, zero-shot", few_shot.loc["zero-shot chat", "accuracy"], note="8 reviews, greedy", fmt=".2f")
record("sentiment accuracy, few-shot completion", few_shot.loc["few-shot completion", "accuracy"], note="4 examples", fmt=".2f")
assert few_shot.loc["few-shot completion", "accuracy"] >= few_shot.loc["zero-shot chat", "accuracy"]

# %% [markdown]
# What to notice: zero-shot, the model answers in sentences ("The sentiment of this review is ...") and gets some
# wrong; with four examples as raw text it answers with exactly one label, and more of them right (at least as
# accurate: asserted). The format is copied perfectly; that alone makes outputs easy to parse. The same examples
# as chat turns help less with this tiny model (it may label everything alike): few-shot works through pattern
# continuation, and raw text is the purest pattern. Bigger models do well with both.
#
# ## 10. Chain-of-thought
#
# For reasoning questions, asking for the steps before the answer ("Let's think step by step") helps large
# models a lot: each written step becomes context for the next. A word problem, with and without:

# %%
word_problem = "A pen costs 2 dollars. How much do 3 pens cost?"
direct = llm.chat([{"role": "user", "content": f"{word_problem} Answer with just the number."}], max_tokens=16).text
stepwise = llm.chat([{"role": "user", "content": f"{word_problem} {STEP_BY_STEP}"}], max_tokens=80).text
print(f"direct:\n{direct}\n\nstep by step:\n{stepwise}")
print("\n'6' in the direct answer:", "6" in direct, "| '6' in the step-by-step answer:", "6" in stepwise)

# %% [markdown]
# Be honest about what you see: SmolLM2-135M writes something that *looks* like reasoning ("Let's break it down
# step by step...") but the steps are often wrong (when we wrote this lesson it said the pens cost 2 dollars,
# and with steps "300 cents"). Chain-of-thought copies the *form* of reasoning; it only helps a model that can
# do the individual steps. That ability appears in models of a few billion parameters; lesson 06 measures such
# differences on real benchmarks.
#
# ## 11. JSON output, forced by a grammar
#
# Programs want structured output. Asking for JSON nicely gives JSON *often*; llama.cpp can **guarantee** it: the
# backend's `json_schema=` option turns a JSON schema into a grammar, and at every step llama.cpp gives −∞ to
# every token that would break the grammar (top-k and top-p, but with a rule book). The output must parse and
# match the schema.

# %%
cpp = backend_with("json_schema", llm, model=MODEL)  # llm, or llama.cpp if llm has no grammar (GPT4All)
schema = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}, "city": {"type": "string"}},
          "required": ["name", "age", "city"]}
sentences = ["Maria is 34 and lives in Lisbon.", "Tom, 27, moved to Berlin last year."]


def parses(text: str) -> bool:
    try:
        jsonschema.validate(json.loads(text), schema)
        return True
    except (json.JSONDecodeError, jsonschema.ValidationError):
        return False


rows = []
for sentence in sentences:
    ask = [{"role": "user", "content": f"Extract the person as JSON with keys name, age, city: {sentence}"}]
    free = cpp.chat(ask, max_tokens=60).text
    forced = cpp.chat(ask, max_tokens=60, json_schema=schema).text
    rows.append({"sentence": sentence, "free text": free, "free is valid": parses(free), "with grammar": forced, "grammar is valid": parses(forced)})
structured = pd.DataFrame(rows)
assert structured["grammar is valid"].all()
structured

# %%
record("valid JSON without grammar", f"{structured['free is valid'].sum()}/{len(structured)}")
record("valid JSON with grammar", f"{structured['grammar is valid'].sum()}/{len(structured)}")
json.loads(structured["with grammar"][0])  # a real Python dict

# %% [markdown]
# Asked nicely, the model writes JSON-looking text, but wraps or trails it with Markdown fences (```` ``` ````),
# so `json.loads` fails. With the grammar every answer parses and matches the schema (asserted). The grammar
# forces the *format*, not the truth: a wrong age would still be a valid integer. The transformers backend masks
# the logits the same way, with the llguidance library; GPT4All has no grammar and refuses `json_schema=` with a
# clear error rather than silently ignoring it, so with `BACKEND="gpt4all"` this cell runs on llama.cpp (and says so).
#
# ## 12. The context limit
#
# A model reads at most `n_ctx` tokens (prompt and answer together). A long conversation eventually does not fit.
# We start a second backend of the same kind with a small window (`CTX_DEMO` = 512 tokens) and a conversation that mentions a fact in its first
# message and asks about it in its last:

# %%
small = get_backend(llm.name, model=MODEL, n_ctx=CTX_DEMO)
chat = [{"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Hi! My name is Ada and I live in Lisbon."},
        {"role": "assistant", "content": "Nice to meet you, Ada! Lisbon is a beautiful city."}]
for topic in ["bread", "tea", "rain", "chess", "bikes", "music", "paint", "stars", "trains", "gardens", "cheese", "rivers"]:
    chat += [{"role": "user", "content": f"Tell me one fact about {topic}."},
             {"role": "assistant", "content": f"Here is a fact about {topic}: people have enjoyed {topic} for hundreds of years, "
                                              f"and there are many different kinds of {topic} around the world."}]
chat.append({"role": "user", "content": "What is my name?"})
count = chat_token_counter(small)
print(f"{len(chat)} messages, {count(chat)} tokens, context window {small.n_ctx}")
try:
    small.chat(chat, max_tokens=24)
except ContextOverflow as err:
    print(f"ContextOverflow: {err}")

# %% [markdown]
# A clear, one-line error, raised *before* any computation, saying what to do. (Some tools silently cut the
# prompt instead, and the model then answers a question it never fully saw.) Raising `n_ctx` helps up to the
# model's trained length (8,192 tokens for SmolLM2) and costs memory and time. Otherwise something has to go, and
# `course_utils.prompting` offers three strategies. Each keeps the system prompt and the last message:
# - `keep_last_turns`: the most recent whole messages that fit;
# - `drop_middle`: the first exchange too (where facts like a name often are), dropping from the middle;
# - `truncate_oldest`: like keep_last_turns, but fills the budget by keeping the *end* of one more message.

# %%
max_answer = 40
rows = []
for strategy in STRATEGIES:
    fitted = fit_to_context(small, chat, max_tokens=max_answer, strategy=strategy)
    text = small.format_chat(fitted)
    rows.append({"strategy": strategy, "messages": len(fitted), "prompt tokens": count(fitted), "budget": context_budget(small, max_answer),
                 "first message after the system prompt": fitted[1]["content"][:45], "'Ada' still in the prompt": "Ada" in text,
                 "answer to 'What is my name?'": small.chat(fitted, max_tokens=max_answer).text})
fitting = pd.DataFrame(rows).set_index("strategy")
assert (fitting["prompt tokens"] <= fitting["budget"]).all()
assert fitting.loc["drop_middle", "'Ada' still in the prompt"] and not fitting.loc["keep_last_turns", "'Ada' still in the prompt"]
assert fitting.loc["keep_last_turns", "prompt tokens"] <= fitting.loc["truncate_oldest", "prompt tokens"]
fitting

# %%
record("conversation tokens before fitting", count(chat), note=f"context window {small.n_ctx}")
record("tokens after keep_last_turns", int(fitting.loc["keep_last_turns", "prompt tokens"]), note=f"budget {context_budget(small, max_answer)}")
record("tokens after truncate_oldest", int(fitting.loc["truncate_oldest", "prompt tokens"]), note="the oldest message kept is cut");

# %% [markdown]
# What to notice:
# - every strategy fits the budget (n_ctx minus room for the answer; asserted). `keep_last_turns` leaves some
#   of it unused, because the next older message would not fit whole; `truncate_oldest` fills it with the *end*
#   of that message, which now starts mid-sentence ("… a fact about rain: ...");
# - only `drop_middle` still has "Ada" in the prompt; `keep_last_turns` and `truncate_oldest` dropped the
#   message that held the name. Which strategy is right depends on where the important text is; real chat apps
#   often combine them, or replace the dropped middle with a summary;
# - whether the 135M model then *uses* the name is another matter: its answers here are weak whatever we keep.
#   Fitting the context is necessary, not sufficient.

# %%
for backend in {id(b): b for b in (small, cpp, sampler, hf, llm)}.values():
    backend.close()

# %% [markdown]
# ## Summary
#
# - A model outputs one logit per vocabulary token; softmax turns them into probabilities. Generation draws the
#   next token from them.
# - **Temperature** divides the logits (T < 1 sharpens, T > 1 flattens, T = 0 is greedy); **top-k** and **top-p**
#   cut the unlikely tail; **repetition penalty** makes seen tokens less likely. Each is a few lines of code,
#   and `course_utils.sampling` is exactly what the transformers backend runs: we reproduced a seeded sample by
#   hand. llama.cpp applies top-p *before* the temperature and penalises only the last 64 tokens.
# - Higher temperature, more diverse continuations (distinct-2 rises), and sooner nonsense.
# - A chat is rendered into one text by the chat template; the model continues it. System prompts set the
#   style, few-shot examples set the format (plain-text patterns work best on a tiny model), chain-of-thought
#   helps only models that can do the steps.
# - A llama.cpp grammar (`json_schema=`) guarantees parseable JSON; it does not guarantee correct content.
# - A prompt over the context window raises `ContextOverflow`; `keep_last_turns`, `drop_middle` and
#   `truncate_oldest` make a conversation fit, each losing something different.
#
# ## Exercises
#
# Practise in the lab, [`labs/03_sampling_prompting_lab.ipynb`](../labs/03_sampling_prompting_lab.ipynb): write
# the temperature softmax, top-k, top-p and the repetition penalty yourself (checked against
# `course_utils.sampling`), and a few-shot message builder. Each exercise has an automatic check.
#
# Further questions to explore here:
# 1. Set `PROMPT` to a question with one right answer ("The capital of France is"). How big is the top-p = 0.9
#    nucleus now, and how does diversity vs temperature change?
# 2. Add T = 0.0 to the diversity experiment. What must the numbers be, and why?
# 3. Give the few-shot completion prompt 1, 2 and 8 examples. When does the format become reliable?
# 4. Add a fourth truncation strategy that keeps the messages mentioning a keyword (e.g. "name"), and compare.
