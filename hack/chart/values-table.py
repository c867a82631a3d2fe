#!/usr/bin/env python3
"""Print the values reference of charts/executioner as a Markdown table, from the comments in values.yaml.

    hack/chart/values-table.py            print the table
    hack/chart/values-table.py --write    replace the table between the VALUES-TABLE markers in the chart README

A value is documented by the comment block right above its key ("-- " marks the text; section comments above a
parent key describe the section). Keys under a documented key without their own comment (resources, quota entries,
...) are shown as part of their parent's default.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import yaml

CHART = Path(__file__).resolve().parents[2] / "charts" / "executioner"
KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z][\w.-]*):(?P<rest>.*)$")
BEGIN, END = "<!-- VALUES-TABLE:BEGIN -->", "<!-- VALUES-TABLE:END -->"


def documented_keys(text: str) -> list[tuple[str, str]]:
    """(dotted path, description) of every key with a comment block directly above it, in file order."""
    rows, stack, comment = [], [], []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            comment.append(stripped.lstrip("#").strip())
            continue
        match = KEY.match(line)
        if not match or stripped.startswith("-"):
            comment = [] if not stripped else comment
            continue
        indent = len(match["indent"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = ".".join([k for _, k in stack] + [match["key"]])
        stack.append((indent, match["key"]))
        text_lines = [c for c in comment if c]
        if text_lines and any(c.startswith("--") for c in text_lines):
            start = next(i for i, c in enumerate(text_lines) if c.startswith("--"))
            rows.append((path, " ".join(text_lines[start:])[2:].strip()))
        comment = []
    return rows


def lookup(values: dict, path: str):
    node = values
    for part in path.split("."):
        node = node[part]
    return node


def table() -> str:
    text = (CHART / "values.yaml").read_text()
    values = yaml.safe_load(text)
    out = ["| Key | Default | Description |", "|---|---|---|"]
    for path, description in documented_keys(text):
        default = json.dumps(lookup(values, path), separators=(", ", ": "))
        cell = description.replace("|", "\\|")
        out.append(f"| `{path}` | `{default}` | {cell} |")
    return "\n".join(out) + "\n"


def main() -> int:
    generated = table()
    if "--write" in sys.argv:
        readme = CHART / "README.md"
        body = readme.read_text()
        head, rest = body.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        readme.write_text(f"{head}{BEGIN}\n{generated}{END}{tail}")
    else:
        sys.stdout.write(generated)
    return 0


if __name__ == "__main__":
    sys.exit(main())
