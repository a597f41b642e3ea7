"""What the grader's own cells run inside the learner's kernel: the real check, and a fingerprint of the code.

Part of ``course grade`` (:mod:`course_utils.grading`); no lesson teaches it.

Each grader cell sends its result as a display output of the MIME type :data:`MIME`, carrying the run's
nonce (a random string that appears in the grader's cells only, after the learner's code has run). The
grader reads nothing else: text a learner prints, even a perfect "✅ ...: passed", never counts.

A fingerprint (:func:`fingerprints`) is a hash of the code of every function and class that the course's
modules define, taken once before the learner's first cell (:func:`baseline`) and again with every check:
a notebook that replaced a check, ``run_check`` or a reference function the check compares with
(``course_utils.checks.setup.check_ask = ...``) shows up as a changed fingerprint. So does one that
registered an IPython event callback or swapped the display functions (:func:`output_hooks`): such code
runs inside the grader's cells, sees their source and nonce, and could send a verdict of its own.

>>> import course_utils.checks as checks
>>> before = fingerprints({"course_utils.checks": names_to_watch(checks)})
>>> saved, checks.run_check = checks.run_check, lambda *a, **k: None
>>> fingerprints({"course_utils.checks": names_to_watch(checks)}) == before
False
>>> checks.run_check = saved
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import sys
import types
from collections.abc import Callable
from typing import Any

MIME = "application/vnd.course-verdict+json"
PACKAGE = "course_utils"
HOOKS = "(IPython hooks and display)"  # the fingerprint of what can add output to the grader's cells
TRUSTED_HOOKS = ("IPython.", "ipykernel.", "matplotlib_inline.", "matplotlib.", "ipywidgets.", "tqdm.")
_WATCHED: dict[str, list[str]] = {}  # module -> names fingerprinted by baseline(); read again by every check


def _code_bytes(code: types.CodeType) -> bytes:
    parts = [code.co_code, repr(code.co_names).encode()]
    parts += [_code_bytes(c) if isinstance(c, types.CodeType) else repr(c).encode() for c in code.co_consts]
    return b"\0".join(parts)


def _object_bytes(obj: Any) -> bytes:
    obj = inspect.unwrap(obj) if callable(obj) else obj
    if inspect.isfunction(obj):
        return _code_bytes(obj.__code__)
    if inspect.isclass(obj):
        members = sorted((k, v) for k, v in vars(obj).items() if callable(v) and inspect.isfunction(inspect.unwrap(v)))
        return b"class\0" + b"\0".join(k.encode() + b"=" + _object_bytes(v) for k, v in members)
    return f"<{type(obj).__qualname__}>".encode()


def names_to_watch(module: types.ModuleType) -> list[str]:
    """The module's functions and classes that the course itself defines (not third-party ones it imported)."""
    return sorted(k for k, v in vars(module).items()
                  if (inspect.isfunction(v) or inspect.isclass(v)) and (getattr(v, "__module__", "") or "").startswith(PACKAGE))


def fingerprints(watched: dict[str, list[str]]) -> dict[str, str]:
    """A short hash per module of the code now behind each watched name (a name that went away counts too)."""
    out = {}
    for name, attributes in sorted(watched.items()):
        module = sys.modules.get(name)
        digest = hashlib.sha256(repr(attributes).encode())
        for attribute in attributes:
            digest.update(attribute.encode() + b"=" + (_object_bytes(getattr(module, attribute)) if hasattr(module, attribute) else b"<gone>"))
        out[name] = digest.hexdigest()[:16]
    return out


def _origin(callback: Any) -> str:
    """Where a callback's code was written: ``module.qualname`` of the function behind it."""
    target = inspect.unwrap(getattr(callback, "func", callback))  # a functools.partial: its function
    target = getattr(target, "__func__", target)  # a bound method: its function
    return f"{getattr(target, '__module__', None) or '?'}.{getattr(target, '__qualname__', type(target).__qualname__)}"


def output_hooks() -> str:
    """What besides a cell's own code can send output while it runs: IPython's event callbacks that
    neither IPython nor a plotting library registered (``pre_run_cell`` sees each cell's source, the
    nonce included), and the display functions and publisher in use.

    >>> output_hooks() == output_hooks()
    True
    """
    from IPython import display as ipython_display
    from IPython import get_ipython
    from IPython.core import display_functions

    parts = [f"display={id(ipython_display.display)},{id(display_functions.display)},{id(display_functions.publish_display_data)}"]
    shell = get_ipython()
    if shell is not None:
        for event, callbacks in sorted(shell.events.callbacks.items()):
            foreign = [origin for origin in map(_origin, callbacks) if not origin.startswith(TRUSTED_HOOKS)]
            parts.append(f"{event}={foreign}")
        publisher = shell.display_pub
        parts.append(f"publisher={type(publisher).__module__}.{type(publisher).__qualname__}:"
                     f"{sorted(k for k, v in vars(publisher).items() if callable(v))}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _watched_now() -> dict[str, str]:
    return fingerprints(_WATCHED) | {HOOKS: output_hooks()}


def _emit(payload: dict[str, Any], text: str) -> None:
    from IPython.display import display

    display({MIME: payload, "text/plain": text}, raw=True)


def baseline(nonce: str, modules: list[str]) -> None:
    """Import the lab's check modules and send the fingerprints of every course module now loaded."""
    for module in modules:
        importlib.import_module(module)
    _WATCHED.clear()
    _WATCHED.update({name: names_to_watch(m) for name, m in list(sys.modules.items()) if name.startswith(PACKAGE) and m is not None})
    _emit({"nonce": nonce, "kind": "baseline", "fingerprints": _watched_now()},
          f"[course grade] fingerprint of {len(_WATCHED)} course modules taken")


def run_check_cell(nonce: str, index: int, module: str, function: str, call: Callable[[Callable[..., Any]], Any]) -> None:
    """Run the lab's check ``module.function`` through ``call`` (the lab's own call) and send its verdict."""
    from ..checks import Verdict

    payload: dict[str, Any] = {"nonce": nonce, "index": index}
    try:
        verdict = call(getattr(importlib.import_module(module), function))
    except NameError as err:  # the answer (or something the call needs) was never defined
        payload.update(kind="missing", message=f"{err.name or err} is not defined")
    except Exception as err:  # noqa: BLE001 - a check never raises; the lab's call arguments might
        payload.update(kind="error", message=f"the check could not run: {type(err).__name__}: {err}")
    else:
        if isinstance(verdict, Verdict):
            payload.update(kind="verdict", name=verdict.name, status=verdict.status, message=verdict.message)
        else:
            payload.update(kind="error", message=f"the check returned {type(verdict).__name__}, not a Verdict")
    payload["fingerprints"] = _watched_now()
    shown = verdict if payload["kind"] == "verdict" else f"{function}: {payload['kind']}: {payload['message']}"
    _emit(payload, f"[course grade] {shown}")
