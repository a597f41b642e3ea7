"""Log-probabilities of continuations, fast, from transformers or llama.cpp (lesson 09).

:func:`~course_utils.evaluation.multiple_choice.score_multiple_choice` hands a scorer groups of
continuations that share one context (a question and its four answers). Two scorers:

* :class:`HFScorer` (transformers) puts a question and *all* its answers into one row,
  ``question | answer 1 | answer 2 | ...``, and gives the model an attention mask under which
  each answer sees the question and itself, never another answer; its position ids restart after
  the question for every answer. One forward pass then scores every answer, exactly as if each
  had followed the question alone, while the question is read once. Rows of several questions run
  side by side (sorted by length, so there is little padding), and the output layer (576 x 49,152
  for SmolLM2, a fifth of the model's work per token) runs only where a token is scored.
* :class:`LlamaCppScorer` evaluates the question once and continues each answer from llama.cpp's
  KV cache, cut back after every answer.

>>> ids, positions, segments = pack_group([5, 6, 7], [[8, 9], [10]])   # a 3-token question, two answers
>>> ids, positions, segments            # the answers' last tokens are only predicted, never read
([5, 6, 7, 8], [0, 1, 2, 3], [0, 0, 0, 1])
>>> mask = segment_mask([segments])[0]       # True: this query (row) may attend to that key (column)
>>> mask.int().tolist()
[[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 1, 1]]
>>> segment_mask([pack_group([5, 6], [[7, 8], [9, 10]])[2]])[0].int().tolist()  # answer 2 cannot see answer 1
[[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 0, 1]]
"""

from __future__ import annotations

import inspect
import math
import os
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidOption
from .models import llama_with_logits, numpy_logprobs, tokenize_fn


@dataclass
class ChoiceGroup:
    """Continuations of one item that share one context: the context is read once."""

    item: int
    choice_idx: list[int]
    ctx: list[int]  # context ids after the shared prefix
    conts: list[list[int]]


def pack_group(ctx: list[int], conts: list[list[int]], start: int = 0) -> tuple[list[int], list[int], list[int]]:
    """One row for a context and its continuations: (ids, position ids, segments).

    Segment 0 is the context, segment k the k-th continuation; each continuation's positions
    continue from the end of the context. Its last token is predicted but never fed in.
    """
    ids, positions, segments = list(ctx), list(range(start, start + len(ctx))), [0] * len(ctx)
    for k, cont in enumerate(conts, start=1):
        fed = cont[:-1]
        ids += fed
        positions += range(start + len(ctx), start + len(ctx) + len(fed))
        segments += [k] * len(fed)
    return ids, positions, segments


def segment_mask(segments: list[list[int]], width: int | None = None) -> Any:
    """Boolean attention masks ``[rows, width, width]``: causal, and a key in segment k > 0 is seen
    only by queries of the same segment. Padding (segment -1) sees the context and itself only."""
    import torch

    width = width or max(map(len, segments))
    seg = torch.full((len(segments), width), -1, dtype=torch.long)
    for r, row in enumerate(segments):
        seg[r, :len(row)] = torch.tensor(row, dtype=torch.long)
    causal = torch.ones(width, width, dtype=torch.bool).tril()
    same = (seg[:, :, None] == seg[:, None, :]) | (seg[:, None, :] == 0)
    return causal & same


