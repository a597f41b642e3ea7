"""Checks for lab 02 (transformers): softmax, causal mask, attention, parameter count, greedy step, and
greedy decoding with a KV cache that matches ``model.generate`` while feeding the model far fewer positions.

Each ``check_*`` takes the learner's function, runs it on inputs made here and compares with a
reference computed independently (PyTorch's own softmax and ``scaled_dot_product_attention``, a
decoder layer built from a config, the model's real weights and ``model.generate``). Inputs are chosen
to show the usual mistakes: rows of very different sizes (the global maximum instead of each row's),
square matrices (a sum without ``keepdim`` broadcasts the wrong way), values of another width than the
queries (dividing by the wrong ``d``), a second model config (numbers typed in for SmolLM2), a function
that divides its input in place. Common mistakes get a message that names them; the solution-level
hint comes only from ``hint(name)``.

>>> def softmax(x):
...     raise NotImplementedError
>>> check_softmax(softmax).status
'not done'
>>> import torch
>>> check_softmax(lambda x: torch.softmax(x, dim=-1)).status
'passed'
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from . import Mistake, NotDone, Verdict, call_unchanged, close_enough, run_check

REFERENCE = "course_utils.transformer.generate_greedy"


def _tensor(value: Any) -> Any:
    """The learner's answer as a float tensor (they may return a list or a NumPy array)."""
    import torch

    if value is None:
        raise NotImplementedError
    if isinstance(value, tuple):  # e.g. (output, weights): the output comes first
        value = value[0]
    return torch.as_tensor(value).float() if not isinstance(value, torch.Tensor) else value.detach().float()


# ----------------------------------------------------------------------------- 1. softmax
def check_softmax(softmax: Callable[[Any], Any]) -> Verdict:
    """``softmax(x)``: probabilities over the last dimension of a tensor, stable for large inputs."""
    import torch

    def test(fn: Callable[[Any], Any]) -> bool | str:
        def run(x: Any) -> Any:
            return _tensor(call_unchanged(fn, x))

        small = torch.tensor([1.0, 2.0, 3.0])
        got = run(small.clone())
        if got.shape != small.shape:
            return f"softmax([1, 2, 3]) should have shape {tuple(small.shape)}, got {tuple(got.shape)}"
        if not close_enough(got, torch.softmax(small, -1), 1e-5):
            return f"softmax([1, 2, 3]) should be [0.090, 0.245, 0.665], got {[round(v, 3) for v in got.tolist()]}"
        square = torch.randn(4, 4, generator=torch.Generator().manual_seed(0))
        got = run(square.clone())
        if got.shape == square.shape and close_enough(got, torch.softmax(square, 0), 1e-5):
            return "for a (4, 4) tensor each *row* must add up to 1, but your columns do: normalise over the last dimension (dim=-1)"
        shifted = torch.exp(square - square.max(-1, keepdim=True).values)
        if got.shape == square.shape and any(close_enough(got, e / e.sum(-1), 1e-5) for e in (shifted, torch.exp(square))):
            return ("for a (4, 4) tensor the rows do not add up to 1: the sum over dim=-1 has shape (4,) and broadcasts "
                    "along the wrong axis; keep the summed dimension (keepdim=True)")
        if got.shape != square.shape or not close_enough(got, torch.softmax(square, -1), 1e-5):
            return "wrong for a (4, 4) tensor: take the maximum and the sum along the last dimension (dim=-1) of each row"
        batch = torch.randn(2, 3, 5, generator=torch.Generator().manual_seed(1))
        got = run(batch.clone())
        if got.shape != batch.shape or not close_enough(got, torch.softmax(batch, -1), 1e-5):
            return "wrong for a (2, 3, 5) tensor (a batch of score matrices): work along dim=-1, not a fixed dim=1"
        big = torch.tensor([1000.0, 1001.0, 1002.0])
        got = run(big.clone())
        if not torch.isfinite(got).all():
            return "softmax([1000, 1001, 1002]) gives inf/nan: exp(1000) overflows. Subtracting a constant from every score does not change the result"
        if not close_enough(got, torch.softmax(big, -1), 1e-5):
            return "softmax([1000, 1001, 1002]) should equal softmax([0, 1, 2])"
        mixed = torch.tensor([[1000.0, 1001.0, 1002.0], [0.0, 1.0, 2.0]])
        got = run(mixed.clone())
        if not torch.isfinite(got).all() or not close_enough(got, torch.softmax(mixed, -1), 1e-5):
            return ("rows [1000, 1001, 1002] and [0, 1, 2] in one tensor go wrong: you subtracted the maximum of the whole "
                    "tensor, so exp(-1000) of the second row is 0; subtract each row's own maximum")
        masked = torch.tensor([0.5, float("-inf"), 1.5])
        got = run(masked.clone())
        if not close_enough(got, torch.softmax(masked, -1), 1e-5):
            return "a score of -inf (a masked position) must get probability 0 and leave the others a valid softmax"
        return True

    return run_check("softmax", test, softmax, hint="exp of large scores overflows; subtracting the same constant from every score of a row does not change the result",
                     more="shifted = x - x.max(dim=-1, keepdim=True).values; e = exp(shifted); e / e.sum(dim=-1, keepdim=True)")


