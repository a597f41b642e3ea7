# %% [markdown]
# # 12 · Merging models: two specialists in one set of weights
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/local-llm-lab/local-llm-lab/blob/main/notebooks/12_merging.ipynb)
#
# **What you will learn**
# - what fine-tuning changed, as a **task vector** `τ = θ_fine − θ_base`, and why two fine-tunes of one base can
#   be combined by arithmetic on their weights, with no training and no data;
# - the merge methods by hand, each a few lines of PyTorch: **linear averaging**, **task arithmetic**
#   (`θ_base + Σ λᵢ τᵢ`), **SLERP**, and **TIES** and **DARE** (trimming, sign election, random dropping);
# - the library everyone uses, **mergekit**, from a YAML config, checked to give *the same weights* as our task
#   arithmetic;
# - measuring a merge: exact match on both tasks' held-out sets (with standard errors) and perplexity on general
#   text, beside each specialist and the base, over λ; how much of each skill the best merge keeps;
# - exporting the merged model to **GGUF**, running it with **llama.cpp**, and its **Ollama** Modelfile;
# - what merging cannot do (different bases, different tokenizers) and what *frankenmerges* are.
#
# **Prerequisites:** lesson 08 (LoRA fine-tuning, merging an adapter, GGUF export). Lesson 09 (standard errors)
# helps.
#
# **Run time:** 1 min 53 s on a 2-core CPU (Intel(R) Xeon(R) Processor), measured by `course run` on 2026-12-01; a slower machine takes longer.
#
# The two specialists' LoRA adapters (2 × 40 training steps) ship with the course in `data/merging_adapters/`, made
# by `data/make_merging_adapters.py`; this lesson trains a few steps of the same recipe itself, to show it is the same
# training as lesson 08. `RETRAIN = True` trains both specialists from scratch instead (cached in `COURSE_CACHE`; the
# lesson prints how long it took); `FULL = True` scores all 100 held-out examples per task and more values of λ
# (several times longer).

# %%
# Colab only: install the course (~5 min the first time). Does nothing on your own machine.
import sys
if "google.colab" in sys.modules:
    # !git clone -q --depth 1 https://github.com/local-llm-lab/local-llm-lab /content/local-llm-lab
    # !bash /content/local-llm-lab/tools/install.sh --system

# %% tags=["parameters"]
BACKEND = "auto"  # unused: the merged model is served with llama.cpp, the engine that runs GGUF files
MODEL = None  # None = the bundled SmolLM2-135M-Instruct (both specialists are fine-tuned from it)
SEED = 0
FULL = False  # True: all 100 held-out examples per task, more values of lambda, more text for perplexity
RETRAIN = False  # True: train both specialists again instead of loading the shipped adapters (minutes)
DEMO_STEPS = 3  # steps of the short training demo (4 examples each; the shipped specialists had 40 of 8)
N_HELDOUT = 20  # held-out examples per task (FULL: 100)
LAMBDAS = (0.5, 0.75, 1.0, 1.25)  # task-arithmetic lambdas to sweep (FULL: 0.25 to 1.5)
DENSITY = 0.2  # TIES keeps this fraction of each task vector
DROP = 0.9  # DARE drops this fraction of each task vector
PPL_TOKENS = 512  # BoolQ tokens for general-text perplexity (FULL: 4096)
OUTTYPE = "f16"  # GGUF tensor type of the exported winner

# %%
from course_utils import record, setup_notebook

cfg = setup_notebook(seed=SEED)

import copy
import inspect
import time

import matplotlib.pyplot as plt
import pandas as pd
import torch
from IPython.display import Markdown, display

from course_utils import export, lora, merging, specialists
from course_utils.assets import hf_model_dir, load_hf_model
from course_utils.backends import get_backend
from course_utils.evaldata import boolq_passages
from course_utils.evaluate import perplexity, token_stream
from course_utils.plots import labelled

torch.set_num_threads(cfg.n_threads)
if FULL:
    N_HELDOUT, LAMBDAS, PPL_TOKENS = 100, (0.25, 0.5, 0.75, 1.0, 1.25, 1.5), 4096
OUT = cfg.cache_dir / "merging"
TASKS = ("dates", "units")

# %% [markdown]
# ## 1. Two specialists from one base
#
# Lesson 08 fine-tuned SmolLM2 to answer dates as `YYYY-MM-DD`. Here we need a second, different skill from the same
# base model. `data/lora_units.jsonl` asks for a quantity written in words and wants it back in standard notation,
# number and SI symbol ("23 kilograms" → `23 kg`, "80 kilometers per hour" → `80 km/h`). Both data sets were written
# for this course (`data/README.md`), 400 training and 100 held-out examples each.

