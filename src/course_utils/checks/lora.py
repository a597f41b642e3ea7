"""Checks for lab 08 (LoRA): the forward pass, parameter counting, merging, SFT labels, q/k permutation.

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

from . import Verdict, close_enough, run_check

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
        alpha, r = 8.0, 2
        want = x @ W.T + (alpha / r) * (x @ A.T) @ B.T
        got = _tensor(fn(x.clone(), W.clone(), A.clone(), B.clone(), alpha, r))
        if tuple(got.shape) != tuple(want.shape):
            return f"the output should have shape {tuple(want.shape)} (one row per input, out features), got {tuple(got.shape)}"
        if close_enough(got, want, 1e-5):
            zero = _tensor(fn(x.clone(), W.clone(), A.clone(), B.clone() * 0, alpha, r))
            return True if close_enough(zero, x @ W.T, 1e-5) else "with B = 0 the output must equal x @ W.T"
        if close_enough(got, x @ W.T + (x @ A.T) @ B.T, 1e-5):
            return "the update is not scaled: multiply it by alpha / r (here 8 / 2 = 4)"
        if close_enough(got, x @ W.T + (r / alpha) * (x @ A.T) @ B.T, 1e-5):
            return "the scaling is upside down: it is alpha / r, not r / alpha"
        if close_enough(got, (alpha / r) * (x @ A.T) @ B.T, 1e-5):
            return "only the update is returned: add the frozen layer's output x @ W.T"
        if close_enough(got, x @ W.T, 1e-5):
            return "the update is missing: add (alpha / r) * (x @ A.T) @ B.T"
        return "the result differs from x @ W.T + (alpha / r) * (x @ A.T) @ B.T"

    return run_check("LoRA forward", test, lora_forward, hint="x @ W.T + (alpha / r) * (x @ A.T) @ B.T; A is (r, in), B is (out, r)")


# ----------------------------------------------------------------------------- 2. parameter count
def check_lora_param_count(count_lora_parameters: Callable[..., Any], model: Any) -> Verdict:
    """``count_lora_parameters(model, targets, r)``: adapter weights added to the layers named ``targets``."""
    cases: list[tuple[tuple[str, ...], int]] = [
        (("q_proj", "k_proj", "v_proj", "o_proj"), 8),
        (("q_proj", "v_proj"), 4),
        (("gate_proj", "up_proj", "down_proj"), 16),
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
            if int(got) == want:
                continue
            full = sum(m.in_features * m.out_features for n, m in model.named_modules() if n.rpartition(".")[2] in targets and hasattr(m, "in_features"))
            if int(got) == full:
                return f"that is the size of the frozen weights ({full:,}); LoRA adds r * (in + out) per layer, not in * out"
            if int(got) * model.config.num_hidden_layers == want:
                return f"you counted one decoder layer only; there are {model.config.num_hidden_layers}"
            if int(got) == want // r:
                return "the rank r is missing: A has r rows, B has r columns"
            return f"for targets={targets} and r={r} expected {want:,}, got {int(got):,}"
        return True

    return run_check("LoRA parameter count", test, count_lora_parameters,
                     hint="walk model.named_modules(); for each name ending in a target, add r * (in_features + out_features)")


# ----------------------------------------------------------------------------- 3. merging
def check_merge(merge_weights: Callable[..., Any], lora_forward: Callable[..., Any] | None = None) -> Verdict:
    """``merge_weights(W, A, B, alpha, r)``: the weight ``W + (alpha / r) B A`` of the merged layer."""

    def test(fn: Callable[..., Any]) -> bool | str:
        x, W, A, B = _toy(1)
        alpha, r = 4.0, 2
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
        if close_enough(got, W_before + B @ A, 1e-5):
            return "the update is not scaled: multiply B @ A by alpha / r"
        if not close_enough(got, want, 1e-5):
            return "the merged weight differs from W + (alpha / r) * B @ A"
        if lora_forward is not None:  # the whole point: one matmul with W' = the LoRA layer
            try:
                same = close_enough(x @ got.T, _tensor(lora_forward(x, W_before, A, B, alpha, r)), 1e-4)
            except NotImplementedError:
                same = True
            if not same:
                return "x @ merged.T should equal your lora_forward(x, ...): check exercise 1 too"
        return True

    return run_check("merge", test, merge_weights, hint="W + (alpha / r) * (B @ A), shape (out, in) like W")


# ----------------------------------------------------------------------------- 4. SFT labels
def check_sft_labels(sft_example: Callable[..., Any], tokenizer: Any) -> Verdict:
    """``sft_example(prompt_ids, answer_ids)`` -> ``(input_ids, labels)`` with -100 on the prompt."""
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "Give the date in ISO format: 5 May 2020"}],
                                           tokenize=False, add_generation_prompt=True)
    prompt_ids = tokenizer.encode(prompt, add_special_tokens=False)
    answer_ids = tokenizer.encode("2020-05-05" + tokenizer.eos_token, add_special_tokens=False)

    def test(fn: Callable[..., Any]) -> bool | str:
        out = fn(list(prompt_ids), list(answer_ids))
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

    return run_check("SFT labels", test, sft_example, hint="[-100] * len(prompt_ids) + answer_ids")


# ----------------------------------------------------------------------------- 5. llama.cpp's q/k layout
def check_qk_permutation(permute: Callable[[Any, int], Any], model: Any, gguf_path: Any = None) -> Verdict:
    """``permute(w, n_head)`` puts q/k rows in llama.cpp's order; compared with the bundled GGUF file."""
    import numpy as np

    def as_array(v: Any) -> Any:
        return v.detach().numpy() if hasattr(v, "detach") else np.asarray(v)

    def test(fn: Callable[[Any, int], Any]) -> bool | str:
        from ..quant import gguf_dequantize

        small = np.arange(8).reshape(8, 1)
        got_small = as_array(fn(small.copy(), 1))
        if got_small.shape != small.shape:
            return f"the shape must not change: {small.shape} in, {got_small.shape} out"
        if got_small[:, 0].tolist() == [0, 2, 4, 6, 1, 3, 5, 7]:
            return "that is the inverse permutation: rows 0..d/2-1 and d/2..d-1 must be interleaved (0, 4, 1, 5, ...)"
        if got_small[:, 0].tolist() != [0, 4, 1, 5, 2, 6, 3, 7]:
            return f"for one head of 8 rows expected rows [0, 4, 1, 5, 2, 6, 3, 7], got {got_small[:, 0].tolist()}"
        attn = model.model.layers[0].self_attn
        cfg = model.config
        for hf, gguf_name, heads in ((attn.q_proj, "blk.0.attn_q.weight", cfg.num_attention_heads),
                                      (attn.k_proj, "blk.0.attn_k.weight", cfg.num_key_value_heads)):
            got = as_array(fn(hf.weight.detach().numpy().copy(), heads))
            want = gguf_dequantize(gguf_name, gguf_path)
            if got.shape != want.shape or not np.array_equal(got, want):
                return f"{gguf_name} in the GGUF file differs from your permutation of the model's weight with n_head={heads}; permute within each head, not across the whole matrix"
        return True

    return run_check("q/k permutation", test, permute,
                     hint="w.reshape(n_head, 2, d // 2, in).swapaxes(1, 2).reshape(w.shape), with d = rows per head")
