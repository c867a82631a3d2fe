"""The sandbox runner: the one program that runs user code, in every backend.

It runs inside the sandbox (a bubblewrap namespace locally, the container of a
Kubernetes Job in production), ideally as PID 1 of its own PID namespace. It
starts the user's program as a child with only pipes for stdout and stderr,
enforces the limits, kills every process of the sandbox at the end, and writes
one JSON envelope line to its own stdout. While the program runs, the runner forwards the output it keeps (within
the cap) as chunk lines on that same stdout, base64 inside JSON, so the worker can stream it live; the chunks are
exactly the bytes the envelope reports. User code never holds a descriptor
to that stdout, cannot ptrace or open /proc/1/fd of a non-dumpable process, and
cannot signal PID 1, so it can neither forge nor suppress the envelope.

Input files are placed in the program's working directory before it starts, and once every process of the sandbox
is dead, the regular files it left under outputs/ there come back in the envelope as artifacts (within caps).

Standard library only: the sandbox image has nothing else.
"""

from __future__ import annotations

# Every execution pays the runner's start-up, so it imports only C modules where it can:
# `signal` and `json` would pull in enum and re and double the import time.
import _signal as signal  # type: ignore[import-not-found]  # typeshed has no stub for the C module
import ctypes
import os
import resource
import select
import sys
import time
import types
from _json import encode_basestring_ascii as json_string
from binascii import b2a_base64
from types import SimpleNamespace

ENVELOPE_VERSION = 1
PR_SET_DUMPABLE = 4
READ_CHUNK = 65536
# Where a memory cgroup reports OOM kills, as seen from inside a container (the local backend reads its cgroup's
# counter itself: no cgroup path is mounted into its sandbox).
OOM_COUNTER_FILES = (
    "/sys/fs/cgroup/memory.events",  # container, cgroup v2
    "/sys/fs/cgroup/memory/memory.oom_control",  # container, cgroup v1
)


# Command-line options and their types. Parsed by hand: argparse alone would
# double the runner's start-up time, which every execution pays.
OPTIONS = {
    "--code": str,  # path of the Python program (required)
    "--stdin": str,  # path of the file fed to the program's stdin
    "--timeout": float,  # wall-clock seconds (required)
    "--memory-mb": int,  # (required)
    "--output-limit": int,  # bytes kept per stream
    "--max-processes": int,  # RLIMIT_NPROC; 0 leaves it to the pids cgroup
    "--max-file-bytes": int,
    "--max-open-files": int,
    "--workdir": str,
    "--files": str,  # path of the input files' manifest: [{"path": in the workdir, "source": a file}, ...]
    "--runtime-path": str,  # the runtime's packages, put on the program's sys.path
    "--max-artifacts": int,  # how many files under <workdir>/outputs/ come back
    "--max-artifact-bytes": int,  # how many bytes they may hold together
}
# Enforce memory with RLIMIT_AS, when no memory cgroup contains the sandbox.
FLAGS = {"--memory-rlimit"}
# A warm (pooled) sandbox's only argument: the runner starts, then waits for its job on stdin (read_job).
JOB_ON_STDIN = "--job-on-stdin"
JOB_LENGTH_BYTES = 8
# Where a warm sandbox's program holds its own source: the sandbox's code path is a symlink to /proc/self/fd/3.
CODE_FD = 3
DEFAULTS = {
    "stdin": None,
    "output_limit": 65536,
    "max_processes": 0,
    "max_file_bytes": 16 * 1024 * 1024,
    "max_open_files": 256,
    "workdir": "/tmp",
    "memory_rlimit": False,
    "files": None,
    "runtime_path": None,
    "max_artifacts": 0,
    "max_artifact_bytes": 0,
}
REQUIRED = ("code", "timeout", "memory_mb")


class Options(SimpleNamespace):
    code: str
    stdin: str | None
    timeout: float
    memory_mb: int
    memory_rlimit: bool
    output_limit: int
    max_processes: int
    max_file_bytes: int
    max_open_files: int
    workdir: str
    files: str | None
    runtime_path: str | None
    max_artifacts: int
    max_artifact_bytes: int


