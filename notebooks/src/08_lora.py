# %% [markdown]
# # 08 · LoRA: fine-tune SmolLM2 on a CPU and serve it with llama.cpp
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/local-llm-lab/local-llm-lab/blob/main/notebooks/08_lora.ipynb)
#
# **What you will learn**
# - how to make a model *your own* with a small instruction data set, and how to tell whether it worked
#   (held-out loss, a task metric, generations side by side);
# - **LoRA** from scratch: the low-rank update `(alpha / r) · B A`, its scaling, injecting it into the attention
#   projections, and why training a small fraction of the parameters (counted in section 2) is enough;
# - the same with Hugging Face **peft**, checked to give the same outputs;
# - **merging** the adapter into the weights, and **QLoRA**'s idea: train adapters on a frozen, quantized base;
# - exporting the merged model to **GGUF** yourself, running it with **llama.cpp**, and the **Ollama** Modelfile;
# - when to prompt, use RAG or fine-tune; SFT vs RLHF/DPO; the PEFT family; MLX on Apple silicon.
#
# **Prerequisites:** lesson 02 (a transformer's layers, `q_proj`/`k_proj`/...) and lesson 05 (quantization: int4
# codes and scales, `course_utils.quant`). A little PyTorch training (loss, `backward()`, an optimizer).
#
# **Run time:** 1 min 58 s on a 2-core CPU (Intel(R) Xeon(R) Processor), measured by `course run` on 2026-12-02; a slower machine takes longer.
#
# Everything runs offline on the bundled SmolLM2-135M-Instruct. Files written (adapter, merged model, GGUF) go to
# the course cache (`COURSE_CACHE`, default `~/.cache/local-llm-lab/lora/`), not into the repository.

# %%
# Colab only: install the course (~5 min the first time). Does nothing on your own machine.
import sys
if "google.colab" in sys.modules:
    # !git clone -q --depth 1 https://github.com/local-llm-lab/local-llm-lab /content/local-llm-lab
    # !bash /content/local-llm-lab/tools/install.sh --system

# %% tags=["parameters"]
BACKEND = "auto"  # unused: the exported GGUF is served with llama.cpp, the engine that runs GGUF files
MODEL = None  # None = the bundled SmolLM2-135M-Instruct; or a .gguf path of a Llama-style chat model
SEED = 0
FULL = False  # True: train for 3 minutes and evaluate on all 100 held-out examples
STEPS = 8  # LoRA training steps (FULL: 60, stopped at TRAIN_SECONDS if slower)
BATCH_SIZE = 8
LR = 3e-3  # LoRA tolerates (and short runs need) a larger learning rate than full fine-tuning
RANK = 8  # r: the rank of the update
ALPHA = 16  # the update is scaled by ALPHA / RANK
QLORA_STEPS = 8  # steps on the int4 base (section 6); the same as STEPS, so the two compare at equal steps
N_HELDOUT = 16  # held-out examples scored before/after (FULL: 100)
OUTTYPE = "f16"  # GGUF tensor type: "f16", "f32" or "q8_0"

# %%
from course_utils import record, setup_notebook

cfg = setup_notebook(seed=SEED)

import copy
import inspect
import re
import warnings

import matplotlib.pyplot as plt
import pandas as pd
import torch
from IPython.display import Markdown, display

from course_utils import export, lora, quant
from course_utils.assets import bundled_model_check, load_hf_model
from course_utils.backends import get_backend
from course_utils.plots import labelled

torch.set_num_threads(cfg.n_threads)
warnings.filterwarnings("ignore", category=FutureWarning)  # peft 0.21 calls a transformers API deprecated in v5
if FULL:
    STEPS, QLORA_STEPS, N_HELDOUT = 60, 20, 100
TRAIN_SECONDS = 180 if FULL else None  # the budget: at most 3 minutes of CPU training
OUT = cfg.cache_dir / "lora"

# %% [markdown]
# ## 1. The task: answer dates in ISO 8601
#
# A fine-tune needs a task where the base model falls short in a way we can measure. Ours is a **fixed answer
# format**, the kind of thing teams fine-tune for: given a sentence with a date, answer with that date as
# `YYYY-MM-DD` and nothing else. The data (`data/lora_dates.jsonl`) was written for this course: training and
# held-out examples (counted below), varied instructions, sentences and date styles, and no date in both splits.

# %%
train_set, test_set = lora.load_examples("train"), lora.load_examples("test")
heldout = test_set[:N_HELDOUT]
print(len(train_set), "training examples,", len(test_set), "held out")
for ex in train_set[:3]:
    print(f"  {ex.prompt!r}\n    -> {ex.response!r}")
