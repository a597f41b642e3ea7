"""Merging by hand (course_utils.merging) against the maths, against mergekit, and the specialists
of lesson 12 (course_utils.specialists): cached training, fast greedy exact match."""

from __future__ import annotations

import json
import math

import pytest
import torch

from course_utils import lora, merging, specialists
from course_utils.checks import merging as checks_merging
from course_utils.config import settings
from course_utils.errors import CourseError, DataError, InvalidOption
from course_utils.paths import data_path


@pytest.mark.parametrize("module", [merging, specialists, checks_merging], ids=lambda m: m.__name__)
def test_docstring_examples(module):
    import doctest

    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


def toy_states(seed: int = 0, n: int = 2) -> tuple[dict, list[dict]]:
    g = torch.Generator().manual_seed(seed)
    base = {"a": torch.randn(4, 5, generator=g), "b": torch.randn(7, generator=g)}
    fines = [{k: v + 0.1 * torch.randn(v.shape, generator=g) for k, v in base.items()} for _ in range(n)]
    return base, fines


def clones(state: dict) -> dict:
    return {k: v.clone() for k, v in state.items()}


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ----------------------------------------------------------------------------- the maths
def test_task_arithmetic_rebuilds_each_fine_tune_and_leaves_inputs_alone():
    base, fines = toy_states()
    before = [clones(base)] + [clones(f) for f in fines]
    taus = [merging.task_vector(f, base) for f in fines]
    for i, fine in enumerate(fines):  # base + 1 * tau_i is fine-tune i; the other lambda is 0
        lambdas = [1.0 if j == i else 0.0 for j in range(len(fines))]
        rebuilt = merging.task_arithmetic(base, taus, lambdas)
        assert all(torch.allclose(rebuilt[k], fine[k], atol=1e-6) for k in base)
    assert all(same(x, y) for x, y in zip(before, [base, *fines]))


def test_task_arithmetic_is_base_plus_weighted_sum():
    base, fines = toy_states(1, n=3)
    taus = [merging.task_vector(f, base) for f in fines]
    got = merging.task_arithmetic(base, taus, [0.3, -0.5, 1.7])
    for k in base:
        want = base[k] + 0.3 * (fines[0][k] - base[k]) - 0.5 * (fines[1][k] - base[k]) + 1.7 * (fines[2][k] - base[k])
        assert torch.allclose(got[k], want, atol=1e-6)
    with pytest.raises(InvalidOption, match="2 lambdas for 3 models"):
        merging.task_arithmetic(base, taus, [1.0, 1.0])


def test_linear_average_is_task_arithmetic_with_lambda_one_over_n():
    base, fines = toy_states(2, n=3)
    averaged = merging.linear(fines)
    via_tasks = merging.task_arithmetic(base, [merging.task_vector(f, base) for f in fines], [1 / 3] * 3)
    assert merging.max_difference(averaged, via_tasks) < 1e-6
    weighted = merging.linear(fines[:2], [3.0, 1.0])
    assert torch.allclose(weighted["a"], 0.75 * fines[0]["a"] + 0.25 * fines[1]["a"], atol=1e-6)
    with pytest.raises(InvalidOption, match="sum to zero"):
        merging.linear(fines[:2], [1.0, -1.0])


def test_mismatched_models_give_one_line_errors():
    base, fines = toy_states()
    other = {"a": torch.zeros(4, 6), "b": torch.zeros(7)}
    with pytest.raises(CourseError) as err:
        merging.task_vector(other, base)
    text = str(err.value)
    assert "'a' has shape (4, 5) in the base but (4, 6) in the fine-tune" in text and "Fix:" in text and "\n" not in text
    with pytest.raises(InvalidOption, match="'c' is in only one"):
        merging.linear([base, {**base, "c": torch.zeros(1)}])
    with pytest.raises(InvalidOption, match="at least 2 models"):
        merging.check_compatible(base)


def test_slerp_walks_the_arc():
    a, b = torch.tensor([3.0, 0.0]), torch.tensor([0.0, 3.0])
    assert torch.allclose(merging.slerp(a, b, 0.0), a) and torch.allclose(merging.slerp(a, b, 1.0), b, atol=1e-6)
    mid = merging.slerp(a, b, 0.5)
    assert math.isclose(float(mid.norm()), 3.0, rel_tol=1e-6)  # on the circle, where lerp has norm 2.12
    assert math.isclose(merging.angle_degrees(a, merging.slerp(a, b, 0.25)), 22.5, abs_tol=1e-4)
    # matrices of equal norm: the angle to a grows linearly with t, the norm stays
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(3, 4, generator=g), torch.randn(3, 4, generator=g)
    y = y * x.norm() / y.norm()
    theta = merging.angle_degrees(x, y)
    for t in (0.2, 0.7):
        assert math.isclose(merging.angle_degrees(x, merging.slerp(x, y, t)), t * theta, rel_tol=1e-4)
        assert math.isclose(float(merging.slerp(x, y, t).norm()), float(x.norm()), rel_tol=1e-5)
    # (almost) parallel: the formula divides by sin(theta) ~ 0, so it falls back to the straight line
    near = merging.slerp(x, x * 1.5 + 1e-9, 0.5)
    assert torch.isfinite(near).all() and torch.allclose(near, 1.25 * x, atol=1e-5)


