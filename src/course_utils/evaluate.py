"""Evaluating language models on real text. This module starts with perplexity.

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
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from .errors import DataError, InvalidOption


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
    if isinstance(texts, str):
        texts = [texts]
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


def _hf_tokenize(tokenizer: Any) -> Callable[[str], list[int]]:
    if callable(getattr(tokenizer, "encode", None)):
        return lambda s: tokenizer.encode(s, add_special_tokens=False)
    if callable(tokenizer):
        return tokenizer
    raise InvalidOption(f"cannot tokenize with a {type(tokenizer).__name__}", fix="pass a transformers tokenizer or a function str -> list[int]")


def _resolve_ids(texts: Sequence[str] | str | None, ids: Sequence[int] | None, tokenize: Callable[[str], list[int]] | None, max_tokens: int | None) -> list[int]:
    if ids is not None:
        ids = [int(i) for i in ids][:max_tokens]
        if len(ids) < 2:
            raise DataError("need at least 2 token ids", fix="pass more text")
        return ids
    if texts is None or tokenize is None:
        raise InvalidOption("nothing to score", fix="pass texts (and a tokenizer) or ids")
    return token_stream(tokenize, texts, max_tokens=max_tokens)


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

    ids = _resolve_ids(texts, ids, _hf_tokenize(tokenizer) if tokenizer is not None else None, max_tokens)
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
            logprobs = _gather_logprobs(logits, targets)
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


def _gather_logprobs(logits: Any, targets: Any) -> Any:
    """log p(target) for each position: log_softmax in float32, one sequence at a time (memory)."""
    import torch

    rows = []
    for seq_logits, seq_targets in zip(logits, targets, strict=True):
        logp = torch.log_softmax(seq_logits.float(), dim=-1)
        rows.append(logp.gather(-1, seq_targets.unsqueeze(-1)).squeeze(-1).double())
    return torch.stack(rows)


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

    llm, owned = _llama(model, window, n_threads)
    try:
        tokenize = _hf_tokenize(tokenizer) if tokenizer is not None else (lambda s: llm.tokenize(s.encode("utf-8"), add_bos=False, special=False))
        ids = _resolve_ids(texts, ids, tokenize, max_tokens)
        windows = make_windows(len(ids), window, stride)
        per_window = []
        started = time.perf_counter()
        for w in windows:
            llm.reset()
            llm.eval(ids[w.begin:w.end])
            logits = np.asarray(llm.scores[w.score_from - 1 - w.begin:w.end - 1 - w.begin], dtype=np.float32)
            per_window.append(_numpy_logprobs(logits, np.asarray(ids[w.score_from:w.end])))
        seconds = time.perf_counter() - started
    finally:
        if owned:
            llm.close()
    return _result(per_window, len(windows), seconds)


def _numpy_logprobs(logits: Any, targets: Any) -> Any:
    """log p(target) per row: the same log-softmax as :func:`_gather_logprobs`, in NumPy."""
    import numpy as np

    peak = logits.max(axis=-1, keepdims=True)
    log_total = np.log(np.exp(logits - peak).sum(axis=-1, dtype=np.float32)) + peak[:, 0]
    return logits[np.arange(len(targets)), targets].astype(np.float64) - log_total.astype(np.float64)


def _llama(model: Any, window: int, n_threads: int | None) -> tuple[Any, bool]:
    """A llama.cpp model that keeps the logits of every position (and whether we made it)."""
    try:
        from llama_cpp import Llama
    except ImportError:
        from .errors import BackendUnavailable

        raise BackendUnavailable("llama-cpp-python is not installed", fix="run `make setup` (or pip install llama-cpp-python)") from None
    if isinstance(model, Llama):
        if not getattr(model, "_logits_all", False) or model.n_ctx() < window:
            raise InvalidOption(
                "this Llama keeps only the last position's logits or has a too small context",
                fix=f"create it with Llama(path, logits_all=True, n_ctx={window}), or pass the GGUF path instead",
            )
        return model, False
    from .assets import resolve_gguf
    from .backends.llamacpp import quiet_stderr
    from .config import settings

    path = resolve_gguf(None if model is None else os.fspath(model))
    with quiet_stderr():
        llm = Llama(model_path=str(path), n_ctx=window, n_batch=window, n_ubatch=window, logits_all=True,
                    n_threads=n_threads or settings().n_threads, verbose=False)
    return llm, True


# ============================================================================= multiple choice
# How public leaderboards score a multiple-choice question (EleutherAI's lm-evaluation-harness, which
# the Open LLM Leaderboard runs): the model never *writes* an answer. Each choice is appended to the
# question as a continuation, and the model's log-probability of that continuation's tokens is summed.
#   acc      = the choice with the largest summed log-probability is right
#   acc_norm = the same after dividing each sum by the continuation's length in *characters*
#              (the harness uses len(str), including the leading space), so long choices are not
#              punished for having more tokens to pay for.
@dataclass(frozen=True)
class MCItem:
    """One multiple-choice question, ready to score.

    ``context`` is the text before the answer (the same for every choice), or one context per
    choice (WinoGrande's "partial scoring": the option goes into the context, the shared rest of
    the sentence is the continuation). ``choices`` are the continuations that are scored.
    ``prefix`` (few-shot examples, identical for many items) is put in front of the context; the
    scorer computes it once per distinct prefix.
    """

    context: str | tuple[str, ...]
    choices: tuple[str, ...]
    label: int
    id: str = ""
    prefix: str = ""

    def contexts(self) -> tuple[str, ...]:
        if isinstance(self.context, str):
            return (self.context,) * len(self.choices)
        if len(self.context) != len(self.choices):
            raise DataError(f"item {self.id!r} has {len(self.context)} contexts for {len(self.choices)} choices", fix="give one context, or one per choice")
        return tuple(self.context)


@dataclass(frozen=True)
class ItemScore:
    """The scores of one item's choices. ``logprobs[i]`` is the summed log-probability of choice i."""

    id: str
    label: int
    logprobs: tuple[float, ...]
    n_chars: tuple[int, ...]
    n_tokens: tuple[int, ...]

    @property
    def pred(self) -> int:
        return acc_prediction(self.logprobs)

    @property
    def pred_norm(self) -> int:
        return acc_norm_prediction(self.logprobs, self.n_chars)


