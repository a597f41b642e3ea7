"""Choosing a backend by name, and the errors a learner sees when that goes wrong."""

from __future__ import annotations

import pytest

from course_utils.backends import available_backends, get_backend
from course_utils.errors import BackendUnavailable, InvalidOption, ModelNotFound


def test_unknown_backend_names_the_choices():
    with pytest.raises(InvalidOption) as err:
        get_backend("llama-cpp-turbo")
    message = str(err.value)
    assert "llama-cpp-turbo" in message
    assert all(name in message for name in available_backends())


def test_backend_name_must_be_text():
    with pytest.raises(InvalidOption, match="Fix:"):
        get_backend(3)


def test_unknown_backend_from_environment(monkeypatch):
    monkeypatch.setenv("COURSE_BACKEND", "nope")
    with pytest.raises(InvalidOption, match="COURSE_BACKEND"):
        get_backend("auto")


@pytest.mark.parametrize("name", ["llamacpp", "transformers"])
def test_missing_model_path(name, tmp_path):
    missing = tmp_path / "no-such-model.gguf"
    with pytest.raises(ModelNotFound) as err:
        get_backend(name, model=str(missing))
    assert str(missing) in str(err.value) and "COURSE_MODEL" in str(err.value)


def test_llamacpp_rejects_a_hub_id_with_advice():
    with pytest.raises(ModelNotFound, match="GGUF"):
        get_backend("llamacpp", model="HuggingFaceTB/SmolLM2-1.7B-Instruct")


def test_transformers_hub_id_offline_says_how_to_get_it():
    with pytest.raises(ModelNotFound, match="offline.*Fix:"):
        get_backend("transformers", model="HuggingFaceTB/definitely-not-cached-model")


def test_broken_gguf_file(tmp_path):
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\x00" * 64)
    with pytest.raises(BackendUnavailable, match="Fix:"):
        get_backend("llamacpp", model=str(broken))


def test_auto_reports_every_failure(monkeypatch, tmp_path):
    monkeypatch.delenv("COURSE_BACKEND", raising=False)
    with pytest.raises(BackendUnavailable) as err:
        get_backend("auto", model=str(tmp_path / "missing.gguf"))
    assert "llamacpp:" in str(err.value) and "transformers:" in str(err.value)


def test_auto_prefers_llamacpp(monkeypatch):
    monkeypatch.delenv("COURSE_BACKEND", raising=False)
    with get_backend("auto") as backend:
        assert backend.name == "llamacpp"


def test_course_backend_env_is_honoured(monkeypatch, transformers_backend):
    monkeypatch.setenv("COURSE_BACKEND", "transformers")
    with get_backend("auto") as backend:
        assert backend.name == "transformers"


def test_close_is_idempotent():
    backend = get_backend("llamacpp")
    backend.close()
    backend.close()


@pytest.mark.parametrize(("requested", "course_model", "served", "chosen"), [
    (None, None, ["smollm2"], "smollm2"),  # nothing asked: the server's model
    (None, "/models/x.gguf", ["smollm2"], "smollm2"),  # COURSE_MODEL names a local file, not a served model
    ("/models/x.gguf", "/models/x.gguf", ["a", "b"], "a"),  # a notebook passing MODEL=COURSE_MODEL on
    (None, "b", ["a", "b"], "b"),  # COURSE_MODEL names a served model: use it (the old and/or line took "a")
    ("b", "b", ["a", "b"], "b"),
    ("b", "/models/x.gguf", ["a", "b"], "b"),
])
def test_openai_picks_the_served_model(requested, course_model, served, chosen):
    from course_utils.backends.openai_backend import choose_served_model

    assert choose_served_model(requested, course_model, served) == chosen


def test_openai_names_a_model_the_server_lacks():
    from course_utils.backends.openai_backend import choose_served_model

    with pytest.raises(ModelNotFound, match="'nope'.*Fix: use model='a'"):
        choose_served_model("nope", "/models/x.gguf", ["a", "b"])


def test_backend_with_keeps_a_capable_backend(llamacpp, capsys):
    from course_utils.backends import backend_with

    assert backend_with("json_schema", llamacpp) is llamacpp and backend_with("seeded_sampling", llamacpp) is llamacpp
    assert capsys.readouterr().out == ""


def test_backend_with_hands_over_what_gpt4all_lacks_and_says_why(gpt4all_backend, capsys):
    from course_utils.backends import backend_with

    assert not gpt4all_backend.supports_json_schema and not gpt4all_backend.supports_seeded_sampling
    with pytest.raises(InvalidOption):  # why a fallback is needed: GPT4All refuses both
        gpt4all_backend.chat([{"role": "user", "content": "Hi"}], max_tokens=4, json_schema={"type": "object"})
    with pytest.raises(InvalidOption):
        gpt4all_backend.complete("Once", max_tokens=4, temperature=0.9, seed=1)
    for capability in ("json_schema", "seeded_sampling"):
        with backend_with(capability, gpt4all_backend) as other:
            assert other is not gpt4all_backend and other.name == "llamacpp"
            said = capsys.readouterr().out
            assert said.startswith("the gpt4all backend cannot") and "uses llamacpp instead" in said
            if capability == "json_schema":
                assert other.chat([{"role": "user", "content": "Name a colour."}], max_tokens=24, json_schema={"type": "object"}).text.startswith("{")
            else:
                assert len({other.complete("Once", max_tokens=6, temperature=0.9, seed=3).text for _ in range(2)}) == 1


def test_backend_with_rejects_an_unknown_capability(llamacpp):
    from course_utils.backends import backend_with

    with pytest.raises(InvalidOption, match="Fix:"):
        backend_with("telepathy", llamacpp)
