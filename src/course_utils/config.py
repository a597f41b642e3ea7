"""Course settings, read from environment variables in one place.

| variable          | meaning                                                   | default                 |
|-------------------|-----------------------------------------------------------|-------------------------|
| COURSE_MODEL      | hub id, HF folder or GGUF file; empty = bundled SmolLM2   | (bundled SmolLM2-135M)  |
| COURSE_BACKEND    | "auto", "llamacpp", "transformers", ...                   | auto                    |
| COURSE_CACHE      | where converted models and other caches live              | ~/.cache/local-llm-lab  |
| COURSE_SEED       | seed used by notebooks and sampling                       | 0                       |
| COURSE_CTX        | context window (tokens) given to local backends           | 2048                    |
| COURSE_THREADS    | CPU threads for local backends                            | number of cores (max 8) |
| OLLAMA_HOST       | Ollama server address                                     | http://127.0.0.1:11434  |
| OPENAI_BASE_URL   | OpenAI-compatible server (llama.cpp server, vLLM, ...)     | http://127.0.0.1:8000/v1|
| OPENAI_API_KEY    | key sent to that server (local servers ignore it)         | sk-local                |

>>> from course_utils.config import Settings
>>> Settings.from_env({"COURSE_SEED": "7"}).seed
7
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .errors import InvalidOption


def _default_threads() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


@dataclass(frozen=True)
class Settings:
    """All course settings. Build with :meth:`from_env`; every field has a safe default."""

    model: str | None = None
    backend: str = "auto"
    cache_dir: Path = field(default_factory=lambda: Path.home() / ".cache" / "local-llm-lab")
    seed: int = 0
    n_ctx: int = 2048
    n_threads: int = field(default_factory=_default_threads)
    ollama_host: str = "http://127.0.0.1:11434"
    openai_base_url: str = "http://127.0.0.1:8000/v1"
    openai_api_key: str = "sk-local"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read the settings from ``env`` (default: ``os.environ``); empty values mean default."""
        env = os.environ if env is None else env
        get = lambda name: (env.get(name) or "").strip() or None  # noqa: E731
        defaults = cls()
        return cls(
            model=get("COURSE_MODEL"),
            backend=(get("COURSE_BACKEND") or defaults.backend).lower(),
            cache_dir=Path(get("COURSE_CACHE") or defaults.cache_dir).expanduser(),
            seed=_as_int("COURSE_SEED", get("COURSE_SEED"), defaults.seed, minimum=0),
            n_ctx=_as_int("COURSE_CTX", get("COURSE_CTX"), defaults.n_ctx, minimum=1),
            n_threads=_as_int("COURSE_THREADS", get("COURSE_THREADS"), defaults.n_threads, minimum=1),
            ollama_host=get("OLLAMA_HOST") or defaults.ollama_host,
            openai_base_url=get("OPENAI_BASE_URL") or defaults.openai_base_url,
            openai_api_key=get("OPENAI_API_KEY") or defaults.openai_api_key,
        )


def _as_int(name: str, raw: str | None, default: int, minimum: int) -> int:
    """``raw`` as a whole number >= ``minimum`` (``COURSE_THREADS=0`` would make llama.cpp hang or crash).

    >>> _as_int("COURSE_THREADS", "0", 2, minimum=1)
    Traceback (most recent call last):
    ...
    course_utils.errors.InvalidOption: COURSE_THREADS=0 must be at least 1. Fix: set COURSE_THREADS to a whole number >= 1, e.g. 2, or unset it
    """
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidOption(
            f"{name}={raw!r} is not a whole number", fix=f"set {name} to an integer, e.g. {default}"
        ) from None
    if value < minimum:
        raise InvalidOption(f"{name}={value} must be at least {minimum}", fix=f"set {name} to a whole number >= {minimum}, e.g. {default}, or unset it")
    return value


def settings() -> Settings:
    """The current settings (re-read each call, so notebooks can change os.environ)."""
    return Settings.from_env()
