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