@dataclass
class MCResult:
    """Accuracy of one model on one set of items, with binomial standard errors."""

    task: str
    items: list[ItemScore] = field(repr=False)
    chance: float
    seconds: float
    tokens: int  # tokens that went through the model (shared context counted once)
    scorer: str = ""

    @property
    def n(self) -> int:
        return len(self.items)

    @property
    def acc(self) -> float:
        return sum(s.pred == s.label for s in self.items) / self.n

    @property
    def acc_norm(self) -> float:
        return sum(s.pred_norm == s.label for s in self.items) / self.n

    @property
    def acc_stderr(self) -> float:
        return binomial_stderr(self.acc, self.n)

    @property
    def acc_norm_stderr(self) -> float:
        return binomial_stderr(self.acc_norm, self.n)

    @property
    def items_per_s(self) -> float:
        return self.n / self.seconds if self.seconds > 0 else float("inf")

    def row(self) -> dict[str, Any]:
        return {"task": self.task, "scorer": self.scorer, "n": self.n, "acc": self.acc, "±acc": self.acc_stderr,
                "acc_norm": self.acc_norm, "±acc_norm": self.acc_norm_stderr, "chance": self.chance,
                "seconds": self.seconds, "items/s": self.items_per_s, "tokens/s": self.tokens / self.seconds if self.seconds > 0 else float("inf")}


def acc_prediction(logprobs: Sequence[float]) -> int:
    """Index of the largest summed log-probability (the first one on a tie, like ``np.argmax``)."""
    if not len(logprobs):
        raise DataError("no choices to pick from", fix="give each item at least two choices")
    return max(range(len(logprobs)), key=lambda i: (logprobs[i], -i))


