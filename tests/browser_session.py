"""Debian's Chromium for the browser test modules (test_browser, test_browser_pages,
test_browser_security): one Playwright driver, one Chromium and one browser context per test
process, and the wait for a Streamlit page to be drawn.

Why one context (issue #16, docs/performance.md "Browser tests, session 11"): a new browser context
starts with an empty HTTP cache, so every test that made its own fetched the dashboard's script
bundles again (several MB, served by the dashboard's Python server) and Chromium compiled them
again; Streamlit names them by hash and serves them ``immutable``, so one context loads them once.
Every test still loads its pages itself: each load is a new document, i.e. a new Streamlit session
(its own script run, widgets and query parameters), in the context's one tab (:func:`new_page`). A
test that must not share a cache (the security test counts the requests the browser makes) takes
its own context from :func:`shared_browser`.

Why the wait is one condition polled in the page: Playwright's ``locator.wait_for`` polls from
the driver, after 20, 50, 100, 100 ms and then every 500 ms, so each page load waited on
average a quarter of a second more than it needed for each heading that took longer than a
second to come. :func:`wait_drawn` polls one predicate on every animation frame instead, and
finds the headings itself: ``get_by_role`` computes the role and accessible name of every element of
the page, 0.1-0.3 s per heading on these pages.
"""

from __future__ import annotations

import json
import os
import re
import time
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]

# The page is drawn: a visible heading (h1-h6, the heading role) with each text of ``headings``
# (whitespace normalised, as Playwright's exact accessible-name match: a Streamlit heading is named
# by the span holding its text), the first element of each CSS selector of ``selectors`` visible
# (a box, not visibility:hidden, as Playwright's "visible"), at least ``charts`` Plotly charts with
# their SVG, and the script run is over: the app's root says so (``data-test-script-state``, which
# Streamlit sets for its own end-to-end tests: "initial" before the first run, then "running" and
# "notRunning"), no running indicator, no element left stale from an earlier run (data-stale), no
# skeleton, every Plotly chart drawn. One predicate, so every condition holds at the same moment.
# (The running indicator alone proved nothing: this dashboard draws no status widget, so it was
# never there, and a page counted as drawn as soon as its last heading was, however much of the
# script was still to run; an error raised 1.5 s after the Deployments page's last heading passed
# test_browser_pages that way.)
DRAWN_JS = """([headings, selectors, charts]) => {
  const norm = s => (s || '').replace(/\\s+/g, ' ').trim();
  const visible = e => e !== null && e.checkVisibility({visibilityProperty: true})
    && e.getBoundingClientRect().width > 0 && e.getBoundingClientRect().height > 0;
  const shown = new Set([...document.querySelectorAll('h1, h2, h3, h4, h5, h6')].filter(visible).map(
    h => norm(h.textContent)));
  return headings.every(h => shown.has(h))
    && selectors.every(s => visible(document.querySelector(s)))
    && document.querySelectorAll('.js-plotly-plot .main-svg').length >= charts
    && document.querySelector('[data-testid="stApp"]')?.dataset.testScriptState === 'notRunning'
    && !document.querySelector('[data-testid="stStatusWidgetRunningIcon"]')
    && !document.querySelector('[data-stale="true"], [data-testid="stSkeleton"]')
    && [...document.querySelectorAll('.js-plotly-plot')].every(p => p.querySelector('.main-svg'));
}"""

_SHARED: dict[str, Any] = {}
_TABS: dict[int, tuple[Any, Any]] = {}    # id(context) -> its tab, the tab's pageerror listener


def shared_browser(request: pytest.FixtureRequest) -> Any:
    """Debian's Chromium, launched by the first browser module of this test process and closed after
    the last test of a run of browser modules (:func:`close_unless_next_uses_it`; test_browser and
    test_browser_pages run on the same worker one after the other, see tests/xdist_order.py
    ``GROUPS``), or when the session ends. Skips where Debian's chromium is not installed."""
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (scripts/test.sh installs it)")
    if "browser" not in _SHARED:
        from playwright.sync_api import sync_playwright

        driver = sync_playwright().start()
        try:
            _SHARED["browser"] = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        except BaseException:
            driver.stop()
            raise
        _SHARED["driver"] = driver
        request.session.addfinalizer(_close)
    return _SHARED["browser"]