asks = sum(bool(re.search(r"ISO|YYYY-MM-DD", ex.prompt)) for ex in heldout)
print(f"held-out prompts used here: {len(heldout)}; {asks} of them name the format (ISO or YYYY-MM-DD)")

# %% [markdown]
# Notice that the instruction often *asks* for ISO format (counted above): the base model gets a fair chance.
# Let us see what it does with the held-out prompts (greedy decoding, several prompts per batch).

# %%
base, tokenizer = load_hf_model(MODEL)
prompts = [ex.prompt for ex in heldout]
answers = [ex.response for ex in heldout]
base_answers = lora.generate(base, tokenizer, prompts, max_new_tokens=20)
base_loss = lora.response_loss(base, tokenizer, heldout)
base_em = lora.exact_match(base_answers, answers)
for prompt, got in list(zip(prompts, base_answers))[:4]:
    print(f"{prompt[:70]!r:75} -> {got!r}")
record("held-out loss, base model", base_loss, note="nats per answer token", fmt=".3f")
base_em = record("exact match, base model", base_em, note=f"{N_HELDOUT} held-out prompts", fmt=".0%")

ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def kinds_of_answer(predictions):
    """Sort answers: right, the date alone but wrong digits, an ISO date inside other words, no ISO date at all."""
    kinds = {"exactly right": 0, "ISO date alone, wrong digits": 0, "ISO date inside other words": 0, "no complete ISO date": 0}
    for got, want in zip(predictions, answers):
        got = got.strip()
        kind = ("exactly right" if got == want else "ISO date alone, wrong digits" if ISO_DATE.fullmatch(got)
                else "ISO date inside other words" if ISO_DATE.search(got) else "no complete ISO date")
        kinds[kind] += 1
    return kinds


base_kinds = kinds_of_answer(base_answers)
print("base model:", base_kinds)

# %%
display(Markdown(
    f"Of the {len(answers)} base-model answers, {base_kinds['no complete ISO date']} contain no complete ISO date (look at the "
    f"examples: the model answers in its own words and is cut short, or repeats the date as written), "
    f"{base_kinds['ISO date inside other words']} have one inside other words, {base_kinds['ISO date alone, wrong digits']} "
    f"are a bare ISO date with wrong digits, and {base_kinds['exactly right']} exactly right: "
    f"an exact match of {base_em:.0%}."))

# %% [markdown]
# The **held-out loss** is the mean
# cross-entropy of the reference answer's tokens (including the end-of-turn token that stops generation) given the
# prompt: how surprised the model is by the answer we want. Both numbers are measured on examples never trained on.
#
# ## 2. LoRA from scratch
#
# Full fine-tuning updates every weight matrix `W`. LoRA keeps `W` frozen and learns a **low-rank** change next to
# it: two thin matrices `A` (r × in) and `B` (out × r), and the layer computes
#
# `y = x Wᵀ + (alpha / r) · x Aᵀ Bᵀ`
#
# The whole layer is in `course_utils.lora`; here is its forward pass:

# %%
print(inspect.getsource(lora.LoRALinear.forward))

# %% [markdown]
# Two thin matrix products, `(…, in) → (…, r) → (…, out)`; the full `(out, in)` update is never built during
# training. On a toy layer we can check the three facts that make LoRA work:

# %%
# NBVAL_CHECK_OUTPUT
torch.manual_seed(SEED)
toy = lora.LoRALinear(torch.nn.Linear(6, 4, bias=False), r=2, alpha=4)
x = torch.randn(3, 6)
assert torch.equal(toy(x), toy.base(x))  # 1. B starts at zero: the model is unchanged at step 0
with torch.no_grad():
    toy.lora_B.normal_()  # pretend we trained
delta = toy.delta_weight()
print("update (alpha/r)·B·A:", tuple(delta.shape), "rank", int(torch.linalg.matrix_rank(delta)))  # 2. rank <= r
assert torch.allclose(toy(x), x @ (toy.base.weight + delta).T, atol=1e-6)  # 3. the same as a changed weight
print("trainable:", lora.count_parameters(toy))

# %% [markdown]
# 1. `B = 0` at the start, so training begins exactly at the base model (`A` is random so gradients can flow).
# 2. The update `(alpha/r)·B·A` has rank at most r: a 4 × 6 change described by 2·(6 + 4) = 20 numbers.
# 3. The layer equals an ordinary linear layer with weight `W + update`: that is what **merging** does later.
#
# `alpha / r` is the **scaling**. The LoRA paper (Hu et al., 2021, section 4.1) sets `alpha` once, keeps it fixed
# while r varies, and notes that "this scaling helps to reduce the need to retune hyperparameters when we vary r".
#
# Now the real model. We inject adapters into the four **attention projections** of all 30 layers (a deep copy:
# `base` stays untouched for comparisons).

