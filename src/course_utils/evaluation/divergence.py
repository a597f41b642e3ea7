"""How far a quantized model's next-token distributions are from the original's (lesson 05).

Perplexity looks at one number per position: the probability of the token that really came next.
Quantization can move probability among all the *other* tokens, or help some positions while hurting
others, and perplexity averages that away. llama.cpp's maintainers therefore judge a quantized file by
comparing whole distributions with the unquantized model's, position by position (its perplexity tool's
``--kl-divergence`` mode, described in llama.cpp's ``tools/perplexity/README.md``):

* **KL divergence** ``KL(P || Q) = Σ p log(p / q)`` of the quantized model's distribution Q from the
  original's P, in nats: its mean, and its 99th percentile (the rare positions the damage hits hardest);
* **same top token**: how often the most likely next token is unchanged (what greedy decoding would write).

>>> import numpy as np
>>> p = np.log([[0.5, 0.5], [0.9, 0.1]])
>>> d = divergence(p, p)
>>> d.mean_kl, d.same_top_token
(0.0, 1.0)
>>> q = np.log([[0.5, 0.5], [0.6, 0.4]])
>>> round(divergence(p, q).mean_kl, 4)        # (0 + 0.9 ln 1.5 + 0.1 ln 0.25) / 2
0.1131
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import DataError


@dataclass(frozen=True)
class Divergence:
    """Distance of one model's next-token distributions from a reference's, over the same positions."""

    mean_kl: float  # nats
    p99_kl: float  # 99th percentile over positions
    max_kl: float
    same_top_token: float  # share of positions whose most likely token is unchanged
    n_positions: int

    def row(self) -> dict[str, float]:
        return {"mean KL": self.mean_kl, "99% KL": self.p99_kl, "max KL": self.max_kl,
                "same top token": self.same_top_token, "positions": self.n_positions}


def log_softmax(logits: Any) -> Any:
    """Row-wise log-softmax in NumPy, float64 (stable: the row maximum is taken out first)."""
    import numpy as np

    x = np.asarray(logits, dtype=np.float64)
    peak = x.max(axis=-1, keepdims=True)
    return x - peak - np.log(np.exp(x - peak).sum(axis=-1, keepdims=True))


def divergence(reference: Any, other: Any) -> Divergence:
    """KL(reference || other) per position and top-token agreement, from two arrays of log-probabilities.

    Both are ``(positions, vocabulary)`` log-probabilities of the same positions (each row sums to 1 in
    probability space).
    """
    import numpy as np

    ref, oth = np.asarray(reference, dtype=np.float64), np.asarray(other, dtype=np.float64)
    if ref.shape != oth.shape or ref.ndim != 2 or not ref.size:
        raise DataError(f"need two (positions, vocabulary) arrays of the same shape, got {ref.shape} and {oth.shape}",
                        fix="score the same token ids with both models (and the same tokenizer)")
    kl = np.maximum((np.exp(ref) * (ref - oth)).sum(axis=-1), 0.0)  # >= 0; rounding can give -1e-12
    same = float((ref.argmax(axis=-1) == oth.argmax(axis=-1)).mean())
    return Divergence(float(kl.mean()), float(np.percentile(kl, 99)), float(kl.max()), same, int(len(kl)))


def next_token_logprobs(model: Any, ids: Sequence[int]) -> Any:
    """Log-probabilities over the vocabulary for each position but the last of ``ids`` (one window), transformers."""
    import torch

    _check_ids(ids)
    with torch.inference_mode():
        logits = model(input_ids=torch.tensor([list(ids)])).logits[0, :-1].float()
    return log_softmax(logits.numpy())


def next_token_logprobs_llamacpp(path: Any, ids: Sequence[int], n_threads: int | None = None) -> tuple[Any, float]:
    """The same from a GGUF file run by llama.cpp (a fresh context of ``len(ids)``), and the seconds it took."""
    import numpy as np

    from .models import llama_with_logits

    _check_ids(ids)
    llm, _ = llama_with_logits(path, len(ids), n_threads)
    try:
        started = time.perf_counter()
        llm.reset()
        llm.eval(list(ids))
        logits = np.asarray(llm.scores[:len(ids) - 1], dtype=np.float32)
        seconds = time.perf_counter() - started
    finally:
        llm.close()
    return log_softmax(logits), seconds


def _check_ids(ids: Sequence[int]) -> None:
    if len(ids) < 2:
        raise DataError("need at least 2 token ids to predict anything", fix="pass a longer text")
