"""The `executioner` command: run a file in the local sandbox, start the stack, or submit to an API."""

from __future__ import annotations

import argparse
import base64
import fcntl
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import quote

import httpx
from httpx_sse import SSEError, connect_sse

from executioner.artifacts import artifact_path_problem, keep_artifacts
from executioner.bounds import InvalidSubmission, RequestBounds
from executioner.live_output import LiveOutput
from executioner.models import Artifact, Execution, ExecutionPublic, Limits, Status, utcnow
from executioner.runtimes import DEFAULT_RUNTIME
from executioner.settings import Settings
from executioner.supervisor import Supervisor

# Exit statuses when the program did not exit on its own (the timeout(1) convention where one exists).
EXIT_STATUS = {Status.timed_out: 124, Status.memory_exceeded: 137, Status.cancelled: 130, Status.error: 125}


def exit_status(document: ExecutionPublic) -> int:
    if document.status in (Status.succeeded, Status.failed) and document.exit_code is not None:
        return document.exit_code
    return EXIT_STATUS.get(document.status, 1)


def report(document: ExecutionPublic, as_json: bool, streamed: bool = False) -> int:
    """Print the result; `streamed`: its output was printed already, as it came."""
    if as_json:
        print(document.model_dump_json(indent=2))
    else:
        if not streamed:
            sys.stdout.write(document.stdout)
            sys.stderr.write(document.stderr)
        for stream in ("stdout", "stderr"):
            if getattr(document, f"{stream}_truncated"):
                print(f"executioner: {stream} was truncated", file=sys.stderr)
        if document.status not in (Status.succeeded, Status.failed) or document.error:
            print(f"executioner: {document.status}: {document.error or ''}".rstrip(": "), file=sys.stderr)
    return exit_status(document)


def print_piece(stream: str, text: str) -> None:
    target = sys.stdout if stream == "stdout" else sys.stderr
    target.write(text)
    target.flush()


class TerminalOutput(LiveOutput):
    """Live output on this terminal: the program's stdout to stdout, its stderr to stderr."""

    def deliver(self, stream: str, offset: int, text: str, truncated: bool) -> None:
        print_piece(stream, text)


def read_text(path: str | None) -> str:
    if path is None:
        return ""
    return sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")


def input_files(specs: list[str]) -> list[dict[str, str]]:
    """`--file LOCAL[:PATH]` values as the request's files: each local file's bytes, at PATH (by default its name) in
    the working directory. The paths are checked where the request is (the API, or `run` before it runs)."""
    files = []
    for spec in specs:
        local, _, path = (spec, "", "") if Path(spec).exists() else spec.partition(":")
        try:
            data = Path(local).read_bytes()
        except OSError as exc:
            raise SystemExit(f"executioner: --file {spec}: cannot read {local}: {exc.strerror}") from None
        files.append({"path": path or Path(local).name, "content_base64": base64.b64encode(data).decode()})
    return files


def artifact_destination(directory: Path, path: str) -> Path:
    """Where artifact `path` is saved under `directory`; ValueError for a path that would leave it."""
    if problem := artifact_path_problem(path):
        raise ValueError(f"refusing to save artifact {path!r}: {problem}")
    target = directory / path
    target.parent.mkdir(parents=True, exist_ok=True)
    # A directory on the way may be a link (made before, by anyone): what counts is where it really is.
    if not target.parent.resolve().is_relative_to(directory.resolve()):
        raise ValueError(f"refusing to save artifact {path!r}: it would leave {directory}")
    return target


def save_artifacts(directory: Path, artifacts: Iterable[tuple[str, bytes]]) -> int:
    """Write each (path, bytes) under `directory`, never through a link; returns how many were saved."""
    directory.mkdir(parents=True, exist_ok=True)
    saved = 0
    for path, data in artifacts:
        target = artifact_destination(directory, path)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        saved += 1
    return saved


def saved_or_exit_status(directory: Path | None, artifacts: Iterable[tuple[str, bytes]], status: int) -> int:
    """Save the artifacts when asked to; `status` when that worked, 2 (and why) when it did not."""
    if directory is None:
        return status
    try:
        count = save_artifacts(directory, artifacts)
    except (OSError, ValueError, httpx.HTTPError) as exc:
        print(f"executioner: {exc}", file=sys.stderr)
        return 2
    print(f"executioner: saved {count} artifact{'s' * (count != 1)} to {directory}", file=sys.stderr)
    return status


