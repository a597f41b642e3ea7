# %% [markdown]
# # 09 · Evaluating models: leaderboard benchmarks, perplexity and speed
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/local-llm-lab/local-llm-lab/blob/main/notebooks/09_evaluation.ipynb)
#
# **What you will learn**
# - what the benchmarks on public leaderboards measure (ARC, HellaSwag, MMLU, TruthfulQA, WinoGrande, GSM8K,
#   HumanEval, and the newer IFEval, BBH, MATH, GPQA, MuSR, MMLU-Pro), and why contamination makes scores suspect;
# - **multiple-choice log-likelihood scoring**, the way lm-evaluation-harness (behind the Open LLM Leaderboard)
#   does it: `acc` and `acc_norm`, written from scratch on one question, then made fast by reading each
#   question once for all its answers, and checked item by item against lm-evaluation-harness itself;
# - scores with **standard errors** and the **random-chance baseline**, for the fp32 model (transformers) and the
#   Q4_1 GGUF (llama.cpp) on the same items, next to published numbers;
# - generation benchmarks: GSM8K exact match and HumanEval pass@1, the model's code run in a sandbox;
# - speed as a benchmark: time to first token, time per output token and tokens/s, per backend and prompt length.
#
# **Prerequisites:** lessons 02 (logits), 04 (backends, TTFT/TPOT) and 05 (perplexity).
#
# **Run time:** 1 min 22 s on a 2-core CPU (Intel(R) Xeon(R) Processor), measured by `course run` on 2026-12-01; a slower machine takes longer.

# %%
# Colab only: install the course (~5 min the first time). Does nothing on your own machine.
import sys
if "google.colab" in sys.modules:
    # !git clone -q --depth 1 https://github.com/local-llm-lab/local-llm-lab /content/local-llm-lab
    # !bash /content/local-llm-lab/tools/install.sh --system

# %% tags=["parameters"]
BACKEND = "auto"  # unused for scoring: log-probabilities come from transformers and llama.cpp directly
MODEL = None  # None = the bundled SmolLM2-135M-Instruct; or a local model folder / .gguf path
SEED = 0
LIMIT = 16  # items per multiple-choice task (the first ones of each set)
GEN_LIMIT = 2  # GSM8K problems and HumanEval functions to generate
PARITY_ITEMS = 100  # ARC-Easy items for the acc_norm check of section 3 (all 570 with FULL)
FULL = False  # True: 570 ARC-Easy items and 200 per other task (about 10 minutes; benchmarks/eval.py too)

# %%
from course_utils import record, setup_notebook

cfg = setup_notebook(seed=SEED)

import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from course_utils import evaluation as ev
from course_utils.assets import load_hf_model
from course_utils.plots import labelled

torch.set_num_threads(cfg.n_threads)
if FULL:
    LIMIT, GEN_LIMIT = 200, 10
started = time.perf_counter()
model, tokenizer = load_hf_model(MODEL)
print(f"{sum(p.numel() for p in model.parameters()):,} parameters, {cfg.n_threads} threads")

