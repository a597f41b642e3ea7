"""GGUF export (course_utils.export): tensor layout, files llama.cpp loads and runs, the Ollama Modelfile."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from course_utils import export, lora
from course_utils.errors import DataError, InvalidOption

PROMPT = "The capital of France is Paris, and the capital of Italy is"


def llama_logits(path, ids: list[int]) -> np.ndarray:
    """Logits of every position from llama.cpp (fresh context, all logits kept)."""
    from llama_cpp import Llama

    from course_utils.backends.llamacpp import quiet_stderr

    with quiet_stderr():
        llm = Llama(model_path=str(path), n_ctx=128, logits_all=True, n_threads=2, verbose=False)
    try:
        llm.eval(ids)
        return np.array(llm.scores[: len(ids)], dtype=np.float32)
    finally:
        llm.close()


@pytest.fixture(scope="module")
def tiny_llama():
    """A small random Llama with SmolLM2's vocabulary: untied output, grouped-query attention."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=49152, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         rms_norm_eps=1e-5, tie_word_embeddings=False, initializer_range=0.2)
    return LlamaForCausalLM(config).eval()


def test_permute_qk_interleaves_the_halves_of_each_head():
    w = np.arange(16).reshape(16, 1)
    assert export.permute_qk(w, n_head=2)[:, 0].tolist() == [0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11, 15]
    t = torch.randn(24, 3)
    assert torch.equal(export.permute_qk(t, 3), torch.from_numpy(export.permute_qk(t.numpy(), 3)))
    with pytest.raises(InvalidOption):
        export.permute_qk(np.zeros((6, 2)), n_head=4)


def test_f32_export_of_the_base_model_equals_the_bundled_gguf(hf_model):
    """Our names, shapes, order and q/k permutation reproduce the bundled file's tensors bit for bit."""
    import gguf

    from course_utils.assets import smollm2_gguf

    bundled = {t.name: t for t in gguf.GGUFReader(str(smollm2_gguf())).tensors}
    ours = list(export.gguf_tensors_of(hf_model[0], "f32"))
    assert [name for name, _, _ in ours] and {name for name, _, _ in ours} == set(bundled)
    for name, data, _ in ours:
        want = gguf.quants.dequantize(bundled[name].data, bundled[name].tensor_type)
        assert data.shape == want.shape, name
        assert np.array_equal(data, want), name


def test_tensor_types(tiny_llama):
    kinds = {name: (data, q.name) for name, data, q in export.gguf_tensors_of(tiny_llama, "q8_0")}
    assert kinds["blk.0.attn_norm.weight"][1] == "F32"  # norms stay f32
    assert kinds["output.weight"][1] == "Q8_0"  # untied output layer is exported
    import gguf

    w = tiny_llama.model.layers[0].mlp.up_proj.weight.detach().numpy()
    back = gguf.quants.dequantize(kinds["blk.0.ffn_up.weight"][0], gguf.GGMLQuantizationType.Q8_0)
    assert np.abs(back - w).max() <= np.abs(w).max() / 127  # 8-bit blocks: small error
    f16 = {name: data for name, data, _ in export.gguf_tensors_of(tiny_llama, "f16")}
    assert f16["token_embd.weight"].dtype == np.float16


def test_exported_tiny_model_gives_the_same_logits_in_llama_cpp(tiny_llama, hf_model, tmp_path):
    _, tok = hf_model
    path = export.export_gguf(tiny_llama, tmp_path / "tiny.gguf", outtype="f32")
    ids = tok.encode(PROMPT, add_special_tokens=False)
    with torch.no_grad():
        want = tiny_llama(input_ids=torch.tensor([ids])).logits[0].numpy()
    got = llama_logits(path, ids)
    assert got.shape == want.shape
    # llama.cpp keeps its KV cache in f16: ~1e-3 relative error. Without the q/k permutation the
    # difference is ~10 (measured), and the top tokens disagree almost everywhere.
    assert np.abs(got - want).max() < 0.01 * np.abs(want).max() + 0.01
    assert (got.argmax(-1) == want.argmax(-1)).mean() >= 0.9
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.gguf"]  # no temporary file left


