"""Checks for lab 03 (sampling & prompting): each compares the learner's function with
``course_utils.sampling`` (or ``course_utils.prompting``) on inputs it makes itself (hand-made logits with
ties, several temperatures, k and p away from any default, k <= 0, an empty history) and on real logits
when given; the last one measures a few-shot prompt on held-out words with the real model.

A wrong result is compared with what the usual mistakes give (multiplying by the temperature, no max
subtracted, keeping the k *smallest* logits, ties dropped, the token that crosses p dropped, a negative
logit divided by the penalty, a repeated token penalised twice, ...), so the message names the mistake;
the solution-level hint is only shown by ``hint(name)``. A function that changes its input fails.

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

from . import Mistake, NotDone, Verdict, call_unchanged, close_enough, run_check

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

    cases = [torch.tensor(SMALL), torch.tensor([3.0, -2.0, 0.25, 1.5, -0.5, 2.5]),
             torch.tensor([0.5, 2.0, 1.0, 2.0, -1.0, 1.0, 0.0, 3.0, -2.0, 1.0, 0.25, -0.5])]  # ties, 12 entries
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
def _answer(fn: Callable[..., Any], *args: Any) -> Any:
    """The learner's result as a float tensor; their function must leave its inputs alone."""
    out = call_unchanged(fn, *args)
    if out is None:
        raise NotDone
    return _tensor(out)


def check_temperature_softmax(fn: Callable[[Any, float], Any], real_logits: Any | None = None) -> Verdict:
    """``fn(logits, temperature)``: the probabilities softmax(logits / T), stable for large logits."""
    import torch

    from ..sampling import apply_temperature

    def test(fn: Callable[[Any, float], Any]) -> bool | str:
        for logits in [*_cases(real_logits), torch.tensor([1000.0, 999.0, 998.0]), torch.tensor([-1000.0, -1001.0])]:
            for t in (0.3, 1.0, 2.0, 5.0):
                # the reference in float64: PyTorch's float32 softmax kernel is less exact on some CPUs
                got, want = _answer(fn, logits, t), torch.softmax(apply_temperature(logits.double(), t), dim=-1)
                if got.shape != want.shape:
                    return f"expected {tuple(want.shape)} probabilities, got shape {tuple(got.shape)}"
                if not torch.isfinite(got).all():
                    return f"logits {_show(logits)} gave inf/nan: exp() overflows (or underflows to 0/0) for logits this large"
                if close_enough(got, want, 1e-5):
                    continue
                if close_enough(got, torch.softmax(logits * t, dim=-1), 1e-5):
                    return f"at T={t} you multiplied the logits by T: a low temperature must sharpen the distribution, a high one flatten it"
                if close_enough(got, torch.softmax(logits, dim=-1), 1e-5):
                    return f"at T={t} you got the T=1 probabilities: the temperature is not used"
                if abs(float(got.sum()) - 1.0) > 1e-4:
                    return f"for T={t} the probabilities add up to {float(got.sum()):.4f}, not 1: look at what you divide by"
                return f"for logits {_show(logits)} and T={t} expected {_show(want)}, got {_show(got)}"
        return True

    return run_check("temperature softmax", test, fn, hint="scale by the temperature first, then make exp() safe, then normalise",
                     more="z = logits / T; e = torch.exp(z - z.max()); return e / e.sum()")


