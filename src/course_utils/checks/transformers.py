"""Checks for lab 02 (transformers): softmax, causal mask, attention, parameter count, greedy step.

Each ``check_*`` takes the learner's function, runs it on fixed inputs and compares with a
reference computed here independently (PyTorch's own softmax and ``scaled_dot_product_attention``,
the model's real weights). Common mistakes get a targeted hint.

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

from . import Verdict, close_enough, run_check


def _tensor(value: Any) -> Any:
    """The learner's answer as a float tensor (they may return a list or a NumPy array)."""
    import torch

    if isinstance(value, tuple):  # e.g. (output, weights): the output comes first
        value = value[0]
    return torch.as_tensor(value).float() if not isinstance(value, torch.Tensor) else value.detach().float()


# ----------------------------------------------------------------------------- 1. softmax
def check_softmax(softmax: Callable[[Any], Any]) -> Verdict:
    """``softmax(x)``: probabilities over the last dimension of a tensor, stable for large inputs."""
    import torch

    def test(fn: Callable[[Any], Any]) -> bool | str:
        small = torch.tensor([1.0, 2.0, 3.0])
        got = _tensor(fn(small.clone()))
        if got.shape != small.shape:
            return f"softmax([1, 2, 3]) should have shape {tuple(small.shape)}, got {tuple(got.shape)}"
        if not close_enough(got, torch.softmax(small, -1), 1e-5):
            return f"softmax([1, 2, 3]) should be [0.090, 0.245, 0.665], got {[round(v, 3) for v in got.tolist()]}"
        rows = torch.randn(3, 5, generator=torch.Generator().manual_seed(0))
        got = _tensor(fn(rows.clone()))
        if got.shape == rows.shape and close_enough(got, torch.softmax(rows, 0), 1e-5):
            return "for a (3, 5) tensor each *row* must add up to 1: normalise over the last dimension (dim=-1)"
        if got.shape != rows.shape or not close_enough(got, torch.softmax(rows, -1), 1e-5):
            return "wrong for a (3, 5) tensor: apply softmax along the last dimension (dim=-1, keepdim=True when you sum)"
        big = torch.tensor([1000.0, 1001.0, 1002.0])
        got = _tensor(fn(big.clone()))
        if not torch.isfinite(got).all():
            return "softmax([1000, 1001, 1002]) gives inf/nan: exp(1000) overflows. Subtract the maximum first (it does not change the result)"
        if not close_enough(got, torch.softmax(big, -1), 1e-5):
            return "softmax([1000, 1001, 1002]) should equal softmax([0, 1, 2])"
        return True

    return run_check("softmax", test, softmax, hint="exp(x - max) / sum(exp(x - max)) along the last dimension")


# ----------------------------------------------------------------------------- 2. causal mask
def check_causal_mask(causal_mask: Callable[[int], Any]) -> Verdict:
    """``causal_mask(n)``: an (n, n) boolean tensor, True where query i may look at key j (j <= i)."""
    import torch

    def test(fn: Callable[[int], Any]) -> bool | str:
        for n in (4, 7, 1):
            got = fn(n)
            got = got if isinstance(got, torch.Tensor) else torch.as_tensor(got)
            if tuple(got.shape) != (n, n):
                return f"causal_mask({n}) should have shape ({n}, {n}), got {tuple(got.shape)}"
            got = got.bool()
            want = torch.ones(n, n, dtype=torch.bool).tril()
            if torch.equal(got, want):
                continue
            if torch.equal(got, ~want) or torch.equal(got, want.T):
                return f"causal_mask({n}) is the wrong way round: True should mean 'may look', and row i (a query) may see columns j <= i"
            if torch.equal(got, want.tril(-1)):
                return "the diagonal is False: every token may look at itself (j == i)"
            return f"causal_mask({n}) should be True on and below the diagonal, got\n{got.int()}"
        return True

    return run_check("causal mask", test, causal_mask, hint="torch.ones(n, n).tril() is a start; make it boolean")