# %% [markdown]
# ## 1. What the benchmarks measure
#
# | benchmark | what it asks | how it is scored | chance |
# |---|---|---|---|
# | **ARC** Easy / Challenge (Clark et al. 2018) | grade-school science questions; Challenge = those simple retrieval and co-occurrence methods got wrong | multiple choice, log-likelihood | ~25% |
# | **HellaSwag** (Zellers et al. 2019) | pick the sensible continuation of an activity description; wrong endings were machine-written to fool models | multiple choice, `acc_norm` | 25% |
# | **MMLU** (Hendrycks et al. 2021) | 57 subjects from school to professional level | letters A–D after the listed options, 5-shot | 25% |
# | **TruthfulQA** (Lin et al. 2022) | questions where a popular misconception is the tempting answer | multiple choice (mc2: probability mass on true answers) | — |
# | **WinoGrande** (Sakaguchi et al. 2020) | which person a pronoun refers to, adversarially filtered | *partial* scoring: the option goes into the context | 50% |
# | **GSM8K** (Cobbe et al. 2021) | grade-school word problems needing 2–8 steps | generate a solution, exact match of the final number | ~0% |
# | **HumanEval** (Chen et al. 2021) | write a Python function from its docstring | run unit tests: pass@1 | 0% |
# | **IFEval** (Zhou et al. 2023) | follow verifiable instructions ("answer in 3 bullet points, no commas") | rules check the output | — |
# | **BBH** (Suzgun et al. 2022) | 23 hard BIG-Bench tasks (logic, tracking objects, dates) | few-shot, exact match / choice | varies |
# | **MATH** (Hendrycks et al. 2021) | competition mathematics (the leaderboard uses level 5, the hardest) | exact match of the boxed answer | ~0% |
# | **GPQA** (Rein et al. 2023) | "Google-proof" graduate questions in biology, physics, chemistry | multiple choice | 25% |
# | **MuSR** (Sprague et al. 2023) | multi-step reasoning over long generated stories (murders, placements) | multiple choice | varies |
# | **MMLU-Pro** (Wang et al. 2024) | harder MMLU with 10 options and reasoning-heavy questions | multiple choice | 10% |
#
# **How leaderboards run them.** The Open LLM Leaderboard ran EleutherAI's *lm-evaluation-harness* on every
# submitted model with fixed prompts and shot counts: v1 (2023) used ARC 25-shot, HellaSwag 10-shot, MMLU 5-shot,
# TruthfulQA 0-shot, WinoGrande 5-shot and GSM8K 5-shot; v2 (2024) replaced them with IFEval, BBH, MATH level 5,
# GPQA, MuSR and MMLU-Pro, because models had saturated — and partly *memorised* — the old ones, and it rescales
# each score so that chance is 0. Same code, same prompts, same items for every model: that is what makes a
# leaderboard comparable, and why a number from a different harness, prompt or shot count is not.
#
# **Contamination.** Benchmarks are public web pages; web-scale training data contains them. A model that saw
# the test questions (or paraphrases) scores high without the skill. Signs: a big drop on a freshly written
# look-alike set (GSM1k vs GSM8K, Zhang et al. 2024), or the model completing a test question verbatim.
# Newer benchmarks keep answers private, rotate questions, or are dated after the model's training cut-off.

# %% [markdown]
# ## 2. Multiple choice by log-likelihood, from scratch
#
# The model never *writes* an answer. Each choice is appended to the question, and we add up the log-probability
# the model gives to the choice's tokens. The most probable choice is the model's answer (**acc**). Longer
# choices pay for more tokens, so the harness also reports **acc_norm**: the sum divided by the answer's length
# in *characters*. Which characters, exactly? The scored continuation is `" " + answer` (the space that joins
# answer and question belongs to the answer's first token: " Paris" is one token), but lm-evaluation-harness
# divides by `len(answer)` of the answer as the data set gives it, *without* that space (its `process_results`;
# Biderman et al. 2024, "Lessons from the Trenches", describe the normalisation). Section 3 shows why one
# character matters. Other harnesses divide by tokens or by bytes, one more reason published numbers differ.

# %%
item = ev.load_task("arc_easy", limit=1).items[0]
encode = lambda s: tokenizer.encode(s, add_special_tokens=False)  # noqa: E731


def choice_logprob(context, continuation):
    """Sum of log p(continuation tokens | context), from one plain forward pass."""
    ctx, cont = ev.encode_pair(encode, context, continuation)  # harness tokenization: see ev.encode_pair
    with torch.inference_mode():
        logits = model(torch.tensor([ctx + cont])).logits[0]
    logp = torch.log_softmax(logits.double(), dim=-1)
    return sum(logp[len(ctx) - 1 + j, t].item() for j, t in enumerate(cont))


