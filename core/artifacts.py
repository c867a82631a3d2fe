"""Artifacts: what a program left under outputs/, kept with its result within the deployment's caps.

The runner already holds the program to the caps; they are applied again here, where the result is stored, so
nothing a sandbox reports can grow the store past them (defence in depth: the envelope is parsed from a sandbox).
"""

from __future__ import annotations

import base64
import binascii
import logging
from dataclasses import dataclass, field

from executioner.files import OUTPUTS_DIR, content_type, path_problem
from executioner.models import Artifact, ArtifactContent

log = logging.getLogger(__name__)


def artifact_path_problem(path: str) -> str | None:
    """Why `path` cannot name an artifact (a path under outputs/), or None: the input files' rules, where outputs/
    itself may hold an outputs/ directory."""
    if path.split("/")[0] == OUTPUTS_DIR:
        return path_problem("o" + path)  # the same checks, without the rule that keeps inputs out of outputs/
    return path_problem(path)


@dataclass(frozen=True)
class KeptArtifacts:
    """The artifacts stored with a result: path -> bytes, in the order the runner reported them."""

    contents: dict[str, bytes] = field(default_factory=dict)
    truncated: bool = False

    @property
    def size(self) -> int:
        return sum(len(data) for data in self.contents.values())

    def listing(self) -> list[dict[str, object]]:
        """The record's `artifacts` field."""
        return [
            Artifact(path=path, size=len(data), content_type=content_type(path)).model_dump()
            for path, data in self.contents.items()
        ]


def keep_artifacts(
    reported: list[ArtifactContent], reported_truncated: bool, max_count: int, max_bytes: int
) -> KeptArtifacts:
    """The reported artifacts within `max_count` files and `max_bytes` together; one that breaks the rules (a bad
    path, bad base64, a repeated path) or does not fit is dropped, and the result says something was."""
    contents: dict[str, bytes] = {}
    truncated, total = reported_truncated, 0
    for artifact in reported:
        try:
            data = base64.b64decode(artifact.content_base64, validate=True)
        except (binascii.Error, ValueError):
            data = None
        if data is None or artifact_path_problem(artifact.path) or artifact.path in contents:
            log.warning("dropped an artifact the sandbox reported malformed: %r", artifact.path[:300])
            truncated = True
            continue
        if len(contents) >= max_count or total + len(data) > max_bytes:
            truncated = True
            continue
        contents[artifact.path] = data
        total += len(data)
    return KeptArtifacts(contents, truncated)
