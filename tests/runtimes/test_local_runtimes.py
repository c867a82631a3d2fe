"""Runtimes, input files and artifacts on the local backend: real bubblewrap, the real prepared python-data runtime."""

from __future__ import annotations

import base64
import concurrent.futures
import json
import struct
import subprocess
import sys

import pytest

from executioner.models import Execution, InputFile, Limits, Outcome, Status
from executioner.runtime_packages import packages_dir
from executioner.runtimes import RUNTIMES
from executioner.settings import Settings
from executioner.worker.backends.base import SandboxUnavailable
from executioner.worker.backends.local import LocalBackend
from helpers.programs import program, wait_until

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def backend(prepared_runtimes) -> LocalBackend:
    """A worker's local backend (cold sandboxes), with the settings a worker has by default."""
    return LocalBackend(Settings())


def run(
    backend: LocalBackend,
    code: str,
    runtime: str = "python-data",
    files: dict[str, bytes] | None = None,
    timeout: float = 30,
) -> Outcome:
    inputs = [
        InputFile(path=path, content_base64=base64.b64encode(data).decode()) for path, data in (files or {}).items()
    ]
    execution = Execution.new(
        code=code,
        limits=Limits(timeout_seconds=timeout, memory_mb=RUNTIMES[runtime].default_memory_mb or 128),
        backend="local",
        runtime=runtime,
        files=inputs,
    )
    return backend.run(execution)


def artifacts(outcome: Outcome) -> dict[str, bytes]:
    return {artifact.path: base64.b64decode(artifact.content_base64) for artifact in outcome.artifacts}


DATA_WORK = program(
    """
    import json
    import matplotlib, numpy, pandas, scipy
    from scipy import optimize
    frame = pandas.DataFrame({"x": numpy.arange(5), "y": numpy.arange(5) ** 2})
    root = optimize.brentq(lambda x: x * x - 2, 0, 2)
    print(json.dumps({
        "sum": int(frame["y"].sum()),
        "root": round(root, 6),
        "backend": matplotlib.get_backend().lower(),
        "where": numpy.__file__,
        "versions": {m.__name__: m.__version__ for m in (numpy, pandas, matplotlib, scipy)},
    }))
    """
)


def test_numpy_pandas_matplotlib_and_scipy_work_in_python_data(backend):
    outcome = run(backend, DATA_WORK)
    assert outcome.status is Status.succeeded, outcome
    facts = json.loads(outcome.stdout)
    assert facts["sum"] == 30
    assert facts["root"] == 1.414214
    assert facts["backend"] == "agg"
    assert facts["where"].startswith("/opt/runtime/site-packages/")
    pinned = dict(RUNTIMES["python-data"].packages)
    assert facts["versions"] == {name: pinned[name] for name in ("numpy", "pandas", "matplotlib", "scipy")}
    assert outcome.stderr == ""  # no warning about fonts or caches
    assert outcome.sandbox_start == "cold"


def test_python_has_none_of_them(backend):
    outcome = run(
        backend,
        program(
            """
            import importlib.util
            print(*[name for name in ("numpy", "pandas", "matplotlib", "scipy") if importlib.util.find_spec(name)])
            """
        ),
        runtime="python",
    )
    assert outcome.status is Status.succeeded, outcome
    assert outcome.stdout == "\n"


def test_a_csv_input_file_is_read_by_pandas(backend):
    csv = b"city,people\nLisbon,545000\nPorto,232000\n"
    outcome = run(
        backend,
        program(
            """
            import pandas
            frame = pandas.read_csv("in/cities.csv")
            print(frame["people"].sum(), list(frame["city"]))
            """
        ),
        files={"in/cities.csv": csv},
    )
    assert outcome.status is Status.succeeded, outcome
    assert outcome.stdout == "777000 ['Lisbon', 'Porto']\n"


def test_a_saved_plot_comes_back_as_a_png(backend):
    outcome = run(
        backend,
        program(
            """
            import matplotlib.pyplot as plt
            import pandas
            frame = pandas.read_csv("data.csv")
            figure, axes = plt.subplots(figsize=(4, 3), dpi=50)
            axes.plot(frame["x"], frame["y"])
            figure.savefig("outputs/plot.png")
            print("saved")
            """
        ),
        files={"data.csv": b"x,y\n0,1\n1,3\n2,2\n"},
    )
    assert outcome.status is Status.succeeded, outcome
    assert outcome.artifacts_truncated is False
    png = artifacts(outcome)["plot.png"]
    assert png.startswith(PNG_SIGNATURE)
    length, kind, width, height = struct.unpack(">I4sII", png[8:24])
    assert (length, kind, width, height) == (13, b"IHDR", 200, 150)  # the header chunk: 4x3 inches at 50 dpi


def test_the_artifact_caps_hold_and_are_flagged(backend):
    settings = backend.settings
    many = run(
        backend,
        f"for i in range({settings.max_artifacts + 4}):\n    open(f'outputs/{{i:02}}.txt', 'w').write(str(i))\n",
        runtime="python",
    )
    assert many.status is Status.succeeded, many
    assert list(artifacts(many)) == [f"{i:02}.txt" for i in range(settings.max_artifacts)]
    assert many.artifacts_truncated is True

    big = settings.max_artifact_bytes * 2 // 3
    large = run(
        backend,
        f"for name in 'abc':\n    open(f'outputs/{{name}}.bin', 'wb').write(b'x' * {big})\n",
        runtime="python",
    )
    assert large.status is Status.succeeded, large
    assert {path: len(data) for path, data in artifacts(large).items()} == {"a.bin": big}
    assert large.artifacts_truncated is True