# ----------------------------------------------------------------------------- 2. causal mask
def check_causal_mask(causal_mask: Callable[[int], Any]) -> Verdict:
    """``causal_mask(n)``: an (n, n) boolean tensor, True where query i may look at key j (j <= i)."""
    import torch

    def test(fn: Callable[[int], Any]) -> bool | str:
        for n in (4, 7, 1, 12):
            got = fn(n)
            if got is None:
                raise NotImplementedError
            got = got if isinstance(got, torch.Tensor) else torch.as_tensor(got)
            if tuple(got.shape) != (n, n):
                return f"causal_mask({n}) should have shape ({n}, {n}), got {tuple(got.shape)}"
            want = torch.ones(n, n, dtype=torch.bool).tril()
            if got.dtype != torch.bool:
                if n > 1 and torch.isinf(got.float()).any():
                    return (f"causal_mask({n}) holds -inf: that is an *additive* mask; here True/False says which keys a query may see "
                            "(scores.masked_fill(~mask, -inf) makes the -inf later)")
                return f"causal_mask({n}) has dtype {got.dtype}: make it boolean (True = may look), so ~mask and masked_fill work"
            if torch.equal(got, want):
                continue
            if torch.equal(got, ~want) or torch.equal(got, want.T):
                return f"causal_mask({n}) is the wrong way round: True should mean 'may look', and row i (a query) may see columns j <= i"
            if torch.equal(got, want.tril(-1)):
                return "the diagonal is False: every token may look at itself (j == i)"
            return f"causal_mask({n}) should be True on and below the diagonal, got\n{got.int()}"
        return True

    return run_check("causal mask", test, causal_mask, hint="row i is a query, column j a key: a query may see itself and the keys before it",
                     more="torch.ones(n, n, dtype=torch.bool).tril(), or torch.arange(n)[:, None] >= torch.arange(n)[None, :]")


