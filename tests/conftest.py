"""Shared fixtures: the real model through each backend, loaded once per test session."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # tests/ollama_standin.py
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


@pytest.fixture(scope="session")
def gpt4all_backend():
    from course_utils.backends import get_backend

    backend = get_backend("gpt4all")
    yield backend
    backend.close()


@pytest.fixture(scope="session")
def llama_server():
    """A real llama.cpp OpenAI-compatible server process on a free loopback port."""
    from course_utils.server import LlamaServer

    with LlamaServer() as server:
        yield server


@pytest.fixture(scope="session")
def openai_backend(llama_server):
    from course_utils.backends import get_backend

    backend = get_backend("openai", base_url=llama_server.base_url)
    yield backend
    backend.close()


@pytest.fixture(scope="session")
def ollama_standin(llamacpp):
    """The Ollama-protocol stand-in server (tests/ollama_standin.py), generating with the real model."""
    from ollama_standin import OllamaStandIn

    with OllamaStandIn() as server:
        yield server


@pytest.fixture(scope="session")
def ollama_backend(ollama_standin):
    from course_utils.backends import get_backend

    backend = get_backend("ollama", host=ollama_standin.host)
    yield backend
    backend.close()


ALL_BACKENDS = ["llamacpp", "transformers", "gpt4all", "ollama", "openai"]
_FIXTURE = {"llamacpp": "llamacpp", "transformers": "transformers_backend", "gpt4all": "gpt4all_backend",
            "ollama": "ollama_backend", "openai": "openai_backend"}


@pytest.fixture(params=ALL_BACKENDS)
def any_backend(request):
    """Each of the five backends in turn, for the conformance suite."""
    return request.getfixturevalue(_FIXTURE[request.param])
