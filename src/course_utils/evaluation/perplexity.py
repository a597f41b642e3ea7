"""Perplexity of a language model on real text (taught in lesson 05; lesson 09 uses it beside benchmarks).

**Perplexity** is ``exp(mean negative log-likelihood)`` of the tokens of a text, each predicted
from the tokens before it: the number of equally likely choices the model is, on average, torn
between. Lower is better; a uniform guess over the vocabulary scores the vocabulary size.

How the text is cut matters, so both model runners here cut it the same way:

1. the texts are tokenized once and joined into one stream of token ids (:func:`token_stream`);
2. the stream is cut into windows of ``window`` tokens that start every ``stride`` tokens
   (:func:`make_windows`); each token is *scored* at most once, in the first window where it has
   context. A token at the very start of a window has none, so it is not scored: with
   ``stride == window`` that is one token per window, with ``stride < window`` only the first
   token of the stream;
3. the log-probabilities of the scored tokens give the perplexity (:func:`perplexity_from_logprobs`).

``stride == window`` (the default) gives independent chunks; a smaller stride gives every scored
token more context (lower perplexity) at the cost of recomputing the overlap.

:func:`perplexity` runs a transformers model, :func:`perplexity_llamacpp` a GGUF file through
llama.cpp. Given the same token ids they compute the same quantity on the same tokens.

>>> import math
>>> round(perplexity_from_logprobs([math.log(0.5), math.log(0.25)]), 4)   # (0.5 * 0.25) ** -0.5
2.8284
>>> make_windows(10, window=4)
[Window(begin=0, end=4, score_from=1), Window(begin=4, end=8, score_from=5), Window(begin=8, end=10, score_from=9)]
>>> make_windows(10, window=4, stride=2)      # sliding: every token after the first is scored
[Window(begin=0, end=4, score_from=1), Window(begin=2, end=6, score_from=4), Window(begin=4, end=8, score_from=6), Window(begin=6, end=10, score_from=8)]
"""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ..errors import DataError, InvalidOption
from .models import gather_logprobs, llama_with_logits, numpy_logprobs, tokenize_fn


# ----------------------------------------------------------------------------- the pieces
class Window(NamedTuple):
    """Tokens ``[begin, end)`` go through the model; tokens ``[score_from, end)`` are scored."""

    begin: int
    end: int
    score_from: int


@dataclass
class PerplexityResult:
    perplexity: float
    nll: float  # mean negative log-likelihood per scored token, in nats
    n_tokens: int  # tokens scored
    n_windows: int
    seconds: float
    logprobs: Any = field(repr=False, default=None)  # numpy array, one per scored token

    @property
    def tokens_per_s(self) -> float:
        """Scored tokens per second of model time."""
        return self.n_tokens / self.seconds if self.seconds > 0 else float("inf")

    @property
    def bits_per_token(self) -> float:
        return self.nll / math.log(2)


def perplexity_from_logprobs(logprobs: Iterable[float]) -> float:
    """``exp(-mean(logprobs))``, logprobs in nats (natural log)."""
    values = [float(x) for x in logprobs]
    if not values:
        raise DataError("no log-probabilities to average", fix="score at least one token (give more text or a larger window)")
    if any(x > 1e-6 or math.isnan(x) for x in values):
        raise DataError("log-probabilities must be <= 0 (they are logs of probabilities)", fix="pass log(p), not p or -log(p)")
    return math.exp(-math.fsum(values) / len(values))


def token_stream(
    tokenize: Callable[[str], list[int]], texts: Sequence[str] | str, separator: str = "\n\n", max_tokens: int | None = None,
) -> list[int]:
    """Tokenize each text and join them with the separator's tokens; stop after ``max_tokens``.

    ``tokenize`` maps a string to token ids without special tokens, e.g.
    ``lambda s: tokenizer.encode(s, add_special_tokens=False)``.
    """
    _check_max_tokens(max_tokens)
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, Sequence) or not all(isinstance(t, str) for t in texts):
        raise DataError(f"texts must be a string or a list of strings, got {type(texts).__name__}", fix="pass e.g. boolq_passages(40) or a list of your own texts")
    sep = tokenize(separator) if separator else []
    ids: list[int] = []
    for i, text in enumerate(texts):
        if max_tokens is not None and len(ids) >= max_tokens:
            break
        ids += (sep if i else []) + list(tokenize(text))
    if len(ids) < 2:
        raise DataError("the texts give fewer than 2 tokens: nothing to predict", fix="pass some real text")
    return ids[:max_tokens] if max_tokens is not None else ids


