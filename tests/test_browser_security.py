"""Issue #12 in a real browser: `gitops-dora dashboard` on a store full of hostile names, driven in
Debian's Chromium through Playwright.

ACCEPTANCE: the names show as literal text; no link to evil.example and no image from the "pixel"
host exists anywhere in the page (HTML or the charts' SVG); and NO request reaches the local HTTP
server standing in for the image host, while a control request proves it would have counted one.
With login required and not possible, no page shows data. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import textwrap
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.browser_session import CHROMIUM, new_page, shared_browser, wait_drawn
from tests.child_env import child_env
from tests.dashboard_server import dashboard as dashboard_process
from tests.test_browser import ARTIFACTS, wait_rendered
from tests.test_dashboard_security import (
    LINK_SERVICE,
    build_hostile_store,
    hostile_deployment_id,
    image_env,
)

pytestmark = pytest.mark.browser
WINDOW = "since=2026-02-01&until=2026-04-01"


class PixelServer:
    """A local HTTP server standing in for the image host; ``hits`` lists every path requested."""

    def __init__(self) -> None:
        hits: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                hits.append(self.path)
                body = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;"
                self.send_response(200)
                self.send_header("Content-Type", "image/gif")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.hits = hits
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> PixelServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def pixel() -> Iterator[PixelServer]:
    with PixelServer() as server:
        yield server


@pytest.fixture(scope="module")
def hostile_store(tmp_path_factory: pytest.TempPathFactory, pixel: PixelServer) -> Path:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (scripts/test.sh installs it)")
    return build_hostile_store(tmp_path_factory.mktemp("browser-hostile"), pixel.port)


@contextmanager
def hostile_dashboard(db: Path, root: Path, env_extra: dict[str, str] | None = None) -> Iterator[str]:
    """The dashboard with no gitops-dora or Streamlit setting of the test run and no home folder of
    the user's (no secrets.toml from there), plus ``env_extra``; yields its URL."""
    env = child_env(drop=("GITOPS_DORA_", "STREAMLIT_"))
    env["HOME"] = str(root)
    env.update(env_extra or {})
    # as users run it, warm-up included (the suite's other dashboards turn it off)
    with dashboard_process(db, root, env, warmup=True) as server:
        yield server.url


@pytest.fixture(scope="module")
def dashboard(hostile_store: Path) -> Iterator[str]:
    with hostile_dashboard(hostile_store, hostile_store.parent) as url:
        yield url


@pytest.fixture(scope="module")
def browser(request: pytest.FixtureRequest) -> Any:
    """Debian's Chromium, one per test process (tests/browser_session.py). Each test here makes its
    own context: the hostile test counts every request of its context, from an empty cache."""
    return shared_browser(request)


LINKS_JS = """() => Array.from(document.querySelectorAll('a')).map(a =>
    a.getAttribute('href') || a.getAttribute('xlink:href') ||
    a.getAttributeNS('http://www.w3.org/1999/xlink', 'href') || '')"""
IMAGES_JS = """() => Array.from(document.querySelectorAll('img, image, source, video, audio, iframe')).map(
    e => e.getAttribute('src') || e.getAttribute('srcset') || e.getAttribute('href') ||
    e.getAttributeNS('http://www.w3.org/1999/xlink', 'href') || '')"""


