"""What every sandbox backend must do, checked through the real API, worker and sandbox."""

from __future__ import annotations

import pytest

from helpers.programs import program


def test_hello_world(run_code):
    doc = run_code("print('hello, world')")
    assert doc["status"] == "succeeded"
    assert doc["exit_code"] == 0
    assert doc["stdout"] == "hello, world\n"
    assert doc["stderr"] == ""
    assert doc["duration_ms"] is not None and doc["duration_ms"] >= 0
    assert doc["started_at"] and doc["finished_at"]


def test_stdin_is_the_programs_input(run_code):
    doc = run_code("import sys\nprint(sum(int(x) for x in sys.stdin.read().split()))", stdin="1 2 3\n40\n")
    assert doc["status"] == "succeeded"
    assert doc["stdout"] == "46\n"


@pytest.mark.parametrize("code", [0, 3, 42, 255])
def test_exit_codes(run_code, code):
    doc = run_code(f"import sys\nprint('bye')\nsys.exit({code})")
    assert doc["exit_code"] == code
    assert doc["status"] == ("succeeded" if code == 0 else "failed")
    assert doc["stdout"] == "bye\n"


def test_exception_gives_a_traceback(run_code):
    doc = run_code("def f():\n    raise ValueError('boom')\nf()")
    assert doc["status"] == "failed"
    assert doc["exit_code"] == 1
    assert "Traceback (most recent call last)" in doc["stderr"]
    assert "ValueError: boom" in doc["stderr"]


def test_timeout_kills_the_program_and_keeps_partial_output(run_code):
    doc = run_code("import time\nprint('started')\ntime.sleep(60)", timeout=1)
    assert doc["status"] == "timed_out"
    assert doc["stdout"] == "started\n"
    assert 900 <= doc["duration_ms"] < 5000


def test_memory_exhaustion_is_memory_exceeded(run_code):
    doc = run_code("blocks = []\nwhile True:\n    blocks.append(bytearray(8 * 1024 * 1024))", memory_mb=64)
    assert doc["status"] == "memory_exceeded", doc
    assert "64" in doc["error"]


def test_memory_within_the_limit_is_fine(run_code):
    doc = run_code("x = bytearray(40 * 1024 * 1024)\nprint(len(x))", memory_mb=128)
    assert doc["status"] == "succeeded", doc
    assert doc["stdout"] == f"{40 * 1024 * 1024}\n"


def test_small_output_is_not_truncated(run_code):
    doc = run_code("print('x' * 1000)")
    assert doc["stdout_truncated"] is False and doc["stderr_truncated"] is False


def test_the_program_runs_like_a_python_script(run_code):
    doc = run_code(
        program(
            """
            import pickle, sys, threading, time, atexit
            class Point:
                pass
            print(__name__, __file__, sys.argv, len(pickle.dumps(Point())) > 0)
            atexit.register(lambda: print("atexit ran"))
            threading.Thread(target=lambda: (time.sleep(0.2), print("thread finished"))).start()
            exit(5)
            """
        )
    )
    assert doc["status"] == "failed" and doc["exit_code"] == 5
    assert doc["stdout"] == "__main__ /sandbox/main.py ['/sandbox/main.py'] True\nthread finished\natexit ran\n"


def test_tracebacks_and_syntax_errors_show_only_the_program(run_code):
    doc = run_code("x = 1\nprint(x +)\n")
    assert doc["status"] == "failed" and doc["exit_code"] == 1
    assert doc["stderr"].startswith('  File "/sandbox/main.py", line 2')
    assert "SyntaxError" in doc["stderr"] and "runner" not in doc["stderr"]
    doc = run_code("import json\njson.loads('{')")
    assert doc["stderr"].startswith(
        'Traceback (most recent call last):\n  File "/sandbox/main.py", line 2, in <module>'
    )
    assert "runner" not in doc["stderr"]
