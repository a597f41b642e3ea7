r"""Generation benchmarks: the model writes, a program checks (lesson 09).

* **GSM8K** (Cobbe et al. 2021): greedy completion of the 8-shot chain-of-thought prompt, then
  exact match of the final number (:func:`extract_number`);
* **HumanEval** (Chen et al. 2021): the model completes a Python function; the program and the
  task's unit tests run in :func:`course_utils.sandbox.run_python`, and pass@1 is the share that pass.

>>> extract_number("... 5 + 4 = 9. So the answer is 9.")
'9'
>>> extract_number("She has $1,250.50 left")
'1250.5'
>>> print(extract_code("def f(x):\n", "    return x + 1\n\nprint(f(2))\n"))   # cut where a new statement starts
def f(x):
    return x + 1
<BLANKLINE>
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

from ..errors import InvalidOption
from .multiple_choice import binomial_stderr
from .tasks import gsm8k, humaneval

_NUMBER = re.compile(r"-?\$?\d[\d,]*(?:\.\d+)?")


def extract_number(text: str) -> str | None:
    """The final answer of a GSM8K solution: the number after "answer is", else the last number.

    Commas and "$" go; "18.0" becomes "18", so it can be compared with the reference as a string.
    """
    if not isinstance(text, str):
        return None
    tail = re.split(r"answer is", text, flags=re.I)
    found = _NUMBER.findall(tail[-1] if len(tail) > 1 and _NUMBER.search(tail[-1]) else text)
    if not found:
        return None
    number = found[0] if len(tail) > 1 and _NUMBER.search(tail[-1]) else found[-1]
    number = number.replace(",", "").replace("$", "")
    if "." in number:
        number = number.rstrip("0").rstrip(".")
    return number


@dataclass
class GenResult:
    task: str
    rows: list[dict[str, Any]] = field(repr=False)
    seconds: float

    @property
    def n(self) -> int:
        return len(self.rows)

    @property
    def score(self) -> float:
        return sum(r["correct"] for r in self.rows) / self.n

    def row(self) -> dict[str, Any]:
        metric = "exact_match" if self.task == "gsm8k" else "pass@1"
        return {"task": self.task, "n": self.n, metric: self.score, "±": binomial_stderr(self.score, self.n), "seconds": self.seconds}


def _check_generator(backend: Any, max_tokens: Any) -> None:
    """A backend that writes text (``complete``), and a sensible token budget: one clear line otherwise."""
    if not callable(getattr(backend, "complete", None)):
        raise InvalidOption(f"generation tasks need a course backend that writes text, got a {type(backend).__name__}",
                            fix='pass get_backend("llamacpp") (or any backend): it must have .complete(prompt, ...)')
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise InvalidOption(f"max_tokens={max_tokens!r} must be a whole number >= 1", fix="use e.g. max_tokens=160")


def run_gsm8k(backend: Any, limit: int = 5, max_tokens: int = 160) -> GenResult:
    """Greedy completion of the 8-shot prompt until the next "Question:"; exact match of the final number."""
    _check_generator(backend, max_tokens)
    rows, started = [], time.perf_counter()
    for item in gsm8k(limit):
        text = backend.complete(item.prompt, max_tokens=max_tokens, temperature=0.0, stop=["\n\nQuestion:", "Question:"]).text
        got = extract_number(text)
        rows.append({"id": item.id, "output": text.strip(), "predicted": got, "answer": item.answer, "correct": got == item.answer})
    return GenResult("gsm8k", rows, time.perf_counter() - started)


def extract_code(prompt: str, completion: str) -> str:
    """The program to test: the prompt plus the completed body, cut where a new top-level statement
    (or a closing ``` fence) starts, as the HumanEval harness's stop sequences do."""
    cut = re.search(r"\n(?:```|def |class |if __name__|print\(|#)", completion)
    return prompt + (completion[:cut.start()] if cut else completion)


def run_humaneval(backend: Any, limit: int = 3, max_tokens: int = 192, timeout_s: float = 5.0) -> GenResult:
    """pass@1 with greedy decoding: complete each function, then run its unit tests in the sandbox."""
    from ..sandbox import run_python

    _check_generator(backend, max_tokens)
    rows, started = [], time.perf_counter()
    for item in humaneval(limit):
        completion = backend.complete(item.prompt, max_tokens=max_tokens, temperature=0.0, stop=["\ndef ", "\nclass ", "\nif __name__", "\nprint(", "\n```"]).text
        program = extract_code(item.prompt, completion) + "\n\n" + item.answer + f"\n\ncheck({item.entry_point})\n"
        result = run_python(program, timeout_s=timeout_s)
        rows.append({"id": item.id, "completion": completion, "correct": result.ok, "timed_out": result.timed_out,
                     "error": result.stderr.strip().splitlines()[-1] if result.stderr.strip() else ""})
    return GenResult("humaneval", rows, time.perf_counter() - started)
