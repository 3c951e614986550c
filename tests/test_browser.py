"""`gitops-dora demo` then `gitops-dora dashboard`, driven in Debian's Chromium through Playwright.

ACCEPTANCE: every page renders with real demo data and its Plotly charts, and shows no exception
element. Screenshots go to test-artifacts/ for a human to look at.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests import cli_inprocess
from tests.browser_session import CHROMIUM, new_page, shared_browser, shared_context, wait_drawn
from tests.child_env import child_env
from tests.dashboard_server import Dashboard

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
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
def browser(request: pytest.FixtureRequest) -> Any:
    """Debian's Chromium, one per test process (tests/browser_session.py)."""
    return shared_browser(request)


@pytest.fixture(scope="module")
def context(request: pytest.FixtureRequest) -> Any:
    """The process's browser context (tests/browser_session.py); each test loads its pages in it,
    every load a new document and Streamlit session."""
    return shared_context(request)


def page_db(page: Any) -> str:
    """The database path the sidebar shows (the dashboard's --db)."""
    text = page.locator('[data-testid="stSidebar"] code').first.inner_text()
    return str(text).strip()


def wait_rendered(page: Any, title: str, last: str, charts: int) -> None:
    """Until the page shows its title and its last heading, at least ``charts`` drawn charts, and its
    script run is over (tests/browser_session.py, ``wait_drawn``)."""
    wait_drawn(page, (title, last), charts=charts, timeout=60_000)


@pytest.mark.parametrize("path", list(PAGES), ids=lambda p: p or "overview")
def test_page_renders_charts_and_no_exception(dashboard: str, context: Any, path: str) -> None:
    title, last, charts = PAGES[path]
    page, errors = new_page(context, 1500, 1100)
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


def test_filter_link_reproduces_the_view(dashboard: str, context: Any) -> None:
    page, _ = new_page(context, 1280, 720)
    page.goto(f"{dashboard}/deployments?since=2026-09-01&until=2026-10-01&service=storefront")
    wait_rendered(page, "Deployments", "Drill-down", 1)
    service_box = page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').nth(1)
    shown = service_box.inner_text() + " ".join(
        service_box.locator("input").evaluate_all("els => els.map(e => e.value || e.placeholder || '')"))
    assert "storefront" in shown
    assert "service=storefront" in page.url


def test_the_browser_is_debians_chromium(browser: Any) -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed")
    out = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True, timeout=30).stdout
    assert "Chromium" in out and out.split()[1] == browser.version


def test_filters_survive_moving_between_pages(dashboard: str, context: Any) -> None:
    page, _ = new_page(context, 1500, 1100)
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
