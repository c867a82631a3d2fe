"""End to end: the web UI served by the real stack, driven in headless Chromium.

Needs the `stack_url` fixture (tests/conftest.py): Redis, the Celery worker and the API serving frontend/dist,
yielding the base URL. Uses Debian's /usr/bin/chromium (no browser download). Screenshots land in
test-artifacts/ui/ at the repository root.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from helpers.private import private_api

pytestmark = pytest.mark.browser

playwright_sync = pytest.importorskip("playwright.sync_api")
expect = playwright_sync.expect

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "ui"
CHROMIUM = os.environ.get("EXECUTIONER_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TERMINAL = re.compile(r"^(succeeded|failed|timed_out|memory_exceeded|cancelled|error)$")


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    if not Path(CHROMIUM).exists() and not shutil.which(CHROMIUM):
        pytest.fail(f"no Chromium at {CHROMIUM}: run `make browser-deps` (apt-get install chromium)")
    profile = tmp_path_factory.mktemp("chromium-profile")
    with playwright_sync.sync_playwright() as pw:
        # A persistent context is how Playwright takes a fresh --user-data-dir.
        context = pw.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1440, "height": 900},
        )
        try:
            yield context
        finally:
            context.close()


@contextmanager
def opened(browser, url: str, api_key: str | None = None) -> Iterator[object]:
    page = browser.new_page()
    page.set_default_timeout(30_000)
    if api_key:  # as if entered on an earlier visit: the page keeps it in localStorage
        page.add_init_script(f"window.localStorage.setItem('executioner.apiKey', {api_key!r})")
    # Console errors (a CSP violation, an uncaught exception) fail the test that caused them.
    page.errors = []
    page.on("console", lambda message: message.type == "error" and page.errors.append(message.text))
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.goto(url.rstrip("/") + "/")
    yield page
    errors = page.errors
    page.close()
    assert errors == [], f"browser console errors: {errors}"


@pytest.fixture
def page(browser, stack_url: str):
    with opened(browser, stack_url) as page:
        yield page


@pytest.fixture
def keyed_page(browser, prepared_runtimes, tmp_path: Path):
    """The page against a private stack that requires an API key, one the person entered before (the page keeps it
    in localStorage): whatever the page shows, a plot included, it fetched with the key, never by a bare URL. Its
    worker runs python-data from the prepared runtimes."""
    with (
        private_api(tmp_path / "stack", worker=True, api_keys="ui-key") as api,
        opened(browser, str(api.base_url), api_key="ui-key") as page,
    ):
        yield page


def run_code(page, code: str, *, stdin: str = "") -> None:
    editor = page.get_by_role("textbox", name="Code", exact=True)
    editor.fill(code)
    if stdin:
        page.get_by_label("stdin", exact=True).fill(stdin)
    page.get_by_role("button", name="Run", exact=True).click()


def status(page):
    return page.get_by_role("status", name="Status", exact=True)


def test_page_is_served_with_the_accessible_contract(page) -> None:
    expect(page).to_have_title("THE_EXECUTIONER")
    expect(page.get_by_role("textbox", name="Code", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Run", exact=True)).to_be_enabled()
    expect(page.get_by_role("region", name="stdout", exact=True)).to_be_attached()
    expect(page.get_by_role("region", name="stderr", exact=True)).to_be_attached()
    expect(status(page)).to_have_text("idle")


def test_types_code_runs_it_and_sees_stdout(page) -> None:
    editor = page.get_by_role("textbox", name="Code", exact=True)
    editor.fill("")
    editor.press_sequentially('name = input()\nprint("hello from the sandbox,", name)')
    page.get_by_label("stdin", exact=True).fill("neon\n")
    editor.press("Control+Enter")  # the keyboard shortcut, not the button
    expect(status(page)).to_have_text(TERMINAL)
    expect(status(page)).to_have_text("succeeded")
    expect(page.get_by_role("region", name="stdout", exact=True)).to_have_text("hello from the sandbox, neon\n")
    expect(page.get_by_test_id("exit-code")).to_have_text("0")
    # The history (GET /v1/executions) lists the run and reopens it.
    history = page.get_by_role("navigation", name="Recent executions")
    expect(history.get_by_role("link").first).to_contain_text("succeeded")


def test_traceback_lands_in_stderr(page) -> None:
    run_code(page, 'def boom():\n    raise ValueError("kaboom")\n\nboom()\n')
    expect(status(page)).to_have_text("failed")
    stderr = page.get_by_role("region", name="stderr", exact=True)
    expect(stderr).to_contain_text("Traceback (most recent call last)")
    expect(stderr).to_contain_text("ValueError: kaboom")
    expect(page.get_by_test_id("exit-code")).to_have_text("1")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "traceback.png"), full_page=True)


def test_cancels_a_long_run(page) -> None:
    page.get_by_label("Timeout (s)", exact=True).fill("20")
    run_code(page, 'import time\nprint("started", flush=True)\ntime.sleep(60)\n')
    expect(status(page)).to_have_text("running")
    expect(page.get_by_test_id("elapsed")).to_be_visible()
    page.get_by_role("button", name="Cancel", exact=True).click()
    expect(status(page)).to_have_text("cancelled", timeout=15_000)
    expect(page.get_by_role("button", name="Run", exact=True)).to_be_enabled()


def test_screenshot_of_a_finished_run(page) -> None:
    run_code(
        page,
        'import sys\n\nfor i in range(3):\n    print(f"tick {i}")\nprint("warning: neon overload", file=sys.stderr)\n',
    )
    expect(status(page)).to_have_text("succeeded")
    expect(page.get_by_role("region", name="stdout", exact=True)).to_have_text("tick 0\ntick 1\ntick 2\n")
    expect(page.get_by_role("region", name="stderr", exact=True)).to_have_text("warning: neon overload\n")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "executioner-ui.png"), full_page=True)
    assert (ARTIFACTS / "executioner-ui.png").stat().st_size > 10_000


def test_output_appears_live_while_the_program_still_runs(page) -> None:
    """Read from the event stream (fetch with the key header), with no polling of GET /v1/executions/{id}."""
    polls = []
    page.on("request", lambda r: re.search(r"/v1/executions/[0-9a-f]+$", r.url) and polls.append(r.url))
    page.get_by_label("Timeout (s)", exact=True).fill("10")
    run_code(page, "import time\nprint('first line', flush=True)\ntime.sleep(2)\nprint('second line')\n")
    stdout = page.get_by_role("region", name="stdout", exact=True)
    expect(stdout).to_have_text("first line\n")
    expect(status(page)).to_have_text("running")  # still running when the first line is on the page
    expect(page.get_by_test_id("elapsed")).to_be_visible()
    expect(status(page)).to_have_text("succeeded", timeout=15_000)
    expect(stdout).to_have_text("first line\nsecond line\n")
    assert polls == [], f"the page polled the execution: {polls}"


PLOT_CODE = """\
import matplotlib.pyplot as plt
import pandas as pd