# ----------------------------------------------------------------------------- 2. top-k
def check_top_k(fn: Callable[[Any, int], Any], real_logits: Any | None = None) -> Verdict:
    """``fn(logits, k)``: the k highest logits kept (and any tied with the k-th), the others -inf;
    k <= 0 or k >= size keeps all."""
    from ..sampling import top_k_filter

    def test(fn: Callable[[Any, int], Any]) -> bool | str:
        for logits in _cases(real_logits):
            for k in (1, 2, 3, 5, 0, -1, len(logits), len(logits) + 3, 11, 50):
                if k in (11, 50) and len(logits) <= k:
                    continue
                off = k <= 0 or k >= len(logits)
                try:
                    got = _answer(fn, logits, k)
                except (NotImplementedError, NotDone, Mistake):
                    raise
                except Exception as err:
                    if not off:
                        raise
                    return f"top_k(logits, k={k}) raised {type(err).__name__}: k <= 0 or k >= the vocabulary size means top-k is off, return the logits unchanged"
                want = top_k_filter(logits, k)
                if _same_filter(got, want):
                    continue
                if off:
                    return f"k={k} must keep every logit unchanged (top-k is off), got {_show(got)}"
                if bool((got == 0).any()) and not bool((got == float("-inf")).any()):
                    return "removed tokens must get -inf (probability 0 after softmax), not 0"
                if _same_filter(got, top_k_filter(-logits, k).neg()):
                    return f"with k={k} you kept the k *smallest* logits: keep the largest"
                kept, wanted = int(got.isfinite().sum()), int(want.isfinite().sum())
                if kept != wanted and wanted > k:
                    return (f"top_k({_show(logits)}, k={k}) should keep {wanted} logits, you kept {kept}: logits tied with the k-th "
                            "largest value must stay too (compare values, not positions)")
                if kept in (k - 1, k + 1) and wanted == k:
                    return f"top_k({_show(logits)}, k={k}) kept {kept} logits instead of {k}: an off-by-one in which value you compare with"
                return f"top_k({_show(logits)}, k={k}) should be {_show(want)}, got {_show(got)}"
        return True

    return run_check("top-k", test, fn, hint="find the k-th largest *value*, then mask every logit below it",
                     more="kth = torch.topk(logits, k).values[-1]; logits.masked_fill(logits < kth, float('-inf'))")


# ----------------------------------------------------------------------------- 3. top-p
def check_top_p(fn: Callable[[Any, float], Any], real_logits: Any | None = None) -> Verdict:
    """``fn(logits, p)``: keep the smallest set of most likely tokens whose probabilities reach p."""
    import torch

    from ..sampling import top_p_filter

    nucleus = torch.tensor(NUCLEUS_PROBS).log()
    cases = [(nucleus, p) for p in (0.5, 0.8, 0.81, 0.95, 0.3, 1.0)] + [(nucleus[[2, 0, 3, 1]], 0.8), (nucleus[[3, 2, 1, 0]], 0.9)]
    cases += [(logits, p) for logits in _cases(real_logits) for p in (0.5, 0.9)]

    def test(fn: Callable[[Any, float], Any]) -> bool | str:
        for logits, p in cases:
            got, want = _answer(fn, logits, p), top_p_filter(logits, p)
            if _same_filter(got, want):
                continue
            probs = [round(v, 3) for v in torch.softmax(logits, -1).tolist()[:8]]
            n_got, n_want = int(torch.isfinite(got).sum()), int(torch.isfinite(want).sum())
            if n_got == n_want - 1:
                return f"with probabilities {probs} and p={p} keep {n_want} token(s), you kept {n_got}: the token that takes the sum *to or past* p stays"
            if n_got == n_want + 1:
                return f"with probabilities {probs} and p={p} keep {n_want} token(s), you kept {n_got}: stop as soon as the sum reaches p"
            if n_got == n_want:
                return (f"with probabilities {probs} and p={p} you kept the right number of tokens but the wrong ones "
                        f"{torch.isfinite(got).tolist()[:8]}: decisions made in sorted order must go back to the original positions")
            return f"with probabilities {probs} and p={p} the kept tokens should be {torch.isfinite(want).tolist()[:8]}, got {torch.isfinite(got).tolist()[:8]}"
        return True

    return run_check("top-p", test, fn, hint="sort by probability first; a token is dropped when the tokens ranked *above* it already reach p",
                     more="sorted, order = torch.sort(logits, descending=True); probs = softmax(sorted); drop[order] = probs.cumsum(0) - probs >= p")


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
        (torch.tensor([0.5, -3.0, 4.0, 0.0, -0.25, 2.0, 1.0, -1.0, 3.0, 0.75, -2.0, 1.5]), [11, 10, 1, 10, 4, 2], 1.7),  # two-digit ids
    ]

    def test(fn: Callable[..., Any]) -> bool | str:
        for logits, ids, penalty in cases:
            got, want = _answer(fn, logits, list(ids), penalty), apply_repetition_penalty(logits, ids, penalty)
            if close_enough(got, want, 1e-5):
                continue
            call = f"penalty({_show(logits)}, {ids}, {penalty})"
            negative_seen = [i for i in set(ids) if logits[i] < 0]
            if any(abs(float(got[i]) - float(logits[i]) / penalty) < 1e-5 for i in negative_seen):
                return f"{call}: a negative logit divided by the penalty goes *up* (the token gets more likely); treat negative logits differently"
            if len(set(ids)) < len(ids):
                return f"{call} should be {_show(want)}, got {_show(got)}: a token seen several times is penalised once"
            unseen = [i for i in range(len(logits)) if i not in set(ids)]
            if any(abs(float(got[i]) - float(logits[i])) > 1e-6 for i in unseen):
                return f"{call}: tokens that were never seen must keep their logits"
            return f"{call} should be {_show(want)}, got {_show(got)}"
        return True

    return run_check("repetition penalty", test, fn, hint="only seen tokens change, each once, and both signs must end up *less* likely",
                     more="for each id in set(previous_ids): logit / penalty if logit > 0 else logit * penalty, on logits.clone()")


