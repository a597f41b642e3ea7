"""Hugging Face transformers backend: the model as PyTorch modules, generation loop written here.

We do not call ``model.generate``: the loop below (prefill the prompt once, then feed one token at a
time while the KV cache remembers the past) is short, streams without threads, and samples with
``course_utils.sampling`` so lesson 03 can show exactly what happens.

**JSON-schema constrained decoding** (``json_schema=``, lessons 10 and 11) masks the logits at every
step of that loop: only tokens that keep the output a valid prefix of some JSON document matching the
schema may be chosen, and the end-of-turn token only once the document is complete. The mask comes
from llguidance (the Rust engine behind Microsoft's Guidance; llama.cpp and vLLM can use it too),
chosen after comparing, on SmolLM2 with transformers 5.24 and torch 2.13 CPU, offline:

* **llguidance 1.9.1** - installs alone (no dependencies; torch, transformers and numpy untouched),
  builds its token table from our fast tokenizer in ~1-2 s (once per backend), compiles a schema
  in ~2-20 ms and fills a step's mask in ~1 ms; full JSON Schema, nested and recursive; valid output
  for all five test schemas. Chosen.
* xgrammar 0.2.9 - also valid output and fast compilation, but it declares ``triton`` (a GPU
  compiler, hundreds of MB) as a dependency even on CPU machines.
* outlines-core 0.2.14 (and outlines 1.3.3 on top of it) - valid output, but the schema becomes one
  regular expression compiled over the whole vocabulary: 0.1-0.5 s per schema, ~0.1 s per step
  through its Python token lists, and no recursive schemas.
* lm-format-enforcer 0.11.3 - its transformers integration fails to import on transformers 5
  (``transformers.tokenization_utils`` moved).
* transformers-cfg 0.2.7 - EBNF grammars only: no JSON-schema front end.

Taught in lessons 02-03 (the loop, sampling) and 10-11 (forced JSON).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from typing import Any

from ..config import settings
from ..errors import BackendUnavailable, CourseError, InvalidOption
from .base import BackendInfo, GenerationOptions, LocalBackend
from .options import check_size


class TransformersBackend(LocalBackend):
    name = "transformers"
    supports_json_schema = True

    def __init__(self, model: str | None = None, n_ctx: int | None = None, n_threads: int | None = None, dtype: str = "float32") -> None:
        check_size("n_ctx", n_ctx), check_size("n_threads", n_threads)
        try:
            import torch
        except ImportError:
            raise BackendUnavailable("PyTorch is not installed", fix="run `make setup`, or pip install torch==2.13.0") from None
        if not isinstance(dtype, str) or not isinstance(getattr(torch, dtype, None), torch.dtype):
            raise InvalidOption(f"dtype={dtype!r} is not a torch dtype", fix='pass dtype="float32" (or "bfloat16", "float16")')
        from ..assets import load_hf_model

        cfg = settings()
        self._torch = torch
        torch.set_num_threads(n_threads or cfg.n_threads)
        try:
            self.model, self.tokenizer = load_hf_model(model, dtype=getattr(torch, dtype))
        except CourseError:
            raise
        except (ValueError, KeyError, RuntimeError, TypeError) as err:  # e.g. a GGUF architecture transformers cannot read
            raise BackendUnavailable(f"transformers could not load {model or cfg.model or 'the bundled model'} ({str(err).splitlines()[0][:160]})",
                                     fix="use backend='llamacpp' for this GGUF, or point COURSE_MODEL at a folder saved with save_pretrained()") from None
        self.model_name = str(model or cfg.model or "SmolLM2-135M-Instruct")
        limit = getattr(self.model.config, "max_position_embeddings", None) or 2048
        self.n_ctx = min(n_ctx or cfg.n_ctx, limit)
        self.dtype = dtype
        self._eos = self._end_of_turn_ids()

    def _end_of_turn_ids(self) -> set[int]:
        ids = {self.tokenizer.eos_token_id}
        generation_eos = getattr(self.model.generation_config, "eos_token_id", None)
        ids.update(generation_eos if isinstance(generation_eos, list) else [generation_eos])
        return {i for i in ids if i is not None}

    # -- LocalBackend hooks
    def tokenize(self, text: str, special: bool = False) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False, split_special_tokens=not special)

    def detokenize(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=False)

    def is_end_of_turn(self, token_id: int) -> bool:
        return token_id in self._eos

    def chat_template(self) -> tuple[str, str, str]:
        tok = self.tokenizer
        if not tok.chat_template:
            raise BackendUnavailable(f"{self.model_name} has no chat template", fix="use complete() for raw text, or an instruction-tuned model")
        return tok.chat_template, tok.bos_token or "", tok.eos_token or ""

    def special_tokens(self) -> list[str]:
        added = [t.content for t in self.tokenizer.added_tokens_decoder.values() if t.special]
        return sorted(set(added) | set(self.tokenizer.all_special_tokens))

    def generate_ids(self, prompt_ids: Sequence[int], options: GenerationOptions) -> Iterator[int]:
        from transformers import DynamicCache

        from ..sampling import choose_token

        torch = self._torch
        generator = torch.Generator().manual_seed(options.resolved_seed())
        mask = self._json_mask(options.json_schema) if options.json_schema is not None else None
        history = list(prompt_ids)
        cache = DynamicCache()
        inputs = torch.tensor([history])
        with torch.inference_mode():
            while True:
                # logits_to_keep=1: only the last position's logits are needed to pick a token
                out = self.model(input_ids=inputs, past_key_values=cache, use_cache=True, logits_to_keep=1)
                logits = out.logits[0, -1] if mask is None else mask.apply(out.logits[0, -1])
                token = int(
                    choose_token(
                        logits,
                        temperature=options.temperature,
                        top_k=options.top_k,
                        top_p=options.top_p,
                        repeat_penalty=options.repeat_penalty,
                        previous_ids=history,
                        generator=generator,
                    )
                )
                history.append(token)
                yield token
                if mask is not None:
                    if token in self._eos:  # the document was complete and the model ended its turn
                        return
                    if mask.advance(token):  # the document is complete and nothing may follow: end the turn
                        yield self.tokenizer.eos_token_id
                        return
                inputs = torch.tensor([[token]])

    # -- JSON schema
    @functools.cached_property
    def _guidance_tokenizer(self) -> Any:
        """llguidance's view of our vocabulary (built once: ~1-2 s)."""
        try:
            import llguidance.hf
        except ImportError:
            raise BackendUnavailable("llguidance is not installed (it constrains output to a JSON schema)", fix="run `make setup`, or pip install llguidance") from None
        return llguidance.hf.from_tokenizer(self.tokenizer, n_vocab=self.model.config.vocab_size, eos_token=sorted(self._eos))

    def _json_mask(self, schema: dict[str, Any]) -> JsonSchemaMask:
        return JsonSchemaMask(self._guidance_tokenizer, schema, self.model.config.vocab_size)

    def info(self) -> BackendInfo:
        params = sum(p.numel() for p in self.model.parameters())
        return BackendInfo(
            name=self.name,
            model=self.model_name,
            context_length=self.n_ctx,
            device=str(next(self.model.parameters()).device),
            quantization=f"none ({self.dtype})",
            details={"parameters": params, "threads": self._torch.get_num_threads(), "source": getattr(self.model, "name_or_path", "")},
        )

    def close(self) -> None:
        self.model = None  # type: ignore[assignment]
        import gc

        gc.collect()


