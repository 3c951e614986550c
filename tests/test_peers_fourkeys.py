"""Cross-check with Four Keys (docs/metrics.md, "Differences from peers").

The fixture is rows of ``four_keys.events_raw`` as Four Keys' GitHub parser stores them and its data
generator produces them (push events with ``before``, ``head_commit`` and ``commits``; a
``deployment_status`` success with ``deployment.sha``; ``issues`` labelled Incident with a
``root cause: <sha>`` line), rebuilt here and imported as the JSON lines BigQuery exports. All UTC.

    05-06  push P0 [c0 08:00]; deploy c0 08:30; push P1 [a 09:00, b 10:00]; push P2 [c 11:00];
           deploy c 12:00; issue #7 13:00 -> 15:00 "root cause: c"
    05-07  push P3 [d 10:30]; deploy d 10:00 (d's clock is ahead);
           issue #8 11:00 -> 12:00, no root cause
    05-08  nothing

Lead time
    Four Keys: a deployment's changes are the commits of the push whose id (head commit) it deployed:
        05-06: c0 30 min, c 60 min -> daily median 45 min;  05-07: d -30 min -> not > 0 -> 0;  05-08: no row
    gitops-dora: the 12:00 deployment shipped a, b, c (3 h, 2 h, 1 h); 08:30 is the baseline; d is negative
        [05-06, 05-07): median 2 h;  [05-07, 05-08): null, excluded_negative_lead_times 1;  05-08: no group
Change failure rate
    Four Keys: 05-06: the 12:00 deployment shipped c, #7's root cause -> 1/2;
               05-07: #8 names no change -> 0/1
    gitops-dora: 05-06 1/2 (#7 by root cause);  05-07: #8 goes to the 10:00 deployment (gap rule) -> 1/1
Restore
    Four Keys: #7 starts at the earlier of its creation (13:00) and its root cause's deployment (12:00): 3 h
    gitops-dora: time to restore 13:00 -> 15:00 = 2 h; the 12:00 deployment's recovery time 3 h
"""

from __future__ import annotations

import hashlib
import json
import statistics
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.stability_env import run_cli_inprocess as run_cli

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "import" / "fourkeys_events_raw.jsonl"


def sha(name: str) -> str:
    return hashlib.sha1(name.encode()).hexdigest()


