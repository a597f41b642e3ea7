"""The lab-check machinery: verdicts, stepwise hints, and catching functions that change their input."""

from __future__ import annotations

import torch

from course_utils.checks import Mistake, call_unchanged, hint, run_check


def test_first_failure_names_the_mistake_but_keeps_the_solution_back(capsys):
    def test(fn):
        return fn(3) == 6 or f"double(3) gave {fn(3)}, not 6"

    verdict = run_check("double-it", test, lambda x: x + 2, hint="look at the operator you used", more="return x * 2")
    assert verdict.status == "failed"
    assert "double(3) gave 5" in verdict.message and "look at the operator" in verdict.message
    assert "x * 2" not in verdict.message and 'hint("double-it")' in verdict.message
    assert hint("double-it") == "return x * 2" and "💡 double-it: return x * 2" in capsys.readouterr().out
    assert run_check("double-it", test, lambda x: 2 * x).passed


def test_a_crash_and_a_mistake_are_failures_not_exceptions():
    assert run_check("c", lambda fn: fn(), lambda: 1 / 0).status == "failed"
    verdict = run_check("m", lambda fn: (_ for _ in ()).throw(Mistake("off by one")), lambda: 0)
    assert verdict.status == "failed" and verdict.message.startswith("off by one")


def test_in_place_changes_are_caught_for_tensors_lists_and_keywords():
    def scale_in_place(t, factor=2.0):
        t.mul_(factor)
        return t

    x = torch.tensor([1.0, 2.0])
    try:
        call_unchanged(scale_in_place, x)
    except Mistake as err:
        assert "argument 1 in place" in str(err)
    else:
        raise AssertionError("the in-place change went unnoticed")
    assert torch.equal(call_unchanged(lambda t: t * 2, torch.tensor([1.0, 2.0])), torch.tensor([2.0, 4.0]))

    def append(items=None):
        items.append(1)
        return items

    try:
        call_unchanged(append, items=[0])
    except Mistake as err:
        assert "items=" in str(err)
    else:
        raise AssertionError("the in-place change of a keyword argument went unnoticed")


def test_hint_for_an_unknown_check_says_which_exist(capsys):
    run_check("known-one", lambda fn: True, lambda: 0, more="a step")
    assert "no further hint for 'nope'" in hint("nope") and "known-one" in capsys.readouterr().out