def acc_norm_prediction(logprobs: Sequence[float], lengths: Sequence[int]) -> int:
    """Index of the largest log-probability per character of the continuation (lm-eval-harness acc_norm)."""
    if len(logprobs) != len(lengths) or any(n <= 0 for n in lengths):
        raise DataError("need one positive length per choice", fix="pass len(choice) for each choice")
    return acc_prediction([lp / n for lp, n in zip(logprobs, lengths)])


def binomial_stderr(p: float, n: int) -> float:
    """Standard error of an accuracy ``p`` measured on ``n`` independent items: sqrt(p(1-p)/n).

    (lm-evaluation-harness reports the sample version, with n-1: larger by sqrt(n/(n-1)).)

    >>> round(binomial_stderr(0.5, 100), 3)
    0.05
    """
    if n < 1 or not 0 <= p <= 1:
        raise DataError(f"need 0 <= p <= 1 and n >= 1, got p={p}, n={n}", fix="pass an accuracy and the number of items")
    return math.sqrt(p * (1 - p) / n)


def encode_pair(tokenize: Callable[[str], list[int]], context: str, continuation: str) -> tuple[list[int], list[int]]:
    """Token ids of (context, continuation) the way lm-evaluation-harness makes them.

    Trailing spaces of the context move to the continuation; the continuation's ids are what
    tokenizing the *whole* text adds after the context's ids (so "Answer:" + " Paris" gives the
    ids the model would really see).
    """
    spaces = len(context) - len(context.rstrip())
    if spaces:
        context, continuation = context[:-spaces], context[-spaces:] + continuation
    ctx = list(tokenize(context))
    cont = list(tokenize(context + continuation))[len(ctx):]
    if not ctx or not cont:
        raise DataError(f"empty context or continuation ({context[-30:]!r} + {continuation[:30]!r})", fix="give every item a context and non-empty choices")
    return ctx, cont


@dataclass
class _Group:
    """Choices that share one context: computed once, continuations scored together."""

    item: int
    choice_idx: list[int]
    ctx: list[int]  # context ids after the prefix
    conts: list[list[int]]


