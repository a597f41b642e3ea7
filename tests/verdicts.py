"""What every lab-check test asks of a verdict, in one place (imported as ``from verdicts import ...``).

A check's first failure must name the mistake and must not show the next hint step (the text that
``hint(name)`` gives, registered by ``run_check(..., more=...)``): :func:`failed_with` asserts both and
returns the message; :func:`fails_naming` is the same test as a bool, for ``assert fails_naming(...)``.
"""

from __future__ import annotations

from course_utils.checks import _MORE_HINTS, Verdict


def todo(*args: object, **kwargs: object) -> None:
    """An exercise left as it ships: the check must say "not done"."""
    raise NotImplementedError


def _more_withheld(verdict: Verdict) -> bool:
    more = _MORE_HINTS.get(verdict.name)
    return not more or more not in verdict.message


def failed_with(verdict: Verdict, *words: str) -> str:
    """Assert ``verdict`` failed with every one of ``words`` in its message (any case) and without the next hint step."""
    assert verdict.status == "failed", verdict
    message = verdict.message.lower()
    assert all(w.lower() in message for w in words), verdict.message
    assert _more_withheld(verdict), "the first failure must not show the next hint step"
    return verdict.message


def fails_naming(verdict: Verdict, *words: str) -> bool:
    """Whether ``verdict`` is a ❌ whose text holds every one of ``words`` (as written) and not the next hint step."""
    text = str(verdict)
    return verdict.status == "failed" and text.startswith("❌") and all(w in text for w in words) and _more_withheld(verdict)
