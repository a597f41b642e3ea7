"""llama.cpp backend through llama-cpp-python, in this process.

llama.cpp runs GGUF files (quantized weights) with fast CPU kernels. Two details matter here:

* **KV cache reuse.** A ``Llama`` object keeps the KV cache of its last call and reuses any shared
  prefix. That changes the arithmetic (prompt processed in different batches), so greedy output can
  differ between identical calls. We call ``reset()`` before every generation: each call then behaves
  like the first one, and stream and non-stream calls agree.
* **Sampler defaults.** llama.cpp applies min_p=0.05 by default; we switch it (and typical_p) off so
  the options mean the same thing on every backend.
* **Prompts are token ids.** ``LocalBackend.chat_ids`` builds them (template markers as special
  tokens, message contents as plain text) and ``Llama.generate`` gets those ids, so a content that
  spells ``<|im_start|>`` stays seven plain-text tokens.

:func:`quiet_stderr`, :func:`ftype_name` and :func:`special_token_texts` are used by the other modules
that drive llama.cpp (GPT4All's vocabulary, evaluation, serving). Taught in lessons 00 and 04.
"""

from __future__ import annotations

import contextlib
import os
import sys
import weakref
from collections.abc import Iterator, Sequence
from typing import Any

from ..config import settings
from ..errors import BackendUnavailable, InvalidOption
from .base import BackendInfo, GenerationOptions, LocalBackend
from .options import check_size


class LlamaCppBackend(LocalBackend):
    name = "llamacpp"
    supports_json_schema = True

    def __init__(self, model: str | None = None, n_ctx: int | None = None, n_threads: int | None = None, n_batch: int = 512) -> None:
        check_size("n_ctx", n_ctx), check_size("n_threads", n_threads), check_size("n_batch", n_batch)
        try:
            from llama_cpp import Llama
        except ImportError:
            raise BackendUnavailable(
                "llama-cpp-python is not installed",
                fix='run `make setup` (or CMAKE_ARGS="-DLLAVA_BUILD=OFF" pip install llama-cpp-python), or use backend="transformers"',
            ) from None
        from ..assets import resolve_gguf

        cfg = settings()
        self.path = resolve_gguf(model)
        self.model_name = str(model or cfg.model or "SmolLM2-135M-Instruct")
        self.n_ctx = n_ctx or cfg.n_ctx
        self.n_threads = n_threads or cfg.n_threads
        try:
            with quiet_stderr():
                self.llm = Llama(
                    model_path=str(self.path),
                    n_ctx=self.n_ctx,
                    n_threads=self.n_threads,
                    n_batch=n_batch,
                    verbose=False,
                )
        except (ValueError, RuntimeError) as err:
            raise BackendUnavailable(f"llama.cpp could not load {self.path} ({err})", fix="check that the file is a complete GGUF model (re-download it), or set COURSE_MODEL") from None
        # free the model even if close() is never called (llama-cpp-python's own __del__ can fail at exit)
        self._finalizer = weakref.finalize(self, self.llm.close)

    # -- LocalBackend hooks
    def tokenize(self, text: str, special: bool = False) -> list[int]:
        return self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=special)

    def detokenize(self, ids: list[int]) -> str:
        return self.llm.detokenize(ids).decode("utf-8", errors="replace")

    def is_end_of_turn(self, token_id: int) -> bool:
        import llama_cpp

        return bool(llama_cpp.llama_vocab_is_eog(self.llm._model.vocab, token_id))

    def chat_template(self) -> tuple[str, str, str]:
        return chat_template_of(self.llm, self.path)

    def special_tokens(self) -> list[str]:
        return special_token_texts(self.llm)

    def generate_ids(self, prompt_ids: Sequence[int], options: GenerationOptions) -> Iterator[int]:
        self.llm.reset()  # forget the previous call's KV cache (see the module docstring)
        self.llm.set_seed(options.resolved_seed())
        grammar = _grammar(options.json_schema) if options.json_schema is not None else None
        yield from self.llm.generate(
            list(prompt_ids),
            temp=options.temperature,
            top_k=options.top_k,
            top_p=options.top_p,
            min_p=0.0,
            typical_p=1.0,
            repeat_penalty=options.repeat_penalty,
            reset=True,
            grammar=grammar,
        )

    def info(self) -> BackendInfo:
        meta = self.llm.metadata
        return BackendInfo(
            name=self.name,
            model=self.model_name,
            context_length=self.n_ctx,
            device="cpu",
            quantization=ftype_name(meta.get("general.file_type")),
            details={"path": str(self.path), "threads": self.n_threads, "trained_context": int(meta.get("llama.context_length", 0) or 0)},
        )

    def close(self) -> None:
        finalizer = getattr(self, "_finalizer", None)
        if finalizer is not None:
            finalizer()  # runs llm.close() once, however often close() is called
            self.llm = None  # type: ignore[assignment]


