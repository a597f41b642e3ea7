"""Every local backend behind one interface: ``get_backend("auto" | name)``.

Backends layer (above the core, below the lesson tools). Taught in lesson 00 (first chat) and
lesson 04 (the same chat through every engine).

>>> from course_utils.backends import available_backends
>>> "llamacpp" in available_backends()
True
"""

from __future__ import annotations

import importlib
from typing import Any

from ..config import settings
from ..errors import BackendUnavailable, CourseError, InvalidOption
from .base import (
    Backend,
    BackendInfo,
    GenerationOptions,
    GenerationResult,
    LocalBackend,
    StreamChunk,
    collect,
)

# name -> "module:Class"; modules are imported only when used (torch alone takes seconds)
_REGISTRY = {
    "llamacpp": "course_utils.backends.llamacpp:LlamaCppBackend",
    "transformers": "course_utils.backends.transformers_backend:TransformersBackend",
    "gpt4all": "course_utils.backends.gpt4all_backend:GPT4AllBackend",
    "ollama": "course_utils.backends.ollama_backend:OllamaBackend",
    "openai": "course_utils.backends.openai_backend:OpenAIBackend",
}
AUTO_ORDER = ("llamacpp", "transformers")

__all__ = [
    "Backend", "BackendInfo", "GenerationOptions", "GenerationResult", "LocalBackend", "StreamChunk",
    "available_backends", "backend_with", "collect", "get_backend",
]

# capability -> what it lets a lesson do (the backend attribute is ``supports_<capability>``)
CAPABILITIES = {
    "json_schema": "constrain output to a JSON schema (a grammar)",
    "seeded_sampling": "repeat a seeded sample (its sampler takes no seed)",
}


def available_backends() -> list[str]:
    """Names accepted by :func:`get_backend` (besides "auto")."""
    return list(_REGISTRY)


def _backend_class(name: str) -> type[Backend]:
    module, cls = _REGISTRY[name].split(":")
    return getattr(importlib.import_module(module), cls)


def get_backend(name: str = "auto", model: str | None = None, **kwargs: Any) -> Backend:
    """Start a backend by name. "auto" uses COURSE_BACKEND if set, else the first that works of
    llamacpp, transformers.

    ``model`` (or COURSE_MODEL) picks the model; extra keyword arguments go to the backend
    (for example ``n_ctx=4096``).
    """
    if not isinstance(name, str):
        raise InvalidOption(f"backend name must be a string, got {type(name).__name__}", fix=f"use one of: auto, {', '.join(_REGISTRY)}")
    name = name.strip().lower()
    if name == "auto":
        name = settings().backend
    if name == "auto":
        return _first_that_works(model, **kwargs)
    if name not in _REGISTRY:
        raise InvalidOption(f"unknown backend {name!r}", fix=f"use one of: auto, {', '.join(_REGISTRY)} (or unset COURSE_BACKEND)")
    return _backend_class(name)(model=model, **kwargs)


def _first_that_works(model: str | None, **kwargs: Any) -> Backend:
    reasons = []
    for candidate in AUTO_ORDER:
        try:
            return _backend_class(candidate)(model=model, **kwargs)
        except CourseError as err:
            reasons.append(f"{candidate}: {err}")
    raise BackendUnavailable("no backend could start (" + "; ".join(reasons) + ")", fix="run `course doctor` to see what is missing")


def backend_with(capability: str, backend: Backend, model: str | None = None, fallback: str = "llamacpp", **kwargs: Any) -> Backend:
    """``backend`` itself if it has ``capability`` (see CAPABILITIES), else a new ``fallback`` backend.

    When it falls back it prints one line saying why, so a lesson run with, say, COURSE_BACKEND=gpt4all
    still shows the cell's point instead of failing. Close the returned backend when it is not ``backend``.

    >>> class NoGrammar:
    ...     name, supports_json_schema = "gpt4all", False
    >>> backend_with("json_schema", NoGrammar(), fallback="nonesuch")
    Traceback (most recent call last):
    ...
    course_utils.errors.InvalidOption: unknown backend 'nonesuch'. Fix: use one of: auto, llamacpp, transformers, gpt4all, ollama, openai (or unset COURSE_BACKEND)
    """
    if capability not in CAPABILITIES:
        raise InvalidOption(f"unknown capability {capability!r}", fix=f"use one of: {', '.join(CAPABILITIES)}")
    if getattr(backend, f"supports_{capability}", False):
        return backend
    substitute = get_backend(fallback, model=model, **kwargs)
    print(f"the {backend.name} backend cannot {CAPABILITIES[capability]}: this cell uses {substitute.name} instead")
    return substitute
