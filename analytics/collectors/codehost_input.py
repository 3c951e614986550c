"""What a user gives ``collect github`` and ``collect gitlab``: the repository's path and the API's
base URL, checked before the first request.

Why: both end up in request URLs. A path such as ``a/b?x=1`` was sent as ``/repos/a/b?x=1``, and
a base URL the HTTP client cannot use (``ftp://...``, no host) was found out only after the
retries a real outage deserves: one line and exit 2 at once is what a typo needs.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from analytics.errors import SourceError
from analytics.redaction import redact

# GitHub owners and repositories, GitLab groups, subgroups and projects: letters, digits, '-', '_'
# and '.' (both hosts refuse anything else in a path)
_SEGMENT = re.compile(r"[A-Za-z0-9_.-]+")


def repository_path(text: str, *, exactly: int | None, shape: str, example: str) -> str:
    """``text`` as a slash-separated path of ``exactly`` segments (at least two when None), each
    made of the characters the code hosts allow, and neither ``.`` nor ``..``."""
    parts = text.strip().strip("/").split("/")
    count_ok = len(parts) == exactly if exactly is not None else len(parts) >= 2
    if not count_ok or not all(_SEGMENT.fullmatch(p) and p not in (".", "..") for p in parts):
        # the given text last: a name such as '../etc/passwd' followed by ': ' reads as an assignment
        # to the redaction of error lines, which would mask the words after it
        raise SourceError(f"expected {shape} (letters, digits, '-', '_' and '.'), e.g. {example};"
                          f" got {text!r}")
    return "/".join(parts)


def api_base_url(url: str, option: str) -> str:
    """``url`` without a trailing slash, when it is an http(s) URL with a host; ``option`` names
    where it came from (the command line or the config) in the error."""
    parts = urlsplit(url.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise SourceError(f"{option} {redact(url)!r}: not an http:// or https:// URL with a host")
    return url.strip().rstrip("/")
