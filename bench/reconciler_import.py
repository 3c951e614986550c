"""Benchmark: importing a kubectl dump of Argo CD Applications into reconciler events and deployments.

Builds a ``kubectl get applications -A -o json`` dump of 200 Applications with 50 history entries
each (10,000 syncs; every third entry a re-sync of the running revision) and times, best of 3,
each into a fresh database:

* baseline: parse the JSON and bulk-insert one plain row per history entry into
  ``reconciler_events`` through ``WriteSession.upsert`` (reading and storing, nothing else);
* the real path: the ``kubectl`` importer (object builders, revision parsing, mapping, event ids,
  deployment derivation per object), without config-repo linking (no repos configured).

Run:  .venv/bin/python bench/reconciler_import.py [--apps 200] [--syncs 50]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analytics.config import Config  # noqa: E402
from analytics.importers import kubectl  # noqa: E402
from analytics.importers.base import parse_file  # noqa: E402
from analytics.store.connection import open_writer  # noqa: E402

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def dump(apps: int, syncs: int) -> dict[str, Any]:
    items = []
    for a in range(apps):
        history = []
        rev = ""
        for s in range(syncs):
            if s % 3 != 2:
                rev = f"{a:08x}{s:08x}".ljust(40, "0")
            at = T0 + timedelta(hours=s * 6, minutes=a)
            history.append(
                {
                    "deployStartedAt": (at - timedelta(seconds=30)).isoformat(),
                    "deployedAt": at.isoformat(),
                    "id": s,
                    "initiatedBy": {"automated": True},
                    "revision": rev,
                    "source": {"repoURL": "https://git.example.com/config.git", "path": f"apps/s{a}"},
                }
            )
        items.append(
            {
                "apiVersion": "argoproj.io/v1alpha1",
                "kind": "Application",
                "metadata": {"name": f"svc{a:03d}-production", "namespace": "argocd"},
                "spec": {"destination": {"namespace": f"svc{a}"}, "source": {"repoURL": "u"}},
                "status": {"history": history, "health": {"status": "Healthy"}},
            }
        )
    return {"apiVersion": "v1", "kind": "List", "items": items}


def baseline(path: Path, db: Path) -> None:
    parsed = parse_file(path)
    rows = []
    for app in parsed.records:
        meta = app["metadata"]
        for h in app["status"]["history"]:
            rows.append(
                {
                    "id": f"{meta['name']}:{h['id']}",
                    "reconciler": "argocd",
                    "kind": "Application",
                    "namespace": meta["namespace"],
                    "name": meta["name"],
                    "event_type": "sync",
                    "revision": h["revision"],
                    "occurred_at": h["deployedAt"],
                    "source": "bench",
                }
            )
    with open_writer(db, source="bench") as session:
        session.upsert("reconciler_events", rows)


def real(path: Path, db: Path) -> None:
    parsed = parse_file(path)
    with open_writer(db, source="bench") as session:
        kubectl.load(session, parsed, Config())


def best(fn: Callable[[Path, Path], None], path: Path, work: Path, label: str) -> float:
    times = []
    for i in range(3):
        db = work / f"{label}-{i}.duckdb"
        start = time.perf_counter()
        fn(path, db)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--apps", type=int, default=200)
    parser.add_argument("--syncs", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        path = work / "apps.json"
        path.write_text(json.dumps(dump(args.apps, args.syncs)))
        base = best(baseline, path, work, "base")
        full = best(real, path, work, "real")
        n = args.apps * args.syncs
        print(f"{args.apps} Applications x {args.syncs} syncs = {n} history entries")
        print(f"baseline (parse + bulk insert of plain rows): {base:.2f} s  ratio 1.0")
        print(f"kubectl importer (events + deployments):       {full:.2f} s  ratio {full / base:.2f}")


if __name__ == "__main__":
    main()
