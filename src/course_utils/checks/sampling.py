"""Checks for lab 03 (sampling & prompting): each compares the learner's function with
``course_utils.sampling`` (or ``course_utils.prompting``) on fixed inputs, and on real logits when given.

Common mistakes get a targeted hint (multiplying by the temperature, keeping the k *smallest* logits,
dropping the token that crosses p, multiplying positive logits by the penalty, ...).

>>> def todo(logits, k):
...     raise NotImplementedError
>>> check_top_k(todo).status
'not done'
>>> from course_utils.sampling import top_k_filter
>>> check_top_k(top_k_filter).status
'passed'
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from . import Verdict, close_enough, run_check

SMALL = [2.0, 1.0, 0.0, -1.0, 0.5]  # no ties: every filter has one right answer
NUCLEUS_PROBS = [0.5, 0.3, 0.15, 0.05]


def _tensor(value: Any) -> Any:
    """The learner's answer as a 1-D float tensor (they may return a list or a NumPy array)."""
    import torch

    if isinstance(value, torch.Tensor):
        return value.detach().float()
    return torch.as_tensor(value, dtype=torch.float32)


def _cases(real: Any | None) -> list[Any]:
    """Small hand-made logits, plus the real next-token logits from the lab when given."""
    import torch

    cases = [torch.tensor(SMALL), torch.tensor([3.0, -2.0, 0.25, 1.5, -0.5, 2.5])]
    if real is not None:
        cases.append(_tensor(real))
    return cases


def _show(x: Any) -> str:
    return "[" + ", ".join("-inf" if v == float("-inf") else f"{v:.3g}" for v in x.tolist()[:8]) + (", ...]" if len(x) > 8 else "]")


def _same_filter(got: Any, want: Any) -> bool:
    """Same tokens removed (-inf) and the kept logits unchanged."""
    import torch

    if got.shape != want.shape:
        return False
    kept_got, kept_want = torch.isfinite(got), torch.isfinite(want)
    return bool(torch.equal(kept_got, kept_want)) and close_enough(got[kept_got], want[kept_want], 1e-5)


# ----------------------------------------------------------------------------- 1. temperature
def check_temperature_softmax(fn: Callable[[Any, float], Any], real_logits: Any | None = None) -> Verdict:
    """``fn(logits, temperature)``: the probabilities softmax(logits / T), stable for large logits."""
    import torch

    from ..sampling import apply_temperature

    def test(fn: Callable[[Any, float], Any]) -> bool | str:
        for logits in [*_cases(real_logits), torch.tensor([1000.0, 999.0, 998.0])]:
            for t in (0.5, 1.0, 2.0):
                original = logits.clone()
                out = fn(logits, t)
                if out is None:
                    return "your function returned None: did you forget `return`?"
                got, want = _tensor(out), torch.softmax(apply_temperature(logits, t), dim=-1)
                if not torch.equal(logits, original):
                    return "your function changed the logits it was given: compute a new tensor instead"
                if got.shape != want.shape:
                    return f"expected {tuple(want.shape)} probabilities, got shape {tuple(got.shape)}"
                if not torch.isfinite(got).all():
                    return f"logits {_show(logits)} gave inf/nan: exp() overflows; subtract the largest logit first"
                if close_enough(got, want, 1e-5):
                    continue
                if close_enough(got, torch.softmax(logits * t, dim=-1), 1e-5):
                    return "you multiplied the logits by T: divide them by T (a low temperature must sharpen)"
                if abs(float(got.sum()) - 1.0) > 1e-4:
                    return f"the probabilities add up to {float(got.sum()):.4f}, not 1: divide by the sum of exp()"
                return f"for logits {_show(logits)} and T={t} expected {_show(want)}, got {_show(got)}"
        return True

    return run_check("temperature softmax", test, fn, hint="p = exp(z / T - max(z / T)), then p / p.sum()")


# ----------------------------------------------------------------------------- 2. top-k
def check_top_k(fn: Callable[[Any, int], Any], real_logits: Any | None = None) -> Verdict:
    """``fn(logits, k)``: the k highest logits kept, the others -inf; k <= 0 or k >= size keeps all."""
    from ..sampling import top_k_filter

    def test(fn: Callable[[Any, int], Any]) -> bool | str:
        for logits in _cases(real_logits):
            for k in (1, 3, 0, len(logits), 50):
                if k == 50 and len(logits) <= 50:
                    continue
                off = k <= 0 or k >= len(logits)
                try:
                    out = fn(logits.clone(), k)
                except NotImplementedError:
                    raise
                except Exception as err:
                    if not off:
                        raise
                    return f"top_k(logits, k={k}) raised {type(err).__name__}: k <= 0 or k >= the vocabulary size means top-k is off, return the logits unchanged"
                if out is None:
                    return "your function returned None: did you forget `return`?"
                got, want = _tensor(out), top_k_filter(logits, k)
                if _same_filter(got, want):
                    continue
                if off:
                    return f"k={k} must keep every logit unchanged (top-k is off), got {_show(got)}"
                if bool((got == 0).any()) and not bool((got == float("-inf")).any()):
                    return "removed tokens must get -inf (probability 0 after softmax), not 0"
                if _same_filter(got, top_k_filter(-logits, k).neg()):
                    return "you kept the k *smallest* logits: keep the largest"
                return f"top_k({_show(logits)}, k={k}) should be {_show(want)}, got {_show(got)}"
        return True

    return run_check("top-k", test, fn, hint="the k-th largest value is torch.topk(logits, k).values[-1]; mask logits below it with -inf")


