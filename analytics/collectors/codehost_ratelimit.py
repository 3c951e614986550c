"""Rate-limit waits for the code-host clients, shown as a countdown on stderr.

Both client libraries retry through urllib3's ``Retry``; these subclasses only replace how the
wait is done (visibly instead of a silent ``time.sleep``) and where its length comes from:
``Retry-After`` first, then the reset time of an exhausted quota (GitHub ``X-RateLimit-Reset``,
GitLab ``RateLimit-Reset``), then the library's own backoff (e.g. GitHub's secondary-limit wait).

:class:`RunLimits` bounds one collection run against a server that misbehaves: the socket timeout,
the time and size of one response, the pages of one list (and a next-page link that comes back to a
page already read), one wait and all waits together. :class:`GuardedAdapter` applies them to every
response of either client library; a limit passed is a :class:`LimitError` (one line, exit 2).
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from github.GithubRetry import GithubRetry
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from analytics.errors import SourceError

MAX_WAIT_SECONDS = 3600.0
# GitHub asks to wait "at least a minute" after a secondary rate limit that has no Retry-After;
# the variable shortens it for tests and lets operators wait longer.
SECONDARY_WAIT_ENV = "GITOPS_DORA_SECONDARY_RATE_WAIT"


def countdown(seconds: float, reason: str) -> None:
    """Wait ``seconds``, counting down on stderr (one line per 10 s when stderr is not a terminal)."""
    end = time.monotonic() + seconds
    tty = sys.stderr.isatty()
    print(f"{reason}: waiting {math.ceil(seconds)}s", file=sys.stderr, flush=True)
    last_shown = math.ceil(seconds)
    while True:
        left = end - time.monotonic()
        if left <= 0:
            break
        time.sleep(min(1.0, left))
        shown = max(0, math.ceil(end - time.monotonic()))
        if tty:
            print(f"\r  {shown:>5}s left ", end="", file=sys.stderr, flush=True)
        elif shown and shown // 10 != last_shown // 10:
            print(f"  {shown}s left", file=sys.stderr, flush=True)
        last_shown = shown
    if tty:
        print("\r  resuming          ", file=sys.stderr, flush=True)
    else:
        print("  resuming", file=sys.stderr, flush=True)


def wait_from_headers(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds the server asked us to wait, or None when it did not say."""
    now = time.time() if now is None else now
    retry_after = headers.get("Retry-After") or headers.get("retry-after")
    if retry_after:
        text = retry_after.strip()
        if text.replace(".", "", 1).isdigit():
            return float(text)
        try:
            return max(0.0, parsedate_to_datetime(text).timestamp() - now)
        except (TypeError, ValueError):
            pass
    for remaining_key, reset_key in (("X-RateLimit-Remaining", "X-RateLimit-Reset"),
                                     ("RateLimit-Remaining", "RateLimit-Reset")):
        remaining = headers.get(remaining_key) or headers.get(remaining_key.lower())
        reset = headers.get(reset_key) or headers.get(reset_key.lower())
        if remaining is not None and remaining.strip() == "0" and reset and reset.strip().isdigit():
            return max(0.0, float(reset) - now) + 1.0  # +1: the reset second itself is not over yet
    return None


# What bounds one collection's HTTP traffic, each with the variable that changes it (seconds or
# bytes; docs/codehosts.md, "Limits of a collection", says why each default):
TIMEOUT_ENV = "GITOPS_DORA_CODEHOST_TIMEOUT"              # connect, and each wait for more bytes
RESPONSE_SECONDS_ENV = "GITOPS_DORA_CODEHOST_RESPONSE_SECONDS"  # one whole response, head to last byte
MAX_BODY_ENV = "GITOPS_DORA_CODEHOST_MAX_BODY"            # one response body, decompressed
MAX_PAGES_ENV = "GITOPS_DORA_CODEHOST_MAX_PAGES"          # pages of one list
MAX_WAIT_ENV = "GITOPS_DORA_CODEHOST_MAX_WAIT"            # one rate-limit or retry wait
MAX_TOTAL_WAIT_ENV = "GITOPS_DORA_CODEHOST_MAX_TOTAL_WAIT"  # all waits of one run together


class LimitError(SourceError):
    """A collection passed one of its limits (or the server misbehaved in a way that would make it
    loop or wait for ever); the collectors prefix the repository and the server."""