rows = [{"choice": c, "log p": choice_logprob(item.context, c), "chars": len(c.removeprefix(" "))} for c in item.choices]
table = pd.DataFrame(rows)
table["log p / char"] = table["log p"] / table["chars"]
print(item.context)
print(table.round(3).to_string())
print(f"acc picks {table['log p'].idxmax()}, acc_norm picks {table['log p / char'].idxmax()}, the answer is {item.label}")

# %% [markdown]
# Notice: the log-probabilities are large negative numbers (a whole phrase is unlikely), and the two rules can
# disagree: the sum favours short choices, the per-character score does not. Which one a paper reports is part of
# its method.
#
# ## 3. The library way, and why sharing the context matters
#
# `ev.score_multiple_choice` does the same for many items. Three things make it fast. The question (the
# *context*) goes through the model **once**, together with all its answers, in one row
# `question | answer 1 | answer 2 | ...`: an attention mask lets each answer see the question and itself but never
# another answer, and its position ids restart after the question, so every answer is scored exactly as if it
# followed the question alone. Many questions run side by side, longest first, so little of a batch is padding.
# And the output layer (a fifth of the model's work per token) runs only where a token is scored. Here is the
# row and the mask for a 3-token question with a 2-token and a 3-token answer:

# %%
# NBVAL_CHECK_OUTPUT
ids, positions, segments = ev.pack_group([101, 102, 103], [[201, 202], [301, 302, 303]])
print("token ids:", ids)
print("positions:", positions)
print("segments :", segments, " (0 = question, k = answer k)")
print(ev.segment_mask([segments])[0].int().numpy())

# %% [markdown]
# Notice: an answer's last token is never read, only predicted (by the token before it), so answer 1 adds one
# token to the row and answer 2 two; answer 2's rows (the last two) have zeros under answer 1's column: it cannot
# see it. The first token of each answer (201 and 301) sits at position 3, right after the question. The library
# gives the same numbers as the plain way:

# %%
mine = ev.score_multiple_choice(model, [item], tokenizer)
print("library:", np.round(mine.items[0].logprobs, 3))
assert np.allclose(mine.items[0].logprobs, table["log p"], atol=2e-3)

arc_items = ev.load_task("arc_easy", limit=LIMIT).items
fast = ev.score_multiple_choice(ev.HFScorer(model, tokenizer), arc_items, task="arc_easy")
naive = ev.score_multiple_choice(ev.HFScorer(model, tokenizer, share_context=False), arc_items, task="arc_easy")
assert [s.pred for s in fast.items] == [s.pred for s in naive.items]
assert fast.tokens < naive.tokens / 2
print(f"naive : {naive.tokens:6,} tokens through the model, {naive.seconds:5.1f} s")
print(f"shared: {fast.tokens:6,} tokens through the model, {fast.seconds:5.1f} s "
      f"({naive.seconds / fast.seconds:.1f}x faster, same answers)")

# %% [markdown]
# Notice: the naive way pushes every question through the model once per choice (4×); reading it once cuts the
# tokens by the factor above, and the time by roughly as much (timings jump on a busy machine, token counts do
# not). `benchmarks/eval.py` times all 570 questions of ARC-Easy against lm-evaluation-harness.
#
# ### The same answers as lm-evaluation-harness, to the character
#
# The lesson claims to score as lm-evaluation-harness does, and the course holds itself to that item by item:
# `tests/test_lmeval_parity.py` runs lm-eval 0.4.13 itself (its model wrapper, its task code, the same prompt and
# the same model) on the first 120 ARC-Easy questions and requires the same log-likelihoods (within 0.001) and the
# same choice for acc *and* for acc_norm on every one; `benchmarks/eval.py` compares all 570. The first time that
# test ran, acc agreed everywhere and acc_norm did not on a few items. The log-likelihoods were equal; what
# differed was the length acc_norm divides by. The course divided by `len(" " + answer)`, the continuation it
# scores; lm-eval scores the same continuation but divides by `len(answer)`. One character on every choice: does
# it matter? Both rules on the same scores:

