"""Lab 08's checks catch realistic wrong answers (❌ naming the mistake), accept unusual right ones (✅),
say "not done" for the TODO stub, and keep the solution-level hint (``more=``) out of the first ❌."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from verdicts import fails_naming, todo

from course_utils import lora, specialists
from course_utils.checks import lora as checks


@pytest.fixture(scope="module")
def model_and_tokenizer(hf_model):
    return hf_model


# ----------------------------------------------------------------------------- 1. forward
def fwd_ok(x, W, A, B, alpha, r):
    return x @ W.T + (alpha / r) * (x @ A.T) @ B.T


def fwd_in_place(x, W, A, B, alpha, r):
    W += (alpha / r) * B @ A  # "merges" into the caller's frozen weight
    return x @ W.T


@pytest.mark.parametrize(("wrong", "words"), [
    (lambda x, W, A, B, alpha, r: x @ W.T + (x @ A.T) @ B.T, ("not scaled",)),
    (lambda x, W, A, B, alpha, r: x @ W.T + (r / alpha) * (x @ A.T) @ B.T, ("upside down",)),
    (lambda x, W, A, B, alpha, r: x @ W.T + (alpha // r) * (x @ A.T) @ B.T, ("integer division", "6 // 4")),
    (lambda x, W, A, B, alpha, r: x @ W.T + alpha * (x @ A.T) @ B.T, ("alpha alone",)),
    (lambda x, W, A, B, alpha, r: x @ W.T + 4 * (x @ A.T) @ B.T, ("fixed at 4",)),
    (lambda x, W, A, B, alpha, r: (alpha / r) * (x @ A.T) @ B.T, ("only the update",)),
    (fwd_in_place, ("in place",)),
])
def test_forward_mistakes(wrong, words):
    assert fails_naming(checks.check_lora_forward(wrong), *words)


def test_forward_right_answers_and_stub():
    def by_numpy(x, W, A, B, alpha, r, dropout=0.0):  # numpy, an extra argument with a default
        x, W, A, B = (np.asarray(t, dtype=np.float64) for t in (x, W, A, B))
        return x @ W.T + (alpha / r) * ((x @ A.T) @ B.T)

    def by_linear(x, W, A, B, alpha, r):
        f = torch.nn.functional.linear
        return f(x, W) + f(f(x, A), B) * alpha / r

    assert checks.check_lora_forward(fwd_ok).passed
    assert checks.check_lora_forward(by_numpy).passed
    assert checks.check_lora_forward(by_linear).passed
    assert checks.check_lora_forward(todo).status == "not done"


# ----------------------------------------------------------------------------- 2. parameter count
def count_ok(model, targets, r):
    return sum(r * (m.in_features + m.out_features) for n, m in model.named_modules()
               if n.rpartition(".")[2] in targets and isinstance(m, torch.nn.Linear))


def count_frozen(model, targets, r):
    return sum(m.in_features * m.out_features for n, m in model.named_modules() if n.rpartition(".")[2] in targets and hasattr(m, "in_features"))


def count_a_only(model, targets, r):
    return sum(r * m.in_features for n, m in model.named_modules() if n.rpartition(".")[2] in targets and hasattr(m, "in_features"))


def count_one_layer(model, targets, r):
    return count_ok(model.model.layers[0], targets, r)


@pytest.mark.parametrize(("wrong", "words"), [
    (count_frozen, ("frozen weights",)),
    (count_a_only, ("only A",)),
    (lambda model, targets, r: count_ok(model, targets, 1), ("rank r is missing",)),
    (lambda model, targets, r: count_ok(model, targets[:1], r), ("first target",)),
    (lambda model, targets, r: count_ok(model, targets, 8), ("r=8 whatever r is",)),
    (count_one_layer, ("one decoder layer",)),
])
def test_param_count_mistakes(wrong, words, model_and_tokenizer):
    assert fails_naming(checks.check_lora_param_count(wrong, model_and_tokenizer[0]), *words)


def test_param_count_right_answers_and_stub(model_and_tokenizer):
    def by_weights(model, targets, r):  # from the weight shapes instead of in/out_features
        return sum(r * sum(p.shape) for n, p in model.named_parameters() if n.endswith(".weight") and n.split(".")[-2] in targets)

    model = model_and_tokenizer[0]
    assert checks.check_lora_param_count(count_ok, model).passed
    assert checks.check_lora_param_count(by_weights, model).passed
    assert checks.check_lora_param_count(todo, model).status == "not done"


# ----------------------------------------------------------------------------- 3. merge
def merge_in_place(W, A, B, alpha, r):
    W += (alpha / r) * B @ A
    return W


@pytest.mark.parametrize(("wrong", "words"), [
    (lambda W, A, B, alpha, r: W + B @ A, ("not scaled",)),
    (lambda W, A, B, alpha, r: W + (alpha // r) * B @ A, ("integer division",)),
    (lambda W, A, B, alpha, r: W + (r / alpha) * B @ A, ("upside down",)),
    (lambda W, A, B, alpha, r: (alpha / r) * B @ A, ("only the update",)),
    (lambda W, A, B, alpha, r: (alpha / r) * A.T @ B.T, ("W's shape",)),
    (merge_in_place, ("in place",)),
])
def test_merge_mistakes(wrong, words):
    assert fails_naming(checks.check_merge(wrong, fwd_ok), *words)


def test_merge_right_answers_and_stub():
    def by_addmm(W, A, B, alpha, r):
        return torch.addmm(W, B, A, alpha=alpha / r)

    assert checks.check_merge(lambda W, A, B, alpha, r: W + (alpha / r) * (B @ A), fwd_ok).passed
    assert checks.check_merge(by_addmm, fwd_ok).passed
    assert checks.check_merge(todo).status == "not done"


# ----------------------------------------------------------------------------- 4. SFT labels
def sft_ok(prompt_ids, answer_ids):
    return prompt_ids + answer_ids, [-100] * len(prompt_ids) + answer_ids


def sft_in_place(prompt_ids, answer_ids):
    prompt_ids.extend(answer_ids)
    return prompt_ids, [-100] * (len(prompt_ids) - len(answer_ids)) + answer_ids


FIXED_MASK = []


def sft_fixed_length(prompt_ids, answer_ids):  # a mask sized once, for the first prompt it saw
    if not FIXED_MASK:
        FIXED_MASK.append(len(prompt_ids))
    return prompt_ids + answer_ids, ([-100] * FIXED_MASK[0] + answer_ids)[: len(prompt_ids) + len(answer_ids)]


@pytest.mark.parametrize(("wrong", "words"), [
    (lambda p, a: (p + a, p + a), ("not masked",)),
    (lambda p, a: (p + a, [-100] * len(a) + p), ("mask is on the answer",)),
    (lambda p, a: (p + a, [-100] * len(p) + a[:-1] + [-100]), ("end-of-turn",)),
    (lambda p, a: (a + p, [-100] * len(p) + a), ("wrong order",)),
    (lambda p, a: (p + a, [-100] * len(p) + a[1:] + [-100]), ("do not shift",)),
    (sft_in_place, ("in place",)),
    (sft_fixed_length, ("prompt_ids=[5, 6, 7]",)),
])
def test_sft_label_mistakes(wrong, words, model_and_tokenizer):
    FIXED_MASK.clear()
    assert fails_naming(checks.check_sft_labels(wrong, model_and_tokenizer[1]), *words)


def test_sft_label_right_answers_and_stub(model_and_tokenizer):
    def by_tensors(prompt_ids, answer_ids, ignore=-100):
        ids = torch.tensor(prompt_ids + answer_ids)
        labels = ids.clone()
        labels[: len(prompt_ids)] = ignore
        return ids, labels

    tokenizer = model_and_tokenizer[1]
    assert checks.check_sft_labels(sft_ok, tokenizer).passed
    assert checks.check_sft_labels(by_tensors, tokenizer).passed
    assert checks.check_sft_labels(todo, tokenizer).status == "not done"


# ----------------------------------------------------------------------------- 5. q/k permutation
def perm_ok(w, n_head):
    d = w.shape[0] // n_head
    return w.reshape(n_head, 2, d // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def perm_whole(w, n_head):
    return perm_ok(w, 1)


def perm_inverse(w, n_head):
    d = w.shape[0] // n_head
    return w.reshape(n_head, d // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def perm_in_place(w, n_head):
    w[:] = perm_ok(w.copy(), n_head)
    return w


@pytest.mark.parametrize(("wrong", "words"), [
    (perm_whole, ("within each head",)),
    (perm_inverse, ("inverse permutation",)),
    (lambda w, n_head: w, ("expected rows",)),
    (perm_in_place, ("in place",)),
])
def test_permutation_mistakes(wrong, words, model_and_tokenizer):
    assert fails_naming(checks.check_qk_permutation(wrong, model_and_tokenizer[0]), *words)


def test_permutation_right_answers_and_stub(model_and_tokenizer):
    def by_index(w, n_head):  # an index array instead of reshapes
        d = w.shape[0] // n_head
        order = [h * d + j // 2 + (d // 2) * (j % 2) for h in range(n_head) for j in range(d)]
        return np.asarray(w)[order]

    model = model_and_tokenizer[0]
    assert checks.check_qk_permutation(perm_ok, model).passed
    assert checks.check_qk_permutation(by_index, model).passed
    assert checks.check_qk_permutation(todo, model).status == "not done"


# ----------------------------------------------------------------------------- 6. an adapter for dates (build and measure)
def train_copy(steps, lr, r=8, alpha=16):
    def train_adapter(model, tokenizer, examples):
        tuned = copy.deepcopy(model)
        lora.inject_lora(tuned, r=r, alpha=alpha)
        lora.train(tuned, lora.batches(tokenizer, examples, 8, seed=0), steps=steps, lr=lr)
        return tuned
    return train_adapter


def train_in_place(model, tokenizer, examples):
    lora.inject_lora(model, r=8, alpha=16)  # no copy: the caller's model now has adapters
    return model


@pytest.fixture
def fresh_model(model_and_tokenizer):
    """A copy of the shared model, so a wrong answer that changes it in place spoils nothing else."""
    return copy.deepcopy(model_and_tokenizer[0]), model_and_tokenizer[1]


def test_dates_adapter_in_place_fails(fresh_model):
    assert fails_naming(checks.check_dates_adapter(train_in_place, *fresh_model), "changed in place", "copy")


@pytest.mark.parametrize(("wrong", "words"), [
    (lambda model, tokenizer, examples: copy.deepcopy(model), ("target 60%", "about the base model's score")),  # lazy: no training
    (train_copy(steps=1, lr=1e-5), ("target 60%", "the reference recipe")),  # a token run at a tiny learning rate
    (lambda model, tokenizer, examples: (copy.deepcopy(model), None), ("return the fine-tuned model itself",)),
])
def test_dates_adapter_mistakes(wrong, words, model_and_tokenizer):
    assert fails_naming(checks.check_dates_adapter(wrong, *model_and_tokenizer), *words)


def test_dates_adapter_right_answer_reports_the_numbers(model_and_tokenizer, capsys):
    def by_recipe(model, tokenizer, examples, steps=8):  # lesson 12's helper, an extra argument
        tuned = copy.deepcopy(model)
        specialists.train_on(tuned, tokenizer, examples, specialists.Recipe(steps=steps))
        lora.merge_lora(tuned)  # merged into plain weights: the check must not care
        return tuned

    assert checks.check_dates_adapter(by_recipe, *model_and_tokenizer).passed
    printed = capsys.readouterr().out
    assert "held-out date prompts" in printed and "target 60%" in printed and "the base model" in printed
    assert checks.check_dates_adapter(todo, *model_and_tokenizer).status == "not done"


def test_heldout_dates_are_unseen():
    seen = {ex.response for split in ("train", "test") for ex in lora.load_examples(split)}
    prompts = {ex.prompt for split in ("train", "test") for ex in lora.load_examples(split)}
    items = checks.heldout_dates()
    assert len(items) == checks.N_HELDOUT_DATES and not {ex.response for ex in items} & seen
    assert not {ex.prompt for ex in items} & prompts and len({ex.response for ex in items}) == len(items)
