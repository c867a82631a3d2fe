#!/usr/bin/env python3
"""Write the API's OpenAPI document to frontend/openapi.json, the snapshot the web UI's types are generated from.

    .venv/bin/python hack/openapi.py            write frontend/openapi.json, then: cd frontend && npm run gen:api
    .venv/bin/python hack/openapi.py --check    exit 1 when the snapshot differs from the app's document

The app is built with default settings (every EXECUTIONER_* variable ignored), so the document does not depend on
the environment; building it connects to nothing. tests/unit/test_openapi_snapshot.py checks the snapshot.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

SNAPSHOT = Path(__file__).resolve().parents[1] / "frontend" / "openapi.json"


def document() -> dict:
    """The OpenAPI document of the app as `executioner api` serves it with default settings."""
    from executioner.api.main import create_app
    from executioner.settings import Settings

    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("EXECUTIONER_")}
    try:
        return create_app(Settings()).openapi()
    finally:
        os.environ.update(saved)


def text(doc: dict) -> str:
    return json.dumps(doc, indent=2) + "\n"


def main(argv: list[str]) -> int:
    current = text(document())
    if argv[1:] == ["--check"]:
        if SNAPSHOT.read_text() != current:
            print(f"{SNAPSHOT} is stale: run hack/openapi.py, then `npm run gen:api` in frontend/", file=sys.stderr)
            return 1
        return 0
    if argv[1:]:
        print(__doc__, file=sys.stderr)
        return 2
    SNAPSHOT.write_text(current)
    print(
        f"wrote {SNAPSHOT}; now run `npm run gen:api` in frontend/ (npm run check:api tells whether it must)",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