def _setting(name: str, default: float) -> float:
    text = (os.environ.get(name) or "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not math.isfinite(value) or value <= 0:
        raise SourceError(f"{name}={text!r}: expected a positive number")
    return value


def _page_key(url: str) -> str:
    """A page's identity: path and sorted query (scheme, host and port are spelled differently by
    the clients and the servers' Link headers)."""
    parts = urlsplit(url)
    return f"{parts.path}?{urlencode(sorted(parse_qsl(parts.query, keep_blank_values=True)))}"


@dataclass
class RunLimits:
    """The limits of one collection run, and what it has used of them (waits, the pages read)."""

    timeout: float = 30.0
    response_seconds: float = 300.0
    max_body: int = 64 * 1024 * 1024
    max_pages: int = 10_000
    max_wait: float = MAX_WAIT_SECONDS
    max_total_wait: float = 6 * MAX_WAIT_SECONDS
    waited: float = 0.0
    read: set[str] = field(default_factory=set)       # pages requested
    linked: set[str] = field(default_factory=set)     # pages named by a next link
    pages: dict[str, int] = field(default_factory=dict)  # pages of each list, by its path

    @classmethod
    def from_env(cls) -> RunLimits:
        d = cls()
        return cls(
            timeout=_setting(TIMEOUT_ENV, d.timeout),
            response_seconds=_setting(RESPONSE_SECONDS_ENV, d.response_seconds),
            max_body=int(_setting(MAX_BODY_ENV, d.max_body)),
            max_pages=int(_setting(MAX_PAGES_ENV, d.max_pages)),
            max_wait=_setting(MAX_WAIT_ENV, d.max_wait),
            max_total_wait=_setting(MAX_TOTAL_WAIT_ENV, d.max_total_wait),
        )

    def spend(self, wait: float, reason: str) -> None:
        """Account for a wait before it starts; one that passes a limit ends the run now, instead of
        after the wait (the answer after a capped wait would be the same refusal)."""
        if wait > self.max_wait:
            raise LimitError(f"{reason}: the server asks to wait {math.ceil(wait)}s, more than the"
                             f" {_secs(self.max_wait)} limit ({MAX_WAIT_ENV}); run again later")
        if self.waited + wait > self.max_total_wait:
            raise LimitError(f"{reason}: waited {math.ceil(self.waited)}s already in this run; another"
                             f" {math.ceil(wait)}s would pass the {_secs(self.max_total_wait)} limit"
                             f" ({MAX_TOTAL_WAIT_ENV}); run again later")
        self.waited += wait

    def read_body(self, response: Any) -> None:
        """Read a streamed ``requests`` response into ``response._content``, refusing a body over
        ``max_body`` (a declared length before a byte is read) and one still arriving after
        ``response_seconds`` (a server that trickles bytes never trips the socket timeout)."""
        from requests.exceptions import ConnectionError as RequestsConnectionError
        from urllib3.exceptions import HTTPError as Urllib3Error

        declared = str(response.headers.get("Content-Length") or "").strip()
        if declared.isdigit() and int(declared) > self.max_body:
            raise LimitError(f"a response of {declared} bytes is larger than the {self.max_body}-byte"
                             f" limit ({MAX_BODY_ENV})")
        deadline = time.monotonic() + self.response_seconds
        body = bytearray()
        try:
            while True:
                # read1: what has arrived (a read of a fixed size would wait for all of it)
                chunk = response.raw.read1(64 * 1024, decode_content=True)
                if not chunk:
                    break
                body += chunk
                if len(body) > self.max_body:
                    raise LimitError(f"a response body passed the {self.max_body}-byte limit"
                                     f" ({MAX_BODY_ENV})")
                if time.monotonic() > deadline:
                    raise LimitError(f"a response was still arriving after {_secs(self.response_seconds)}"
                                     f" ({RESPONSE_SECONDS_ENV})")
        except Urllib3Error as exc:
            if "timed out" in str(exc).lower():
                raise LimitError(f"the server stopped sending a response for {_secs(self.timeout)}"
                                 f" ({TIMEOUT_ENV})") from None
            raise RequestsConnectionError(str(exc)) from None
        response._content = bytes(body)
        response._content_consumed = True

    def follow(self, url: str, response: Any) -> None:
        """Record a page read; a ``rel="next"`` link to a page already read or already linked to (the
        server would be paged in a circle for ever: GitHub's page links, GitLab's page and keyset
        links, which python-gitlab follows adding its own parameters), or a list's page past
        ``max_pages``, ends the run."""
        self.read.add(_page_key(url))
        link = (response.links.get("next") or {}).get("url")
        if not link:
            return
        following = _page_key(str(link))
        if following in self.read or following in self.linked:
            raise LimitError("the server's next-page link points back to a page already read;"
                             " stopping instead of paging in a circle")
        self.linked.add(following)
        path = urlsplit(url).path
        self.pages[path] = self.pages.get(path, 1) + 1
        if self.pages[path] > self.max_pages:
            raise LimitError(f"a list has more than {self.max_pages} pages ({MAX_PAGES_ENV})")


def _secs(seconds: float) -> str:
    return f"{seconds:g}s"


class GuardedAdapter(HTTPAdapter):
    """requests' adapter with a run's limits: the body is read here (streamed, bounded in size and
    time) and the page links are checked, whatever the client library does with the response."""

    def __init__(self, limits: RunLimits, **kwargs: Any) -> None:
        self.limits = limits
        super().__init__(**kwargs)

    def send(self, request: Any, stream: bool = False, timeout: Any = None, verify: Any = True,
             cert: Any = None, proxies: Any = None) -> Any:
        # the run's timeout, not the client library's (PyGithub takes whole seconds only)
        response = super().send(request, stream=True, timeout=self.limits.timeout,
                                verify=verify, cert=cert, proxies=proxies)
        try:
            self.limits.read_body(response)
            self.limits.follow(str(request.url), response)
        except BaseException:
            response.close()
            raise
        return response


class _CountdownSleep:
    """Replaces urllib3's silent sleep; mixed in before the Retry class. ``limits`` (set on a
    subclass made per run, since urllib3 copies the Retry on every attempt) bounds the waits."""

    limits: RunLimits | None = None

    def sleep(self, response: Any = None) -> None:
        wait = wait_from_headers(response.headers) if response is not None else None
        if response is None:
            reason = "retrying"
        elif response.status in (403, 429):
            reason = f"rate limited (HTTP {response.status})"
        else:
            reason = f"server error (HTTP {response.status})"
        if wait is None:
            wait = float(self.get_backoff_time())  # type: ignore[attr-defined]
        if self.limits is not None:
            self.limits.spend(wait, reason)
        elif wait > MAX_WAIT_SECONDS:
            wait = MAX_WAIT_SECONDS
        if wait > 0:
            countdown(wait, reason)


class CountdownRetry(_CountdownSleep, Retry):
    """For python-gitlab's requests session: retries 429 and 5xx, honouring the headers above."""


class CountdownGithubRetry(_CountdownSleep, GithubRetry):
    """PyGithub's retry (which recognises primary and secondary limits) with a visible wait."""


# A server that cannot be reached at all (connection refused, a host name that does not resolve)
# is tried this many more times (at once, then after 1 and 2 s): a blip passes in that time, and a
# wrong --base-url fails within seconds instead of after the two minutes the whole backoff of
# ``total`` takes (answers with 429 and 5xx keep every retry and their waits).
CONNECT_RETRIES = 3


def gitlab_retry(total: int = 8, limits: RunLimits | None = None) -> CountdownRetry:
    cls = type("RunCountdownRetry", (CountdownRetry,), {"limits": limits}) if limits else CountdownRetry
    return cls(
        total=total, connect=CONNECT_RETRIES, read=CONNECT_RETRIES,
        status_forcelist=[429, 500, 502, 503, 504],
        backoff_factor=0.5, allowed_methods=None, respect_retry_after_header=True, raise_on_status=False,
    )


def github_retry(total: int = 8, limits: RunLimits | None = None) -> CountdownGithubRetry:
    secondary = float(os.environ.get(SECONDARY_WAIT_ENV) or 60)
    cls = (type("RunCountdownGithubRetry", (CountdownGithubRetry,), {"limits": limits}) if limits
           else CountdownGithubRetry)
    return cls(
        total=total, connect=CONNECT_RETRIES, read=CONNECT_RETRIES,
        status_forcelist=[429, 500, 502, 503, 504], backoff_factor=0.5,
        max_rate_limit_wait=limits.max_wait if limits else MAX_WAIT_SECONDS, secondary_rate_wait=secondary,
    )
