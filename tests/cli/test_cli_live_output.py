"""`executioner run` and `executioner submit` print output as it arrives: the first line of a program that then
sleeps reaches the terminal while it still runs. The Kubernetes side is in tests/backends/test_live_output_kubernetes.py."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

EXECUTIONER = str(Path(sys.executable).with_name("executioner"))
PROGRESS = "import sys, time\nprint('first line', flush=True)\nprint('a warning', file=sys.stderr)\ntime.sleep(2)\nprint('second line')\n"


def first_line_then_rest(args: list[str]) -> tuple[str, bool, str, str, int]:
    """Start the CLI; return its first stdout line, whether the CLI was still running when that line came (so the
    program had not ended), then the rest of stdout, all of stderr and the exit status."""
    process = subprocess.Popen([EXECUTIONER, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    errors: list[str] = []
    reader = threading.Thread(target=lambda: errors.append(process.stderr.read()))
    reader.start()
    first = process.stdout.readline()
    still_running = process.poll() is None
    rest = process.stdout.read()
    process.wait(60)
    reader.join()
    return first, still_running, rest, errors[0], process.returncode


def test_run_prints_the_first_line_before_the_program_ends(tmp_path):
    program = tmp_path / "progress.py"
    program.write_text(PROGRESS)
    first, still_running, rest, stderr, status = first_line_then_rest(["run", str(program)])
    assert first == "first line\n" and still_running
    assert rest == "second line\n" and stderr == "a warning\n" and status == 0


def test_submit_prints_the_first_line_before_the_program_ends(stack, tmp_path):
    program = tmp_path / "progress.py"
    program.write_text(PROGRESS + "raise SystemExit(4)\n")
    first, still_running, rest, stderr, status = first_line_then_rest(["submit", str(program), "--url", stack.url])
    assert first == "first line\n" and still_running
    assert rest == "second line\n" and stderr == "a warning\n" and status == 4


def test_json_still_prints_only_the_document(stack, tmp_path):
    program = tmp_path / "progress.py"
    program.write_text("print('hello')\n")
    for args in (["run", str(program), "--json"], ["submit", str(program), "--url", stack.url, "--json"]):
        result = subprocess.run([EXECUTIONER, *args], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["stdout"] == "hello\n"


def test_a_flood_is_printed_up_to_the_cap_and_flagged(stack, tmp_path):
    program = tmp_path / "flood.py"
    program.write_text("import sys\nfor _ in range(100):\n    sys.stdout.write('y' * 10000)\n")
    for args in (["run", str(program)], ["submit", str(program), "--url", stack.url]):
        result = subprocess.run([EXECUTIONER, *args], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        assert result.stdout == "y" * 64 * 1024
        assert "stdout was truncated" in result.stderr