# %%
parity_items = ev.load_task("arc_easy", limit=570 if FULL else PARITY_ITEMS).items
parity = ev.score_multiple_choice(model, parity_items, tokenizer)
with_space = [ev.acc_norm_prediction(s.logprobs, s.n_chars) for s in parity.items]  # n_chars = len(" " + answer)
flipped = [k for k, (s, w) in enumerate(zip(parity.items, with_space)) if s.pred_norm != w]
acc_norm_with_space = np.mean([w == s.label for s, w in zip(parity.items, with_space)])
print(f"acc_norm answer changes on {len(flipped)} of {parity.n} items; acc_norm {parity.acc_norm:.3f} (lm-eval's len(answer)) "
      f"vs {acc_norm_with_space:.3f} (len(' ' + answer)), standard error ±{parity.acc_norm_stderr:.3f}")
if flipped:
    s = parity.items[flipped[0]]
    print(f"\n{parity_items[flipped[0]].context!r} (right answer: {s.label})")
    example = pd.DataFrame({"answer": parity_items[flipped[0]].choices, "log p": s.logprobs,
                            "/ len(answer)": np.divide(s.logprobs, s.norm_chars), "/ len(' ' + answer)": np.divide(s.logprobs, s.n_chars)})
    print(example.round(4).to_string())
    print(f"lm-eval's rule picks {s.pred_norm}, the other {with_space[flipped[0]]}")
assert all(s.norm_chars == tuple(n - 1 for n in s.n_chars) for s in parity.items)  # every ARC answer is joined by one space
assert abs(parity.acc_norm - acc_norm_with_space) < parity.acc_norm_stderr  # invisible in the average
if MODEL is None:  # a fact about the bundled model on these items
    assert flipped

# %% [markdown]
# Notice: the items that flip are near-ties per character (compare the two best rows of the example), and one
# extra character counts for relatively more in a short answer than in a long one, so it tips those ties. Each
# rule is as reasonable as the other, and the two headline numbers differ by less than a standard error, so no
# average would have shown the difference: only the item-by-item comparison did. That is the lesson for reading
# leaderboards: "acc_norm on ARC-Easy" names a family of methods (per character with or without the space, per
# token, per byte), and two numbers are comparable only when the same code produced them. The fix here was one
# line (`MCItem.norm_lengths`); finding it needed a test against the reference implementation.
#
# ## 4. Every task, with standard errors and the chance baseline
#
# An accuracy measured on *n* items is uncertain: its standard error is $\sqrt{p(1-p)/n}$ (binomial). With
# 16 items that is about ±12 points — enough to tell a model from chance only when it is far from it.

# %%
NAMES = ["arc_easy", "arc_challenge", "hellaswag", "mmlu", "mmlu_5shot", "winogrande", "boolq", "piqa"]
scorer = ev.HFScorer(model, tokenizer)
results = {}
for name in NAMES:
    task = ev.load_task(name, limit=570 if FULL and name == "arc_easy" else LIMIT)
    results[name] = (task, ev.score_multiple_choice(scorer, task.items, task=name))
board = pd.DataFrame([{**r.row(), "metric": t.metric, "score": getattr(r, t.metric),
                       "± se": getattr(r, t.metric + "_stderr")} for t, r in results.values()]).set_index("task")
print(board[["n", "metric", "score", "± se", "acc", "acc_norm", "chance", "items/s"]].round(3).to_string())

# %%
fig, ax = plt.subplots(figsize=(10, 4))
x = np.arange(len(board))
ax.bar(x, board["score"] * 100, yerr=board["± se"] * 100, capsize=4, color="tab:blue", label="SmolLM2-135M-Instruct (fp32)")
ax.scatter(x, board["chance"] * 100, marker="_", s=900, color="tab:red", zorder=3, label="random chance")
ax.set_xticks(x, [f"{n}\n({m})" for n, m in zip(board.index, board["metric"])], fontsize=8)
ax.set_ylim(0, 100)
ax.legend()
labelled(ax, f"Accuracy on the first {LIMIT} items of each task (error bars: ±1 standard error)", "task (metric)", "accuracy (%)")
plt.tight_layout()
plt.show()

