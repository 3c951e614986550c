"""Rate-limit waits for the code-host clients, shown as a countdown on stderr.

Both client libraries retry through urllib3's ``Retry``; these subclasses only replace how the
wait is done (visibly instead of a silent ``time.sleep``) and where its length comes from:
``Retry-After`` first, then the reset time of an exhausted quota (GitHub ``X-RateLimit-Reset``,
GitLab ``RateLimit-Reset``), then the library's own backoff (e.g. GitHub's secondary-limit wait).
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any

from github.GithubRetry import GithubRetry
from urllib3.util.retry import Retry

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


class _CountdownSleep:
    """Replaces urllib3's silent sleep; mixed in before the Retry class."""

    def sleep(self, response: Any = None) -> None:
        wait = wait_from_headers(response.headers) if response is not None else None
        reason = f"rate limited (HTTP {response.status})" if response is not None else "retrying"
        if wait is None:
            wait = float(self.get_backoff_time())  # type: ignore[attr-defined]
        if wait > MAX_WAIT_SECONDS:
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


def gitlab_retry(total: int = 8) -> CountdownRetry:
    return CountdownRetry(
        total=total, connect=CONNECT_RETRIES, status_forcelist=[429, 500, 502, 503, 504],
        backoff_factor=0.5, allowed_methods=None, respect_retry_after_header=True, raise_on_status=False,
    )


def github_retry(total: int = 8) -> CountdownGithubRetry:
    secondary = float(os.environ.get(SECONDARY_WAIT_ENV) or 60)
    return CountdownGithubRetry(
        total=total, connect=CONNECT_RETRIES, status_forcelist=[429, 500, 502, 503, 504],
        backoff_factor=0.5, max_rate_limit_wait=MAX_WAIT_SECONDS, secondary_rate_wait=secondary,
    )
