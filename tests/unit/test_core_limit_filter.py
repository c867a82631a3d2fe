"""The runner's own seccomp filter, run through a small classic-BPF interpreter for every architecture it covers
(the sandboxes here run only x86_64: tests/security/test_local_sandbox.py tries it for real there)."""

from __future__ import annotations

import struct

import pytest

from executioner.sandbox import runner

ALLOW, EPERM = runner.SECCOMP_RET_ALLOW, runner.SECCOMP_RET_EPERM
POINTER = 0x7FFE_1234_5678


def run_filter(arch: int, nr: int, *args: int) -> int:
    data = struct.pack("<iI Q 6Q", nr, arch, 0, *(list(args) + [0] * (6 - len(args))))
    accumulator, pc, program = 0, 0, runner.core_limit_filter()
    while True:
        code, jt, jf, k = program[pc]
        if code == runner.LD_W_ABS:
            accumulator = struct.unpack_from("<I", data, k)[0]
        elif code == runner.AND_K:
            accumulator &= k
        elif code == runner.JEQ_K:
            pc += jt if accumulator == k else jf
        elif code == runner.RET_K:
            return k
        else:
            raise AssertionError(f"unexpected instruction {code:#x}")
        pc += 1


@pytest.mark.parametrize(("arch", "mask", "setrlimit", "prlimit64"), runner.CORE_LIMIT_SYSCALLS)
def test_changing_the_core_limit_is_refused_on_every_architecture(arch, mask, setrlimit, prlimit64):
    core, nofile = runner.RLIMIT_CORE_NUMBER, 7
    assert run_filter(arch, setrlimit, core, POINTER) == EPERM
    assert run_filter(arch, prlimit64, 0, core, POINTER, 0) == EPERM
    assert run_filter(arch, prlimit64, 0, core, 1 << 40, 0) == EPERM  # a pointer whose low word is 0
    # reading the limit, and every other limit, stay allowed; so does every other syscall
    assert run_filter(arch, prlimit64, 0, core, 0, POINTER) == ALLOW
    assert run_filter(arch, setrlimit, nofile, POINTER) == ALLOW
    assert run_filter(arch, prlimit64, 0, nofile, POINTER, 0) == ALLOW
    assert run_filter(arch, 0, core, POINTER) == ALLOW
    assert run_filter(arch, 1, core, POINTER, 0) == ALLOW


def test_x32_numbers_are_the_same_calls():
    x86_64 = runner.CORE_LIMIT_SYSCALLS[0][0]
    assert run_filter(x86_64, 0x40000000 | 302, 0, runner.RLIMIT_CORE_NUMBER, POINTER, 0) == EPERM
    assert run_filter(x86_64, 0x40000000 | 160, runner.RLIMIT_CORE_NUMBER, POINTER) == EPERM


def test_an_unknown_architecture_is_left_to_the_other_filters():
    assert run_filter(0xDEADBEEF, 160, runner.RLIMIT_CORE_NUMBER, POINTER) == ALLOW
