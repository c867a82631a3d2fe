"""The `executioner` command: run a file in the local sandbox, start the stack, or submit to an API."""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from executioner.models import Execution, ExecutionPublic, Limits, Status, utcnow
from executioner.settings import Settings

# Exit statuses when the program did not exit on its own (the timeout(1) convention where one exists).
EXIT_STATUS = {Status.timed_out: 124, Status.memory_exceeded: 137, Status.cancelled: 130, Status.error: 125}


def exit_status(document: ExecutionPublic) -> int:
    if document.status in (Status.succeeded, Status.failed) and document.exit_code is not None:
        return document.exit_code
    return EXIT_STATUS.get(document.status, 1)


def report(document: ExecutionPublic, as_json: bool) -> int:
    if as_json:
        print(document.model_dump_json(indent=2))
    else:
        sys.stdout.write(document.stdout)
        sys.stderr.write(document.stderr)
        for stream in ("stdout", "stderr"):
            if getattr(document, f"{stream}_truncated"):
                print(f"executioner: {stream} was truncated", file=sys.stderr)
        if document.status not in (Status.succeeded, Status.failed) or document.error:
            print(f"executioner: {document.status}: {document.error or ''}".rstrip(": "), file=sys.stderr)
    return exit_status(document)


def read_text(path: str | None) -> str:
    if path is None:
        return ""
    return sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")


def cmd_run(args: argparse.Namespace) -> int:
    from executioner.worker.backends.local import LocalBackend  # the sandbox itself, loaded only to run

    settings = Settings()
    limits = Limits(
        timeout_seconds=args.timeout or settings.default_timeout_seconds,
        memory_mb=args.memory or settings.default_memory_mb,
    )
    execution = Execution.new(code=read_text(args.file), stdin=read_text(args.stdin), limits=limits, backend="local",
                              status=Status.running)
    outcome = LocalBackend(settings).run(execution)
    document = execution.model_copy(update={**outcome.model_dump(), "finished_at": utcnow()}).public()
    return report(document, args.json)


def cmd_submit(args: argparse.Namespace) -> int:
    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    body: dict[str, object] = {"code": read_text(args.file), "stdin": read_text(args.stdin)}
    limits = {k: v for k, v in (("timeout_seconds", args.timeout), ("memory_mb", args.memory)) if v is not None}
    if limits:
        body["limits"] = limits
    with httpx.Client(base_url=args.url, headers=headers, timeout=60) as client:
        response = client.post("/v1/executions", params={"wait": 30}, json=body)
        if response.status_code >= 400:
            print(f"executioner: the API answered {response.status_code}: {response.text}", file=sys.stderr)
            return 2
        document = ExecutionPublic.model_validate(response.json())
        while not document.status.terminal:
            response = client.get(f"/v1/executions/{document.id}", params={"wait": 30})
            response.raise_for_status()
            document = ExecutionPublic.model_validate(response.json())
    return report(document, args.json)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


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


def cmd_up(args: argparse.Namespace) -> int:
    """Start Redis (unless EXECUTIONER_REDIS_URL is set), the worker and the API; stop them all on exit."""
    settings = Settings()
    env = dict(os.environ)
    children: list[subprocess.Popen[bytes]] = []
    runtime = Path(tempfile.mkdtemp(prefix="executioner-up-"))

    def stop_all() -> None:
        for child in reversed(children):
            if child.poll() is None:
                child.terminate()
        for child in reversed(children):
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
        shutil.rmtree(runtime, ignore_errors=True)

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        if "EXECUTIONER_REDIS_URL" not in os.environ:
            redis_server = shutil.which("redis-server")
            if not redis_server:
                raise SystemExit("executioner: redis-server is not installed (apt-get install redis-server)")
            port, password = free_port(), secrets.token_hex(16)
            redis = subprocess.Popen(
                [redis_server, "--bind", "127.0.0.1", "--port", str(port), "--requirepass", password,
                 "--save", "", "--appendonly", "no", "--dir", str(runtime), "--loglevel", "warning"],
            )
            children.append(redis)
            wait_for_port(port, redis)
            env["EXECUTIONER_REDIS_URL"] = f"redis://:{password}@127.0.0.1:{port}/0"
            print(f"executioner: started a private redis-server on 127.0.0.1:{port}", flush=True)
        if settings.backend == "kubernetes":
            from executioner.kube import kubernetes_api_client
            from executioner.operator.prerequisites import ensure_prerequisites

            for created in ensure_prerequisites(kubernetes_api_client(), settings.sandbox_namespace):
                print(f"executioner: created {created}", flush=True)
        python = sys.executable
        executioner = [python, "-P", "-m", "executioner.cli"]
        children.append(subprocess.Popen([*executioner, "worker", "--log-level", args.log_level], env=env))
        if settings.backend == "kubernetes":
            children.append(subprocess.Popen([*executioner, "operator", "--log-level", args.log_level], env=env))
        api = subprocess.Popen(
            [python, "-P", "-m", "uvicorn", "executioner.api.main:create_app", "--factory",
             "--host", settings.host, "--port", str(settings.port), "--log-level", args.log_level.lower(),
             "--no-access-log"],
            env=env,
        )
        children.append(api)
        wait_for_port(settings.port, api)
        print(f"executioner: serving http://{settings.host}:{settings.port} (backend: {settings.backend})", flush=True)
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        failed = next(child for child in children if child.poll() is not None)
        print(f"executioner: {command_name(failed)} stopped; shutting down", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    except RuntimeError as exc:
        print(f"executioner: {exc}", file=sys.stderr)
        return 1
    finally:
        stop_all()


def cmd_api(args: argparse.Namespace) -> int:
    """Serve the API in the foreground (the container image's `api` command)."""
    import uvicorn

    settings = Settings()
    uvicorn.run("executioner.api.main:create_app", factory=True, host=settings.host, port=settings.port,
                log_level=args.log_level.lower(), access_log=False, proxy_headers=True)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    """Run a Celery worker in the foreground (the container image's `worker` command)."""
    from executioner.worker.celery_app import app

    app.worker_main(["worker", "--loglevel", args.log_level, "--without-gossip", "--without-mingle",
                     "-n", f"executioner@{socket.gethostname()}"])
    return 0


def cmd_operator(args: argparse.Namespace) -> int:
    """Run the Kopf operator in the foreground (the container image's `operator` command)."""
    from executioner.operator.main import run_operator

    return run_operator(log_level=args.log_level)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="executioner", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    def add_limits(command: argparse.ArgumentParser) -> None:
        command.add_argument("file", help="Python file to run ('-' reads standard input)")
        command.add_argument("--stdin", metavar="PATH", help="file fed to the program's standard input")
        command.add_argument("--timeout", type=float, metavar="S", help="wall-clock limit in seconds")
        command.add_argument("--memory", type=int, metavar="MB", help="memory limit in MiB")
        command.add_argument("--json", action="store_true", help="print the execution document as JSON")

    run = commands.add_parser("run", help="run a file in the local sandbox, without a server")
    add_limits(run)
    run.set_defaults(handler=cmd_run)

    submit = commands.add_parser("submit", help="send a file to a running API and print the result")
    add_limits(submit)
    submit.add_argument("--url", required=True, help="base URL of the API, e.g. http://127.0.0.1:8000")
    submit.add_argument("--api-key", default=os.environ.get("EXECUTIONER_API_KEY"), help="or EXECUTIONER_API_KEY")
    submit.set_defaults(handler=cmd_submit)

    up = commands.add_parser("up", help="start Redis, the worker and the API (and the operator in kubernetes mode)")
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

    args = parser.parse_args(argv)
    status: int = args.handler(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