def q(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def test_hostile_names_are_text_and_nothing_is_fetched(
    dashboard: str, browser: Any, pixel: PixelServer
) -> None:
    pixel_host = f"127.0.0.1:{pixel.port}"
    env = image_env(pixel.port)
    pages = [  # url, title, last heading, charts, literals the page must show
        (f"/?{WINDOW}&service={q(LINK_SERVICE)}", "Overview", "GitOps maturity", 1,
         [LINK_SERVICE, f"Environment: {env}", "[target](https://evil.example/target)"]),
        (f"/deployments?{WINDOW}&deployment={q(hostile_deployment_id(pixel.port))}", "Deployments",
         "Drill-down", 1, [f"{LINK_SERVICE} → {env} at"]),
        (f"/deployments?{WINDOW}&deployment={q('[bad](https://evil.example/bad)')}", "Deployments",
         "Drill-down", 1, ["deployment='[bad](https://evil.example/bad)' is not in this view"]),
        (f"/stability?{WINDOW}", "Stability", "Why each failed deployment is failed", 1, []),
        (f"/throughput?{WINDOW}", "Throughput", "PR lead time breakdown", 1, []),
        ("/data-health", "Data health", "All data-quality warnings", 1,
         ["[src](https://evil.example/src)", f"![run](http://{pixel_host}/pixel-run)"]),
        (f"/maturity?team={q('![t](http://' + pixel_host + '/pixel-param)')}", "GitOps maturity",
         "Self-assessment", 0,
         ["[cap](https://evil.example/cap)",
          f"team='![t](http://{pixel_host}/pixel-param)' is not in the data"]),
    ]
    context = browser.new_context()     # its own: every request is counted, from an empty cache
    requested: list[str] = []
    context.on("request", lambda req: requested.append(req.url))
    ARTIFACTS.mkdir(exist_ok=True)
    for n, (path, title, last, charts, literals) in enumerate(pages):
        page, errors = new_page(context, 1500, 1100)    # a new document, a new session each time
        page.goto(dashboard + path)
        wait_rendered(page, title, last, charts)
        # an image in the page is requested as soon as it is in the DOM (searched below), and the
        # script run is over (wait_rendered); what the browser requested and what reached the pixel
        # server are checked after every page, against the control request made after them
        page.screenshot(path=str(ARTIFACTS / f"security-{n}-{title.lower().replace(' ', '-')}.png"),
                        full_page=True)
        text = page.inner_text("body")
        for literal in literals:
            assert literal in text, (path, literal)
        links = page.evaluate(LINKS_JS)
        bad = [h for h in links if "evil.example" in h or pixel_host in h or h.startswith("javascript:")]
        assert not bad, (path, links)
        images = page.evaluate(IMAGES_JS)
        assert not [s for s in images if pixel_host in s or "evil.example" in s], (path, images)
        assert page.locator('[data-testid="stException"]').count() == 0, path
        assert not errors, errors
        if charts:   # legends, ticks and titles in the SVG are text too
            svg = " ".join(page.locator(".js-plotly-plot").all_text_contents())
            assert "<a" not in svg and "<img" not in svg, svg[:400]
            if title == "Overview":
                assert LINK_SERVICE in svg
        if n == 0:  # the sidebar's service picker lists the name as it is (on the Overview, as drawn)
            page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').nth(1).click()
            option = page.get_by_role("option", name=LINK_SERVICE, exact=True)
            option.wait_for(timeout=30_000)
            assert not [h for h in page.evaluate(LINKS_JS) if "evil.example" in h]
            page.screenshot(path=str(ARTIFACTS / "security-service-picker.png"))

    assert pixel.hits == []                        # not one request reached the image host
    # control: the server does count a request when the browser makes one. It is made after every
    # page's requests (the context reports them in order), so none of theirs can arrive after it
    # unseen: the hosts are those requested before it, and the server saw nothing but it
    control = f"http://{pixel_host}/control"
    page, _ = new_page(context, 1500, 1100)
    page.goto(control)
    hosts = {urllib.parse.urlsplit(u).netloc for u in requested[:requested.index(control)]}
    assert pixel_host not in hosts and not [h for h in hosts if "evil.example" in h], hosts
    assert pixel.hits[:1] == ["/control"]         # (the browser may then ask for /favicon.ico)
    assert set(pixel.hits) <= {"/control", "/favicon.ico"}, pixel.hits
    context.close()


@pytest.mark.parametrize("with_auth", [False, True], ids=["no-auth-section", "auth-section"])
def test_login_required_shows_no_data_until_signed_in(
    hostile_store: Path, browser: Any, tmp_path: Path, with_auth: bool
) -> None:
    if with_auth:
        secrets = tmp_path / "auth" / "secrets.toml"
        secrets.parent.mkdir()
        secrets.write_text(textwrap.dedent("""\
            [auth]
            redirect_uri = "http://localhost:8501/oauth2callback"
            cookie_secret = "not-a-real-secret-not-a-real-secret"
            client_id = "gitops-dora"
            client_secret = "not-a-real-secret"
            server_metadata_url = "https://idp.invalid/.well-known/openid-configuration"
            """))
    extra = {"GITOPS_DORA_REQUIRE_LOGIN": "1"}
    if with_auth:
        extra["STREAMLIT_SECRETS_FILES"] = str(tmp_path / "auth" / "secrets.toml")
    with hostile_dashboard(hostile_store, tmp_path, extra) as url:
        context = browser.new_context()
        page, _ = new_page(context, 1200, 800)
        page.goto(f"{url}/deployments?{WINDOW}")
        from dashboards.auth import authlib_installed

        if not with_auth:
            expected = "no [auth] section"
        elif authlib_installed():
            expected = "Sign in to see the dashboard."
        else:
            expected = "Authlib is not installed"
        # the run over first (a dashboard that went away is named there), then the message of this
        # run: once the run is over no more of the page is coming, so a missing message is missing
        wait_drawn(page, timeout=60_000)
        page.get_by_text(expected, exact=False).first.wait_for(timeout=60_000)
        page.screenshot(path=str(ARTIFACTS / f"security-login-{'auth' if with_auth else 'no-auth'}.png"))
        text = page.inner_text("body")
        assert LINK_SERVICE not in text and "Drill-down" not in text and "Deployment window" not in text
        assert page.locator('[data-testid="stDataFrame"]').count() == 0
        assert page.locator('[data-testid="stSidebarNav"]').count() == 0
        context.close()
