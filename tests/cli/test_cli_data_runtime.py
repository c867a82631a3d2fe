"""The CLI round trip in python-data: a CSV in with --file, the plot out in --artifacts-dir, with and without a
server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from helpers.data_programs import DATA_CSV, PLOT_PROGRAM, PLOT_STDOUT, png_size

EXECUTIONER = str(Path(sys.executable).with_name("executioner"))


@pytest.mark.parametrize("command", ["run", "submit"])
def test_runtime_file_and_artifacts_dir(command, stack, prepared_runtimes, tmp_path):
    (tmp_path / "plot.py").write_text(PLOT_PROGRAM)
    (tmp_path / "data.csv").write_bytes(DATA_CSV)
    out = tmp_path / "out"
    server = ["--url", stack.url] if command == "submit" else []
    options = ["--runtime", "python-data", "--file", "data.csv", "--artifacts-dir", str(out), "--timeout", "30"]
    result = subprocess.run(
        [EXECUTIONER, command, "plot.py", *server, *options],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == PLOT_STDOUT
    assert sorted(path.name for path in out.iterdir()) == ["plot.png", "report.html"]
    assert png_size((out / "plot.png").read_bytes())[0] >= 100
    assert "saved 2 artifacts" in result.stderr