# %%
# NBVAL_CHECK_OUTPUT
model = copy.deepcopy(base)
torch.manual_seed(SEED)
wrapped = lora.inject_lora(model, targets=("q_proj", "k_proj", "v_proj", "o_proj"), r=RANK, alpha=ALPHA)
counts = lora.count_parameters(model)
print(len(wrapped), "layers wrapped, e.g.", wrapped[0])
print(model.model.layers[0].self_attn.k_proj)
print(counts)
assert counts.trainable == lora.lora_parameter_count(base, r=RANK)  # r * (in + out), summed over the layers

# %%
attn = base.model.layers[0].self_attn
per_layer = {name: getattr(attn, name) for name in ("q_proj", "k_proj", "v_proj", "o_proj")}
lines = [f"`{name}` is {m.out_features} × {m.in_features} → {RANK} · ({m.in_features} + {m.out_features}) = "
         f"{RANK * (m.in_features + m.out_features):,} adapter weights" for name, m in per_layer.items()]
full_total = lora.count_parameters(base).total
optimizer_bytes = 3 * 4  # fp32 gradient + AdamW's two moments (m and v), 4 bytes each
display(Markdown(
    "Per layer: " + "; ".join(lines) + f". In all, **{counts.trainable:,}** trainable weights over "
    f"{len(model.model.layers)} layers: {counts.fraction:.2%} of the model's {counts.total:,}. "
    "The memory you save is larger than that suggests: full fine-tuning with AdamW keeps, for *every* weight, its "
    f"gradient and two optimizer moments ({optimizer_bytes // 4} × 4 bytes × {full_total / 1e6:.1f} M = "
    f"{optimizer_bytes * full_total / 1e9:.2f} GB on top of the weights); LoRA keeps them only for the adapters "
    f"({optimizer_bytes * counts.trainable / 1e6:.1f} MB)."))

# %%
batch = lora.make_batch(tokenizer, heldout[:4])
with torch.no_grad():
    same = torch.equal(model(input_ids=batch.input_ids).logits, base(input_ids=batch.input_ids).logits)
print("outputs identical to the base model before training:", same)
assert same

# %% [markdown]
# ## 3. Train
#
# Supervised fine-tuning (**SFT**) trains on the chat-formatted example, but the loss counts only the **answer**:
# prompt positions get the label `-100`, which cross-entropy ignores. We want the model to learn to answer, not to
# predict our questions.

# %%
ids, labels = lora.encode_example(tokenizer, train_set[0])
answer_from = next(i for i, lab in enumerate(labels) if lab != lora.IGNORE_INDEX)
print(f"{len(ids)} tokens, the loss is taken on the last {len(ids) - answer_from}:")
print(repr(tokenizer.decode(ids[answer_from - 6:answer_from])), "|", repr(tokenizer.decode(ids[answer_from:])))
print("the answer, token by token:", [tokenizer.decode([t]) for t in ids[answer_from:]])

# %% [markdown]
# Everything up to `assistant\n` (including SmolLM2's default system prompt, which its chat template adds) is
# context; the answer and its end-of-turn token are what we teach (printed token by token: in SmolLM2 each
# digit is a token of its own). Training is a plain loop (`lora.train`): AdamW on the adapters only, `BATCH_SIZE` examples per step,
# the learning rate decaying linearly, gradients clipped.

