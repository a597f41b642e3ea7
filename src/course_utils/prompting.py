"""Prompt building blocks: few-shot prompts, and fitting a long chat into the context window.

Few-shot prompting shows the model worked examples before the real question, either as raw text for
``complete()`` or as chat turns for ``chat()``:

>>> print(few_shot_prompt([("great film", "positive"), ("dull", "negative")], "loved it",
...                       input_label="Review", output_label="Sentiment"))
Review: great film
Sentiment: positive
<BLANKLINE>
Review: dull
Sentiment: negative
<BLANKLINE>
Review: loved it
Sentiment:

A model reads at most ``n_ctx`` tokens. When a conversation grows past that, something must go; the
strategies below differ in *what* goes. Each takes the messages, a ``count`` function (tokens of a
message list once rendered with the chat template, see :func:`chat_token_counter`) and a token
``budget``, and returns a new list that fits. System messages (moved to the front) and the last message
(the question being asked) are always kept.

* :func:`keep_last_turns`: keep the most recent whole messages that fit (a chat app's usual choice).
* :func:`drop_middle`: keep the first exchange too (where the task and facts are often stated), drop
  from the middle.
* :func:`truncate_oldest`: drop old text token by token rather than whole messages: the oldest message
  kept may lose its beginning.

>>> chat = [{"role": "user", "content": "a " * 50}, {"role": "assistant", "content": "b " * 50},
...         {"role": "user", "content": "c?"}]
>>> words = lambda msgs: sum(len(m["content"].split()) + 1 for m in msgs)  # a toy token counter
>>> [m["content"][:2] for m in keep_last_turns(chat, words, budget=60)]
['b ', 'c?']
>>> [len(m["content"].split()) for m in truncate_oldest(chat, words, budget=60)]
[6, 50, 1]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .backends.base import Message, check_messages
from .errors import ContextOverflow, InvalidOption

Counter = Callable[[Sequence[Message]], int]

STEP_BY_STEP = "Let's think step by step."


# ----------------------------------------------------------------------------- few-shot prompts
def few_shot_prompt(
    examples: Sequence[tuple[str, str]],
    query: str,
    input_label: str = "Input",
    output_label: str = "Output",
    instruction: str = "",
) -> str:
    """Completion-style few-shot prompt: labelled examples, then the query with an empty answer slot.

    The prompt ends with ``"{output_label}:"`` so that the model's continuation *is* the answer; pass
    ``stop=["\\n"]`` to ``complete()`` to cut it after one line.
    """
    _check_examples(examples)
    head = f"{instruction.strip()}\n\n" if instruction.strip() else ""
    shots = "".join(f"{input_label}: {x}\n{output_label}: {y}\n\n" for x, y in examples)
    return f"{head}{shots}{input_label}: {query}\n{output_label}:"


def few_shot_messages(
    examples: Sequence[tuple[str, str]], query: str, system: str | None = None
) -> list[dict[str, str]]:
    """Chat-style few-shot: each example is a user turn answered by an assistant turn, then the query.

    The model sees its "own" earlier answers in the wanted format and tends to continue the pattern.
    """
    _check_examples(examples)
    messages = [{"role": "system", "content": system}] if system else []
    for x, y in examples:
        messages += [{"role": "user", "content": x}, {"role": "assistant", "content": y}]
    return messages + [{"role": "user", "content": query}]


def _check_examples(examples: Any) -> None:
    ok = isinstance(examples, Sequence) and all(
        isinstance(e, Sequence) and not isinstance(e, str) and len(e) == 2 and all(isinstance(s, str) for s in e)
        for e in examples
    )
    if not ok:
        raise InvalidOption("examples must be a list of (input, output) string pairs", fix='pass e.g. [("great film", "positive")]')


# ----------------------------------------------------------------------------- counting
def chat_token_counter(backend: Any) -> Counter:
    """A ``count(messages)`` function: tokens the model reads for ``messages`` (template included).

    Needs a local backend (a :class:`~course_utils.backends.LocalBackend`), so that the count is exact:
    the chat template adds its own tokens (role markers, a default system prompt) around every message.
    """
    from .backends.base import LocalBackend

    if not isinstance(backend, LocalBackend):
        raise InvalidOption(f"{backend!r} cannot render and tokenize a chat", fix="use a local backend: get_backend('llamacpp') or get_backend('transformers')")

    def count(messages: Sequence[Message]) -> int:
        return len(backend.chat_ids(messages))

    return count


def context_budget(backend: Any, max_tokens: int) -> int:
    """Tokens left for the prompt when ``max_tokens`` must stay free for the answer."""
    budget = int(backend.n_ctx) - max_tokens
    if budget <= 0:
        raise InvalidOption(f"max_tokens={max_tokens} leaves no room for a prompt in a {backend.n_ctx}-token context", fix="ask for fewer max_tokens")
    return budget


# ----------------------------------------------------------------------------- truncation strategies
def _split(messages: Sequence[Message], budget: int) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """(system messages, the rest), after validating the inputs."""
    clean = check_messages(messages)
    if isinstance(budget, bool) or not isinstance(budget, int) or budget <= 0:
        raise InvalidOption(f"budget must be a positive number of tokens, got {budget!r}", fix="pass e.g. budget=context_budget(backend, max_tokens=64)")
    system = [m for m in clean if m["role"] == "system"]
    return system, [m for m in clean if m["role"] != "system"]


def _too_long(count: Counter, kept: Sequence[Message], budget: int) -> ContextOverflow:
    return ContextOverflow(
        f"even the system prompt and the last message need {count(kept)} tokens, over the budget of {budget}",
        fix="shorten the last message or the system prompt, or use a larger context (n_ctx=)",
    )


def keep_last_turns(messages: Sequence[Message], count: Counter, budget: int) -> list[dict[str, str]]:
    """System messages plus the most recent whole messages that fit in ``budget`` tokens."""
    system, rest = _split(messages, budget)
    kept = rest[-1:]
    if count(system + kept) > budget:
        raise _too_long(count, system + kept, budget)
    for message in reversed(rest[:-1]):
        if count(system + [message] + kept) > budget:
            break
        kept.insert(0, message)
    return system + kept


def drop_middle(
    messages: Sequence[Message], count: Counter, budget: int, keep_first: int = 2, marker: str | None = None
) -> list[dict[str, str]]:
    """System messages, the first ``keep_first`` messages and the most recent ones that fit.

    The first exchange often holds the task or facts the rest depends on ("my name is Ada"), so it is
    worth more than the chatter in the middle. ``marker`` (e.g. "[earlier messages omitted]") is added
    as a system message where messages were dropped, so the model knows something is missing.
    """
    system, rest = _split(messages, budget)
    if count(system + rest) <= budget:
        return system + rest
    last = rest[-1:]
    if count(system + last) > budget:
        raise _too_long(count, system + last, budget)
    gap = [{"role": "system", "content": marker}] if marker else []
    head = rest[: min(keep_first, len(rest) - 1)]
    while head and count(system + head + gap + last) > budget:
        head = head[:-1]  # not even the first messages fit whole: give up the later ones first
    tail = last
    for message in reversed(rest[len(head) : -1]):  # then fill up from the end, newest first
        if count(system + head + gap + [message] + tail) > budget:
            break
        tail = [message] + tail
    if len(head) + len(tail) == len(rest):
        gap = []  # nothing was dropped after all
    return system + head + gap + tail


def truncate_oldest(messages: Sequence[Message], count: Counter, budget: int) -> list[dict[str, str]]:
    """Remove the oldest text until the chat fits: whole messages first, then the start of the oldest one left.

    Unlike :func:`keep_last_turns` this fills the budget (to within a token or two), at the price of a
    message that starts mid-sentence (marked with "…").
    """
    system, rest = _split(messages, budget)
    kept = keep_last_turns(system + rest, count, budget)[len(system):]
    dropped = rest[: len(rest) - len(kept)]
    if not dropped:
        return system + kept
    partial = dict(dropped[-1])  # the newest message that did not fit whole: keep as much of its end as fits
    text = partial["content"]
    lo, hi = 0, len(text)  # binary search on how many characters to keep from the end
    while lo < hi:
        mid = (lo + hi + 1) // 2
        partial["content"] = "…" + text[len(text) - mid:]
        if count(system + [partial] + kept) <= budget:
            lo = mid
        else:
            hi = mid - 1
    if lo == 0:
        return system + kept
    partial["content"] = "…" + text[len(text) - lo:]
    return system + [partial] + kept


STRATEGIES: dict[str, Callable[..., list[dict[str, str]]]] = {
    "keep_last_turns": keep_last_turns,
    "drop_middle": drop_middle,
    "truncate_oldest": truncate_oldest,
}


def fit_to_context(backend: Any, messages: Sequence[Message], max_tokens: int, strategy: str = "keep_last_turns") -> list[dict[str, str]]:
    """``messages`` shortened with ``strategy`` so that they plus ``max_tokens`` fit the backend's context."""
    if strategy not in STRATEGIES:
        raise InvalidOption(f"unknown strategy {strategy!r}", fix=f"use one of: {', '.join(STRATEGIES)}")
    return STRATEGIES[strategy](messages, chat_token_counter(backend), context_budget(backend, max_tokens))