# ----------------------------------------------------------------------------- 3. attention
def check_attention(attention: Callable[[Any, Any, Any], Any]) -> Verdict:
    """``attention(q, k, v)``: single-head causal attention of (tokens, d) tensors -> (tokens, d_v)."""
    import torch
    import torch.nn.functional as F

    def test(fn: Callable[[Any, Any, Any], Any]) -> bool | str:
        g = torch.Generator().manual_seed(1)
        for tokens, d, d_v in ((6, 8, 8), (11, 16, 5), (1, 4, 4)):
            q, k, v = torch.randn(tokens, d, generator=g), torch.randn(tokens, d, generator=g), torch.randn(tokens, d_v, generator=g)
            got = _tensor(call_unchanged(fn, q, k, v))
            sdpa = lambda q=q, k=k, v=v, **kw: F.scaled_dot_product_attention(q[None], k[None], v[None], **kw)[0]  # noqa: E731
            want = sdpa(is_causal=True)
            where = f"for {tokens} tokens, q and k of width {d}, v of width {d_v}"
            if got.shape != want.shape:
                return f"{where} the output should have shape {tuple(want.shape)} (one value vector per token), got {tuple(got.shape)}"
            if close_enough(got, want, 1e-5):
                continue
            if torch.isnan(got).any():
                return f"{where} the output has nan: a row of scores that is all -inf (a query that may see nothing) gives 0/0; every query sees itself"
            for scale, message in ((1.0, f"the scores are not scaled: divide q @ k.T by sqrt(d) = {math.sqrt(d):.3f}"),
                                   (1 / d, "the scores are divided by d; divide by sqrt(d), the square root of the query width"),
                                   (1 / math.sqrt(d_v), "the scores are divided by the square root of v's width; d is the width of q and k"),
                                   (1 / math.sqrt(tokens), "the scores are divided by the square root of the number of tokens; d is the width of q and k (q.shape[-1])")):
                if scale != 1 / math.sqrt(d) and close_enough(got, sdpa(is_causal=True, scale=scale), 1e-5):
                    return f"{where}: {message}"
            if close_enough(got, sdpa(), 1e-5):
                return f"{where}: the tokens can see the future: set the scores above the diagonal to -inf before softmax"
            weights = torch.softmax((q @ k.T / math.sqrt(d)).masked_fill(~torch.ones(tokens, tokens, dtype=torch.bool).tril(), float("-inf")), 0)
            if close_enough(got, weights.nan_to_num(0.0) @ v, 1e-5):
                return f"{where}: softmax was taken down each column; each query's row of scores must add up to 1 (dim=-1)"
            return f"{where} the output differs from scaled_dot_product_attention(q, k, v, is_causal=True)"
        return True

    return run_check("causal attention", test, attention, hint="four steps: scores, scale, mask, softmax over each row; then weight the values",
                     more="softmax((q @ k.T / sqrt(q.shape[-1])).masked_fill(~causal_mask(len(q)), -inf)) @ v, without changing q, k or v in place")


# ----------------------------------------------------------------------------- 4. parameters of a layer
SMALL_CONFIG = {"hidden_size": 64, "intermediate_size": 96, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16}


def check_param_count(count_layer_parameters: Callable[[Any], Any], model: Any) -> Verdict:
    """``count_layer_parameters(config)``: parameters of one decoder layer, from the config alone.

    Tried on the model's config and on a smaller config of the same kind (another width, heads and MLP),
    each compared with a real decoder layer's ``numel``.
    """
    import copy

    small = copy.deepcopy(model.config)
    for key, value in SMALL_CONFIG.items():
        setattr(small, key, value)

    def test(fn: Callable[[Any], Any]) -> bool | str:
        for cfg, layer, label in ((model.config, model.model.layers[0], "SmolLM2's config"),
                                  (small, type(model.model.layers[0])(small, 0), "a smaller config (hidden 64, 4 heads, 2 KV heads)")):
            got = call_unchanged(fn, cfg)
            if got is None:
                raise NotImplementedError
            got = int(got)
            want = sum(p.numel() for p in layer.parameters())
            if got == want:
                continue
            d, ff = cfg.hidden_size, cfg.intermediate_size
            kv = cfg.num_key_value_heads * cfg.head_dim
            where = f"for {label}"
            if got == want + 2 * d * (d - kv):
                return f"{where}: k_proj and v_proj are smaller than q_proj: {cfg.num_key_value_heads} KV heads x {cfg.head_dim} = {kv} outputs, not {d} (grouped-query attention)"
            if got == want - 2 * d:
                return f"{where}: almost: the two RMSNorms have weights too"
            if got == want - d:
                return f"{where}: almost: there are two RMSNorms per layer, one before attention and one before the MLP"
            if got in (want - d * ff, want - d * ff - 2 * d):
                return f"{where}: the MLP has three matrices (gate_proj, up_proj, down_proj), each hidden_size x intermediate_size"
            if got in (want - 2 * d * d, want - 2 * d * d - 2 * d, want - d * d):
                return f"{where}: attention has four matrices: q_proj, k_proj, v_proj and o_proj"
            if label != "SmolLM2's config" and got == sum(p.numel() for p in model.model.layers[0].parameters()):
                return f"{where} you returned SmolLM2's count: compute it from the config's fields, not from numbers typed in"
            return f"{where} got {got:,}, expected {want:,} (= sum of p.numel() for one layer's parameters)"
        return True

    return run_check("parameters of one layer", test, count_layer_parameters,
                     hint="list the weight matrices of attention and of the MLP with their shapes, and the norms",
                     more="2 * d * d (q, o) + 2 * d * kv_heads * head_dim (k, v) + 3 * d * intermediate (MLP) + 2 * d (norms)")


