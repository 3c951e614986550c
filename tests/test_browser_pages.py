"""Issue #13 in a real browser: `gitops-dora demo`, then `gitops-dora dashboard`, driven in Debian's
Chromium through Playwright at a desktop (1440x900) and a phone (390x844) viewport.

Every page is screenshot at both sizes into tests/artifacts/ (git-ignored): the viewport as a visitor
first sees it, and the whole page. On every page no "None" text is shown; on the Overview no tile
title (or anything else in a tile) is cut off with an ellipsis or clipped; /overview serves the
Overview; the PR breakdown's legend names every phase.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from dashboards.definitions import METRICS
from tests.browser_session import CHROMIUM, new_page, shared_context, wait_drawn
from tests.dashboard_server import Dashboard

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
SIZES = {"desktop": (1440, 900), "phone": (390, 844)}
QUERY = "?since=2026-08-01&until=2026-11-01"
# url path -> (page title, the last thing the page draws: a heading, or a CSS selector)
PAGES: dict[str, tuple[str, str]] = {
    "": ("Overview", "GitOps maturity"),
    "overview": ("Overview", "GitOps maturity"),
    "teams": ("Teams", "css=[data-testid='stDataFrame']"),
    "throughput": ("Throughput", "PR lead time breakdown"),
    "stability": ("Stability", "Why each failed deployment is failed"),
    "deployments": ("Deployments", "Drill-down"),
    "maturity": ("GitOps maturity", "Self-assessment"),
    "data-health": ("Data health", "All data-quality warnings"),
    "definitions": ("Definitions", "css=[data-testid='stExpander']"),
}
TITLES = [m.title for m in METRICS]

# Elements in a tile whose content does not fit: cut off with an ellipsis, or clipped (overflow
# hidden/clip) while wider or taller than the box. Returns [text, scrollWidth, clientWidth] each.
CUT_OFF_JS = """(root) => {
  const out = [];
  for (const el of [root, ...root.querySelectorAll('*')]) {
    const st = getComputedStyle(el);
    if (el.closest('svg') || el.closest('[data-testid="stTooltipIcon"]')) continue;
    const clips = st.textOverflow === 'ellipsis' || ['hidden', 'clip'].includes(st.overflowX);
    if (!clips || !el.innerText || !el.innerText.trim()) continue;
    if (el.scrollWidth > el.clientWidth + 1) out.push([el.innerText, el.scrollWidth, el.clientWidth]);
  }
  return out;
}"""


@pytest.fixture(scope="module")
def dashboard(request: pytest.FixtureRequest) -> str:
    """The worker's dashboard on the run's shared demo store (tests/conftest.py, ``demo_dashboard``;
    shared with test_browser.py, both only read it)."""
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (scripts/test.sh installs it)")
    server: Dashboard = request.getfixturevalue("demo_dashboard")
    return server.url


@pytest.fixture(scope="module")
def context(request: pytest.FixtureRequest) -> Any:
    """The process's browser context (tests/browser_session.py, shared with test_browser.py: the
    dashboard's scripts are fetched and compiled once); each test loads its pages in it, every
    load a new document and Streamlit session."""
    return shared_context(request)


def settle(page: Any) -> None:
    """Until the script run is over, every chart is drawn and no element is still a skeleton or
    stale, then two drawn frames for the charts' last resize before a screenshot."""
    wait_drawn(page)


def open_page(context: Any, url: str, path: str, size: str) -> tuple[Any, list[str]]:
    """A new page (a new session) at the size ``size`` showing ``path`` with :data:`QUERY`, once its
    title and the last thing it draws are there and its script run is over."""
    page, errors = new_page(context, *SIZES[size])
    page.goto(f"{url}/{path}{QUERY}")
    title, last = PAGES[path]
    if last.startswith("css="):
        wait_drawn(page, (title,), (last[4:],))
    else:
        wait_drawn(page, (title, last))
    return page, errors


