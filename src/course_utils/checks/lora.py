"""Checks for lab 08 (LoRA): the forward pass, parameter counting, merging, SFT labels, q/k permutation,
and an adapter the learner trains, measured on date prompts the check writes (:func:`heldout_dates`).

Each ``check_*`` runs the learner's function on fixed inputs and compares with a reference computed
here independently (plain tensor formulas, the real model, the bundled GGUF file). Common mistakes
get a targeted hint.

>>> def lora_forward(x, W, A, B, alpha, r):
...     raise NotImplementedError
>>> check_lora_forward(lora_forward).status
'not done'
>>> check_lora_forward(lambda x, W, A, B, alpha, r: x @ W.T + (alpha / r) * (x @ A.T) @ B.T).status
'passed'
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from . import Mistake, Verdict, call_unchanged, close_enough, run_check

IGNORE = -100


def _tensor(value: Any) -> Any:
    import torch

    return value.detach().float() if isinstance(value, torch.Tensor) else torch.as_tensor(value).float()


def _toy(seed: int = 0) -> tuple[Any, ...]:
    """x (3, 6), W (4, 6), A (2, 6), B (4, 2): small enough to print, non-zero everywhere."""
    import torch

    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(*shape, generator=g) for shape in ((3, 6), (4, 6), (2, 6), (4, 2)))


# ----------------------------------------------------------------------------- 1. the forward pass
def check_lora_forward(lora_forward: Callable[..., Any]) -> Verdict:
    """``lora_forward(x, W, A, B, alpha, r)`` = ``x W^T + (alpha / r) x A^T B^T``."""

    def test(fn: Callable[..., Any]) -> bool | str:
        x, W, A, B = _toy()
        for alpha, r in ((8.0, 2), (6, 4), (16, 8)):  # 6 // 4 = 1 but 6 / 4 = 1.5: integer division shows
            want = x @ W.T + (alpha / r) * (x @ A.T) @ B.T
            got = _tensor(call_unchanged(fn, x, W, A, B, alpha, r))
            if tuple(got.shape) != tuple(want.shape):
                return f"the output should have shape {tuple(want.shape)} (one row per input, out features), got {tuple(got.shape)}"
            if close_enough(got, want, 1e-5):
                continue
            update = (x @ A.T) @ B.T
            for scale, message in ((alpha // r, f"alpha // r is integer division ({alpha} // {r} = {alpha // r}): use alpha / r"),
                                   (1.0, "the update is not scaled: multiply it by alpha / r"),
                                   (r / alpha, "the scaling is upside down: it is alpha / r, not r / alpha"),
                                   (alpha, "the update is scaled by alpha alone: divide by the rank r too"),
                                   (8.0 / 2, f"the scale is fixed at 4 (alpha=8, r=2); here alpha={alpha}, r={r}: use the arguments")):
                if close_enough(got, x @ W.T + scale * update, 1e-5):
                    return f"with alpha={alpha}, r={r}: {message}"
            if close_enough(got, (alpha / r) * update, 1e-5):
                return "only the update is returned: add the frozen layer's output x @ W.T"
            if close_enough(got, x @ W.T, 1e-5):
                return "the update is missing: add (alpha / r) * (x @ A.T) @ B.T"
            return f"with alpha={alpha}, r={r} the result differs from x Wᵀ + (alpha / r) x Aᵀ Bᵀ"
        zero = _tensor(call_unchanged(fn, x, W, A, B * 0, 8.0, 2))
        return True if close_enough(zero, x @ W.T, 1e-5) else "with B = 0 the output must equal x @ W.T"

    return run_check("LoRA forward", test, lora_forward, hint="the frozen output plus the scaled low-rank update; A is (r, in), B is (out, r)",
                     more="x @ W.T + (alpha / r) * (x @ A.T) @ B.T")


# ----------------------------------------------------------------------------- 2. parameter count
def check_lora_param_count(count_lora_parameters: Callable[..., Any], model: Any) -> Verdict:
    """``count_lora_parameters(model, targets, r)``: adapter weights added to the layers named ``targets``."""
    cases: list[tuple[tuple[str, ...], int]] = [
        (("q_proj", "k_proj", "v_proj", "o_proj"), 8),
        (("q_proj", "v_proj"), 4),
        (("gate_proj", "up_proj", "down_proj"), 16),
        (("v_proj",), 1),
        (("q_proj", "not_a_layer"), 12),
    ]

    def reference(targets: Sequence[str], r: int) -> int:
        return sum(
            r * (m.in_features + m.out_features)
            for name, m in model.named_modules()
            if name.rpartition(".")[2] in targets and hasattr(m, "in_features")
        )

    def test(fn: Callable[..., Any]) -> bool | str:
        for targets, r in cases:
            got, want = fn(model, targets, r), reference(targets, r)
            if got is None:
                return "your function returned None: return the count"
            if isinstance(got, float) and not float(got).is_integer():
                return f"a count of weights is a whole number, got {got}"
            if int(got) == want:
                continue
            full = sum(m.in_features * m.out_features for n, m in model.named_modules() if n.rpartition(".")[2] in targets and hasattr(m, "in_features"))
            if int(got) == full:
                return f"that is the size of the frozen weights ({full:,}); LoRA adds r * (in + out) per layer, not in * out"
            if int(got) * model.config.num_hidden_layers == want:
                return f"you counted one decoder layer only; there are {model.config.num_hidden_layers}"
            if int(got) == want // r:
                return "the rank r is missing: A has r rows, B has r columns"
            only_in = sum(r * m.in_features for n, m in model.named_modules() if n.rpartition(".")[2] in targets and hasattr(m, "in_features"))
            if int(got) in (only_in, want - only_in):
                return f"you counted only {'A (r x in)' if int(got) == only_in else 'B (out x r)'}; an adapter has both A and B: r * (in + out)"
            if int(got) == reference(targets[:1], r):
                return f"you counted the first target ({targets[0]}) only; count every layer whose name ends in one of {targets}"
            if int(got) == reference(targets, 8):
                return f"you used r=8 whatever r is (here r={r}): use the argument"
            return f"for targets={targets} and r={r} expected {want:,}, got {int(got):,}"
        return True

    return run_check("LoRA parameter count", test, count_lora_parameters,
                     hint="walk model.named_modules(); each targeted linear layer gets an A (r x in) and a B (out x r)",
                     more="for name, m in model.named_modules(): if name.rpartition('.')[2] in targets: total += r * (m.in_features + m.out_features)")


# ----------------------------------------------------------------------------- 3. merging
def check_merge(merge_weights: Callable[..., Any], lora_forward: Callable[..., Any] | None = None) -> Verdict:
    """``merge_weights(W, A, B, alpha, r)``: the weight ``W + (alpha / r) B A`` of the merged layer."""

    def test(fn: Callable[..., Any]) -> bool | str:
        x, W, A, B = _toy(1)
        for alpha, r in ((4.0, 2), (6, 4)):
            W_before = W.clone()
            got = _tensor(fn(W, A.clone(), B.clone(), alpha, r))
            want = W_before + (alpha / r) * B @ A
            if tuple(got.shape) != tuple(W.shape):
                shape = tuple(got.shape)
                if shape == (A.shape[0], A.shape[0]) or shape == (A.shape[1], A.shape[1]):
                    return f"the update has shape {shape}: use B @ A (out x r times r x in), not A @ B or A.T @ B.T"
                return f"the merged weight must have W's shape {tuple(W.shape)}, got {shape}"
            if not close_enough(W, W_before, 0):
                return "W was changed in place: return a new tensor (W + ...) and leave the frozen weight alone"
            if close_enough(got, want, 1e-5):
                continue
            if close_enough(got, W_before + (alpha // r) * B @ A, 1e-5):
                return f"alpha // r is integer division ({alpha} // {r} = {alpha // r}): use alpha / r"
            if close_enough(got, W_before + B @ A, 1e-5):
                return f"with alpha={alpha}, r={r}: the update is not scaled: multiply B @ A by alpha / r"
            if close_enough(got, W_before + (r / alpha) * B @ A, 1e-5):
                return "the scaling is upside down: it is alpha / r, not r / alpha"
            if close_enough(got, (alpha / r) * B @ A, 1e-5):
                return "only the update is returned: add it to W"
            return f"with alpha={alpha}, r={r} the merged weight differs from W + (alpha / r) B A"
        alpha, r, W_before = 4.0, 2, W.clone()
        got = _tensor(fn(W.clone(), A.clone(), B.clone(), alpha, r))
        if lora_forward is not None:  # the whole point: one matmul with W' = the LoRA layer
            try:
                same = close_enough(x @ got.T, _tensor(lora_forward(x, W_before, A, B, alpha, r)), 1e-4)
            except NotImplementedError:
                same = True
            if not same:
                return "x @ merged.T should equal your lora_forward(x, ...): check exercise 1 too"
        return True

    return run_check("merge", test, merge_weights, hint="the merged weight is W plus the scaled update, shape (out, in) like W",
                     more="W + (alpha / r) * (B @ A)")


# ----------------------------------------------------------------------------- 4. SFT labels
def check_sft_labels(sft_example: Callable[..., Any], tokenizer: Any) -> Verdict:
    """``sft_example(prompt_ids, answer_ids)`` -> ``(input_ids, labels)`` with -100 on the prompt."""
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "Give the date in ISO format: 5 May 2020"}],
                                           tokenize=False, add_generation_prompt=True)
    prompt_ids = tokenizer.encode(prompt, add_special_tokens=False)
    answer_ids = tokenizer.encode("2020-05-05" + tokenizer.eos_token, add_special_tokens=False)

    def test(fn: Callable[..., Any]) -> bool | str:
        out = call_unchanged(fn, list(prompt_ids), list(answer_ids))
        if out is None:
            return "your function returned None: return (input_ids, labels)"
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            return "return a pair (input_ids, labels)"
        ids, labels = (list(map(int, v.tolist() if hasattr(v, "tolist") else v)) for v in out)
        want_ids = prompt_ids + answer_ids
        want_labels = [IGNORE] * len(prompt_ids) + answer_ids
        if ids != want_ids:
            if ids == answer_ids + prompt_ids:
                return "input_ids are in the wrong order: the prompt comes first, then the answer"
            return f"input_ids should be prompt_ids + answer_ids ({len(want_ids)} ids), got {len(ids)} ids"
        if len(labels) != len(ids):
            return f"labels must have one entry per input id ({len(ids)}), got {len(labels)}"
        if labels == ids:
            return "the prompt is not masked: put -100 at every prompt position so the loss ignores it"
        if labels == [IGNORE] * len(answer_ids) + prompt_ids:
            return "the mask is on the answer; it belongs on the prompt"
        if labels[: len(prompt_ids)] == [IGNORE] * len(prompt_ids) and labels[len(prompt_ids):] == answer_ids[:-1] + [IGNORE]:
            return "keep the end-of-turn token in the labels: the model must learn to stop"
        if labels != want_labels:
            return "labels should be -100 for each prompt token, then the answer ids unchanged (do not shift them: the model shifts)"
        return True

    def both(fn: Callable[..., Any]) -> bool | str:
        outcome = test(fn)
        if outcome is not True:
            return outcome
        short = call_unchanged(fn, [5, 6, 7], [8, 9])  # another length: a mask sized for the first prompt shows
        if [list(map(int, v)) for v in short] != [[5, 6, 7, 8, 9], [IGNORE, IGNORE, IGNORE, 8, 9]]:
            return f"for prompt_ids=[5, 6, 7], answer_ids=[8, 9] expected ([5, 6, 7, 8, 9], [-100, -100, -100, 8, 9]), got {short}"
        return True

    return run_check("SFT labels", both, sft_example, hint="the labels copy input_ids, with every prompt position replaced by -100",
                     more="input_ids = prompt_ids + answer_ids; labels = [-100] * len(prompt_ids) + answer_ids")


# ----------------------------------------------------------------------------- 5. llama.cpp's q/k layout
def check_qk_permutation(permute: Callable[[Any, int], Any], model: Any, gguf_path: Any = None) -> Verdict:
    """``permute(w, n_head)`` puts q/k rows in llama.cpp's order; compared with the bundled GGUF file."""
    import numpy as np

    def as_array(v: Any) -> Any:
        return v.detach().numpy() if hasattr(v, "detach") else np.asarray(v)

    def test(fn: Callable[[Any, int], Any]) -> bool | str:
        from ..quant import gguf_dequantize

        small = np.arange(8).reshape(8, 1)
        got_small = as_array(_returned_array(call_unchanged(fn, small, 1)))
        if got_small.shape != small.shape:
            return f"the shape must not change: {small.shape} in, {got_small.shape} out"
        if got_small[:, 0].tolist() == [0, 2, 4, 6, 1, 3, 5, 7]:
            return "that is the inverse permutation: rows 0..d/2-1 and d/2..d-1 must be interleaved (0, 4, 1, 5, ...)"
        if got_small[:, 0].tolist() != [0, 4, 1, 5, 2, 6, 3, 7]:
            return f"for one head of 8 rows expected rows [0, 4, 1, 5, 2, 6, 3, 7], got {got_small[:, 0].tolist()}"
        two = as_array(_returned_array(call_unchanged(fn, np.arange(8).reshape(8, 1), 2)))[:, 0].tolist()
        if two != [0, 2, 1, 3, 4, 6, 5, 7]:
            if two == [0, 4, 1, 5, 2, 6, 3, 7]:
                return "with n_head=2 you permuted the whole matrix as one head: permute within each head (d = rows // n_head)"
            return f"for 2 heads of 4 rows expected rows [0, 2, 1, 3, 4, 6, 5, 7], got {two}"
        attn = model.model.layers[0].self_attn
        cfg = model.config
        for hf, gguf_name, heads in ((attn.q_proj, "blk.0.attn_q.weight", cfg.num_attention_heads),
                                      (attn.k_proj, "blk.0.attn_k.weight", cfg.num_key_value_heads)):
            got = as_array(_returned_array(call_unchanged(fn, hf.weight.detach().numpy().copy(), heads)))
            want = gguf_dequantize(gguf_name, gguf_path)
            if got.shape != want.shape or not np.array_equal(got, want):
                return f"{gguf_name} in the GGUF file differs from your permutation of the model's weight with n_head={heads}; permute within each head, not across the whole matrix"
        return True

    return run_check("q/k permutation", test, permute,
                     hint="inside each head of d rows, row d/2 + i goes right after row i",
                     more="w.reshape(n_head, 2, d // 2, in).swapaxes(1, 2).reshape(w.shape), with d = rows per head")


