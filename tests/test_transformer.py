"""course_utils.transformer against PyTorch and the real SmolLM2 (lab 02's checks: tests/test_checks_transformers.py)."""

from __future__ import annotations

import math
from itertools import islice

import pytest
import torch
import torch.nn.functional as F

from course_utils.backends import GenerationOptions
from course_utils.errors import InvalidOption
from course_utils.transformer import (
    attention_maps,
    causal_mask,
    causal_self_attention,
    generate_greedy,
    next_token_table,
    parameter_table,
    rope_rotate,
    sinusoidal_positions,
)

PROMPT = "The capital of France is"


def sdpa_reference(x, w_q, w_k, w_v, n_heads):
    """PyTorch's fused attention on the same projections, heads split the usual way."""
    batch, n, _ = x.shape
    d_out = w_q.shape[1]

    def heads(t):
        return t.view(batch, n, n_heads, d_out // n_heads).transpose(1, 2)

    out = F.scaled_dot_product_attention(heads(x @ w_q), heads(x @ w_k), heads(x @ w_v), is_causal=True)
    return out.transpose(1, 2).reshape(batch, n, d_out)


# ----------------------------------------------------------------------------- from scratch
@pytest.mark.parametrize(("batch", "n", "d", "n_heads"), [(1, 1, 4, 1), (2, 7, 16, 4), (3, 12, 24, 3)])
def test_attention_equals_scaled_dot_product_attention(batch, n, d, n_heads):
    g = torch.Generator().manual_seed(n)
    x = torch.randn(batch, n, d, generator=g)
    w_q, w_k, w_v = (torch.randn(d, d, generator=g) / math.sqrt(d) for _ in range(3))
    out, weights = causal_self_attention(x, w_q, w_k, w_v, n_heads=n_heads)
    assert out.shape == (batch, n, d)
    assert weights.shape == (batch, n_heads, n, n)
    torch.testing.assert_close(out, sdpa_reference(x, w_q, w_k, w_v, n_heads), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(weights.sum(-1), torch.ones(batch, n_heads, n))
    assert (weights.triu(1) == 0).all()


def test_unbatched_input_gives_unbatched_output():
    x, w = torch.randn(5, 8), torch.eye(8)
    out, weights = causal_self_attention(x, w, w, w, n_heads=2)
    assert out.shape == (5, 8) and weights.shape == (2, 5, 5)
    # the first token can only read itself, so its output is its own value vector
    torch.testing.assert_close(out[0], x[0])


@pytest.mark.parametrize("t", [0, 3, 6])
def test_causal_output_ignores_later_tokens(t):
    g = torch.Generator().manual_seed(t)
    x = torch.randn(8, 16, generator=g)
    w = [torch.randn(16, 16, generator=g) for _ in range(3)]
    changed = x.clone()
    changed[t + 1 :] = torch.randn(8 - t - 1, 16, generator=g)
    before, _ = causal_self_attention(x, *w, n_heads=4)
    after, _ = causal_self_attention(changed, *w, n_heads=4)
    torch.testing.assert_close(before[: t + 1], after[: t + 1])
    if t + 1 < 8:  # and the later positions do react to their own inputs
        assert not torch.allclose(before[t + 1 :], after[t + 1 :])


def test_attention_rejects_heads_that_do_not_divide():
    with pytest.raises(InvalidOption, match="heads"):
        causal_self_attention(torch.randn(3, 6), torch.eye(6), torch.eye(6), torch.eye(6), n_heads=4)


def test_causal_mask():
    assert torch.equal(causal_mask(3), torch.tensor([[1, 0, 0], [1, 1, 0], [1, 1, 1]], dtype=torch.bool))
    with pytest.raises(InvalidOption):
        causal_mask(0)


def test_sinusoidal_positions_formula():
    table = sinusoidal_positions(50, 16)
    assert table.shape == (50, 16)
    pos, i = 37, 3
    angle = pos / 10000 ** (2 * i / 16)
    assert table[pos, 2 * i].item() == pytest.approx(math.sin(angle), abs=1e-5)
    assert table[pos, 2 * i + 1].item() == pytest.approx(math.cos(angle), abs=1e-5)
    assert len({tuple(row.tolist()) for row in table}) == 50  # every position has its own pattern
    with pytest.raises(InvalidOption):
        sinusoidal_positions(4, 7)


def test_rope_scores_depend_only_on_distance():
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(1, 64, generator=g), torch.randn(1, 64, generator=g)
    scores = {(m, n): (rope_rotate(q, [m]) @ rope_rotate(k, [n]).T).item() for m, n in [(5, 2), (105, 102), (9, 9), (300, 300)]}
    assert scores[(5, 2)] == pytest.approx(scores[(105, 102)], abs=1e-3)
    assert scores[(9, 9)] == pytest.approx(scores[(300, 300)], abs=1e-3)
    assert scores[(5, 2)] != pytest.approx(scores[(9, 9)], abs=1e-3)
    assert torch.allclose(rope_rotate(q, [0]), q)  # position 0 is not rotated


def test_rope_matches_smollm2(hf_model):
    from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

    model, _ = hf_model
    cfg = model.config
    g = torch.Generator().manual_seed(1)
    q = torch.randn(1, cfg.num_attention_heads, 6, cfg.head_dim, generator=g)
    positions = torch.tensor([[0, 1, 2, 10, 100, 1000]])
    cos, sin = model.model.rotary_emb(q, positions)
    expected, _ = apply_rotary_pos_emb(q, q, cos, sin)
    ours = rope_rotate(q, positions[0], base=cfg.rope_parameters["rope_theta"])
    torch.testing.assert_close(ours, expected, atol=1e-4, rtol=1e-4)


# ----------------------------------------------------------------------------- the real model
def test_parameter_table_adds_up(hf_model):
    model, _ = hf_model
    table = parameter_table(model)
    total = sum(p.numel() for p in model.parameters())
    assert table["parameters"].sum() == total == 134_515_008
    rows = dict(zip(table["component"], table["parameters"], strict=True))
    cfg = model.config
    assert rows["attention q_proj"] == cfg.num_hidden_layers * cfg.hidden_size**2
    assert rows["attention k_proj"] == cfg.num_hidden_layers * cfg.hidden_size * cfg.num_key_value_heads * cfg.head_dim
    assert rows["token embeddings"] == cfg.vocab_size * cfg.hidden_size
    assert rows["norms (RMSNorm)"] == (2 * cfg.num_hidden_layers + 1) * cfg.hidden_size
    assert rows["lm_head (tied: reuses the token embeddings)"] == 0
    assert table["percent"].sum() == pytest.approx(100, abs=0.05)


def test_parameter_table_counts_an_untied_head():
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(vocab_size=100, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False)
    model = LlamaForCausalLM(cfg)
    table = parameter_table(model)
    rows = dict(zip(table["component"], table["parameters"], strict=True))
    assert rows["lm_head"] == 100 * 16
    assert table["parameters"].sum() == sum(p.numel() for p in model.parameters())


def test_next_token_table(hf_model):
    model, tokenizer = hf_model
    table = next_token_table(model, tokenizer, PROMPT, k=10)
    probs = table["probability"].tolist()
    assert len(table) == 10
    assert probs == sorted(probs, reverse=True)
    assert 0 < sum(probs) <= 1 + 1e-6
    ids = tokenizer(PROMPT, add_special_tokens=False, return_tensors="pt").input_ids
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0, -1]
    assert table["token_id"][0] == int(logits.argmax())
    assert probs[0] == pytest.approx(torch.softmax(logits, -1).max().item(), abs=1e-5)


def test_attention_maps_are_causal_and_restore_the_model(hf_model):
    model, tokenizer = hf_model
    before = model.config._attn_implementation
    tokens, weights = attention_maps(model, tokenizer, PROMPT)
    cfg = model.config
    n = len(tokens)
    assert "".join(tokens) == PROMPT
    assert weights.shape == (cfg.num_hidden_layers, cfg.num_attention_heads, n, n)
    torch.testing.assert_close(weights.sum(-1), torch.ones(weights.shape[:-1]), atol=1e-4, rtol=0)
    assert (weights.triu(1) == 0).all()
    assert model.config._attn_implementation == before


def test_hand_loop_with_and_without_cache_match_the_backend(hf_model, transformers_backend):
    model, tokenizer = hf_model
    prompt_ids = tokenizer(PROMPT, add_special_tokens=False).input_ids
    n = 12
    cached = generate_greedy(model, prompt_ids, n, use_cache=True)
    uncached = generate_greedy(model, prompt_ids, n, use_cache=False)
    assert len(cached.ids) == len(uncached.ids) == len(cached.seconds) == n
    assert cached.ids == uncached.ids
    backend_ids = list(islice(transformers_backend.generate_ids(prompt_ids, GenerationOptions(temperature=0.0)), n))
    assert cached.ids == backend_ids
    # the cache holds keys and values of every position fed to the model: prompt + n - 1
    cfg = model.config
    per_token = 2 * cfg.num_hidden_layers * cfg.num_key_value_heads * cfg.head_dim * 4
    assert cached.kv_cache_bytes == per_token * (len(prompt_ids) + n - 1)
    assert uncached.kv_cache_bytes == 0


def test_hand_loop_stops_at_eos(hf_model):
    model, tokenizer = hf_model
    ids = tokenizer(PROMPT, add_special_tokens=False).input_ids
    first = generate_greedy(model, ids, 1).ids[0]
    run = generate_greedy(model, ids, 5, eos_token_id=first)
    assert run.ids == [first]
