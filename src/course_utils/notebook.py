"""Set-up shared by every notebook: offline mode, seeds, plot style, one-line errors.

>>> cfg = setup_notebook(seed=0)   # doctest: +SKIP
"""

from __future__ import annotations

import os
import random
import warnings

from .config import Settings, settings
from .errors import CourseError


def setup_notebook(seed: int | None = None, quiet_errors: bool = True) -> Settings:
    """Call once at the top of a notebook. Returns the current :class:`Settings`.

    * forces offline mode for the Hugging Face libraries (nothing is downloaded),
    * seeds Python, NumPy and PyTorch (``seed`` or COURSE_SEED),
    * applies the course plot style,
    * shows a :class:`CourseError` as its one-line message instead of a long traceback.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # tqdm warns that ipywidgets is missing; progress bars still work as text
    warnings.filterwarnings("ignore", message="IProgress not found")
    cfg = settings()
    seed = cfg.seed if seed is None else seed
    seed_everything(seed)
    from .plots import use_course_style

    use_course_style()
    if quiet_errors:
        _short_course_errors()
    return cfg


def seed_everything(seed: int) -> None:
    random.seed(seed)
    try:
        import numpy as np

        np.random.seed(seed)
    except ImportError:
        pass
    try:
        import torch

        torch.manual_seed(seed)
    except ImportError:
        pass


def _short_course_errors() -> None:
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None:
        return

    def show(shell, etype, value, tb, tb_offset=None):  # noqa: ANN001
        print(f"{etype.__name__}: {value}")

    shell.set_custom_exc((CourseError,), show)