# ----------------------------------------------------------------------------- 5. one greedy step
GREEDY_PROMPTS = ("The capital of France is", "1, 2, 3, 4,", "In 1969, 12 astronauts")


def check_greedy_step(greedy_next_token: Callable[[Any, list[int]], Any], model: Any, tokenizer: Any) -> Verdict:
    """``greedy_next_token(model, ids)``: the id of the most likely next token after ``ids``."""
    import torch

    def test(fn: Callable[[Any, list[int]], Any]) -> bool | str:
        for prompt in GREEDY_PROMPTS:
            ids = tokenizer(prompt, add_special_tokens=False).input_ids
            with torch.no_grad():
                logits = model(input_ids=torch.tensor([ids])).logits[0]
                given = list(ids)
                got = fn(model, given)
                if given != ids:
                    raise Mistake("your function changed the ids list it was given (append/extend in place): work on a copy instead")
            if got is None:
                raise NotImplementedError
            try:
                got = int(got)
            except (TypeError, ValueError, RuntimeError):
                return f"return one token id (an int), got {type(got).__name__}{' of shape ' + str(tuple(got.shape)) if hasattr(got, 'shape') else ''}"
            want = int(torch.argmax(logits[-1]))
            if got == want:
                continue
            vocab = logits.shape[-1]
            if got >= vocab:
                return (f"after {prompt!r} you returned {got}, larger than the vocabulary ({vocab} tokens): the argmax was taken over "
                        "all positions at once (a flattened tensor); take it over the vocabulary of one position")
            shown = f"after {prompt!r} you chose {tokenizer.decode([got])!r} ({got}), the model's favourite is {tokenizer.decode([want])!r} ({want})"
            if got in (int(torch.argmax(logits[0])), int(torch.argmax(logits)) % vocab):
                return shown + (": you used the scores of the first position (or took the argmax over all positions at once); "
                                "the next token comes from the last position's scores")
            if got == int(torch.argmin(logits[-1])):
                return shown + ": that is the *least* likely token (argmin)"
            return shown
        return True

    return run_check("one greedy step", test, greedy_next_token, hint="the model scores every position; the prediction for the next token sits at one of them",
                     more="logits = model(input_ids=torch.tensor([ids])).logits; int(logits[0, -1].argmax())")


# ----------------------------------------------------------------------------- 6. greedy decoding with a KV cache
DECODE_CASES = (  # (prompt, max_new_tokens, as a chat): a chat answer that ends with eos, two-digit numbers, a short run, one token
    ("What is 2+2? Answer with the number only.", 12, True),
    ("In 1969, 12 astronauts", 10, False),
    ("Le chat", 5, False),
    ("Le chat", 1, False),
)


class CountingModel:
    """Wraps a model and counts the token positions fed to it through ``model(...)`` calls.

    >>> class Echo:
    ...     config = "cfg"
    ...     def __call__(self, input_ids=None, **kw):
    ...         return input_ids
    >>> import torch
    >>> counted = CountingModel(Echo())
    >>> _ = counted(input_ids=torch.zeros(1, 5, dtype=torch.long)); _ = counted(torch.zeros(1, 1, dtype=torch.long))
    >>> counted.positions, counted.calls, counted.config
    (6, 2, 'cfg')
    """

    def __init__(self, model: Any) -> None:
        self._model, self.positions, self.calls = model, 0, 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        ids = kwargs.get("input_ids", args[0] if args else None)
        if ids is None and kwargs.get("inputs_embeds") is not None:
            self.positions += int(kwargs["inputs_embeds"].shape[-2])
        elif ids is not None:
            self.positions += int(ids.shape[-1])
        self.calls += 1
        return self._model(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)


_EXPECTED: dict[tuple, list[int]] = {}  # (model id, prompt ids, n, eos) -> model.generate's new ids, computed once


def _decode_prompt(tokenizer: Any, prompt: str, chat: bool) -> list[int]:
    if chat:
        text = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True)
        return tokenizer(text, add_special_tokens=False).input_ids
    return tokenizer(prompt, add_special_tokens=False).input_ids


def _generate(model: Any, ids: list[int], n: int, eos: int) -> list[int]:
    import torch

    key = (id(model), tuple(ids), n, eos)
    if key not in _EXPECTED:
        with torch.inference_mode():
            out = model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long), max_new_tokens=n,
                                 do_sample=False, eos_token_id=eos, pad_token_id=eos)
        _EXPECTED[key] = out[0, len(ids):].tolist()
    return _EXPECTED[key]


