"""The bundled ARC-Easy run by lm-evaluation-harness itself, to check the course's scorer against it.

Lesson 09 says its multiple-choice scoring is lm-evaluation-harness's method; the parity test
(``tests/test_lmeval_parity.py``) and ``benchmarks/eval.py`` hold it to that, item by item. This
module is their one shared piece: an lm-eval task over the same local Arrow file the course reads
(same prompt ``"Question: {question}\\nAnswer:"``, the answers as continuations joined by a space),
run on the same in-memory transformers model.

lm-eval (``lm_eval==0.4.13``, in the ``test`` extra) is imported only inside these functions: no
lesson imports this module, and ``import course_utils.evaluation`` does not need lm-eval.

>>> run_lm_eval(model, tokenizer, limit=20).items[0].lls         # doctest: +SKIP
(-17.553..., -15.129..., -14.475..., -15.545...)
"""

from __future__ import annotations

import ast
import contextlib
import io
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..errors import BackendUnavailable

PROMPT = "Question: {{question}}\nAnswer:"  # lm-eval's own arc_easy.yaml, and the course's tasks.arc


@dataclass(frozen=True)
class LmEvalItem:
    """One item as lm-eval scored it: its log-likelihoods and *its* predictions and verdicts."""

    id: str
    lls: tuple[float, ...]  # summed log-likelihood of each continuation
    pred: int  # lm-eval's acc choice
    pred_norm: int  # lm-eval's acc_norm choice
    acc: float  # lm-eval's per-item verdicts (1.0 right, 0.0 wrong)
    acc_norm: float


@dataclass
class LmEvalRun:
    items: list[LmEvalItem] = field(repr=False)
    acc: float
    acc_norm: float
    seconds: float  # simple_evaluate, model already loaded
    requests: int  # (context, continuation) pairs lm-eval ran


def _require_lm_eval() -> None:
    try:
        import lm_eval  # noqa: F401
    except ImportError:
        raise BackendUnavailable("lm-evaluation-harness is not installed (a test/benchmark dependency, not needed by the lessons)",
                                 fix='pip install -e ".[test]" (or pip install lm_eval==0.4.13 accelerate)') from None


def _arc_easy_dataset(**_: Any) -> Any:
    """The bundled ARC-Easy validation split as lm-eval expects it (choices as a dict, not its repr)."""
    import datasets

    from ..evaldata import load_bundled

    ds = load_bundled("ai2_arc/ARC-Easy/validation")
    ds = ds.map(lambda row: {"choices": ast.literal_eval(row["choices"]) if isinstance(row["choices"], str) else row["choices"]})
    return datasets.DatasetDict({"validation": ds})


def arc_easy_task() -> Any:
    """An lm-eval ``ConfigurableTask``: its arc_easy.yaml with the bundled data instead of the hub."""
    _require_lm_eval()
    from lm_eval.api.task import ConfigurableTask

    config = {
        "task": "arc_easy_local", "custom_dataset": _arc_easy_dataset, "output_type": "multiple_choice",
        "validation_split": "validation", "doc_to_text": PROMPT, "doc_to_target": "{{choices.label.index(answerKey)}}",
        "doc_to_choice": "{{choices.text}}", "target_delimiter": " ",
        "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True},
                        {"metric": "acc_norm", "aggregation": "mean", "higher_is_better": True}],
        "metadata": {"version": 1.0},
    }
    with _quiet():
        return ConfigurableTask(config=config)


def run_lm_eval(model: Any, tokenizer: Any, limit: int | None = None, batch_size: int = 16) -> LmEvalRun:
    """ARC-Easy (the first ``limit`` items) scored by lm-eval's ``HFLM`` on this transformers model."""
    _require_lm_eval()
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM

    task = arc_easy_task()
    with _quiet():
        lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size, device=str(next(model.parameters()).device))
        started = time.perf_counter()
        out = simple_evaluate(model=lm, tasks=[task], limit=limit, log_samples=True, bootstrap_iters=0)
        seconds = time.perf_counter() - started
    samples = sorted(out["samples"][task.config.task], key=lambda s: s["doc_id"])
    items = [_item(task, s) for s in samples]
    metrics = out["results"][task.config.task]
    return LmEvalRun(items, metrics["acc,none"], metrics["acc_norm,none"], seconds, sum(len(i.lls) for i in items))


def _item(task: Any, sample: dict[str, Any]) -> LmEvalItem:
    lls = tuple(float(r[0]) for r in sample["filtered_resps"])
    pred, pred_norm = lm_eval_predictions(task, sample["doc"], lls)
    return LmEvalItem(sample["doc"]["id"], lls, pred, pred_norm, float(sample["acc"]), float(sample["acc_norm"]))


def lm_eval_predictions(task: Any, doc: dict[str, Any], lls: tuple[float, ...]) -> tuple[int, int]:
    """lm-eval's own acc and acc_norm choices for these log-likelihoods.

    lm-eval reports only whether each metric was right, so its ``process_results`` is asked once
    per choice, with that choice as the gold answer: the one it marks right is the one it picked.
    (Its rule is not re-implemented here; the test would otherwise check the course against itself.)
    """
    labels = list(doc["choices"]["label"])
    pred = pred_norm = -1
    for k, label in enumerate(labels):
        verdict = task.process_results({**doc, "answerKey": label}, [(ll, False) for ll in lls])
        pred = k if verdict["acc"] == 1.0 else pred
        pred_norm = k if verdict["acc_norm"] == 1.0 else pred_norm
    return pred, pred_norm


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """lm-eval's per-task warnings and progress bars (tqdm, on stderr) kept out of the test log and the benchmark table."""
    loggers = [logging.getLogger(name) for name in ("lm_eval", "lm-eval")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