# %%
base, tokenizer = load_hf_model(MODEL)
heldout = {task: specialists.examples(task)[:N_HELDOUT] for task in TASKS}
for task in TASKS:
    ex = specialists.examples(task, "train")[0]
    print(f"{task:6} {ex.prompt!r}\n       -> {ex.response!r}")

# %% [markdown]
# Each specialist is trained exactly like lesson 08's adapter (LoRA r = 8 on the four attention projections, AdamW,
# batches of 8), for 40 steps, and the adapter is merged into full weights. That is 320 forward and backward passes
# per specialist, so the course ships both adapters (`data/merging_adapters/`; the cell below prints their size).
# Each is found under a key made of the data file, the recipe and the base model: change any of them (another
# `MODEL`, another `specialists.Recipe`) and `specialists.specialist` trains a new adapter and caches it.

# %%
started = time.perf_counter()
spec = {task: specialists.specialist(task, base, tokenizer, retrain=RETRAIN, log_every=10) for task in TASKS}
for task, s in spec.items():
    how = (f"trained now in {s.train_result.seconds:.0f} s" if s.trained_now
           else "shipped with the course" if s.shipped else "loaded from the cache")
    size_mb = sum(f.stat().st_size for f in s.adapter_dir.iterdir()) / 1e6
    print(f"{task:6} specialist: {how} ({s.adapter_dir.name}, {size_mb:.1f} MB)")
_ = record("specialists ready", time.perf_counter() - started, note="seconds (training only with RETRAIN or another model)", fmt=".1f")

# %% [markdown]
# To see that nothing is hidden in those files, run the start of the same training here: the units recipe for
# `DEMO_STEPS` steps of 4 examples instead of 40 steps of 8 (each step is a forward and a backward pass through all
# 135M weights, a few seconds on 2 cores). Then compare the answer loss on held-out prompts: the base model, this
# short run, and the shipped specialist.

# %%
demo_model = copy.deepcopy(base)
demo = specialists.train(demo_model, tokenizer, "units", specialists.Recipe(steps=DEMO_STEPS, batch_size=4))
probe = heldout["units"][:8]
demo_losses = {"base": specialists.score(base, tokenizer, probe).loss,
               f"trained here ({demo.steps} steps of 4)": specialists.score(lora.merge_lora(demo_model).eval(), tokenizer, probe).loss,
               "shipped units specialist (40 steps of 8)": specialists.score(spec["units"].model, tokenizer, probe).loss}
del demo_model
print(f"training loss per step: {', '.join(f'{x:.2f}' for x in demo.losses)} ({demo.seconds:.1f} s)")
for name, value in demo_losses.items():
    print(f"held-out answer loss, {name:42}: {value:.3f} nats per token")
low, short, full = demo_losses.values()
where = ("between the base's and the shipped specialist's" if full < short < low else
         "below the base's" if short < low else "not below the base's yet: three small steps were not enough")
display(Markdown(f"Here the short run's held-out answer loss ({short:.3f}) is {where}."))

# %% [markdown]
# The printed losses are fine-tuning on a small scale: each step is measured on the batch it trains on (a different
# batch each time, so the training loss is noisy), and the held-out loss says what the few steps changed on prompts
# they never saw. The shipped run is the same code (`specialists.train`), ten times longer on twice the batch.

# %% [markdown]
# How do we measure a model on a task? **Exact match**: the greedy answer must be the reference, character for
# character. `specialists.score` gets it from *one* forward pass: greedy decoding reproduces the reference exactly
# when, at each answer position, the most likely next token is the reference's token, up to the end-of-turn token
# that stops generation. So we read the argmax at every answer position instead of generating token by token
# (section 8 checks this against real generation with llama.cpp). The same pass gives the answer's loss. For
# general ability we use perplexity on Wikipedia passages from BoolQ, text none of the models was tuned on.

# %%
text_ids = token_stream(lambda s: tokenizer.encode(s, add_special_tokens=False), boolq_passages(40), max_tokens=PPL_TOKENS)
results: dict[str, dict[str, float]] = {}


def measure(name: str, model) -> dict[str, float]:
    """Exact match (± standard error) on both held-out sets and perplexity on BoolQ passages."""
    row = {}
    for task in TASKS:
        s = specialists.score(model, tokenizer, heldout[task], task)
        row[f"{task} EM"], row[f"{task} ±"] = s.em, s.stderr
    row["perplexity"] = perplexity(model, ids=text_ids, window=256).perplexity
    results[name] = row
    return row


builders = {}  # merge name -> a function that rebuilds its weights (section 8 exports the best one)


def measure_merge(name: str, build) -> dict[str, float]:
    builders[name] = build
    model = merging.model_with(base, build())  # a copy of the base holding the merged weights
    return measure(name, model)


