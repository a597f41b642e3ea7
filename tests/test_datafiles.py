"""course_utils.datafiles: reading data/*.jsonl with errors that name the file and line."""

from __future__ import annotations

import pytest

from course_utils.datafiles import data_path, read_jsonl
from course_utils.errors import DataError


def test_reads_the_course_files():
    rows = read_jsonl(data_path("agent_tasks.jsonl"), required={"id", "question", "tool", "answer"})
    assert len(rows) == sum(1 for line in data_path("agent_tasks.jsonl").read_text().splitlines() if line.strip())
    assert all(isinstance(r, dict) for r in rows)


def test_blank_lines_are_skipped(tmp_path):
    f = tmp_path / "ok.jsonl"
    f.write_text('{"a": 1}\n\n   \n{"a": 2}\n', encoding="utf-8")
    assert read_jsonl(f, required={"a"}) == [{"a": 1}, {"a": 2}]


@pytest.mark.parametrize(
    "content, words",
    [
        ('{"a": 1}\n{"a": \n', ["line 2", "not JSON"]),
        ('{"a": 1}\n{"b": 2}\n', ["line 2", "'a'"]),
        ('[1, 2]\n', ["line 1"]),
        (b"\xff\xfe{}", ["cannot read", "UnicodeDecodeError"]),
    ],
)
def test_bad_files_raise_a_data_error(tmp_path, content, words):
    f = tmp_path / "bad.jsonl"
    f.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(DataError) as info:
        read_jsonl(f, required={"a"})
    assert all(w in str(info.value) for w in words), str(info.value)
    assert "Fix:" in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="cannot read"):
        read_jsonl(tmp_path / "nope.jsonl")


def test_docstring_example():
    import doctest

    import course_utils.datafiles as module

    assert doctest.testmod(module).failed == 0