def t(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


PUSHES = [  # before, [(commit, timestamp)]
    ("0" * 40, [("c0", "2024-05-06 08:00")]),
    (sha("c0"), [("a", "2024-05-06 09:00"), ("b", "2024-05-06 10:00")]),
    (sha("b"), [("c", "2024-05-06 11:00")]),
    (sha("c"), [("d", "2024-05-07 10:30")]),
]
DEPLOYS = [(1, "c0", "2024-05-06 08:30"), (2, "c", "2024-05-06 12:00"), (3, "d", "2024-05-07 10:00")]
ISSUES = [(7, "2024-05-06 13:00", "2024-05-06 15:00", "Checkout fails\nroot cause: " + sha("c")),
          (8, "2024-05-07 11:00", "2024-05-07 12:00", "Search is slow")]
REPO = {"name": "shop", "full_name": "acme/shop"}


def bq_time(text: str) -> str:
    return f"{text}:00 UTC"  # BigQuery's JSON export of a TIMESTAMP


def events() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []

    def row(event_type: str, event_id: str, meta: dict[str, Any], at: str) -> None:
        rows.append({"event_type": event_type, "id": event_id, "metadata": json.dumps(meta),
                     "time_created": bq_time(at), "signature": "sha1=0", "msg_id": str(len(rows) + 1),
                     "source": "github"})

    for before, listed in PUSHES:
        commits = [{"id": sha(n), "timestamp": t(at).isoformat(), "message": n} for n, at in listed]
        row("push", commits[-1]["id"], {"before": before, "head_commit": commits[-1], "commits": commits,
                                        "repository": REPO}, listed[-1][1])
    for did, commit, at in DEPLOYS:
        meta = {"deployment_status": {"id": did, "state": "success", "updated_at": t(at).isoformat()},
                "deployment": {"sha": sha(commit), "environment": "production"}, "repository": REPO}
        row("deployment_status", str(did), meta, at)
    for number, created, closed, body in ISSUES:
        meta = {"issue": {"number": number, "created_at": t(created).isoformat(),
                          "closed_at": t(closed).isoformat(),
                          "labels": [{"name": "Incident"}], "body": body}, "repository": REPO}
        row("issues", f"shop/{number}", meta, closed)
    return rows


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("fourkeys")
    export = tmp / "events_raw.json"
    export.write_text("".join(json.dumps(r) + "\n" for r in events()))
    store = tmp / "store.ducklake"
    out = run_cli(store, "import", str(export))
    assert "imported 10 fourkeys_events_raw rows (5 commits, 3 deployments, 2 incidents)" in out.stderr
    return store


def day(db: Path, since: str, until: str) -> list[dict[str, Any]]:
    out = run_cli(db, "metrics", "--since", since, "--until", until, "--format", "json").stdout
    return list(json.loads(out)["groups"])


# Four Keys' queries, transcribed over the same events (changes.sql, deployments.sql,
# lead_time_for_changes.sql, change_failure_rate.sql, incidents.sql)
def fourkeys_changes() -> dict[str, datetime]:
    return {sha(n): t(at) for _, listed in PUSHES for n, at in listed}


def fourkeys_deployment_changes() -> dict[int, list[str]]:
    push_by_head = {sha(listed[-1][0]): [sha(n) for n, _ in listed] for _, listed in PUSHES}
    return {did: push_by_head[sha(commit)] for did, commit, _ in DEPLOYS}


def fourkeys_daily_lead_minutes() -> dict[str, float]:
    changes, shipped = fourkeys_changes(), fourkeys_deployment_changes()
    per_day: dict[str, list[float | None]] = {}
    for did, _, at in DEPLOYS:
        for change in shipped[did]:
            minutes = int((t(at) - changes[change]).total_seconds() // 60)
            per_day.setdefault(at[:10], []).append(minutes if minutes > 0 else None)
    return {d: statistics.median([v for v in vs if v is not None]) if any(v is not None for v in vs) else 0
            for d, vs in per_day.items()}


def fourkeys_daily_cfr() -> dict[str, float]:
    shipped = fourkeys_deployment_changes()
    causes = {body.rsplit(" ", 1)[-1] for *_, body in ISSUES if "root cause: " in body}
    per_day: dict[str, list[bool]] = {}
    for did, _, at in DEPLOYS:
        per_day.setdefault(at[:10], []).append(any(c in causes for c in shipped[did]))
    return {d: sum(v) / len(v) for d, v in per_day.items()}


def test_lead_time_per_day(db: Path) -> None:
    assert fourkeys_daily_lead_minutes() == {"2024-05-06": 45, "2024-05-07": 0}   # no row for 05-08
    first = day(db, "2024-05-06", "2024-05-07")[0]
    assert first["lead_time_median_hours"] == pytest.approx(2.0)
    assert (first["changes"], first["baseline_changes"]) == (4, 1)
    second = day(db, "2024-05-07", "2024-05-08")[0]
    assert second["lead_time_median_hours"] is None
    assert second["excluded_negative_lead_times"] == 1
    assert day(db, "2024-05-08", "2024-05-09") == []
    rows = json.loads(run_cli(db, "changes", "--deployment", "fourkeys:github:2", "--format", "json").stdout)
    assert {r["sha"]: r["lead_hours"] for r in rows} == {sha("a"): 3.0, sha("b"): 2.0, sha("c"): 1.0}
    assert set(fourkeys_deployment_changes()[2]) == {sha("c")}                   # Four Keys sees only c


def test_change_failure_rate_per_day(db: Path) -> None:
    assert fourkeys_daily_cfr() == {"2024-05-06": 0.5, "2024-05-07": 0.0}
    assert day(db, "2024-05-06", "2024-05-07")[0]["change_failure_rate"] == pytest.approx(0.5)
    second = day(db, "2024-05-07", "2024-05-08")[0]
    assert (second["failed_deployments"], second["deployment_attempts"]) == (1, 1)
    listed = {r["id"]: (r["attribution_rule"], r["deployment_id"])
              for r in json.loads(run_cli(db, "incidents", "--format", "json").stdout)}
    assert listed == {"shop#7": ("root_cause", "fourkeys:github:2"), "shop#8": ("gap", "fourkeys:github:3")}


def test_restore_time_starts_at_the_incident_not_the_deployment(db: Path) -> None:
    number, created, closed, _ = ISSUES[0]
    root_deployed = t(DEPLOYS[1][2])
    fourkeys_start = min(root_deployed, t(created))                  # incidents.sql: MIN(root, issue)
    assert (t(closed) - fourkeys_start).total_seconds() / 3600 == 3.0
    first = day(db, "2024-05-06", "2024-05-07")[0]
    assert first["time_to_restore_median_hours"] == pytest.approx(2.0)
    assert first["failed_deployment_recovery_median_hours"] == pytest.approx(3.0)


def test_the_example_export_imports(tmp_path: Path) -> None:
    out = run_cli(tmp_path / "store.ducklake", "import", str(EXAMPLE))
    assert "(5 commits, 3 deployments, 2 incidents)" in out.stderr
    rows = json.loads(run_cli(tmp_path / "store.ducklake", "changes", "--format", "json").stdout)
    assert sorted((r["outcome"], r["lead_hours"]) for r in rows) == [
        ("baseline", 0.5), ("counted", 1.0), ("counted", 2.0), ("counted", 3.0), ("negative", -0.5)]