def table(names=None) -> pd.DataFrame:
    frame = pd.DataFrame(results).T
    return (frame.loc[list(names)] if names else frame).style.format(
        {f"{t} {c}": "{:.0%}" for t in TASKS for c in ("EM", "±")} | {"perplexity": "{:.2f}"})


for name, model in (("base", base), ("dates specialist", spec["dates"].model), ("units specialist", spec["units"].model)):
    measure(name, model)
table()

# %%
em = lambda name, task: results[name][f"{task} EM"]  # noqa: E731
for task in TASKS:
    gain = em(f"{task} specialist", task) - em("base", task)
    record(f"{task}: specialist vs base", gain, note=f"exact-match points gained on {N_HELDOUT} held-out prompts", fmt=".0%")
    assert gain >= 0.4, f"the {task} specialist is not much of a specialist ({gain:.0%})"
for task, other in (("dates", "units"), ("units", "dates")):  # one skill does not bring the other
    assert em(f"{task} specialist", other) <= em(f"{other} specialist", other) - 0.3
ppl_change = {task: results[f"{task} specialist"]["perplexity"] / results["base"]["perplexity"] - 1 for task in TASKS}
print("perplexity on BoolQ text vs the base: " + ", ".join(f"{t} specialist {c:+.1%}" for t, c in ppl_change.items()))

# %% [markdown]
# Each specialist is far better than the base at its own task (the recorded gains, asserted to be at least 40
# points; the base answers in full sentences, "The date in YYYY-MM-DD format is ..."). Look at each specialist on
# the *other* task, too: fine-tuning on one format does not teach the other one (asserted: at least 30 points below
# that task's specialist). The printed perplexity change on Wikipedia text is what each short fine-tune cost in
# general language modelling: a narrow format drilled for 40 steps also shifts what the model predicts on ordinary
# text (the percentages above; 0% would mean it cost nothing).
# The question of this lesson: can one model have both skills, without training on both data sets?
#
# ## 2. What fine-tuning changed: task vectors
#
# Ilharco et al. (2023, "Editing Models with Task Arithmetic") call the difference `τ = θ_fine − θ_base` a **task
# vector**: a direction in weight space that adds a skill.

# %%
theta_base = merging.state_of(base)
theta = {task: merging.state_of(spec[task].model) for task in TASKS}
tau = {task: merging.task_vector(theta[task], theta_base) for task in TASKS}
changed = [name for name in theta_base if tau["dates"][name].abs().max() > 0]
print(f"{len(changed)} of {len(theta_base)} tensors changed, e.g. {changed[0]}")
q = "model.layers.0.self_attn.q_proj.weight"
print(f"rank of tau[{q!r}]: {int(torch.linalg.matrix_rank(tau['dates'][q]))} (a {tuple(tau['dates'][q].shape)} matrix)")
size = lambda s: torch.sqrt(sum((s[k].double() ** 2).sum() for k in changed)).item()  # noqa: E731
for task in TASKS:
    print(f"|tau_{task}| / |theta_base| over those tensors: {size(tau[task]) / size(theta_base):.4f}")
flat = {task: torch.cat([tau[task][k].flatten() for k in changed]) for task in TASKS}
cos_tasks = torch.nn.functional.cosine_similarity(flat["dates"], flat["units"], dim=0).item()
print(f"cosine(tau_dates, tau_units) = {cos_tasks:.3f}")
if MODEL is None:  # a fact about these two specialists of the bundled model
    assert abs(cos_tasks) < 0.3
assert all(".self_attn." in name for name in changed) and int(torch.linalg.matrix_rank(tau["dates"][q])) <= 8
assert all(size(tau[task]) / size(theta_base) < 0.1 for task in TASKS)

# %% [markdown]
# Notice three things (all asserted). Only the attention projections changed (LoRA touched nothing else), each
# update has rank at most 8 (LoRA's r), and each task vector is small next to the weights it modifies (under 10% of
# their norm). The printed cosine between the two task vectors says how much the two directions overlap: near 0
# means they barely interfere, which is the good case for merging. (A short fine-tune from one base stays close to it; that is why averaging weights works at all.
# Two models trained from *different* starting points have no such relation: section 9.)
#
# ## 3. Linear averaging and task arithmetic
#
# The simplest merge averages the weights (a "model soup", Wortsman et al. 2022). Task arithmetic adds the task
# vectors to the base, each scaled by its own λ:
#
# `θ_merged = θ_base + Σᵢ λᵢ τᵢ`
#
# Both are a line of code in `course_utils.merging`:

# %%
print(inspect.getsource(merging.linear))
print(inspect.getsource(merging.task_arithmetic))