class HFScorer:
    """Log-probabilities of continuations with a transformers model, sharing each context.

    The context runs once; its KV cache is expanded over the choices, which then run as one batch
    (``share_context=True``). ``batch_items`` contexts run side by side (right-padded, with an
    attention mask), so the CPU gets matrices big enough to be efficient. ``share_context=False``
    is the naive way (every choice re-reads the context), kept to check and to compare speed.
    """

    name = "transformers"

    def __init__(self, model: Any, tokenizer: Any, *, share_context: bool = True, batch_items: int = 8) -> None:
        if not isinstance(batch_items, int) or batch_items < 1:
            raise InvalidOption(f"batch_items={batch_items!r} must be a whole number >= 1", fix="use e.g. batch_items=8")
        self.model, self.tokenizer = model, tokenizer
        self.share_context, self.batch_items = share_context, batch_items
        self.tokenize = _hf_tokenize(tokenizer)
        self.max_len = int(getattr(model.config, "max_position_embeddings", 2048) or 2048)
        self.tokens = 0

    def _forward(self, ids: list[list[int]], past: Any = None, past_mask: Any = None, positions: Any = None) -> tuple[Any, Any, Any]:
        """Right-padded batch through the transformer body (no output layer yet).

        Returns (hidden states [b, t, d], new KV cache, attention mask over cache + inputs).
        """
        import torch

        width = max(len(r) for r in ids)
        inputs = torch.zeros((len(ids), width), dtype=torch.long)
        mask = torch.zeros((len(ids), width), dtype=torch.long)
        for i, row in enumerate(ids):
            inputs[i, :len(row)] = torch.tensor(row)
            mask[i, :len(row)] = 1
        full = mask if past_mask is None else torch.cat([past_mask, mask], dim=1)
        self.tokens += int(mask.sum())
        out = self.model.get_decoder()(input_ids=inputs, attention_mask=full, past_key_values=past, position_ids=positions, use_cache=True)
        return out.last_hidden_state, out.past_key_values, full

    def _logprobs(self, hidden: Any, rows: list[int], positions: list[int], targets: list[int]) -> Any:
        """log p(target) at the given (row, position) pairs only: the output layer (576 x 49,152
        for SmolLM2, a fifth of the model's work per token) runs just where a score is needed."""
        import torch

        h = hidden[torch.tensor(rows), torch.tensor(positions)]
        logp = torch.log_softmax(self.model.get_output_embeddings()(h).float(), dim=-1)
        return logp[torch.arange(len(targets)), torch.tensor(targets)].double()

    def score(self, prefix: list[int], groups: list[_Group]) -> list[list[float]]:
        """Summed log-probability of every continuation of every group (in order)."""
        import torch

        with torch.inference_mode():
            base = None
            if prefix and self.share_context:  # few-shot examples shared by all these items: computed once
                _, base, _ = self._forward([prefix])
            results: list[list[float]] = [[] for _ in groups]
            order = sorted(range(len(groups)), key=lambda g: len(groups[g].ctx))  # less padding
            for start in range(0, len(order), self.batch_items):
                chunk = order[start:start + self.batch_items]
                scored = self._score_batch(prefix, base, [groups[g] for g in chunk]) if self.share_context else \
                    [self._score_naive(prefix, groups[g]) for g in chunk]
                for g, values in zip(chunk, scored, strict=True):
                    results[g] = values
        return results

    def _expand(self, cache: Any, index: Any) -> Any:
        """A new cache whose row i is row ``index[i]`` of ``cache`` (the original stays as it is)."""
        from transformers import DynamicCache

        return DynamicCache(ddp_cache_data=[(layer.keys.index_select(0, index), layer.values.index_select(0, index)) for layer in cache.layers])

    def _score_batch(self, prefix: list[int], base: Any, groups: list[_Group]) -> list[list[float]]:
        import torch

        n_prefix = len(prefix)
        past = past_mask = None
        if base is not None:
            past = self._expand(base, torch.zeros(len(groups), dtype=torch.long))
            past_mask = torch.ones((len(groups), n_prefix), dtype=torch.long)
        # 1. every context once (right-padded); the first token of each continuation is predicted
        #    from the context's last position
        ctx_lens = [len(g.ctx) for g in groups]
        positions = (n_prefix + torch.arange(max(ctx_lens))).unsqueeze(0).expand(len(groups), -1)
        hidden, cache, ctx_mask = self._forward([g.ctx for g in groups], past, past_mask, positions)
        rows = [(gi, c) for gi, g in enumerate(groups) for c in g.conts]
        first = self._logprobs(hidden, [gi for gi, _ in rows], [ctx_lens[gi] - 1 for gi, _ in rows], [c[0] for _, c in rows])
        totals = [[float(x)] for x in first]
        # 2. the rest of every continuation, each row attending to its own context (expanded cache)
        longest = max(len(c) for _, c in rows)
        if longest > 1:
            index = torch.tensor([gi for gi, _ in rows])
            starts = torch.tensor([n_prefix + ctx_lens[gi] for gi, _ in rows]).unsqueeze(1)
            hidden, _, _ = self._forward([c[:-1] or c[:1] for _, c in rows], self._expand(cache, index),
                                         ctx_mask.index_select(0, index), starts + torch.arange(longest - 1))
            where = [(r, j, t) for r, (_, c) in enumerate(rows) for j, t in enumerate(c[1:])]
            if where:
                values = self._logprobs(hidden, [w[0] for w in where], [w[1] for w in where], [w[2] for w in where])
                for (r, _, _), v in zip(where, values.tolist(), strict=True):
                    totals[r].append(v)
        sums = [math.fsum(v) for v in totals]
        out, r = [], 0
        for g in groups:
            out.append(sums[r:r + len(g.conts)])
            r += len(g.conts)
        return out

    def _score_naive(self, prefix: list[int], group: _Group) -> list[float]:
        """Every choice as its own full sequence (prefix + context + continuation) through the whole
        model, logits everywhere: the straightforward way, to check the fast path against."""
        import torch

        seqs = [prefix + group.ctx + c for c in group.conts]
        width = max(map(len, seqs))
        inputs = torch.tensor([s + [0] * (width - len(s)) for s in seqs])
        self.tokens += sum(map(len, seqs))
        logp = torch.log_softmax(self.model(input_ids=inputs).logits.double(), dim=-1)
        start = len(prefix) + len(group.ctx)
        sums = []
        for r, c in enumerate(group.conts):
            pos = torch.arange(start - 1, start - 1 + len(c))
            sums.append(float(logp[r, pos, torch.tensor(c)].sum()))
        return sums


