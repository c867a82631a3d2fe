"""The runner's input files and artifacts, on a scratch directory (the sandboxed cases are in tests/runtimes)."""

from __future__ import annotations

import base64
import os

import pytest

from executioner.sandbox import runner


def collected(workdir, max_count=8, max_bytes=1024) -> tuple[dict[str, bytes], bool]:
    artifacts, truncated = runner.collect_artifacts(str(workdir), max_count, max_bytes)
    return {a["path"]: base64.b64decode(a["content_base64"]) for a in artifacts}, truncated


@pytest.fixture
def outputs(tmp_path):
    runner.prepare_workdir(str(tmp_path), [])
    return tmp_path / "outputs"


def test_input_files_are_placed_and_outputs_created(tmp_path):
    runner.prepare_workdir(str(tmp_path), [("data.csv", b"a,b\n"), ("in/deep/x.bin", b"\0\1")])
    assert (tmp_path / "data.csv").read_bytes() == b"a,b\n"
    assert (tmp_path / "in/deep/x.bin").read_bytes() == b"\0\1"
    assert (tmp_path / "outputs").is_dir()


@pytest.mark.parametrize(
    "path", ["../escape", "/etc/passwd", "a/../../b", "./a", "a//b", "", "outputs/seeded", "a\\b", "a\0b"]
)
def test_the_runner_refuses_paths_outside_the_working_directory(tmp_path, path):
    workdir = tmp_path / "work"
    workdir.mkdir()
    with pytest.raises(runner.InputFileError, match="input file path"):
        runner.prepare_workdir(str(workdir), [(path, b"x")])
    assert os.listdir(tmp_path) == ["work"]
    assert os.listdir(workdir) == []


def test_input_files_never_go_through_a_link(tmp_path):
    target = tmp_path / "target"
    target.mkdir()
    workdir = tmp_path / "work"
    workdir.mkdir()
    (workdir / "in").symlink_to(target)
    (workdir / "file").symlink_to(target / "file")
    for path in ("in/x", "file"):
        with pytest.raises(runner.InputFileError, match="cannot place"):
            runner.prepare_workdir(str(workdir), [(path, b"x")])
    assert list(target.iterdir()) == []


def test_two_files_at_one_path_are_refused(tmp_path):
    with pytest.raises(runner.InputFileError, match="cannot place the input file 'a'"):
        runner.prepare_workdir(str(tmp_path), [("a", b"1"), ("a", b"2")])


def test_artifacts_are_the_regular_files_sorted_by_path(outputs):
    (outputs / "sub").mkdir()
    (outputs / "sub/a.txt").write_bytes(b"nested")
    (outputs / "b.txt").write_bytes(b"bbb")
    (outputs / "sub-file.txt").write_bytes(b"dash")  # "sub-" sorts before "sub/"
    artifacts, truncated = runner.collect_artifacts(str(outputs.parent), 8, 1024)
    assert [a["path"] for a in artifacts] == ["b.txt", "sub-file.txt", "sub/a.txt"]
    assert base64.b64decode(artifacts[2]["content_base64"]) == b"nested"
    assert truncated is False


def test_links_fifos_and_sockets_are_never_artifacts(outputs, tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("not yours")
    (outputs / "passwd").symlink_to("/etc/passwd")
    (outputs / "secret").symlink_to(secret)
    (outputs / "linked-dir").symlink_to(tmp_path)
    os.mkfifo(outputs / "fifo")  # opened for reading, it would block forever
    (outputs / "kept.txt").write_text("kept")
    assert collected(outputs.parent) == ({"kept.txt": b"kept"}, False)


def test_the_count_cap_keeps_the_first_files_and_flags_the_rest(outputs):
    for name in "abcde":
        (outputs / name).write_text(name)
    assert collected(outputs.parent, max_count=3) == ({"a": b"a", "b": b"b", "c": b"c"}, True)
    assert collected(outputs.parent, max_count=5) == ({n: n.encode() for n in "abcde"}, False)


def test_the_byte_cap_holds_for_all_artifacts_together(outputs):
    (outputs / "a").write_bytes(b"1" * 600)
    (outputs / "b").write_bytes(b"2" * 600)  # would pass the cap: left out
    (outputs / "c").write_bytes(b"3" * 400)  # still fits
    files, truncated = collected(outputs.parent, max_bytes=1000)
    assert sorted(files) == ["a", "c"]
    assert sum(map(len, files.values())) <= 1000
    assert truncated is True


def test_names_that_cannot_be_an_artifact_path_are_left_out(outputs):
    (outputs / "fine.txt").write_text("ok")
    os.close(os.open(os.fsencode(outputs) + b"/bad-\xff", os.O_CREAT | os.O_WRONLY))
    (outputs / "tab\tname").write_text("x")
    deep = outputs.joinpath(*"abcdefghij")
    deep.mkdir(parents=True)
    (deep / "too-deep.txt").write_text("x")
    assert collected(outputs.parent) == ({"fine.txt": b"ok"}, True)


def test_no_outputs_directory_means_no_artifacts(tmp_path):
    assert collected(tmp_path) == ({}, False)
    (tmp_path / "outputs").symlink_to("/etc")
    assert collected(tmp_path) == ({}, False)


def test_the_prepared_matplotlib_config_is_copied_beside_the_programs_own(tmp_path):
    runtime = tmp_path / "runtime"
    (runtime / runner.PREPARED_MPLCONFIG_DIR).mkdir(parents=True)
    (runtime / runner.PREPARED_MPLCONFIG_DIR / "fontlist-v390.json").write_text("{}")
    (runtime / runner.PREPARED_MPLCONFIG_DIR / "matplotlibrc").write_text("prepared")
    workdir = tmp_path / "work"
    workdir.mkdir()
    runner.prepare_workdir(str(workdir), [(f"{runner.MPLCONFIG_DIR}/matplotlibrc", b"the program's own")])
    runner.copy_prepared_config(str(runtime), str(workdir))
    config = workdir / runner.MPLCONFIG_DIR
    assert (config / "fontlist-v390.json").read_text() == "{}"
    assert (config / "matplotlibrc").read_text() == "the program's own"