# %% [markdown]
# For two models, the average *is* task arithmetic with λ = 0.5 for both:
# `(θ₁ + θ₂) / 2 = θ_base + 0.5 τ₁ + 0.5 τ₂`. So averaging keeps only half of each task vector. Check it:

# %%
averaged = merging.linear([theta["dates"], theta["units"]])
diff = merging.max_difference(averaged, merging.task_arithmetic(theta_base, [tau["dates"], tau["units"]], [0.5, 0.5]))
print(f"max |average - task arithmetic at lambda = 0.5| = {diff:.1e}")
assert diff < 1e-5
del averaged
measure_merge("average (= task arithmetic λ=0.5)", lambda: merging.linear([theta["dates"], theta["units"]]))
for lam in LAMBDAS:
    if lam != 0.5:
        measure_merge(f"task arithmetic λ={lam}", lambda lam=lam: merging.task_arithmetic(theta_base, [tau["dates"], tau["units"]], [lam, lam]))
table([n for n in results if n.startswith(("average", "task"))])

# %% [markdown]
# The table shows both skills as λ grows; section 6 plots them. A question to keep in mind: λ = 0.5 keeps half of
# each *change*, but does it keep half of each *skill*? Exact match needs the whole format right, so the answer
# is not obvious; section 6 computes it.
#
# ## 4. SLERP: along the arc instead of the straight line
#
# **SLERP** (spherical linear interpolation, Shoemake 1985, from computer animation) moves along the arc between two
# vectors, so the norm is kept where a straight-line average would shrink it:
#
# `slerp(a, b, t) = sin((1 − t)θ) / sin θ · a + sin(tθ) / sin θ · b`, with θ the angle between a and b.

# %%
print(inspect.getsource(merging.slerp))

# %% [markdown]
# mergekit's `slerp` applies this to the two models' weights, tensor by tensor. But our two specialists' weights are
# nearly parallel (each differs from the base by a small task vector), so the formula falls back to the straight line:

# %%
angles = [merging.angle_degrees(theta["dates"][k], theta["units"][k]) for k in changed]
print(f"angle between the specialists' weights, per changed tensor: at most {max(angles):.3f} degrees")
slerped = merging.slerp_states(theta["dates"], theta["units"], 0.5)
slerp_vs_average = merging.max_difference(slerped, merging.linear([theta["dates"], theta["units"]]))
print(f"max |SLERP(t=0.5) - average| = {slerp_vs_average:.1e}")
straight = sum(a < 1.81 for a in angles)  # |cos| > 0.9995, i.e. under about 1.81 degrees: the straight-line fallback
print(f"{straight} of {len(angles)} changed tensors are that close: there SLERP is exactly the average")
assert slerp_vs_average < 0.01  # tiny next to the weights themselves: SLERP of two near neighbours ~ their average
del slerped
print(f"angle between the two *task vectors*: {merging.angle_degrees(flat['dates'], flat['units']):.1f} degrees")

# %% [markdown]
# Between the weights, SLERP here is (nearly) the average: where the angle is under the fallback threshold,
# |cos θ| > 0.9995 (the one mergekit uses), it *is* the average, and elsewhere the printed difference is tiny next to
# the weights. SLERP matters when the angle is large, and the angle between the *task vectors* is (near 90° when they are
# unrelated). Interpolating the task vectors along their arc keeps the norm of a full task vector where the
# straight-line midpoint shrinks it; for orthogonal vectors each gets sin 45° / sin 90° ≈ 0.71 instead of 0.5:

# %%
def slerp_of_task_vectors():
    arc = merging.slerp_states(tau["dates"], tau["units"], 0.5)
    return {k: theta_base[k] + arc[k] for k in theta_base}


measure_merge("SLERP of the task vectors", slerp_of_task_vectors)
table(["average (= task arithmetic λ=0.5)", "SLERP of the task vectors"])

# %% [markdown]
# ## 5. TIES and DARE: fewer, non-conflicting changes
#
# Adding task vectors lets them **interfere**: where one wants a weight up and the other down, they cancel. **TIES**
# (Yadav et al. 2023, "TIES-Merging: Resolving Interference When Merging Models") does three things per weight:
#
# 1. **Trim**: keep each task vector's largest entries (a fraction `density`), zero the rest;
# 2. **Elect** a sign: the sign of the *sum* of the trimmed values, i.e. the direction with more total mass;
# 3. **Disjoint mean**: average only the entries that agree with the elected sign (zeros don't vote).

# %%
for fn in (merging.trim, merging.elect_sign, merging.disjoint_mean):
    print(inspect.getsource(fn))

# %%
trimmed = torch.stack([merging.trim(tau[task][q], DENSITY) for task in TASKS])
both = (trimmed != 0).all(dim=0)
conflict = both & (torch.sign(trimmed[0]) != torch.sign(trimmed[1]))
print(f"{q}: each task vector keeps {DENSITY:.0%}; both keep {both.float().mean():.1%} of the entries, "
      f"and {conflict.float().mean():.1%} disagree in sign")