def test_trim_keeps_the_largest_magnitudes():
    tau = torch.tensor([[0.1, -5.0, 0.3], [2.0, -0.2, 0.0]])
    assert merging.trim(tau, 2 / 6).tolist() == [[0.0, -5.0, 0.0], [2.0, 0.0, 0.0]]
    assert torch.equal(merging.trim(tau, 1.0), tau)
    assert int((merging.trim(torch.randn(1000), 0.2) != 0).sum()) == 200
    with pytest.raises(InvalidOption, match="density"):
        merging.trim(tau, 0.0)


def test_sign_election_uses_the_mass_not_the_count():
    # two small positive updates against one large negative one: the count says +, the mass says -
    taus = torch.tensor([[0.1], [0.2], [-1.0]])
    assert merging.elect_sign(taus).tolist() == [-1.0]
    assert merging.disjoint_mean(taus, merging.elect_sign(taus)).tolist() == [-1.0]
    # zeros (trimmed entries) do not count in the mean; agreeing entries are averaged
    taus = torch.tensor([[0.0, 1.0], [0.4, 3.0], [0.2, -0.5]])
    assert torch.allclose(merging.disjoint_mean(taus, merging.elect_sign(taus)), torch.tensor([0.3, 2.0]))


def test_dare_keeps_the_expected_update():
    tau = torch.full((20000,), 0.5)
    dropped = merging.dare(tau, 0.9, torch.Generator().manual_seed(0))
    kept = dropped != 0
    assert 0.08 < float(kept.float().mean()) < 0.12
    assert torch.allclose(dropped[kept], torch.tensor(5.0))  # survivors scaled by 1 / (1 - p)
    assert math.isclose(float(dropped.mean()), 0.5, rel_tol=0.1)
    base, fines = toy_states()
    taus = [merging.task_vector(f, base) for f in fines]
    one, two = (merging.dare_merge(base, taus, [1.0, 1.0], drop=0.5, seed=3) for _ in range(2))
    assert same(one, two) and not same(one, merging.dare_merge(base, taus, [1.0, 1.0], drop=0.5, seed=4))
    assert same(merging.dare_merge(base, taus, [1.0, 0.5], drop=0.0), merging.task_arithmetic(base, taus, [1.0, 0.5]))


