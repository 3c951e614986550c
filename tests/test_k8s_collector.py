"""``collect k8s`` against the emulated Kubernetes API (tests/k8s_api.py), through the real
kubernetes client and the real CLI: paged lists, and a watcher that survives a dropped
connection and a 410 Gone without losing or duplicating events, and stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from analytics.errors import UserError
from analytics.store.connection import latest_snapshot_id
from tests import cli_inprocess
from tests.k8s_api import FakeKube
from tests.reconciler_objects import application, argocd_event, helm_snapshot, helmrelease
from tests.store_query import store_reader

CLI = str(Path(sys.executable).with_name("gitops-dora"))
T0 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
REV_A, REV_B = "a1" * 20, "b2" * 20


def snapshot_query(db: Path, sql: str) -> list[tuple[Any, ...]]:
    """Rows of the newest committed snapshot, as readers see them while the watcher writes; [] while
    the watcher has not created the store (its catalog file may exist before its first snapshot)."""
    if latest(db) is None:
        return []
    try:
        con = store_reader(db)
    except UserError:  # "no database": the catalog's first snapshot is not committed yet
        return []
    try:
        return con.execute(sql).fetchall()
    except duckdb.CatalogException:  # the watcher has not created the tables yet
        return []
    finally:
        con.close()


def latest(db: Path) -> int | None:
    """The store's newest snapshot id (a read of the SQLite catalog, well under a millisecond), None
    while there is none."""
    try:
        return latest_snapshot_id(db) if db.exists() else None
    except (duckdb.Error, UserError, sqlite3.Error):  # the catalog is being created
        return None


class Waits:
    """Waiting for what the watcher has stored, without a clock budget per step: each condition is
    polled until it holds, for as long as the watcher process lives (a dead watcher fails at once,
    with what it wrote), within one deadline for the whole test below pytest's timeout. A condition
    on the store is read again only after the watcher committed a new snapshot (a reader costs
    ~0.05 CPU-s; polling one five times a second was most of the test's CPU)."""

    def __init__(self, db: Path, proc: subprocess.Popen[str], seconds: float = 240.0) -> None:
        self.db, self.proc, self.deadline = db, proc, time.monotonic() + seconds
        self._seen: dict[str, tuple[int | None, list[tuple[Any, ...]]]] = {}

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        """``snapshot_query``, read again only when the store has a newer snapshot."""
        snap = latest(self.db)
        if sql in self._seen and self._seen[sql][0] == snap:
            return self._seen[sql][1]
        found = snapshot_query(self.db, sql)
        self._seen[sql] = (snap, found)
        return found

    def until(self, check: Callable[[], bool], on_fail: Callable[[], str] | None = None) -> None:
        while not check():
            if self.proc.poll() is not None:  # its pipe is at its end: read it, communicate() gets ""
                err = self.proc.stderr.read() if self.proc.stderr else ""
                raise AssertionError(f"the watcher exited {self.proc.returncode}: {err}")
            if time.monotonic() > self.deadline:
                raise AssertionError("condition not reached" + (f": {on_fail()}" if on_fail else ""))
            time.sleep(0.05)


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "GITOPS_DORA_PAUSE_BEFORE_COMMIT"}


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """A one-shot command, run in this process (tests/cli_inprocess.py); the watch test starts the
    installed script, as it stops it with a signal."""
    return cli_inprocess.run(args, env=env())