measure_merge(f"TIES (density {DENSITY})", lambda: merging.ties(theta_base, [tau["dates"], tau["units"]], density=DENSITY))

# %% [markdown]
# The printed overlap says how often the two trimmed task vectors both touch a weight, and how often they then
# disagree: only there does sign election change anything. Where only one task kept an entry, TIES's disjoint mean
# is just that task's value (where task arithmetic at λ = 1 would add the untrimmed rest too). **DARE** (Yu et al. 2024, "Language
# Models are Super Mario") goes the other way: it **drops** a random `DROP` fraction of every task vector and scales
# the survivors by `1 / (1 − DROP)`, so each weight's *expected* update is unchanged, then adds as task arithmetic does:

# %%
print(inspect.getsource(merging.dare))
measure_merge(f"DARE (drop {DROP}) + task arithmetic λ=1",
              lambda: merging.dare_merge(theta_base, [tau["dates"], tau["units"]], [1.0, 1.0], drop=DROP, seed=SEED))
table([n for n in results if n.startswith(("TIES", "DARE"))])

# %% [markdown]
# ## 6. All merges, measured
#
# Every model side by side: exact match on both held-out sets (± one standard error), perplexity on BoolQ passages.

# %%
# NBVAL_IGNORE_OUTPUT
table()

# %%
sweep = [("average (= task arithmetic λ=0.5)" if lam == 0.5 else f"task arithmetic λ={lam}") for lam in LAMBDAS]
fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4))
for task, colour in zip(TASKS, ("tab:blue", "tab:orange"), strict=True):
    ax.errorbar(LAMBDAS, [em(n, task) * 100 for n in sweep], yerr=[results[n][f"{task} ±"] * 100 for n in sweep],
                marker="o", capsize=3, color=colour, label=f"{task}: merge")
    ax.axhline(em(f"{task} specialist", task) * 100, color=colour, ls="--", label=f"{task}: specialist")
    ax.axhline(em("base", task) * 100, color=colour, ls=":", label=f"{task}: base")
ax.legend(fontsize=8)
labelled(ax, "Both skills of θ_base + λ(τ_dates + τ_units)", "λ (same for both task vectors)", f"exact match (%), {N_HELDOUT} held-out prompts")
ax2.plot(LAMBDAS, [results[n]["perplexity"] for n in sweep], marker="o", color="tab:green", label="merge")
ax2.axhline(results["base"]["perplexity"], color="grey", ls=":", label="base")
ax2.legend(fontsize=8)
labelled(ax2, "General text after merging", "λ", f"perplexity on {len(text_ids)} BoolQ tokens")
plt.tight_layout()
plt.show()

# %% [markdown]
# Read the left plot from left to right: at λ = 1 each task vector is added whole, below it each is diluted, and above
# it each is exaggerated. What this sweep measured:

# %%
peak = {t: max(LAMBDAS, key=lambda lam: em(sweep[LAMBDAS.index(lam)], t)) for t in TASKS}
ppl_sweep = [results[n]["perplexity"] for n in sweep]
display(Markdown(
    "Here " + " and ".join(f"**{t}** peaks at λ = {peak[t]} ({em(sweep[LAMBDAS.index(peak[t])], t):.0%}; specialist "
                            f"{em(f'{t} specialist', t):.0%})" for t in TASKS)
    + f", and perplexity on general text goes from {ppl_sweep[0]:.1f} at λ = {LAMBDAS[0]} to {ppl_sweep[-1]:.1f} at "
    f"λ = {LAMBDAS[-1]} (base {results['base']['perplexity']:.1f}): "
    + ("the stronger the merge, the higher the price on general text." if ppl_sweep[-1] > ppl_sweep[0]
       else "here a stronger merge did not cost more on general text.")))
if MODEL is None:
    assert ppl_sweep[-1] > ppl_sweep[0]  # measured: 41 -> 154 on the quiet machine

# %% [markdown]
# Which merge is best? The one that keeps the most of its **weaker** skill: for each task, the share of the
# specialist's gain over the base that the merge keeps, `(EM_merge − EM_base) / (EM_specialist − EM_base)`.

# %%
merges = [n for n in results if "specialist" not in n and n != "base"]
kept = {n: {t: specialists.skill_kept(em(n, t), em("base", t), em(f"{t} specialist", t)) for t in TASKS} for n in merges}
best = max(merges, key=lambda n: min(kept[n].values()))
display(pd.DataFrame(kept).T.rename(columns=lambda t: f"{t}: skill kept").style.format("{:.0%}"))
for task in TASKS:
    record(f"best merge keeps, {task}", kept[best][task], note=f"of the specialist's gain; {best}", fmt=".0%")
