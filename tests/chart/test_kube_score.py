"""kube-score (pinned in hack/cluster/versions.env, built by hack/cluster/build.sh) over the chart's default render
and a sandbox Job as build_sandbox_job makes it: a critical finding fails unless tests/chart/kube-score-ignore.txt
lets it through with a reason, and an entry there that no longer fires fails too (the list cannot go stale)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from executioner.models import Execution, Limits, Status
from executioner.settings import Settings
from executioner.worker.backends.kubernetes import build_sandbox_job

REPO = Path(__file__).resolve().parents[2]
IGNORE_FILE = Path(__file__).with_name("kube-score-ignore.txt")
CRITICAL = 1  # kube-score's grade for a critical finding (warnings are 5)
ENTRY = re.compile(r"^(?P<check>[a-z0-9-]+)(?:\s+(?P<object>[A-Za-z]+/[a-z0-9.-]+))?\s+#\s*(?P<reason>\S.*)$")


@pytest.fixture(scope="module")
def kube_score() -> str:
    p = subprocess.run(
        [str(REPO / "hack" / "cluster" / "tool-path.sh"), "kube-score"], capture_output=True, text=True, timeout=3600
    )
    assert p.returncode == 0, f"no kube-score: {p.stderr[-2000:]}"
    return p.stdout.strip().splitlines()[-1]


def ignore_list() -> set[tuple[str, str | None]]:
    entries = set()
    for number, line in enumerate(IGNORE_FILE.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        match = ENTRY.match(line.strip())
        assert match, f"{IGNORE_FILE.name}:{number}: want '<check id> [<Kind>/<name>]  # reason', got {line!r}"
        entries.add((match["check"], match["object"]))
    return entries


def sandbox_job() -> dict:
    settings = Settings()
    limits = Limits(timeout_seconds=settings.default_timeout_seconds, memory_mb=settings.default_memory_mb)
    execution = Execution.new(code="print(1)", stdin="", limits=limits, backend="kubernetes", status=Status.queued)
    job = build_sandbox_job(execution, settings)
    job["metadata"]["namespace"] = settings.sandbox_namespace  # where the worker creates it
    return job


def criticals(kube_score: str, manifests: str, tmp_path: Path) -> set[tuple[str, str]]:
    """(check id, "Kind/name") of every critical finding."""
    path = tmp_path / "manifests.yaml"
    path.write_text(manifests)
    p = subprocess.run([kube_score, "score", "--output-format", "json", str(path)], capture_output=True, text=True)
    assert p.stdout, p.stderr  # kube-score exits 1 when it finds a critical: the JSON says which
    found = set()
    for scored in json.loads(p.stdout):
        where = f"{scored['type_meta']['kind']}/{scored['object_meta']['name']}"
        for check in scored["checks"]:
            if check["grade"] == CRITICAL and not check["skipped"]:
                found.add((check["check"]["id"], where))
    return found


@pytest.mark.parametrize(
    "variant, args",
    [
        ("defaults", []),
        # several API and worker pods: PodDisruptionBudgets, spreading, the HPA
        ("scaled out", ["--set", "api.autoscaling.enabled=true", "--set", "worker.replicas=3"]),
    ],
)
def test_no_critical_finding_outside_the_ignore_list(kube_score, helm, tmp_path, variant, args):
    rendered = subprocess.run(
        [helm, "template", "executioner", str(REPO / "charts" / "executioner"), "-n", "executioner", *args],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    # the sandbox Job beside the chart, so the sandbox namespace's deny-all policy has the pods it is for
    found = criticals(kube_score, rendered + "\n---\n" + yaml.safe_dump(sandbox_job()), tmp_path)
    ignored = ignore_list()
    unexpected = {
        (check, where) for check, where in found if (check, None) not in ignored and (check, where) not in ignored
    }
    assert not unexpected, f"{variant}: kube-score criticals not in {IGNORE_FILE.name}: {sorted(unexpected)}"
    if variant == "defaults":
        stale = {
            entry
            for entry in ignored
            if not any(check == entry[0] and entry[1] in (None, where) for check, where in found)
        }
        assert not stale, f"entries in {IGNORE_FILE.name} that no longer fire: {sorted(stale)}"


def test_the_sandbox_job_is_scored(kube_score, tmp_path):
    """Control: the same run does see a Job, and finds a critical in one that drops the storage bound."""
    job = sandbox_job()
    del job["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["ephemeral-storage"]
    found = criticals(kube_score, yaml.safe_dump(job), tmp_path)
    assert ("container-ephemeral-storage-request-and-limit", f"Job/{job['metadata']['name']}") in found, found
