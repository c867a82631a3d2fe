"""Live output on the Kubernetes backend: the pod log is followed while the sandbox runs, so the first line of a
program that then sleeps reaches an SSE client and the CLI before the program ends."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from helpers.sse import follow, joined

pytestmark = pytest.mark.cluster
EXECUTIONER = str(Path(sys.executable).with_name("executioner"))
PROGRESS = "import time\nprint('first line', flush=True)\ntime.sleep(2)\nprint('second line')\n"


def test_the_first_line_arrives_while_the_pod_still_runs(kubernetes_stack):
    with httpx.Client(base_url=kubernetes_stack.url, timeout=120) as api:
        created = api.post("/v1/executions", json={"code": PROGRESS, "limits": {"timeout_seconds": 10}})
        execution_id = created.json()["id"]
        events, status_at_first_line = [], None
        for event in follow(api, execution_id):
            events.append(event)
            if event.event == "stdout" and status_at_first_line is None:
                status_at_first_line = api.get(f"/v1/executions/{execution_id}").json()["status"]
        result = events[-1].data
        assert status_at_first_line == "running"
        assert result["status"] == "succeeded" and result["backend"] == "kubernetes"
        assert joined(events, "stdout") == result["stdout"] == "first line\nsecond line\n"


def test_submit_prints_the_first_line_while_the_pod_still_runs(kubernetes_stack, tmp_path):
    program = tmp_path / "progress.py"
    program.write_text(PROGRESS)
    process = subprocess.Popen(
        [EXECUTIONER, "submit", str(program), "--url", kubernetes_stack.url], stdout=subprocess.PIPE, text=True
    )
    first = process.stdout.readline()
    still_running = process.poll() is None
    rest = process.stdout.read()
    assert process.wait(120) == 0
    assert first == "first line\n" and still_running and rest == "second line\n"


def test_a_flood_is_capped_and_flagged(kubernetes_stack):
    with httpx.Client(base_url=kubernetes_stack.url, timeout=120) as api:
        code = "import sys\nfor _ in range(200):\n    sys.stdout.write('x' * 10000)\n"
        execution_id = api.post("/v1/executions", json={"code": code}).json()["id"]
        events = list(follow(api, execution_id))
        result = events[-1].data
        assert result["stdout_truncated"] is True
        assert joined(events, "stdout") == result["stdout"] and len(result["stdout"]) == 64 * 1024
        assert [e for e in events if e.event == "stdout"][-1].data.get("truncated") is True


@pytest.mark.browser
def test_the_browser_shows_the_first_line_while_the_pod_still_runs(kubernetes_stack, tmp_path):
    """The web UI served by the Kubernetes stack's API, in headless Chromium (as tests/ui does for local)."""
    playwright = pytest.importorskip("playwright.sync_api")
    chromium = os.environ.get("EXECUTIONER_CHROMIUM", "/usr/bin/chromium")
    with playwright.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=chromium, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = context.new_page()
            page.set_default_timeout(60_000)
            page.goto(kubernetes_stack.url + "/")
            page.get_by_label("Timeout (s)", exact=True).fill("10")
            page.get_by_role("textbox", name="Code", exact=True).fill(PROGRESS)
            page.get_by_role("button", name="Run", exact=True).click()
            stdout = page.get_by_role("region", name="stdout", exact=True)
            status = page.get_by_role("status", name="Status", exact=True)
            playwright.expect(stdout).to_have_text("first line\n")
            playwright.expect(status).to_have_text("running")  # the pod still runs when the line is on the page
            playwright.expect(status).to_have_text("succeeded")
            playwright.expect(stdout).to_have_text("first line\nsecond line\n")
        finally:
            context.close()