def parse_args(argv: list[str]) -> Options:
    values = dict(DEFAULTS)
    items = iter(argv)
    for item in items:
        name = item.lstrip("-").replace("-", "_")
        if item in FLAGS:
            values[name] = True
        elif item in OPTIONS:
            try:
                values[name] = OPTIONS[item](next(items))
            except (StopIteration, ValueError):
                raise SystemExit(f"runner: {item} needs a valid value") from None
        else:
            raise SystemExit(f"runner: unknown argument {item}")
    missing = [name for name in REQUIRED if name not in values]
    if missing:
        raise SystemExit(f"runner: missing --{missing[0].replace('_', '-')}")
    return Options(**values)


def _set_dumpable(value: int) -> None:
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, value, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def make_undumpable() -> None:
    """Keep same-UID processes out of /proc/<runner>/fd and ptrace, and the runner out of any core dump."""
    _set_dumpable(0)


# With a core_pattern that pipes dumps to a helper (systemd-coredump, apport), the kernel ignores RLIMIT_CORE 0 and
# starts that root helper, outside the sandbox, for every crash; it reserves 1 to mean "no dump" (fs/coredump.c), and
# a file dump needs a page at least, so 1 stops both. The hard limit goes too: the program cannot raise it back.
NO_CORE_DUMPS = (1, 1)


def disable_core_dumps() -> None:
    """RLIMIT_CORE 1 for the runner and all it starts."""
    try:
        resource.setrlimit(resource.RLIMIT_CORE, NO_CORE_DUMPS)
    except (OSError, ValueError) as exc:  # a hard limit of 0 cannot be raised to 1
        raise RuntimeError(f"cannot disable core dumps (RLIMIT_CORE 1): {exc}") from exc


# The program may not lower RLIMIT_CORE to 0 (which a piped core_pattern ignores): a seccomp filter of the runner's
# own, in every backend (a container's profile cannot tell the runner from the program), answers EPERM to
# setrlimit(RLIMIT_CORE, ...) and prlimit64(..., RLIMIT_CORE, new, ...) with a new value; reading it stays allowed.
# Hand-assembled classic BPF (no libseccomp in the sandbox image). Per architecture: its AUDIT_ARCH value, the mask
# that folds its syscall numbers (x32 calls set bit 30 on x86_64), setrlimit's and prlimit64's numbers.
CORE_LIMIT_SYSCALLS = (
    (0xC000003E, 0xBFFFFFFF, 160, 302),  # x86_64 and x32
    (0x40000003, 0xFFFFFFFF, 75, 340),  # i386 (int 0x80 from a 64-bit process)
    (0xC00000B7, 0xFFFFFFFF, 164, 261),  # aarch64
    (0x40000028, 0xFFFFFFFF, 75, 369),  # arm
)
PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2
LD_W_ABS, AND_K, JEQ_K, RET_K = 0x20, 0x54, 0x15, 0x06
SECCOMP_RET_ALLOW, SECCOMP_RET_EPERM = 0x7FFF0000, 0x00050000 | 1
# struct seccomp_data offsets: nr, arch, then the 64-bit args (low word first on these little-endian machines)
NR, ARCH, ARG0_LO, ARG1_LO, ARG2_LO, ARG2_HI = 0, 4, 16, 24, 32, 36
RLIMIT_CORE_NUMBER = 4


def core_limit_filter() -> list[tuple[int, int, int, int]]:
    """The program as (code, jt, jf, k): one 16-instruction block per architecture, each jump within its block."""
    program = []
    for arch, mask, setrlimit, prlimit64 in CORE_LIMIT_SYSCALLS:
        program += [
            (LD_W_ABS, 0, 0, ARCH),
            (JEQ_K, 0, 14, arch),  # another architecture: the next block
            (LD_W_ABS, 0, 0, NR),
            (AND_K, 0, 0, mask),
            (JEQ_K, 0, 2, setrlimit),
            (LD_W_ABS, 0, 0, ARG0_LO),  # setrlimit(resource, ...)
            (JEQ_K, 7, 8, RLIMIT_CORE_NUMBER),  # -> deny / allow
            (JEQ_K, 0, 7, prlimit64),
            (LD_W_ABS, 0, 0, ARG1_LO),  # prlimit64(pid, resource, new, old)
            (JEQ_K, 0, 5, RLIMIT_CORE_NUMBER),
            (LD_W_ABS, 0, 0, ARG2_LO),
            (JEQ_K, 0, 2, 0),  # new == NULL (both words) is a read: allowed
            (LD_W_ABS, 0, 0, ARG2_HI),
            (JEQ_K, 1, 0, 0),
            (RET_K, 0, 0, SECCOMP_RET_EPERM),
            (RET_K, 0, 0, SECCOMP_RET_ALLOW),
        ]
    return [*program, (RET_K, 0, 0, SECCOMP_RET_ALLOW)]


