"""`course eval TASK --backend NAME --limit N`."""

from __future__ import annotations

from course_utils.cli import main


def test_eval_prints_the_table(capsys):
    assert main(["eval", "arc_easy", "winogrande", "--backend", "transformers", "--limit", "3"]) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.startswith("task"))
    assert all(word in header for word in ("acc", "acc_norm", "chance", "± se"))
    arc = next(line for line in out.splitlines() if line.startswith("arc_easy"))
    assert arc.split()[1] == "3" and arc.split()[2] == "acc_norm"
    wino = next(line for line in out.splitlines() if line.startswith("winogrande"))
    assert wino.split()[-2] == "0.500"  # chance: two options


def test_unknown_task_is_a_clear_error(capsys):
    assert main(["eval", "not_a_task"]) == 2
    err = capsys.readouterr().err
    assert "unknown task" in err and "Fix:" in err and "arc_easy" in err


def test_bad_limit_is_a_clear_error(capsys):
    assert main(["eval", "arc_easy", "--limit", "-2"]) == 2
    assert "limit" in capsys.readouterr().err


def test_bf16_scores_with_bfloat16_weights(capsys):
    assert main(["eval", "arc_easy", "--backend", "transformers", "--dtype", "bf16", "--limit", "2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("backend transformers (bf16)")
    assert next(line for line in out.splitlines() if line.startswith("arc_easy")).split()[1] == "2"


def test_dtype_needs_the_transformers_backend(capsys):
    assert main(["eval", "arc_easy", "--backend", "llamacpp", "--dtype", "bf16"]) == 2
    err = capsys.readouterr().err
    assert "transformers backend only" in err and "Fix:" in err


def test_a_chat_only_backend_is_refused_before_loading_it(capsys):
    assert main(["eval", "arc_easy", "--backend", "gpt4all", "--limit", "2"]) == 2
    err = capsys.readouterr().err
    assert "no log-probabilities" in err and "Fix:" in err and "--backend transformers" in err


def test_generation_tasks_need_a_limit(capsys):
    assert main(["eval", "gsm8k", "--limit", "0"]) == 2
    err = capsys.readouterr().err
    assert "generation tasks" in err and "Fix:" in err