class LlamaCppScorer:
    """Log-probabilities of continuations with llama.cpp (``llama_cpp.Llama`` with ``logits_all=True``).

    Per item the KV cache is cut back to the shared prefix (``n_tokens``; a fresh ``reset()`` when
    there is none), the context is evaluated once, and each choice continues from it: the cache
    is cut back to the end of the context before the next choice. Every item therefore starts from
    the same state, and a rerun gives identical numbers.
    """

    name = "llamacpp"

    def __init__(self, model: Any = None, *, tokenizer: Any = None, n_ctx: int = 1024, n_threads: int | None = None) -> None:
        import weakref

        self.llm, self._owned = _llama(model, n_ctx, n_threads)
        # free a Llama we made even if close() is never called (its own __del__ can fail at exit)
        self._finalizer = weakref.finalize(self, self.llm.close) if self._owned else None
        if tokenizer is not None:  # e.g. the transformers tokenizer: exactly the same ids as HFScorer
            self.tokenize = _hf_tokenize(tokenizer)
        else:
            self.tokenize = lambda s: self.llm.tokenize(s.encode("utf-8"), add_bos=False, special=False)
        self.max_len = self.llm.n_ctx()
        self.tokens = 0

    def close(self) -> None:
        if self._finalizer is not None:
            self._finalizer()  # closes the Llama once, however often close() is called

    def score(self, prefix: list[int], groups: list[_Group]) -> list[list[float]]:
        import numpy as np

        llm = self.llm
        llm.reset()
        if prefix:
            llm.eval(prefix)
            self.tokens += len(prefix)
        results = []
        for g in groups:
            llm.n_tokens = len(prefix)  # forget the previous item, keep the prefix
            llm.eval(g.ctx)
            end = len(prefix) + len(g.ctx)
            last = np.asarray(llm.scores[end - 1:end], dtype=np.float32)
            sums = []
            for c in g.conts:
                rows = [last]
                if len(c) > 1:
                    llm.n_tokens = end
                    llm.eval(c[:-1])
                    rows.append(np.asarray(llm.scores[end:end + len(c) - 1], dtype=np.float32))
                sums.append(math.fsum(_numpy_logprobs(np.concatenate(rows), np.asarray(c))))
                self.tokens += len(c) - 1
            self.tokens += len(g.ctx)
            results.append(sums)
        return results


def make_scorer(model: Any, tokenizer: Any = None, **kwargs: Any) -> HFScorer | LlamaCppScorer:
    """A scorer for whatever holds the model: a scorer, a course backend ("transformers" or
    "llamacpp"), a transformers model (+ tokenizer), a ``llama_cpp.Llama`` or a GGUF path.

    A llama.cpp *backend* keeps only the last position's logits, so a second ``Llama`` with
    ``logits_all=True`` is made from its GGUF file.
    """
    if isinstance(model, HFScorer | LlamaCppScorer):
        return model
    from .backends.llamacpp import LlamaCppBackend
    from .backends.transformers_backend import TransformersBackend

    if isinstance(model, TransformersBackend):
        return HFScorer(model.model, model.tokenizer, **kwargs)
    if isinstance(model, LlamaCppBackend):
        return LlamaCppScorer(str(model.path), tokenizer=tokenizer, **kwargs)
    if hasattr(model, "forward") and hasattr(model, "config"):
        if tokenizer is None:
            raise InvalidOption("a transformers model needs its tokenizer", fix="pass make_scorer(model, tokenizer)")
        return HFScorer(model, tokenizer, **kwargs)
    if model is None or isinstance(model, str | os.PathLike) or _is_llama(model):
        return LlamaCppScorer(model, tokenizer=tokenizer, **kwargs)
    raise InvalidOption(f"cannot get log-probabilities from a {type(model).__name__}",
                        fix="pass a transformers or llamacpp backend, a transformers model and tokenizer, or a GGUF path "
                            "(chat-only backends such as ollama or gpt4all do not expose log-probabilities here)")