def full_height(page: Any) -> int:
    """The height the page's content needs (Streamlit scrolls inside its own container, so a
    full-page screenshot needs the viewport made that tall)."""
    return int(page.evaluate(
        "() => Math.max(...[...document.querySelectorAll('[data-testid=\"stMainBlockContainer\"]')]"
        ".map(e => e.scrollHeight), 0) + 160"))


def shown_text(page: Any) -> str:
    """The text a visitor can read: the page body plus every open tooltip-free element."""
    return str(page.locator("body").inner_text())


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("path", list(PAGES), ids=lambda p: p or "home")
def test_every_page_screenshot_and_no_none(dashboard: str, context: Any, path: str, size: str) -> None:
    page, errors = open_page(context, dashboard, path, size)
    ARTIFACTS.mkdir(exist_ok=True)
    name = f"{path or 'home'}-{size}-{SIZES[size][0]}x{SIZES[size][1]}"
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))
    text = shown_text(page)
    page.set_viewport_size({"width": SIZES[size][0], "height": max(SIZES[size][1], full_height(page))})
    settle(page)
    page.screenshot(path=str(ARTIFACTS / f"{name}-full.png"), full_page=True)
    text += "\n" + shown_text(page)
    assert (ARTIFACTS / f"{name}.png").stat().st_size > 10_000
    assert not re.search(r"\bNone\b", text), [line for line in text.splitlines() if "None" in line][:5]
    assert "Page not found" not in text
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.locator('[data-testid="stAlertContentError"]').count() == 0
    assert not errors, errors


@pytest.mark.parametrize("size", list(SIZES))
def test_no_tile_title_is_cut_off(dashboard: str, context: Any, size: str) -> None:
    page, _ = open_page(context, dashboard, "", size)
    tiles = page.locator('[class*="st-key-tile-"]')
    count = tiles.count()
    assert count >= 3 * len(METRICS)            # the organisation and at least two environments
    seen = []
    for i in range(count):
        tile = tiles.nth(i)
        tile.scroll_into_view_if_needed()
        title = tile.locator('[data-testid="stMetricLabel"]').first.inner_text().strip()
        assert title in TITLES, title                       # the full title, word for word
        seen.append(title)
        assert tile.evaluate(CUT_OFF_JS) == [], (size, title)
    assert seen[:len(TITLES)] == TITLES
    # the check finds a cut-off title: squeeze one tile's title onto a line too short for it
    squeezed = tiles.nth(3).evaluate(
        "(t) => { const p = t.querySelector('[data-testid=\"stMetricLabel\"] p');"
        " p.style.setProperty('white-space', 'nowrap', 'important');"
        " p.style.setProperty('overflow', 'hidden', 'important');"
        " p.style.setProperty('text-overflow', 'ellipsis', 'important');"
        " p.style.width = '60px'; p.style.display = 'block'; return true; }")
    assert squeezed and tiles.nth(3).evaluate(CUT_OFF_JS) != []


def test_overview_is_served_at_slash_overview(dashboard: str, context: Any) -> None:
    page, errors = open_page(context, dashboard, "overview", "desktop")
    assert "/overview" in page.url and "since=2026-08-01" in page.url
    assert page.locator('[class*="st-key-tile-"]').count() >= 2 * len(METRICS)
    assert "Page not found" not in shown_text(page)
    assert not errors


def test_pr_breakdown_legend_names_every_phase_for_one_group(dashboard: str, context: Any) -> None:
    page, _ = new_page(context, 1440, 900)
    page.goto(f"{dashboard}/throughput{QUERY}&service=storefront&environment=production")
    wait_drawn(page, ("PR lead time breakdown",))
    chart = page.locator(".js-plotly-plot").filter(has_text="median hours").first
    chart.scroll_into_view_if_needed()
    legend = chart.locator(".legendtext").evaluate_all("els => els.map(e => e.textContent.trim())")
    assert legend == ["coding", "pickup", "review", "deploy"]
    box = chart.bounding_box()
    assert box is not None and box["height"] >= 300             # not a 1-px sliver for one group
