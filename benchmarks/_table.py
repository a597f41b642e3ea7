"""A plain-text table for the benchmark scripts (imported as ``from _table import table``)."""

from __future__ import annotations


def table(rows: list[dict], title: str) -> None:
    """Print ``rows`` (dicts with the same keys) under ``title``, columns padded to fit."""
    print(f"\n{title}")
    cols = list(rows[0])
    width = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in cols}
    print("  ".join(c.ljust(width[c]) for c in cols))
    print("  ".join("-" * width[c] for c in cols))
    for r in rows:
        print("  ".join(str(r[c]).ljust(width[c]) for c in cols))


def with_machine(main):  # noqa: ANN001, ANN201 (any benchmark's main)
    """Run ``main()`` between two lines that say what machine the figures come from: cores, load, CPU and
    the instruction sets that decide its speed (``course_utils.machine``), at the start and at the end."""
    from course_utils.machine import describe

    print(f"machine at the start: {describe()}", flush=True)
    try:
        return main()
    finally:
        print(f"\nmachine at the end: {describe()}")