def lock_core_limit() -> None:
    """Install the filter in this process (the forked program); failing that, the program does not start."""

    class SockFilter(ctypes.Structure):
        _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint)]

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(SockFilter))]

    instructions = core_limit_filter()
    program = (SockFilter * len(instructions))(*(SockFilter(*instruction) for instruction in instructions))
    fprog = SockFprog(len(instructions), program)
    libc = ctypes.CDLL(None, use_errno=True)
    if (
        libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
        or libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0
    ):
        raise OSError(ctypes.get_errno(), f"cannot lock RLIMIT_CORE: {os.strerror(ctypes.get_errno())}")


def read_oom_kills() -> int | None:
    for path in OOM_COUNTER_FILES:
        try:
            with open(path) as f:
                for line in f:
                    key, _, value = line.partition(" ")
                    if key == "oom_kill":
                        return int(value)
        except (OSError, ValueError):
            continue
    return None


def write_line(line: str) -> None:
    """One whole line on the runner's stdout (the worker reads it), however many writes that takes."""
    view = memoryview(line.encode())
    while view:
        view = view[os.write(1, view) :]


def forward_chunk(name: str, data: bytes) -> None:
    """A live-output chunk line: `{"stream": NAME, "bytes": BASE64}` (see runner_protocol.RunnerLines)."""
    write_line(f'{{"stream":"{name}","bytes":"{b2a_base64(data, newline=False).decode()}"}}\n')


def forward_truncation(name: str) -> None:
    write_line(f'{{"stream":"{name}","truncated":true}}\n')


class Stream:
    """Keeps the first `limit` bytes of a pipe and counts the rest; forwards what it keeps as it arrives."""

    def __init__(self, fd: int, limit: int, name: str = ""):
        self.fd = fd
        self.limit = limit
        self.name = name  # "stdout" or "stderr": forwarded live under this name; "" forwards nothing
        self.data = bytearray()
        self.truncated = False

    def read(self) -> bool:
        try:
            chunk = os.read(self.fd, READ_CHUNK)
        except BlockingIOError:
            return True
        if not chunk:
            return False
        room = self.limit - len(self.data)
        if room > 0:
            self.data += chunk[:room]
            if self.name:
                forward_chunk(self.name, chunk[:room])
        if len(chunk) > room and not self.truncated:
            self.truncated = True
            if self.name:
                forward_truncation(self.name)
        return True

    def text(self) -> str:
        return bytes(self.data).decode("utf-8", errors="replace")


def child_setup(args: Options) -> None:
    """Runs in the forked child: limits that only the user program gets."""
    # The dispositions a fresh interpreter starts with.
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    cpu = int(args.timeout) + 2
    limits = [
        (resource.RLIMIT_CPU, cpu),
        (resource.RLIMIT_FSIZE, args.max_file_bytes),
        (resource.RLIMIT_NOFILE, args.max_open_files),
    ]
    if args.max_processes > 0:
        limits.append((resource.RLIMIT_NPROC, args.max_processes))
    if args.memory_rlimit:
        limits.append((resource.RLIMIT_AS, args.memory_mb * 1024 * 1024))
    for which, value in limits:
        resource.setrlimit(which, (value, value))
    lock_core_limit()
    try:  # the user program, never the runner, is what the OOM killer should pick
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write("1000")
    except OSError:
        pass