display(Markdown(f"The best merge is **{best}**: it keeps {kept[best]['dates']:.0%} of the dates specialist's gain "
                 f"and {kept[best]['units']:.0%} of the units specialist's, in one model of the base's size, with "
                 f"perplexity {results[best]['perplexity']:.2f} on BoolQ text (base {results['base']['perplexity']:.2f})."))
assert min(kept[best].values()) >= 0.5, kept[best]

reference = "task arithmetic λ=1.0"
lines = []
for name in (f"TIES (density {DENSITY})", f"DARE (drop {DROP}) + task arithmetic λ=1"):
    diffs = {t: em(name, t) - em(reference, t) for t in TASKS}
    noise = {t: 2 * max(results[name][f"{t} ±"], results[reference][f"{t} ±"], 1 / N_HELDOUT) for t in TASKS}
    verdict = ("within two standard errors on both tasks: no measurable difference on this many prompts"
               if all(abs(diffs[t]) <= noise[t] for t in TASKS) else "more than two standard errors apart on at least one task")
    lines.append(f"- **{name}** vs {reference}: " + ", ".join(f"{t} {diffs[t]:+.0%}" for t in TASKS) + f"; {verdict}.")
display(Markdown("\n".join(lines)))

# %% [markdown]
# That is what merging buys: one model, two skills, no training on the combined data; building a merge is arithmetic
# on the weights (mergekit's run time is printed in section 7). What it costs is printed beside it: some of each skill
# (measured on a few dozen prompts, so read the standard errors before believing a difference of a few points), and
# general-text perplexity above the base's. The lines above compare TIES
# and DARE with plain task arithmetic at the same strength: their papers report gains when many models, or full
# fine-tunes with large conflicting updates, are merged; two small LoRA task vectors that barely overlap leave them
# little interference to remove, and the measured differences say whether they helped here.
#
# ## 7. The same with mergekit
#
# **mergekit** (Goddard et al. 2024, "Arcee's MergeKit: A Toolkit for Merging Large Language Models",
# `pip install mergekit`) is a widely used open-source merging toolkit (its paper describes it). It reads a YAML config and
# merges model folders tensor by tensor, out of core, so it also merges models larger than RAM. It needs the
# specialists on disk as model folders (saved once in the course cache; the cell prints their size):

# %%
folders = {}
for task in TASKS:
    folder = OUT / f"specialist-{spec[task].adapter_dir.name}"  # the key names the adapter: a new one, a new folder
    folders[task] = folder if (folder / "config.json").is_file() else specialists.save_model(spec[task].model, tokenizer, folder)
print("specialist folders: " + ", ".join(f"{t} {sum(f.stat().st_size for f in folders[t].iterdir()) / 1e9:.2f} GB" for t in TASKS))
LAMBDA_MK = 1.0
config = merging.mergekit_yaml(hf_model_dir(MODEL), {str(folders[t]): LAMBDA_MK for t in TASKS})
print(config)

# %% [markdown]
# mergekit's `task_arithmetic` computes `base + lambda · Σ wᵢ τᵢ`, and divides the sum by `Σ wᵢ` when
# `normalize: true`. With `normalize: false` and `lambda: 1` (both written explicitly above), its per-model
# `weight` is exactly our λᵢ. (With `normalize: true` and two weights of 1.0 you would get the *average* instead.)
# Run it with mergekit's Python API, the same as `mergekit-yaml config.yml OUT` on the command line:

# %%
started = time.perf_counter()
mk_dir = merging.run_mergekit(config, OUT / "mergekit-task-arithmetic")
mk_seconds = time.perf_counter() - started
theirs = merging.load_safetensors_dir(mk_dir)
ours = merging.task_arithmetic(theta_base, [tau[t] for t in TASKS], [LAMBDA_MK] * len(TASKS))
mk_diff = merging.max_difference(ours, theirs)
record("max |mergekit - ours|", mk_diff, note=f"task arithmetic, lambda = {LAMBDA_MK}, {len(theirs)} tensors; mergekit took {mk_seconds:.0f} s", fmt=".1e")
assert mk_diff < 1e-5
del theirs, ours

# %% [markdown]
# Identical weights, up to float rounding. mergekit also implements every other method of this lesson (`linear`,
# `slerp`, `ties`, `dare_linear`, `dare_ties`) and more, each from a YAML file like the one above; its `ties` equals
# our `merging.ties` exactly (`tests/test_merging.py` checks both).
#
# ## 8. Export the winner, run it with llama.cpp, serve it with Ollama
#
# The best merge is an ordinary model, so lesson 08's export applies unchanged: GGUF with the bundled model's
# tokenizer, then llama.cpp through the course backend.