def chat_template_of(llm: Any, path: Any) -> tuple[str, str, str]:
    """(chat template, BOS text, EOS text) from a loaded GGUF's metadata."""
    template = llm.metadata.get("tokenizer.chat_template")
    if not template:
        raise BackendUnavailable(f"{path.name} has no chat template in its metadata", fix="use complete() for raw text, or a GGUF of an instruction-tuned model")

    def text_of(token_id: int) -> str:
        return "" if token_id < 0 else llm.detokenize([token_id], special=True).decode("utf-8", errors="replace")

    return template, text_of(llm.token_bos()), text_of(llm.token_eos())


def special_token_texts(llm: Any) -> list[str]:
    """Texts of a llama.cpp vocabulary's control tokens (<|im_start|>, <|endoftext|>, ...): ~0.1 s for 50k tokens."""
    import llama_cpp

    vocab = llm._model.vocab
    control = llama_cpp.LLAMA_TOKEN_ATTR_CONTROL
    return [llm.detokenize([i], special=True).decode("utf-8", errors="replace")
            for i in range(llama_cpp.llama_vocab_n_tokens(vocab)) if llama_cpp.llama_vocab_get_attr(vocab, i) & control]


# llama-cpp-python's schema converter lets a JSON string hold raw control characters (a newline, a tab), which
# JSON forbids: json.loads then rejects a reply the grammar admitted. llama.cpp's own converter (llama-server's)
# leaves them out of a string's characters; so does this one, by editing that one rule.
LOOSE_STRING_CHAR = r'char ::= [^"\\] |'
STRICT_STRING_CHAR = r'char ::= [^"\\\x7F\x00-\x1F] |'


def json_schema_gbnf(schema: dict) -> str:
    r"""The GBNF grammar (text) that admits only JSON matching ``schema``, with no raw control character in a string.

    >>> rules = json_schema_gbnf({"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]})
    >>> print(next(line for line in rules.splitlines() if line.startswith("char ::=")).split(" |")[0])
    char ::= [^"\\\x7F\x00-\x1F]
    """
    import json

    from llama_cpp.llama_grammar import json_schema_to_gbnf

    try:
        return json_schema_to_gbnf(json.dumps(schema)).replace(LOOSE_STRING_CHAR, STRICT_STRING_CHAR)
    except (ValueError, RuntimeError, TypeError, KeyError) as err:
        raise InvalidOption(f"llama.cpp cannot turn this JSON schema into a grammar ({err})", fix="simplify the schema: objects, arrays, strings, numbers, enums") from None


def _grammar(schema: dict) -> object:
    """A GBNF grammar that only admits JSON matching ``schema`` (llama.cpp masks every other token)."""
    from llama_cpp import LlamaGrammar

    text = json_schema_gbnf(schema)
    with quiet_stderr():  # the grammar parser prints its rules
        try:
            return LlamaGrammar.from_string(text, verbose=False)
        except (ValueError, RuntimeError, TypeError) as err:
            raise InvalidOption(f"llama.cpp cannot turn this JSON schema into a grammar ({err})", fix="simplify the schema: objects, arrays, strings, numbers, enums") from None


def ftype_name(file_type: str | None) -> str:
    """The quantization name of a GGUF ``general.file_type`` value.

    >>> ftype_name("3"), ftype_name(None)
    ('Q4_1', 'GGUF file_type None')
    """
    names = {"0": "F32", "1": "F16", "2": "Q4_0", "3": "Q4_1", "7": "Q8_0", "8": "Q5_0", "9": "Q5_1", "15": "Q4_K_M", "17": "Q5_K_M", "18": "Q6_K", "32": "BF16"}
    return names.get(str(file_type), f"GGUF file_type {file_type}")


@contextlib.contextmanager
def quiet_stderr(fds: tuple[int, ...] = (2,)) -> Iterator[None]:
    """Silence C-level messages of llama.cpp and GPT4All (they go straight to file descriptor 2).

    ``fds=(1, 2)`` silences standard output too (llama.cpp's quantizer prints there).

    >>> with quiet_stderr():
    ...     os.write(2, b"not shown")
    9
    """
    sys.stdout.flush()
    try:
        saved = [(fd, os.dup(fd)) for fd in fds]
    except OSError:
        yield
        return
    with open(os.devnull, "w") as devnull:
        for fd, _ in saved:
            os.dup2(devnull.fileno(), fd)
        try:
            yield
        finally:
            for fd, copy in saved:
                os.dup2(copy, fd)
                os.close(copy)
