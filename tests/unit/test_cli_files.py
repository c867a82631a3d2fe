"""The CLI's --file and --artifacts-dir: reading local files into a request, saving artifacts without escaping."""

from __future__ import annotations

import base64
import os

import pytest

from executioner.cli import artifact_destination, input_files, save_artifacts


def test_file_specs_name_the_local_file_and_optionally_its_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data.csv").write_bytes(b"x,y\n")
    (tmp_path / "odd:name.txt").write_bytes(b"\xff")
    files = input_files(["data.csv", "data.csv:in/table.csv", "odd:name.txt"])
    assert [f["path"] for f in files] == ["data.csv", "in/table.csv", "odd:name.txt"]
    assert base64.b64decode(files[0]["content_base64"]) == b"x,y\n"
    assert base64.b64decode(files[2]["content_base64"]) == b"\xff"


def test_a_missing_local_file_is_a_clear_error(tmp_path):
    with pytest.raises(SystemExit, match="cannot read"):
        input_files([str(tmp_path / "absent.csv")])


def test_artifacts_are_saved_under_the_directory(tmp_path):
    assert save_artifacts(tmp_path / "out", [("plot.png", b"png"), ("deep/er/t.csv", b"a")]) == 2
    assert (tmp_path / "out" / "plot.png").read_bytes() == b"png"
    assert (tmp_path / "out" / "deep" / "er" / "t.csv").read_bytes() == b"a"


@pytest.mark.parametrize("path", ["../x", "/etc/passwd", "a/../../b", "a//b", ""])
def test_a_path_that_would_leave_the_directory_is_refused(tmp_path, path):
    with pytest.raises(ValueError, match="refusing to save artifact"):
        artifact_destination(tmp_path / "out", path)
    assert not (tmp_path / "x").exists()


def test_links_in_the_directory_are_never_followed_out_of_it(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    os.symlink(outside, out / "sub")
    os.symlink(outside / "victim", out / "plot.png")
    with pytest.raises(ValueError, match="would leave"):
        save_artifacts(out, [("sub/x.txt", b"no")])
    with pytest.raises(OSError):  # O_NOFOLLOW: a planted link is not written through
        save_artifacts(out, [("plot.png", b"no")])
    assert list(outside.iterdir()) == []