# %%
winner = merging.model_with(base, builders[best]())
gguf_path = export.export_gguf(winner, OUT / f"smollm2-merged-{OUTTYPE}.gguf", outtype=OUTTYPE,
                               tokenizer_gguf=MODEL if str(MODEL).endswith(".gguf") else None, name="SmolLM2-135M dates+units merge")
_ = record("GGUF size", gguf_path.stat().st_size / 1e6, note=f"MB, {OUTTYPE}, {best}", fmt=".0f")

# %%
N_SERVED = min(8, N_HELDOUT)
with get_backend("llamacpp", model=str(gguf_path)) as served:
    served_answers = {t: [served.chat([{"role": "user", "content": ex.prompt}], max_tokens=24, temperature=0.0).text.strip()
                          for ex in heldout[t][:N_SERVED]] for t in TASKS}
rows = []
for t in TASKS:
    fast = specialists.score(winner, tokenizer, heldout[t][:N_SERVED], t).correct
    for ex, answer, fast_ok in zip(heldout[t], served_answers[t], fast, strict=False):
        rows.append({"task": t, "prompt": ex.prompt, "llama.cpp answer": answer, "expected": ex.response,
                     "right (llama.cpp)": answer == ex.response, "right (one forward pass, fp32)": fast_ok})
served_df = pd.DataFrame(rows)
agree = (served_df["right (llama.cpp)"] == served_df["right (one forward pass, fp32)"]).mean()
record("exact match, llama.cpp (merged GGUF)", served_df["right (llama.cpp)"].mean(), note=f"{len(served_df)} held-out prompts; the verdict agrees with the fp32 forward-pass score on {agree:.0%}", fmt=".0%")
assert agree >= 0.8
served_df.head(6)

# %% [markdown]
# llama.cpp, generating token by token from an f16 file with its own kernels, gives the merged model's behaviour,
# and its right/wrong verdicts agree with the one-forward-pass exact match of section 1 on the printed share of
# prompts. Both pick the most likely token at every step, so where they disagree, the numbers differed (f16 weights,
# other kernels) on a close call. A row marked wrong is a real mistake of the merge: compare its answer with the
# expected column. For Ollama, write the Modelfile next to the GGUF:

# %%
print(export.write_modelfile(gguf_path).read_text())

# %% [markdown]
# Then `ollama create smollm2-merged -f Modelfile` and `ollama run smollm2-merged` (not run here: there is no Ollama
# server in the course environment). As in lesson 08, the `SYSTEM` line must be the system prompt the specialists
# were trained with.
#
# ## 9. What merging cannot do
#
# **Different architectures.** Merging adds tensors name by name, so both models must have the same tensors of the
# same shapes. A model of another size fails at the first tensor, with one line saying why:

# %%
from transformers import AutoModelForCausalLM, LlamaConfig

from course_utils import CourseError

smaller = AutoModelForCausalLM.from_config(LlamaConfig(
    vocab_size=base.config.vocab_size, hidden_size=256, intermediate_size=512, num_hidden_layers=4,
    num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True))
try:
    merging.task_vector(merging.state_of(smaller), theta_base)
except CourseError as err:
    print(f"{type(err).__name__}: {err}")
del smaller

# %% [markdown]
# **Different bases with the same shapes.** Matching shapes are not enough. A network's hidden units can be
# permuted without changing what it computes (Ainsworth et al. 2023, "Git Re-Basin"), so two models trained from
# different starting points have no reason to store "the same" feature in unit *i*. We can build such a pair
# without training: shuffle the 1,536 hidden units of every MLP of SmolLM2 (rows of `gate_proj` and `up_proj`,
# columns of `down_proj`). The shuffled model computes exactly the same function; then average it with the original:

# %%
g = torch.Generator().manual_seed(SEED)
shuffled = dict(theta_base)
for i in range(base.config.num_hidden_layers):
    order = torch.randperm(base.config.intermediate_size, generator=g)
    for part in ("gate_proj", "up_proj"):
        shuffled[f"model.layers.{i}.mlp.{part}.weight"] = theta_base[f"model.layers.{i}.mlp.{part}.weight"][order]
    shuffled[f"model.layers.{i}.mlp.down_proj.weight"] = theta_base[f"model.layers.{i}.mlp.down_proj.weight"][:, order]
ppl_base = results["base"]["perplexity"]
ppl_shuffled = perplexity(merging.model_with(base, shuffled), ids=text_ids, window=256).perplexity
ppl_mixed = perplexity(merging.model_with(base, merging.linear([theta_base, shuffled])), ids=text_ids, window=256).perplexity
print(f"perplexity: base {ppl_base:.2f}, shuffled copy {ppl_shuffled:.2f}, average of the two {ppl_mixed:.2f}")
assert abs(ppl_shuffled / ppl_base - 1) < 1e-3 and ppl_mixed > 2 * ppl_base
del shuffled

