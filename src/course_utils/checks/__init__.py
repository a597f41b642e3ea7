"""Auto-checks for the labs: each ``check_*`` runs the learner's code and gives a verdict.

A check never raises: a lab notebook runs top to bottom even when nothing is filled in yet. Code
that still raises ``NotImplementedError`` (or returns ``None``/``...``) is "not done yet"; a wrong
answer says *what* is wrong and where to look; a right one says so.

Hints come in steps. The first ❌ never gives the solution away: it names the mistake and points at
the place to look (``hint=``). The next step (``more=``, closer to the answer) appears only when the
learner asks for it, with ``hint("top-k")`` in a cell of their own.

Checks hand the learner's function its inputs as given and compare them afterwards: a function that
changes its input in place fails (:func:`call_unchanged`).

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


class Mistake(Exception):
    """Raise inside a check to fail it with this message (same as returning the message)."""


_MORE_HINTS: dict[str, str] = {}  # check name -> the next hint step, for hint(name)


def run_check(name: str, test: Callable[..., Any], *answer: Any, hint: str = "", more: str = "") -> Verdict:
    """Run ``test(*answer)``.

    ``test`` returns True (passed) or a string saying what is wrong (failed), raises
    :class:`Mistake` (failed) or ``NotDone``. An answer that raises NotImplementedError or is
    ``None``/``...`` is not done. ``hint`` (where to look) is shown with a wrong answer; ``more``
    (closer to the solution) only when the learner calls :func:`hint` with the check's name.
    """
    todo = "replace the TODO (raise NotImplementedError) with your code"
    if more:
        _MORE_HINTS[name] = more
    if any(a is None or a is Ellipsis for a in answer):
        return Verdict(name, NOT_DONE, todo)
    try:
        outcome = test(*answer)
    except (NotImplementedError, NotDone):
        return Verdict(name, NOT_DONE, todo)
    except Mistake as err:
        outcome = str(err)
    except Exception as err:  # the learner's code crashed: say how, do not crash the notebook
        outcome = f"your code raised {type(err).__name__}: {err}"
    if outcome is True:
        return Verdict(name, PASSED)
    message = str(outcome) if isinstance(outcome, str) else "the result is not what was expected"
    return Verdict(name, FAILED, message + (f". Hint: {hint}" if hint else "") + (f'. Still stuck? Run hint("{name}")' if more else ""))


def hint(name: str) -> str:
    """The next hint for the check called ``name`` (printed, and returned).

    >>> _ = run_check("double", lambda f: f(2) == 4 or "f(2) is not 4", lambda x: x + 3, hint="look at the operator", more="multiply by 2")
    >>> hint("double")
    💡 double: multiply by 2
    'multiply by 2'
    """
    text = _MORE_HINTS.get(name)
    if text is None:
        known = ", ".join(sorted(_MORE_HINTS)) or "none yet: run the check cells first"
        text = f"no further hint for {name!r} (checks with one: {known})"
        print(text)
        return text
    print(f"💡 {name}: {text}")
    return text


def call_unchanged(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call the learner's ``fn`` and return its result; raise :class:`Mistake` if it changed an argument.

    Works for tensors, arrays, lists, dicts and other copyable values: each is compared with a deep
    copy taken before the call.

    >>> def sort_in_place(xs):
    ...     xs.sort()
    ...     return xs
    >>> call_unchanged(sorted, [3, 1, 2])
    [1, 2, 3]
    >>> call_unchanged(sort_in_place, [3, 1, 2])
    Traceback (most recent call last):
    ...
    course_utils.checks.Mistake: your function changed its argument 1 in place: work on a copy instead
    """
    import copy

    before = [copy.deepcopy(a) for a in args]
    before_kw = {k: copy.deepcopy(v) for k, v in kwargs.items()}
    result = fn(*args, **kwargs)
    for i, (old, new) in enumerate(zip(before, args), start=1):
        if not _same(old, new):
            raise Mistake(f"your function changed its argument {i} in place: work on a copy instead")
    for key, old in before_kw.items():
        if not _same(old, kwargs[key]):
            raise Mistake(f"your function changed its argument {key}= in place: work on a copy instead")
    return result


def _same(a: Any, b: Any) -> bool:
    if hasattr(a, "detach") or type(a).__module__ == "numpy":
        import numpy as np

        x = a.detach().cpu().numpy() if hasattr(a, "detach") else np.asarray(a)
        y = b.detach().cpu().numpy() if hasattr(b, "detach") else np.asarray(b)
        return x.shape == y.shape and bool(np.array_equal(x, y, equal_nan=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    try:
        return bool(a == b)
    except Exception:  # objects without a usable ==
        return True


def close_enough(actual: Any, expected: Any, tol: float = 1e-6) -> bool:
    """True when two numbers/arrays/tensors agree to ``tol`` (absolute)."""
    import numpy as np

    def as_array(x: Any) -> Any:
        return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x, dtype=float)

    a, b = as_array(actual), as_array(expected)
    return a.shape == b.shape and bool(np.allclose(a, b, atol=tol, rtol=0))
