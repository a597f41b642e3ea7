"""Fair comparisons on a busy machine: contenders in turns, each keeping its least disturbed run."""

from __future__ import annotations

import pytest

from course_utils.errors import InvalidOption
from course_utils.timing import best_of_turns


def test_contenders_alternate_and_each_keeps_its_cheapest_result():
    calls = []
    costs = {"A": iter([9.0, 3.0, 4.0]), "B": iter([5.0, 6.0, 1.0])}

    def contender(name):
        def run():
            calls.append(name)
            return (name, next(costs[name]))
        return run

    best = best_of_turns({"A": contender("A"), "B": contender("B")}, repeats=3, cost=lambda r: r[1])
    assert calls == ["A", "B"] * 3  # in turns, not all of A then all of B
    assert best == {"A": ("A", 3.0), "B": ("B", 1.0)}  # the minimum, wherever it came
    assert list(best) == ["A", "B"]


def test_cost_decides_what_best_means():
    speeds = iter([10.0, 30.0, 20.0, 5.0])  # tokens/s of A, B, A, B
    best = best_of_turns({"A": lambda: next(speeds), "B": lambda: next(speeds)}, repeats=2, cost=lambda tps: -tps)
    assert best == {"A": 20.0, "B": 30.0}  # the fastest run, not the last or the first


def test_a_tie_keeps_the_first_run():
    runs = iter([("first", 1.0), ("second", 1.0)])
    assert best_of_turns({"A": lambda: next(runs)}, repeats=2, cost=lambda r: r[1]) == {"A": ("first", 1.0)}


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_bad_repeats_is_one_clear_error(bad):
    with pytest.raises(InvalidOption, match="repeats must be a whole number"):
        best_of_turns({"A": lambda: 1.0}, repeats=bad, cost=float)