# ----------------------------------------------------------------------------- 5. few-shot messages
def check_few_shot(fn: Callable[..., Any]) -> Verdict:
    """``fn(examples, query, system=None)``: chat messages with one user/assistant pair per example."""
    from ..prompting import few_shot_messages

    examples = [("I loved it.", "positive"), ("Dull and too long.", "negative"), ("Fine, I guess.", "neutral")]
    cases = [(examples[:2], "What a great cast!", None), (examples, "Never again.", "Label the sentiment."), ([], "Hi", None),
             ([], "Hi", "Be brief."), (examples[2:], "", None)]

    def test(fn: Callable[..., Any]) -> bool | str:
        for ex, query, system in cases:
            got = call_unchanged(fn, list(ex), query, system=system)
            if got is None:
                raise NotDone
            want = few_shot_messages(ex, query, system=system)
            got = [dict(m) for m in got] if isinstance(got, list) and all(isinstance(m, dict) for m in got) else got
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
                return f"with {len(ex)} example(s) the roles should be {want_roles}, got {roles}"
            if got[-1].get("content") != query:
                return f"the last message must be the query {query!r}, got {got[-1].get('content')!r}"
            return f"the roles are right but the contents are not: with {len(ex)} example(s) got {got}"
        return True

    return run_check("few-shot messages", test, fn, hint="each example is one exchange, as if the model had answered it before; the query comes last",
                     more="for each (input, output): {'role': 'user', 'content': input} then {'role': 'assistant', 'content': output}")


# ----------------------------------------------------------------------------- 6. a prompt that works (measured)
# Held-out words and the answers that count (the first token of any of them, after a space or not). The
# lab gives other pairs to build examples from; these are for measuring only.
HELD_OUT_OPPOSITES: dict[str, tuple[str, ...]] = {
    "hot": ("cold",), "big": ("small", "little", "tiny"), "fast": ("slow",), "happy": ("sad", "unhappy"),
    "early": ("late",), "light": ("dark", "heavy"), "open": ("closed", "close", "shut"), "full": ("empty",),
    "rich": ("poor",), "strong": ("weak",), "young": ("old",), "high": ("low",), "wet": ("dry",),
    "hard": ("soft", "easy"), "loud": ("quiet", "soft", "silent"), "clean": ("dirty",), "thick": ("thin",),
    "long": ("short",), "true": ("false",), "cheap": ("expensive", "dear"),
}
OPPOSITES_TARGET = 0.85
REFERENCE_SHOTS = (("up", "down"), ("good", "bad"), ("near", "far"), ("win", "lose"))
_REFERENCE_ACCURACY: dict[int, float] = {}