def test_list_follows_continue_tokens(tmp_path: Path) -> None:
    with FakeKube() as kube:
        # 260 Applications: more than one page of 250 (PAGE_SIZE), so a continue token is needed.
        for i in range(260):
            kube.put(
                "applications",
                application(
                    f"svc{i:03d}-production",
                    repo_url="u",
                    path="p",
                    dest_namespace="n",
                    history=[(REV_A, T0 + timedelta(minutes=i))],
                ),
            )
        kube.put(
            "helmreleases",
            helmrelease(
                "podinfo",
                "podinfo",
                [
                    helm_snapshot(1, "6.6.0", T0, T0, "superseded"),
                    helm_snapshot(2, "6.6.1", T0 + timedelta(days=1), T0, "deployed"),
                ],
            ),
        )
        # An Event from an unrelated controller is not stored.
        other = argocd_event("x", "Scheduled", "assigned", T0, uid="z-1")
        other["involvedObject"] = {"kind": "Pod", "name": "x", "namespace": "default", "apiVersion": "v1"}
        other["source"] = {"component": "default-scheduler"}
        other["reportingComponent"] = "default-scheduler"
        kube.put("events", other)
        db = tmp_path / "db.duckdb"
        kubeconfig = kube.kubeconfig(tmp_path / "kubeconfig")
        proc = run_cli("--db", str(db), "collect", "k8s", "--kubeconfig", str(kubeconfig))
        assert proc.returncode == 0, proc.stderr
        pages = [r for r in kube.requests if "/applications" in r]
        assert len(pages) == 2 and "continue=" in pages[1]
    con = store_reader(db)
    try:
        # 260 one-sync Applications -> 260 deployments; the HelmRelease adds 2.
        assert con.execute("SELECT source, count(*) FROM deployments GROUP BY 1 ORDER BY 1").fetchall() == [
            ("argocd", 260),
            ("flux", 2),
        ]
        assert con.execute(
            "SELECT count(*) FROM reconciler_events WHERE kind = 'Pod' OR name = 'x'"
        ).fetchall() == [(0,)]
    finally:
        con.close()


def test_missing_kubeconfig_is_one_line(tmp_path: Path) -> None:
    db, missing = tmp_path / "db.duckdb", tmp_path / "nope"
    proc = run_cli("--db", str(db), "collect", "k8s", "--kubeconfig", str(missing))
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: kubeconfig {tmp_path / 'nope'}: no such file"


