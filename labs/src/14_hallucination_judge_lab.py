# %% [markdown]
# # Lab 14 · Hallucination and judges: calibration, abstaining, agreement, a fair pairwise judge
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/local-llm-lab/local-llm-lab/blob/main/labs/14_hallucination_judge_lab.ipynb)
#
# Four exercises on lesson 14. Replace each `raise NotImplementedError` with your code, run the cell, then look at
# the check below it: ✅ means right, ❌ says what is wrong and where to look, ⏳ means not done yet. If a ❌ is not
# enough, `hint("ece")` (or `"abstention threshold"`, after its check has run) goes one step further.
#
# The checks make their own inputs (random confidences from a fixed seed, and edge cases: confidences of exactly 0
# and 1, ties, empty input, graders that never change their label) and never need the model, so the lab runs in
# seconds. Plain Python or NumPy is fine. Never change an input list in place: the caller still needs it.
#
# **Run time:** 4 s on a 2-core CPU (Intel(R) Xeon(R) Processor), measured by `course run` on 2026-12-02; a slower machine takes longer.

# %%
# Colab only: install the course (~5 min the first time). Does nothing on your own machine.
import sys
if "google.colab" in sys.modules:
    # !git clone -q --depth 1 https://github.com/local-llm-lab/local-llm-lab /content/local-llm-lab
    # !bash /content/local-llm-lab/tools/install.sh --system

# %% tags=["parameters"]
BACKEND = "auto"  # unused: the checks need no model
MODEL = None
SEED = 0

# %%
from course_utils import setup_notebook
from course_utils.checks import hint
from course_utils.checks.hallucination import check_debiased_pair, check_ece, check_kappa, check_threshold

cfg = setup_notebook(seed=SEED)

import math

import numpy as np

# %% [markdown]
# ## Exercise 1: expected calibration error from scratch
#
# Write `ece(confidences, correct, n_bins=10)`. `confidences` are the model's probabilities of its answers (floats in
# [0, 1]), `correct` says which answers were right (0/1 or booleans). Cut [0, 1] into `n_bins` equal bins with the
# convention of scikit-learn's `calibration_curve`: bin 0 is [0, 1/M], bin i is (i/M, (i+1)/M], so a confidence of
# exactly 1.0 belongs to the last bin and one exactly on an edge to the bin below it. Then
#
# ECE = Σ over non-empty bins of (n_bin / N) · |accuracy_bin − mean confidence_bin|
#
# With no answers at all there is nothing to measure: raise `ValueError`.

# %%
def ece(confidences, correct, n_bins=10):
    # TODO: put each answer in its bin (edges belong to the bin below), then add up the weighted gaps
    raise NotImplementedError


check_ece(ece)

# %% [markdown]
# ## Exercise 2: abstain below a threshold
#
# A model that may say "I don't know" answers only when its confidence is at least a threshold t. Write
# `choose_threshold(confidences, correct, target)`: the **lowest** threshold (the most answers) whose accuracy, on
# the answers with confidence ≥ t, is at least `target`. Only the confidences themselves are worth trying as
# thresholds, and answers with *equal* confidence are answered or skipped together. Return `math.inf` (abstain on
# everything) when no threshold reaches the target.
#
# The check compares with the lesson's code on its own questions (ties included), then chooses a threshold with your
# function on 400 questions and measures it on 400 others it has never shown you: the accuracy must hold up there.

# %%
def choose_threshold(confidences, correct, target):
    # TODO: for each distinct confidence, highest first: the accuracy of the answers at or above it
    raise NotImplementedError


check_threshold(choose_threshold)

# %% [markdown]
# ## Exercise 3: Cohen's kappa
#
# Two graders (exact match and an LLM judge, say) label the same items. Raw agreement flatters a judge that says
# "correct" to everything when most answers are correct. Write `cohen_kappa(a, b)`:
#
# κ = (p_o − p_e) / (1 − p_e)
#
# p_o is the share of items where the two labels agree, p_e the agreement expected by chance: the sum over labels of
# (share of a's labels that are it) × (share of b's labels that are it). The labels can be anything comparable
# (0/1, booleans, strings). When p_e = 1 (both graders give one and the same label to everything) κ is undefined:
# return `float("nan")`, as scikit-learn's `cohen_kappa_score` does.

# %%
def cohen_kappa(a, b):
    # TODO: observed agreement, chance agreement from both graders' label rates, then kappa
    raise NotImplementedError


check_kappa(cohen_kappa)

# %% [markdown]
# ## Exercise 4: a pairwise judge without position bias
#
# `judge(question, first, second)` returns `"A"` when it prefers the answer shown first and `"B"` for the second.
# Small judges often prefer a *slot* rather than an answer (lesson 14 measured it). Write
# `debiased_pair(judge, question, a, b)`: ask the judge twice, once with `a` first and once with `b` first, and
# return `"A"` if `a` wins both times, `"B"` if `b` wins both times, and `"tie"` when the verdict follows the
# order. Call the judge exactly twice (each call is a model run). The check uses stand-in judges: one that always
# says "A", one that always says "B", one that prefers longer answers, one that knows the answer.

# %%
def debiased_pair(judge, question, a, b):
    # TODO: judge both orders, map the swapped verdict back, keep it only when both agree
    raise NotImplementedError


check_debiased_pair(debiased_pair)

# %% [markdown]
# ## Going further
#
# - Run lesson 14's judge through your `debiased_pair` (`lambda q, f, s: judging.judge_pair(judge, q, f, s)`): how many
#   of its verdicts survive the swap?
# - Temperature scaling: divide ARC-Easy's choice log-probabilities by T before the softmax, choose T on one half of
#   the questions to minimise your `ece`, and measure the ECE on the other half.
# - Compute a bootstrap interval for your `cohen_kappa` (resample the items with replacement) and compare it with
#   `judging.kappa_interval`.
