"""Auto-checks for the labs: each ``check_*`` runs the learner's code and gives a verdict.

A check never raises: a lab notebook runs top to bottom even when nothing is filled in yet. Code
that still raises ``NotImplementedError`` (or returns ``None``/``...``) is "not done yet"; a wrong
answer says what differs and gives a hint; a right one says so.

>>> def todo(x):
...     raise NotImplementedError
>>> run_check("double", lambda f: f(2) == 4 or "f(2) should be 4", todo).status
'not done'
>>> run_check("double", lambda f: f(2) == 4 or "f(2) should be 4", lambda x: 2 * x).status
'passed'
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

NOT_DONE, PASSED, FAILED = "not done", "passed", "failed"
_ICONS = {NOT_DONE: "⏳", PASSED: "✅", FAILED: "❌"}


@dataclass(frozen=True)
class Verdict:
    name: str
    status: str  # "not done", "passed" or "failed"
    message: str = ""

    @property
    def passed(self) -> bool:
        return self.status == PASSED

    def __str__(self) -> str:
        label = {NOT_DONE: "not done yet", PASSED: "passed", FAILED: "not right yet"}[self.status]
        return f"{_ICONS[self.status]} {self.name}: {label}" + (f" — {self.message}" if self.message else "")

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # how Jupyter shows it
        printer.text(str(self))


class NotDone(Exception):
    """Raise inside a check to report the exercise as not started."""


def run_check(name: str, test: Callable[..., Any], *answer: Any, hint: str = "") -> Verdict:
    """Run ``test(*answer)``.

    ``test`` returns True (passed) or a string saying what is wrong (failed), or raises
    ``NotDone``. An answer that raises NotImplementedError or is ``None``/``...`` is not done.
    ``hint`` is shown only with a wrong answer, so it may point at the solution.
    """
    todo = "replace the TODO (raise NotImplementedError) with your code"
    if any(a is None or a is Ellipsis for a in answer):
        return Verdict(name, NOT_DONE, todo)
    try:
        outcome = test(*answer)
    except (NotImplementedError, NotDone):
        return Verdict(name, NOT_DONE, todo)
    except Exception as err:  # the learner's code crashed: say how, do not crash the notebook
        return Verdict(name, FAILED, f"your code raised {type(err).__name__}: {err}" + (f". Hint: {hint}" if hint else ""))
    if outcome is True:
        return Verdict(name, PASSED)
    message = str(outcome) if isinstance(outcome, str) else "the result is not what was expected"
    return Verdict(name, FAILED, message + (f". Hint: {hint}" if hint else ""))


def close_enough(actual: Any, expected: Any, tol: float = 1e-6) -> bool:
    """True when two numbers/arrays/tensors agree to ``tol`` (absolute)."""
    import numpy as np

    def as_array(x: Any) -> Any:
        return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x, dtype=float)

    a, b = as_array(actual), as_array(expected)
    return a.shape == b.shape and bool(np.allclose(a, b, atol=tol, rtol=0))