def _is_llama(model: Any) -> bool:
    try:
        from llama_cpp import Llama
    except ImportError:
        return False
    return isinstance(model, Llama)


def score_multiple_choice(model: Any, items: Sequence[MCItem], tokenizer: Any = None, *, task: str = "", **kwargs: Any) -> MCResult:
    """Score ``items`` with any model :func:`make_scorer` accepts; acc and acc_norm with standard errors.

    >>> result = score_multiple_choice(backend, load_task("arc_easy", limit=20).items)   # doctest: +SKIP
    >>> result.acc, result.acc_stderr                                                     # doctest: +SKIP
    """
    if not items:
        raise DataError("no items to score", fix="pass at least one MCItem (e.g. load_task('arc_easy', limit=20).items)")
    scorer = make_scorer(model, tokenizer, **kwargs)
    tokens_before = scorer.tokens
    started = time.perf_counter()
    # tokenize; group choices that share a context; group items that share a prefix (few-shot examples)
    by_prefix: dict[str, list[_Group]] = {}
    n_tokens: list[list[int]] = []
    for index, item in enumerate(items):
        lengths = []
        shared: dict[str, _Group] = {}
        for c, (context, choice) in enumerate(zip(item.contexts(), item.choices, strict=True)):
            ctx, cont = encode_pair(scorer.tokenize, item.prefix + context, choice)
            if len(ctx) + len(cont) > scorer.max_len:
                from .errors import ContextOverflow

                raise ContextOverflow(f"item {item.id!r} needs {len(ctx) + len(cont)} tokens, the scorer holds {scorer.max_len}", fix="use fewer shots, or a larger n_ctx")
            group = shared.setdefault(context, _Group(index, [], ctx, []))
            group.choice_idx.append(c)
            group.conts.append(cont)
            lengths.append(len(cont))
        n_tokens.append(lengths)
        by_prefix.setdefault(item.prefix, []).extend(shared.values())
    batches = []
    for prefix, groups in by_prefix.items():
        # the prefix's tokens: the common start of these contexts (tokenizing the prefix alone can
        # differ at its end: "\n\n" is one token at the end of a text, two before more text)
        n = _common_prefix_len([g.ctx for g in groups]) if prefix else 0
        n = min([n] + [len(g.ctx) - 1 for g in groups])
        prefix_ids = groups[0].ctx[:n]
        batches.append((prefix_ids, [_Group(g.item, g.choice_idx, g.ctx[n:], g.conts) for g in groups]))
    logprobs: list[list[float]] = [[0.0] * len(item.choices) for item in items]
    for prefix_ids, groups in batches:
        for group, sums in zip(groups, scorer.score(prefix_ids, groups), strict=True):
            for c, value in zip(group.choice_idx, sums, strict=True):
                logprobs[group.item][c] = value
    seconds = time.perf_counter() - started
    scores = [ItemScore(item.id, item.label, tuple(lp), tuple(len(c) for c in item.choices), tuple(nt))
              for item, lp, nt in zip(items, logprobs, n_tokens, strict=True)]
    chance = sum(1 / len(item.choices) for item in items) / len(items)
    return MCResult(task, scores, chance, seconds, scorer.tokens - tokens_before, scorer.name)


def _common_prefix_len(rows: list[list[int]]) -> int:
    first, n = rows[0], len(rows[0])
    for row in rows[1:]:
        n = min(n, len(row))
        n = next((i for i in range(n) if row[i] != first[i]), n)
    return n
