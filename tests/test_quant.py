"""course_utils.quant: round trips, granularity, model-wide quantization, size accounting, GGUF."""

from __future__ import annotations

import collections
import json
import struct

import numpy as np
import pytest
import torch
from torch import nn

from course_utils import CourseError
from course_utils import quant as Q

SCHEMES = ("absmax", "zeropoint", "minmax")


def weights(rows: int = 64, cols: int = 256, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(rows, cols, generator=g) * 0.05


def group_bound(q: Q.QTensor) -> torch.Tensor:
    """Per-weight error bound: half a step of its group (+ the fp16 rounding of a minmax minimum)."""
    half_step = q.scales.float() / 2
    return (half_step * (1 + 1e-4) + 1e-7).expand(q.n_groups, q.numel // q.n_groups).reshape(q.shape)


# ----------------------------------------------------------------------------- one tensor
@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("bits", [4, 8])
@pytest.mark.parametrize("granularity,group_size", [("tensor", None), ("channel", None), ("group", 32), ("block", 128)])
def test_round_trip_error_is_at_most_half_a_step(scheme, bits, granularity, group_size):
    w = weights()
    q = Q.quantize(w, bits=bits, scheme=scheme, granularity=granularity, group_size=group_size)
    err = (Q.dequantize(q) - w).abs()
    assert (err <= group_bound(q)).all(), f"max excess {(err - group_bound(q)).max().item():.3g}"
    codes = q.int_codes()
    if scheme == "absmax":
        assert codes.abs().max().item() == 2 ** (bits - 1) - 1  # the largest weight uses the top code
    else:
        assert q.unsigned_codes().min().item() >= 0 and q.unsigned_codes().max().item() == 2**bits - 1


@pytest.mark.parametrize("scheme", SCHEMES)
def test_int8_is_much_more_precise_than_int4(scheme):
    w = weights()
    e8 = Q.quantization_error(w, Q.quantize(w, bits=8, scheme=scheme))["rel_rms"]
    e4 = Q.quantization_error(w, Q.quantize(w, bits=4, scheme=scheme))["rel_rms"]
    assert e8 < 0.02 and e4 > 8 * e8  # 4 fewer bits: ~16x coarser steps


def test_absmax_int8_by_hand():
    w = torch.tensor([[0.1, -0.4, 0.25, 1.0], [2.0, 0.0, -1.1, 0.5]])
    q = Q.quantize(w, bits=8)
    assert q.int_codes().tolist() == [[13, -51, 32, 127], [127, 0, -70, 32]]  # round(w * 127 / max|row|)
    exact = torch.tensor([1 / 127, 2 / 127])  # max|row| / 127, stored in fp16 and never rounded down
    stored = q.scales.float().flatten()
    assert (stored >= exact).all() and (stored <= exact * (1 + 2**-10)).all()


def test_zeropoint_and_minmax_by_hand():
    w = torch.tensor([[-1.0, 0.0, 2.0, 0.6]])
    zp = Q.quantize(w, bits=8, scheme="zeropoint")  # range [-1, 2] over codes 0..255: zero at 85
    assert zp.zero_points.item() == 85
    assert zp.unsigned_codes().tolist() == [[0, 85, 255, 136]]
    mm = Q.quantize(torch.tensor([[1.0, 1.5, 2.5, 4.0]]), bits=4, scheme="minmax")  # step 0.2 from 1.0
    assert mm.zero_points.item() == 1.0 and mm.scales.float().item() == pytest.approx(0.2, abs=1e-4)
    assert mm.unsigned_codes().tolist() == [[0, 2, 7, 15]]


@pytest.mark.parametrize("scheme", ["absmax", "zeropoint"])
def test_zero_stays_exactly_zero(scheme):
    w = weights()
    w[3, 10] = 0.0
    w[5] = 0.0  # a whole row of zeros (scale 0 must not divide by zero)
    for bits in (4, 8):
        out = Q.fake_quantize(w, bits=bits, scheme=scheme)
        assert out[3, 10] == 0 and (out[5] == 0).all() and torch.isfinite(out).all()


def test_group_wise_beats_per_channel_beats_per_tensor_with_an_outlier():
    w = weights(64, 256)
    w[7, 100] = 3.0  # one outlier, ~60x the typical weight
    others = torch.ones_like(w, dtype=torch.bool)
    others[7, 100] = False

    def error(**kw):
        return (Q.fake_quantize(w, bits=4, **kw) - w).abs()[others].mean().item()

    per_tensor, per_channel, per_group = error(granularity="tensor"), error(granularity="channel"), error(group_size=32)
    assert per_group < per_channel < per_tensor
    assert per_tensor > 5 * per_group
    # the damage of per-channel stays in the outlier's row; group-wise in the outlier's group
    row_err = (Q.fake_quantize(w, bits=4, granularity="channel") - w).abs()
    assert row_err[7].mean() > 5 * row_err[8].mean()


def test_int4_codes_are_packed_two_per_byte():
    w = weights(8, 64)
    q = Q.quantize(w, bits=4, group_size=32)
    assert q.codes.dtype == torch.uint8 and q.codes.numel() == w.numel() // 2
    assert q.nbytes == w.numel() // 2 + q.n_groups * 2  # codes + fp16 scales
    assert q.bits_per_weight == pytest.approx(4.5)
    odd = torch.linspace(-1, 1, 15).reshape(1, 15)  # odd count: the last byte holds one code
    qo = Q.quantize(odd, bits=4)
    assert qo.codes.numel() == 8 and (Q.dequantize(qo) - odd).abs().max() <= qo.scales.float().item() / 2 + 1e-6
    u = qo.unsigned_codes().flatten()
    assert qo.codes[0].item() == u[0].item() | (u[1].item() << 4)


def test_dequantize_returns_the_original_dtype_and_shape():
    w = weights().to(torch.bfloat16).reshape(16, 4, 256)
    q = Q.quantize(w, bits=8)
    assert Q.dequantize(q).dtype == torch.bfloat16 and Q.dequantize(q).shape == w.shape


@pytest.mark.parametrize(
    "kwargs",
    [
        {"bits": 3}, {"bits": 16}, {"bits": 2}, {"bits": True},
        {"bits": 4, "group_size": 48},  # 48 does not divide the row length 256
        {"bits": 4, "group_size": 1},
        {"bits": 4, "group_size": 96, "granularity": "block"},  # 96 does not divide 64*256
        {"bits": 4, "scheme": "nf4"}, {"bits": 4, "granularity": "row"},
        {"bits": 4, "group_size": 32, "granularity": "channel"},
    ],
)
def test_bad_options_raise_course_errors(kwargs):
    with pytest.raises(CourseError, match="Fix:"):
        Q.quantize(weights(), **kwargs)


@pytest.mark.parametrize("bad", [torch.arange(12).reshape(3, 4), torch.ones(3, 4, dtype=torch.bool), torch.empty(0, 4),
                                 torch.tensor([[1.0, float("nan")]]), torch.tensor([[1.0, float("inf")]]), [[1.0, 2.0]]])
def test_bad_tensors_raise_course_errors(bad):
    with pytest.raises(CourseError, match="Fix:"):
        Q.quantize(bad, bits=8)


def test_group_size_error_says_what_divides_the_row():
    with pytest.raises(CourseError, match="does not divide the row length 576.*block"):
        Q.quantize(torch.zeros(4, 576), bits=4, group_size=128)
    assert Q.quantize(torch.zeros(4, 576), bits=4, group_size=128, granularity="block").n_groups == 18


# ----------------------------------------------------------------------------- model-wide
class Toy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embed = nn.Embedding(10, 64)
        self.up = nn.Linear(64, 128)
        self.down = nn.Linear(128, 64, bias=False)
        self.lm_head = nn.Linear(64, 10, bias=False)
        self.lm_head.weight = self.embed.weight  # tied, like SmolLM2

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.lm_head(self.down(torch.relu(self.up(self.embed(ids)))))


def test_quant_linear_computes_with_the_dequantized_weight():
    lin = nn.Linear(64, 32)
    ql = Q.QuantLinear.from_linear(lin, bits=4, group_size=32)
    x = torch.randn(5, 64)
    expected = nn.functional.linear(x, Q.fake_quantize(lin.weight.detach(), bits=4, group_size=32), lin.bias)
    assert torch.equal(ql(x), expected)
    assert not any(p.numel() == lin.weight.numel() for p in ql.state_dict().values())  # no fp32 weight stored


def test_quantize_model_replaces_linears_and_keeps_the_original():
    toy = Toy()
    q = Q.quantize_model(toy, bits=8)
    assert isinstance(q.up, Q.QuantLinear) and isinstance(q.down, Q.QuantLinear)
    assert isinstance(q.lm_head, nn.Linear) and not isinstance(q.lm_head, Q.QuantLinear)  # skipped (tied)
    assert isinstance(toy.up, nn.Linear) and not isinstance(toy.up, Q.QuantLinear)  # a copy was quantized
    ids = torch.tensor([[1, 2, 3]])
    assert (q(ids) - toy(ids)).abs().max() < 0.05 * toy(ids).abs().max()
    same = Q.quantize_model(toy, bits=4, group_size=32, inplace=True)
    assert same is toy and isinstance(toy.up, Q.QuantLinear)


def test_quantize_model_checks_every_layer_before_changing_anything():
    toy = Toy()
    with pytest.raises(CourseError, match="does not divide"):
        Q.quantize_model(toy, bits=4, group_size=48, inplace=True)  # 48 divides no row here
    assert not isinstance(toy.up, Q.QuantLinear)
    with pytest.raises(CourseError):
        Q.quantize_model(nn.ReLU(), bits=8)


def safetensors_data_bytes(tensors: dict[str, torch.Tensor], path) -> int:
    """Bytes of tensor data in a safetensors file: file size - 8-byte length - JSON header."""
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path))
    raw = path.read_bytes()
    (header_len,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + header_len])
    return len(raw) - 8 - header_len, header