def _returned_array(value: Any) -> Any:
    if value is None:
        raise Mistake("your function returned None: did you forget `return`?")
    return value


# ----------------------------------------------------------------------------- 6. build and measure: an adapter for dates
DATES_TARGET = 0.6  # exact match the learner's adapter must reach on the held-out dates
N_HELDOUT_DATES = 40
REFERENCE_STEPS = 8  # the lab solution's recipe: lesson 08's, 8 steps of 8 examples
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December")
_SENTENCES = ("The parcel arrived on {d}.", "Our office closes on {d} for the holiday.", "The concert is on {d}.",
              "They moved into the new flat on {d}.", "The contract ends on {d}.", "She passed her driving test on {d}.")
_INSTRUCTIONS = ("Give the date in ISO 8601 format: {s}", "What is the date in YYYY-MM-DD form? {s}", "{s} Write that date as YYYY-MM-DD.")


def heldout_dates(n: int = N_HELDOUT_DATES, seed: int = 80) -> list[Any]:
    """Date prompts made here for the check: sentences not in ``data/lora_dates.jsonl`` and dates in neither split.

    >>> items = heldout_dates(3)
    >>> [len(ex.response) for ex in items], all(ex.response[:4] in ex.prompt for ex in items)
    ([10, 10, 10], True)
    """
    import datetime as dt
    import random

    from .. import lora

    seen = {ex.response for split in ("train", "test") for ex in lora.load_examples(split)}
    rng, start, out = random.Random(seed), dt.date(1900, 1, 1), []
    while len(out) < n:
        day = start + dt.timedelta(days=rng.randrange(200 * 365))
        if day.isoformat() in seen:
            continue
        seen.add(day.isoformat())
        month = _MONTHS[day.month - 1]
        written = rng.choice([f"{day.day} {month} {day.year}", f"{month} {day.day}, {day.year}", f"{month[:3]} {day.day}, {day.year}"])
        sentence = rng.choice(_SENTENCES).format(d=written)
        out.append(lora.Example(rng.choice(_INSTRUCTIONS).format(s=sentence), day.isoformat(), len(out)))
    return out