# %% [markdown]
# Notice: most bars sit within two standard errors of the red chance marks at this sample size; a 135M model
# is close to chance on knowledge-heavy MMLU, and clearly above it only on the easier commonsense sets (ARC-Easy,
# PIQA, HellaSwag) once you score enough items (`FULL=True`). The error bars are the honest part of the plot:
# with 16 items a 10-point gap between two models means nothing.
#
# BoolQ's acc sits *below* its chance line, which looks impossible until you count the labels: 13 of these
# 16 answers are "yes", and the model gives " no" the higher log-probability on almost every item, so its acc
# is roughly the share of "no" answers. The 50 % line assumes balanced labels; a model with a fixed preference
# scores the majority or the minority share, not 50 %. Its acc_norm is higher only because " no" is one
# character shorter than " yes": dividing by length flips the preference, an artefact rather than skill,
# which is why leaderboards report plain acc for yes/no tasks.
#
# ## 5. fp32 (transformers) vs Q4_1 (llama.cpp) on the same items
#
# Any backend that exposes log-probabilities can be scored the same way. llama.cpp needs `logits_all=True`;
# the scorer cuts its KV cache back after each item, so every item starts from the same state and reruns agree.
# Passing the transformers tokenizer makes both backends score exactly the same token ids.

# %%
gguf = ev.LlamaCppScorer(MODEL, tokenizer=tokenizer, n_ctx=512)
q4 = ev.score_multiple_choice(gguf, arc_items, task="arc_easy")
again = ev.score_multiple_choice(gguf, arc_items, task="arc_easy")
gguf.close()
assert [s.logprobs for s in q4.items] == [s.logprobs for s in again.items]  # reproducible
diff = np.array([a - b for s, t in zip(fast.items, q4.items) for a, b in zip(s.logprobs, t.logprobs)])
same = np.mean([s.pred_norm == t.pred_norm for s, t in zip(fast.items, q4.items)])
print(pd.DataFrame([fast.row(), q4.row()]).set_index("scorer")[["n", "acc", "±acc", "acc_norm", "±acc_norm", "items/s"]].round(3).to_string())
print(f"log p difference per choice: mean {diff.mean():+.3f}, largest {np.abs(diff).max():.3f}; same acc_norm answer on {same:.0%} of items")

# %% [markdown]
# Notice: the weights are the same numbers (lesson 05: our fp32 model *is* the de-quantized Q4_1 file), yet
# log-probabilities differ by a few hundredths to tenths: llama.cpp also rounds the *activations* to 8 bits
# inside its Q4_1 matrix products. Answers agree on almost every item; the accuracies differ by far less than
# one standard error.
#
# ## 6. Our numbers next to published ones
#
# The official figures are in the SmolLM2 model cards and paper (Allal et al. 2025, arXiv 2502.02737), run with
# *lighteval* on the full sets. We could not retrieve those tables while writing this offline lesson, so we do
# not quote them: look them up there. A third-party card that reran lm-evaluation-harness 0-shot on
# **SmolLM2-135M-Instruct** (model card `lldois/SmolLM2-135M-Reasoning-SLERP-Champion`, "Baseline" column) reports:
# ARC-Easy acc 54.1%, ARC-Challenge acc_norm 27.7%, HellaSwag acc_norm 43.0%, PIQA acc_norm 66.9%, GSM8K 0.4%.

# %%
published = {"arc_easy": ("acc", 0.541), "arc_challenge": ("acc_norm", 0.277), "hellaswag": ("acc_norm", 0.430), "piqa": ("acc_norm", 0.669)}
compare = pd.DataFrame([{"task": n, "metric": m, "published (3rd party, full set)": v, "ours": getattr(results[n][1], m),
                         "± se": getattr(results[n][1], m + "_stderr"), "n": results[n][1].n} for n, (m, v) in published.items()]).set_index("task")
