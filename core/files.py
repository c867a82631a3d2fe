"""Input files and artifacts: the pure rules both backends and the API share."""

from __future__ import annotations

import base64
import binascii
import mimetypes
import posixpath
import unicodedata

import executioner.sandbox.runner as runner_module
from executioner.models import InputFile

# The runner (standard library only, shipped alone into every sandbox) checks the same paths again: one definition,
# its own. OUTPUTS_DIR is where, in the program's working directory, what it writes is collected as artifacts.
OUTPUTS_DIR = runner_module.OUTPUTS_DIR
MAX_PATH_BYTES = runner_module.MAX_PATH_BYTES
MAX_PATH_DEPTH = runner_module.MAX_PATH_DEPTH
# Raster images: sent as images (and shown as pictures in the UI). Everything else, SVG and HTML included, is sent as
# an attachment that no browser renders in the API's origin.
INLINE_IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})


def path_problem(path: str) -> str | None:
    """Why `path` cannot name an input file in the working directory, or None: it must be relative, normalised (no
    `.`, `..` or empty parts), printable, and short; outputs/ is the program's own."""
    if problem := relative_path_problem(path):
        return problem
    if path.split("/")[0] == OUTPUTS_DIR:
        return f"{OUTPUTS_DIR}/ is where the program's artifacts go; input files go elsewhere"
    return None


def relative_path_problem(path: str) -> str | None:
    """Why `path` is not a relative, normalised, printable and short path, or None (input files and artifacts)."""
    if not path:
        return "the path is empty"
    if len(path.encode()) > MAX_PATH_BYTES:
        return f"the path is longer than {MAX_PATH_BYTES} bytes"
    if any(unicodedata.category(ch)[0] == "C" for ch in path) or "\\" in path:
        return "the path holds a control character or a backslash"
    if path.startswith("/"):
        return "the path is absolute; it must be relative to the working directory"
    parts = path.split("/")
    if any(part in ("", ".", "..") for part in parts) or posixpath.normpath(path) != path:
        return "the path is not normalised (no empty, . or .. parts)"
    if len(parts) > MAX_PATH_DEPTH:
        return f"the path is deeper than {MAX_PATH_DEPTH} directories"
    return None


def decoded(file: InputFile) -> bytes:
    """The file's bytes; ValueError when content_base64 is not base64."""
    try:
        return base64.b64decode(file.content_base64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"content_base64 is not valid base64: {exc}") from None


def content_type(path: str) -> str:
    """An artifact's media type, from its name alone (never from what the program put in it)."""
    guessed, _ = mimetypes.guess_type(path, strict=False)
    return guessed or "application/octet-stream"
