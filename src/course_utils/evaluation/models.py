"""Getting log-probabilities out of the two engines the evaluation code scores with (lessons 05 and 09).

Perplexity (lesson 05) and multiple-choice scoring (lesson 09) both need the same few things:
a function that turns text into token ids, the log-softmax of a row of logits, and a llama.cpp model
that keeps the logits of *every* position (a chat backend keeps only the last one).

>>> encode = tokenize_fn(lambda s: [ord(c) for c in s])      # any str -> ids function works
>>> encode("hi")
[104, 105]
>>> import numpy as np
>>> logits = np.log(np.array([[0.5, 0.25, 0.25], [0.1, 0.1, 0.8]], dtype=np.float32))
>>> np.round(np.exp(numpy_logprobs(logits, np.array([0, 2]))), 3)   # p(target) per row
array([0.5, 0.8])
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from ..errors import InvalidOption, ModelNotFound


def tokenize_fn(tokenizer: Any) -> Callable[[str], list[int]]:
    """``str -> list[int]`` from a transformers tokenizer (no special tokens) or such a function."""
    if callable(getattr(tokenizer, "encode", None)):
        return lambda s: tokenizer.encode(s, add_special_tokens=False)
    if callable(tokenizer):
        return tokenizer
    raise InvalidOption(f"cannot tokenize with a {type(tokenizer).__name__}", fix="pass a transformers tokenizer or a function str -> list[int]")


def gather_logprobs(logits: Any, targets: Any) -> Any:
    """log p(target) at each position of a batch: log_softmax in float32, one sequence at a time
    (a whole batch of 49,152-wide rows in float32 at once would need a lot of memory)."""
    import torch

    rows = []
    for seq_logits, seq_targets in zip(logits, targets, strict=True):
        logp = torch.log_softmax(seq_logits.float(), dim=-1)
        rows.append(logp.gather(-1, seq_targets.unsqueeze(-1)).squeeze(-1).double())
    return torch.stack(rows)


def numpy_logprobs(logits: Any, targets: Any) -> Any:
    """log p(target) per row of ``logits``: the same log-softmax as :func:`gather_logprobs`, in NumPy."""
    import numpy as np

    peak = logits.max(axis=-1, keepdims=True)
    log_total = np.log(np.exp(logits - peak).sum(axis=-1, dtype=np.float32)) + peak[:, 0]
    return logits[np.arange(len(targets)), targets].astype(np.float64) - log_total.astype(np.float64)


def llama_with_logits(model: Any, n_ctx: int, n_threads: int | None = None) -> tuple[Any, bool]:
    """A ``llama_cpp.Llama`` that keeps the logits of every position, and whether we made it.

    ``model`` is such a Llama (checked), a GGUF path, or None (``COURSE_MODEL`` or the bundled SmolLM2).
    """
    try:
        from llama_cpp import Llama
    except ImportError:
        from ..errors import BackendUnavailable

        raise BackendUnavailable("llama-cpp-python is not installed", fix="run `make setup` (or pip install llama-cpp-python)") from None
    if isinstance(model, Llama):
        if not getattr(model, "_logits_all", False) or model.n_ctx() < n_ctx:
            raise InvalidOption(
                "this Llama keeps only the last position's logits or has a too small context",
                fix=f"create it with Llama(path, logits_all=True, n_ctx={n_ctx}), or pass the GGUF path instead",
            )
        return model, False
    if model is not None and not isinstance(model, str | os.PathLike):
        raise InvalidOption(f"cannot load a llama.cpp model from a {type(model).__name__}", fix="pass a GGUF path, a Llama made with logits_all=True, or None for the bundled model")
    from ..assets import resolve_gguf
    from ..config import settings

    path = resolve_gguf(None if model is None else os.fspath(model))
    _check_gguf_magic(path)
    from ..backends.llamacpp import quiet_stderr

    with quiet_stderr():
        try:
            llm = Llama(model_path=str(path), n_ctx=n_ctx, n_batch=n_ctx, n_ubatch=n_ctx, logits_all=True,
                        n_threads=n_threads or settings().n_threads, verbose=False)
        except ValueError as err:  # llama-cpp-python's "Failed to load model from file"
            raise ModelNotFound(f"llama.cpp could not load {path} ({err})", fix="check that it is a complete GGUF model file (re-download or re-export it)") from None
    return llm, True


def _check_gguf_magic(path: Any) -> None:
    """A file that is not a GGUF (a text file renamed, a half-written download) gets one clear line."""
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic != b"GGUF":
        raise ModelNotFound(f"{path} is not a GGUF file (it starts with {magic!r}, not b'GGUF')",
                            fix="point at a real .gguf model (COURSE_MODEL or the model argument), or unset it for the bundled SmolLM2")
