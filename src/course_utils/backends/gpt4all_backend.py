"""GPT4All's runtime (the engine behind the GPT4All desktop app), on the bundled model.

Generation runs in GPT4All; tokenizing, the chat template and detokenizing use llama.cpp's reading of
the same GGUF vocabulary (a vocab-only load, no weights), so prompts are identical to the other
local backends and token counts are exact.

GPT4All specifics handled here:
* it never downloads: ``allow_download=False`` (otherwise it fetches a model list at start-up);
* it needs a metadata-fixed copy of SmolLM2's GGUF (see ``assets.gpt4all_gguf``);
* its sampling defaults differ (repeat_penalty 1.18, top_p 0.4, temp 0.7), so every option is passed;
* its sampler cannot be seeded: sampling with temperature > 0 and a seed raises InvalidOption.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator
from typing import Any

from ..config import settings
from ..errors import BackendUnavailable, InvalidOption
from .base import BackendInfo, GenerationOptions, LocalBackend, PromptIds

_DONE = object()


class GPT4AllBackend(LocalBackend):
    name = "gpt4all"

    def __init__(self, model: str | None = None, n_ctx: int | None = None, n_threads: int | None = None, **_: Any) -> None:
        try:
            from gpt4all import GPT4All
            from llama_cpp import Llama
        except ImportError as err:
            raise BackendUnavailable(f"{err.name} is not installed", fix="run `make setup` (pip install gpt4all llama-cpp-python)") from None
        from ..assets import gpt4all_gguf, resolve_gguf
        from .llamacpp import _quiet_stderr

        cfg = settings()
        source = resolve_gguf(model)
        self.path = gpt4all_gguf(source) if source.name.startswith("SmolLM2") else source
        self.model_name = str(model or cfg.model or "SmolLM2-135M-Instruct")
        self.n_ctx = n_ctx or cfg.n_ctx
        self.n_threads = n_threads or cfg.n_threads
        with _quiet_stderr():  # GPT4All prints a harmless "Failed to load ...cuda.so" on CPU machines
            try:
                self.gpt = GPT4All(self.path.name, model_path=str(self.path.parent), allow_download=False,
                                   n_threads=self.n_threads, device="cpu", n_ctx=self.n_ctx, verbose=False)
            except Exception as err:  # GPT4All raises ValueError/RuntimeError with C-level text
                raise BackendUnavailable(f"GPT4All could not load {self.path.name} ({str(err).splitlines()[0]})", fix="use backend='llamacpp', or a GGUF whose pre-tokenizer GPT4All knows") from None
            self.vocab = Llama(model_path=str(source), vocab_only=True, verbose=False)

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

    def generate_ids(self, prompt_ids: list[int], options: GenerationOptions) -> Iterator[int]:
        if options.temperature > 0 and options.seed is not None:
            raise InvalidOption("GPT4All's sampler cannot be seeded, so seeded sampling would not repeat", fix="use temperature=0 (greedy), or backend='llamacpp' for seeded sampling")
        if not isinstance(prompt_ids, PromptIds):
            raise TypeError("GPT4All generates from text: pass a PromptIds")
        tokens: queue.Queue = queue.Queue(maxsize=64)
        stop = threading.Event()
        budget = self.n_ctx - len(prompt_ids)

        def on_token(token_id: int, _text: str) -> bool:
            tokens.put(token_id)
            return not stop.is_set()  # returning False ends GPT4All's loop

        def run() -> None:
            try:
                self.gpt.model.prompt_model(
                    prompt_ids.text, "%1", on_token, n_predict=budget,
                    temp=options.temperature, top_k=options.top_k if options.temperature > 0 else 1,
                    top_p=options.top_p, min_p=0.0, repeat_penalty=options.repeat_penalty,
                    repeat_last_n=64, n_batch=128, reset_context=True, special=prompt_ids.special,
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

    def info(self) -> BackendInfo:
        from .llamacpp import _ftype_name

        return BackendInfo(self.name, self.model_name, self.n_ctx, "cpu", _ftype_name(self.vocab.metadata.get("general.file_type")),
                           {"path": str(self.path), "threads": self.n_threads})

    def close(self) -> None:
        for attr in ("gpt", "vocab"):
            obj = getattr(self, attr, None)
            if obj is not None:
                obj.close()
                setattr(self, attr, None)
