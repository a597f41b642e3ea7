"""llama.cpp's converter (course_utils.gguf_convert) against the course's own GGUF writer, on the same model."""

from __future__ import annotations

import json

import pytest
import torch

from course_utils import export, gguf_convert
from course_utils.errors import DataError, InvalidOption, ModelNotFound


@pytest.fixture(scope="module")
def saved_tiny_llama(tmp_path_factory, hf_model):
    """A small random Llama (untied output, grouped-query attention) saved with SmolLM2's tokenizer."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=49152, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         rms_norm_eps=1e-5, tie_word_embeddings=False, initializer_range=0.2)
    model = LlamaForCausalLM(config).eval()
    folder = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(folder)
    hf_model[1].save_pretrained(folder)
    return model, folder


def test_llamacpps_converter_and_ours_write_the_same_tensors(saved_tiny_llama, tmp_path):
    model, folder = saved_tiny_llama
    ours = export.export_gguf(model, tmp_path / "ours.gguf", outtype="f16")
    theirs = gguf_convert.convert_with_llamacpp(folder, tmp_path / "theirs.gguf", outtype="f16")
    same = gguf_convert.compare_gguf(ours, theirs)
    assert same.same_tensors, str(same)  # the q/k permutation, names, shapes and f16/f32 choices all agree
    assert same.tensors == 2 + 1 + 9 * 2  # embeddings, output norm, output + 9 per layer
    assert "bit for bit" in str(same)


def test_the_comparison_sees_a_changed_weight_and_a_changed_type(saved_tiny_llama, tmp_path):
    model, _ = saved_tiny_llama
    base = export.export_gguf(model, tmp_path / "a.gguf", outtype="f16")
    as_f32 = export.export_gguf(model, tmp_path / "b.gguf", outtype="f32")
    changed = model.__class__(model.config).eval()
    changed.load_state_dict(model.state_dict())
    with torch.no_grad():
        changed.model.layers[1].mlp.down_proj.weight[0, 0] += 1.0
    edited = export.export_gguf(changed, tmp_path / "c.gguf", outtype="f16")
    by_type = gguf_convert.compare_gguf(base, as_f32)
    assert not by_type.same_tensors and "blk.0.attn_q.weight" in by_type.type_differences
    assert "blk.0.attn_norm.weight" not in by_type.type_differences  # norms are f32 in both
    by_value = gguf_convert.compare_gguf(base, edited)
    assert not by_value.same_tensors and not by_value.type_differences
    assert by_value.max_abs_difference == pytest.approx(1.0, abs=0.01)


def test_clear_errors_and_nothing_half_written(saved_tiny_llama, tmp_path, monkeypatch):
    _, folder = saved_tiny_llama
    with pytest.raises(InvalidOption, match="quantize_gguf"):
        gguf_convert.convert_with_llamacpp(folder, tmp_path / "x.gguf", outtype="q4_k_m")
    with pytest.raises(ModelNotFound, match="config.json"):
        gguf_convert.convert_with_llamacpp(tmp_path, tmp_path / "x.gguf")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text(json.dumps({"architectures": ["NoSuchModel"]}))
    with pytest.raises(DataError, match="converter failed"):
        gguf_convert.convert_with_llamacpp(broken, tmp_path / "x.gguf")
    assert not list(tmp_path.glob("*.gguf")) and not list(tmp_path.glob(".tmp-*"))
    with pytest.raises(DataError, match="cannot read"):
        gguf_convert.compare_gguf(broken / "config.json", broken / "config.json")
    monkeypatch.setattr(gguf_convert, "converter_dir", lambda: tmp_path / "nowhere")
    with pytest.raises(ModelNotFound, match="install.sh"):
        gguf_convert.convert_with_llamacpp(folder, tmp_path / "x.gguf")