compare["within 2 se"] = (compare["ours"] - compare["published (3rd party, full set)"]).abs() <= 2 * compare["± se"] + 1e-9
print(compare.round(3).to_string())

# %% [markdown]
# Why numbers differ even for "the same" benchmark: **base vs instruct** (cards often quote the base model; the
# instruct model we ship trades some log-likelihood skill for chat behaviour); **Q4_1 vs bf16** weights;
# **few-shot** count (the leaderboard's ARC was 25-shot, here 0-shot); **normalisation** (acc vs acc_norm, per
# character with or without the joining space, per token or per byte); **prompt format** (MMLU with letters vs
# "cloze" with full answer texts, which small models do much better on — the SmolLM2 paper reports MMLU in cloze
# form); and **subset size**: our
# `LIMIT` first items carry a standard error of ±10 points or more.
#
# ## 7. Generation benchmarks: GSM8K and HumanEval
#
# Here the model writes. GSM8K: greedy completion of the standard 8-shot chain-of-thought prompt, then the final
# number is extracted and compared exactly. HumanEval: the model completes a function; the program plus the
# task's unit tests runs in `course_utils.sandbox.run_python` — a fresh `python -I` in a temporary folder with
# time, memory and file-size limits, network and writes outside its folder refused. Where Linux allows it, the child
# also gets its own network namespace, a read-only system and no view of your home folder; the line below names the
# mode this machine gives (lesson 10 tests its walls):

# %%
from course_utils import get_backend, sandbox

print(sandbox.describe())

llm = get_backend("llamacpp", model=MODEL)
gsm = ev.run_gsm8k(llm, limit=GEN_LIMIT, max_tokens=96)
for r in gsm.rows:
    print(f"{r['id']}: predicted {r['predicted']!r}, answer {r['answer']!r} -> {'right' if r['correct'] else 'wrong'}")
    print("   ", r["output"][:160].replace("\n", " "))
code = ev.run_humaneval(llm, limit=GEN_LIMIT, max_tokens=96)
for r in code.rows:
    print(f"{r['id']}: {'passed' if r['correct'] else 'failed'} {r['error'][:100]}")
print(f"GSM8K exact match {gsm.score:.0%} of {gsm.n}, HumanEval pass@1 {code.score:.0%} of {code.n}")

# %% [markdown]
# Notice: the small model imitates the *form* of a worked solution but rarely gets the arithmetic right, and its
# code usually fails the tests — published GSM8K scores for 135M models are around 1%. The harness still works:
# it extracts numbers, runs tests, and would show a better model's progress. Generation benchmarks are slow
# (every token is a forward pass), which is why leaderboards prefer log-likelihood scoring where they can.
#
# ## 8. Speed as a benchmark: TTFT, TPOT and tokens/s
#
# Quality is half the story on a laptop. We stream a completion from each backend for prompts of different
# lengths and measure time to first token (TTFT: reading the prompt) and time per output token (TPOT: decoding).

# %%
from course_utils.metrics import measure_stream

filler = " ".join(ev.boolq(limit=6)[i].context.split("\n")[0] for i in range(6))
hf = get_backend("transformers", model=MODEL)
speed = []
for backend in (llm, hf):
    backend.complete("Hello", max_tokens=2)  # warm-up
    for n_prompt in (16, 128, 384):
        prompt = backend.detokenize(backend.tokenize(filler)[:n_prompt])
        t = measure_stream(backend.complete_stream(prompt, max_tokens=12, temperature=0.0))
        speed.append({"backend": backend.name, "prompt tokens": n_prompt, "TTFT ms": t.ttft_s * 1000,
                      "TPOT ms": t.tpot_s * 1000, "tokens/s": t.tokens_per_s})
speed = pd.DataFrame(speed)
print(speed.round(1).to_string(index=False))

fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.5))
for name, part in speed.groupby("backend"):
    a1.plot(part["prompt tokens"], part["TTFT ms"], "o-", label=name)
    a2.plot(part["prompt tokens"], part["tokens/s"], "o-", label=name)
labelled(a1, "Time to first token grows with the prompt", "prompt length (tokens)", "TTFT (ms)")
labelled(a2, "Decode speed", "prompt length (tokens)", "tokens/s")
a1.legend()
plt.tight_layout()
plt.show()
hf.close()
llm.close()

# %% [markdown]
# Notice: TTFT rises with the prompt (prefill reads every prompt token), while TPOT depends much less on it at
# these lengths; llama.cpp's quantized kernels decode faster than our fp32 PyTorch loop (the cell below asserts
# it). Single runs of 12 tokens are noisy — on a busy machine one row can jump — so a fair speed benchmark fixes
# the prompt length, the output length, greedy decoding and warm-up, and repeats (`compare_backends` takes
# medians), exactly like a fair accuracy benchmark fixes prompts and items.

# %%
ll_speed = speed[speed.backend == "llamacpp"]["tokens/s"].median()
hf_speed = speed[speed.backend == "transformers"]["tokens/s"].median()
assert ll_speed > hf_speed
record("arc_easy_acc_norm", board.loc["arc_easy", "acc_norm"], note=f"first {board.loc['arc_easy', 'n']} items, fp32", fmt=".3f")
record("arc_easy_items_per_s", fast.items_per_s, note="transformers fp32, shared context", fmt=".1f")
record("shared_context_speedup", naive.seconds / fast.seconds, note="vs. re-reading the context per choice", fmt=".1f")
record("q4_1_same_answer_rate", same, note="acc_norm answers, llama.cpp Q4_1 vs fp32", fmt=".2f")
record("gsm8k_exact_match", gsm.score, note=f"{gsm.n} items, llama.cpp", fmt=".2f")
record("humaneval_pass_at_1", code.score, note=f"{code.n} items, llama.cpp", fmt=".2f")
record("llamacpp_vs_transformers_decode", ll_speed / hf_speed, note="tokens/s ratio", fmt=".1f")
print(f"notebook ran in {time.perf_counter() - started:.0f} s")

# %% [markdown]
# ## Summary
#
# - Leaderboards score multiple-choice benchmarks by **log-likelihood**: the summed log-probability of each
#   choice as a continuation (`acc`), or per character (`acc_norm`). No text is generated.
# - Reading each question once, with its answers side by side under an attention mask, gives the same numbers
#   with a fraction of the work; llama.cpp can be scored the same way with `logits_all=True` and a KV cache reset
#   per item.
# - Checked item by item against lm-evaluation-harness, the scorer gives the same choices for acc and acc_norm;
#   getting there meant dividing by the answer *without* its joining space. Such details move headline numbers:
#   compare scores only from the same code, or check them item by item.
# - Every accuracy needs its **standard error** $\sqrt{p(1-p)/n}$ and the **chance** level next to it; small
#   subsets only separate large differences.
# - Published numbers differ from yours for many legitimate reasons (base vs instruct, quantization, shots,
#   normalisation, prompt format, subset) and one illegitimate one: **contamination**.
# - Generation benchmarks (GSM8K, HumanEval) check what the model writes; model-written code runs only in a
#   sandbox. Speed (TTFT, TPOT, tokens/s) is measured with the same care as accuracy.
#
# ## Exercises
#
# Open [the lab](../labs/09_evaluation_lab.ipynb): implement `acc_norm`, the standard error, GSM8K answer
# extraction and WinoGrande's partial scoring, each auto-checked. Then try:
# 1. Run with `FULL=True` (or `course eval arc_easy --limit 0`) and see how the error bars shrink.
# 2. Score MMLU 0-shot vs 5-shot on more items: does the small model use the examples?
# 3. Write a "cloze" MMLU (the full answer texts as choices, no letters) and compare with the letter format.