# %%
torch.manual_seed(SEED)
result = lora.train(model, lora.batches(tokenizer, train_set, BATCH_SIZE, seed=SEED), steps=STEPS, lr=LR,
                    max_seconds=TRAIN_SECONDS, log_every=max(1, STEPS // 4))
tuned_loss = lora.response_loss(model, tokenizer, heldout)
drop = 1 - tuned_loss / base_loss
record("LoRA training", result.seconds, note=f"seconds; {result.steps} steps of {BATCH_SIZE}, {result.seconds_per_step:.1f} s/step, {result.tokens_per_s:.0f} tokens/s", fmt=".0f")
record("held-out loss, LoRA", tuned_loss, note=f"{drop:.0%} lower than the base model", fmt=".3f")
if bundled_model_check(MODEL, "SmolLM2's held-out loss falls by 30% or more"):
    assert drop >= 0.30, f"held-out loss fell only {drop:.0%}"

# %%
fig, ax = plt.subplots()
ax.plot(range(1, result.steps + 1), result.losses, marker="o", ms=3, label="training loss (one batch)")
ax.axhline(base_loss, color="grey", ls="--", label=f"held-out, base model ({base_loss:.2f})")
ax.axhline(tuned_loss, color="green", ls="--", label=f"held-out, after LoRA ({tuned_loss:.2f})")
ax.set_ylim(bottom=0)
ax.legend()
labelled(ax, f"LoRA r={RANK} on SmolLM2-135M: {result.seconds:.0f} s on {cfg.n_threads} CPU threads",
         f"training step (batch of {BATCH_SIZE} examples)", "loss (nats per answer token)")
plt.show()

# %%
half = next((n for n, loss in enumerate(result.losses, start=1) if loss <= result.losses[0] / 2), None)
last_train = result.losses[-1]
display(Markdown(
    f"The training loss went from {result.losses[0]:.3f} to {last_train:.3f} in {result.steps} steps"
    + (f" (halved by step {half})" if half else " (it never halved)")
    + f", and the held-out loss from {base_loss:.3f} to {tuned_loss:.3f} ({drop:.0%} lower). "
    + ("A fixed format is quick to learn because the model already knows dates and digits; it only has to change "
       "*how* it answers. " if half and half <= result.steps // 2 else "")
    + (f"The held-out loss (examples never seen in training) ends {'below' if tuned_loss <= last_train else 'close to'} "
       f"the last training batch's loss, so this is learning, not memorising."
       if tuned_loss <= 1.5 * last_train else
       f"The held-out loss stays well above the last training batch's loss ({tuned_loss:.3f} vs {last_train:.3f}): "
       "part of what was learned does not carry over to new examples.")))

# %% [markdown]
# Now the task metric, side by side:

# %%
tuned_answers = lora.generate(model, tokenizer, prompts, max_new_tokens=20)
tuned_em = lora.exact_match(tuned_answers, answers)
record("exact match, LoRA", tuned_em, note=f"base model: {base_em:.0%}", fmt=".0%")
if bundled_model_check(MODEL, "LoRA lifts SmolLM2's exact match by 25 points or more"):
    assert tuned_em >= base_em + 0.25
tuned_kinds = kinds_of_answer(tuned_answers)
print("after LoRA:", tuned_kinds)
pd.set_option("display.max_colwidth", 60)
pd.DataFrame({"prompt": prompts, "base model": base_answers, "after LoRA": tuned_answers, "expected": answers}).head(8)

# %%
alone = tuned_kinds["exactly right"] + tuned_kinds["ISO date alone, wrong digits"]
wrong_digits = tuned_kinds["ISO date alone, wrong digits"]
display(Markdown(
    f"After LoRA, {alone} of {len(answers)} answers are an ISO date and nothing else (base model: "
    f"{base_kinds['exactly right'] + base_kinds['ISO date alone, wrong digits']}); {tuned_kinds['exactly right']} are exactly right. "
    + (f"Of the errors, {wrong_digits} of {len(answers) - tuned_kinds['exactly right']} are the right format with "
       "**wrong digits** (look for a wrong century or day in the table): the model learned the format faster than "
       "the copying. More steps (`FULL = True`) may fix some of them; measure it." if len(answers) > tuned_kinds["exactly right"]
       else "No errors remain on these prompts.")))

# %% [markdown]
# ## 4. The same with peft
#
# Hugging Face's **peft** library is what you would use in practice. We build a peft model from the same base, with
# the same configuration, and give it our trained `A` and `B` matrices: the outputs must agree.

# %%
from peft import LoraConfig, get_peft_model, set_peft_model_state_dict

peft_config = LoraConfig(r=RANK, lora_alpha=ALPHA, lora_dropout=0.0, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"])
peft_model = get_peft_model(copy.deepcopy(base), peft_config)
peft_model.print_trainable_parameters()
set_peft_model_state_dict(peft_model, lora.peft_state_dict(model))
with torch.no_grad():
    ours = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
    theirs = peft_model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
peft_diff = (ours - theirs).abs().max().item()
record("max |logit difference| ours vs peft", peft_diff, note="same weights, 4 held-out examples", fmt=".1e")
assert peft_diff < 1e-4
del peft_model

# %% [markdown]
# Same parameter count, same outputs (the difference is at most float rounding): peft's `LoraLayer` computes
# `base(x) + lora_B(lora_A(dropout(x))) · scaling`, our formula. With peft, training is
# `get_peft_model(model, LoraConfig(...))` followed by any training loop (ours, or `transformers.Trainer`, or
# `trl.SFTTrainer`).
#
# Our `save_adapter` writes peft's file format, so the adapter we trained can be loaded by anyone with
# `PeftModel.from_pretrained(base, folder)`. It is small:

# %%
adapter_dir = lora.save_adapter(model, OUT / "dates-adapter", base_model="SmolLM2-135M-Instruct")
for f in sorted(adapter_dir.iterdir()):
    print(f"{f.name:28} {f.stat().st_size / 1e6:6.2f} MB")

# %%
adapter_mb = sum(f.stat().st_size for f in adapter_dir.iterdir()) / 1e6
base_mb = quant.model_size_bytes(base) / 1e6
print(f"adapter: {adapter_mb:.1f} MB, fp32 model: {base_mb:.0f} MB ({base_mb / adapter_mb:.0f}× larger)")

# %% [markdown]
# A small adapter next to a large model (sizes above): you can keep one base model and many adapters (one per
# task or customer), and swap them at run time.
#
# ## 5. Merge the adapter into the weights
#
# For serving, fold the update into each weight, `W' = W + (alpha/r)·B·A`: the model has its original
# architecture again, no adapter code, no extra matrix products. `merge_lora` does it and removes the wrappers.

# %%
merged = lora.merge_lora(model)  # in place: `model` is now the merged model
with torch.no_grad():
    merged_logits = merged(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
merge_diff = (merged_logits - ours).abs().max().item()
merged_answers = lora.generate(merged, tokenizer, prompts[:8], max_new_tokens=20)
print("layer now:", merged.model.layers[0].self_attn.q_proj)
print(f"max |logit difference| merged vs adapter: {merge_diff:.1e}")
print("greedy answers unchanged:", merged_answers == tuned_answers[:8])
assert merge_diff < 1e-3 and merged_answers == tuned_answers[:8]
assert lora.count_parameters(merged).total == lora.count_parameters(base).total

# %% [markdown]
# The outputs agree up to float rounding (adding a small update into a large weight rounds differently from adding
# it afterwards) and the answers are identical. The merged model saves like any transformers model:

# %%
merged_dir = OUT / "dates-merged"
from course_utils.paths import atomic_folder

atomic_folder(merged_dir, lambda tmp: (merged.save_pretrained(tmp), tokenizer.save_pretrained(tmp)))
print(f"{merged_dir}: {sum(f.stat().st_size for f in merged_dir.iterdir()) / 1e6:.0f} MB")

# %% [markdown]
# ## 6. QLoRA's idea on a CPU
#
# **QLoRA** (Dettmers et al., 2023) fine-tunes a model too big for memory by **quantizing the frozen base to 4
# bits** and training full-precision LoRA adapters on top; gradients flow *through* the de-quantized weights into
# the adapters. Its CUDA kernels (bitsandbytes, NF4) need a GPU, but the idea works with the course's own int4 code
# from lesson 05: `QuantLinear` stores codes and scales and de-quantizes on the fly, and `LoRALinear` wraps it
# like any linear layer.

# %%
qmodel = quant.quantize_model(base, bits=4, group_size=32)  # every linear layer but the tied lm_head
q_base_loss = lora.response_loss(qmodel, tokenizer, heldout)
torch.manual_seed(SEED)
lora.inject_lora(qmodel, r=RANK, alpha=ALPHA)
q_result = lora.train(qmodel, lora.batches(tokenizer, train_set, BATCH_SIZE, seed=SEED), steps=QLORA_STEPS, lr=LR)
q_loss = lora.response_loss(qmodel, tokenizer, heldout)
print(f"int4 linear layers + fp32 embeddings: {quant.model_size_bytes(qmodel) / 1e6:.0f} MB (fp32 model: {quant.model_size_bytes(base) / 1e6:.0f} MB)")
print(lora.count_parameters(qmodel), "(the int4 codes are buffers, not parameters)")
record("held-out loss, QLoRA (int4 base)", q_loss, note=f"int4 base before training {q_base_loss:.3f}; {QLORA_STEPS} steps, {q_result.seconds_per_step:.1f} s/step", fmt=".3f")
if bundled_model_check(MODEL, "QLoRA cuts SmolLM2's held-out loss by 30% or more"):
    assert q_loss < 0.7 * q_base_loss

# %%
summary = pd.DataFrame(
    {"held-out loss": [base_loss, tuned_loss, q_base_loss, q_loss],
     "training steps": [0, result.steps, 0, q_result.steps],
     "s/step": [None, result.seconds_per_step, None, q_result.seconds_per_step]},
    index=["fp32 base", "fp32 base + LoRA", "int4 base", "int4 base + LoRA (QLoRA)"],
).round(3)
summary

# %%
if q_result.steps == result.steps:
    versus = (f"At equal steps ({q_result.steps}), QLoRA's held-out loss is {q_loss:.3f} against LoRA's {tuned_loss:.3f} "
              f"on the fp32 base: " + ("about as good." if q_loss <= 1.25 * tuned_loss else
                                       f"{q_loss / tuned_loss:.1f}× higher, so on this model it does **not** learn the task as well in the same number of steps."))
else:
    versus = (f"After {q_result.steps} steps QLoRA's held-out loss is {q_loss:.3f}, against {tuned_loss:.3f} for LoRA on the "
              f"fp32 base after {result.steps} steps: different step counts, so this is not a like-for-like comparison.")
display(Markdown(
    f"The int4 base starts {'worse' if q_base_loss > base_loss else 'no worse'} than fp32 on this loss "
    f"({q_base_loss:.3f} vs {base_loss:.3f}; a loss on a few exact answer tokens is sensitive to 4-bit rounding). "
    f"Adapters trained on top of the frozen int4 weights cut its loss {q_base_loss / q_loss:.1f}-fold: they learn the task "
    f"*and* can absorb part of the quantization error. {versus} Speed is not what QLoRA is for: its weights are "
    f"de-quantized in every forward pass. This run took {q_result.seconds_per_step:.1f} s/step against {result.seconds_per_step:.1f} s/step "
    "for LoRA, measured in different cells, so not a fair race (`benchmarks/lora.py` times them side by side)."))

# %%
params_7b = 7e9  # a "7B" model
int4_bits = 4 + 16 / 32  # 4-bit codes plus one fp16 scale per group of 32 weights, as in our QuantLinear
print({f"{name}": f"{params_7b * bits / 8 / 1e9:.1f} GB" for name, bits in [("fp32", 32), ("fp16", 16), ("int4, groups of 32", int4_bits)]})

# %% [markdown]
# The point of QLoRA is memory: the frozen weights of a 7B model shrink as printed above (weights only, before
# activations and the adapters' optimizer state), which fits one consumer GPU. Real QLoRA adds NF4 (4-bit levels placed for normally distributed weights), double
# quantization of the scales and paged optimizer states. To deploy, merge the adapters into the de-quantized (or,
# better, the original full-precision) weights; `merge_lora` does the former.
#
# ## 7. Export to GGUF, run with llama.cpp, serve with Ollama
#
# llama.cpp, Ollama, LM Studio and GPT4All all run **GGUF** files. `export.export_gguf` writes one with the `gguf`
# library: the model's sizes as metadata, the tokenizer copied from the bundled SmolLM2 GGUF (same vocabulary),
# and every tensor under llama.cpp's name. One step needs care: llama.cpp applies RoPE to *adjacent* dimension
# pairs, Hugging Face to pairs half a head apart, so the rows of `q_proj` and `k_proj` are permuted within each head.
# The bundled GGUF shows it:

# %%
from course_utils.quant import gguf_dequantize

hf_q = base.model.layers[0].self_attn.q_proj.weight.detach().numpy()
file_q = gguf_dequantize("blk.0.attn_q.weight")  # the bundled SmolLM2 GGUF
print("rows as in Hugging Face:  ", bool((file_q == hf_q).all()))
print("rows permuted per head:   ", bool((file_q == export.permute_qk(hf_q, n_head=9)).all()))

# %% [markdown]
# The bundled file stores exactly the permuted rows (bit for bit: our fp32 model *is* its de-quantized weights).
# Without the permutation the exported file would load and then talk nonsense. Now the export of our merged model:

# %%
gguf_path = export.export_gguf(merged, OUT / f"smollm2-dates-{OUTTYPE}.gguf", outtype=OUTTYPE,
                               tokenizer_gguf=MODEL if str(MODEL).endswith(".gguf") else None, name="SmolLM2-135M dates")
gguf_mb = record("GGUF size", gguf_path.stat().st_size / 1e6, note=f"MB, {OUTTYPE}, {gguf_path.name}", fmt=".0f")

# %%
merged_mb = sum(f.stat().st_size for f in merged_dir.iterdir()) / 1e6
print(f"GGUF ({OUTTYPE}): {gguf_mb:.0f} MB, {gguf_mb / merged_mb:.2f}× the saved fp32 model ({merged_mb:.0f} MB)")

# %% [markdown]
# On a model of your own you would more likely use **llama.cpp's converter**, `convert_hf_to_gguf.py`: its
# maintainers keep it up to date for hundreds of architectures. It ships in llama-cpp-python's source distribution
# (`tools/install.sh` keeps it). Run it on the folder saved in section 5 and compare the two files tensor by
# tensor (names, types, stored values) and by metadata key:

# %%
from course_utils import gguf_convert

theirs_path = gguf_convert.convert_with_llamacpp(merged_dir, OUT / f"smollm2-dates-{OUTTYPE}-llamacpp.gguf", outtype=OUTTYPE)
same = gguf_convert.compare_gguf(gguf_path, theirs_path)
print(same)

# %%
display(Markdown(
    (f"The two files hold **the same {same.tensors} tensors, bit for bit**: the q/k permutation, the names and which "
     "tensors stay f32 all agree. " if same.same_tensors else
     f"The files differ: {same}. Look at the tensors listed before trusting either file. ")
    + f"Only metadata differs: ours alone writes {', '.join(same.keys_only_first) or 'nothing extra'}; the converter "
    f"alone writes {', '.join(same.keys_only_second) or 'nothing extra'} (descriptive names and head sizes llama.cpp "
    "can also work out from the others)."))
if OUTTYPE == "f16":
    assert same.same_tensors, same

# %% [markdown]
# f16 stores each weight in 2 bytes instead of 4 (size printed above); whether that loses anything is measured
# below through llama.cpp. `outtype="q8_0"` stores blocks of 32 weights as 32 int8 codes plus one fp16 scale
# (ggml's Q8_0 format: 8.5 bits per weight), about half of f16 again. (lesson 05's pitfall applies:
# re-quantizing a model this small to 4 bits can break it, so check any quantized export on held-out data.)
# Run it with the course's llama.cpp backend, on the same held-out prompts, through the chat template stored in
# the file:

# %%
with get_backend("llamacpp", model=str(gguf_path)) as served:
    served_answers = [served.chat([{"role": "user", "content": p}], max_tokens=20).text.strip() for p in prompts]
served_em = lora.exact_match(served_answers, answers)
agree = sum(a == b for a, b in zip(served_answers, tuned_answers)) / len(prompts)
record("exact match, llama.cpp (exported GGUF)", served_em, note=f"answers identical to transformers for {agree:.0%}", fmt=".0%")
assert agree >= 0.9 and served_em >= tuned_em - 0.1
pd.DataFrame({"prompt": prompts, "transformers (fp32)": tuned_answers, f"llama.cpp ({OUTTYPE} GGUF)": served_answers}).head(5)

# %%
display(Markdown(
    f"llama.cpp, from the {OUTTYPE} file and its own kernels, gives the same answer as PyTorch for {agree:.0%} of the "
    f"{len(prompts)} prompts; exact match {served_em:.0%} (PyTorch, fp32: {tuned_em:.0%})."
    + (" The fine-tuned behaviour survived the export." if agree >= 0.9 else "")))

# %% [markdown]
# To serve it with **Ollama**, write a Modelfile next to the GGUF:

# %%
modelfile = export.write_modelfile(gguf_path)
print(modelfile.read_text())

# %% [markdown]
# Then `ollama create smollm2-dates -f Modelfile` and `ollama run smollm2-dates "Deadline: 3 May 2025. Give the date
# in ISO 8601 format."` (not run here: there is no Ollama server in the course environment). `FROM` names the file;
# `TEMPLATE` (a Go template) rebuilds SmolLM2's ChatML prompt; `SYSTEM` sets the system prompt the model was
# **trained with** (SmolLM2's template inserted it into every training example): serve with a different prompt
# and the fine-tuned behaviour may weaken. `PARAMETER stop` ends the answer at `<|im_end|>`.
#
# ## 8. Choosing a strategy
#
# **Prompt, RAG or fine-tune?**
# - **Prompting** (instructions, a few examples, a JSON schema with constrained decoding: lesson 03) is free and
#   instant. Try it first. Here, the instruction alone gave the base model the exact match measured in section 1.
# - **RAG** (lesson 07) is for *knowledge*: facts that change, private documents, answers with citations. A
#   fine-tune is a poor database: it learns facts slowly, hallucinates them confidently, and must be retrained when
#   they change.
# - **Fine-tuning** is for *behaviour*: a format, a style, a tone, a narrow skill, or making a small model do what
#   only a large one did with a long prompt (shorter prompts, lower latency, lower cost). Our date format is a
#   textbook case. You need a few hundred to a few thousand good examples and a held-out set.
#
# **SFT, RLHF, DPO.** What we did is **supervised fine-tuning**: imitate reference answers. Chat models are then
# usually tuned on *preferences*: **RLHF** trains a reward model on human comparisons ("answer A is better than B")
# and optimizes the model against it with reinforcement learning (PPO); **DPO** (direct preference optimization)
# gets a similar result with a simple loss on the preference pairs, no reward model and no RL loop. Both work with
# LoRA adapters (`trl`'s `DPOTrainer` accepts a peft config). Use SFT to teach a behaviour, preference tuning to
# choose between acceptable behaviours.
#
# **PEFT** (parameter-efficient fine-tuning) is the family: LoRA and its variants (QLoRA, DoRA, rsLoRA with
# `alpha/√r` scaling), prefix and prompt tuning (trainable virtual tokens), IA³ (learned rescaling vectors), and
# adapters between layers. LoRA is popular because it merges away: zero cost at inference.
# Which layers? The LoRA paper (Hu et al., 2021) adapted only attention weights (in most experiments `q` and `v`);
# the QLoRA paper (Dettmers et al., 2023) found that adapting every
# linear layer (attention and MLP) was needed to match full fine-tuning. Rank 8-16 is a common start.
#
# **On a Mac.** Apple's **MLX** (`pip install mlx-lm`) fine-tunes with LoRA on the GPU of Apple silicon using
# unified memory: `mlx_lm.lora --model <hf-model> --train --data <folder with train.jsonl/valid.jsonl>`, then
# `mlx_lm.fuse` to merge, and `mlx_lm.fuse --export-gguf` (Llama-style models) or llama.cpp's converter for a GGUF.
# Our JSONL format (prompt/response pairs)
# maps directly onto MLX's `{"messages": [...]}` chat format.

# %% [markdown]
# ## Summary
#
# - A fine-tune needs a **task the base model fails at**, a **held-out split** and a **metric**. Ours: dates to ISO
#   8601, scored by held-out loss and exact match.
# - **LoRA** freezes `W` and learns `(alpha/r)·B·A` with `B = 0` at the start, in SmolLM2's attention projections.
# - **peft** computes the same thing, and our adapter files are in peft's format.
# - **Merging** folds the update into the weights: the same outputs, the original architecture, no inference cost.
# - **QLoRA**: a frozen int4 base plus fp32 adapters, in a fraction of the memory.
# - **GGUF export** is metadata + renamed tensors + a q/k row permutation; an Ollama **Modelfile** must reproduce
#   the training prompt format. llama.cpp's own converter, `convert_hf_to_gguf.py`, is what you would run on
#   other architectures; here it is compared with our writer tensor by tensor.
#
# What this run measured:

# %%
display(Markdown("\n".join([
    f"- LoRA: {counts.trainable:,} trainable parameters ({counts.fraction:.2%}); {result.steps} steps in {result.seconds:.0f} s "
    f"cut the held-out loss from {base_loss:.3f} to {tuned_loss:.3f} ({drop:.0%}) and moved exact match from {base_em:.0%} to {tuned_em:.0%}.",
    f"- peft with our adapters: max logit difference {peft_diff:.1e}; merged vs adapter: {merge_diff:.1e}.",
    f"- QLoRA (int4 base, {q_result.steps} steps): held-out loss {q_base_loss:.3f} → {q_loss:.3f}, against {tuned_loss:.3f} for "
    f"LoRA on fp32 after {result.steps} steps; int4 model {quant.model_size_bytes(qmodel) / 1e6:.0f} MB vs {base_mb:.0f} MB fp32.",
    f"- GGUF ({OUTTYPE}, {gguf_mb:.0f} MB) through llama.cpp: exact match {served_em:.0%}, the same answer as PyTorch for {agree:.0%} of prompts.",
    f"- llama.cpp's converter and our writer: {'the same' if same.same_tensors else 'different'} {same.tensors} tensors "
    f"(largest difference {same.max_abs_difference:g}).",
])))

# %% [markdown]
# ## Exercises
#
# Practise in the lab, [`labs/08_lora_lab.ipynb`](../labs/08_lora_lab.ipynb): write the LoRA forward pass, count
# adapter parameters, merge an update, build SFT labels, and permute q/k rows for llama.cpp. Each exercise has an
# automatic check.
# Its measured exercise (train a dates adapter that reaches an exact-match target on prompts the check writes) reports your number beside the target and the reference solution's.
#
# Further questions to explore here:
# 1. Train with `RANK = 1` and `RANK = 32` (keep `ALPHA = 2 * RANK`). How do the held-out loss and the adapter size
#    change? What does that say about how "low-rank" this task is?
# 2. Inject only into `("q_proj", "v_proj")`, the original paper's choice, or into the MLP (`"gate_proj"`,
#    `"up_proj"`, `"down_proj"`). Compare parameters and held-out loss for the same number of steps.
# 3. Ask the fine-tuned model something unrelated ("Write a haiku about rain"). Did it forget how to chat? This is
#    *catastrophic forgetting*; mixing some general instruction data into the training set is the usual cure.
# 4. Export with `OUTTYPE = "q8_0"` and compare size and exact match through llama.cpp.