def read_job(fd: int) -> dict:
    """A warm sandbox's job: an 8-byte big-endian length, then that many bytes of JSON
    {"args": [runner options], "code": str, "stdin": str, "files": [{"path", "content_base64"}]}. Blocks until the
    worker sends it."""
    import fcntl  # noqa: F401 - for memory_file, imported while the sandbox waits
    import json

    def exactly(count: int) -> bytes:
        data = bytearray()
        while len(data) < count:
            piece = os.read(fd, min(count - len(data), 1 << 20))
            if not piece:
                raise SystemExit("runner: the job ended early")
            data += piece
        return bytes(data)

    job = json.loads(exactly(int.from_bytes(exactly(JOB_LENGTH_BYTES), "big")))
    os.close(fd)
    os.open(os.devnull, os.O_RDONLY)  # takes the lowest free descriptor: fd 0 again
    return job


def memory_file(name: str, content: bytes) -> int:
    """A sealed in-memory file holding `content`, positioned at its start: a warm sandbox's code and stdin."""
    import fcntl

    fd = os.memfd_create(name, os.MFD_ALLOW_SEALING)
    view = memoryview(content)
    while view:
        view = view[os.write(fd, view) :]
    os.lseek(fd, 0, os.SEEK_SET)
    fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE)
    return fd


def become_program(path: str, env: dict[str, str], runtime_path: str | None = None) -> None:
    """Run the program in this forked child as `python3 -I -u PATH` would, without starting a second
    interpreter (that would double every execution's start-up cost): a fresh __main__, site loaded,
    unbuffered stdio, and tracebacks and exit statuses exactly as Python reports them. Never returns."""
    import builtins
    import io
    import site

    os.environ.clear()
    os.environ.update(env)
    _set_dumpable(1)  # the program's own /proc/self behaves normally; the runner stays undumpable
    sys.stdin = io.TextIOWrapper(io.BufferedReader(io.FileIO(0, "r", closefd=False)), encoding="utf-8")
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8", write_through=True)
    sys.stderr = io.TextIOWrapper(
        io.FileIO(2, "w", closefd=False), encoding="utf-8", errors="backslashreplace", write_through=True
    )
    sys.__stdin__, sys.__stdout__, sys.__stderr__ = sys.stdin, sys.stdout, sys.stderr  # type: ignore[misc]  # as a fresh interpreter has them
    sys.argv = [path]
    site.main()
    if runtime_path:
        add_runtime_path(runtime_path)
    main = types.ModuleType("__main__")
    main.__dict__.update({"__file__": path, "__builtins__": builtins, "__cached__": None})
    sys.modules["__main__"] = main
    status = 0
    try:
        with open(path, "rb") as source:
            text = source.read()
    except OSError as exc:
        print(f"python3: can't open file {path!r}: [Errno {exc.errno}] {exc.strerror}", file=sys.stderr)
        os._exit(2)
    try:
        exec(compile(text, path, "exec"), main.__dict__)
    except SystemExit as exc:
        status = _exit_status(exc)
    except BaseException as exc:  # noqa: BLE001 - report it the way the interpreter would
        exc = exc.with_traceback(exc.__traceback__.tb_next if exc.__traceback__ else None)  # hide this frame
        sys.excepthook(type(exc), exc, exc.__traceback__)
        status = 1
    status = _finalize(status)
    os._exit(status)


def _exit_status(exc: SystemExit) -> int:
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code & 0xFF
    print(exc.code, file=sys.stderr)
    return 1


def _finalize(status: int) -> int:
    """What interpreter shutdown does: join non-daemon threads, then run atexit handlers."""
    try:
        if "threading" in sys.modules:
            sys.modules["threading"]._shutdown()
        import atexit

        atexit._run_exitfuncs()
    except SystemExit as exc:
        status = _exit_status(exc)
    except BaseException as exc:  # noqa: BLE001
        sys.excepthook(type(exc), exc, exc.__traceback__)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    return status