# ----------------------------------------------------------------------------- 3. top-p
def check_top_p(fn: Callable[[Any, float], Any], real_logits: Any | None = None) -> Verdict:
    """``fn(logits, p)``: keep the smallest set of most likely tokens whose probabilities reach p."""
    import torch

    from ..sampling import top_p_filter

    nucleus = torch.tensor(NUCLEUS_PROBS).log()
    cases = [(nucleus, p) for p in (0.5, 0.8, 0.81, 0.95, 1.0)] + [(nucleus[[2, 0, 3, 1]], 0.8)]
    cases += [(logits, p) for logits in _cases(real_logits) for p in (0.5, 0.9)]

    def test(fn: Callable[[Any, float], Any]) -> bool | str:
        for logits, p in cases:
            out = fn(logits.clone(), p)
            if out is None:
                return "your function returned None: did you forget `return`?"
            got, want = _tensor(out), top_p_filter(logits, p)
            if _same_filter(got, want):
                continue
            probs = [round(v, 3) for v in torch.softmax(logits, -1).tolist()[:8]]
            n_got, n_want = int(torch.isfinite(got).sum()), int(torch.isfinite(want).sum())
            if n_got == n_want - 1:
                return f"with probabilities {probs} and p={p} keep {n_want} token(s), you kept {n_got}: the token that takes the sum *to or past* p stays"
            if n_got == n_want + 1:
                return f"with probabilities {probs} and p={p} keep {n_want} token(s), you kept {n_got}: stop as soon as the sum reaches p"
            return f"with probabilities {probs} and p={p} the kept tokens should be {torch.isfinite(want).tolist()[:8]}, got {torch.isfinite(got).tolist()[:8]} (sort by probability first, then map back)"
        return True

    return run_check("top-p", test, fn, hint="sort descending, cumulative sum of softmax, drop a token when the tokens before it already reach p")


# ----------------------------------------------------------------------------- 4. repetition penalty
def check_repetition_penalty(fn: Callable[[Any, Sequence[int], float], Any]) -> Verdict:
    """``fn(logits, previous_ids, penalty)``: seen tokens' positive logits / penalty, negative ones * penalty."""
    import torch

    from ..sampling import apply_repetition_penalty

    cases = [
        (torch.tensor([2.0, -2.0, 1.0]), [0, 1], 2.0),
        (torch.tensor(SMALL), [3, 0, 0, 3], 1.3),  # repeats count once
        (torch.tensor(SMALL), [], 1.5),
        (torch.tensor(SMALL), [1, 2], 1.0),
    ]

    def test(fn: Callable[..., Any]) -> bool | str:
        for logits, ids, penalty in cases:
            original = logits.clone()
            out = fn(logits, list(ids), penalty)
            if out is None:
                return "your function returned None: did you forget `return`?"
            got, want = _tensor(out), apply_repetition_penalty(original, ids, penalty)
            if not torch.equal(logits, original):
                return "your function changed the logits it was given: work on logits.clone()"
            if close_enough(got, want, 1e-5):
                continue
            call = f"penalty({_show(original)}, {ids}, {penalty})"
            if logits[1] < 0 and 1 in ids and abs(float(got[1]) - float(original[1]) / penalty) < 1e-5:
                return f"{call}: a negative logit divided by the penalty goes *up*; multiply negative logits instead"
            if len(set(ids)) < len(ids):
                return f"{call} should be {_show(want)}, got {_show(got)}: a token seen several times is penalised once"
            return f"{call} should be {_show(want)}, got {_show(got)}"
        return True

    return run_check("repetition penalty", test, fn, hint="for each id in set(previous_ids): logit / penalty if logit > 0 else logit * penalty")


# ----------------------------------------------------------------------------- 5. few-shot messages
def check_few_shot(fn: Callable[..., Any]) -> Verdict:
    """``fn(examples, query, system=None)``: chat messages with one user/assistant pair per example."""
    from ..prompting import few_shot_messages

    examples = [("I loved it.", "positive"), ("Dull and too long.", "negative")]
    cases = [(examples, "What a great cast!", None), (examples, "Never again.", "Label the sentiment."), ([], "Hi", None)]

    def test(fn: Callable[..., Any]) -> bool | str:
        for ex, query, system in cases:
            got = fn(list(ex), query, system=system)
            if got is None:
                return "your function returned None: did you forget `return`?"
            want = few_shot_messages(ex, query, system=system)
            got = [dict(m) for m in got] if isinstance(got, list) else got
            if got == want:
                continue
            if not isinstance(got, list) or not all(isinstance(m, dict) for m in got):
                return "return a list of {'role': ..., 'content': ...} dicts"
            if system is None and got and got[0].get("role") == "system":
                return "with system=None add no system message (the chat template adds its default one)"
            if system is not None and (not got or got[0] != {"role": "system", "content": system}):
                return "with a system prompt the first message must be {'role': 'system', 'content': system}"
            roles, want_roles = [m.get("role") for m in got], [m["role"] for m in want]
            if roles != want_roles:
                return f"roles should be {want_roles}, got {roles}"
            return f"the messages should be {want}, got {got}"
        return True

    return run_check("few-shot messages", test, fn, hint="each (input, output) pair becomes {'role': 'user', 'content': input} then {'role': 'assistant', 'content': output}; the query is the last user message")