def shared_context(request: pytest.FixtureRequest) -> Any:
    """The process's one browser context on :func:`shared_browser` (its HTTP cache keeps the
    dashboard's script bundles between tests). Tests open their own pages in it."""
    browser = shared_browser(request)
    if "context" not in _SHARED:
        context = browser.new_context()
        # every page load starts with the empty storage of a new context (Streamlit keeps the
        # sidebar's width and navigation state there); new_page clears the cookies
        context.add_init_script("window.localStorage.clear(); window.sessionStorage.clear();")
        _SHARED["context"] = context
    return _SHARED["context"]


# the modules that use the process's browser (the driver's event loop runs in the test thread while
# it is started: a later module's asyncio.run() there fails with "cannot be called from a running
# event loop", so it is stopped as soon as the next test is not one of these)
BROWSER_MODULES = ("test_browser.py", "test_browser_pages.py", "test_browser_security.py")


def close_unless_next_uses_it(nextitem: pytest.Item | None) -> None:
    """Stop the browser and its driver after a test when the next test of this process (pytest's
    ``nextitem``; None when not known yet) is not in a browser module."""
    if "driver" not in _SHARED:
        return
    if nextitem is not None and Path(str(nextitem.path)).name in BROWSER_MODULES:
        return
    _close()


def _close() -> None:
    _TABS.clear()
    context, browser, driver = (_SHARED.pop(k, None) for k in ("context", "browser", "driver"))
    try:
        if context is not None:
            context.close()
        if browser is not None:
            browser.close()
    finally:
        if driver is not None:
            driver.stop()


def new_page(context: Any, width: int, height: int) -> tuple[Any, list[str]]:
    """The tab of ``context`` for the next page load, made ``width`` x ``height``, no cookie left
    from an earlier page, and the list its uncaught JavaScript errors are appended to from now on.

    One tab per context, reused by every test: each test's ``goto`` is still a new document, hence
    a new Streamlit session with its own script run (and empty storage, the context's init script),
    but the tab keeps its renderer process, where the dashboard's scripts are already compiled. A
    new tab per page load was a new renderer that compiled them again: 3.8 against 1.9 CPU-s of
    Chromium per page load, and about twice the wall time (docs/performance.md)."""
    page, listener = _TABS.get(id(context), (None, None))
    if page is None or page.is_closed():
        page = context.new_page()
    elif listener is not None:
        page.remove_listener("pageerror", listener)
    context.clear_cookies()
    page.set_viewport_size({"width": width, "height": height})
    errors: list[str] = []

    def on_error(exc: Any) -> None:
        errors.append(str(exc))

    page.on("pageerror", on_error)
    _TABS[id(context)] = (page, on_error)
    return page, errors


