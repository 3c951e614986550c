"""Revision parsing: every form Argo CD and Flux have used; never raises."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from analytics.deployments.revisions import parse_revision, parse_revisions, revision_column

SHA = "0cc9a8446c95b7d6a9f1f2e3d4c5b6a798877665"  # 40 hex
DIGEST = "sha256:" + "ab" * 32


def test_flux_ref_at_sha1() -> None:
    rev = parse_revision(f"main@sha1:{SHA}")
    assert (rev.format, rev.ref, rev.sha) == ("ref@sha1", "main", SHA)
    tag = parse_revision(f"refs/tags/v1.2.0@sha1:{SHA}")
    assert (tag.ref, tag.sha) == ("refs/tags/v1.2.0", SHA)


def test_sha1_prefix_and_bare_sha_lowercased() -> None:
    assert parse_revision(f"sha1:{SHA}").sha == SHA
    assert parse_revision(SHA.upper()).sha == SHA
    short = parse_revision("1a2b3c4")
    assert (short.format, short.sha) == ("sha", "1a2b3c4")


def test_old_flux_branch_slash_sha() -> None:
    rev = parse_revision(f"feature/login/{SHA}")
    assert (rev.format, rev.ref, rev.sha) == ("ref/sha", "feature/login", SHA)


def test_oci_tag_at_digest_and_bare_digest() -> None:
    rev = parse_revision(f"6.6.1@{DIGEST}")
    assert (rev.format, rev.ref, rev.digest, rev.sha) == ("oci", "6.6.1", DIGEST, None)
    assert parse_revision(DIGEST).format == "digest"
    assert revision_column(rev) == DIGEST


def test_helm_chart_versions() -> None:
    built = parse_revision("6.6.1+0cc9a8446c95")
    # Flux appends the first 12 hex of the source commit to charts built from git.
    assert (built.format, built.version, built.sha) == ("helm_chart+sha", "6.6.1", "0cc9a8446c95")
    plain = parse_revision("6.6.0")
    assert (plain.format, plain.version, plain.sha) == ("helm_chart", "6.6.0", None)
    assert revision_column(plain) == "6.6.0"
    # Numeric build metadata is not a commit.
    assert parse_revision("1.0.0+20240101").sha is None


def test_unknown_forms_kept_verbatim() -> None:
    for raw in ("HEAD", "release candidate", "main@md5:abc", "12345"):
        rev = parse_revision(raw)
        assert rev.format == "unknown" and rev.raw == raw
        assert revision_column(rev) == raw
    assert parse_revision(None).format == "none"
    assert revision_column(parse_revision("")) is None


def test_multi_source_revisions_keep_order_and_change_key() -> None:
    a = parse_revisions([SHA, "6.6.1"])
    b = parse_revisions([SHA, "6.6.2"])
    assert a.format == "multi:sha,helm_chart" and a.sha == SHA
    assert a.key != b.key  # a chart bump alone is a new desired state


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(),
        st.binary().map(lambda b: b.decode("latin-1")),
        st.integers(),
        st.none(),
        st.lists(st.text(max_size=50), max_size=4),
    )
)
def test_never_raises_and_unknown_keeps_raw(value: object) -> None:
    rev = parse_revision(value)
    assert isinstance(rev.format, str) and rev.format
    if rev.format == "unknown" and isinstance(value, str):
        assert rev.raw == value


@settings(max_examples=200, deadline=None)
@given(
    st.text(alphabet="0123456789abcdef", min_size=40, max_size=40),
    st.from_regex(r"[a-z][a-z0-9/._-]{0,20}", fullmatch=True),
)
def test_any_branch_and_sha_round_trips(sha: str, branch: str) -> None:
    rev = parse_revision(f"{branch}@sha1:{sha}")
    assert rev.sha == sha and rev.ref == branch
