"""A transformer opened up: attention from scratch, positions, parameter counts, the token loop.

Lesson 02 and its lab build on these pieces. The from-scratch functions work on plain tensors; the
others take a Hugging Face causal LM (SmolLM2-135M-Instruct by default, from
:func:`course_utils.assets.load_hf_model`) and show what is inside it.

>>> import torch
>>> x = torch.randn(4, 8)                      # 4 tokens, 8 dimensions
>>> w = [torch.randn(8, 8) for _ in range(3)]  # W_q, W_k, W_v
>>> out, weights = causal_self_attention(x, *w, n_heads=2)
>>> tuple(out.shape), tuple(weights.shape)     # (tokens, dims), (heads, queries, keys)
((4, 8), (2, 4, 4))
>>> bool(weights[0, 0, 1:].sum() == 0)         # token 0 sees only itself
True

torch and transformers are imported inside the functions that need them (the module docstring
above imports torch only for the example), so ``import course_utils`` stays fast.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import InvalidOption

if TYPE_CHECKING:  # imported lazily: torch/pandas take seconds to import
    import pandas as pd
    import torch


# ----------------------------------------------------------------------------- attention from scratch
def causal_mask(n: int) -> torch.Tensor:
    """(n, n) boolean mask, True where query i may look at key j, that is where j <= i.

    >>> causal_mask(3).int()
    tensor([[1, 0, 0],
            [1, 1, 0],
            [1, 1, 1]], dtype=torch.int32)
    """
    import torch

    if n < 1:
        raise InvalidOption(f"a causal mask needs at least one position, got n={n}", fix="pass n >= 1")
    return torch.ones(n, n, dtype=torch.bool).tril()


def causal_self_attention(
    x: torch.Tensor, w_q: torch.Tensor, w_k: torch.Tensor, w_v: torch.Tensor, n_heads: int = 1
) -> tuple[torch.Tensor, torch.Tensor]:
    """Multi-head causal self-attention, step by step (no output projection).

    ``x`` is (tokens, d_in) or (batch, tokens, d_in); each weight is (d_in, d_out), and d_out must
    split evenly into ``n_heads`` heads. Returns ``(output, weights)``: output has the shape of
    ``x`` with d_out last, weights is (heads, tokens, tokens) (batch first if ``x`` had one), and
    ``weights[h, i, j]`` is how much token i reads from token j in head h.
    """
    import torch

    unbatched = x.dim() == 2
    if unbatched:
        x = x.unsqueeze(0)
    if x.dim() != 3:
        raise InvalidOption(f"x must be (tokens, dims) or (batch, tokens, dims), got shape {tuple(x.shape)}", fix="reshape x")
    d_out = w_q.shape[-1]
    if n_heads < 1 or d_out % n_heads:
        raise InvalidOption(f"{d_out} output dimensions do not split into {n_heads} heads", fix="pick n_heads that divides w_q.shape[1]")
    batch, n, _ = x.shape
    head_dim = d_out // n_heads

    def split_heads(t: torch.Tensor) -> torch.Tensor:  # (B, T, d_out) -> (B, H, T, head_dim)
        return t.view(batch, n, n_heads, head_dim).transpose(1, 2)

    q, k, v = split_heads(x @ w_q), split_heads(x @ w_k), split_heads(x @ w_v)
    # 1. scores: how well each query matches each key; dividing by sqrt(head_dim) keeps their
    #    spread near 1 whatever the size, so softmax does not saturate into a one-hot
    scores = q @ k.transpose(-2, -1) / math.sqrt(head_dim)
    # 2. causal mask: a token may not look at later tokens (-inf becomes probability 0)
    scores = scores.masked_fill(~causal_mask(n), float("-inf"))
    # 3. softmax over the keys: each row becomes weights that add up to 1
    weights = torch.softmax(scores, dim=-1)
    # 4. weighted sum of the values, then put the heads side by side again
    out = (weights @ v).transpose(1, 2).reshape(batch, n, d_out)
    if unbatched:
        return out[0], weights[0]
    return out, weights


# ----------------------------------------------------------------------------- positions
def sinusoidal_positions(n: int, d: int, base: float = 10000.0) -> torch.Tensor:
    """The (n, d) position table of the original Transformer (Vaswani et al. 2017).

    Dimension pair (2i, 2i+1) holds sin and cos of ``pos / base**(2i/d)``: fast waves in the first
    dimensions, slow ones in the last, so every position gets its own pattern. It is *added* to the
    token embeddings.

    SmolLM2 (like Llama, Qwen, Mistral) uses **RoPE** instead (:func:`rope_rotate`): no table is
    added; the queries and keys of every head are *rotated* by angles ``pos * base**(-2i/d)``, the
    same frequencies as here. The score q·k then depends on the positions only through their
    distance, which is what attention needs.

    >>> sinusoidal_positions(2, 4)
    tensor([[0.0000, 1.0000, 0.0000, 1.0000],
            [0.8415, 0.5403, 0.0100, 0.9999]])
    """
    import torch

    if n < 1 or d < 2 or d % 2:
        raise InvalidOption(f"need n >= 1 positions and an even d >= 2 dimensions, got n={n}, d={d}", fix="use an even d, e.g. d=64")
    pos = torch.arange(n, dtype=torch.float32)[:, None]
    freq = base ** (-torch.arange(0, d, 2, dtype=torch.float32) / d)  # (d/2,)
    table = torch.empty(n, d)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq)
    return table


def rope_rotate(x: torch.Tensor, positions: Sequence[int] | torch.Tensor, base: float = 10000.0) -> torch.Tensor:
    """Rotary position embedding (RoPE) as Llama-style models apply it to queries and keys.

    ``x`` is (..., tokens, d) with even d; ``positions`` gives each token's position. Dimension i of
    the first half is paired with dimension i of the second half (the "rotate half" layout of
    Hugging Face's Llama) and the pair is rotated by ``pos * base**(-2i/d)``. SmolLM2 uses
    ``base = config.rope_parameters["rope_theta"]`` (100,000).
    """
    import torch

    d = x.shape[-1]
    if d % 2:
        raise InvalidOption(f"RoPE needs an even number of dimensions, got {d}", fix="use an even head dimension")
    pos = torch.as_tensor(positions, dtype=torch.float32)[:, None]
    angles = pos * base ** (-torch.arange(0, d, 2, dtype=torch.float32) / d)  # (tokens, d/2)
    cos, sin = torch.cos(angles).repeat(1, 2), torch.sin(angles).repeat(1, 2)
    first, second = x[..., : d // 2], x[..., d // 2 :]
    rotated_half = torch.cat([-second, first], dim=-1)
    return x * cos + rotated_half * sin


# ----------------------------------------------------------------------------- what is in the model
# (component, words in the parameter name): the first rule that matches a name wins
_COMPONENTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("token embeddings", ("embed_tokens",)),
    ("attention q_proj", ("q_proj",)),
    ("attention k_proj", ("k_proj",)),
    ("attention v_proj", ("v_proj",)),
    ("attention o_proj", ("o_proj",)),
    ("MLP gate_proj", ("gate_proj",)),
    ("MLP up_proj", ("up_proj",)),
    ("MLP down_proj", ("down_proj",)),
    ("norms (RMSNorm)", ("norm",)),
    ("lm_head", ("lm_head",)),
)


def parameter_table(model: Any) -> pd.DataFrame:
    """Parameters per component of a Llama-style model, with their share of the total.

    Columns: ``component``, ``tensors`` (how many weight tensors), ``parameters`` and ``percent``.
    Each tensor is counted once, so the column ``parameters`` adds up to
    ``sum(p.numel() for p in model.parameters())``. When the output layer reuses the embedding
    matrix (tied weights, as in SmolLM2) the ``lm_head`` row says so and counts 0; names that match
    no rule land in ``other``.
    """
    import pandas as pd

    counts: dict[str, list[int]] = {name: [0, 0] for name, _ in _COMPONENTS}
    counts["other"] = [0, 0]
    # named_parameters() lists a shared (tied) tensor once, under its first name
    for name, param in model.named_parameters():
        component = next((c for c, words in _COMPONENTS if any(w in name for w in words)), "other")
        counts[component][0] += 1
        counts[component][1] += param.numel()
    total = sum(n for _, n in counts.values())
    rows = []
    for component, (tensors, n) in counts.items():
        if component == "lm_head" and tensors == 0 and _lm_head_is_tied(model):
            component = "lm_head (tied: reuses the token embeddings)"
        elif tensors == 0:
            continue
        rows.append({"component": component, "tensors": tensors, "parameters": n, "percent": round(100 * n / total, 2)})
    return pd.DataFrame(rows)


def _lm_head_is_tied(model: Any) -> bool:
    head, embed = getattr(model, "lm_head", None), getattr(model, "get_input_embeddings", lambda: None)()
    return head is not None and embed is not None and head.weight is embed.weight


def _encode(tokenizer: Any, text: str) -> torch.Tensor:
    """(1, tokens) ids of plain text, no special tokens added: the way the backends tokenize."""
    if not isinstance(text, str) or not text:
        raise InvalidOption(f"text must be a non-empty string, got {text!r:.40}", fix="pass some text")
    return tokenizer(text, return_tensors="pt", add_special_tokens=False).input_ids


def next_token_table(model: Any, tokenizer: Any, prompt: str, k: int = 10) -> pd.DataFrame:
    """The k most likely next tokens after ``prompt``: rank, token_id, token, probability.

    Probabilities are sorted from most to least likely; the k shown add up to at most 1 (the rest
    of the vocabulary shares what is left).
    """
    import pandas as pd
    import torch

    if k < 1:
        raise InvalidOption(f"k must be >= 1, got {k}", fix="pass k=10")
    ids = _encode(tokenizer, prompt)
    with torch.inference_mode():
        logits = model(input_ids=ids, logits_to_keep=1).logits[0, -1]
    probs = torch.softmax(logits.float(), dim=-1)
    top = torch.topk(probs, min(k, probs.numel()))
    return pd.DataFrame(
        {
            "rank": range(1, len(top.indices) + 1),
            "token_id": top.indices.tolist(),
            "token": [repr(tokenizer.decode([i])) for i in top.indices.tolist()],
            "probability": top.values.tolist(),
        }
    )


def attention_maps(model: Any, tokenizer: Any, text: str) -> tuple[list[str], torch.Tensor]:
    """Attention weights of every layer and head for ``text``.

    Returns ``(tokens, weights)`` with ``weights`` of shape (layers, heads, tokens, tokens).
    The fast attention kernels (SDPA, flash) never build the weight matrix, so the model is switched
    to the plain "eager" implementation for this one pass and switched back afterwards.
    """
    import torch

    ids = _encode(tokenizer, text)
    before = model.config._attn_implementation
    model.set_attn_implementation("eager")
    try:
        with torch.inference_mode():
            out = model(input_ids=ids, output_attentions=True, logits_to_keep=1)
    finally:
        model.set_attn_implementation(before)
    tokens = [tokenizer.decode([i]) for i in ids[0].tolist()]
    return tokens, torch.stack([a[0] for a in out.attentions])


# ----------------------------------------------------------------------------- the generation loop
@dataclass
class GreedyRun:
    """What :func:`generate_greedy` produced: the new token ids and the seconds each one took."""

    ids: list[int]
    seconds: list[float]
    use_cache: bool
    prompt_tokens: int
    kv_cache_bytes: int = 0  # size of the keys and values kept at the end (0 without a cache)

    @property
    def total_seconds(self) -> float:
        return sum(self.seconds)


def generate_greedy(
    model: Any,
    ids: Sequence[int] | torch.Tensor,
    max_new_tokens: int,
    use_cache: bool = True,
    eos_token_id: int | None = None,
) -> GreedyRun:
    """Greedy decoding written out: run the model, take the most likely token, append, repeat.

    * ``use_cache=False``: every step runs the model on the *whole* sequence again, so step t costs
      work proportional to the prompt plus t tokens.
    * ``use_cache=True``: the first step (prefill) runs the prompt once and a ``DynamicCache`` keeps
      every layer's keys and values; each later step feeds only the newest token.

    Both compute the same thing, so they choose the same tokens. ``seconds[i]`` is the wall time of
    step i (step 0 includes reading the prompt). Stops early after ``eos_token_id`` if given.
    """
    import torch
    from transformers import DynamicCache

    if max_new_tokens < 1:
        raise InvalidOption(f"max_new_tokens must be >= 1, got {max_new_tokens}", fix="pass max_new_tokens=48")
    sequence = torch.as_tensor(ids, dtype=torch.long).reshape(1, -1)
    if sequence.shape[1] == 0:
        raise InvalidOption("the prompt has no tokens", fix="pass at least one token id")
    prompt_tokens = sequence.shape[1]
    cache = DynamicCache() if use_cache else None
    inputs = sequence
    new_ids: list[int] = []
    seconds: list[float] = []
    with torch.inference_mode():
        for _ in range(max_new_tokens):
            start = time.perf_counter()
            # logits_to_keep=1: only the last position's scores are needed to choose a token
            out = model(input_ids=inputs, past_key_values=cache, use_cache=use_cache, logits_to_keep=1)
            token = int(torch.argmax(out.logits[0, -1]))
            seconds.append(time.perf_counter() - start)
            new_ids.append(token)
            if token == eos_token_id:
                break
            sequence = torch.cat([sequence, torch.tensor([[token]])], dim=1)
            # with a cache the model already holds the past: feed just the new token
            inputs = sequence[:, -1:] if use_cache else sequence
    return GreedyRun(new_ids, seconds, use_cache, prompt_tokens, kv_cache_bytes=cache_bytes(cache) if cache is not None else 0)


def cache_bytes(cache: Any) -> int:
    """Bytes held by the keys and values of a transformers ``DynamicCache``."""
    return sum(
        t.numel() * t.element_size()
        for layer in getattr(cache, "layers", [])
        for t in (getattr(layer, "keys", None), getattr(layer, "values", None))
        if t is not None
    )
