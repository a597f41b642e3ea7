"""LoRA from scratch (course_utils.lora): the layer's maths, injection, peft agreement, training, data.

The shared ``hf_model`` fixture is never modified: every test that injects adapters deep-copies it.
"""

from __future__ import annotations

import copy
import json

import pytest
import torch

from course_utils import lora
from course_utils.errors import CourseError, DataError, InvalidOption

ATTN = ("q_proj", "k_proj", "v_proj", "o_proj")


@pytest.fixture
def toy() -> lora.LoRALinear:
    torch.manual_seed(0)
    return lora.LoRALinear(torch.nn.Linear(12, 5), r=3, alpha=6)


def randomize_b(module: torch.nn.Module, std: float = 0.02, seed: int = 0) -> None:
    """Give every adapter a non-zero B, as if trained (B = 0 would hide most mistakes)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in lora.lora_layers(module).values() if not isinstance(module, lora.LoRALinear) else [module]:
            layer.lora_B.copy_(torch.randn(layer.lora_B.shape, generator=g) * std)


@pytest.fixture
def prompt_ids(hf_model) -> torch.Tensor:
    _, tok = hf_model
    return torch.tensor([tok.encode("The invoice is due on 5 March 2021. Give the date in ISO format:")])


# ----------------------------------------------------------------------------- the layer
def test_zero_init_b_leaves_outputs_unchanged(toy):
    x = torch.randn(4, 12)
    assert torch.count_nonzero(toy.lora_A) > 0  # A is random, B is zero
    assert torch.count_nonzero(toy.lora_B) == 0
    assert torch.equal(toy(x), toy.base(x))


def test_forward_is_base_plus_scaled_low_rank_update(toy):
    randomize_b(toy, std=0.5)
    x = torch.randn(4, 12)
    expected = toy.base(x) + (x @ toy.lora_A.T @ toy.lora_B.T) * (6 / 3)
    assert torch.allclose(toy(x), expected, atol=1e-6)
    assert toy.scaling == 2.0
    delta = toy.delta_weight()
    assert delta.shape == (5, 12) and int(torch.linalg.matrix_rank(delta)) <= 3
    assert torch.allclose(toy(x), x @ (toy.base.weight + delta).T + toy.base.bias, atol=1e-5)


def test_merge_unmerge_round_trip(toy):
    randomize_b(toy, std=0.5)
    x = torch.randn(4, 12)
    before, w0 = toy(x), toy.base.weight.detach().clone()
    toy.merge()
    assert toy.merged and not torch.allclose(toy.base.weight, w0)
    assert torch.allclose(toy(x), before, atol=1e-5)  # the update now lives in the weight
    toy.merge()  # merging twice must not add the update twice
    assert torch.allclose(toy(x), before, atol=1e-5)
    toy.unmerge()
    assert not toy.merged
    assert torch.allclose(toy.base.weight, w0, atol=1e-6)
    assert torch.allclose(toy(x), before, atol=1e-5)


def test_only_adapters_are_trainable_and_counted(toy):
    assert not toy.base.weight.requires_grad and not toy.base.bias.requires_grad
    count = lora.count_parameters(toy)
    assert count.trainable == 3 * (12 + 5)
    assert count.total == 12 * 5 + 5 + 3 * (12 + 5)


def test_disabled_adapter_gives_the_base_output(toy):
    randomize_b(toy, std=0.5)
    x = torch.randn(2, 12)
    with lora.lora_disabled(toy):
        assert torch.equal(toy(x), toy.base(x))
    assert not torch.allclose(toy(x), toy.base(x))


@pytest.mark.parametrize("kwargs", [{"r": 0}, {"r": 2.5}, {"alpha": 0}, {"dropout": 1.0}])
def test_bad_options_are_rejected(kwargs):
    with pytest.raises(InvalidOption, match="Fix:"):
        lora.LoRALinear(torch.nn.Linear(4, 4), **kwargs)


# ----------------------------------------------------------------------------- the real model
def test_injection_counts_parameters_and_keeps_outputs(hf_model, prompt_ids):
    base, _ = hf_model
    model = copy.deepcopy(base)
    names = lora.inject_lora(model, targets=ATTN, r=8, alpha=16)
    assert len(names) == 4 * base.config.num_hidden_layers
    count = lora.count_parameters(model)
    assert count.trainable == 921_600 == lora.lora_parameter_count(base, ATTN, r=8)
    assert count.total == 134_515_008 + 921_600
    assert {n for n, p in model.named_parameters() if p.requires_grad} == {
        f"{name}.{part}" for name in names for part in ("lora_A", "lora_B")
    }
    with torch.no_grad():
        assert torch.equal(model(input_ids=prompt_ids).logits, base(input_ids=prompt_ids).logits)
    assert lora.lora_parameter_count(base, ("q_proj", "v_proj"), r=4) == 30 * 4 * ((576 + 576) + (576 + 192))


def test_injection_errors(hf_model):
    model = copy.deepcopy(hf_model[0])
    with pytest.raises(InvalidOption, match="q_proj"):
        lora.inject_lora(model, targets=("query",))
    lora.inject_lora(model, targets=("q_proj",))
    with pytest.raises(InvalidOption, match="already"):
        lora.inject_lora(model)
    with pytest.raises(InvalidOption, match="no trainable|no LoRA"):
        lora.merge_lora(copy.deepcopy(hf_model[0]))


def test_same_outputs_as_peft(hf_model, prompt_ids, tmp_path):
    from peft import LoraConfig, PeftModel, get_peft_model, set_peft_model_state_dict

    base, _ = hf_model
    ours = copy.deepcopy(base)
    lora.inject_lora(ours, targets=ATTN, r=8, alpha=16)
    randomize_b(ours)
    theirs = get_peft_model(copy.deepcopy(base), LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=list(ATTN)))
    assert sum(p.numel() for p in theirs.parameters() if p.requires_grad) == 921_600
    result = set_peft_model_state_dict(theirs, lora.peft_state_dict(ours))
    assert not result.unexpected_keys
    with torch.no_grad():
        want = ours(input_ids=prompt_ids).logits
        assert not torch.allclose(want, base(input_ids=prompt_ids).logits, atol=1e-2)  # the adapters do something
        assert (theirs(input_ids=prompt_ids).logits - want).abs().max() < 1e-4
        # our adapter files are peft's format, both ways
        lora.save_adapter(ours, tmp_path / "adapter")
        loaded = PeftModel.from_pretrained(copy.deepcopy(base), tmp_path / "adapter")
        assert (loaded(input_ids=prompt_ids).logits - want).abs().max() < 1e-4
        theirs.save_pretrained(tmp_path / "peft")
        again = copy.deepcopy(base)
        lora.load_adapter(again, tmp_path / "peft")
        assert (again(input_ids=prompt_ids).logits - want).abs().max() < 1e-4


def test_merge_lora_gives_a_plain_model_with_the_same_outputs(hf_model, prompt_ids):
    base, _ = hf_model
    model = copy.deepcopy(base)
    lora.inject_lora(model, r=8, alpha=16)
    randomize_b(model)
    with torch.no_grad():
        before = model(input_ids=prompt_ids).logits
        lora.merge_lora(model)
        after = model(input_ids=prompt_ids).logits
    assert not lora.lora_layers(model)
    assert type(model.model.layers[3].self_attn.v_proj) is torch.nn.Linear
    assert set(model.state_dict()) == set(base.state_dict())
    assert (after - before).abs().max() < 1e-3
    assert torch.equal(after.argmax(-1), before.argmax(-1))
    delta = model.model.layers[0].self_attn.q_proj.weight - base.model.layers[0].self_attn.q_proj.weight
    assert delta.abs().max() > 0


def test_adapters_train_on_a_quantized_base(hf_model, prompt_ids):
    from course_utils import quant

    base, _ = hf_model
    qmodel = quant.quantize_model(base, bits=4, group_size=32)
    lora.inject_lora(qmodel, targets=("q_proj", "v_proj"), r=4, alpha=8)
    layer = qmodel.model.layers[0].self_attn.q_proj
    assert type(layer.base).__name__ == "QuantLinear"
    with pytest.raises(CourseError, match="merge_lora"):
        layer.merge()  # int codes cannot absorb a float update in place
    randomize_b(qmodel)
    with torch.no_grad():
        before = qmodel(input_ids=prompt_ids).logits
        lora.merge_lora(qmodel)  # -> full-precision nn.Linear holding dequantized W + update
        after = qmodel(input_ids=prompt_ids).logits
    assert type(qmodel.model.layers[0].self_attn.q_proj) is torch.nn.Linear
    assert (after - before).abs().max() < 1e-3


# ----------------------------------------------------------------------------- data and training
def test_instruction_data_splits():
    train, test = lora.load_examples("train"), lora.load_examples("test")
    assert (len(train), len(test)) == (400, 100)
    assert not {e.response for e in train} & {e.response for e in test}  # no date in both splits
    import datetime as dt

    for ex in train + test:
        day = dt.date.fromisoformat(ex.response)
        assert str(day.year) in ex.prompt  # the answer is the date the prompt talks about
    with pytest.raises(InvalidOption):
        lora.load_examples("validation")


def test_broken_data_file_is_reported(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"split": "train", "question": "x"}) + "\n")
    with pytest.raises(DataError, match="Fix:"):
        lora.load_examples("train", path=bad)


def test_sft_labels_mask_the_prompt(hf_model):
    _, tok = hf_model
    ex = lora.Example("Give the date in ISO 8601 format: 5 March 2021", "2021-03-05")
    ids, labels = lora.encode_example(tok, ex)
    n_answer = sum(lab != lora.IGNORE_INDEX for lab in labels)
    assert len(ids) == len(labels)
    assert labels[-n_answer:] == ids[-n_answer:] and all(lab == -100 for lab in labels[:-n_answer])
    assert tok.decode(ids[-n_answer:]) == "2021-03-05" + tok.eos_token
    assert tok.decode(ids[:-n_answer]).endswith("<|im_start|>assistant\n")
    batch = lora.make_batch(tok, [ex, lora.Example("Date: 1 May 1990, please.", "1990-05-01")])
    assert batch.input_ids.shape == batch.labels.shape == batch.attention_mask.shape
    assert batch.n_targets == n_answer + len(tok.encode("1990-05-01" + tok.eos_token, add_special_tokens=False))


def test_a_few_training_steps_lower_the_loss(hf_model):
    base, tok = hf_model
    model = copy.deepcopy(base)
    torch.manual_seed(0)
    lora.inject_lora(model, r=8, alpha=16)
    heldout = lora.load_examples("test")[:8]
    before = lora.response_loss(model, tok, heldout)
    result = lora.train(model, lora.batches(tok, lora.load_examples("train"), batch_size=4), steps=4, lr=2e-3)
    after = lora.response_loss(model, tok, heldout)
    assert result.steps == 4 and result.tokens > 0 and result.seconds > 0
    assert result.losses[-1] < result.losses[0]
    assert after < 0.8 * before, (before, after)
    with torch.no_grad():  # the frozen base really stayed frozen
        q = model.model.layers[0].self_attn.q_proj
        assert torch.equal(q.base.weight, base.model.layers[0].self_attn.q_proj.weight)


def test_training_needs_trainable_parameters(hf_model):
    base, tok = hf_model
    frozen = torch.nn.Linear(2, 2).requires_grad_(False)
    with pytest.raises(InvalidOption, match="inject_lora"):
        lora.train(frozen, iter([]), steps=1)
    with pytest.raises(InvalidOption):
        lora.train(base, iter([]), steps=0)


def test_generate_and_exact_match(hf_model):
    base, tok = hf_model
    prompts = ["What is the capital of France?", "Name the largest planet of the solar system."]
    answers = lora.generate(base, tok, prompts, max_new_tokens=12)
    assert len(answers) == 2 and "Paris" in answers[0]
    # batching (left padding) must not change a greedy answer
    assert lora.generate(base, tok, prompts[:1], max_new_tokens=12) == answers[:1]
    assert lora.exact_match([" 2021-03-05 ", "x"], ["2021-03-05", "y"]) == 0.5
    with pytest.raises(DataError):
        lora.exact_match(["a"], ["a", "b"])


def test_save_adapter_is_atomic_and_replaces(hf_model, tmp_path):
    model = copy.deepcopy(hf_model[0])
    lora.inject_lora(model, targets=("v_proj",), r=2, alpha=4)
    folder = lora.save_adapter(model, tmp_path / "a")
    first = (folder / lora.ADAPTER_WEIGHTS).stat().st_size
    randomize_b(model)
    lora.save_adapter(model, tmp_path / "a")  # overwrite in place
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]  # no temp folders left behind
    config = json.loads((folder / lora.ADAPTER_CONFIG).read_text())
    assert config["r"] == 2 and config["target_modules"] == ["v_proj"] and config["peft_type"] == "LORA"
    assert (folder / lora.ADAPTER_WEIGHTS).stat().st_size == first
    with pytest.raises(DataError, match="Fix:"):
        lora.load_adapter(copy.deepcopy(hf_model[0]), tmp_path / "missing")