# %% [markdown]
# Two models that are *the same function* average into a much worse one, because unit *i* of one is not unit *i* of
# the other. Fine-tunes of one base are mergeable because they start from the same weights and move only a little
# (section 2); models pre-trained separately (Llama and Mistral, say) are not, even at the same size. **Different
# tokenizers** break merging the same way: row *i* of the embedding matrix is token *i* of *one* vocabulary, so
# averaging row *i* of two models mixes unrelated tokens (and the sizes usually differ anyway). mergekit can build a
# union vocabulary (`tokenizer_source: union`, in its README), but a token new to a model gets an embedding it was
# never trained with.
#
# **Frankenmerges** are merges that average nothing: mergekit's `passthrough` method *stacks* layer ranges from one
# or more models into a deeper model. Goliath-120B (alpindale, 2023, on the Hugging Face Hub) interleaved layers of
# two Llama-2-70B fine-tunes; SOLAR-10.7B (Kim et al. 2023, "Depth Up-Scaling") stacked two trimmed copies of a
# 32-layer model into 48 layers, and then *continued pre-training* to repair the seams. A passthrough config:

# %%
import yaml

print(yaml.safe_dump({"merge_method": "passthrough", "dtype": "float32", "slices": [
    {"sources": [{"model": "SmolLM2-135M-Instruct", "layer_range": [0, 20]}]},
    {"sources": [{"model": "SmolLM2-135M-Instruct", "layer_range": [10, 30]}]}]}, sort_keys=False))
deeper = merging.stack_layers(base, [(0, 20), (10, 30)])
n_params = sum(p.numel() for p in deeper.parameters())
ppl_deeper = perplexity(deeper, ids=text_ids, window=256).perplexity
print(f"{len(deeper.model.layers)} layers, {n_params / 1e6:.0f}M parameters: perplexity {ppl_deeper:.2f} (base {ppl_base:.2f})")
assert ppl_deeper > ppl_base
del deeper

# %% [markdown]
# The same stack, built by hand (`merging.stack_layers`): 40 layers, more parameters, and a *higher* perplexity than
# the model it was cut from (asserted). Without training after stacking, layers 10–19 now receive inputs they never
# saw. SOLAR's authors repaired exactly this with continued pre-training; a frankenmerge published without it should
# be measured on your own task before you trust it.

# %% [markdown]
# ## Summary
#
# - A fine-tune's **task vector** `τ = θ_fine − θ_base` is small, and for LoRA specialists it lives only in the
#   adapted layers, with low rank. The cosine between our two task vectors (section 2) says how little they overlap.
# - **Averaging** two fine-tunes is task arithmetic with λ = 0.5: it keeps half of each change. **Task arithmetic**
#   `θ_base + Σ λᵢ τᵢ` adds each skill at full strength at λ = 1; the plot over λ shows the trade-off on both
#   tasks and on general text.
# - **SLERP** between two fine-tunes of one base is nearly the average (their weights are nearly parallel); between task
#   vectors it keeps their norm. **TIES** trims, elects a sign by total mass and averages only agreeing entries;
#   **DARE** drops most of each task vector at random and rescales the rest. Whether either beat plain task
#   arithmetic here is printed in section 6, with the standard errors that decide it.
# - **mergekit** builds the same merges from a YAML config; its `task_arithmetic` (with `normalize: false`) gives
#   our weights exactly.
# - The best merge keeps at least half of each specialist's gain (asserted; the recorded percentages say how much),
#   exports to GGUF and runs in llama.cpp like any model.
# - Merging needs one base: the same architecture, the same tokenizer and the same starting weights. A shuffled but
#   equivalent copy of SmolLM2 already cannot be averaged with it. Frankenmerges stack layers instead, and need
#   training to work well.
#
# ## Exercises
#
# Practise in the lab, [`labs/12_merging_lab.ipynb`](../labs/12_merging_lab.ipynb): write task vectors, task
# arithmetic, SLERP and TIES yourself, then choose λs for a merge that keeps both skills on held-out prompts. Each
# exercise has an automatic check.
#
# Further questions to explore here:
# 1. Give the two task vectors different λs (for instance λ_units > λ_dates). Can you push the weaker skill up
#    without losing the other?
# 2. Sweep TIES's `DENSITY` from 0.05 to 1.0. How few entries of each task vector still carry the skill?
# 3. Run DARE with `DROP = 0.99`. DARE's authors report that SFT deltas survive such drops; do LoRA deltas?
# 4. Task *negation*: `θ_base − τ_dates` (λ = −1). What does the model answer to the date prompts now?