def kill_everything(child_pid: int) -> None:
    if os.getpid() == 1:
        # PID 1 of a namespace: kill(-1) reaches every other process in it,
        # including daemons that left the child's session.
        try:
            os.kill(-1, signal.SIGKILL)
        except ProcessLookupError:
            pass
    else:
        try:
            os.killpg(child_pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def end_everything(child_pid: int) -> None:
    """Kill every process of the sandbox and wait until each is gone (as PID 1, every process in the namespace is
    the runner's child once its parent dies): nothing can write in the working directory after this returns."""
    while True:
        kill_everything(child_pid)
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return


# Input files and artifacts. Paths are re-checked here, whatever the backend checked before (defence in depth), and
# every step opens relative to a directory descriptor without following links.
OUTPUTS_DIR = "outputs"
MAX_PATH_BYTES = 255
MAX_PATH_DEPTH = 8
DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# Where a runtime with packages keeps matplotlib's writable configuration and caches, in the working directory;
# what its packages directory holds ready for it (the font list, built when the runtime was prepared) is copied there.
MPLCONFIG_DIR = ".matplotlib"
PREPARED_MPLCONFIG_DIR = ".mplconfig"


class InputFileError(Exception):
    """An input file that cannot be placed: the execution ends `error` before the program starts."""


def input_path_parts(path: object) -> list[str]:
    """The parts of an input file's path: relative, normalised, under neither outputs/ nor anything odd."""
    if not isinstance(path, str) or not path or "\\" in path or "\0" in path or len(path.encode()) > MAX_PATH_BYTES:
        raise InputFileError(f"the input file path {path!r} is not a valid relative path")
    parts = path.split("/")
    if path.startswith("/") or any(part in ("", ".", "..") for part in parts) or len(parts) > MAX_PATH_DEPTH:
        raise InputFileError(f"the input file path {path!r} is not relative and normalised (no /, .. or . parts)")
    if parts[0] == OUTPUTS_DIR:
        raise InputFileError(f"the input file path {path!r} is under {OUTPUTS_DIR}/, where the artifacts go")
    return parts


def place_file(workdir_fd: int, path: str, content: bytes) -> None:
    """Write `content` at `path` under the working directory, creating its parent directories; never through a
    link, never over an existing file."""
    *parents, name = input_path_parts(path)
    fd = os.dup(workdir_fd)
    try:
        for part in parents:
            try:
                os.mkdir(part, 0o755, dir_fd=fd)
            except FileExistsError:
                pass
            parent = os.open(part, DIRECTORY_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = parent
        out = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644, dir_fd=fd)
        try:
            view = memoryview(content)
            while view:
                view = view[os.write(out, view) :]
        finally:
            os.close(out)
    except OSError as exc:
        raise InputFileError(f"cannot place the input file {path!r}: {exc.strerror}") from None
    finally:
        os.close(fd)


def read_manifest(manifest: str) -> list[tuple[str, bytes]]:
    """The input files a cold sandbox was given: the manifest names each one's path and where its bytes are."""
    import json

    with open(manifest, "rb") as f:
        entries = json.load(f)
    files = []
    for entry in entries:
        with open(entry["source"], "rb") as f:
            files.append((entry["path"], f.read()))
    return files


def inline_files(entries: list[dict]) -> list[tuple[str, bytes]]:
    """The input files a warm sandbox's job carries: [{"path", "content_base64"}]."""
    from binascii import a2b_base64

    return [(entry["path"], a2b_base64(entry["content_base64"], strict_mode=True)) for entry in entries]


def prepare_workdir(workdir: str, files: list[tuple[str, bytes]]) -> None:
    """Place the input files and create outputs/, before the program exists."""
    workdir_fd = os.open(workdir, DIRECTORY_FLAGS)
    try:
        for path, content in files:
            place_file(workdir_fd, path, content)
        os.mkdir(OUTPUTS_DIR, 0o755, dir_fd=workdir_fd)
    finally:
        os.close(workdir_fd)


def copy_prepared_config(runtime_path: str, workdir: str) -> None:
    """Give matplotlib the caches prepared with the runtime (rebuilding its font list costs every plot a few hundred
    milliseconds, and asks fontconfig, which has no configuration in the sandbox)."""
    source = f"{runtime_path}/{PREPARED_MPLCONFIG_DIR}"
    if not os.path.isdir(source):
        return
    target = f"{workdir}/{MPLCONFIG_DIR}"
    try:
        os.makedirs(target, 0o755, exist_ok=True)  # the program's own input files may be there already
        for name in os.listdir(source):
            with open(f"{source}/{name}", "rb") as f:
                content = f.read()
            try:
                with open(f"{target}/{name}", "xb") as f:
                    f.write(content)
            except FileExistsError:
                pass  # an input file of that name wins
    except OSError:
        pass  # matplotlib builds its own, a little slower


def add_runtime_path(path: str) -> None:
    """Put a runtime's packages on sys.path (its .pth files processed) ahead of the interpreter's own site
    directories, so its pinned versions win."""
    import site

    before = len(sys.path)
    site.addsitedir(path)
    added = sys.path[before:]
    del sys.path[before:]
    at = next((i for i, entry in enumerate(sys.path) if entry.endswith(("site-packages", "dist-packages"))), before)
    sys.path[at:at] = added


def artifact_name_ok(name: str) -> bool:
    """Whether a name under outputs/ can be an artifact's path part: printable UTF-8, no backslash."""
    import unicodedata

    # undecodable bytes come out of os.scandir as lone surrogates (category Cs)
    return "\\" not in name and not any(unicodedata.category(ch)[0] == "C" for ch in name)


def walk_outputs(dir_fd: int, prefix: str, depth: int, left_out: list[str]):
    """(directory descriptor, name, path) of each regular file under a directory, sorted by path; what cannot be an
    artifact's path goes to `left_out`. Never follows a link."""
    entries = []
    with os.scandir(dir_fd) as listing:
        for entry in listing:
            is_dir = entry.is_dir(follow_symlinks=False)
            if is_dir or entry.is_file(follow_symlinks=False):  # links, FIFOs, devices and sockets never are
                # A directory sorts as "name/": the walk then yields paths in the order their strings sort.
                entries.append((entry.name + "/" if is_dir else entry.name, is_dir))
    entries.sort()
    for key, is_dir in entries:
        name = key[:-1] if is_dir else key
        path = prefix + name
        if (
            not artifact_name_ok(name)
            or len(path.encode()) > MAX_PATH_BYTES
            or (is_dir and depth + 1 >= MAX_PATH_DEPTH)
        ):
            left_out.append(path)
        elif is_dir:
            try:
                child = os.open(name, DIRECTORY_FLAGS, dir_fd=dir_fd)
            except OSError:
                continue
            try:
                yield from walk_outputs(child, path + "/", depth + 1, left_out)
            finally:
                os.close(child)
        else:
            yield dir_fd, name, path


def read_regular_file(dir_fd: int, name: str, room: int) -> bytes | None:
    """A regular file's bytes if it holds at most `room`; None otherwise (or when it is not a regular file)."""
    import stat

    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > room:
            return None
        content = bytearray()
        while len(content) <= room and (piece := os.read(fd, min(room + 1 - len(content), 1 << 20))):
            content += piece
        return bytes(content) if len(content) <= room else None
    except OSError:
        return None
    finally:
        os.close(fd)


def collect_artifacts(workdir: str, max_count: int, max_bytes: int) -> tuple[list[dict], bool]:
    """The regular files under <workdir>/outputs/, sorted by path, within both caps; and whether anything was left
    out. Called once every process of the sandbox is dead. Links are never followed; FIFOs, devices and sockets are
    skipped (a FIFO is never opened, so it cannot hang the runner)."""
    try:
        outputs_fd = os.open(f"{workdir}/{OUTPUTS_DIR}", DIRECTORY_FLAGS)
    except OSError:
        return [], False  # the program removed outputs/ (or put a link in its place): nothing to collect
    artifacts: list[dict] = []
    left_out: list[str] = []
    total = 0
    try:
        for dir_fd, name, path in walk_outputs(outputs_fd, "", 0, left_out):
            if len(artifacts) >= max_count:
                return artifacts, True
            content = read_regular_file(dir_fd, name, max_bytes - total)
            if content is None:
                left_out.append(path)
                continue
            total += len(content)
            artifacts.append({"path": path, "content_base64": b2a_base64(content, newline=False).decode()})
    except OSError:
        left_out.append("")
    finally:
        os.close(outputs_fd)
    return artifacts, bool(left_out)


def run(
    args: Options,
    source: bytes | None = None,
    stdin_data: bytes | None = None,
    files: list[tuple[str, bytes]] | None = None,
) -> dict:
    """Run the program at args.code with stdin from args.stdin; in a warm sandbox, `source` and `stdin_data`
    instead: the program holds its source at CODE_FD, where the sandbox's CODE_PATH symlink points. `files` (path,
    bytes) are placed in the working directory first; what the program leaves in its outputs/ comes back."""
    code_fd = memory_file("main.py", source) if source is not None else None
    if stdin_data is not None:
        stdin_fd = memory_file("stdin", stdin_data)
    else:
        stdin_fd = os.open(args.stdin, os.O_RDONLY) if args.stdin else os.open(os.devnull, os.O_RDONLY)
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    oom_before = read_oom_kills()
    has_workdir = os.path.isdir(args.workdir)
    workdir = args.workdir if has_workdir else "/"
    if has_workdir or files:
        prepare_workdir(workdir, files or [])
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": workdir, "LANG": "C.UTF-8"}
    if args.runtime_path:
        # Plots render to files (no display in a sandbox); matplotlib's caches go where the program may write.
        env.update(MPLBACKEND="Agg", MPLCONFIGDIR=f"{workdir}/{MPLCONFIG_DIR}")
        # numpy's OpenBLAS would start a thread per host core at import: more than a sandbox's pids limit on a
        # large host, and more than its CPU share everywhere.
        env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
        if has_workdir:
            copy_prepared_config(args.runtime_path, workdir)

    program = os.path.abspath(args.code)
    started = time.monotonic()
    started_at = time.time()  # wall clock: the worker compares it with when it asked for the sandbox
    pid = os.fork()
    if pid == 0:  # child
        try:
            os.setsid()
            os.dup2(stdin_fd, 0)
            os.dup2(out_w, 1)
            os.dup2(err_w, 2)
            if code_fd is not None:
                os.dup2(code_fd, CODE_FD)
            os.closerange(3 if code_fd is None else CODE_FD + 1, 65536)
            os.chdir(workdir)
            child_setup(args)
            become_program(program, env, args.runtime_path)
        except BaseException as exc:  # noqa: BLE001 - report and die, never return into the runner
            os.write(2, f"sandbox runner: cannot start the program: {exc}\n".encode())
        os._exit(127)

    os.close(stdin_fd)
    if code_fd is not None:
        os.close(code_fd)
    os.close(out_w)
    os.close(err_w)
    streams = {out_r: Stream(out_r, args.output_limit, "stdout"), err_r: Stream(err_r, args.output_limit, "stderr")}
    poller = select.epoll()
    for fd in streams:
        os.set_blocking(fd, False)
        poller.register(fd, select.EPOLLIN)
    pidfd = os.pidfd_open(pid)
    poller.register(pidfd, select.EPOLLIN)

    deadline = started + args.timeout
    wait_status: int | None = None
    timed_out = False
    open_pipes = set(streams)
    drain_deadline: float | None = None
    while open_pipes or wait_status is None:
        now = time.monotonic()
        # Once the program has ended (wait_status set), the drain deadline is set too.
        limit = drain_deadline if drain_deadline is not None else deadline
        if now >= limit:
            if wait_status is None:
                timed_out = True
                kill_everything(pid)
                poller.unregister(pidfd)
                _, wait_status = os.waitpid(pid, 0)
                drain_deadline = time.monotonic() + 1.0
                continue
            break  # pipes still open after everything was killed: give up on them
        for fd, _ in poller.poll(min(limit - now, 1.0)):
            if fd == pidfd:
                poller.unregister(pidfd)
                _, wait_status = os.waitpid(pid, 0)
                # The program is done: nothing it started may outlive it.
                kill_everything(pid)
                drain_deadline = time.monotonic() + 1.0
            elif not streams[fd].read():
                poller.unregister(fd)
                open_pipes.discard(fd)
    duration_ms = int((time.monotonic() - started) * 1000)
    end_everything(pid)
    artifacts, artifacts_truncated = (
        collect_artifacts(workdir, args.max_artifacts, args.max_artifact_bytes) if has_workdir else ([], False)
    )

    out, err = streams[out_r], streams[err_r]
    exit_code, signal_name = _decode_wait_status(wait_status)
    oom_after = read_oom_kills()
    oom_killed = oom_before is not None and oom_after is not None and oom_after > oom_before
    if timed_out:
        status, error = "timed_out", f"the program ran longer than {args.timeout:g} s and was killed"
    elif oom_killed or (args.memory_rlimit and exit_code != 0 and _ends_with_memory_error(bytes(err.data[-512:]))):
        status, error = "memory_exceeded", f"the program used more than {args.memory_mb} MiB of memory"
    elif exit_code == 0:
        status, error = "succeeded", None
    else:
        status = "failed"
        error = f"the program was killed by {signal_name}" if signal_name else None
    return {
        "v": ENVELOPE_VERSION,
        "status": status,
        "exit_code": exit_code,
        "signal": signal_name,
        "stdout": out.text(),
        "stderr": err.text(),
        "stdout_truncated": out.truncated,
        "stderr_truncated": err.truncated,
        "duration_ms": duration_ms,
        "program_started_at": started_at,
        "error": error,
        "artifacts": artifacts,
        "artifacts_truncated": artifacts_truncated,
    }


def _ends_with_memory_error(stderr_tail: bytes) -> bool:
    """Python's last word when an allocation fails under RLIMIT_AS."""
    lines = stderr_tail.rstrip(b"\n").split(b"\n")
    return lines[-1].startswith(b"MemoryError")


SIGNAL_NAMES = {
    getattr(signal, name): name
    for name in dir(signal)
    if name.startswith("SIG") and not name.startswith(("SIG_", "SIGRT")) and name not in ("SIGIOT", "SIGCLD", "SIGPOLL")
}


def to_json(value: object) -> str:
    """JSON for the envelope's simple values (the json module costs more to import than the rest)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json_string(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{json_string(key)}:{to_json(item)}" for key, item in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(to_json(item) for item in value) + "]"
    raise TypeError(f"cannot encode {type(value).__name__}")


def _decode_wait_status(wait_status: int | None) -> tuple[int | None, str | None]:
    if wait_status is None:
        return None, None
    if os.WIFSIGNALED(wait_status):
        sig = os.WTERMSIG(wait_status)
        return 128 + sig, SIGNAL_NAMES.get(sig, f"signal {sig}")
    return os.WEXITSTATUS(wait_status), None


def main(argv: list[str] | None = None) -> int:
    make_undumpable()
    # Signals the program might send its parent: as PID 1 unhandled signals are
    # dropped anyway; elsewhere, ignoring them keeps the envelope coming.
    for sig in (
        signal.SIGINT,
        signal.SIGTERM,
        signal.SIGHUP,
        signal.SIGPIPE,
        signal.SIGQUIT,
        signal.SIGUSR1,
        signal.SIGUSR2,
    ):
        signal.signal(sig, signal.SIG_IGN)
    argv = sys.argv[1:] if argv is None else argv
    source = stdin_data = None
    try:
        disable_core_dumps()  # before the program exists; failing that, no program runs
        if argv == [JOB_ON_STDIN]:  # a warm sandbox: everything above is paid for before the job comes
            job = read_job(0)
            args = parse_args(job["args"])
            source, stdin_data = job["code"].encode(), job["stdin"].encode()
            files = inline_files(job.get("files", []))
        else:
            args = parse_args(argv)
            files = read_manifest(args.files) if args.files else []
        envelope = run(args, source, stdin_data, files)
    except InputFileError as exc:
        envelope = {"v": ENVELOPE_VERSION, "status": "error", "error": str(exc)}
    except Exception as exc:  # noqa: BLE001 - the envelope must say what broke
        envelope = {"v": ENVELOPE_VERSION, "status": "error", "error": f"sandbox runner failed: {exc!r}"}
    write_line(to_json(envelope) + "\n")
    return 0


if __name__ == "__main__":
    # The envelope is written (unbuffered): skip the interpreter's teardown, which every execution would wait on.
    os._exit(main())
