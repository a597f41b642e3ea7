"""Lab 12's checks catch realistic wrong merges (❌ naming the mistake) and accept unusual right ones (✅)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from verdicts import fails_naming

from course_utils import merging
from course_utils.checks import merging as checks


# ----------------------------------------------------------------------------- 1. task vectors
def tv_forgot_base(fine, base):
    return {k: v.clone() for k, v in fine.items()}


def tv_flipped(fine, base):
    return {k: base[k] - fine[k] for k in fine}


def tv_in_place(fine, base):
    for k in fine:
        fine[k] -= base[k]
    return fine


def tv_numpy(fine, base):  # unusual but right: NumPy arrays, an explicit loop
    out = {}
    for name in base:
        out[name] = np.asarray(fine[name]) - np.asarray(base[name])
    return out


@pytest.mark.parametrize(("wrong", "words"), [
    (tv_forgot_base, ("base is missing",)),
    (tv_flipped, ("sign is flipped",)),
    (tv_in_place, ("in place",)),
    (lambda fine, base: {"attn.weight": fine["attn.weight"] - base["attn.weight"]}, ("'norm.weight' is missing",)),
])
def test_task_vector_mistakes(wrong, words):
    assert fails_naming(checks.check_task_vector(wrong), *words)


def test_task_vector_right_answers():
    assert checks.check_task_vector(tv_numpy).passed
    assert checks.check_task_vector(lambda fine, base: {k: torch.sub(fine[k], base[k]) for k in fine}).passed


# ----------------------------------------------------------------------------- 2. task arithmetic
def ta_lambda_on_base(base, vectors, lambdas):
    return {k: sum(lam * (base[k] + v[k]) for lam, v in zip(lambdas, vectors)) for k in base}


def ta_in_place(base, vectors, lambdas):
    for lam, v in zip(lambdas, vectors):
        for k in base:
            base[k] += lam * v[k]
    return base


def ta_normalised(base, vectors, lambdas):
    return {k: base[k] + sum(lam * v[k] for lam, v in zip(lambdas, vectors)) / sum(lambdas) for k in base}


def ta_averaged(base, vectors, lambdas):
    return {k: base[k] + sum(lam * v[k] for lam, v in zip(lambdas, vectors)) / len(vectors) for k in base}


def ta_ignores_lambdas(base, vectors, lambdas):
    return {k: base[k] + sum(v[k] for v in vectors) for k in base}


def ta_first_lambda(base, vectors, lambdas):
    return {k: base[k] + lambdas[0] * sum(v[k] for v in vectors) for k in base}


def ta_copy_then_accumulate(base, vectors, lambdas, scale: float = 1.0):  # right: += on a copy, extra argument
    out = {k: t.clone() for k, t in base.items()}
    for lam, v in zip(lambdas, vectors):
        for k in out:
            out[k] += scale * lam * v[k]
    return out


@pytest.mark.parametrize(("wrong", "words"), [
    (ta_lambda_on_base, ("multiplies the base",)),
    (ta_in_place, ("in place",)),
    (ta_normalised, ("normalised by the sum of the lambdas",)),
    (ta_averaged, ("divided by the number of models",)),
    (ta_ignores_lambdas, ("lambdas are not used",)),
    (ta_first_lambda, ("first lambda",)),
])
def test_task_arithmetic_mistakes(wrong, words):
    assert fails_naming(checks.check_task_arithmetic(wrong), *words)


def test_task_arithmetic_right_answers():
    assert checks.check_task_arithmetic(ta_copy_then_accumulate).passed
    assert checks.check_task_arithmetic(merging.task_arithmetic).passed


# ----------------------------------------------------------------------------- 3. SLERP
def slerp_linear(a, b, t):
    return (1 - t) * a + t * b


def slerp_reversed(a, b, t):
    return merging.slerp(b, a, t)


def slerp_raw_dot(a, b, t):  # forgets to normalise before arccos
    theta = torch.arccos(torch.dot(a.flatten(), b.flatten()).clamp(-1, 1))
    return (torch.sin((1 - t) * theta) * a + torch.sin(t * theta) * b) / torch.sin(theta)


def slerp_no_fallback(a, b, t):
    x, y = a.flatten(), b.flatten()
    theta = torch.arccos(torch.dot(x / x.norm(), y / y.norm()).clamp(-1, 1))
    return ((torch.sin((1 - t) * theta) * x + torch.sin(t * theta) * y) / torch.sin(theta)).reshape(a.shape)


def slerp_per_row(a, b, t):
    if a.dim() == 1:
        return merging.slerp(a, b, t)
    return torch.stack([merging.slerp(x, y, t) for x, y in zip(a, b)])


def slerp_numpy(a, b, t, eps: float = 1e-6):  # right: NumPy, unit vectors first, np.sinc-free
    x, y = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    cos = float(np.clip(x @ y / (np.linalg.norm(x) * np.linalg.norm(y)), -1, 1))
    if 1 - abs(cos) < eps:
        return ((1 - t) * x + t * y).reshape(np.shape(a))
    theta = np.arccos(cos)
    return ((np.sin((1 - t) * theta) * x + np.sin(t * theta) * y) / np.sin(theta)).reshape(np.shape(a))


@pytest.mark.parametrize(("wrong", "words"), [
    (slerp_linear, ("linear interpolation",)),
    (slerp_reversed, ("t is reversed",)),
    (slerp_raw_dot, ("normalised",)),
    (slerp_no_fallback, ("parallel",)),
    (slerp_per_row, ("one vector",)),
])
def test_slerp_mistakes(wrong, words):
    assert fails_naming(checks.check_slerp(wrong), *words)


def test_slerp_right_answers():
    assert checks.check_slerp(slerp_numpy).passed
    assert checks.check_slerp(merging.slerp).passed


# ----------------------------------------------------------------------------- 4. TIES
def _trim(t, density):
    k = max(1, int(density * t.numel()))
    idx = t.abs().topk(k).indices
    return torch.zeros_like(t).index_copy(0, idx, t[idx])


def ties_count_votes(taus, density):
    trimmed = torch.stack([_trim(t, density) for t in taus])
    sign = torch.where(torch.sign(trimmed).sum(0) >= 0, 1.0, -1.0)
    return merging.disjoint_mean(trimmed, sign)


def ties_sum_of_magnitudes(taus, density):
    trimmed = torch.stack([_trim(t, density) for t in taus])
    sign = torch.sign(trimmed.abs().sum(0))
    return merging.disjoint_mean(trimmed, sign)


def ties_plain_mean(taus, density):
    trimmed = torch.stack([_trim(t, density) for t in taus])
    agree = torch.sign(trimmed) == merging.elect_sign(trimmed)
    return torch.where(agree, trimmed, 0).sum(0) / len(taus)


def ties_no_trim(taus, density):
    stacked = torch.stack(taus)
    return merging.disjoint_mean(stacked, merging.elect_sign(stacked))


def ties_trim_in_place(taus, density):
    for t in taus:
        k = max(1, int(density * t.numel()))
        t[t.abs().argsort()[:-k]] = 0  # zeroes the caller's tensors
    stacked = torch.stack(taus)
    return merging.disjoint_mean(stacked, merging.elect_sign(stacked))


def ties_by_value(taus, density):
    def trim(t):
        k = max(1, int(density * t.numel()))
        idx = t.topk(k).indices
        return torch.zeros_like(t).index_copy(0, idx, t[idx])
    trimmed = torch.stack([trim(t) for t in taus])
    return merging.disjoint_mean(trimmed, merging.elect_sign(trimmed))


def ties_numpy_threshold(taus, density):  # right: NumPy, a magnitude threshold instead of topk
    rows = []
    for t in taus:
        t = np.asarray(t, dtype=float)
        k = max(1, int(density * t.size))
        cut = np.sort(np.abs(t))[-k]
        rows.append(np.where(np.abs(t) >= cut, t, 0.0))
    trimmed = np.stack(rows)
    sign = np.where(trimmed.sum(axis=0) >= 0, 1.0, -1.0)
    agree = np.sign(trimmed) == sign
    return np.where(agree, trimmed, 0).sum(axis=0) / np.maximum(agree.sum(axis=0), 1)


@pytest.mark.parametrize(("wrong", "words"), [
    (ties_count_votes, ("counting votes",)),
    (ties_sum_of_magnitudes, ("sum of magnitudes",)),
    (ties_plain_mean, ("number of models",)),
    (ties_no_trim, ("nothing was trimmed",)),
    (ties_trim_in_place, ("in place",)),
    (ties_by_value, ("by magnitude",)),
])
def test_ties_mistakes(wrong, words):
    assert fails_naming(checks.check_ties(wrong), *words)


def test_ties_right_answers():
    assert checks.check_ties(ties_numpy_threshold).passed
    assert checks.check_ties(lambda taus, density: merging.ties({"w": torch.zeros(10)}, [{"w": t} for t in taus], density)["w"]).passed


def test_first_failure_does_not_hand_out_the_solution():
    for verdict in (checks.check_task_vector(tv_forgot_base), checks.check_task_arithmetic(ta_lambda_on_base),
                    checks.check_slerp(slerp_linear), checks.check_ties(ties_count_votes)):
        text = str(verdict)
        assert "lesson 12" in text  # where to look
        assert "fine[k] - base[k]" not in text and "sin((1 - t)" not in text and "for k in" not in text


# ----------------------------------------------------------------------------- 5. the measured merge
def merge_lambda_on_base(base, dates, units):
    return {k: 1.0 * base[k] + (dates[k] - base[k]) + (units[k] - base[k]) + 0.5 * base[k] for k in base}


def merge_in_place(base, dates, units):
    for k in base:
        base[k] += (dates[k] - base[k]) + (units[k] - base[k])
    return base


def merge_not_arithmetic(base, dates, units):
    return {k: torch.maximum(dates[k], units[k]) for k in base}


def merge_wrong_container(base, dates, units):
    return [dates[k] for k in base]


@pytest.mark.parametrize(("wrong", "words"), [
    (merge_lambda_on_base, ("not base + lambda_dates",)),
    (merge_in_place, ("in place",)),
    (merge_not_arithmetic, ("not base + lambda_dates",)),
    (merge_wrong_container, ("return a dict",)),
])
def test_merge_target_structural_mistakes(wrong, words):
    # caught on toy tensors before any model is needed
    assert fails_naming(checks.check_merge_target(wrong, model=None, tokenizer=None), *words)


def test_merge_target_not_done():
    def todo(base, dates, units):
        raise NotImplementedError
    assert checks.check_merge_target(todo, model=None, tokenizer=None).status == "not done"


def test_merge_target_is_measured_on_held_out_data(hf_model, capsys):
    """The real thing: lesson 12's specialists (the adapters shipped in data/), scored by the check."""
    model, tokenizer = hf_model

    def good(base, dates, units, lambdas=checks.REFERENCE_LAMBDAS):  # right, with an extra argument
        return merging.task_arithmetic(base, [merging.task_vector(dates, base), merging.task_vector(units, base)], lambdas)

    def dates_only(base, dates, units):  # a real merge that forgets one skill
        return good(base, dates, units, lambdas=(1.0, 0.0))

    assert checks.check_merge_target(good, model, tokenizer, n_items=16).passed
    assert "keeps" in capsys.readouterr().out
    verdict = checks.check_merge_target(dates_only, model, tokenizer, n_items=16)
    assert fails_naming(verdict, "lambdas ≈ 1.00, 0.00", "target", "raise the lambda")