def local_enforcement_or_exit(settings: Settings, who: str, announce: bool = False) -> None:
    """Fail closed before running anything: refuse (exit 2) when the sandbox's limits cannot be enforced, and say
    so on standard error when they are weak."""
    from executioner.worker.backends.local import enforcement, refusal_message
    from executioner.worker.backends.seccomp import SeccompUnavailable, filter_program

    try:
        filter_program()
    except SeccompUnavailable as exc:
        print(f"executioner: {who}: refusing to run untrusted code without the syscall filter: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc
    found = enforcement(settings)
    if not found.runs:
        print(f"executioner: {who}: {refusal_message(found)}", file=sys.stderr)
        raise SystemExit(2)
    if announce or found.mode == "rlimit":
        print(f"executioner: {who}: limits: {found.describe()}", file=sys.stderr, flush=True)


def cmd_doctor(args: argparse.Namespace) -> int:
    """Print how this user's sandboxes would be limited here, and the bubblewrap in use; exit 2 if they cannot run."""
    from executioner.worker.backends.local import LocalBackend, enforcement, refusal_message

    settings = Settings()
    found = enforcement(settings)
    print(f"user: uid {os.geteuid()}")
    print(f"limits: {found.describe()}")
    try:
        bwrap = LocalBackend(settings).bwrap()
        version = subprocess.run([bwrap, "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
        print(f"bubblewrap: {bwrap} ({version or 'unknown version'})")
    except Exception as exc:  # noqa: BLE001 - report, never crash the diagnosis
        print(f"bubblewrap: unavailable: {exc}")
        return 2
    from executioner.worker.backends.seccomp import SeccompUnavailable, filter_program

    try:
        print(f"syscall filter: seccomp deny-list ({len(filter_program()) // 8} BPF instructions)")
    except SeccompUnavailable as exc:
        print(f"syscall filter: unavailable: {exc}")
        return 2
    from executioner.runtime_packages import RuntimeNotPrepared, prepared_packages

    for name in settings.runtimes:
        try:
            print(f"runtime {name}: {prepared_packages(settings, name) or 'the standard library'}")
        except RuntimeNotPrepared as exc:  # not fatal: that runtime's executions end `error`, saying the same
            print(f"runtime {name}: unavailable: {exc}")
    if not found.runs:
        print(f"status: {refusal_message(found)}")
        return 2
    print("status: ok" if found.mode != "rlimit" else "status: running with weak limits")
    return 0


def cmd_prepare_runtimes(args: argparse.Namespace) -> int:
    """Install the offered runtimes' pinned packages for the local sandbox (once per lock file)."""
    from executioner.runtime_packages import prepare_offered

    try:
        prepare_offered(Settings(), say=lambda line: print(f"executioner: {line}", flush=True))
    except (OSError, RuntimeError, subprocess.CalledProcessError) as exc:
        print(
            f"executioner: cannot prepare the runtimes: {exc} "
            "(to offer the standard library alone, set EXECUTIONER_RUNTIMES=python)",
            file=sys.stderr,
        )
        return 1
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from executioner.worker.backends.local import LocalBackend  # the sandbox itself, loaded only to run

    settings = Settings()
    local_enforcement_or_exit(settings, "run")
    # The runtime and files are checked as the API checks them (code, stdin and limits are the user's own here).
    try:
        request, _ = RequestBounds(settings).validate(
            "pass", "", {}, args.runtime or DEFAULT_RUNTIME, input_files(args.files)
        )
    except InvalidSubmission as exc:
        print(f"executioner: run: {exc}", file=sys.stderr)
        return 2
    limits = Limits(
        timeout_seconds=args.timeout or settings.default_timeout_seconds,
        memory_mb=args.memory or request.limits.memory_mb,  # the runtime's default when it has one
    )
    execution = Execution.new(
        code=read_text(args.file),
        stdin=read_text(args.stdin),
        runtime=request.runtime,
        files=request.files,
        limits=limits,
        backend="local",
        status=Status.running,
    )
    output = None if args.json else TerminalOutput()
    outcome = LocalBackend(settings).run(execution, output)
    if output is not None:
        outcome = output.finish(outcome)
    kept = keep_artifacts(
        outcome.artifacts, outcome.artifacts_truncated, settings.max_artifacts, settings.max_artifact_bytes
    )
    result = {
        **outcome.model_dump(),
        "finished_at": utcnow(),
        "artifacts": [Artifact.model_validate(artifact) for artifact in kept.listing()],
        "artifacts_truncated": kept.truncated,
    }
    document = execution.model_copy(update=result).public()
    status = report(document, args.json, streamed=output is not None)
    return saved_or_exit_status(args.artifacts_dir, kept.contents.items(), status)


def cmd_submit(args: argparse.Namespace) -> int:
    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    body: dict[str, object] = {"code": read_text(args.file), "stdin": read_text(args.stdin)}
    if args.runtime is not None:
        body["runtime"] = args.runtime
    if args.files:
        body["files"] = input_files(args.files)
    limits = {k: v for k, v in (("timeout_seconds", args.timeout), ("memory_mb", args.memory)) if v is not None}
    if limits:
        body["limits"] = limits
    wait = 0 if not args.json else DEFAULT_WAIT_SECONDS  # without --json the output is followed live instead
    with httpx.Client(base_url=args.url, headers=headers, timeout=60) as client:
        response = client.post("/v1/executions", params={"wait": wait}, json=body)
        if (server_max := max_wait_from(response)) is not None:  # the server allows less: ask again with its max
            wait = server_max
            response = client.post("/v1/executions", params={"wait": wait}, json=body)
        if response.status_code >= 400:
            print(f"executioner: the API answered {response.status_code}: {response.text}", file=sys.stderr)
            return 2
        document = ExecutionPublic.model_validate(response.json())
        if not args.json and (followed := follow_live(client, document.id)) is not None:
            status = report(followed, as_json=False, streamed=True)
            return saved_or_exit_status(args.artifacts_dir, fetched_artifacts(client, followed), status)
        wait = DEFAULT_WAIT_SECONDS if wait == 0 else wait
        while not document.status.terminal:
            response = client.get(f"/v1/executions/{document.id}", params={"wait": wait})
            response.raise_for_status()
            document = ExecutionPublic.model_validate(response.json())
        status = report(document, args.json)
        return saved_or_exit_status(args.artifacts_dir, fetched_artifacts(client, document), status)


def fetched_artifacts(client: httpx.Client, document: ExecutionPublic) -> Iterable[tuple[str, bytes]]:
    """Each artifact of a finished execution, read from the API as it is saved."""
    for artifact in document.artifacts:
        response = client.get(f"/v1/executions/{document.id}/artifacts/{quote(artifact.path)}")
        if response.status_code != 200:
            raise httpx.HTTPError(f"could not fetch artifact {artifact.path!r}: {response.status_code} {response.text}")
        yield artifact.path, response.content


DEFAULT_WAIT_SECONDS = 30.0


# Times the CLI reconnects to an execution's event stream (resuming where it was) before it falls back to waiting.
STREAM_RECONNECTS = 5
STREAM_TIMEOUT = httpx.Timeout(60, read=None)  # a quiet program sends nothing for a while (pings every 15 s)


def follow_live(client: httpx.Client, execution_id: str) -> ExecutionPublic | None:
    """Print the execution's output as it comes (its event stream) and return the final document; None when the
    stream is unavailable (an older API) and nothing was printed."""
    last_id: str | None = None
    printed = {"stdout": 0, "stderr": 0}
    for _ in range(STREAM_RECONNECTS):
        headers: dict[str, str] = {"Last-Event-ID": last_id} if last_id else {}
        try:
            with connect_sse(
                client, "GET", f"/v1/executions/{execution_id}/events", headers=headers, timeout=STREAM_TIMEOUT
            ) as source:
                if source.response.status_code != 200:
                    break
                for event in source.iter_sse():
                    last_id = event.id or last_id
                    if event.event in printed:
                        text = event.json()["data"]
                        print_piece(event.event, text)
                        printed[event.event] += len(text)
                    elif event.event == "result":
                        return ExecutionPublic.model_validate_json(event.data)
        except (httpx.TransportError, SSEError):
            continue  # dropped: come back where it was
    if last_id is None:
        return None
    # The stream kept failing part-way: wait for the result, and print what the stream did not.
    document = ExecutionPublic.model_validate(client.get(f"/v1/executions/{execution_id}").json())
    while not document.status.terminal:
        response = client.get(f"/v1/executions/{execution_id}", params={"wait": DEFAULT_WAIT_SECONDS})
        response.raise_for_status()
        document = ExecutionPublic.model_validate(response.json())
    for stream, count in printed.items():
        print_piece(stream, getattr(document, stream)[count:])
    return document


def max_wait_from(response: httpx.Response) -> float | None:
    """The server's largest `?wait`, when it refused ours as too long (422 on query.wait); None otherwise."""
    if response.status_code != 422:
        return None
    try:
        errors = response.json()["detail"]
        return next(float(e["ctx"]["le"]) for e in errors if e.get("loc") == ["query", "wait"] and "le" in e["ctx"])
    except (ValueError, KeyError, TypeError, StopIteration):
        return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_free(port: int) -> bool:
    """Whether a server could listen on 127.0.0.1:port now (SO_REUSEADDR, as Redis binds: TIME_WAIT does not count)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def command_name(process: subprocess.Popen[bytes]) -> str:
    """What a child runs, for messages: the module after `-m` and its first argument, or the program."""
    args = [str(arg) for arg in process.args] if isinstance(process.args, list) else [str(process.args)]
    return " ".join(args[args.index("-m") + 1 :][:2]) if "-m" in args[:-1] else args[0]


def wait_for_port(port: int, process: subprocess.Popen[bytes], seconds: float = 30) -> None:
    """Until something listens on the port; RuntimeError if the process dies or time runs out."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{command_name(process)} exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after {seconds:g} s")


def write_private(path: Path, text: str) -> None:
    """Replace a file in one step, readable by its owner only (0600) from the moment it exists."""
    temporary = path.with_name(f".{path.name}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(text)
    os.chmod(temporary, 0o600)
    os.replace(temporary, path)


class UpState:
    """What `executioner up` keeps between runs in EXECUTIONER_STATE_DIR (0700):

    up.lock         held while an `executioner up` uses the directory (one at a time)
    redis.password  the private Redis's password (0600), made once
    redis.port      its port, chosen once and kept while it is free
    redis.conf      its configuration (0600: it holds the password), written at every start from the settings
    redis/          its data: the append-only file (appendonlydir/)
    """

    OURS = frozenset({"up.lock", "redis.password", "redis.port", "redis.conf", "redis"})

    def __init__(self, directory: Path):
        self.directory = directory
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if directory.stat().st_mode & 0o077:
            # Tighten our own directory (or an empty one), never a directory that holds other things.
            if any(path.name not in self.OURS for path in directory.iterdir()):
                raise SystemExit(
                    f"executioner: {directory} (EXECUTIONER_STATE_DIR) is readable by others and holds other files; "
                    "give `up` a directory of its own"
                )
            directory.chmod(0o700)
        (directory / "redis").mkdir(mode=0o700, exist_ok=True)
        self._lock = open(directory / "up.lock", "a+", encoding="utf-8")  # noqa: SIM115 - held until close()
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.seek(0)
            holder = self._lock.read().strip() or "?"
            self._lock.close()
            raise SystemExit(
                f"executioner: another `executioner up` (pid {holder}) uses {directory}; stop it first, "
                "or give this one its own EXECUTIONER_STATE_DIR"
            ) from None
        self._lock.truncate(0)
        self._lock.write(f"{os.getpid()}\n")
        self._lock.flush()

    def close(self) -> None:
        self._lock.close()  # releases the lock

    def redis_password(self) -> str:
        path = self.directory / "redis.password"
        if path.exists():
            password = path.read_text(encoding="utf-8").strip()
            if password:
                path.chmod(0o600)
                return password
        password = secrets.token_hex(16)
        write_private(path, password + "\n")
        return password

    def redis_port(self) -> int:
        """The port of the last run while it is free, otherwise a new free one (remembered for the next runs)."""
        path = self.directory / "redis.port"
        try:
            saved: int | None = int(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            saved = None
        if saved is not None and 0 < saved < 65536 and port_is_free(saved):
            return saved
        port = free_port()
        if saved is not None:
            print(
                f"executioner: 127.0.0.1:{saved} (from {path}) is taken; the private Redis moves to {port}", flush=True
            )
        write_private(path, f"{port}\n")
        return port

    def redis_config(self, port: int, password: str, maxmemory_mb: int) -> Path:
        path = self.directory / "redis.conf"
        write_private(
            path,
            f"""# Written by `executioner up` at every start (EXECUTIONER_* settings); edits here are overwritten.
bind 127.0.0.1
port {port}
protected-mode yes
requirepass {password}
dir {self.directory / "redis"}
# Nothing accepted may be lost, not even on a kill -9 of Redis or a power cut: every write reaches the disk
# (fsync) before Redis answers. Locally the volume is small, so the cost is small; no RDB snapshots.
appendonly yes
appendfsync always
save ""
# Full means refusing writes (the API answers 503), never evicting a record or a queued execution.
maxmemory {maxmemory_mb}mb
maxmemory-policy noeviction
daemonize no
logfile ""
loglevel warning
""",
        )
        return path


def redis_answers(port: int, password: str) -> bool:
    """Whether the private Redis has loaded its data and answers."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    client = redis.Redis(
        "127.0.0.1", port, password=password, socket_timeout=1, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0)
    )
    try:
        return bool(client.ping())
    except redis.RedisError:  # refused, or still loading its append-only file
        return False
    finally:
        client.close()


# The warm pool `executioner up` keeps on Kubernetes when EXECUTIONER_KUBERNETES_POOL_SIZES is not set (the chart's
# default too).
UP_POOL_SIZES = {"python": 2}


def cmd_up(args: argparse.Namespace) -> int:
    """Start Redis (unless EXECUTIONER_REDIS_URL is set), the worker and the API; keep them running; stop them on
    SIGINT/SIGTERM. The private Redis keeps its data in EXECUTIONER_STATE_DIR, so records survive a restart."""
    settings = Settings()
    env = dict(os.environ)
    supervisor = Supervisor()
    notes: list[str] = []
    state: UpState | None = None
    try:
        if "EXECUTIONER_REDIS_URL" not in os.environ:
            redis_server = shutil.which("redis-server")
            if not redis_server:
                raise SystemExit("executioner: redis-server is not installed (apt-get install redis-server)")
            state = UpState(Path(settings.state_dir).expanduser())
            port, password = state.redis_port(), state.redis_password()
            config = state.redis_config(port, password, settings.local_redis_maxmemory_mb)
            supervisor.add(
                "redis",
                [redis_server, str(config)],
                port=port,
                ready=lambda: redis_answers(port, password),
                advice=f"redis-server's own messages above say why; its data is in {state.directory / 'redis'}",
            )
            env["EXECUTIONER_REDIS_URL"] = f"redis://:{password}@127.0.0.1:{port}/0"
            notes.append(
                f"started a private redis-server on 127.0.0.1:{port}; its data lives in {state.directory} "
                "(delete that directory to start empty)"
            )
        if settings.backend == "kubernetes":
            from executioner.kube import kubernetes_api_client
            from executioner.operator.prerequisites import ensure_prerequisites

            for created in ensure_prerequisites(kubernetes_api_client(), settings.sandbox_namespace):
                print(f"executioner: created {created}", flush=True)
            # As the chart does: a small warm pool unless told otherwise; the worker and operator must agree on it.
            pool = env.setdefault("EXECUTIONER_KUBERNETES_POOL_SIZES", json.dumps(UP_POOL_SIZES))
            notes.append(f"the operator keeps a warm pool of sandbox pods {pool} (EXECUTIONER_KUBERNETES_POOL_SIZES)")
        executioner = [sys.executable, "-P", "-m", "executioner.cli"]
        supervisor.add("worker", [*executioner, "worker", "--log-level", args.log_level], env=env)
        if settings.backend == "kubernetes":
            supervisor.add("operator", [*executioner, "operator", "--log-level", args.log_level], env=env)
        api = [sys.executable, "-P", "-m", "uvicorn", "executioner.api.main:create_app", "--factory"]
        api += ["--host", settings.host, "--port", str(settings.port), "--log-level", args.log_level.lower()]
        # Where to look for the API: the address it binds, or loopback when it binds every address.
        api_host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(settings.host, settings.host)
        supervisor.add("api", [*api, "--no-access-log"], env=env, port=settings.port, host=api_host)
        notes.append(f"serving http://{settings.host}:{settings.port} (backend: {settings.backend})")

        def ready() -> None:
            for note in notes:
                print(f"executioner: {note}", flush=True)

        return supervisor.run(on_ready=ready)
    except KeyboardInterrupt:
        return 0
    finally:
        if state:
            state.close()


def cmd_api(args: argparse.Namespace) -> int:
    """Serve the API in the foreground (the container image's `api` command)."""
    import uvicorn

    settings = Settings()
    uvicorn.run(
        "executioner.api.main:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        log_level=args.log_level.lower(),
        access_log=False,
        proxy_headers=True,
    )
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    """Run a Celery worker in the foreground (the container image's `worker` command)."""
    from executioner.worker.celery_app import app

    settings = Settings()
    if settings.backend == "local":
        local_enforcement_or_exit(settings, "worker", announce=True)
    app.worker_main(
        [
            "worker",
            "--loglevel",
            args.log_level,
            "--without-gossip",
            "--without-mingle",
            "-n",
            f"executioner@{socket.gethostname()}",
        ]
    )
    return 0


def cmd_operator(args: argparse.Namespace) -> int:
    """Run the Kopf operator in the foreground (the container image's `operator` command)."""
    from executioner.operator.main import run_operator

    return run_operator(log_level=args.log_level)


def cmd_release_executionrequests(args: argparse.Namespace) -> int:
    """The chart's post-delete hook: no ExecutionRequest keeps a finalizer nobody will remove, and no warm-pool Job
    waits for ever in a sandbox namespace the release leaves behind."""
    from executioner.kube import kubernetes_api_client
    from executioner.operator.release import delete_pool_jobs, release_all

    api_client = kubernetes_api_client()
    released = release_all(api_client)
    print(f"released {len(released)} ExecutionRequests" + "".join(f"\n  {name}" for name in released))
    if args.pool_namespace:
        deleted = delete_pool_jobs(api_client, args.pool_namespace)
        print(f"deleted {len(deleted)} pool Jobs in {args.pool_namespace}" + "".join(f"\n  {n}" for n in deleted))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="executioner", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    def add_limits(command: argparse.ArgumentParser) -> None:
        command.add_argument("file", help="Python file to run ('-' reads standard input)")
        command.add_argument("--stdin", metavar="PATH", help="file fed to the program's standard input")
        command.add_argument("--timeout", type=float, metavar="S", help="wall-clock limit in seconds")
        command.add_argument("--memory", type=int, metavar="MB", help="memory limit in MiB")
        command.add_argument("--json", action="store_true", help="print the execution document as JSON")
        command.add_argument("--runtime", metavar="NAME", help="runtime to run in, e.g. python-data (default python)")
        command.add_argument(
            "--file",
            dest="files",
            action="append",
            default=[],
            metavar="LOCAL[:PATH]",
            help="place a local file at PATH (default: its name) in the program's working directory; repeatable",
        )
        command.add_argument(
            "--artifacts-dir",
            "--artifacts",
            type=Path,
            metavar="DIR",
            help="save every artifact (the files the program wrote under outputs/) in DIR",
        )

    run = commands.add_parser("run", help="run a file in the local sandbox, without a server")
    add_limits(run)
    run.set_defaults(handler=cmd_run)

    prepare = commands.add_parser(
        "prepare-runtimes",
        help="install the runtimes' pinned packages for the local sandbox (EXECUTIONER_RUNTIMES_DIR; cached by lock)",
    )
    prepare.set_defaults(handler=cmd_prepare_runtimes)

    doctor = commands.add_parser("doctor", help="show how the local sandbox's limits are enforced for this user")
    doctor.set_defaults(handler=cmd_doctor)

    submit = commands.add_parser("submit", help="send a file to a running API and print the result")
    add_limits(submit)
    submit.add_argument("--url", required=True, help="base URL of the API, e.g. http://127.0.0.1:8000")
    submit.add_argument("--api-key", default=os.environ.get("EXECUTIONER_API_KEY"), help="or EXECUTIONER_API_KEY")
    submit.set_defaults(handler=cmd_submit)

    up = commands.add_parser(
        "up", help="start and supervise Redis, the worker and the API (and the operator in kubernetes mode)"
    )
    up.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    up.set_defaults(handler=cmd_up)

    for name, handler, text in (
        ("api", cmd_api, "serve the HTTP API (EXECUTIONER_HOST, EXECUTIONER_PORT)"),
        ("worker", cmd_worker, "run a Celery worker"),
        ("operator", cmd_operator, "run the Kubernetes operator"),
    ):
        command = commands.add_parser(name, help=text)
        command.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
        command.set_defaults(handler=handler)

    release = commands.add_parser(
        "release-executionrequests",
        help="after uninstalling: remove the operator's finalizer from every ExecutionRequest (unfinished ones end Error)",
    )
    release.add_argument(
        "--pool-namespace",
        metavar="NAMESPACE",
        help="also delete the warm pool's Jobs in this sandbox namespace (one the release does not delete)",
    )
    release.set_defaults(handler=cmd_release_executionrequests)

    args = parser.parse_args(argv)
    status: int = args.handler(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