frame = pd.read_csv("data.csv")
print("rows:", len(frame), "sum of y:", frame["y"].sum())
figure, axes = plt.subplots(figsize=(4, 3), dpi=100)
frame.plot(x="x", y="y", ax=axes, marker="o")
figure.tight_layout()
figure.savefig("outputs/plot.png")
"""


def test_plots_an_uploaded_csv_in_python_data_and_sees_the_plot(keyed_page, tmp_path: Path) -> None:
    """The issue's "done when": pick python-data, upload a CSV, run code that plots it, see the plot."""
    page = keyed_page
    csv = tmp_path / "data.csv"
    csv.write_text("x,y\n0,0\n1,1\n2,4\n3,9\n4,16\n")
    runtime = page.get_by_role("combobox", name="Runtime", exact=True)
    expect(runtime.get_by_role("option", name=re.compile(r"^python-data · Python 3\.11$"))).to_be_attached()
    runtime.select_option("python-data")
    expect(page.get_by_text("Python with numpy, pandas")).to_be_visible()
    page.get_by_label("Input files", exact=True).set_input_files(str(csv))
    expect(page.get_by_role("list", name="Picked files")).to_contain_text("data.csv")
    page.get_by_label("Timeout (s)", exact=True).fill("30")
    run_code(page, PLOT_CODE)
    expect(status(page)).to_have_text(TERMINAL, timeout=60_000)
    expect(page.get_by_role("region", name="stderr", exact=True)).to_have_text("")
    expect(status(page)).to_have_text("succeeded")
    expect(page.get_by_role("region", name="stdout", exact=True)).to_have_text("rows: 5 sum of y: 30\n")
    plot = page.get_by_role("region", name="artifacts", exact=True).get_by_role("img", name="plot.png", exact=True)
    expect(plot).to_be_visible()
    # Decoded and drawn, at the size the program saved it: a 4 x 3 inch figure at 100 dpi.
    size = plot.evaluate("img => img.decode().then(() => [img.naturalWidth, img.naturalHeight])")
    assert size == [400, 300]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "plot.png"), full_page=True)
