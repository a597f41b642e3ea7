"""course_utils: the helper package of Local LLM Lab.

One interface to every local backend, plus the tools the lessons build on::

    from course_utils import get_backend
    with get_backend("auto") as llm:
        print(llm.chat([{"role": "user", "content": "Name a prime."}], max_tokens=16).text)
"""

from __future__ import annotations

from .backends import get_backend
from .config import Settings, settings
from .errors import (
    BackendUnavailable,
    ContextOverflow,
    CourseError,
    DataError,
    InvalidOption,
    ModelNotFound,
)
from .notebook import setup_notebook
from .report import record

__version__ = "0.1.0"
__all__ = [
    "BackendUnavailable", "ContextOverflow", "CourseError", "DataError", "InvalidOption", "ModelNotFound",
    "Settings", "get_backend", "record", "settings", "setup_notebook",
]