def _fingerprint(model: Any) -> tuple[float, int]:
    """A cheap summary of a model's weights and structure: changed by training or by injecting adapters in place."""
    import torch

    with torch.no_grad():
        return sum(float(p.detach().double().sum()) for p in model.parameters()), sum(1 for _ in model.modules())


def _reference_em(base: Any, tokenizer: Any, items: Sequence[Any]) -> float:
    """Exact match of the lab solution's recipe (trained once, cached in ``<COURSE_CACHE>/lab08/``)."""
    from .. import lora, specialists
    from ..config import settings

    recipe = specialists.Recipe(steps=REFERENCE_STEPS)
    base_id = specialists.base_id_of(base)
    folder = settings().cache_dir / "lab08" / f"dates-{specialists.cache_key('dates', recipe, base_id)}"
    model, _ = specialists.adapted_copy(base, tokenizer, lora.load_examples("train"), recipe, folder, base_id=base_id)
    return specialists.score(model.eval(), tokenizer, items, "dates").em


def check_dates_adapter(train_adapter: Callable[..., Any], model: Any, tokenizer: Any, target: float = DATES_TARGET) -> Verdict:
    """``train_adapter(model, tokenizer, examples)`` -> a fine-tuned copy of ``model`` (``model`` itself unchanged)
    whose greedy exact match on :func:`heldout_dates` is at least ``target``."""

    def test(fn: Callable[..., Any]) -> bool | str:
        from .. import lora, specialists

        items = heldout_dates()
        before = _fingerprint(model)
        tuned = _returned_model(fn(model, tokenizer, lora.load_examples("train")))
        if tuned is model or _fingerprint(model) != before:
            return ("the base model was changed in place (adapters injected or weights trained in it): train a copy "
                    "(copy.deepcopy(model)) and return that, so the base stays what it was")
        base_em = specialists.score(model, tokenizer, items, "dates").em
        yours = specialists.score(tuned.eval(), tokenizer, items, "dates").em
        reference = _reference_em(model, tokenizer, items)
        report = (f"your adapter answers {yours:.0%} of the {len(items)} held-out date prompts exactly (the base model: {base_em:.0%}); "
                  f"target {target:.0%}; the reference recipe ({REFERENCE_STEPS} steps of 8, r=8, alpha=16, lr=3e-3) gets {reference:.0%}")
        print(report)
        if yours >= target:
            return True
        if abs(yours - base_em) < 0.05:
            return f"{report}: that is about the base model's score, so the training changed little; check that it ran and that the learning rate is not tiny"
        return f"{report}: train longer or with a larger learning rate, and check that the labels mask the prompt"

    return run_check("an adapter that learns dates", test, train_adapter,
                     hint="lesson 08, section 3: inject LoRA into a copy, then a short training run on the examples",
                     more="tuned = copy.deepcopy(model); lora.inject_lora(tuned, r=8, alpha=16); lora.train(tuned, lora.batches(tokenizer, examples, 8), steps=8, lr=3e-3); return tuned")


def _returned_model(value: Any) -> Any:
    if value is None:
        raise NotImplementedError  # nothing returned yet: not done
    if isinstance(value, tuple | list) or not hasattr(value, "get_decoder"):
        from . import Mistake

        raise Mistake(f"return the fine-tuned model itself, got {type(value).__name__}")
    return value