class HFScorer:
    """Log-probabilities of continuations with a transformers model, reading each context once.

    ``share_context=True`` packs a question with all its answers into one row (see the module
    docstring); up to ``batch_items`` rows and about ``batch_tokens`` tokens go through the model
    at a time. ``share_context=False`` is the naive way (every choice re-reads the context, logits
    everywhere), kept to check the fast path and to compare speed.
    """

    name = "transformers"

    def __init__(self, model: Any, tokenizer: Any, *, share_context: bool = True, batch_items: int = 16, batch_tokens: int = 1024) -> None:
        for key, value in (("batch_items", batch_items), ("batch_tokens", batch_tokens)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidOption(f"{key}={value!r} must be a whole number >= 1", fix=f"use e.g. {key}={16 if key == 'batch_items' else 1024}")
        if not hasattr(model, "get_decoder") or not hasattr(model, "config"):
            raise InvalidOption(f"HFScorer needs a transformers causal LM, got a {type(model).__name__}",
                                fix="pass the model from load_hf_model() (or AutoModelForCausalLM.from_pretrained)")
        self.model, self.tokenizer = model, tokenizer
        self.share_context, self.batch_items, self.batch_tokens = share_context, batch_items, batch_tokens
        self.tokenize = tokenize_fn(tokenizer)
        self.max_len = int(getattr(model.config, "max_position_embeddings", 2048) or 2048)
        self.tokens = 0  # tokens that went through the model
        # transformers 5.x renamed the KV-cache argument from past_key_values to cache
        self._cache_arg = "cache" if "cache" in inspect.signature(model.get_decoder().forward).parameters else "past_key_values"

    def score(self, prefix: list[int], groups: list[ChoiceGroup]) -> list[list[float]]:
        """Summed log-probability of every continuation of every group (in order)."""
        import torch

        with torch.inference_mode():
            if not self.share_context:
                return [self._score_naive(prefix, g) for g in groups]
            base = self._prefix_cache(prefix)
            packed = [pack_group(g.ctx, g.conts, start=len(prefix)) for g in groups]
            results: list[list[float]] = [[] for _ in groups]
            for chunk in self._batches([len(p[0]) for p in packed]):
                sums = self._score_rows([packed[i] for i in chunk], [groups[i] for i in chunk], base, len(prefix))
                for i, values in zip(chunk, sums, strict=True):
                    results[i] = values
        return results

    def _batches(self, lengths: list[int]) -> list[list[int]]:
        """Row indices, longest first, cut into batches of at most batch_items rows and about
        batch_tokens tokens including padding (a single row longer than that still runs)."""
        order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
        batches: list[list[int]] = []
        for i in order:
            if batches and len(batches[-1]) < self.batch_items and lengths[batches[-1][0]] * (len(batches[-1]) + 1) <= self.batch_tokens:
                batches[-1].append(i)
            else:
                batches.append([i])
        return batches

    def _prefix_cache(self, prefix: list[int]) -> Any:
        """The KV cache of few-shot examples shared by these items, computed once."""
        import torch

        if not prefix:
            return None
        self.tokens += len(prefix)
        out = self.model.get_decoder()(input_ids=torch.tensor([prefix]), use_cache=True)
        return getattr(out, "cache", None) or out.past_key_values

    def _score_rows(self, rows: list[tuple[list[int], list[int], list[int]]], groups: list[ChoiceGroup], base: Any, n_prefix: int) -> list[list[float]]:
        import torch

        width = max(len(ids) for ids, _, _ in rows)
        inputs = torch.zeros((len(rows), width), dtype=torch.long)
        positions = torch.zeros((len(rows), width), dtype=torch.long)
        for r, (ids, pos, _) in enumerate(rows):
            inputs[r, :len(ids)] = torch.tensor(ids)
            positions[r, :len(pos)] = torch.tensor(pos)
            self.tokens += len(ids)
        mask = segment_mask([seg for _, _, seg in rows], width)
        past = None
        if base is not None:  # every row sees the whole prefix
            past = self._expand(base, torch.zeros(len(rows), dtype=torch.long))
            mask = torch.cat([torch.ones((len(rows), width, n_prefix), dtype=torch.bool), mask], dim=2)
        dtype = self.model.get_output_embeddings().weight.dtype
        additive = torch.zeros(mask.shape, dtype=dtype).masked_fill_(~mask, torch.finfo(dtype).min)[:, None]
        hidden = self.model.get_decoder()(input_ids=inputs, attention_mask=additive, position_ids=positions,
                                          use_cache=past is not None, **{self._cache_arg: past}).last_hidden_state
        where = []  # (row, position of the predicting token, target) for every continuation token
        for r, g in enumerate(groups):
            last_ctx, offset = len(g.ctx) - 1, len(g.ctx)
            for cont in g.conts:
                where.append((r, last_ctx, cont[0]))
                where += [(r, offset + j, t) for j, t in enumerate(cont[1:])]
                offset += len(cont) - 1
        values = self._logprobs(hidden, where).tolist()
        out, k = [], 0
        for g in groups:
            sums = []
            for cont in g.conts:
                sums.append(math.fsum(values[k:k + len(cont)]))
                k += len(cont)
            out.append(sums)
        return out

    def _logprobs(self, hidden: Any, where: list[tuple[int, int, int]]) -> Any:
        """log p(target) at the given (row, position, target) triples only: the output layer runs
        just where a score is needed, the log-softmax in float32."""
        import torch

        rows, positions, targets = (torch.tensor(col) for col in zip(*where, strict=True))
        logits = self.model.get_output_embeddings()(hidden[rows, positions]).float()
        return torch.log_softmax(logits, dim=-1)[torch.arange(len(targets)), targets].double()

    def _expand(self, cache: Any, index: Any) -> Any:
        """A new cache whose row i is row ``index[i]`` of ``cache`` (the original stays as it is)."""
        from transformers import DynamicCache

        return DynamicCache(ddp_cache_data=[(layer.keys.index_select(0, index), layer.values.index_select(0, index)) for layer in cache.layers])

    def _score_naive(self, prefix: list[int], group: ChoiceGroup) -> list[float]:
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

        if isinstance(n_ctx, bool) or not isinstance(n_ctx, int) or n_ctx < 16:
            raise InvalidOption(f"n_ctx={n_ctx!r} must be a whole number >= 16", fix="use e.g. n_ctx=1024")
        self.llm, self._owned = llama_with_logits(model, n_ctx, n_threads)
        # free a Llama we made even if close() is never called (its own __del__ can fail at exit)
        self._finalizer = weakref.finalize(self, self.llm.close) if self._owned else None
        if tokenizer is not None:  # e.g. the transformers tokenizer: exactly the same ids as HFScorer
            self.tokenize = tokenize_fn(tokenizer)
        else:
            self.tokenize = lambda s: self.llm.tokenize(s.encode("utf-8"), add_bos=False, special=False)
        self.max_len = self.llm.n_ctx()
        self.tokens = 0

    def close(self) -> None:
        if self._finalizer is not None:
            self._finalizer()  # closes the Llama once, however often close() is called

    def score(self, prefix: list[int], groups: list[ChoiceGroup]) -> list[list[float]]:
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
                sums.append(math.fsum(numpy_logprobs(np.concatenate(rows), np.asarray(c))))
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
    from ..backends.llamacpp import LlamaCppBackend
    from ..backends.transformers_backend import TransformersBackend

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
