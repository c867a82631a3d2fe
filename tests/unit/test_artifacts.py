"""Artifacts: which the store keeps, and how the API sends each kind (pure logic)."""

from __future__ import annotations

import base64

import pytest

from executioner.api.main import max_body_bytes
from executioner.api.routes.artifacts import serving_headers
from executioner.artifacts import artifact_path_problem, keep_artifacts
from executioner.models import ArtifactContent
from executioner.settings import Settings


def reported(path: str, size: int) -> ArtifactContent:
    return ArtifactContent(path=path, content_base64=base64.b64encode(b"x" * size).decode())


@pytest.mark.parametrize("path", ["plot.png", "a/b/c.csv", "outputs/nested.txt", "é.txt"])
def test_artifact_paths_under_outputs_are_accepted(path):
    assert artifact_path_problem(path) is None


@pytest.mark.parametrize("path", ["", "../x", "/etc/passwd", "a/../b", "a//b", "./a", "a\nb", "x" * 300])
def test_artifact_paths_that_leave_outputs_are_refused(path):
    assert artifact_path_problem(path)


def test_keep_artifacts_holds_both_caps_and_flags_what_it_drops():
    kept = keep_artifacts([reported("a", 5), reported("b", 6), reported("c", 4), reported("d", 1)], False, 2, 10)
    assert list(kept.contents) == ["a", "c"] and kept.truncated and kept.size == 9
    assert [a["path"] for a in kept.listing()] == ["a", "c"]


def test_keep_artifacts_keeps_everything_within_the_caps_and_the_runners_flag():
    artifacts = [reported("plot.png", 3), reported("t/x.csv", 2)]
    assert not keep_artifacts(artifacts, False, 8, 100).truncated
    kept = keep_artifacts(artifacts, True, 8, 100)
    assert kept.truncated and kept.listing() == [
        {"path": "plot.png", "size": 3, "content_type": "image/png"},
        {"path": "t/x.csv", "size": 2, "content_type": "text/csv"},
    ]


def test_keep_artifacts_drops_malformed_reports():
    bad_base64 = ArtifactContent(path="x.bin", content_base64="***")
    kept = keep_artifacts([bad_base64, reported("../up", 1), reported("ok", 1), reported("ok", 2)], False, 8, 100)
    assert kept.contents == {"ok": b"x"} and kept.truncated


@pytest.mark.parametrize(
    ("path", "content_type", "disposition"),
    [
        ("plot.png", "image/png", "inline"),
        ("photo.jpeg", "image/jpeg", "inline"),
        ("anim.gif", "image/gif", "inline"),
        ("data.csv", "text/csv", "attachment"),
        ("notes.txt", "text/plain", "attachment"),
        ("result.json", "application/json", "attachment"),
        ("page.html", "application/octet-stream", "attachment"),
        ("page.htm", "application/octet-stream", "attachment"),
        ("drawing.svg", "application/octet-stream", "attachment"),
        ("feed.xml", "application/octet-stream", "attachment"),
        ("app.js", "application/octet-stream", "attachment"),
        ("doc.xhtml", "application/octet-stream", "attachment"),
        ("doc.pdf", "application/octet-stream", "attachment"),
        ("no-extension", "application/octet-stream", "attachment"),
    ],
)
def test_only_raster_images_are_sent_inline_and_nothing_renderable_keeps_its_type(path, content_type, disposition):
    headers = serving_headers(f"dir/{path}")
    assert headers["content-type"] == content_type
    assert headers["content-disposition"].split(";")[0] == disposition
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["content-security-policy"] == "default-src 'none'; sandbox"


@pytest.mark.parametrize(
    ("path", "ascii_name"), [(".htaccess", "htaccess"), ('a"b\\c.txt', "a_b_c.txt"), ("..", "artifact")]
)
def test_download_names_are_plain_ascii(path, ascii_name):
    assert f'filename="{ascii_name}"' in serving_headers(path)["content-disposition"]


def test_the_body_limit_admits_the_largest_valid_request():
    settings = Settings()
    largest = (
        6 * (settings.max_code_bytes + settings.max_stdin_bytes)  # every character escaped as \\uXXXX
        + 2 * 4 * settings.max_input_files_total_bytes // 3  # every / of the base64 escaped as \\/
        + settings.max_input_files * (6 * 255 + 64)  # paths and the files' JSON
    )
    assert largest < max_body_bytes(settings) < 20 * 1024 * 1024
