"""Collected evidence for several moments at once (a monthly history) is each moment's own."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from analytics.store.connection import open_reader, open_writer
from assessment.collected import collected_findings
from tests.test_assess_evidence import _event, _object, _pr


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def test_each_moment_sees_only_what_happened_before_it(tmp_path: Path) -> None:
    db = tmp_path / "db.ducklake"
    with open_writer(db, source="test") as session:
        session.upsert("reconciler_events", [
            _event("e1", "guestbook", "drift", "2024-05-20T08:00:00+00:00", "DriftDetected"),
            _event("e2", "guestbook", "sync", "2024-05-21T08:00:00+00:00"),
            *(_event(f"s{i}", f"app{i:02d}", "sync", "2024-04-01T08:00:00+00:00") for i in range(22)),
        ])
        session.upsert("reconciler_objects", [
            _object("guestbook", repository="app"),
            *(_object(f"app{i:02d}", repository="app") for i in range(22)),
        ])
        session.upsert("pull_requests", [
            _pr(1, "2024-02-01T12:00:00+00:00", "2024-02-01T11:00:00+00:00"),
            _pr(2, "2024-04-01T12:00:00+00:00", None),
        ])
    march, mid_may, may_20_noon, june = (_moment(t) for t in (
        "2024-03-01T00:00:00+00:00", "2024-05-15T00:00:00+00:00", "2024-05-20T12:00:00+02:00",
        "2024-06-01T00:00:00+00:00"))
    con = open_reader(db, install_views=False)
    try:
        found = collected_findings(con, ["app"], [march, mid_may, may_20_noon, june])
    finally:
        con.close()

    def kinds(moment: datetime) -> list[tuple[str, str]]:
        return [(f.signal, f.detail.split(" (")[0]) for f in found[moment] if "reconciler" not in f.signal]

    # March: no reconciler event yet; the one PR merged in the 90 days before was reviewed.
    assert kinds(march) == [("collected.all-prs-reviewed",
                             "all 1 PRs merged in the 90 days before 2024-03-01 were reviewed before merge")]
    assert [f for f in found[march] if f.signal == "collected.reconciler"] == []
    # Mid-May: the February PR has left the 90-day window; the April one was not reviewed.
    assert kinds(mid_may) == [("collected.unreviewed-prs", "1 of 1 merged PRs had no review before merge")]
    # 10:00 UTC on 20 May: the drift has happened and nothing has corrected it yet.
    assert kinds(may_20_noon)[0] == ("collected.drift-uncorrected", "1 drifts not followed by a sync")
    # June: the next day's sync corrected it.
    assert kinds(june)[0] == ("collected.drift-corrected", "1 of 1 drifts corrected by a later sync")
    # At most the 20 busiest objects per moment, counted up to that moment.
    syncs = {m: [f for f in found[m] if f.signal == "collected.reconciler"] for m in found}
    assert [len(syncs[m]) for m in (march, mid_may, may_20_noon, june)] == [0, 20, 20, 20]
    assert syncs[june][0].object == "argocd Application argocd/app00"
    assert all(f.detail == "1 syncs recorded by argocd" for f in syncs[june])