def _as_ids(value: Any) -> list[int]:
    if value is None:
        raise NotDone
    if hasattr(value, "ids"):  # a GreedyRun
        value = value.ids
    if hasattr(value, "tolist"):
        value = value.tolist()
    if value and isinstance(value[0], list):
        value = value[0]
    try:
        return [int(i) for i in value]
    except (TypeError, ValueError):
        raise Mistake(f"return the new token ids as a list of ints, got {type(value).__name__}") from None


def check_cached_generation(generate: Callable[..., Any], model: Any, tokenizer: Any) -> Verdict:
    """``generate(model, ids, max_new_tokens, eos_token_id)``: greedy decoding with a KV cache.

    On prompts the check picks (a chat answer that stops at eos, two-digit numbers, one token) the new
    ids must equal ``model.generate``'s (greedy), and the model may be fed at most the prompt once plus
    one position per new token: the check hands over a :class:`CountingModel` and prints your count
    beside the target, the reference's (``course_utils.transformer.generate_greedy``) and a loop
    without a cache.
    """
    from ..transformer import generate_greedy

    eos = tokenizer.eos_token_id

    def test(fn: Callable[..., Any]) -> bool | str:
        yours = target = reference = no_cache = 0
        for prompt, n, chat in DECODE_CASES:
            ids = _decode_prompt(tokenizer, prompt, chat)
            want = _generate(model, ids, n, eos)
            counted = CountingModel(model)
            given = list(ids)
            got = _as_ids(fn(counted, given, n, eos))
            if given != ids:
                raise Mistake("your function changed the ids list it was given (append/extend in place): work on a copy instead")
            where = f"for {prompt!r} ({len(ids)} prompt tokens) with max_new_tokens={n}"
            if got[:len(ids)] == ids and len(got) > len(want) and got[len(ids):] == want:
                return f"{where} you returned the prompt and the new tokens: return only the new ones (model.generate's output after the prompt)"
            if got != want:
                if got[:len(want)] == want and len(got) > len(want) and want[-1] == eos:
                    return f"{where}: model.generate stops once it has produced eos_token_id ({eos}, kept as the last new token); yours went on"
                if got == want[:-1] and want[-1] == eos:
                    return f"{where}: model.generate keeps the eos token ({eos}) as the last new token; yours left it out"
                if len(got) != len(want) and got[:min(len(got), len(want))] == want[:min(len(got), len(want))]:
                    return f"{where} you made {len(got)} new tokens, model.generate {len(want)}: make exactly max_new_tokens unless eos comes first"
                if got[:1] == want[:1] and counted.positions <= len(ids) + len(got):
                    return (f"{where} the first token is right, the later ones are not: after the first step the model saw only the newest "
                            "token without its past; pass the past_key_values returned by the previous call")
                return f"{where} your tokens {tokenizer.decode(got)!r} differ from model.generate's {tokenizer.decode(want)!r}"
            if counted.positions == 0:
                return (f"{where} your function never called model(...): write the loop yourself (the check counts the positions "
                        "fed to model(...); model.generate and model.forward do not count)")
            counted_reference = CountingModel(model)
            generate_greedy(counted_reference, ids, n, eos_token_id=eos)
            yours, target, reference = yours + counted.positions, target + len(ids) + len(want), reference + counted_reference.positions
            no_cache += sum(len(ids) + i for i in range(len(want)))
        report = (f"your loop fed the model {yours} token positions for {len(DECODE_CASES)} prompts (tokens identical to model.generate); "
                  f"target at most {target} (each prompt once, then one position per new token); {REFERENCE}: {reference}; "
                  f"a loop without a cache feeds {no_cache}")
        print(report)
        if yours <= target:
            return True
        return f"{report}: every step runs the whole sequence again; keep the cache the model returns and feed only the newest token"

    return run_check("greedy decoding with a KV cache", test, generate,
                     hint="the model returns past_key_values: at the next step it needs only what it does not hold yet",
                     more="out = model(input_ids=..., past_key_values=past, use_cache=True); past = out.past_key_values; "
                          "the first call feeds the prompt, each later call torch.tensor([[token]])")
