"""From a PyTorch model to a GGUF file that llama.cpp, Ollama, LM Studio and GPT4All can run.

A GGUF file is a header of key/value **metadata** (architecture sizes, tokenizer, chat template)
followed by named **tensors**. :func:`export_gguf` writes one directly from a transformers model
with the ``gguf`` library's ``GGUFWriter``; no converter script is needed:

1. **metadata** from the model's config (``llama.block_count``, ``llama.attention.head_count``,
   ...), and the tokenizer (vocabulary, merges, special tokens, chat template) copied from a GGUF
   with the same vocabulary: by default the bundled SmolLM2 file, which the model came from;
2. **tensors** renamed to llama.cpp's names (``model.layers.3.self_attn.q_proj.weight`` ->
   ``blk.3.attn_q.weight``), matrices stored as f16 (or f32 / Q8_0), norms as f32;
3. one subtle step: llama.cpp applies RoPE to *adjacent* pairs of a head's dimensions (0,1),
   (2,3), ..., while Hugging Face's Llama code pairs each dimension with the one half a head away
   (0,32), (1,33), .... So the rows of ``q_proj`` and ``k_proj`` are **permuted** within each head
   (:func:`permute_qk`), exactly as llama.cpp's own ``convert_hf_to_gguf.py`` does. Forget it and
   the file loads fine but the model talks nonsense.

>>> import numpy as np
>>> w = np.arange(8).reshape(8, 1)          # one head of dimension 8: rows 0..7
>>> permute_qk(w, n_head=1)[:, 0].tolist()  # halves interleaved: (0, 4), (1, 5), ...
[0, 4, 1, 5, 2, 6, 3, 7]

:func:`write_modelfile` writes the Ollama ``Modelfile`` that serves the exported file
(``ollama create NAME -f Modelfile``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import DataError, InvalidOption
from .paths import atomic_output, atomic_write_text

OUTTYPES = ("f32", "f16", "q8_0")
SUPPORTED_ARCHITECTURES = ("llama",)  # SmolLM2, Llama 2/3, TinyLlama, ... share this layout
# Hugging Face name inside a decoder layer -> llama.cpp name inside "blk.N."
LAYER_TENSORS = {
    "input_layernorm.weight": "attn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.o_proj.weight": "attn_output.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
}
OTHER_TENSORS = {
    "model.embed_tokens.weight": "token_embd.weight",
    "model.norm.weight": "output_norm.weight",
    "lm_head.weight": "output.weight",
}
# SmolLM2's chat format (ChatML) as an Ollama (Go) template, and the system prompt its own
# template inserts when a conversation has none: serving must reproduce the training prompt.
CHATML_TEMPLATE = """{{- if .System }}<|im_start|>system
{{ .System }}<|im_end|>
{{ end }}
{{- range .Messages }}
{{- if or (eq .Role "user") (eq .Role "assistant") }}<|im_start|>{{ .Role }}
{{ .Content }}<|im_end|>
{{ end }}
{{- end }}<|im_start|>assistant
"""
SMOLLM2_SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"


# ----------------------------------------------------------------------------- tensors
def permute_qk(w: Any, n_head: int) -> Any:
    """Reorder the rows of a q/k projection from Hugging Face's RoPE layout to llama.cpp's.

    Within each head, rows ``[0 .. d/2)`` (first halves of the rotated pairs) and ``[d/2 .. d)``
    (second halves) are interleaved: ``0, d/2, 1, d/2 + 1, ...``. Same as ``convert_hf_to_gguf.py``.
    Works on NumPy arrays and torch tensors of shape ``(n_head * d, in)``.
    """
    rows = w.shape[0]
    if n_head < 1 or rows % (2 * n_head):
        raise InvalidOption(f"{rows} rows cannot be split into {n_head} heads of an even size", fix="pass the number of heads of this projection (KV heads for k_proj)")
    return w.reshape(n_head, 2, rows // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def gguf_name(hf_name: str) -> str:
    """llama.cpp's name for a Hugging Face Llama tensor name."""
    if hf_name in OTHER_TENSORS:
        return OTHER_TENSORS[hf_name]
    parts = hf_name.split(".")
    if len(parts) > 3 and parts[:2] == ["model", "layers"] and parts[2].isdigit():
        inner = ".".join(parts[3:])
        if inner in LAYER_TENSORS:
            return f"blk.{parts[2]}.{LAYER_TENSORS[inner]}"
    raise InvalidOption(
        f"no GGUF name for the tensor {hf_name!r}",
        fix="merge LoRA adapters first (course_utils.lora.merge_lora) and export a plain Llama-architecture model",
    )


