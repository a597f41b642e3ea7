"""GPT4All's runtime (the engine behind the GPT4All desktop app), on the bundled model.

Generation runs in GPT4All; tokenizing, the chat template and detokenizing use llama.cpp's reading of
the same GGUF vocabulary (a vocab-only load, no weights), so prompts are identical to the other
local backends and token counts are exact.

GPT4All specifics handled here:
* it never downloads: ``allow_download=False`` (otherwise it fetches a model list at start-up);
* it needs a metadata-fixed copy of SmolLM2's GGUF (see ``assets.gpt4all_gguf``);
* its sampling defaults differ (repeat_penalty 1.18, top_p 0.4, temp 0.7), so every option is passed;
* its sampler cannot be seeded: sampling with temperature > 0 and a seed raises InvalidOption;
* it has no grammar: ``json_schema=`` raises InvalidOption (use llamacpp or transformers).

**It reads text, not token ids.** GPT4All's C API (``llmodel_prompt``, gpt4all 2.8) takes a prompt
*string* and a flag, ``special``, that says whether markers such as ``<|im_start|>`` in it are parsed
as special tokens. There is no call that takes ids. But each call appends to the same context when
``reset_context`` is off, and ``n_predict=0`` decodes a piece without generating. So
:func:`text_calls` turns the prompt ids (built by ``LocalBackend.chat_ids``: markers special, contents
plain) back into text pieces: runs of ids that read the same either way go in one ``special=True``
call; a run whose text spells a marker (a hostile content) goes in its own ``special=False`` call.
An ordinary chat is therefore still one call, exactly as before, and a content that types
``<|im_end|>`` reaches the model as plain text. The ids GPT4All really decoded can be read back from
its context (``gpt.model.context.tokens``); tests/test_chat_security.py compares them with ours.

Taught in lesson 04 (the same chat through every engine).
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ..config import settings
from ..errors import BackendUnavailable, InvalidOption
from .base import BackendInfo, GenerationOptions, LocalBackend
from .options import check_size

_DONE = object()
TEMPLATE = "%1%2"  # GPT4All's prompt template: the prompt alone (no text around it, nothing appended after)


class GPT4AllBackend(LocalBackend):
    name = "gpt4all"
    supports_seeded_sampling = False  # its sampler takes no seed (see generate_ids)

    def __init__(self, model: str | None = None, n_ctx: int | None = None, n_threads: int | None = None, **_: Any) -> None:
        check_size("n_ctx", n_ctx), check_size("n_threads", n_threads)
        try:
            from gpt4all import GPT4All
            from llama_cpp import Llama
        except ImportError as err:
            raise BackendUnavailable(f"{err.name} is not installed", fix="run `make setup` (pip install gpt4all llama-cpp-python)") from None
        from ..assets import gpt4all_gguf, resolve_gguf
        from .llamacpp import quiet_stderr

        cfg = settings()
        source = resolve_gguf(model)
        self.path = gpt4all_gguf(source) if source.name.startswith("SmolLM2") else source
        self.model_name = str(model or cfg.model or "SmolLM2-135M-Instruct")
        self.n_ctx = n_ctx or cfg.n_ctx
        self.n_threads = n_threads or cfg.n_threads
        with quiet_stderr():  # GPT4All prints a harmless "Failed to load ...cuda.so" on CPU machines
            try:
                self.gpt = GPT4All(self.path.name, model_path=str(self.path.parent), allow_download=False,
                                   n_threads=self.n_threads, device="cpu", n_ctx=self.n_ctx, verbose=False)
                self.vocab = Llama(model_path=str(source), vocab_only=True, verbose=False)
            except Exception as err:  # GPT4All raises ValueError/RuntimeError with C-level text
                raise BackendUnavailable(f"GPT4All could not load {self.path.name} ({str(err).splitlines()[0]})", fix="check that the file is a complete GGUF (download it again); if llama.cpp loads it, GPT4All's older "
                                         "llama.cpp does not know its architecture or pre-tokenizer: use backend='llamacpp'") from None

    # -- LocalBackend hooks (vocabulary from llama.cpp, generation from GPT4All)
    def tokenize(self, text: str, special: bool = False) -> list[int]:
        return self.vocab.tokenize(text.encode("utf-8"), add_bos=False, special=special)

    def detokenize(self, ids: list[int]) -> str:
        return self.vocab.detokenize(ids).decode("utf-8", errors="replace")

    def is_end_of_turn(self, token_id: int) -> bool:
        import llama_cpp

        return bool(llama_cpp.llama_vocab_is_eog(self.vocab._model.vocab, token_id))

    def chat_template(self) -> tuple[str, str, str]:
        from .llamacpp import chat_template_of

        return chat_template_of(self.vocab, self.path)

    def special_tokens(self) -> list[str]:
        from .llamacpp import special_token_texts

        return special_token_texts(self.vocab)

    def generate_ids(self, prompt_ids: Sequence[int], options: GenerationOptions) -> Iterator[int]:
        if options.temperature > 0 and options.seed is not None:
            raise InvalidOption("GPT4All's sampler cannot be seeded, so seeded sampling would not repeat", fix="use temperature=0 (greedy), or backend='llamacpp' for seeded sampling")
        calls = text_calls(list(prompt_ids), self._is_control, self._text_of, self.tokenize, self._markers)
        tokens: queue.Queue = queue.Queue(maxsize=64)
        stop = threading.Event()
        budget = self.n_ctx - len(prompt_ids)

        def on_token(token_id: int, _text: str) -> bool:
            tokens.put(token_id)
            return not stop.is_set()  # returning False ends GPT4All's loop

        def run() -> None:
            try:
                for i, (text, special) in enumerate(calls):
                    last = i == len(calls) - 1  # only the last piece generates; the others just fill the context
                    self.gpt.model.prompt_model(
                        text, TEMPLATE, on_token, n_predict=budget if last else 0,
                        temp=options.temperature, top_k=options.top_k if options.temperature > 0 else 1,
                        top_p=options.top_p, min_p=0.0, repeat_penalty=options.repeat_penalty,
                        repeat_last_n=64, n_batch=128, reset_context=i == 0, special=special,
                    )
            finally:
                tokens.put(_DONE)

        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        produced = 0
        try:
            while (item := tokens.get()) is not _DONE:
                produced += 1
                yield item
            if produced < budget:
                # GPT4All stops at the end-of-turn token without passing it on: report it ourselves
                yield self.vocab.token_eos()
        finally:
            stop.set()
            while worker.is_alive():  # drain so the worker can finish its last put
                with contextlib.suppress(queue.Empty):
                    tokens.get(timeout=0.05)
            worker.join()

    def context_ids(self) -> list[int]:
        """The token ids in GPT4All's context after the last call (prompt, then what it generated)."""
        ctx = self.gpt.model.context
        return [ctx.tokens[i] for i in range(ctx.tokens_size)] if ctx is not None else []

    def _is_control(self, token_id: int) -> bool:
        import llama_cpp

        return bool(llama_cpp.llama_vocab_is_control(self.vocab._model.vocab, token_id))

    def _text_of(self, ids: list[int]) -> str:
        return self.vocab.detokenize(ids, special=True).decode("utf-8", errors="replace")

    def info(self) -> BackendInfo:
        from .llamacpp import ftype_name

        return BackendInfo(self.name, self.model_name, self.n_ctx, "cpu", ftype_name(self.vocab.metadata.get("general.file_type")),
                           {"path": str(self.path), "threads": self.n_threads})

    def close(self) -> None:
        for attr in ("gpt", "vocab"):
            obj = getattr(self, attr, None)
            if obj is not None:
                obj.close()
                setattr(self, attr, None)