# ----------------------------------------------------------------------------- 3. attention
def check_attention(attention: Callable[[Any, Any, Any], Any]) -> Verdict:
    """``attention(q, k, v)``: single-head causal attention of (tokens, d) tensors -> (tokens, d)."""
    import torch
    import torch.nn.functional as F

    def test(fn: Callable[[Any, Any, Any], Any]) -> bool | str:
        g = torch.Generator().manual_seed(1)
        q, k, v = (torch.randn(6, 8, generator=g) for _ in range(3))
        got = _tensor(fn(q.clone(), k.clone(), v.clone()))
        want = F.scaled_dot_product_attention(q[None], k[None], v[None], is_causal=True)[0]
        if got.shape != want.shape:
            return f"the output should have shape {tuple(want.shape)} (one vector per token), got {tuple(got.shape)}"
        if close_enough(got, want, 1e-5):
            return True
        unscaled = F.scaled_dot_product_attention(q[None], k[None], v[None], is_causal=True, scale=1.0)[0]
        if close_enough(got, unscaled, 1e-5):
            return f"the scores are not scaled: divide q @ k.T by sqrt(d) = {math.sqrt(8):.3f}"
        unmasked = F.scaled_dot_product_attention(q[None], k[None], v[None])[0]
        if close_enough(got, unmasked, 1e-5):
            return "the tokens can see the future: set the scores above the diagonal to -inf before softmax"
        if close_enough(got[:1], want[:1], 1e-5):
            return "the first token is right but later ones are not: is softmax taken over each row (dim=-1)?"
        return "the output differs from scaled_dot_product_attention(q, k, v, is_causal=True)"

    return run_check("causal attention", test, attention, hint="softmax(mask(q @ k.T / sqrt(d))) @ v")


# ----------------------------------------------------------------------------- 4. parameters of a layer
def check_param_count(count_layer_parameters: Callable[[Any], Any], model: Any) -> Verdict:
    """``count_layer_parameters(config)``: parameters of one decoder layer, from the config alone."""

    def test(fn: Callable[[Any], Any]) -> bool | str:
        got = fn(model.config)
        if got is None:
            raise NotImplementedError
        got = int(got)
        layer = model.model.layers[0]
        want = sum(p.numel() for p in layer.parameters())
        if got == want:
            return True
        cfg = model.config
        d, ff = cfg.hidden_size, cfg.intermediate_size
        head_dim = getattr(cfg, "head_dim", None) or d // cfg.num_attention_heads
        kv = cfg.num_key_value_heads * head_dim
        if got == want + 2 * d * (d - kv):
            return f"k_proj and v_proj are smaller than q_proj: {cfg.num_key_value_heads} KV heads x {head_dim} = {kv} outputs, not {d} (grouped-query attention)"
        if got == want - 2 * d:
            return f"almost: add the two RMSNorm weight vectors ({d} each)"
        if got in (want - d * ff, want - d * ff - 2 * d):
            return "the MLP has three matrices (gate_proj, up_proj, down_proj), each hidden_size x intermediate_size"
        if got == want - 2 * d * d or got == want - 2 * d * d - 2 * d:
            return "attention has four matrices: q_proj, k_proj, v_proj and o_proj"
        return f"got {got:,}, expected {want:,} (= sum of p.numel() for one layer's parameters)"

    return run_check("parameters of one layer", test, count_layer_parameters, hint="attention (q, k, v, o) + MLP (gate, up, down) + 2 norms")


# ----------------------------------------------------------------------------- 5. one greedy step
def check_greedy_step(greedy_next_token: Callable[[Any, list[int]], Any], model: Any, tokenizer: Any) -> Verdict:
    """``greedy_next_token(model, ids)``: the id of the most likely next token after ``ids``."""
    import torch

    prompts = ("The capital of France is", "1, 2, 3, 4,")

    def test(fn: Callable[[Any, list[int]], Any]) -> bool | str:
        for prompt in prompts:
            ids = tokenizer(prompt, add_special_tokens=False).input_ids
            with torch.no_grad():
                logits = model(input_ids=torch.tensor([ids])).logits[0]
                got = fn(model, list(ids))
            if got is None:
                raise NotImplementedError
            try:
                got = int(got)
            except (TypeError, ValueError):
                return f"return one token id (an int), got {type(got).__name__}"
            want = int(torch.argmax(logits[-1]))
            if got == want:
                continue
            shown = f"after {prompt!r} you chose {tokenizer.decode([got])!r} ({got}), the model's favourite is {tokenizer.decode([want])!r} ({want})"
            if got == int(torch.argmax(logits[0])):
                return shown + ": you used the first position's scores; the next token comes from the last one, logits[0, -1]"
            return shown
        return True

    return run_check("one greedy step", test, greedy_next_token, hint="logits = model(input_ids=torch.tensor([ids])).logits; argmax of logits[0, -1]")
