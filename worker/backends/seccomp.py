"""The local sandbox's syscall filter, handed to bubblewrap with `--seccomp FD`.

A deny-list in the style of Docker's and containerd's default profiles: the calls an unprivileged sandbox has no
use for and whose kernel code has the worst record (io_uring, bpf, keyrings, userfaultfd, perf events, the mount
API, namespaces, ptrace...) answer EPERM before the kernel runs any of their code; everything else is allowed.
bubblewrap loads it after its own setup (namespaces, mounts), just before it starts the runner, so bubblewrap's own
use of `mount`, `pivot_root` and `unshare` is unaffected. Syscalls of other ABIs (32-bit `int 0x80`, x32) kill the
process: libseccomp's default for a foreign architecture, so none of these calls can be reached by another number.

Built with libseccomp (through pyseccomp, ctypes over the system's libseccomp.so.2) once per process.
"""

from __future__ import annotations

import errno
import functools
import os

# Grouped as Docker's default profile groups them (by name: libseccomp maps each to this architecture's number).
DENIED_SYSCALLS = (
    # io_uring: submits syscalls' work from kernel threads, past any filter; the surface with the worst record
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    # eBPF programs, perf events, userfaultfd (holds the kernel mid-copy: a race-exploit helper)
    "bpf",
    "perf_event_open",
    "userfaultfd",
    # kernel keyrings
    "keyctl",
    "add_key",
    "request_key",
    # the mount family, old and new API
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "move_mount",
    "open_tree",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "mount_setattr",
    # namespaces: no new ones and no entering others' (clone's namespace flags below)
    "unshare",
    "setns",
    # other processes' memory and descriptors
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "kcmp",
    "pidfd_getfd",
    # file handles by number (the "shocker" container escape)
    "open_by_handle_at",
    "name_to_handle_at",
    # the kernel itself: modules, kexec, reboot, swap, clocks, accounting, quotas, logs, I/O ports
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "reboot",
    "swapon",
    "swapoff",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    "acct",
    "quotactl",
    "quotactl_fd",
    "syslog",
    "ioperm",
    "iopl",
    "vhangup",
    "lookup_dcookie",
    "fanotify_init",
    "nfsservctl",
    "uselib",
    "ustat",
    "sysfs",
    "_sysctl",
    "create_module",
    "get_kernel_syms",
    "query_module",
    # NUMA placement of memory (Docker allows these only with CAP_SYS_NICE)
    "mbind",
    "set_mempolicy",
    "migrate_pages",
    "move_pages",
)
# Newer than the libseccomp of Debian 12 (2.5.4): by number, the same on every architecture since Linux 5.1.
DENIED_SYSCALL_NUMBERS = {"open_tree_attr": 467}
# clone3 passes its flags in memory, where no filter can read them: answer ENOSYS, as Docker does, so the C library
# falls back to clone (threads and processes start as usual) and clone's flags are checked below.
ENOSYS_SYSCALLS = ("clone3",)
# clone() with any of these makes new namespaces.
CLONE_NAMESPACE_FLAGS = {
    "CLONE_NEWNS": 0x00020000,
    "CLONE_NEWCGROUP": 0x02000000,
    "CLONE_NEWUTS": 0x04000000,
    "CLONE_NEWIPC": 0x08000000,
    "CLONE_NEWUSER": 0x10000000,
    "CLONE_NEWPID": 0x20000000,
    "CLONE_NEWNET": 0x40000000,
    "CLONE_NEWTIME": 0x00000080,
}
# personality() flags that weaken the process's own protections (no ASLR, executable data). Asking for the current
# persona (0xffffffff) sets every bit, so it stays allowed.
PERSONALITY_WEAKENING_FLAGS = {"ADDR_NO_RANDOMIZE": 0x0040000, "READ_IMPLIES_EXEC": 0x0400000}
PERSONALITY_QUERY_BIT = 0x80000000
# RLIMIT_CORE is locked by the runner's own filter (sandbox-image/runner.py), in every backend.


class SeccompUnavailable(RuntimeError):
    """The filter cannot be built here: the local backend refuses to run code without it."""


def add_rules(syscall_filter, seccomp) -> None:
    """The profile, as libseccomp rules on a filter whose default action is to allow."""
    deny = seccomp.ERRNO(errno.EPERM)
    for name in DENIED_SYSCALLS:
        syscall_filter.add_rule(deny, name)
    for number in DENIED_SYSCALL_NUMBERS.values():
        syscall_filter.add_rule(deny, number)
    for name in ENOSYS_SYSCALLS:
        syscall_filter.add_rule(seccomp.ERRNO(errno.ENOSYS), name)
    for flag in CLONE_NAMESPACE_FLAGS.values():
        syscall_filter.add_rule(deny, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, flag, flag))
    for flag in PERSONALITY_WEAKENING_FLAGS.values():
        # no real persona sets bit 31, the query sets every bit: this mask tells them apart in one comparison
        syscall_filter.add_rule(
            deny, "personality", seccomp.Arg(0, seccomp.MASKED_EQ, flag | PERSONALITY_QUERY_BIT, flag)
        )


@functools.lru_cache(maxsize=1)
def filter_program() -> bytes:
    """The compiled BPF program for this machine's architecture; SeccompUnavailable when it cannot be built."""
    try:
        import pyseccomp as seccomp
    except ImportError as exc:
        raise SeccompUnavailable(f"the pyseccomp package is not installed ({exc}); run `make venv`") from exc
    except (RuntimeError, OSError) as exc:  # pyseccomp raises RuntimeError without libseccomp.so.2
        raise SeccompUnavailable(
            f"cannot load libseccomp ({exc}); install it (Debian/Ubuntu: apt-get install libseccomp2)"
        ) from exc
    try:
        syscall_filter = seccomp.SyscallFilter(seccomp.ALLOW)
        add_rules(syscall_filter, seccomp)
        with open(os.memfd_create("executioner-seccomp"), "w+b") as exported:
            syscall_filter.export_bpf(exported)
            exported.seek(0)
            program = exported.read()
    except OSError as exc:
        raise SeccompUnavailable(f"libseccomp cannot build the sandbox's syscall filter: {exc}") from exc
    if not program or len(program) % 8:
        raise SeccompUnavailable("libseccomp produced no usable syscall filter")
    return program


def filter_fd() -> int:
    """A new descriptor holding the program, for one bubblewrap to read (`--seccomp FD` reads it to its end)."""
    fd = os.memfd_create("executioner-seccomp", os.MFD_CLOEXEC)  # Popen's pass_fds hands it to bubblewrap only
    os.write(fd, filter_program())
    os.lseek(fd, 0, os.SEEK_SET)
    return fd
