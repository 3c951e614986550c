"""Reconciler revision strings, in every form Argo CD and Flux have used.

Revisions arrive from cluster objects, kubectl dumps, Events and notifications written by many
controller versions. The parser must never raise: an unrecognised form is kept verbatim with the
format ``unknown`` so the data survives and the summary can count it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_HEX = "[0-9a-fA-F]"
_GIT_SHA = re.compile(rf"^(?:{_HEX}{{40}}|{_HEX}{{64}})$")
_SHORT_SHA = re.compile(rf"^{_HEX}{{7,39}}$")
# Flux source-controller >= 0.33: "<ref>@sha1:<sha>" (ref may be a branch, tag or refs/... path).
_REF_AT_SHA1 = re.compile(rf"^(?P<ref>[^@\s]+)@sha1:(?P<sha>{_HEX}{{7,40}})$")
_SHA1 = re.compile(rf"^sha1:(?P<sha>{_HEX}{{7,40}})$")
# Flux before 0.33: "<branch>/<sha>" (the branch itself may contain slashes).
_REF_SLASH_SHA = re.compile(rf"^(?P<ref>[^@\s]+)/(?P<sha>{_HEX}{{40}})$")
# OCI artifacts (OCIRepository) and git SHA-256 repos: "<tag>@sha256:<digest>", or a bare digest.
_TAG_AT_DIGEST = re.compile(rf"^(?P<ref>[^@\s]+)@(?P<digest>sha256:{_HEX}{{64}})$")
_DIGEST = re.compile(rf"^(?P<digest>sha256:{_HEX}{{64}})$")
# Helm chart versions (SemVer 2); Flux appends "+<12 hex>" of the source commit to chart versions
# built from a GitRepository with reconcileStrategy Revision.
_SEMVER = re.compile(r"^v?(?P<version>\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?)(?:\+(?P<build>[0-9A-Za-z.-]+))?$")


@dataclass(frozen=True)
class Revision:
    """A parsed revision; ``sha`` is the (possibly abbreviated) git commit when the form holds one."""

    raw: str
    format: str
    sha: str | None = None
    ref: str | None = None
    digest: str | None = None
    version: str | None = None

    @property
    def key(self) -> str:
        """What identifies the applied state: the commit, else the digest, else the raw text."""
        if self.format.startswith("multi:"):
            return self.raw
        return self.sha or self.digest or self.raw

    @property
    def is_unknown(self) -> bool:
        return self.format == "unknown"


def parse_revision(value: Any) -> Revision:
    """Parse any revision form; never raises (unknown forms come back verbatim, format ``unknown``)."""
    if value is None:
        return Revision(raw="", format="none")
    if isinstance(value, list | tuple):
        return parse_revisions(list(value))
    try:
        raw = value if isinstance(value, str) else str(value)
    except Exception:  # noqa: BLE001 - a hostile __str__ must not crash a collection
        return Revision(raw="", format="unknown")
    text = raw.strip()
    if not text:
        return Revision(raw=raw, format="none")
    if m := _REF_AT_SHA1.match(text):
        return Revision(raw=raw, format="ref@sha1", sha=m["sha"].lower(), ref=m["ref"])
    if m := _SHA1.match(text):
        return Revision(raw=raw, format="sha1", sha=m["sha"].lower())
    if _GIT_SHA.match(text) or _SHORT_SHA.match(text) and not text.isdigit():
        return Revision(raw=raw, format="sha", sha=text.lower())
    if m := _TAG_AT_DIGEST.match(text):
        return Revision(raw=raw, format="oci", ref=m["ref"], digest=m["digest"].lower())
    if m := _DIGEST.match(text):
        return Revision(raw=raw, format="digest", digest=m["digest"].lower())
    if m := _REF_SLASH_SHA.match(text):
        return Revision(raw=raw, format="ref/sha", sha=m["sha"].lower(), ref=m["ref"])
    if m := _SEMVER.match(text):
        build = m["build"]
        sha = build.lower() if build and _SHORT_SHA.match(build) and not build.isdigit() else None
        fmt = "helm_chart+sha" if sha else "helm_chart"
        return Revision(raw=raw, format=fmt, sha=sha, version=m["version"])
    return Revision(raw=raw, format="unknown")


def parse_revisions(values: list[Any]) -> Revision:
    """Argo CD multi-source apps report one revision per source; keep them together, in order.

    The combined key changes when any source changes, which is what makes a new deployment.
    """
    parts = [parse_revision(v) for v in values]
    if not parts:
        return Revision(raw="", format="none")
    if len(parts) == 1:
        return parts[0]
    raw = ",".join(p.raw for p in parts)
    fmt = "multi:" + ",".join(p.format for p in parts)
    if any(p.is_unknown for p in parts):
        return Revision(raw=raw, format="unknown")
    # The first git commit among the sources is the one lead time can follow.
    first_sha = next((p.sha for p in parts if p.sha), None)
    return Revision(raw=raw, format=fmt, sha=first_sha)


def revision_column(rev: Revision) -> str | None:
    """The ``revision`` column value: the commit where known, else the digest, else the raw text."""
    if rev.format == "none":
        return None
    return rev.key
