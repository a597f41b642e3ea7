"""course_utils.evaluation.perplexity: perplexity by hand, windows, transformers vs llama.cpp on the same tokens."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from course_utils import CourseError
from course_utils import evaluation as E
from course_utils.evaldata import boolq_passages


# ----------------------------------------------------------------------------- by hand
def test_perplexity_from_logprobs_by_hand():
    assert E.perplexity_from_logprobs([math.log(0.25)] * 5) == pytest.approx(4.0)  # uniform over 4
    lp = [math.log(0.5), math.log(0.25), math.log(0.125)]
    assert E.perplexity_from_logprobs(lp) == pytest.approx((0.5 * 0.25 * 0.125) ** (-1 / 3))
    for bad in ([], [0.5], [float("nan")]):
        with pytest.raises(CourseError):
            E.perplexity_from_logprobs(bad)


class Bigram(nn.Module):
    """A tiny causal 'language model': the next token depends only on the current one."""

    def __init__(self, table: torch.Tensor, with_keep: bool = True) -> None:
        super().__init__()
        self.logits_table = table.log()  # log-probabilities as logits: softmax gives table back
        self.with_keep = with_keep

    def forward(self, input_ids: torch.Tensor, logits_to_keep: torch.Tensor | None = None):  # noqa: D401
        logits = self.logits_table[input_ids]
        if logits_to_keep is not None:
            logits = logits[:, logits_to_keep]
        return SimpleNamespace(logits=logits)


class BigramNoKeep(Bigram):
    def forward(self, input_ids: torch.Tensor):  # no logits_to_keep argument: sliced afterwards
        return SimpleNamespace(logits=self.logits_table[input_ids])


TABLE = torch.tensor([[0.5, 0.25, 0.25], [0.1, 0.1, 0.8], [0.6, 0.2, 0.2]])


def by_hand(ids: list[int], scored: list[int]) -> float:
    logp = [math.log(TABLE[ids[i - 1], ids[i]].item()) for i in scored]
    return math.exp(-sum(logp) / len(logp))


def test_tiny_perplexity_by_hand():
    ids = [0, 1, 2, 0]  # p(1|0) p(2|1) p(0|2) = 0.25 * 0.8 * 0.6
    result = E.perplexity(Bigram(TABLE), ids=ids, window=4)
    assert result.n_tokens == 3
    assert result.perplexity == pytest.approx((0.25 * 0.8 * 0.6) ** (-1 / 3), rel=1e-6)
    assert result.nll == pytest.approx(-math.log(0.25 * 0.8 * 0.6) / 3, rel=1e-6)
    assert np.allclose(result.logprobs, np.log([0.25, 0.8, 0.6]))


@pytest.mark.parametrize("model_cls", [Bigram, BigramNoKeep])
@pytest.mark.parametrize("window,stride,batch_size", [(8, None, 1), (8, None, 3), (8, 3, 2), (5, 1, 4), (100, None, 1)])
def test_windows_score_the_right_tokens(model_cls, window, stride, batch_size):
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, 3, (41,), generator=g).tolist()
    result = E.perplexity(model_cls(TABLE), ids=ids, window=window, stride=stride, batch_size=batch_size)
    scored = [i for w in E.make_windows(len(ids), window, stride) for i in range(w.score_from, w.end)]
    assert scored == sorted(set(scored))  # each token at most once, in order
    if stride is not None and stride < window or window >= len(ids):
        assert scored == list(range(1, len(ids)))  # sliding: every token after the first
    else:
        assert len(scored) == len(ids) - len(E.make_windows(len(ids), window, stride))  # one lost per window
    assert result.n_tokens == len(scored)
    assert result.perplexity == pytest.approx(by_hand(ids, scored), rel=1e-6)


def test_make_windows_context_and_errors():
    for w in E.make_windows(1000, window=256, stride=64):
        assert w.end - w.begin <= 256 and w.score_from - w.begin >= 1
        assert w.score_from - w.begin >= 256 - 64 or w.begin == 0 or w.end == 1000  # the overlap is context
    for bad in [dict(window=1), dict(window=8, stride=0), dict(window=8, stride=9), dict(window=8.0)]:
        with pytest.raises(CourseError):
            E.make_windows(100, **bad)


def test_token_stream_joins_and_truncates():
    fake = lambda s: [ord(c) for c in s]  # noqa: E731
    assert E.token_stream(fake, ["ab", "c"], separator="|") == [97, 98, 124, 99]
    assert E.token_stream(fake, ["abcdef", "gh"], max_tokens=4) == [97, 98, 99, 100]
    with pytest.raises(CourseError):
        E.token_stream(fake, ["a"])
    with pytest.raises(CourseError):
        E.perplexity(Bigram(TABLE), ids=[1])
    with pytest.raises(CourseError):
        E.perplexity(Bigram(TABLE), ids=[1, 2, 0], batch_size=0)


# ----------------------------------------------------------------------------- the real model
@pytest.fixture(scope="module")
def boolq_ids(hf_model):
    _, tokenizer = hf_model
    return E.token_stream(lambda s: tokenizer.encode(s, add_special_tokens=False), boolq_passages(), max_tokens=512)


def test_real_text_perplexity_is_sane(hf_model, boolq_ids):
    model, tokenizer = hf_model
    real = E.perplexity(model, ids=boolq_ids, window=256)
    assert 5 < real.perplexity < 60 and real.n_tokens == 512 - 2
    shuffled = list(np.random.default_rng(0).permutation(boolq_ids))
    assert E.perplexity(model, ids=shuffled, window=256).perplexity > 10 * real.perplexity
    from_texts = E.perplexity(model, tokenizer, boolq_passages(), max_tokens=512, window=256)
    assert from_texts.perplexity == pytest.approx(real.perplexity, rel=1e-9)
    sliding = E.perplexity(model, ids=boolq_ids, window=256, stride=128, batch_size=2)
    assert sliding.n_tokens == 511 and sliding.perplexity < real.perplexity  # more context per token


def test_transformers_and_llamacpp_compute_the_same_quantity(hf_model, boolq_ids):
    model, tokenizer = hf_model
    hf = E.perplexity(model, ids=boolq_ids, window=256)
    cpp = E.perplexity_llamacpp(ids=boolq_ids, window=256)
    assert cpp.n_tokens == hf.n_tokens
    # the fp32 model *is* the GGUF de-quantized; llama.cpp also rounds activations to 8 bits.
    # (Without reset() between windows the second window would be read at the wrong cache
    # positions, and these would fail.)
    assert cpp.perplexity == pytest.approx(hf.perplexity, rel=0.03)
    assert np.corrcoef(cpp.logprobs, hf.logprobs)[0, 1] > 0.99
    # texts through llama.cpp's own tokenizer: the same tokens here, so the same numbers
    own_tokenizer = E.perplexity_llamacpp(texts=boolq_passages(), max_tokens=512, window=256)
    assert own_tokenizer.n_tokens == hf.n_tokens
    assert np.array_equal(own_tokenizer.logprobs, cpp.logprobs)


def test_llamacpp_needs_all_logits(llamacpp, boolq_ids):
    with pytest.raises(CourseError, match="logits_all=True"):
        E.perplexity_llamacpp(llamacpp.llm, ids=boolq_ids)  # the chat backend keeps only the last logits
