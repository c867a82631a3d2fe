"""The Python client in the python-data runtime: files in, artifacts out, against the real local stack."""

from __future__ import annotations

import sys

import pytest

from helpers.data_programs import DATA_CSV, PLOT_PROGRAM, PLOT_STDOUT, png_size
from helpers.stack import REPO

sys.path.insert(0, str(REPO / "clients" / "python" / "src"))  # as test_python_client.py

from executioner_client import Artifact, Client, ExecutionerError, InputFile, NotFound, Status


@pytest.fixture
def client(stack):
    with Client(stack.url) as client:
        yield client


def test_run_with_a_runtime_and_files_and_fetch_the_artifacts(client, prepared_runtimes):
    execution = client.run(PLOT_PROGRAM, runtime="python-data", files={"data.csv": DATA_CSV}, timeout=30)
    assert execution.status is Status.succeeded, execution.stderr or execution.error
    assert execution.stdout == PLOT_STDOUT and execution.runtime == "python-data"
    assert execution.files == (InputFile(path="data.csv", content=DATA_CSV),)
    artifacts = {artifact.path: artifact for artifact in execution.artifacts}
    assert isinstance(artifacts["plot.png"], Artifact) and artifacts["plot.png"].content_type == "image/png"
    plot = client.artifact(execution.id, "plot.png")
    assert len(plot) == artifacts["plot.png"].size and png_size(plot)[0] >= 100
    assert client.artifact(execution.id, "report.html").startswith(b"<script>")
    with pytest.raises(NotFound):
        client.artifact(execution.id, "absent.png")
    with pytest.raises(ExecutionerError) as bad_path:
        client.submit("print(1)", files={"../escape.txt": "x"})
    assert bad_path.value.status_code == 422 and bad_path.value.field == "files.0.path"
    with pytest.raises(ExecutionerError) as bad_runtime:
        client.submit("print(1)", runtime="ruby")
    assert bad_runtime.value.status_code == 422 and bad_runtime.value.field == "runtime"