def reference_opposite_prompt(word: str) -> str:
    """The reference solution's prompt: four examples in a fixed format, then the word."""
    return "".join(f"Word: {a}\nOpposite: {b}\n\n" for a, b in REFERENCE_SHOTS) + f"Word: {word}\nOpposite:"


def _leaks(prompt: str, word: str) -> str:
    """A held-out pair written into the prompt: the answer is given away (or tuned on)."""
    import re

    def has(w: str) -> bool:
        return re.search(rf"\b{re.escape(w)}\b", prompt, flags=re.IGNORECASE) is not None

    for x, answers in HELD_OUT_OPPOSITES.items():
        found = [a for a in answers if has(a)]
        if found and (x == word or has(x)):
            return f"the prompt for {word!r} already contains the held-out pair {x!r} -> {found[0]!r}: build your examples from other words"
    return ""


def opposites_accuracy(build_prompt: Callable[[str], str], model: Any, tokenizer: Any) -> tuple[float, list[str]]:
    """Share of held-out words whose greedy next token after ``build_prompt(word)`` starts an accepted answer."""
    import torch

    right, misses = 0, []
    for word, answers in HELD_OUT_OPPOSITES.items():
        prompt = build_prompt(word)
        if not isinstance(prompt, str):
            raise Mistake(f"build_prompt({word!r}) should return the prompt text (a str), got {type(prompt).__name__}")
        if word not in prompt:
            raise Mistake(f"build_prompt({word!r}) does not contain the word {word!r}: the model cannot answer what it is not asked")
        if leak := _leaks(prompt, word):
            raise Mistake(leak)
        ids = tokenizer.encode(prompt, add_special_tokens=False)
        with torch.inference_mode():
            best = int(model(input_ids=torch.tensor([ids])).logits[0, -1].argmax())
        accepted = {tokenizer.encode(pre + a, add_special_tokens=False)[0] for a in answers for pre in (" ", "")}
        if best in accepted:
            right += 1
        else:
            misses.append(f"{word} -> {tokenizer.decode([best])!r}")
    return right / len(HELD_OUT_OPPOSITES), misses


def check_opposites_prompt(build_prompt: Callable[[str], str], model: Any, tokenizer: Any) -> Verdict:
    """``build_prompt(word) -> str``: a completion prompt after which SmolLM2's greedy next token is the
    opposite of ``word``. Measured on the held-out words above (never shown in the lab); passes at
    ``OPPOSITES_TARGET`` accuracy. The verdict shows the learner's accuracy, the target and the reference's."""

    measured: list[str] = []

    def test(fn: Callable[[str], str]) -> bool | str:
        accuracy, misses = opposites_accuracy(fn, model, tokenizer)
        key = id(model)
        if key not in _REFERENCE_ACCURACY:
            _REFERENCE_ACCURACY[key] = opposites_accuracy(reference_opposite_prompt, model, tokenizer)[0]
        n = len(HELD_OUT_OPPOSITES)
        line = (f"accuracy on {n} held-out words {accuracy:.0%} (target {OPPOSITES_TARGET:.0%}, "
                f"reference few-shot prompt {_REFERENCE_ACCURACY[key]:.0%})")
        measured.append(line)
        if accuracy >= OPPOSITES_TARGET:
            return True
        return f"{line}; missed e.g. {', '.join(misses[:4])}: show the model the pattern you want it to continue"

    verdict = run_check("opposites prompt", test, build_prompt,
                        hint="a bare question lets the model ramble or repeat the word; examples in one fixed format make the next token the answer",
                        more="a few lines 'Word: up\\nOpposite: down' (from the pairs given), then 'Word: {word}\\nOpposite:' with no trailing space")
    return Verdict(verdict.name, verdict.status, measured[0]) if verdict.passed else verdict
