"""The course's BPE training text, ``data/tokens_corpus.md``, with a held-out part to measure on.

>>> len(corpus("train")) > len(corpus("heldout")) > 0
True

Taught in: lesson 01 (and lab 01).
"""

from __future__ import annotations

from ..errors import DataError, InvalidOption

CORPUS_FILE = "tokens_corpus.md"
HELDOUT_MARKER = "## 21."  # sections 21-24 are kept out of training, to measure on unseen text


def corpus(part: str = "train") -> str:
    """The course's BPE training text (``data/tokens_corpus.md``, ~29 KB of English).

    ``part``: "train" (sections 1-20), "heldout" (sections 21-24) or "all".
    """
    from ..paths import project_root

    if part not in ("train", "heldout", "all"):
        raise InvalidOption(f"part={part!r} is not a part of the corpus", fix='use "train", "heldout" or "all"')
    path = project_root() / "data" / CORPUS_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        raise DataError(f"the course corpus {path} is missing", fix="run from inside the course checkout (git pull to restore data/)") from None
    if part == "all":
        return text
    cut = text.index(HELDOUT_MARKER)
    return text[:cut] if part == "train" else text[cut:]