class JsonSchemaMask:
    """Which tokens may come next so that the output stays valid JSON for ``schema`` (llguidance).

    ``apply(logits)`` sets every other token's logit to -inf; ``advance(token)`` moves the matcher on
    and says whether the document is complete (nothing more may follow).
    """

    def __init__(self, guidance_tokenizer: Any, schema: dict[str, Any], vocab_size: int) -> None:
        import json

        import llguidance
        import numpy as np

        try:
            grammar = llguidance.LLMatcher.grammar_from_json_schema(json.dumps(dict(schema)), defaults={"whitespace_flexible": False})
            self.matcher = llguidance.LLMatcher(guidance_tokenizer, grammar)
        except (ValueError, TypeError, RuntimeError) as err:
            raise InvalidOption(f"this JSON schema cannot be turned into a grammar ({err})", fix="simplify the schema: objects, arrays, strings, numbers, enums") from None
        if self.matcher.is_error():
            raise InvalidOption(f"this JSON schema cannot be turned into a grammar ({self.matcher.get_error()})", fix="simplify the schema: objects, arrays, strings, numbers, enums")
        self.vocab_size = vocab_size
        self._bits = np.zeros((1, (vocab_size + 31) // 32), dtype=np.int32)

    def allowed(self) -> Any:
        """A boolean tensor over the vocabulary: True where the token may come next."""
        import llguidance.numpy
        import numpy as np
        import torch

        llguidance.numpy.fill_next_token_bitmask(self.matcher, self._bits)
        bits = np.unpackbits(self._bits.view(np.uint8), bitorder="little")[: self.vocab_size]
        return torch.from_numpy(bits.view(bool))

    def apply(self, logits: Any) -> Any:
        allowed = self.allowed()
        return logits[: self.vocab_size].masked_fill(~allowed, float("-inf"))

    def advance(self, token: int) -> bool:
        if not self.matcher.consume_token(token):
            raise InvalidOption(f"token {token} does not fit the JSON schema ({self.matcher.get_error()})", fix="report this: the mask should have prevented it")
        return self.matcher.is_stopped()