def make_windows(n_tokens: int, window: int = 512, stride: int | None = None) -> list[Window]:
    """Cut ``n_tokens`` into windows that start every ``stride`` tokens; no token is scored twice."""
    stride = window if stride is None else stride
    if not isinstance(window, int) or window < 2:
        raise InvalidOption(f"window={window!r} must be a whole number >= 2", fix="use e.g. window=512")
    if not isinstance(stride, int) or not 1 <= stride <= window:
        raise InvalidOption(f"stride={stride!r} must be between 1 and window={window}", fix="use stride=None (= window) or e.g. window // 2")
    windows, scored_until = [], 1  # token 0 has no context: never scored
    for begin in range(0, n_tokens, stride):
        end = min(begin + window, n_tokens)
        if end > scored_until:
            windows.append(Window(begin, end, max(scored_until, begin + 1)))
            scored_until = end
        if end == n_tokens:
            break
    return windows


def _resolve_ids(texts: Sequence[str] | str | None, ids: Sequence[int] | None, tokenize: Callable[[str], list[int]] | None, max_tokens: int | None) -> list[int]:
    _check_max_tokens(max_tokens)
    if ids is not None:
        if isinstance(ids, str) or not all(isinstance(i, int) or hasattr(i, "__index__") for i in ids):
            raise DataError("ids must be a list of whole-number token ids", fix="pass tokenizer.encode(text), or pass the text as texts= with a tokenizer")
        ids = [int(i) for i in ids][:max_tokens]
        if len(ids) < 2:
            raise DataError("need at least 2 token ids", fix="pass more text")
        return ids
    if texts is None or tokenize is None:
        raise InvalidOption("nothing to score", fix="pass texts (and a tokenizer) or ids")
    return token_stream(tokenize, texts, max_tokens=max_tokens)


def _check_max_tokens(max_tokens: int | None) -> None:
    if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 2):
        raise InvalidOption(f"max_tokens={max_tokens!r} must be a whole number >= 2 (or None for all)", fix="use e.g. max_tokens=4096")


# ----------------------------------------------------------------------------- transformers
def perplexity(
    model: Any,
    tokenizer: Any = None,
    texts: Sequence[str] | str | None = None,
    *,
    ids: Sequence[int] | None = None,
    window: int = 512,
    stride: int | None = None,
    batch_size: int = 4,
    max_tokens: int | None = None,
) -> PerplexityResult:
    """Perplexity of a transformers causal LM on ``texts`` (or on token ``ids``).

    Windows of equal shape are stacked into batches of ``batch_size``; the output layer runs only
    on positions whose next token is scored (``logits_to_keep``), which saves its cost on the
    overlap of sliding windows. The model should be in eval mode (``load_hf_model`` returns it so);
    inputs go to the device of its parameters.

    >>> model, tok = load_hf_model()                                   # doctest: +SKIP
    >>> perplexity(model, tok, boolq_passages(40), max_tokens=4096).perplexity   # doctest: +SKIP
    """
    import numpy as np
    import torch

    if not callable(model):
        raise InvalidOption(f"perplexity() runs a transformers model, got a {type(model).__name__} {model!r:.60}",
                            fix="pass the model from load_hf_model(); for a .gguf file use perplexity_llamacpp(path, texts)")
    ids = _resolve_ids(texts, ids, tokenize_fn(tokenizer) if tokenizer is not None else None, max_tokens)
    windows = make_windows(len(ids), window, stride)
    stream = torch.tensor(ids, dtype=torch.long)
    keep_arg = "logits_to_keep" in inspect.signature(model.forward).parameters
    device = next((p.device for p in model.parameters()), torch.device("cpu")) if hasattr(model, "parameters") else torch.device("cpu")
    scores: dict[Window, np.ndarray] = {}
    started = time.perf_counter()
    with torch.inference_mode():
        for batch in _batches(windows, batch_size):
            w0 = batch[0]
            first, last = w0.score_from - 1 - w0.begin, w0.end - 1 - w0.begin  # predicting positions
            inputs = torch.stack([stream[w.begin:w.end] for w in batch]).to(device)
            if keep_arg:
                logits = model(input_ids=inputs, logits_to_keep=torch.arange(first, last, device=device)).logits
            else:
                logits = model(input_ids=inputs).logits[:, first:last]
            targets = torch.stack([stream[w.score_from:w.end] for w in batch]).to(logits.device)
            logprobs = gather_logprobs(logits, targets)
            for w, row in zip(batch, logprobs, strict=True):
                scores[w] = row.cpu().numpy()
    seconds = time.perf_counter() - started
    return _result([scores[w] for w in windows], len(windows), seconds)


