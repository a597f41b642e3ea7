"""What a learner passes to a backend, checked once for all backends: options, messages, prompts.

Every backend reads the same :class:`GenerationOptions`, and ``Backend.chat_stream`` /
``Backend.complete_stream`` run :func:`check_messages` / :func:`check_prompt` before any backend
sees the input, so a mistake gets the same one-line error from llama.cpp, PyTorch or a server.

>>> GenerationOptions.from_kwargs(max_tokens=5, stop="\\n").stop
('\\n',)
>>> check_messages([{"role": "user", "content": "Hi"}])
[{'role': 'user', 'content': 'Hi'}]
>>> check_prompt("")
Traceback (most recent call last):
...
course_utils.errors.InvalidOption: prompt must be a non-empty string, got ''. Fix: pass some text to continue

Taught in lesson 00 (the options) and lesson 03 (what each sampling option does).
"""

from __future__ import annotations

import numbers
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from ..errors import InvalidOption

Message = Mapping[str, str]
ROLES = ("system", "user", "assistant", "tool")


@dataclass(frozen=True)
class GenerationOptions:
    """Generation settings shared by every backend. Defaults are greedy and reproducible."""

    max_tokens: int = 128
    temperature: float = 0.0  # 0 = greedy (always the most likely token)
    top_k: int = 0  # 0 = off
    top_p: float = 1.0  # 1.0 = off
    repeat_penalty: float = 1.0  # 1.0 = off
    seed: int | None = None  # None = a fresh random seed each call
    stop: tuple[str, ...] = ()
    json_schema: dict[str, Any] | None = None  # force output to match this JSON schema (where supported)

    def __post_init__(self) -> None:
        _check_int("max_tokens", self.max_tokens, minimum=1)
        _check_number("temperature", self.temperature, minimum=0.0)
        _check_int("top_k", self.top_k, minimum=0)
        _check_number("top_p", self.top_p, minimum=0.0, maximum=1.0, open_min=True)
        _check_number("repeat_penalty", self.repeat_penalty, minimum=0.0, open_min=True)
        if self.seed is not None:
            _check_int("seed", self.seed, minimum=0)
        stop = (self.stop,) if isinstance(self.stop, str) else self.stop
        if not isinstance(stop, Iterable) or not all(isinstance(s, str) and s for s in stop):
            raise InvalidOption(f"stop={self.stop!r} must be a string or a list of non-empty strings", fix='pass e.g. stop=["\\n"]')
        object.__setattr__(self, "stop", tuple(stop))
        if self.json_schema is not None and not isinstance(self.json_schema, Mapping):
            raise InvalidOption(f"json_schema must be a dict (a JSON schema), got {type(self.json_schema).__name__}", fix='pass e.g. json_schema={"type": "object", "properties": {...}}')

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> GenerationOptions:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise InvalidOption(f"unknown generation option(s) {', '.join(unknown)}", fix=f"use only {', '.join(sorted(known))}")
        return cls(**{k: v for k, v in kwargs.items() if v is not None or k == "seed"})

    def resolved_seed(self) -> int:
        return self.seed if self.seed is not None else random.SystemRandom().randrange(2**31)


def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InvalidOption(f"{name} must be an integer, got {type(value).__name__} {value!r}", fix=f"pass {name}={max(minimum, 1)} or another whole number")
    if value < minimum:
        raise InvalidOption(f"{name} must be >= {minimum}, got {value}", fix=f"pass {name}={max(minimum, 1)} or larger")


def _check_number(name: str, value: Any, minimum: float, maximum: float | None = None, open_min: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidOption(f"{name} must be a number, got {type(value).__name__} {value!r}", fix=f"pass {name} as a float, e.g. {name}=1.0")
    too_low = value <= minimum if open_min else value < minimum
    if too_low or (maximum is not None and value > maximum):
        bounds = f"{'>' if open_min else '>='} {minimum}" + (f" and <= {maximum}" if maximum is not None else "")
        raise InvalidOption(f"{name} must be {bounds}, got {value}", fix=f"pass a {name} in that range")


def check_messages(messages: Any) -> list[dict[str, str]]:
    """Validate chat messages: a non-empty list of ``{"role": ..., "content": str}`` (a copy is returned)."""
    fix = 'pass messages=[{"role": "user", "content": "Hello"}]'
    if isinstance(messages, str | bytes) or not isinstance(messages, Sequence) or not messages:
        raise InvalidOption(f"messages must be a non-empty list of dicts, got {type(messages).__name__}", fix=fix)
    clean = []
    for i, m in enumerate(messages):
        if not isinstance(m, Mapping) or m.get("role") not in ROLES:
            raise InvalidOption(f"message {i} ({m!r:.80}) needs a role: one of {', '.join(ROLES)}", fix=fix)
        if not isinstance(m.get("content"), str):
            got = type(m.get("content")).__name__ if "content" in m else "no content"
            raise InvalidOption(f"message {i} needs a string content, got {got}", fix=fix + " (decode bytes with .decode('utf-8') first)")
        clean.append({"role": m["role"], "content": m["content"]})
    return clean


def check_prompt(prompt: Any) -> str:
    """Validate a completion prompt: a non-empty string."""
    if not isinstance(prompt, str) or not prompt:
        raise InvalidOption(f"prompt must be a non-empty string, got {prompt!r:.40}", fix="pass some text to continue")
    return prompt


def check_size(name: str, value: Any) -> int | None:
    """A backend's ``n_ctx=`` / ``n_threads=`` argument: None (use the setting) or a whole number >= 1.

    >>> check_size("n_ctx", 0)
    Traceback (most recent call last):
    ...
    course_utils.errors.InvalidOption: n_ctx must be a whole number >= 1, got int 0. Fix: pass e.g. n_ctx=2048, or leave it out to use the course setting
    """
    if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1):
        example = {"n_ctx": 2048, "n_threads": 2}.get(name, 1)
        raise InvalidOption(f"{name} must be a whole number >= 1, got {type(value).__name__} {value!r}",
                            fix=f"pass e.g. {name}={example}, or leave it out to use the course setting")
    return value
