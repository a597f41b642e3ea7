"""Hugging Face transformers backend: the model as PyTorch modules, generation loop written here.

We do not call ``model.generate``: the loop below (prefill the prompt once, then feed one token at a
time while the KV cache remembers the past) is short, streams without threads, and samples with
``course_utils.sampling`` so lesson 03 can show exactly what happens.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..config import settings
from ..errors import BackendUnavailable
from .base import BackendInfo, GenerationOptions, LocalBackend


class TransformersBackend(LocalBackend):
    name = "transformers"

    def __init__(self, model: str | None = None, n_ctx: int | None = None, n_threads: int | None = None, dtype: str = "float32") -> None:
        try:
            import torch
        except ImportError:
            raise BackendUnavailable("PyTorch is not installed", fix="run `make setup`, or pip install torch==2.13.0") from None
        from ..assets import load_hf_model

        cfg = settings()
        self._torch = torch
        torch.set_num_threads(n_threads or cfg.n_threads)
        self.model, self.tokenizer = load_hf_model(model, dtype=getattr(torch, dtype))
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
        return tok.chat_template, tok.bos_token or "", tok.eos_token or ""

    def generate_ids(self, prompt_ids: list[int], options: GenerationOptions) -> Iterator[int]:
        from transformers import DynamicCache

        from ..sampling import choose_token

        torch = self._torch
        generator = torch.Generator().manual_seed(options.resolved_seed())
        history = list(prompt_ids)
        cache = DynamicCache()
        inputs = torch.tensor([prompt_ids])
        with torch.inference_mode():
            while True:
                # logits_to_keep=1: only the last position's logits are needed to pick a token
                out = self.model(input_ids=inputs, past_key_values=cache, use_cache=True, logits_to_keep=1)
                token = int(
                    choose_token(
                        out.logits[0, -1],
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
                inputs = torch.tensor([[token]])

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
