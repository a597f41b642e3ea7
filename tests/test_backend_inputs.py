"""The inputs a learner really gets wrong, on every backend entry point: one clear line with "Fix:" each.

Broken model files are made here (empty, an HTML error page saved as .gguf, a download cut short, a
folder) from the bundled GGUF; nothing is loaded that is not a real course model.
"""

from __future__ import annotations

import pytest

from course_utils.assets import smollm2_gguf
from course_utils.backends import get_backend
from course_utils.errors import BackendUnavailable, InvalidOption, ModelNotFound

LOCAL = ["llamacpp", "transformers", "gpt4all"]
QUESTION = [{"role": "user", "content": "What is the capital of Germany?"}]


def _broken_models(folder):
    (folder / "empty.gguf").write_bytes(b"")
    (folder / "page.gguf").write_text("<html><body>404 Not Found</body></html>")
    with open(smollm2_gguf(), "rb") as src:  # a download that stopped after 1 MB
        (folder / "cut-short.gguf").write_bytes(src.read(1_000_000))
    (folder / "folder.gguf").mkdir()
    (folder / "no-config").mkdir()
    return folder


@pytest.fixture(scope="module")
def broken(tmp_path_factory):
    return _broken_models(tmp_path_factory.mktemp("broken-models"))


@pytest.mark.parametrize("name", LOCAL)
@pytest.mark.parametrize("model", ["empty.gguf", "page.gguf", "cut-short.gguf", "folder.gguf", "no-config", "missing.gguf"])
def test_a_bad_model_file_gets_one_clear_line(name, model, broken):
    with pytest.raises((ModelNotFound, BackendUnavailable)) as err:
        get_backend(name, model=str(broken / model))
    message = str(err.value)
    assert model in message and "Fix:" in message
    assert "\n" not in message  # one line, not a C++ log or a traceback


@pytest.mark.parametrize("name", LOCAL + ["ollama", "openai"])
@pytest.mark.parametrize(("option", "value"), [("n_ctx", 0), ("n_ctx", -512), ("n_ctx", "big"), ("n_ctx", 2.5), ("n_threads", 0), ("n_threads", -1)])
def test_a_bad_size_is_refused_before_loading(name, option, value):
    if name in ("ollama", "openai") and option == "n_threads":
        pytest.skip("server backends take no n_threads")
    with pytest.raises(InvalidOption) as err:
        get_backend(name, **{option: value})
    assert option in str(err.value) and "Fix:" in str(err.value)


def test_a_bad_dtype_is_refused():
    with pytest.raises(InvalidOption, match="dtype.*Fix:"):
        get_backend("transformers", dtype="float33")


@pytest.mark.parametrize("messages", [
    {"role": "user", "content": "Hi"},  # one dict instead of a list
    ["Hi", "there"],  # strings instead of dicts
    [{"content": "no role"}],
    [{"role": "User ", "content": "Hi"}],
    [{"role": "user", "content": None}],
    [{"role": "user", "content": 42}],
    [{"role": "user", "content": b"bytes from a file"}],
    [{"role": "user", "content": ["a", "list"]}],
    b"bytes",
    None,
])
def test_malformed_messages_get_a_fix(any_backend, messages):
    with pytest.raises(InvalidOption) as err:
        any_backend.chat(messages, max_tokens=2)
    assert "Fix:" in str(err.value)
    if isinstance(messages, list) and isinstance(messages[0], dict) and isinstance(messages[0].get("content"), bytes):
        assert "decode" in str(err.value)


@pytest.mark.parametrize("prompt", ["", None, b"bytes", 12, ["a"]])
def test_a_bad_prompt_gets_a_fix(any_backend, prompt):
    with pytest.raises(InvalidOption, match="prompt.*Fix:"):
        any_backend.complete(prompt, max_tokens=2)


def test_a_huge_paste_is_a_context_overflow_not_a_crash(local_backend):
    from course_utils.errors import ContextOverflow

    paste = "All work and no play makes Jack a dull boy. " * 400  # ~4,400 tokens into a 2,048 window
    with pytest.raises(ContextOverflow) as err:
        local_backend.chat([{"role": "user", "content": paste}], max_tokens=5)
    assert "Fix:" in str(err.value) and "tokens" in str(err.value)


@pytest.mark.parametrize("ids", [[], "hello", [1.5, 2], [True, 3]])
def test_bad_prompt_ids_get_a_fix(local_backend, ids):
    with pytest.raises(InvalidOption, match="prompt_ids.*Fix:"):
        local_backend.complete_ids_stream(ids)


def test_count_tokens_wants_text(local_backend):
    with pytest.raises(InvalidOption, match="Fix:"):
        local_backend.count_tokens(b"bytes")

