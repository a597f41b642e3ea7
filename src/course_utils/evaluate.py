"""Old name of :mod:`course_utils.evaluation` (perplexity, lesson 05; benchmarks, lesson 09), kept so
that ``from course_utils import evaluate`` still works. New code: ``from course_utils import evaluation``."""

from __future__ import annotations

from . import evaluation
from .evaluation import *  # noqa: F403

__all__ = list(evaluation.__all__)