def gguf_tensors_of(model: Any, outtype: str = "f16") -> Iterator[tuple[str, Any, Any]]:
    """``(gguf name, numpy data, GGMLQuantizationType)`` for every tensor of ``model``, in file order.

    1-D tensors (norm weights) stay float32, as llama.cpp expects; matrices become ``outtype``.
    """
    import numpy as np
    from gguf import GGMLQuantizationType, quants

    check_exportable(model)
    outtype = _check_outtype(outtype)
    cfg = model.config
    state = model.state_dict()
    tied = bool(getattr(cfg, "tie_word_embeddings", False))
    names = [n for n in state if not (tied and n == "lm_head.weight")]
    for hf_name in names:
        name = gguf_name(hf_name)
        data = state[hf_name].detach().to("cpu").float().numpy()
        if name.endswith("attn_q.weight"):
            data = permute_qk(data, cfg.num_attention_heads)
        elif name.endswith("attn_k.weight"):
            data = permute_qk(data, cfg.num_key_value_heads)
        if data.ndim == 1 or outtype == "f32":
            yield name, np.ascontiguousarray(data, dtype=np.float32), GGMLQuantizationType.F32
        elif outtype == "f16":
            yield name, data.astype(np.float16), GGMLQuantizationType.F16
        else:  # Q8_0: blocks of 32 weights, one f16 scale each (8.5 bits per weight)
            yield name, quants.quantize(data, GGMLQuantizationType.Q8_0), GGMLQuantizationType.Q8_0


def check_exportable(model: Any) -> None:
    """Raise a helpful error unless ``model`` is a plain (merged, unquantized) Llama-style model."""
    cfg = getattr(model, "config", None)
    arch = getattr(cfg, "model_type", None)
    if arch not in SUPPORTED_ARCHITECTURES:
        raise InvalidOption(
            f"export_gguf writes Llama-architecture models, not {arch!r}",
            fix="for other architectures use llama.cpp's convert_hf_to_gguf.py on a save_pretrained() folder",
        )
    leftovers = [n for n, m in model.named_modules() if hasattr(m, "lora_A") or type(m).__name__ == "QuantLinear"]
    if leftovers:
        raise InvalidOption(
            f"the model still has adapter or quantized layers ({leftovers[0]}, ...)",
            fix="call course_utils.lora.merge_lora(model) first: GGUF stores plain weight matrices",
        )
    rope = getattr(cfg, "rope_parameters", None) or getattr(cfg, "rope_scaling", None) or {}
    if rope.get("rope_type", "default") not in ("default", None):
        raise InvalidOption(f"RoPE scaling {rope.get('rope_type')!r} is not written by this exporter", fix="use llama.cpp's convert_hf_to_gguf.py")


def _check_outtype(outtype: str) -> str:
    kind = str(outtype).lower()
    if kind not in OUTTYPES:
        raise InvalidOption(f"outtype={outtype!r} is not supported", fix=f"use one of {OUTTYPES} (quantize further with llama.cpp's llama_model_quantize)")
    return kind


# ----------------------------------------------------------------------------- the file
def export_gguf(
    model: Any,
    path: str | os.PathLike,
    *,
    outtype: str = "f16",
    tokenizer_gguf: str | os.PathLike | None = None,
    name: str | None = None,
) -> Path:
    """Write ``model`` (a merged transformers Llama model) as a GGUF file; returns its path.

    The tokenizer metadata (vocabulary, merges, special tokens, chat template) is copied from
    ``tokenizer_gguf`` (default: the bundled SmolLM2 GGUF), which must have the model's vocabulary.
    The file is written next to ``path`` under a temporary name and renamed when complete.
    ``outtype``: ``"f16"`` (default; half the size of f32, indistinguishable for inference),
    ``"f32"`` (exact) or ``"q8_0"`` (8-bit blocks, a quarter of f32).
    """
    import gguf

    from .assets import smollm2_gguf

    outtype = _check_outtype(outtype)
    check_exportable(model)
    source = Path(tokenizer_gguf) if tokenizer_gguf is not None else smollm2_gguf()
    try:
        reader = gguf.GGUFReader(str(source))
    except (OSError, ValueError) as err:
        raise DataError(f"cannot read the tokenizer GGUF {source} ({err})", fix="pass tokenizer_gguf= a complete .gguf file") from None
    tokens = reader.fields.get("tokenizer.ggml.tokens")
    cfg = model.config
    if tokens is None or len(tokens.data) != cfg.vocab_size:
        found = "no vocabulary" if tokens is None else f"{len(tokens.data)} tokens"
        raise DataError(f"{source.name} has {found}, the model has {cfg.vocab_size}", fix="pass tokenizer_gguf= a GGUF of the model the fine-tune started from")

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    def write(tmp: Path) -> None:
        writer = gguf.GGUFWriter(str(tmp), arch="llama")
        _write_metadata(writer, cfg, outtype, name or path.stem)
        for field in reader.fields.values():  # the tokenizer, exactly as in the source file
            if field.name.startswith("tokenizer."):
                kind = field.types[0]
                sub = field.types[-1] if kind == gguf.GGUFValueType.ARRAY else None
                writer.add_key_value(field.name, field.contents(), kind, sub_type=sub)
        for tensor_name, data, qtype in gguf_tensors_of(model, outtype):
            if qtype in (gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.F16):
                writer.add_tensor(tensor_name, data)
            else:
                writer.add_tensor(tensor_name, data, raw_dtype=qtype)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()

    atomic_output(path, write)  # a reader never sees half a GGUF
    return path