# The same conditions as DRAWN_JS, each reported on its own, with what the page shows instead: for
# the error of a wait that timed out (:func:`wait_drawn`). Always truthy (an object), so it can be
# read with ``wait_for_function``, which, unlike ``evaluate``, takes a timeout (a hung renderer).
UNMET_JS = """([headings, selectors, charts]) => {
  const norm = s => (s || '').replace(/\\s+/g, ' ').trim();
  const visible = e => e !== null && e.checkVisibility({visibilityProperty: true})
    && e.getBoundingClientRect().width > 0 && e.getBoundingClientRect().height > 0;
  const all = [...document.querySelectorAll('h1, h2, h3, h4, h5, h6')];
  const shown = new Set(all.filter(visible).map(h => norm(h.textContent)));
  const app = document.querySelector('[data-testid="stApp"]');
  const plots = [...document.querySelectorAll('.js-plotly-plot')];
  const stale = [...document.querySelectorAll('[data-stale="true"]')];
  const unmet = [];
  for (const h of headings) if (!shown.has(h)) unmet.push(`heading ${JSON.stringify(h)} not visible`);
  for (const s of selectors) if (!visible(document.querySelector(s))) unmet.push(`selector ${s} not visible`);
  const svgs = document.querySelectorAll('.js-plotly-plot .main-svg').length;
  if (svgs < charts) unmet.push(`${svgs} drawn chart SVGs, want ${charts}`);
  const state = app ? app.dataset.testScriptState : '(no stApp element)';
  if (state !== 'notRunning') unmet.push(`script state ${JSON.stringify(state)}, want "notRunning"`);
  const running = document.querySelector('[data-testid="stStatusWidgetRunningIcon"]');
  if (running) unmet.push('running indicator shown');
  if (stale.length) unmet.push(`${stale.length} stale elements`);
  const skeletons = document.querySelectorAll('[data-testid="stSkeleton"]').length;
  if (skeletons) unmet.push(`${skeletons} skeletons`);
  const undrawn = plots.filter(p => !p.querySelector('.main-svg')).length;
  if (undrawn) unmet.push(`${undrawn} Plotly charts without their SVG`);
  const connection = app ? (app.dataset.testConnectionState || null) : null;
  if (app && connection !== 'CONNECTED') unmet.push(`connection to the server ${connection} (not CONNECTED)`);
  return {
    unmet, url: location.href, readyState: document.readyState, scriptState: state, connection,
    visibleHeadings: [...shown], hiddenHeadings: all.filter(h => !visible(h)).map(h => norm(h.textContent)),
    staleTestIds: stale.map(e => e.dataset.testid || e.tagName).slice(0, 20),
    exceptions: [...document.querySelectorAll(
      '[data-testid="stException"], [data-testid="stAlertContentError"]')].map(
      e => norm(e.innerText).slice(0, 500)),
    statusWidget: norm(document.querySelector('[data-testid="stStatusWidget"]')?.innerText),
    dialogs: [...document.querySelectorAll('[role="dialog"], [role="alert"]')].map(
      e => norm(e.innerText).slice(0, 300)),
    html: document.documentElement.outerHTML,
  };
}"""
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


# DRAWN_JS, or "lost" when the page is not connected to its server (Streamlit's connection state on
# the app root) although it was before, or 5 s after the document started (a server that stopped
# closes the page's websocket, and the page goes back to pinging it; every load is unconnected for its
# first tenths of a second): :func:`wait_drawn` then asks the server whether it is still there.
DRAWN_OR_LOST_JS = """(arg) => {
  if ((DRAWN_JS)(arg)) return 'drawn';
  const connection = document.querySelector('[data-testid="stApp"]')?.dataset.testConnectionState;
  if (connection === 'CONNECTED') window.__testsWereConnected = true;
  const due = window.__testsWereConnected === true || performance.now() > 5000;
  return due && connection !== 'CONNECTED' ? 'lost' : false;
}""".replace("DRAWN_JS", DRAWN_JS)
CONNECTED_JS = """() =>
  document.querySelector('[data-testid="stApp"]')?.dataset.testConnectionState === 'CONNECTED'"""


class PageNotDrawn(AssertionError):
    """A page load that did not reach :data:`DRAWN_JS` in time, or whose dashboard went away; the
    message names the conditions still unmet, the URL and whether the server still answers, and
    where the screenshot and the page's HTML and state were saved."""


