"""The course's figure style: one look for every plot, readable on screen and on GitHub."""

from __future__ import annotations

from typing import Any

COURSE_STYLE: dict[str, Any] = {
    "figure.figsize": (7.0, 4.0),
    "figure.dpi": 90,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titleweight": "bold",
    "font.size": 10,
}


def use_course_style() -> None:
    """Apply the course style to matplotlib (no-op if matplotlib is missing)."""
    try:
        import matplotlib as mpl
    except ImportError:
        return
    mpl.rcParams.update(COURSE_STYLE)


def labelled(ax: Any, title: str, xlabel: str, ylabel: str) -> Any:
    """Give an axes its title and axis labels (units in the labels, please) in one call."""
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return ax
