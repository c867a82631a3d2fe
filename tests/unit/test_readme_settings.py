"""The README's configuration table names every setting, and only real ones."""

from __future__ import annotations

import re
from pathlib import Path

from executioner.settings import Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_setting_is_documented_in_the_readme():
    table = README.read_text().split("## Configuration", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"`EXECUTIONER_([A-Z0-9_]+)`", table))
    settings = {name.upper() for name in Settings.model_fields}
    assert settings - documented == set(), "settings missing from the README's Configuration table"
    assert documented - settings == set(), "the README documents settings that do not exist"
