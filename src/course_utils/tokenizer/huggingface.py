"""Hugging Face ``tokenizer.json`` files (byte-level BPE) loaded into our :class:`~.base.Tokenizer`.

The file stores tokens as printable strings (:func:`bytes_to_unicode`: a space is "Ġ"), merges as
pairs of those strings, and a pre-tokenizer (the split regex, optionally digits cut apart).
:func:`smollm2` loads the course model's vocabulary this way, so lesson 01 can check that our
tokenizer gives exactly SmolLM2's ids.

Taught in: lesson 01.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import DataError, InvalidOption
from .base import GPT2_SPLIT_PATTERN, Pair, Tokenizer


@functools.lru_cache(maxsize=1)
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character table, used by every Hugging Face byte-level BPE.

    Printable bytes stand for themselves; the others (space, newline, control bytes, ...) are moved
    to characters from 256 on, so a space shows as "Ġ" and a newline as "Ċ" in vocab files.

    >>> bytes_to_unicode()[ord(" ")], bytes_to_unicode()[ord("\\n")], bytes_to_unicode()[ord("A")]
    ('Ġ', 'Ċ', 'A')
    """
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def from_hf_json(spec: Mapping[str, Any] | str | os.PathLike, name: str = "hf", special_tokens: Mapping[str, int] | None = None) -> Tokenizer:
    """A :class:`Tokenizer` from a Hugging Face ``tokenizer.json`` (byte-level BPE only).

    ``spec`` is the parsed JSON, or a path to the file. For a loaded transformers tokenizer use
    ``json.loads(tok.backend_tokenizer.to_str())``. ``special_tokens`` overrides the special tokens
    read from the file's ``added_tokens``.
    """
    if not isinstance(spec, Mapping):
        path = Path(spec)
        try:
            spec = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise DataError(f"cannot read a tokenizer.json at {path} ({err})", fix="pass the path of a Hugging Face tokenizer.json") from None
    model = spec.get("model") or {}
    if model.get("type") != "BPE" or "merges" not in model:
        raise DataError(f"{name} is a {model.get('type')!r} tokenizer, not a BPE", fix="only byte-level BPE tokenizers (GPT-2, SmolLM2, Llama 3, Qwen) can be loaded")
    if spec.get("normalizer"):
        raise DataError(f"{name} normalizes text first ({spec['normalizer'].get('type')}), which this tokenizer does not do", fix="use the Hugging Face tokenizer for this model")
    pattern, split_digits = _hf_pre_tokenizer(spec.get("pre_tokenizer"), name)

    char_to_byte = {ch: b for b, ch in bytes_to_unicode().items()}
    vocab: dict[str, int] = model["vocab"]
    byte_ids = [vocab.get(bytes_to_unicode()[b]) for b in range(256)]
    if sum(i is None for i in byte_ids) > 64:
        raise DataError(f"{name}'s vocabulary lacks most single-byte tokens: not a byte-level BPE", fix="use the Hugging Face tokenizer for this model")
    merges: dict[Pair, int] = {}
    for entry in model["merges"]:
        left, right = entry.split(" ") if isinstance(entry, str) else entry  # old and new file formats
        merges[(vocab[left], vocab[right])] = vocab[left + right]
    if special_tokens is None:
        special_tokens = {t["content"]: t["id"] for t in spec.get("added_tokens", []) if t.get("special")}
    tok = Tokenizer(merges, byte_ids=byte_ids, pattern=pattern, special_tokens=special_tokens, name=name, split_digits=split_digits)
    # Sanity check: every vocab entry we rebuilt must spell the same bytes as the file says.
    for text, token_id in vocab.items():
        if token_id in tok.vocab and text not in tok.special_tokens and tok.vocab[token_id] != bytes(char_to_byte[c] for c in text):
            raise DataError(f"token {token_id} ({text!r}) does not match its merges", fix="check that this is a byte-level BPE tokenizer.json")
    return tok


def _hf_pre_tokenizer(pre: Mapping[str, Any] | None, name: str) -> tuple[str, bool]:
    """(split pattern, split_digits) for the pre-tokenizers used by byte-level BPE models."""
    parts = (pre or {}).get("pretokenizers", [pre]) if (pre or {}).get("type") == "Sequence" else [pre]
    pattern, split_digits = None, False
    for part in parts:
        kind = (part or {}).get("type")
        if kind == "ByteLevel":
            if part.get("add_prefix_space"):
                raise DataError(f"{name} adds a space before the text (add_prefix_space)", fix="use the Hugging Face tokenizer for this model")
            if part.get("use_regex", True):
                pattern = pattern or GPT2_SPLIT_PATTERN
        elif kind == "Digits" and part.get("individual_digits"):
            split_digits = True
        elif kind == "Split" and part.get("behavior") == "Isolated" and "Regex" in part.get("pattern", {}):
            pattern = part["pattern"]["Regex"]  # Llama 3, Qwen: a tiktoken-style pattern
        else:
            raise DataError(f"{name} uses a pre-tokenizer this course does not implement ({kind})", fix="use the Hugging Face tokenizer for this model")
    if pattern is None:
        raise DataError(f"{name} has no regex pre-tokenizer", fix="use the Hugging Face tokenizer for this model")
    return pattern, split_digits


def hf_tokenizer_json(tokenizer: Any) -> dict[str, Any]:
    """The ``tokenizer.json`` content of a loaded transformers (fast) tokenizer."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise InvalidOption(f"{type(tokenizer).__name__} has no backend_tokenizer", fix="pass a fast tokenizer from AutoTokenizer.from_pretrained(...)")
    return json.loads(backend.to_str())


def smollm2(tokenizer: Any = None, split_digits: bool | None = None) -> Tokenizer:
    """SmolLM2's vocabulary (49,152 tokens) in our :class:`Tokenizer`.

    Reads ``tokenizer.json`` from the course's converted model folder (fast, no transformers
    import), or from ``tokenizer`` (a loaded transformers tokenizer) when given.

    ``split_digits``: ``None`` follows the file. The original SmolLM2 tokenizer, and llama.cpp's
    "smollm" pre-tokenizer, cut every digit apart *before* the GPT-2 regex runs; the copy that
    transformers makes from the GGUF file keeps only the regex. SmolLM2 has no multi-digit tokens,
    so both agree almost always: they differ only where a run of spaces meets a digit ("x   1").
    Pass ``True`` to get llama.cpp's ids there.
    """
    base = from_hf_json(hf_tokenizer_json(tokenizer), name="SmolLM2") if tokenizer is not None else _smollm2_from_disk()
    if split_digits is None or split_digits == base.split_digits:
        return base
    return Tokenizer(base.merges, byte_ids=base.byte_ids, pattern=base.pattern, special_tokens=base.special_tokens, name=base.name, split_digits=split_digits)


@functools.lru_cache(maxsize=1)
def _smollm2_from_disk() -> Tokenizer:
    from ..assets import hf_model_dir

    folder = Path(hf_model_dir())
    if (folder / "tokenizer.json").is_file():
        return from_hf_json(folder / "tokenizer.json", name="SmolLM2")
    from transformers import AutoTokenizer  # a hub id from COURSE_MODEL: let transformers find it

    return from_hf_json(hf_tokenizer_json(AutoTokenizer.from_pretrained(str(folder))), name="SmolLM2")