@pytest.mark.parametrize("kw", [{"bits": 8}, {"bits": 4, "group_size": 32}, {"bits": 4, "group_size": 32, "scheme": "zeropoint"},
                                {"bits": 4, "group_size": 32, "scheme": "minmax"}])
def test_size_accounting_equals_the_formula_and_the_bytes_stored(kw, tmp_path):
    toy = Toy()
    q = Q.quantize_model(toy, **kw)
    unquantized = 4 * (10 * 64 + 128)  # embedding (= lm_head, counted once) + up.bias, fp32
    expected = unquantized + sum(Q.expected_linear_bytes(s, **kw) for s in [(128, 64), (64, 128)])
    assert Q.model_size_bytes(q) == expected
    assert sum(Q.size_breakdown(q).values()) == expected
    stored, header = safetensors_data_bytes(Q.stored_tensors(q), tmp_path / "q.safetensors")
    assert stored == expected
    assert header["up.codes"]["dtype"] == "U8"
    assert Q.model_size_bytes(toy) == 4 * sum(p.numel() for p in toy.parameters())  # tied weight once


def test_smollm2_size_accounting(hf_model, tmp_path):
    model, _ = hf_model
    n_params = sum(p.numel() for p in model.parameters())  # parameters() lists a tied weight once
    assert Q.model_size_bytes(model) == 4 * n_params == 538_060_032
    q = Q.quantize_model(model, bits=4, group_size=32)
    linears = [m for n, m in model.named_modules() if isinstance(m, nn.Linear) and n != "lm_head"]
    assert len(linears) == 30 * 7
    quantized = sum(m.weight.numel() for m in linears)
    expected = 4 * (n_params - quantized) + sum(Q.expected_linear_bytes(tuple(m.weight.shape), bits=4, group_size=32) for m in linears)
    parts = Q.size_breakdown(q)
    assert parts["codes"] == quantized // 2 and parts["scales"] == 2 * quantized // 32
    assert Q.model_size_bytes(q) == expected
    assert safetensors_data_bytes(Q.stored_tensors(q), tmp_path / "q.safetensors")[0] == expected


