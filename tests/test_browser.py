"""`gitops-dora demo` then `gitops-dora dashboard`, driven in Debian's Chromium through Playwright.

ACCEPTANCE: every page renders with real demo data and its Plotly charts, and shows no exception
element. Screenshots go to test-artifacts/ for a human to look at.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import cli_inprocess
from tests.child_env import child_env
from tests.dashboard_server import Dashboard, free_port  # noqa: F401 - test_browser_security's

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
# page url path -> (title, its last section heading, minimum Plotly charts on the demo data)
PAGES = {
    "": ("Overview", "GitOps maturity", 1),
    "throughput": ("Throughput", "PR lead time breakdown", 2),
    "stability": ("Stability", "Why each failed deployment is failed", 3),
    "deployments": ("Deployments", "Drill-down", 1),
    "maturity": ("GitOps maturity", "Self-assessment", 1),
    "data-health": ("Data health", "All data-quality warnings", 1),
}


@pytest.fixture(scope="module")
def dashboard(request: pytest.FixtureRequest) -> str:
    """The worker's dashboard on the run's shared demo store (tests/conftest.py, ``demo_dashboard``;
    shared with test_browser_pages.py, both only read it)."""
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (scripts/test.sh installs it)")
    server: Dashboard = request.getfixturevalue("demo_dashboard")
    port = server.url.rsplit(":", 1)[1]
    first_line = server.log.read_text().splitlines()[0]
    assert first_line.endswith(f"http://127.0.0.1:{port}/")   # the URL is printed for the user
    return server.url


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def page_db(page: object) -> str:
    """The database path the sidebar shows (the dashboard's --db)."""
    text = page.locator('[data-testid="stSidebar"] code').first.inner_text()  # type: ignore[attr-defined]
    return str(text).strip()


def wait_rendered(page: object, title: str, last: str, charts: int) -> None:
    for name in (title, last):
        heading = page.get_by_role("heading", name=name, exact=True)  # type: ignore[attr-defined]
        heading.first.wait_for(timeout=60_000)
    if charts:
        page.wait_for_function(  # type: ignore[attr-defined]
            f"document.querySelectorAll('.js-plotly-plot .main-svg').length >= {charts}", timeout=60_000
        )
    # the script run is over when Streamlit's running indicator is gone; then every element is the
    # run's own (none left stale from a previous run, no skeleton) and every chart is drawn. These
    # conditions replace a fixed 500 ms wait after the run (16 page loads in the browser modules)
    page.wait_for_function(  # type: ignore[attr-defined]
        "!document.querySelector('[data-testid=\"stStatusWidgetRunningIcon\"]')",
        timeout=60_000,
    )
    page.wait_for_function(DRAWN_JS, timeout=60_000)  # type: ignore[attr-defined]
    next_frames(page)


DRAWN_JS = ("!document.querySelector('[data-stale=\"true\"], [data-testid=\"stSkeleton\"]')"
            " && [...document.querySelectorAll('.js-plotly-plot')].every(p => p.querySelector('.main-svg'))")


def next_frames(page: object) -> None:
    """Until the browser has drawn two more frames: whatever the last run changed (a chart's layout
    after a resize) is laid out and painted before a screenshot, without a fixed wait."""
    page.evaluate(  # type: ignore[attr-defined]
        "() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))")


@pytest.mark.parametrize("path", list(PAGES), ids=lambda p: p or "overview")
def test_page_renders_charts_and_no_exception(dashboard: str, browser: object, path: str) -> None:
    title, last, charts = PAGES[path]
    context = browser.new_context(viewport={"width": 1500, "height": 1100})  # type: ignore[attr-defined]
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    query = "?since=2026-05-01&until=2026-11-01"
    page.goto(f"{dashboard}/{path}{query}")
    wait_rendered(page, title, last, charts)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"dashboard-{path or 'overview'}.png"), full_page=True)
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.locator('[data-testid="stAlertContentError"]').count() == 0
    assert page.locator(".js-plotly-plot").count() >= charts
    assert "Page not found" not in page.content()
    assert not errors, errors
    # the filters survived into the URL, so the link reproduces the view
    assert "since=2026-05-01" in page.url and "until=2026-11-01" in page.url
    if path == "":
        tiles = page.locator('[data-testid="stMetric"]')
        assert tiles.count() >= 5
        assert "Deployment frequency" in tiles.first.inner_text()
    context.close()


def test_filter_link_reproduces_the_view(dashboard: str, browser: object) -> None:
    context = browser.new_context()  # type: ignore[attr-defined]
    page = context.new_page()
    page.goto(f"{dashboard}/deployments?since=2026-09-01&until=2026-10-01&service=storefront")
    wait_rendered(page, "Deployments", "Drill-down", 1)
    service_box = page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').nth(1)
    shown = service_box.inner_text() + " ".join(
        service_box.locator("input").evaluate_all("els => els.map(e => e.value || e.placeholder || '')"))
    assert "storefront" in shown
    assert "service=storefront" in page.url
    context.close()


def test_the_browser_is_debians_chromium(browser: object) -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed")
    out = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True, timeout=30).stdout
    assert "Chromium" in out and out.split()[1] == browser.version  # type: ignore[attr-defined]


def test_filters_survive_moving_between_pages(dashboard: str, browser: object) -> None:
    context = browser.new_context(viewport={"width": 1500, "height": 1100})  # type: ignore[attr-defined]
    page = context.new_page()
    page.goto(f"{dashboard}/?since=2026-06-01&until=2026-07-01&service=storefront")
    wait_rendered(page, "Overview", "GitOps maturity", 1)
    page.locator('[data-testid="stSidebarNav"]').get_by_text("Deployments", exact=True).click()
    wait_rendered(page, "Deployments", "Drill-down", 1)
    page.wait_for_function("location.search.includes('service=storefront')", timeout=30_000)
    assert "since=2026-06-01" in page.url and "until=2026-07-01" in page.url
    assert "/deployments" in page.url
    # the filtered listing is storefront's June, not the default window of all services
    caption = page.get_by_text(re.compile(r"^\d+ of \d+ deployments$")).first.inner_text()
    listed = cli_inprocess.run(["--db", page_db(page), "deployments", "--service", "storefront",
                                "--since", "2026-06-01", "--until", "2026-07-01", "--format", "json"],
                               env=child_env())
    assert listed.returncode == 0, listed.stderr
    assert caption == f"{len(json.loads(listed.stdout))} of {len(json.loads(listed.stdout))} deployments"
    context.close()