def _write_metadata(writer: Any, cfg: Any, outtype: str, name: str) -> None:
    import gguf

    rope = getattr(cfg, "rope_parameters", None) or {}
    theta = rope.get("rope_theta", getattr(cfg, "rope_theta", 10000.0))
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    writer.add_type("model")
    writer.add_name(name)
    writer.add_context_length(cfg.max_position_embeddings)
    writer.add_embedding_length(cfg.hidden_size)
    writer.add_block_count(cfg.num_hidden_layers)
    writer.add_feed_forward_length(cfg.intermediate_size)
    writer.add_head_count(cfg.num_attention_heads)
    writer.add_head_count_kv(cfg.num_key_value_heads)
    writer.add_layer_norm_rms_eps(float(cfg.rms_norm_eps))
    writer.add_rope_freq_base(float(theta))
    writer.add_rope_dimension_count(head_dim)
    writer.add_vocab_size(cfg.vocab_size)
    file_type = {"f32": gguf.LlamaFileType.ALL_F32, "f16": gguf.LlamaFileType.MOSTLY_F16, "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0}[outtype]
    writer.add_file_type(int(file_type))
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)


# ----------------------------------------------------------------------------- Ollama
def modelfile_text(
    gguf_file: str | os.PathLike,
    system: str | None = SMOLLM2_SYSTEM,
    template: str = CHATML_TEMPLATE,
    parameters: dict[str, Any] | None = None,
) -> str:
    """The text of an Ollama ``Modelfile`` serving ``gguf_file`` with SmolLM2's chat format.

    ``FROM`` names the GGUF, ``TEMPLATE`` turns messages into the prompt the model was trained on
    (ChatML), ``SYSTEM`` is the default system message, ``PARAMETER stop`` ends the answer at the
    end-of-turn token. Default parameters: greedy decoding and SmolLM2's stop token.
    """
    params: dict[str, Any] = {"temperature": 0, "stop": ["<|im_end|>"]}
    params.update(parameters or {})
    source = gguf_file if isinstance(gguf_file, str) else Path(gguf_file).as_posix()
    lines = [f"FROM {source}", "", f'TEMPLATE """{template}"""']
    if system:
        if '"""' in system:
            raise InvalidOption("the system prompt contains triple quotes", fix='remove the """ from the system prompt')
        lines.append(f'SYSTEM """{system}"""')
    lines.append("")
    for key, value in params.items():
        for item in value if isinstance(value, (list, tuple)) else [value]:
            lines.append(f'PARAMETER {key} "{item}"' if isinstance(item, str) else f"PARAMETER {key} {item}")
    return "\n".join(lines) + "\n"


def write_modelfile(
    gguf_path: str | os.PathLike,
    path: str | os.PathLike | None = None,
    system: str | None = SMOLLM2_SYSTEM,
    parameters: dict[str, Any] | None = None,
) -> Path:
    """Write an Ollama ``Modelfile`` for ``gguf_path`` (default: ``Modelfile`` next to it); returns its path.

    ``FROM`` is written relative to the Modelfile's folder when the GGUF lies inside it, so the
    folder can be moved as a whole. Then: ``ollama create my-model -f Modelfile`` and
    ``ollama run my-model``.
    """
    gguf_path = Path(gguf_path)
    if not gguf_path.is_file():
        raise DataError(f"no GGUF file at {gguf_path}", fix="export the model first with export_gguf(model, path)")
    path = Path(path) if path is not None else gguf_path.with_name("Modelfile")
    try:
        source = "./" + gguf_path.resolve().relative_to(path.resolve().parent).as_posix()
    except ValueError:  # elsewhere: an absolute path
        source = gguf_path.resolve().as_posix()
    text = modelfile_text(source, system=system, parameters=parameters)
    return atomic_write_text(path, text)
