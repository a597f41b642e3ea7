"""Old name of :mod:`course_utils.evaluation.tasks` and :mod:`~course_utils.evaluation.generation`
(lesson 09), kept so that ``from course_utils import tasks`` still works. New code:
``from course_utils import evaluation``."""

from __future__ import annotations

from .evaluation.generation import GenResult, extract_code, extract_number, run_gsm8k, run_humaneval
from .evaluation.tasks import (
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

__all__ = ["GEN_TASKS", "MC_TASKS", "MMLU_SUBJECTS", "GenItem", "GenResult", "Task", "arc", "boolq", "extract_code",
           "extract_number", "gsm8k", "hellaswag", "humaneval", "load_task", "mmlu", "piqa", "run_gsm8k", "run_humaneval", "winogrande"]
