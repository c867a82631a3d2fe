"""A request checked against one deployment's bounds: its limits, runtime and files, and its sizes in bytes.

The Submitter (submission.py) admits nothing else, and `executioner run` checks a request's runtime and files the same
way before it runs anything; this module needs no store, so `run` works without Redis installed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from executioner.files import decoded, path_problem
from executioner.models import ExecutionCreateBase, execution_create_model
from executioner.settings import Settings


class InvalidSubmission(ValueError):
    """The request breaks this deployment's bounds; `errors` name the fields, as pydantic's do."""

    def __init__(self, errors: list[dict[str, Any]]):
        super().__init__("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors))
        self.errors = errors


class TooLarge(InvalidSubmission):
    """Code or input is larger than the deployment allows, counted in bytes (UTF-8), not characters."""

    def __init__(self, field: str, limit: int):
        super().__init__([{"loc": [field], "msg": f"{field} is larger than {limit} bytes", "type": "too_large"}])
        self.field = field


def invalid_file(index: int, path: str, message: str, kind: str = "value_error") -> InvalidSubmission:
    return InvalidSubmission([{"loc": ["files", index, "path"], "msg": f"file {path!r}: {message}", "type": kind}])


class FileTooLarge(TooLarge):
    """An input file (or all of them together) is larger than the deployment allows."""

    def __init__(self, index: int, path: str, message: str):
        InvalidSubmission.__init__(
            self, [{"loc": ["files", index, "content_base64"], "msg": f"file {path!r}: {message}", "type": "too_large"}]
        )
        self.field = "files"


class RequestBounds:
    """A request checked against one deployment's bounds: what the Submitter admits, and what `executioner run`
    checks before it runs anything."""

    def __init__(self, settings: Settings):
        self.settings = settings
        # The same model the API's schema shows, so both paths enforce the same bounds.
        self.request_model = execution_create_model(settings)

    def validate(
        self,
        code: str,
        stdin: str,
        limits: Mapping[str, Any],
        runtime: str = "python",
        files: Sequence[Mapping[str, Any]] | None = None,
    ) -> tuple[ExecutionCreateBase, int]:
        """The request checked against the deployment's bounds, and its size in bytes; InvalidSubmission if not.
        A request that sets no memory limit gets its runtime's default (numpy and pandas need more than print)."""
        body = {"code": code, "stdin": stdin, "runtime": runtime, "files": [dict(f) for f in files or []]}
        try:
            request: ExecutionCreateBase = self.request_model.model_validate({**body, "limits": dict(limits)})
        except ValidationError as exc:
            raise InvalidSubmission(
                [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
            ) from None
        code_bytes, stdin_bytes = len(code.encode()), len(stdin.encode())
        if code_bytes > self.settings.max_code_bytes:
            raise TooLarge("code", self.settings.max_code_bytes)
        if stdin_bytes > self.settings.max_stdin_bytes:
            raise TooLarge("stdin", self.settings.max_stdin_bytes)
        files_bytes = self.check_files(request)
        if "memory_mb" not in request.limits.model_fields_set:
            memory = self.settings.runtime_memory_mb(request.runtime)
            request.limits = request.limits.model_copy(update={"memory_mb": memory})
        return request, code_bytes + stdin_bytes + files_bytes

    def check_files(self, request: ExecutionCreateBase) -> int:
        """Paths safe and distinct, content base64 within the per-file and total caps; returns the total bytes."""
        total, seen = 0, set[str]()
        for index, file in enumerate(request.files):
            if problem := path_problem(file.path):
                raise invalid_file(index, file.path, problem)
            # A file and a directory of the same name, or the same file twice, cannot both be placed.
            prefixes = {"/".join(file.path.split("/")[:depth]) for depth in range(1, file.path.count("/") + 1)}
            if file.path in seen or prefixes & seen or any(other.startswith(file.path + "/") for other in seen):
                raise invalid_file(index, file.path, "the path repeats or clashes with another file's")
            seen.add(file.path)
            # base64 is 4/3 of its bytes: refuse what cannot fit before decoding it.
            if len(file.content_base64) > 4 * (self.settings.max_input_file_bytes // 3 + 1):
                raise FileTooLarge(index, file.path, f"larger than {self.settings.max_input_file_bytes} bytes")
            try:
                size = len(decoded(file))
            except ValueError as exc:
                raise InvalidSubmission(
                    [
                        {
                            "loc": ["files", index, "content_base64"],
                            "msg": f"file {file.path!r}: {exc}",
                            "type": "value_error",
                        }
                    ]
                ) from None
            if size > self.settings.max_input_file_bytes:
                raise FileTooLarge(index, file.path, f"larger than {self.settings.max_input_file_bytes} bytes")
            total += size
            if total > self.settings.max_input_files_total_bytes:
                raise FileTooLarge(
                    index,
                    file.path,
                    f"the files together are larger than {self.settings.max_input_files_total_bytes} bytes",
                )
        return total