# ----------------------------------------------------------------------------- GGUF
def test_gguf_tensors_and_metadata():
    tensors = Q.gguf_tensors()
    assert len(tensors) == 272
    assert collections.Counter(t.type for t in tensors) == {"Q4_1": 210, "F32": 61, "Q8_0": 1}
    emb = next(t for t in tensors if t.name == "token_embd.weight")
    assert emb.shape == (49152, 576) and emb.type == "Q8_0" and emb.n_bytes == 49152 * 576 // 32 * 34
    down = next(t for t in tensors if t.name == "blk.0.ffn_down.weight")
    assert down.shape == (576, 1536) and down.n_bytes == 576 * 1536 // 32 * 20 and down.bits_per_weight == 5.0
    offsets = [t.offset for t in tensors]
    assert offsets == sorted(offsets)
    meta = Q.gguf_metadata()
    assert meta["general.architecture"] == "llama" and meta["llama.block_count"] == 30
    assert meta["general.file_type"] == 3  # MOSTLY_Q4_1
    assert meta["tokenizer.ggml.tokens"].startswith("[49152 items")


def test_hand_made_q4_1_block_by_construction():
    d, m = 0.5, -1.0
    raw = struct.pack("<ee", d, m) + bytes((j % 16) | ((15 - j % 16) << 4) for j in range(16))
    values = Q.dequantize_q4_1_block(raw)
    assert values == [d * q + m for q in list(range(16)) + list(range(15, -1, -1))]
    with pytest.raises(CourseError):
        Q.dequantize_q4_1_block(raw[:19])