def _batches(windows: list[Window], batch_size: int) -> list[list[Window]]:
    """Group windows with the same length and scored span (they stack into one tensor)."""
    if not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidOption(f"batch_size={batch_size!r} must be a whole number >= 1", fix="use e.g. batch_size=4")
    groups: dict[tuple[int, int], list[Window]] = {}
    for w in windows:
        groups.setdefault((w.end - w.begin, w.score_from - w.begin), []).append(w)
    return [g[i:i + batch_size] for g in groups.values() for i in range(0, len(g), batch_size)]


def _result(per_window: list[Any], n_windows: int, seconds: float) -> PerplexityResult:
    import numpy as np

    logprobs = np.concatenate(per_window).astype(np.float64)
    nll = float(-logprobs.mean())
    return PerplexityResult(math.exp(nll), nll, int(logprobs.size), n_windows, seconds, logprobs)


# ----------------------------------------------------------------------------- llama.cpp
def perplexity_llamacpp(
    model: Any = None,
    texts: Sequence[str] | str | None = None,
    *,
    tokenizer: Any = None,
    ids: Sequence[int] | None = None,
    window: int = 512,
    stride: int | None = None,
    max_tokens: int | None = None,
    n_threads: int | None = None,
) -> PerplexityResult:
    """Perplexity of a GGUF model run by llama.cpp, on ``texts`` (or token ``ids``).

    ``model`` is a GGUF path (default: ``COURSE_MODEL`` or the bundled SmolLM2) or a
    ``llama_cpp.Llama`` made with ``logits_all=True`` and ``n_ctx >= window``. Texts are tokenized
    with ``tokenizer`` if given (pass the transformers tokenizer to score exactly the same tokens
    as :func:`perplexity`), else with llama.cpp's own tokenizer.

    The KV cache is cleared (``reset()``) before each window: otherwise llama.cpp would treat the
    new window as a continuation of the previous one.
    """
    import numpy as np

    llm, owned = llama_with_logits(model, window, n_threads)
    try:
        tokenize = tokenize_fn(tokenizer) if tokenizer is not None else (lambda s: llm.tokenize(s.encode("utf-8"), add_bos=False, special=False))
        ids = _resolve_ids(texts, ids, tokenize, max_tokens)
        windows = make_windows(len(ids), window, stride)
        per_window = []
        started = time.perf_counter()
        for w in windows:
            llm.reset()
            llm.eval(ids[w.begin:w.end])
            logits = np.asarray(llm.scores[w.score_from - 1 - w.begin:w.end - 1 - w.begin], dtype=np.float32)
            per_window.append(numpy_logprobs(logits, np.asarray(ids[w.score_from:w.end])))
        seconds = time.perf_counter() - started
    finally:
        if owned:
            llm.close()
    return _result(per_window, len(windows), seconds)