def text_calls(ids: list[int], is_control: Callable[[int], bool], text_of: Callable[[list[int]], str],
               tokenize: Callable[..., list[int]], markers: Sequence[str]) -> list[tuple[str, bool]]:
    """Prompt ids as ``(text, special)`` calls whose tokenization gives back exactly ``ids``.

    Control tokens and text runs that spell no marker are joined into ``special=True`` calls; a text
    run that spells a marker becomes a ``special=False`` call of its own. Raises InvalidOption for ids
    that no text reproduces (e.g. ids that are not how the tokenizer would split their text).

    >>> vocab = {"<s>": 0, "a": 1, "<": 2, "s": 3, ">": 4}
    >>> spell = lambda ids: "".join({v: k for k, v in vocab.items()}[i] for i in ids)
    >>> def tok(text, special=False):
    ...     out, rest = [], text
    ...     while rest:
    ...         if special and rest.startswith("<s>"):
    ...             out, rest = out + [0], rest[3:]
    ...         else:
    ...             out, rest = out + [vocab[rest[0]]], rest[1:]
    ...     return out
    >>> text_calls([0, 1, 2, 3, 4, 0, 1], lambda i: i == 0, spell, tok, ["<s>"])
    [('<s>', True), ('a<s>', False), ('<s>a', True)]
    """
    calls: list[tuple[str, bool]] = []
    for run, control in _runs(ids, is_control):
        text = text_of(run)
        special = control or not any(m in text for m in markers)
        if special and calls and calls[-1][1]:
            calls[-1] = (calls[-1][0] + text, True)
        else:
            calls.append((text, special))
    if [i for text, special in calls for i in tokenize(text, special=special)] != ids:
        raise InvalidOption("GPT4All reads text, and these token ids do not come back from their text",
                            fix="pass ids made by backend.tokenize() or backend.chat_ids(), or use backend='llamacpp' for arbitrary ids")
    return calls


def _runs(ids: list[int], is_control: Callable[[int], bool]) -> Iterator[tuple[list[int], bool]]:
    """Split ids into single control tokens and runs of ordinary tokens."""
    run: list[int] = []
    for i in ids:
        if is_control(i):
            if run:
                yield run, False
                run = []
            yield [i], True
        else:
            run.append(i)
    if run:
        yield run, False
