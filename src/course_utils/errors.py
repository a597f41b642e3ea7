"""Errors that tell the learner what went wrong *and* how to fix it.

Every error raised on purpose by ``course_utils`` is a :class:`CourseError`. Its message is one
line: the problem, then ``Fix:`` and the command or setting that solves it.

>>> try:
...     raise ModelNotFound("no model at /tmp/nope", fix="set COURSE_MODEL to a GGUF file")
... except CourseError as err:
...     print(err)
no model at /tmp/nope. Fix: set COURSE_MODEL to a GGUF file
"""

from __future__ import annotations


class CourseError(Exception):
    """Base class: a problem the learner can fix. ``str(err)`` is the whole story."""

    def __init__(self, problem: str, fix: str | None = None) -> None:
        self.problem = problem.rstrip(". ")
        self.fix = fix
        super().__init__(f"{self.problem}. Fix: {fix}" if fix else self.problem)


class BackendUnavailable(CourseError):
    """A backend cannot start: library missing, server not running, model not loadable."""


class ModelNotFound(CourseError):
    """The requested model (path, hub id or bundled asset) cannot be found offline."""


class AssetMissing(ModelNotFound):
    """A bundled asset package (model, embeddings, eval data) is not installed."""


class ContextOverflow(CourseError):
    """The prompt does not fit into the model's context window."""


class InvalidOption(CourseError, ValueError):
    """A generation option or argument has the wrong type or an impossible value."""


class DataError(CourseError, ValueError):
    """Input data is empty, unreadable or malformed."""
