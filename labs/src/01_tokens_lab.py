# %% [markdown]
# # Lab 01 · Tokens: build a BPE tokenizer yourself
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/local-llm-lab/local-llm-lab/blob/main/labs/01_tokens_lab.ipynb)
#
# Seven exercises on lesson 01. Replace each `raise NotImplementedError` with your code, run the cell, and
# read the check's verdict: ✅ means right, ❌ comes with a hint, ⏳ means not done yet.
#
# You will write the pieces of byte-level BPE (bytes, pair counts, one merge), train a few merges on the course
# corpus and compare them with `course_utils.tokenizer.train`, count the tokens of a prompt with two real
# tokenizers, then encode with your merges and build a tokenizer that reaches a compression target on text it
# never saw.
#
# **Prerequisites:** lesson 01.
#
# **Run time:** 4 s on a 2-core CPU (Intel(R) Xeon(R) Processor), measured by `course run` on 2026-12-02; a slower machine takes longer.

# %%
# Colab only: install the course (~5 min the first time). Does nothing on your own machine.
import sys
if "google.colab" in sys.modules:
    # !git clone -q --depth 1 https://github.com/local-llm-lab/local-llm-lab /content/local-llm-lab
    # !bash /content/local-llm-lab/tools/install.sh --system

# %% tags=["parameters"]
BACKEND = "auto"  # not used by this lab: everything here is tokenization
MODEL = None
SEED = 0
NUM_MERGES = 20  # exercise 4: how many merges to learn

# %%
from course_utils import setup_notebook
from course_utils.checks.tokens import (
    TARGET_BYTES_PER_TOKEN,
    VOCAB_BUDGET,
    check_byte_encoding,
    check_compression,
    check_encode,
    check_get_stats,
    check_merge,
    check_token_count,
    check_train,
)
from course_utils.tokenizer import cl100k_tiktoken, corpus, smollm2, split_text

cfg = setup_notebook(seed=SEED)

# %% [markdown]
# ## Exercise 1: text to bytes
#
# Write `to_bytes(text)` that returns the UTF-8 bytes of `text` as a **list of ints** (0–255). For example
# `to_bytes("hé")` is `[104, 195, 169]`: "é" takes two bytes.

# %%
def to_bytes(text: str) -> list[int]:
    # TODO: encode the text as UTF-8 and turn the bytes into a list of ints
    raise NotImplementedError


check_byte_encoding(to_bytes)

# %% [markdown]
# ## Exercise 2: count the pairs
#
# Write `count_pairs(ids)` that returns a dict mapping each pair of neighbours `(a, b)` to how often it occurs:
# `count_pairs([1, 2, 3, 1, 2])` is `{(1, 2): 2, (2, 3): 1, (3, 1): 1}`. `itertools.pairwise(ids)` (or
# `zip(ids, ids[1:])`) walks over the neighbours.

# %%
from itertools import pairwise


def count_pairs(ids: list[int]) -> dict[tuple[int, int], int]:
    # TODO: loop over the neighbours and count each pair in a dict
    raise NotImplementedError


check_get_stats(count_pairs)

# %% [markdown]
# ## Exercise 3: apply one merge
#
# Write `merge_pair(ids, pair, new_id)` that returns a **new** list in which every occurrence of `pair` is
# replaced by `new_id`, scanning left to right. Careful with overlaps: `merge_pair([5, 5, 5], (5, 5), 6)` is
# `[6, 5]`, because the middle 5 is used up by the first merge.

# %%
def merge_pair(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    # TODO: walk through ids with an index; on a match append new_id and skip two, else copy one
    raise NotImplementedError


check_merge(merge_pair)

# %% [markdown]
# ## Exercise 4: train a few merges
#
# Put the pieces together. Write `train_bpe(text, num_merges)` that
#
# 1. cuts `text` into chunks with `split_text(text)` (GPT-4's pattern) and turns each chunk into its bytes,
# 2. repeats `num_merges` times: counts the pairs in **all** chunks together, takes the most frequent pair,
#    gives it the next id (256, 257, ...) and merges it in every chunk,
# 3. returns the merges as a dict `{(a, b): new_id}` in the order learned.
#
# The check replays your merges, then trains your function once more on a second text with another number of
# merges, and compares with `course_utils.tokenizer.train` (when two pairs are equally frequent, either choice
# is right).

# %%
def train_bpe(text: str, num_merges: int) -> dict[tuple[int, int], int]:
    # TODO: chunks = [to_bytes(c) for c in split_text(text)], then num_merges rounds of count / pick / merge
    raise NotImplementedError


check_train(train_bpe, num_merges=NUM_MERGES)

# %% [markdown]
# ## Exercise 5: count the tokens of a prompt
#
# A prompt's cost depends on the tokenizer. Write `prompt_tokens(text)` that returns
# `{"SmolLM2": n, "cl100k_base": m}`: the number of tokens of `text` for SmolLM2 (`smollm2()`, the lesson's
# tokenizer) and for cl100k_base (`cl100k_tiktoken()`, tiktoken built offline). Count the text only, no special
# tokens.

# %%
def prompt_tokens(text: str) -> dict[str, int]:
    # TODO: encode the text with both tokenizers and return the lengths
    raise NotImplementedError


check_token_count(prompt_tokens)

# %% [markdown]
# ## Exercise 6: encode with your merges
#
# Training gave an ordered table of merges; *encoding* a new text replays it. Write `encode(text, merges)`:
# cut the text with `split_text(text)`, and in each chunk (starting from its bytes) keep merging the pair that
# was **learned earliest** (the smallest new id in `merges`) until no pair of the chunk is in `merges`; then
# join the ids of all chunks. Merges never cross from one chunk into the next.
#
# The check encodes texts with emoji, digits and an empty string, with merges learned on the corpus and a few
# hand-made ones, and compares with `course_utils.tokenizer.Tokenizer(merges).encode`.

# %%
def encode(text: str, merges: dict[tuple[int, int], int]) -> list[int]:
    # TODO: for each chunk of split_text(text): start from its bytes and merge until no pair of it is in merges
    raise NotImplementedError


check_encode(encode)

# %% [markdown]
# ## Exercise 7: build a tokenizer that compresses (build and measure)
#
# Fewer tokens for the same text means a cheaper, faster model and more text in its context window. Write
# `build_tokenizer(text, vocab_size)`: return the merges of a tokenizer with at most `vocab_size` tokens
# (256 bytes + merges), learned from `text` only.
#
# The check hands your function the training part of the course corpus, holds out a few of its sections that
# your function never sees, encodes them with your merges and your `encode`, checks that the tokens decode back
# to the text, and measures **UTF-8 bytes per token** (higher is better). The target and the budget come from
# the check (printed below); the check also prints what `course_utils.tokenizer.train` reaches with the same
# budget.

# %%
print(f"budget: {VOCAB_BUDGET} tokens; target: at least {TARGET_BYTES_PER_TOKEN} bytes per token on held-out text")


def build_tokenizer(text: str, vocab_size: int) -> dict[tuple[int, int], int]:
    # TODO: learn merges on text (your train_bpe is fine), at most vocab_size - 256 of them
    raise NotImplementedError


check_compression(build_tokenizer, encode)

# %% [markdown]
# ## Going further
#
# - Train `train_bpe` on `corpus()` with 200 merges and time it. Then time `course_utils.tokenizer.train` on the
#   same text: why is it faster? (Hint: after a merge, which chunks need their pairs counted again?)
# - Which of the two tokenizers in exercise 5 is cheaper for German? For Python code? Try a few prompts of your
#   own.