def test_watch_survives_drop_and_410_without_loss_or_duplicates(tmp_path: Path) -> None:
    app_name = "payments-api-production"
    with FakeKube() as kube:
        kube.put(
            "applications",
            application(app_name, repo_url="u", path="p", dest_namespace="payments", history=[(REV_A, T0)]),
        )
        kube.put(
            "events",
            argocd_event(
                app_name, "OperationCompleted", f"Sync operation to {REV_A} succeeded", T0, uid="ev-00"
            ),
        )
        db = tmp_path / "db.duckdb"
        proc = subprocess.Popen(
            [
                CLI,
                "--db",
                str(db),
                "collect",
                "k8s",
                "--watch",
                "--kubeconfig",
                str(kube.kubeconfig(tmp_path / "kubeconfig")),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env(),
        )
        waits = Waits(db, proc)
        try:

            def stored() -> set[str]:
                sql = (
                    "SELECT json_extract_string(payload, '$.involvedObject.uid') || ':' || message "
                    "FROM reconciler_events WHERE reason = 'OperationCompleted'"
                )
                return {r[0] for r in snapshot_query(db, sql)}

            def count() -> list[tuple[Any, ...]]:
                return waits.rows(
                    "SELECT count(*), count(DISTINCT id) FROM reconciler_events "
                    "WHERE reason = 'OperationCompleted'",
                )

            waits.until(lambda: count() == [(1, 1)])
            waits.until(lambda: kube.watch_count["events"] >= 1)

            def health() -> list[tuple[Any, ...]]:
                return waits.rows(
                    "SELECT count(*), count(DISTINCT id) FROM reconciler_events "
                    "WHERE reason = 'ResourceUpdated'",
                )

            def sync_event(i: int) -> dict[str, Any]:
                return argocd_event(
                    app_name,
                    "ResourceUpdated",
                    f"Updated health status: Progressing -> Healthy #{i}",
                    T0 + timedelta(minutes=i),
                    uid=f"ev-{i:02d}",
                )

            # 1) Events while the watch is healthy.
            for i in (1, 2):
                kube.put("events", sync_event(i))
            # 2) The connection drops right after event 3; event 4 arrives after the reconnect.
            kube.drop_after("events", 1)
            kube.put("events", sync_event(3))
            waits.until(lambda: kube.watch_count["events"] >= 2)
            kube.put("events", sync_event(4))
            # 3) An outage: the connection is cut, event 5 happens, history is compacted. The
            #    reconnect gets 410 Gone; the watcher relists (re-reading events 1-5, stored once)
            #    and watches on from the list's version.
            waits.until(lambda: health() == [(4, 4)])
            kube.outage("events", [sync_event(5)])
            waits.until(lambda: kube.watch_count["events"] >= 4)  # reconnect (410) + watch after relist
            kube.put("events", sync_event(6))
            # 4) A new sync of a new revision arrives as an Application update.
            kube.put(
                "applications",
                application(
                    app_name,
                    repo_url="u",
                    path="p",
                    dest_namespace="payments",
                    history=[(REV_A, T0), (REV_B, T0 + timedelta(hours=2))],
                ),
            )
            waits.until(
                lambda: health() == [(6, 6)],
                on_fail=lambda: (
                    f"{snapshot_query(db, 'SELECT message FROM reconciler_events')} {kube.requests[-3:]}"
                ),
            )
            waits.until(lambda: waits.rows("SELECT count(*) FROM deployments") == [(2,)])
        finally:
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert "1 relists after 410 Gone" in err and "2 reconnects" in err, err
        assert stored() == {f"app-{app_name}:Sync operation to {REV_A} succeeded"}
    con = store_reader(db)
    try:
        # Six health events exactly once each, whatever was re-delivered by the relist.
        rows = con.execute(
            "SELECT message FROM reconciler_events WHERE reason = 'ResourceUpdated' ORDER BY occurred_at"
        ).fetchall()
        assert [r[0][-2:] for r in rows] == ["#1", "#2", "#3", "#4", "#5", "#6"]
        assert con.execute(
            "SELECT revision, deployed_at FROM deployments ORDER BY deployed_at"
        ).fetchall() == [(REV_A, T0), (REV_B, T0 + timedelta(hours=2))]
    finally:
        con.close()


def test_namespaces_from_config_limit_what_is_read(tmp_path: Path) -> None:
    config = tmp_path / "gitops-dora.yaml"
    config.write_text("connections:\n  kubernetes:\n    namespaces: [argocd, team-b]\n")
    with FakeKube() as kube:
        kube.put(
            "applications",
            application("a-production", repo_url="u", path="p", dest_namespace="n", history=[(REV_A, T0)]),
        )  # namespace argocd
        other = application("b-production", repo_url="u", path="p", dest_namespace="n", history=[(REV_B, T0)])
        other["metadata"]["namespace"] = "team-b"
        kube.put("applications", other)
        hidden = application(
            "c-production", repo_url="u", path="p", dest_namespace="n", history=[(REV_B, T0)]
        )
        hidden["metadata"]["namespace"] = "team-c"
        kube.put("applications", hidden)
        db = tmp_path / "db.duckdb"
        proc = run_cli(
            "--db",
            str(db),
            "--config",
            str(config),
            "collect",
            "k8s",
            "--kubeconfig",
            str(kube.kubeconfig(tmp_path / "kubeconfig")),
        )
        assert proc.returncode == 0, proc.stderr
        paths = sorted(r.split("?")[0] for r in kube.requests if "applications" in r)
        assert paths == [
            "/apis/argoproj.io/v1alpha1/namespaces/argocd/applications",
            "/apis/argoproj.io/v1alpha1/namespaces/team-b/applications",
        ]
    con = store_reader(db)
    try:
        # Objects in team-c were never asked for.
        assert con.execute("SELECT namespace, name FROM reconciler_objects ORDER BY 1").fetchall() == [
            ("argocd", "a-production"),
            ("team-b", "b-production"),
        ]
    finally:
        con.close()