# ----------------------------------------------------------------------------- against mergekit
@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    """A tiny random Llama (SmolLM2's tokenizer and layout) and two perturbed copies, saved to disk."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from course_utils.assets import hf_model_dir

    tokenizer = AutoTokenizer.from_pretrained(hf_model_dir())
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                         num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).eval()
    base = merging.state_of(model)
    root = tmp_path_factory.mktemp("tiny")
    fines = []
    for i in range(2):
        g = torch.Generator().manual_seed(i + 1)
        fines.append({k: v + 0.02 * torch.randn(v.shape, generator=g) if "proj" in k else v for k, v in base.items()})
    dirs = [specialists.save_model(merging.model_with(model, s), tokenizer, root / name)
            for s, name in ((base, "base"), (fines[0], "one"), (fines[1], "two"))]
    return model, tokenizer, base, fines, dirs, root


def test_mergekit_task_arithmetic_equals_ours(tiny_models):
    _, _, base, fines, (base_dir, one, two), root = tiny_models
    taus = [merging.task_vector(f, base) for f in fines]
    config = merging.mergekit_yaml(base_dir, {str(one): 0.7, str(two): 1.3})
    theirs = merging.load_safetensors_dir(merging.run_mergekit(config, root / "ta"))
    ours = merging.task_arithmetic(base, taus, [0.7, 1.3])
    assert merging.max_difference(ours, theirs) < 1e-6
    assert merging.max_difference(merging.task_arithmetic(base, taus, [1.0, 1.0]), theirs) > 1e-3  # lambdas matter
    # normalize: true divides the weighted sum by the sum of the weights (here 2.0)
    config = merging.mergekit_yaml(base_dir, {str(one): 0.7, str(two): 1.3}, parameters={"normalize": True})
    theirs = merging.load_safetensors_dir(merging.run_mergekit(config, root / "ta-normalized"))
    assert merging.max_difference(merging.task_arithmetic(base, taus, [0.35, 0.65]), theirs) < 1e-6


def test_mergekit_ties_equals_ours(tiny_models):
    _, _, base, fines, (base_dir, one, two), root = tiny_models
    config = merging.mergekit_yaml(base_dir, {str(one): 1.0, str(two): 1.0}, method="ties",
                                   parameters={"density": 0.3, "normalize": True})
    theirs = merging.load_safetensors_dir(merging.run_mergekit(config, root / "ties"))
    ours = merging.ties(base, [merging.task_vector(f, base) for f in fines], density=0.3)
    assert merging.max_difference(ours, theirs) < 1e-6


def test_mergekit_refuses_what_is_not_a_local_folder(tiny_models):
    _, _, _, _, (base_dir, one, _), root = tiny_models
    with pytest.raises(InvalidOption, match="not a local folder"):
        merging.run_mergekit(merging.mergekit_yaml(base_dir, {str(root / "missing"): 1.0}), root / "x")
    with pytest.raises(InvalidOption, match="mergekit rejects"):
        merging.run_mergekit("merge_method: task_arithmetic\n", root / "y")
    assert not (root / "x").exists() and not (root / "y").exists()


def test_frankenmerge_stacks_layers(tiny_models):
    model, tokenizer, *_ = tiny_models
    stacked = merging.stack_layers(model, [(0, 2), (1, 3)])
    assert len(stacked.model.layers) == 4 == stacked.config.num_hidden_layers
    assert torch.equal(stacked.model.layers[2].mlp.up_proj.weight, model.model.layers[1].mlp.up_proj.weight)
    assert [layer.self_attn.layer_idx for layer in stacked.model.layers] == [0, 1, 2, 3]
    assert len(model.model.layers) == 3  # the original is untouched
    ids = torch.tensor([tokenizer.encode("Hello there")])
    with torch.no_grad():
        out = stacked.generate(ids, max_new_tokens=3, do_sample=False)  # the KV cache works with 4 layers
    assert out.shape[1] == ids.shape[1] + 3
    with pytest.raises(InvalidOption, match="do not fit"):
        merging.stack_layers(model, [(2, 5)])


def test_model_with_rejects_foreign_weights(tiny_models):
    model, _, base, *_ = tiny_models
    merged = merging.model_with(model, {k: v * 0 for k, v in base.items()})
    assert float(merged.model.layers[0].mlp.up_proj.weight.detach().abs().sum()) == 0
    assert float(model.model.layers[0].mlp.up_proj.weight.detach().abs().sum()) > 0
    with pytest.raises(InvalidOption, match="do not fit"):
        merging.model_with(model, {**base, "extra.weight": torch.zeros(1)})


# ----------------------------------------------------------------------------- the specialists
def test_units_data_is_split_cleanly():
    rows = [json.loads(line) for line in data_path("lora_units.jsonl").read_text(encoding="utf-8").splitlines()]
    train = [r for r in rows if r["split"] == "train"]
    test = [r for r in rows if r["split"] == "test"]
    assert (len(train), len(test)) == (400, 100)
    assert not {r["response"] for r in train} & {r["response"] for r in test}
    symbols = lambda part: {r["response"].split(" ", 1)[1] for r in part}  # noqa: E731
    assert symbols(train) == symbols(test) and len(symbols(test)) == 25
    for r in rows:  # the number in the answer is the number in the prompt
        assert r["response"].split(" ")[0] in r["prompt"]
    assert specialists.examples("units", "train")[0].response == train[0]["response"]
    with pytest.raises(InvalidOption, match="not a course task"):
        specialists.examples("poems")


def test_fast_exact_match_agrees_with_generation(hf_model):
    model, tokenizer = hf_model
    prompts = [ex.prompt for ex in specialists.examples("dates")[:6]] + [ex.prompt for ex in specialists.examples("units")[:6]]
    generated = lora.generate(model, tokenizer, prompts, max_new_tokens=40)
    # references = what greedy decoding really produced (where it stopped): all must count as right
    finished = [lora.Example(p, g) for p, g in zip(prompts, generated, strict=True)
                if len(tokenizer.encode(g)) < 38]
    assert len(finished) >= 6
    assert all(specialists.score(model, tokenizer, finished).correct)
    # change one character of each reference: none may count as right, and the loss must rise
    altered = [lora.Example(ex.prompt, ex.response[:-1] + ("X" if ex.response[-1] != "X" else "Y")) for ex in finished]
    assert not any(specialists.score(model, tokenizer, altered).correct)
    assert specialists.score(model, tokenizer, altered).loss > specialists.score(model, tokenizer, finished).loss


def test_fast_scoring_equals_a_plain_forward_pass(hf_model):
    model, tokenizer = hf_model
    items = specialists.examples("units")[:5] + specialists.examples("dates")[:4]
    fast = specialists.score(model, tokenizer, items, batch_size=4)
    batch = lora.make_batch(tokenizer, items)
    with torch.no_grad():
        logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
    targets = batch.labels[:, 1:]
    plain = ((logits[:, :-1].argmax(-1) == targets) | (targets == lora.IGNORE_INDEX)).all(dim=1)
    assert list(fast.correct) == plain.tolist()
    assert math.isclose(fast.loss, lora.response_loss(model, tokenizer, items), rel_tol=1e-4)
    assert math.isclose(fast.stderr, math.sqrt(fast.em * (1 - fast.em) / fast.n))


def test_specialist_is_trained_once_then_cached(hf_model, tmp_path):
    model, tokenizer = hf_model
    recipe = specialists.Recipe(steps=1, batch_size=2)
    first = specialists.specialist("units", model, tokenizer, recipe, cache_dir=tmp_path)
    assert first.trained_now and (first.adapter_dir / lora.ADAPTER_WEIGHTS).is_file()
    again = specialists.specialist("units", model, tokenizer, recipe, cache_dir=tmp_path)
    assert not again.trained_now and again.adapter_dir == first.adapter_dir
    q = "model.layers.0.self_attn.q_proj.weight"
    assert torch.equal(merging.state_of(again.model)[q], merging.state_of(first.model)[q])
    assert not torch.equal(merging.state_of(first.model)[q], merging.state_of(model)[q])  # trained: weights moved
    assert not any(lora.is_lora(m) for m in first.model.modules())  # merged into full weights
    other = specialists.adapter_dir("units", specialists.Recipe(steps=2, batch_size=2), str(model.config.name_or_path), tmp_path)
    assert other != first.adapter_dir and specialists.adapter_dir("dates", recipe, "m", tmp_path) != specialists.adapter_dir("units", recipe, "m", tmp_path)
    log = specialists.training_log(first.adapter_dir)  # the recipe and the loss of every step, beside the adapter
    assert log["recipe"]["steps"] == 1 and log["losses"] == pytest.approx(first.train_result.losses, abs=1e-6)
    (first.adapter_dir / lora.ADAPTER_WEIGHTS).write_bytes(b"broken")
    with pytest.raises(DataError, match="unreadable"):
        specialists.specialist("units", model, tokenizer, recipe, cache_dir=tmp_path)
    assert (first.adapter_dir / lora.ADAPTER_WEIGHTS).read_bytes() == b"broken"  # reported, not overwritten


def test_shipped_adapters_are_found_for_the_bundled_model_and_fit_the_data(hf_model, tmp_path):
    model, tokenizer = hf_model
    base_id = specialists.base_id_of(model)
    assert str(settings().cache_dir) not in base_id  # the same key on every machine
    for task in specialists.TASKS:
        # data/make_merging_adapters.py must be run again whenever the data file or the default recipe changes
        shipped = specialists.adapter_dir(task, specialists.Recipe(), base_id, specialists.shipped_dir())
        assert (shipped / lora.ADAPTER_WEIGHTS).is_file(), f"no shipped {task} adapter for the current data and recipe"
    # an empty cache: the shipped adapter is loaded, nothing is trained or written
    got = specialists.specialist("units", model, tokenizer, cache_dir=tmp_path)
    assert got.shipped and not got.trained_now and not any(tmp_path.iterdir())
    # and it is a specialist: the held-out exact match rises far above the base's
    items = specialists.examples("units")[:16]
    assert specialists.score(got.model, tokenizer, items).em >= specialists.score(model, tokenizer, items).em + 0.4
    # another base model's key differs, so the shipped adapter is not used for it
    assert specialists.adapter_dir("units", specialists.Recipe(), "another/model", tmp_path).name != \
        specialists.adapter_dir("units", specialists.Recipe(), base_id, tmp_path).name


def test_skill_kept():
    assert specialists.skill_kept(0.5, 0.1, 0.9) == pytest.approx(0.5)
    assert specialists.skill_kept(0.1, 0.1, 0.9) == 0.0
    with pytest.raises(DataError, match="no better than the base"):
        specialists.skill_kept(0.5, 0.6, 0.6)
