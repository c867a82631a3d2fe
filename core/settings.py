"""All configuration, read once from EXECUTIONER_* environment variables."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

if TYPE_CHECKING:
    from executioner.models import Limits


# What one byte of allowed output can take in a sandbox's container log at most: two streams, each forwarded as
# base64 chunks (4/3) and again in the JSON result (6 for a control character), rounded up.
SANDBOX_LOG_BYTES_PER_OUTPUT_BYTE = 16
# The data a Kubernetes Secret may hold; each input file travels in one.
SECRET_MAX_BYTES = 1024 * 1024


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EXECUTIONER_", extra="ignore")

    # Where code runs: "local" (bubblewrap on this machine) or "kubernetes" (one Job per execution).
    backend: Literal["local", "kubernetes"] = "local"
    # Broker and execution store. `executioner up` starts a private redis-server when unset.
    redis_url: str = "redis://127.0.0.1:6379/0"
    # Log lines as plain text, or as JSON objects (one per line, with the execution id where there is one).
    log_format: Literal["text", "json"] = "text"
    # Where the API listens.
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    # Comma-separated API keys; empty means the API is open (only sensible on 127.0.0.1).
    api_keys: Annotated[list[str], NoDecode] = []
    # Without API keys the API answers only requests whose Host is 127.0.0.1, localhost, [::1] or EXECUTIONER_HOST
    # (refusing DNS rebinding): comma-separated further names it is reached by; "*" allows any.
    allowed_hosts: Annotated[list[str], NoDecode] = []
    # Allowed browser origins for CORS, comma-separated; empty turns CORS off.
    cors_origins: Annotated[list[str], NoDecode] = []
    # Built web UI served at / (defaults to frontend/dist of the source tree, when built).
    ui_dir: str | None = None
    # How long execution records are kept.
    retention_seconds: int = Field(86400, ge=60)
    # How long a finished execution keeps its code, stdin, stdout and stderr (at most retention_seconds): the
    # record stays, marked payload_expired, and the bytes go back to the key's budget.
    payload_retention_seconds: int = Field(86400, ge=60)

    # Admission, per API key (or for everyone when the API is open). 0 turns a limit off.
    # Token bucket: sustained submissions per minute, and how many may come at once.
    rate_limit_per_minute: float = Field(600, ge=0)
    rate_limit_burst: int = Field(100, ge=1)
    # Queued plus running executions one key may have at a time (answers 429 beyond).
    max_active_per_key: int = Field(100, ge=0)
    # Executions waiting for a worker across all keys (answers 503 beyond, instead of queueing without bound).
    max_queued: int = Field(1000, ge=0)
    # Bytes of code, stdin and output one key's retained records may hold (answers 429 beyond; freed as they expire).
    max_stored_bytes_per_key: int = Field(64 * 1024 * 1024, ge=0)

    # The store's memory: new executions are refused (503) once Redis uses this share of its maxmemory, so the
    # results of running executions still fit. Redis should run with maxmemory and noeviction.
    store_high_water_ratio: float = Field(0.8, gt=0, le=1)
    # The memory bound to apply the ratio to when Redis reports none (maxmemory 0); 0 means no check then.
    store_max_bytes: int = Field(0, ge=0)

    # Request limits.
    max_code_bytes: int = Field(64 * 1024, ge=1)
    max_stdin_bytes: int = Field(1024 * 1024, ge=0)
    default_timeout_seconds: float = Field(5.0, gt=0)
    max_timeout_seconds: float = Field(60.0, gt=0)
    default_memory_mb: int = Field(128, ge=16)
    min_memory_mb: int = Field(32, ge=16)
    max_memory_mb: int = Field(512, ge=16)
    max_wait_seconds: float = Field(30.0, ge=0)
    # Input files per execution: how many, the bytes of each (decoded) and of all together.
    max_input_files: int = Field(8, ge=0)
    max_input_file_bytes: int = Field(1_000_000, ge=0)
    max_input_files_total_bytes: int = Field(2 * 1024 * 1024, ge=0)
    # Artifacts (files the program writes under outputs/): how many are kept and their bytes together; beyond, the
    # rest is dropped and the result says so (artifacts_truncated).
    max_artifacts: int = Field(8, ge=0)
    max_artifact_bytes: int = Field(2 * 1024 * 1024, ge=0)
    # Requests one key may have waiting (`?wait`) or streaming (events) at once; neither costs a thread, each memory.
    max_waiters_per_key: int = Field(100, ge=0)

    # Sandbox limits applied to every execution.
    output_limit_bytes: int = Field(64 * 1024, ge=1024)
    max_processes: int = Field(64, ge=4)
    max_file_bytes: int = Field(16 * 1024 * 1024, ge=1024)
    tmp_size_mb: int = Field(16, ge=1)
    # Size of the sandbox's /dev/shm (a tmpfs of its own; its pages count against the memory cgroup where there is one).
    shm_size_mb: int = Field(16, ge=1)
    # CPU of a sandbox pod, in cores: its request and its limit (equal, so the pod is Guaranteed QoS).
    cpu_limit: float = Field(0.5, gt=0)

    # ExecutionRequests' artifacts for kubectl users: GET /v1/executionrequests/{namespace}/{name}/artifacts/{path}
    # with a Kubernetes bearer token, served when a TokenReview authenticates it and a SubjectAccessReview lets its
    # user get that ExecutionRequest. On, the API talks to the Kubernetes API (in-cluster credentials or KUBECONFIG)
    # for these reviews and that read, and for nothing else.
    kubernetes_artifact_access: bool = False
    # Audiences such a token must carry (`kubectl create token SA --audience executioner`), so a token handed to the
    # API is no key to the Kubernetes API itself; empty: the Kubernetes API server's own audiences.
    kubernetes_token_audiences: Annotated[list[str], NoDecode] = ["executioner"]

    # Runtimes offered (comma-separated, from GET /v1/runtimes' list of known ones); "python" is the default.
    runtimes: Annotated[list[str], NoDecode] = ["python", "python-data"]

    # Local backend.
    bwrap_path: str = "bwrap"
    # Where `executioner prepare-runtimes` (run by `make up`) installs each runtime's pinned packages, one read-only
    # directory per runtime and lock file; a worker binds the execution's into its sandbox.
    runtimes_dir: str = "~/.cache/executioner/runtimes"
    sandbox_python: str = "/usr/bin/python3"
    # Host UID/GID that bubblewrap runs as when the worker is root.
    sandbox_uid: int = 65534
    sandbox_gid: int = 65534
    # Parent cgroup for per-execution memory/pids cgroups (used when writable).
    cgroup_parent: str = "executioner"
    # A non-root worker's cgroups: comma-separated cgroup directories delegated to (owned by) its user, either one
    # cgroup v2 directory or a cgroup v1 memory and a v1 pids directory; per-execution cgroups are made inside.
    cgroup_delegate: Annotated[list[str], NoDecode] = []
    # Let a non-root worker without cgroups run with rlimits only (weaker: forked children and tmpfs files escape
    # the memory limit). Off, the worker and `executioner run` refuse to start instead.
    allow_weak_limits: bool = False

    # Worker.
    worker_concurrency: int = Field(4, ge=1)
    # Warm sandboxes each local worker keeps started and waiting for a job; unset: one per concurrent task; 0: none.
    local_pool_size: int | None = Field(None, ge=0)
    lease_seconds: float = Field(10.0, ge=2)
    sweep_interval_seconds: float = Field(5.0, gt=0)
    # A queued execution with no message in the broker this long after it was queued (the message went with a
    # Redis crash, or with a worker that took it while Redis was away) is sent to the workers again.
    redispatch_after_seconds: float = Field(30.0, gt=0)
    # A file the worker's Celery consumer loop touches every few seconds while it runs, for a liveness probe that
    # checks its age (the chart's); empty: none.
    worker_heartbeat_file: str = ""
    # How long a worker keeps trying to record a finished execution's result while Redis is unreachable.
    store_outage_seconds: float = Field(120.0, ge=0)
    # Seconds the worker waits beyond an execution's timeout, counted from the sandbox's start (the runner's own start
    # and teardown), before giving up on the sandbox. Waiting for a Kubernetes sandbox to start is not in it: that is
    # schedule_timeout_seconds.
    grace_seconds: float = Field(10.0, ge=1)

    # Kubernetes backend.
    sandbox_namespace: str = "executioner-sandbox"
    sandbox_image: str = "executioner/sandbox:0.1.0"
    # Sandbox images of the other runtimes (JSON, runtime name to image); the "python" runtime uses sandbox_image.
    runtime_images: dict[str, str] = {"python-data": "executioner/sandbox-python-data:0.1.0"}
    # RuntimeClass for sandbox pods, e.g. "gvisor" (recommended where the cluster offers it).
    runtime_class_name: str | None = None
    # The ServiceAccount sandbox pods run as: it must exist, mount no token and hold no permissions (the chart and
    # `make up` create it); the worker checks the first two before each run.
    sandbox_service_account: str = "executioner-sandbox"
    # False runs sandbox pods in a user namespace of their own (`hostUsers: false`): root inside maps to an
    # unprivileged host UID. Needs a runtime that supports it (containerd >= 2.0 or CRI-O >= 1.25, Linux >= 6.3).
    sandbox_host_users: bool = True
    # Localhost seccomp profile of sandbox pods, relative to the kubelet's seccomp directory (e.g.
    # "executioner/sandbox.json", installed by the chart's seccompProfile DaemonSet); empty: RuntimeDefault.
    sandbox_seccomp_profile: str = ""
    # Where sandbox pods may run (JSON): e.g. {"executioner.dev/sandbox": "true"} and matching tolerations.
    sandbox_node_selector: dict[str, str] = {}
    sandbox_tolerations: list[dict[str, object]] = []
    # Finished Jobs are deleted as soon as their result is recorded; this TTL is the backstop.
    job_ttl_seconds: int = Field(300, ge=0)
    # Ephemeral-storage request and limit of each sandbox pod (its container log and writable layer; /tmp is
    # memory): the kubelet evicts a sandbox past it and the execution ends `error`.
    sandbox_ephemeral_storage_mb: int = Field(32, ge=1)
    # How long a Kubernetes sandbox may take to start (a node to run it, its image, its volumes) before the execution
    # ends `error` saying what it waited on; the program's time limit starts only once it runs.
    schedule_timeout_seconds: float = Field(60.0, gt=0)
    # Warm pool (JSON, runtime name to size): sandbox pods the operator keeps started per runtime, each runner
    # waiting on stdin for its one execution; an execution with its runtime's default memory takes one (claimed
    # atomically, code sent over pods/attach) and the cold Job path serves the rest. {} or 0: no pool.
    kubernetes_pool_sizes: dict[str, Annotated[int, Field(ge=0)]] = {}
    # CPU a waiting pool pod requests, in cores (its limit stays EXECUTIONER_CPU_LIMIT): its runner waits blocked
    # on stdin, so a pool does not hold the node's CPU back from the executions running meanwhile.
    kubernetes_pool_cpu_request: float = Field(0.05, gt=0)
    # How often the operator sweeps the sandbox namespace for leftovers and lost executions.
    gc_interval_seconds: float = Field(15.0, gt=0)
    # Kopf's liveness endpoint for the operator, e.g. http://0.0.0.0:8080/healthz (`kopf run --liveness`); empty: none.
    operator_liveness_endpoint: str = ""

    # `executioner up` (one machine): where its private Redis keeps its data (append-only file, password, port)
    # so records and queued executions survive a restart, and that Redis's memory cap (it refuses writes beyond).
    state_dir: str = "~/.local/state/executioner"
    local_redis_maxmemory_mb: int = Field(256, ge=16)

    @field_validator(
        "api_keys",
        "allowed_hosts",
        "cors_origins",
        "cgroup_delegate",
        "runtimes",
        "kubernetes_token_audiences",
        mode="before",
    )
    @classmethod
    def split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("sandbox_seccomp_profile")
    @classmethod
    def relative_profile_path(cls, value: str) -> str:
        if value.startswith("/") or ".." in value.split("/"):
            raise ValueError(
                "EXECUTIONER_SANDBOX_SECCOMP_PROFILE must be a path inside the kubelet's seccomp directory"
            )
        return value

    @field_validator("runtimes")
    @classmethod
    def known_runtimes(cls, value: list[str]) -> list[str]:
        from executioner.runtimes import DEFAULT_RUNTIME, RUNTIMES

        if unknown := [name for name in value if name not in RUNTIMES]:
            raise ValueError(f"EXECUTIONER_RUNTIMES names unknown runtimes {unknown}; known: {sorted(RUNTIMES)}")
        if DEFAULT_RUNTIME not in value:
            raise ValueError(f"EXECUTIONER_RUNTIMES must include the default runtime {DEFAULT_RUNTIME!r}")
        return value

    def runtime_memory_mb(self, runtime: str) -> int:
        """A runtime's memory limit when a request names none: its own default, within the deployment's bounds."""
        from executioner.runtimes import RUNTIMES

        runtime_memory = RUNTIMES[runtime].default_memory_mb or self.default_memory_mb
        return min(self.max_memory_mb, max(self.default_memory_mb, runtime_memory))

    def runtime_image(self, runtime: str) -> str:
        """The sandbox image of a runtime on Kubernetes."""
        return self.sandbox_image if runtime == "python" else self.runtime_images[runtime]

    @model_validator(mode="after")
    def check_limits(self) -> Settings:
        if not self.min_memory_mb <= self.default_memory_mb <= self.max_memory_mb:
            raise ValueError("EXECUTIONER_DEFAULT_MEMORY_MB must lie between the min and max memory")
        if self.default_timeout_seconds > self.max_timeout_seconds:
            raise ValueError("EXECUTIONER_DEFAULT_TIMEOUT_SECONDS exceeds EXECUTIONER_MAX_TIMEOUT_SECONDS")
        # A sandbox's log holds both streams twice (live chunks in base64, the result JSON-escaped: up to 6 bytes
        # a byte): a storage bound below that would evict sandboxes for output the limits allow.
        # The artifacts travel in the same log, base64-encoded in the result (4/3 of their bytes).
        log_bytes = SANDBOX_LOG_BYTES_PER_OUTPUT_BYTE * self.output_limit_bytes + -(-4 * self.max_artifact_bytes // 3)
        if self.backend == "kubernetes" and self.sandbox_ephemeral_storage_mb * 1024 * 1024 < log_bytes:
            raise ValueError(
                "EXECUTIONER_SANDBOX_EPHEMERAL_STORAGE_MB is too small for EXECUTIONER_OUTPUT_LIMIT_BYTES and "
                f"EXECUTIONER_MAX_ARTIFACT_BYTES: a sandbox's log may hold {SANDBOX_LOG_BYTES_PER_OUTPUT_BYTE} times "
                "the output limit plus the artifacts in base64 (4/3 of their bytes)"
            )
        if self.backend == "kubernetes" and self.max_input_file_bytes > SECRET_MAX_BYTES:
            raise ValueError(
                f"EXECUTIONER_MAX_INPUT_FILE_BYTES exceeds {SECRET_MAX_BYTES}: on kubernetes each input file travels in "
                "a Secret, which holds at most 1 MiB"
            )
        if self.backend == "kubernetes" and (
            missing := [name for name in self.runtimes if name != "python" and name not in self.runtime_images]
        ):
            raise ValueError(f"EXECUTIONER_RUNTIME_IMAGES has no sandbox image for the runtimes {missing}")
        if unoffered := sorted(set(self.kubernetes_pool_sizes) - set(self.runtimes)):
            raise ValueError(
                f"EXECUTIONER_KUBERNETES_POOL_SIZES names runtimes this deployment does not offer: {unoffered}"
            )
        return self

    # Deadlines, written once. The runner stops the program at its timeout; these are the worker's backstops.
    def sandbox_deadline(self, limits: Limits) -> float:
        """Seconds a started sandbox may live: the program's timeout plus the grace for the runner's start and
        teardown."""
        return limits.timeout_seconds + self.grace_seconds

    def worker_deadline(self, limits: Limits) -> float:
        """Seconds a worker waits for an execution's result: the sandbox's start-up limit, then its deadline. Also a
        Kubernetes Job's activeDeadlineSeconds, so a start-up the worker allows never eats into the program's time."""
        return self.sandbox_deadline(limits) + self.schedule_timeout_seconds

    @property
    def longest_task_seconds(self) -> float:
        """The longest any execution this deployment allows can keep a worker busy."""
        return self.max_timeout_seconds + self.grace_seconds + self.schedule_timeout_seconds