@pytest.mark.parametrize("name", ["blk.0.attn_q.weight", "blk.7.ffn_down.weight", "blk.29.ffn_gate.weight"])
def test_hand_made_q4_1_dequantization_equals_gguf_exactly(name):
    reference = Q.gguf_dequantize(name)
    flat = reference.reshape(-1)
    n_blocks = flat.size // 32
    for block in [0, 1, n_blocks // 2, n_blocks - 1]:
        mine = np.array(Q.dequantize_q4_1_block(Q.q4_1_block_bytes(name, block)), dtype=np.float32)
        assert np.array_equal(mine, flat[block * 32:(block + 1) * 32])  # bit for bit
    data, kind = Q.gguf_tensor_data(name)
    assert kind == "Q4_1"
    vectorised = Q.dequantize_q4_1(data)
    assert vectorised.shape == reference.shape and np.array_equal(vectorised, reference)


def test_gguf_inspection_errors():
    with pytest.raises(CourseError):
        Q.q4_1_block_bytes("token_embd.weight")  # Q8_0, not Q4_1
    with pytest.raises(CourseError):
        Q.q4_1_block_bytes("blk.0.ffn_down.weight", block=10**9)
    with pytest.raises(CourseError):
        Q.gguf_tensor_data("no.such.tensor")
    with pytest.raises(CourseError):
        Q.gguf_tensors("/nonexistent/model.gguf")


def test_minmax_int4_g32_rebuilds_the_gguf_q4_1_blocks():
    """The fp32 weights are de-quantized Q4_1; quantizing them again with Q4_1's own recipe gives the
    file's scales, minimums and codes back exactly (only the nibble order differs)."""
    name = "blk.5.ffn_up.weight"
    w = torch.from_numpy(Q.gguf_dequantize(name))
    q = Q.quantize(w, bits=4, scheme="minmax", group_size=32)
    blocks = Q.gguf_tensor_data(name)[0].reshape(-1, 20)
    assert np.array_equal(q.scales.numpy().ravel(), blocks[:, 0:2].copy().view(np.float16).ravel())
    assert np.array_equal(q.zero_points.numpy().ravel(), blocks[:, 2:4].copy().view(np.float16).ravel())
    codes = np.concatenate([blocks[:, 4:] & 15, blocks[:, 4:] >> 4], axis=1)
    assert np.array_equal(q.unsigned_codes().numpy(), codes)
    assert torch.equal(Q.dequantize(q), w)


def test_transformers_weights_are_the_gguf_weights(hf_model):
    model, _ = hf_model
    ours = model.model.layers[0].mlp.down_proj.weight.detach().numpy()
    assert np.array_equal(ours, Q.gguf_dequantize("blk.0.ffn_down.weight"))