def wait_drawn(page: Any, headings: Sequence[str] = (), selectors: Sequence[str] = (), charts: int = 0,
               timeout: float = 120_000) -> None:
    """Until ``page`` shows every heading of ``headings`` (exact text) and an element for each CSS
    selector of ``selectors``, at least ``charts`` drawn Plotly charts, and its script run is over
    with every chart drawn (:data:`DRAWN_JS`); then until two more frames are drawn
    (:func:`next_frames`), for a screenshot.

    Raises :class:`PageNotDrawn`, saying which conditions were still unmet (:func:`report_not_drawn`),
    after ``timeout`` ms, or as soon as the page is not connected (:data:`DRAWN_OR_LOST_JS`) and its
    server no longer answers its health check: a dashboard that is gone cannot finish the page (a page
    not connected to a server that is still there is waited for: Streamlit connects again)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    arg = [list(headings), list(selectors), charts]
    start = time.monotonic()
    deadline = start + timeout / 1000
    try:
        while page.wait_for_function(DRAWN_OR_LOST_JS, arg=arg,
                                     timeout=_left(deadline)).json_value() != "drawn":
            answers, health = server_health(page.url)
            if not answers:
                raise PageNotDrawn(report_not_drawn(page, arg, time.monotonic() - start,
                                                    f"the page lost its server: {health}"))
            page.wait_for_function(CONNECTED_JS, timeout=_left(deadline))
    except PlaywrightTimeout as exc:
        raise PageNotDrawn(report_not_drawn(page, arg, time.monotonic() - start)) from exc
    next_frames(page)


def _left(deadline: float) -> float:
    """Milliseconds until ``deadline`` (time.monotonic), at least 1 (0 is no timeout to Playwright)."""
    return max(1.0, (deadline - time.monotonic()) * 1000)


def report_not_drawn(page: Any, arg: list[Any], waited: float, why: str = "") -> str:
    """What the page shows after a wait for ``arg`` (:data:`DRAWN_JS`'s argument) failed after
    ``waited`` seconds (``why``, if not the timeout): the unmet conditions, URL, script and connection
    state, whether the server answers, saved with a screenshot and the page's HTML under
    test-artifacts/ (``not-drawn-<test>-<n>.{png,html,json}``); returns the error message."""
    test = os.environ.get("PYTEST_CURRENT_TEST", "unknown").split(" ")[0]
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", test.split("::", 1)[-1])[:120]
    ARTIFACTS.mkdir(exist_ok=True)
    n = 0
    while (ARTIFACTS / f"not-drawn-{stem}-{n}.json").exists():
        n += 1
    base = ARTIFACTS / f"not-drawn-{stem}-{n}"
    try:
        state = page.wait_for_function(UNMET_JS, arg=arg, timeout=15_000).json_value()
    except Exception as exc:  # noqa: BLE001 - a page that cannot even answer is the finding
        state = {"unmet": [f"the page did not answer: {exc!r}"], "url": page.url, "html": ""}
    state["server"] = server_health(state.get("url") or page.url)[1]
    state["waited_s"] = round(waited, 1)
    base.with_suffix(".html").write_text(state.pop("html", "") or "")
    try:
        page.screenshot(path=str(base.with_suffix(".png")), full_page=True, timeout=15_000)
    except Exception as exc:  # noqa: BLE001 - the report is still written without the picture
        state["screenshot"] = repr(exc)
    base.with_suffix(".json").write_text(json.dumps(state, indent=1))
    unmet = "; ".join(state["unmet"]) or "every condition met now"
    return (f"page not drawn after {waited:.1f} s{': ' + why if why else ''}; unmet: {unmet}"
            f" (url {state['url']}, server {state['server']}, script state {state.get('scriptState')!r},"
            f" connection {state.get('connection')!r}, visible headings"
            f" {state.get('visibleHeadings')}, exceptions {state.get('exceptions')});"
            f" screenshot, HTML and state: {base}.{{png,html,json}}")


def next_frames(page: Any) -> None:
    """Until the browser has drawn two more frames: whatever the last run changed (a chart's layout
    after a resize) is laid out and painted before a screenshot, without a fixed wait."""
    page.evaluate("() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))")


def server_health(url: str) -> tuple[bool, str]:
    """Whether the Streamlit server of ``url`` still answers its health check, and what it said: a
    page whose server has gone (stopped from outside, crashed) never finishes its run, and the
    browser only shows "Connecting"."""
    parts = urllib.parse.urlsplit(url)
    health = f"{parts.scheme}://{parts.netloc}/_stcore/health"
    try:
        with urllib.request.urlopen(health, timeout=5) as resp:
            return True, f"{health} answers {resp.status} {resp.read(20)!r}"
    except OSError as exc:
        return False, f"{health} does NOT answer ({exc}): the dashboard is gone"