def test_merged_lora_model_exports_loads_and_generates(hf_model, tmp_path):
    from course_utils.backends import get_backend

    base, tok = hf_model
    model = copy.deepcopy(base)
    lora.inject_lora(model, r=4, alpha=8)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for layer in lora.lora_layers(model).values():
            layer.lora_B.copy_(torch.randn(layer.lora_B.shape, generator=g) * 0.01)
    with pytest.raises(InvalidOption, match="merge_lora"):
        export.export_gguf(model, tmp_path / "unmerged.gguf")
    lora.merge_lora(model)
    path = export.export_gguf(model, tmp_path / "merged.gguf", name="test merge")
    assert 250e6 < path.stat().st_size < 290e6  # f16: 2 bytes per weight (+ f32 norms, tokenizer)

    # the file carries the *merged* weights: llama.cpp's logits follow the merged model, not the base
    ids = tok.encode(PROMPT, add_special_tokens=False)
    with torch.no_grad():
        merged_logits = model(input_ids=torch.tensor([ids])).logits[0].numpy()
        base_logits = base(input_ids=torch.tensor([ids])).logits[0].numpy()
    got = llama_logits(path, ids)
    assert np.abs(merged_logits - base_logits).max() > 0.3
    assert np.abs(got - merged_logits).max() < 0.25 * np.abs(merged_logits - base_logits).max()

    # and it chats through the course backend (chat template and tokenizer copied into the file)
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    with get_backend("llamacpp", model=str(path)) as served:
        text = served.chat(messages, max_tokens=16).text
        info = served.info()
    assert info.quantization == "F16"
    assert text.strip() == lora.generate(model, tok, [messages[0]["content"]], max_new_tokens=16)[0]


def test_export_errors(tiny_llama, tmp_path):
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    with pytest.raises(InvalidOption, match="outtype"):
        export.export_gguf(tiny_llama, tmp_path / "x.gguf", outtype="q4_k")
    small_vocab = LlamaForCausalLM(LlamaConfig(vocab_size=100, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                               num_attention_heads=2, num_key_value_heads=2))
    with pytest.raises(DataError, match="tokenizer_gguf"):
        export.export_gguf(small_vocab, tmp_path / "x.gguf")
    gpt2 = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=100))
    with pytest.raises(InvalidOption, match="convert_hf_to_gguf"):
        export.export_gguf(gpt2, tmp_path / "x.gguf")
    with pytest.raises(DataError):
        export.export_gguf(tiny_llama, tmp_path / "x.gguf", tokenizer_gguf=tmp_path / "missing.gguf")
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_modelfile(tmp_path):
    gguf_file = tmp_path / "models" / "dates.gguf"
    with pytest.raises(DataError, match="export"):
        export.write_modelfile(gguf_file)
    gguf_file.parent.mkdir()
    gguf_file.write_bytes(b"GGUF")
    path = export.write_modelfile(gguf_file, parameters={"num_ctx": 2048})
    assert path == tmp_path / "models" / "Modelfile"
    text = path.read_text()
    lines = text.splitlines()
    assert lines[0] == "FROM ./dates.gguf"  # relative: the folder can be moved as a whole
    assert 'SYSTEM """You are a helpful AI assistant named SmolLM, trained by Hugging Face"""' in text
    assert 'PARAMETER stop "<|im_end|>"' in lines and "PARAMETER temperature 0" in lines and "PARAMETER num_ctx 2048" in lines
    template = text.split('TEMPLATE """')[1].split('"""')[0]
    assert "<|im_start|>{{ .Role }}" in template and template.endswith("<|im_start|>assistant\n")
    assert template.count("{{") == template.count("}}")
    above = export.write_modelfile(gguf_file, tmp_path / "Modelfile", system=None)
    assert above.read_text().splitlines()[0] == "FROM ./models/dates.gguf" and "SYSTEM" not in above.read_text()
    elsewhere = export.write_modelfile(gguf_file, tmp_path / "other" / "Modelfile")
    assert elsewhere.read_text().splitlines()[0] == f"FROM {gguf_file.resolve().as_posix()}"  # not below: absolute