def test_a_link_in_outputs_is_not_followed(backend):
    outcome = run(
        backend,
        program(
            """
            import os
            os.symlink("/etc/passwd", "outputs/passwd")
            os.symlink("/", "outputs/root")
            os.symlink("/opt/executioner/runner.py", "outputs/runner.py")
            open("outputs/ok.txt", "w").write("ok")
            """
        ),
        runtime="python",
    )
    assert outcome.status is Status.succeeded, outcome
    assert artifacts(outcome) == {"ok.txt": b"ok"}


def test_a_fifo_in_outputs_does_not_hang_the_runner(backend):
    outcome = run(
        backend,
        program(
            """
            import os
            os.mkfifo("outputs/pipe")
            open("outputs/ok.txt", "w").write("ok")
            """
        ),
        runtime="python",
        timeout=5,
    )
    assert outcome.status is Status.succeeded, outcome
    assert artifacts(outcome) == {"ok.txt": b"ok"}


@pytest.mark.parametrize("path", ["../escape.txt", "/tmp/absolute.txt", "a/../../b.txt", "outputs/seeded.txt"])
def test_the_runner_refuses_input_paths_outside_the_working_directory(backend, path):
    # The API refuses these paths first (422); the runner checks again, whatever reached it.
    outcome = run(backend, "print('the program ran')", runtime="python", files={path: b"x"})
    assert outcome.status is Status.error, outcome
    assert "input file path" in (outcome.error or "") and path in (outcome.error or "")
    assert "the program ran" not in outcome.stdout


SHOW_WORKDIR = program(
    """
    import os, time
    time.sleep(0.5)  # both run at once
    names = sorted(os.path.join(d, f)[2:] for d, _, fs in os.walk(".") for f in fs if not d.startswith("./.matplotlib"))
    print(names, open("secret.txt").read())
    open("outputs/mine.txt", "w").write(open("secret.txt").read())
    """
)


def test_two_executions_never_see_each_others_files(backend):
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        runs = [
            pool.submit(run, backend, SHOW_WORKDIR, runtime, {"secret.txt": secret.encode()})
            for runtime, secret in (("python", "first"), ("python-data", "second"))
        ]
        first, second = (future.result() for future in runs)
    assert first.stdout == "['secret.txt'] first\n", first
    assert second.stdout == "['secret.txt'] second\n", second
    assert artifacts(first) == {"mine.txt": b"first"}
    assert artifacts(second) == {"mine.txt": b"second"}


def test_warm_sandboxes_get_their_own_files_too(prepared_runtimes):
    """The default runtime is served warm: its files travel inline in the job."""
    backend = LocalBackend(Settings(local_pool_size=1))
    backend.start_pool()
    try:
        outcomes = []
        for secret in ("one", "two"):
            assert backend.pool is not None and wait_until(lambda: backend.pool.ready() == 1, 30)
            outcomes.append(run(backend, SHOW_WORKDIR, "python", {"secret.txt": secret.encode()}))
    finally:
        backend.close()
    assert [outcome.sandbox_start for outcome in outcomes] == ["warm", "warm"], outcomes
    assert [outcome.stdout for outcome in outcomes] == ["['secret.txt'] one\n", "['secret.txt'] two\n"]
    assert [artifacts(outcome) for outcome in outcomes] == [{"mine.txt": b"one"}, {"mine.txt": b"two"}]


def test_a_runtime_not_prepared_here_is_refused_with_the_fix(tmp_path):
    backend = LocalBackend(Settings(runtimes_dir=str(tmp_path)))
    with pytest.raises(SandboxUnavailable, match=r"'python-data' is not prepared.*executioner prepare-runtimes"):
        run(backend, "print('never runs')")


def test_preparing_again_is_a_no_op(prepared_runtimes):
    prepared = packages_dir(Settings(), RUNTIMES["python-data"])
    before = prepared.stat().st_mtime_ns
    result = subprocess.run(
        [sys.executable, "-P", "-m", "executioner.cli", "prepare-runtimes"], capture_output=True, text=True, check=True
    )
    assert "python-data: prepared already" in result.stdout
    assert prepared.stat().st_mtime_ns == before
    # read-only for everyone, and the sandbox's user can read it
    assert not prepared.stat().st_mode & 0o222
    assert prepared.stat().st_mode & 0o005 == 0o005


def test_doctor_says_which_runtimes_this_machine_can_run(prepared_runtimes, tmp_path):
    def doctor(**settings: str) -> str:
        env = {"PATH": "/usr/bin:/bin", **settings}
        command = [sys.executable, "-P", "-m", "executioner.cli", "doctor"]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60).stdout

    prepared = packages_dir(Settings(), RUNTIMES["python-data"])
    assert f"runtime python-data: {prepared}\n" in doctor()
    missing = doctor(EXECUTIONER_RUNTIMES_DIR=str(tmp_path))
    assert "runtime python: the standard library\n" in missing
    assert "runtime python-data: unavailable: the runtime 'python-data' is not prepared" in missing
    assert "executioner prepare-runtimes" in missing
