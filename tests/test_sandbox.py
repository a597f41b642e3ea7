"""course_utils.sandbox: a limited subprocess for code a model wrote."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from course_utils.errors import CourseError
from course_utils.sandbox import SandboxResult, run_python


def test_returns_stdout_and_exit_status():
    result = run_python("import sys\nprint(6 * 7)\nprint('oops', file=sys.stderr)")
    assert isinstance(result, SandboxResult)
    assert result.ok and result.returncode == 0 and not result.timed_out
    assert result.stdout == "42\n"
    assert "oops" in result.stderr
    failed = run_python("raise SystemExit(3)")
    assert not failed.ok and failed.returncode == 3
    crashed = run_python("1 / 0")
    assert not crashed.ok and "ZeroDivisionError" in crashed.stderr


def test_stdin_is_passed():
    assert run_python("print(input()[::-1])", stdin="abc\n").stdout == "cba\n"


def test_kills_an_infinite_loop():
    result = run_python("while True:\n    pass", timeout_s=1.0)
    assert result.timed_out and not result.ok and result.returncode is None


def test_kills_sleeping_code_and_its_children(tmp_path):
    # a grandchild started before the hook cannot exist (process creation is refused), so check the
    # wall-clock kill on code that does not use CPU
    result = run_python("import time\ntime.sleep(30)", timeout_s=0.5)
    assert result.timed_out and result.seconds < 10


def test_blocks_network():
    raw = run_python("import socket\ns = socket.socket()\ns.connect(('127.0.0.1', 9))")
    assert not raw.ok and "blocked" in raw.stderr
    conn = run_python("import socket\nsocket.create_connection(('127.0.0.1', 9), timeout=1)")
    assert not conn.ok and "blocked" in conn.stderr
    url = run_python("import urllib.request\nurllib.request.urlopen('http://127.0.0.1:9/', timeout=1)")
    assert not url.ok and "blocked" in url.stderr


def test_blocks_writes_outside_its_folder(tmp_path):
    target = tmp_path / "should_not_exist.txt"
    result = run_python(f"open({str(target)!r}, 'w').write('x')")
    assert not result.ok and "blocked" in result.stderr
    assert not target.exists()
    victim = tmp_path / "keep.txt"
    victim.write_text("precious")
    removed = run_python(f"import os\nos.remove({str(victim)!r})")
    assert not removed.ok and victim.read_text() == "precious"


def test_writes_inside_its_folder_work_and_the_folder_is_deleted():
    result = run_python("import os\nopen('note.txt', 'w').write('hi')\nprint(open('note.txt').read())\nprint(os.getcwd())")
    assert result.ok, result.stderr
    text, folder = result.stdout.splitlines()
    assert text == "hi"
    assert not Path(folder).exists()


def test_blocks_starting_programs():
    result = run_python("import subprocess\nsubprocess.run(['echo', 'hi'])")
    assert not result.ok and "blocked" in result.stderr and "hi" not in result.stdout


def test_memory_limit():
    result = run_python("x = bytearray(400 * 1024 * 1024)\nprint('allocated')", memory_mb=200)
    assert not result.ok and "allocated" not in result.stdout
    assert "MemoryError" in result.stderr
    small = run_python("x = bytearray(20 * 1024 * 1024)\nprint('allocated')", memory_mb=200)
    assert small.ok and small.stdout == "allocated\n"


def test_environment_is_empty(monkeypatch):
    monkeypatch.setenv("COURSE_SECRET_FOR_TEST", "do-not-leak")
    result = run_python("import os\nprint(sorted(os.environ))")
    assert "COURSE_SECRET_FOR_TEST" not in result.stdout
    assert "HOME" in result.stdout and os.environ["COURSE_SECRET_FOR_TEST"] == "do-not-leak"


@pytest.mark.parametrize("kwargs", [{"code": b"print(1)"}, {"code": None}, {"code": "print(1)", "timeout_s": 0},
                                    {"code": "print(1)", "timeout_s": -1}, {"code": "print(1)", "memory_mb": 1},
                                    {"code": "print(1)", "stdin": 3}])
def test_bad_input_is_a_course_error(kwargs):
    code = kwargs.pop("code")
    with pytest.raises(CourseError, match="Fix:"):
        run_python(code, **kwargs)
