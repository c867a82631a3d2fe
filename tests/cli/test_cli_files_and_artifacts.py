"""The CLI's --runtime, --file and --artifacts-dir against a real API and Redis, the test playing the worker, so the
artifacts' bytes are exactly known (tests/cli/test_cli_data_runtime.py runs real programs in python-data)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from executioner.models import ArtifactContent, Outcome, Status
from executioner.store import ExecutionStore
from helpers.private import private_api

EXECUTIONER = str(Path(sys.executable).with_name("executioner"))
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))


def play_the_worker(store: ExecutionStore, artifacts: dict[str, bytes], seconds: float = 30) -> dict:
    """Wait for the one queued execution, finish it with `artifacts`; returns its record as the API stores it."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        items, _ = store.page("anonymous", 1)
        if items:
            execution_id = items[0].id
            store.transition(execution_id, Status.running, lease_owner="test", lease_seconds=60)
            contents = [
                ArtifactContent(path=p, content_base64=base64.b64encode(d).decode()) for p, d in artifacts.items()
            ]
            store.record_outcome(
                execution_id, Outcome(status=Status.succeeded, exit_code=0, stdout="ok\n", artifacts=contents)
            )
            return store.get(execution_id).model_dump(mode="json")
        time.sleep(0.05)
    raise AssertionError("nothing was submitted")


def test_submit_sends_runtime_and_files_and_saves_the_artifacts(tmp_path):
    program = tmp_path / "plot.py"
    program.write_text("print('ok')\n")
    (tmp_path / "data.csv").write_bytes(b"x,y\n1,2\n")
    out = tmp_path / "out"
    with private_api(tmp_path / "api") as api:
        store = ExecutionStore.from_url(api.redis_url, 3600)
        env = {k: v for k, v in os.environ.items() if not k.startswith("EXECUTIONER_")}
        command = [EXECUTIONER, "submit", str(program), "--url", str(api.base_url), "--runtime", "python-data"]
        command += ["--file", str(tmp_path / "data.csv"), "--file", f"{tmp_path / 'data.csv'}:in/copy.csv"]
        command += ["--artifacts-dir", str(out), "--json"]
        cli = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        record = play_the_worker(store, {"plot.png": PNG, "tables/t.csv": b"a\n"})
        stdout, stderr = cli.communicate(timeout=60)
        store.redis.close()
    assert cli.returncode == 0, stderr
    assert record["runtime"] == "python-data"
    assert [(f["path"], base64.b64decode(f["content_base64"])) for f in record["files"]] == [
        ("data.csv", b"x,y\n1,2\n"),
        ("in/copy.csv", b"x,y\n1,2\n"),
    ]
    assert json.loads(stdout)["artifacts"][0] == {"path": "plot.png", "size": len(PNG), "content_type": "image/png"}
    assert (out / "plot.png").read_bytes() == PNG and (out / "tables" / "t.csv").read_bytes() == b"a\n"
    assert "saved 2 artifacts" in stderr


def test_a_bad_file_path_or_runtime_is_refused_naming_it(stack, tmp_path):
    program = tmp_path / "p.py"
    program.write_text("print(1)\n")
    (tmp_path / "data.csv").write_text("x\n")
    for command in ("submit", "run"):
        extra = ["--url", stack.url] if command == "submit" else []
        bad_path = subprocess.run(
            [EXECUTIONER, command, str(program), *extra, "--file", f"{tmp_path / 'data.csv'}:../x.csv"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert bad_path.returncode == 2 and "'../x.csv'" in bad_path.stderr, bad_path.stderr
        bad_runtime = subprocess.run(
            [EXECUTIONER, command, str(program), *extra, "--runtime", "ruby"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert bad_runtime.returncode == 2 and "runtime" in bad_runtime.stderr, bad_runtime.stderr
