"""Evaluating language models: perplexity (lesson 05), benchmarks by log-likelihood and by generation (lesson 09).

One concept per module; the lessons write ``from course_utils import evaluation as ev`` and use
the names below::

    models.py           text -> ids, log-softmax, a llama.cpp model that keeps every position's logits
    perplexity.py       perplexity over windows of a token stream, transformers and llama.cpp    (05)
    intervals.py        confidence intervals: Wilson for a rate, a mean's, a paired difference's  (07, 10, 11)
    extractive.py       SQuAD exact match and token F1                                          (11)
    divergence.py       KL divergence and top-token agreement of two models' next-token
                        distributions (how llama.cpp judges a quantized file)                    (05)
    multiple_choice.py  MCItem, acc / acc_norm as lm-evaluation-harness computes them, standard
                        errors, score_multiple_choice                                           (09)
    scorers.py          the fast scorers: a question and its answers in one row (transformers),
                        a KV cache cut back per answer (llama.cpp)                              (09)
    tasks.py            ARC, HellaSwag, MMLU, WinoGrande, BoolQ, PIQA, GSM8K, HumanEval from the
                        bundled data, in the harness's prompt formats                           (09)
    generation.py       GSM8K exact match, HumanEval pass@1 in the sandbox                      (09)
    lmeval.py           the same ARC-Easy items run by lm-evaluation-harness itself, for the parity
                        test and benchmarks/eval.py (needs the test extra; never used by a lesson)

>>> from course_utils import evaluation as ev
>>> item = ev.load_task("arc_easy", limit=1).items[0]
>>> item.choices[item.label], item.norm_lengths()[item.label]
(' cellular telephone', 18)
"""

from __future__ import annotations

from .divergence import (
    Divergence,
    divergence,
    log_softmax,
    next_token_logprobs,
    next_token_logprobs_llamacpp,
)
from .extractive import normalize_answer, squad_exact, squad_f1
from .generation import GenResult, extract_code, extract_number, run_gsm8k, run_humaneval
from .intervals import Z95, Estimate, mean_interval, paired_difference, wilson_interval
from .models import gather_logprobs, llama_with_logits, numpy_logprobs, tokenize_fn
from .multiple_choice import (
    ItemScore,
    MCItem,
    MCResult,
    acc_norm_prediction,
    acc_prediction,
    binomial_stderr,
    encode_pair,
    score_multiple_choice,
)
from .perplexity import (
    PerplexityResult,
    Window,
    make_windows,
    perplexity,
    perplexity_from_logprobs,
    perplexity_llamacpp,
    token_stream,
)
from .scorers import ChoiceGroup, HFScorer, LlamaCppScorer, make_scorer, pack_group, segment_mask
from .tasks import (
    GEN_TASKS,
    MC_TASKS,
    MMLU_SUBJECTS,
    GenItem,
    Task,
    arc,
    boolq,
    gsm8k,
    hellaswag,
    humaneval,
    load_task,
    mmlu,
    piqa,
    winogrande,
)

__all__ = [
    "Z95", "Estimate", "mean_interval", "paired_difference", "wilson_interval", "normalize_answer", "squad_exact", "squad_f1",
    "Divergence", "divergence", "log_softmax", "next_token_logprobs", "next_token_logprobs_llamacpp",
    "GEN_TASKS", "MC_TASKS", "MMLU_SUBJECTS", "ChoiceGroup", "GenItem", "GenResult", "HFScorer", "ItemScore",
    "LlamaCppScorer", "MCItem", "MCResult", "PerplexityResult", "Task", "Window", "acc_norm_prediction",
    "acc_prediction", "arc", "binomial_stderr", "boolq", "encode_pair", "extract_code", "extract_number",
    "gather_logprobs", "gsm8k", "hellaswag", "humaneval", "llama_with_logits", "load_task", "make_scorer",
    "make_windows", "mmlu", "numpy_logprobs", "pack_group", "perplexity", "perplexity_from_logprobs",
    "perplexity_llamacpp", "piqa", "run_gsm8k", "run_humaneval", "score_multiple_choice",
    "segment_mask", "token_stream", "tokenize_fn", "winogrande",
]
