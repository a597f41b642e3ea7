"""llama.cpp's own quantizer on a real export of the bundled model, and KL divergence as llama.cpp measures it."""

from __future__ import annotations

import numpy as np
import pytest

from course_utils import evaluation as ev
from course_utils import quant
from course_utils.assets import smollm2_gguf
from course_utils.errors import DataError, InvalidOption, ModelNotFound


def test_kl_divergence_is_zero_for_the_same_model_and_grows_with_the_change():
    rng = np.random.default_rng(0)
    p = ev.log_softmax(rng.normal(size=(200, 50)))
    near = ev.log_softmax(np.log(np.exp(p)) + rng.normal(scale=0.05, size=p.shape))
    far = ev.log_softmax(np.log(np.exp(p)) + rng.normal(scale=0.5, size=p.shape))
    same = ev.divergence(p, p)
    assert same.mean_kl == 0.0 and same.p99_kl == 0.0 and same.same_top_token == 1.0 and same.n_positions == 200
    small, big = ev.divergence(p, near), ev.divergence(p, far)
    assert 0 < small.mean_kl < big.mean_kl
    assert small.mean_kl <= small.p99_kl <= small.max_kl
    assert big.same_top_token < 1.0


def test_kl_is_of_the_other_from_the_reference_not_symmetric():
    p, q = np.log([[0.99, 0.01]]), np.log([[0.5, 0.5]])
    forward = 0.99 * np.log(0.99 / 0.5) + 0.01 * np.log(0.01 / 0.5)
    assert ev.divergence(p, q).mean_kl == pytest.approx(forward)
    assert ev.divergence(q, p).mean_kl != pytest.approx(forward)


def test_p99_picks_out_the_rare_damaged_position():
    p = ev.log_softmax(np.zeros((100, 4)))
    q = p.copy()
    q[[7, 42]] = np.log([0.97, 0.01, 0.01, 0.01])  # two positions in 100 badly changed, 98 untouched
    d = ev.divergence(p, q)
    assert d.mean_kl == pytest.approx(2 * d.max_kl / 100)  # the mean hides them...
    assert d.p99_kl == pytest.approx(d.max_kl) and d.max_kl > 1  # ...the 99th percentile does not
    assert d.same_top_token == 1.0  # a uniform row's argmax is index 0, like the damaged one's: KL sees it, top-1 does not


def test_mismatched_shapes_are_one_clear_error():
    with pytest.raises(DataError, match="same shape"):
        ev.divergence(np.zeros((3, 4)), np.zeros((3, 5)))


def test_quantize_refuses_unknown_types_missing_files_and_requantizing(tmp_path):
    with pytest.raises(InvalidOption, match="unknown quantization type"):
        quant.quantize_gguf(smollm2_gguf(), tmp_path / "x.gguf", "Q4_K")
    with pytest.raises(ModelNotFound, match="no GGUF file"):
        quant.quantize_gguf(tmp_path / "missing.gguf", tmp_path / "x.gguf", "Q8_0")
    with pytest.raises(InvalidOption, match="already quantized"):  # the bundled file is Q4_1
        quant.quantize_gguf(smollm2_gguf(), tmp_path / "x.gguf", "Q8_0")
    assert not list(tmp_path.iterdir())  # nothing half-written left behind


def test_a_real_export_quantized_by_llama_cpp_keeps_the_model_and_says_what_it_holds(tmp_path, capfd):
    from course_utils import export
    from course_utils.assets import load_hf_model

    model, tokenizer = load_hf_model()
    f16 = export.export_gguf(model, tmp_path / "f16.gguf", outtype="f16")
    capfd.readouterr()
    q8 = quant.quantize_gguf(f16, tmp_path / "q8.gguf", "Q8_0", n_threads=2)
    printed = capfd.readouterr()
    assert "q8_0" not in (printed.out + printed.err).lower()  # llama.cpp's tensor-by-tensor listing stays out of the lesson
    assert quant.gguf_metadata(q8)["general.file_type"] == 7  # mostly Q8_0
    types = quant.tensor_types(q8)
    assert types["Q8_0"] > 100 and "F16" not in types  # every matrix quantized, norms stay F32
    assert q8.stat().st_size < 0.6 * f16.stat().st_size
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp")] == []

    ids = tokenizer.encode("The capital of France is Paris. The river that runs through it is the Seine.", add_special_tokens=False)
    reference = ev.next_token_logprobs(model, ids)
    from_f16, _ = ev.next_token_logprobs_llamacpp(f16, ids, n_threads=2)
    from_q8, _ = ev.next_token_logprobs_llamacpp(q8, ids, n_threads=2)
    f16_gap, q8_gap = ev.divergence(reference, from_f16), ev.divergence(reference, from_q8)
    assert f16_gap.mean_kl < 1e-3 and f16_gap.same_top_token == 1.0  # the export is faithful
    assert f16_gap.mean_kl < q8_gap.mean_kl < 0.1  # 8 bits cost a little, measurably
