"""Shared fixtures: the real model through each backend, loaded once per test session."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")


@pytest.fixture(scope="session")
def llamacpp():
    from course_utils.backends import get_backend

    backend = get_backend("llamacpp")
    yield backend
    backend.close()


@pytest.fixture(scope="session")
def transformers_backend():
    from course_utils.backends import get_backend

    backend = get_backend("transformers")
    yield backend
    backend.close()


@pytest.fixture(scope="session")
def hf_model(transformers_backend):
    """(model, tokenizer) of the fp32 SmolLM2, shared with the transformers backend."""
    return transformers_backend.model, transformers_backend.tokenizer


@pytest.fixture(params=["llamacpp", "transformers"])
def local_backend(request):
    """Each in-process backend in turn (for behaviour that must be the same on both)."""
    name = "transformers_backend" if request.param == "transformers" else request.param
    return request.getfixturevalue(name)
