"""The committed OpenAPI snapshot the web UI's types come from (frontend/openapi.json) is the app's document."""

from __future__ import annotations

import difflib
import json
import os

from executioner.api.main import create_app
from executioner.settings import Settings
from helpers.stack import REPO

SNAPSHOT = REPO / "frontend" / "openapi.json"


def test_frontend_openapi_snapshot_matches_the_app(monkeypatch):
    for name in [k for k in os.environ if k.startswith("EXECUTIONER_")]:
        monkeypatch.delenv(name)
    live = create_app(Settings()).openapi()  # default settings; building the app connects to nothing
    committed = json.loads(SNAPSHOT.read_text())
    if live != committed:
        diff = "".join(
            difflib.unified_diff(
                json.dumps(committed, indent=2, sort_keys=True).splitlines(keepends=True),
                json.dumps(live, indent=2, sort_keys=True).splitlines(keepends=True),
                "frontend/openapi.json (committed)",
                "create_app(Settings()).openapi()",
                n=2,
            )
        )
        raise AssertionError(
            "frontend/openapi.json is stale: regenerate it with `.venv/bin/python hack/openapi.py`, then run "
            f"`npm run gen:api` in frontend/ (`npm run check:api` tells whether the types changed); commit both.\n"
            f"{diff[:8000]}"
        )
