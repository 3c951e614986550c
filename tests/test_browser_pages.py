"""Issue #13 in a real browser: `gitops-dora demo`, then `gitops-dora dashboard`, driven in Debian's
Chromium through Playwright at a desktop (1440x900) and a phone (390x844) viewport.

Every page is screenshot at both sizes into tests/artifacts/ (git-ignored): the viewport as a visitor
first sees it, and the whole page. On every page no "None" text is shown; on the Overview no tile
title (or anything else in a tile) is cut off with an ellipsis or clipped; /overview serves the
Overview; the PR breakdown's legend names every phase.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dashboards.definitions import METRICS
from tests.dashboard_server import Dashboard
from tests.test_browser import DRAWN_JS, next_frames

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
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
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def settle(page: Any) -> None:
    """Until the script run is over, every chart is drawn and no element is still a skeleton."""
    page.wait_for_function("!document.querySelector('[data-testid=\"stStatusWidgetRunningIcon\"]')",
                           timeout=120_000)
    # no element left stale from a previous run (a resize reruns nothing, but a rerun would), then
    # two drawn frames for the charts' last resize before a screenshot (the checks read text and the
    # DOM, not pixels): a fixed 300 ms (800 before) here was 12 s of waiting over 40 settles
    page.wait_for_function(DRAWN_JS, timeout=60_000)
    next_frames(page)


def open_page(browser: Any, url: str, path: str, size: str) -> tuple[Any, Any, list[str]]:
    width, height = SIZES[size]
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{url}/{path}{QUERY}")
    title, last = PAGES[path]
    page.get_by_role("heading", name=title, exact=True).first.wait_for(timeout=120_000)
    if last.startswith("css="):
        page.locator(last[4:]).first.wait_for(timeout=120_000)
    else:
        page.get_by_role("heading", name=last, exact=True).first.wait_for(timeout=120_000)
    settle(page)
    return context, page, errors


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
def test_every_page_screenshot_and_no_none(dashboard: str, browser: Any, path: str, size: str) -> None:
    context, page, errors = open_page(browser, dashboard, path, size)
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
    context.close()


@pytest.mark.parametrize("size", list(SIZES))
def test_no_tile_title_is_cut_off(dashboard: str, browser: Any, size: str) -> None:
    context, page, _ = open_page(browser, dashboard, "", size)
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
    context.close()


def test_overview_is_served_at_slash_overview(dashboard: str, browser: Any) -> None:
    context, page, errors = open_page(browser, dashboard, "overview", "desktop")
    assert "/overview" in page.url and "since=2026-08-01" in page.url
    assert page.locator('[class*="st-key-tile-"]').count() >= 2 * len(METRICS)
    assert "Page not found" not in shown_text(page)
    assert not errors
    context.close()


def test_pr_breakdown_legend_names_every_phase_for_one_group(dashboard: str, browser: Any) -> None:
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.goto(f"{dashboard}/throughput{QUERY}&service=storefront&environment=production")
    page.get_by_role("heading", name="PR lead time breakdown", exact=True).first.wait_for(timeout=120_000)
    settle(page)
    chart = page.locator(".js-plotly-plot").filter(has_text="median hours").first
    chart.scroll_into_view_if_needed()
    legend = chart.locator(".legendtext").evaluate_all("els => els.map(e => e.textContent.trim())")
    assert legend == ["coding", "pickup", "review", "deploy"]
    box = chart.bounding_box()
    assert box is not None and box["height"] >= 300             # not a 1-px sliver for one group
    context.close()
