"""Reconciler input that must never become deployment rows, on the three paths that give the same
rows (``collect k8s``, ``import``, ``serve-webhooks``):

* a time outside the years 1970-2100 (Go's zero time ``0001-01-01T00:00:00Z``, ``9999-12-31``):
  once stored, ``metrics`` and ``report`` failed with an OverflowError on every later run;
* an object or Event without a name (it became a deployment of service ``""``);
* an Argo CD notification line with an unreadable time (the receiver answers 422; the import
  skipped it silently).

The cluster skips such an observation with a counted note and a data warning (nobody can fix a
live cluster, and one bad history entry must not stop the collection); an import file is refused
with one line naming its line (exit 2, nothing written); a webhook delivery gets a 422 with one line.
Unquoted YAML timestamps in a ``kubectl -o yaml`` dump are read as the times they are, with the
same zone rules as their quoted text.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import cli_inprocess
from tests.k8s_api import FakeKube
from tests.reconciler_objects import application, argocd_event, as_list, flux_event, notification
from tests.store_query import query
from tests.webhook_senders import Receiver, receiver

T0 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
REV_A, REV_B = "a1" * 20, "b2" * 20
ZERO = "0001-01-01T00:00:00Z"  # Go's zero time.Time
FAR = "9999-12-31T23:59:59Z"
FLUX_SECRET, ARGO_SECRET = "flux-hmac-key", "argo-bearer-token"


def cli(*args: str, cwd: Path) -> Any:
    return cli_inprocess.run(list(args), cwd=cwd)


def app(name: str, history: list[tuple[str, datetime]]) -> dict[str, Any]:
    return application(name, repo_url="https://example.com/config.git", path=f"apps/{name}",
                       dest_namespace=name.rsplit("-", 1)[0], history=history)


def assert_store_healthy(db: Path, cwd: Path) -> None:
    """No impossible or nameless row, and the read commands work (they failed on every run)."""
    assert query(db, """SELECT count(*) FROM deployments
                        WHERE deployed_at < TIMESTAMPTZ '1970-01-01 00:00:00+00'
                        OR deployed_at >= TIMESTAMPTZ '2101-01-01 00:00:00+00' OR service = ''
                        OR started_at < TIMESTAMPTZ '1970-01-01 00:00:00+00'""") == [(0,)]
    assert query(db, """SELECT count(*) FROM reconciler_events WHERE name = ''
                        OR occurred_at < TIMESTAMPTZ '1970-01-01 00:00:00+00'
                        OR occurred_at >= TIMESTAMPTZ '2101-01-01 00:00:00+00'""") == [(0,)]
    metrics = cli("--db", str(db), "metrics", "--format", "json", cwd=cwd)
    assert metrics.returncode == 0, metrics.stderr
    report = cli("--db", str(db), "report", "--out", str(cwd / "dora.json"), cwd=cwd)
    assert report.returncode == 0, report.stderr


# --- cluster ---------------------------------------------------------------------------------------

def test_cluster_skips_impossible_times_and_nameless_objects_with_a_note(tmp_path: Path) -> None:
    storefront = app("storefront-production", [(REV_A, T0), (REV_B, T0 + timedelta(hours=1))])
    storefront["status"]["history"][0]["deployedAt"] = ZERO  # one bad entry among good ones
    payments = app("payments-production", [(REV_A, T0)])
    payments["status"]["history"][0]["deployedAt"] = FAR
    nameless = app("x-production", [(REV_A, T0)])
    nameless["metadata"]["name"] = ""
    nameless_event = argocd_event("", "OperationCompleted", f"Sync operation to {REV_A} succeeded", T0,
                                  uid="e-1")
    zero_event = flux_event("Kustomization", "infra-production", "flux-system", "ReconciliationSucceeded",
                            "Reconciliation finished", T0, revision=f"main@sha1:{REV_A}", uid="e-2")
    zero_event["lastTimestamp"] = ZERO
    with FakeKube() as kube:
        for obj in (storefront, payments, nameless):
            kube.put("applications", obj)
        kube.put("events", nameless_event)
        kube.put("events", zero_event)
        db = tmp_path / "db.ducklake"
        proc = cli("--db", str(db), "collect", "k8s", "--kubeconfig", str(kube.kubeconfig(tmp_path / "kc")),
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    said = proc.stdout + proc.stderr
    assert "5 observations with a time outside 1970-2100 or without a name skipped" in said, said
    # The good history entry of the same object is stored; the bad one is not.
    assert query(db, "SELECT service, revision, deployed_at FROM deployments") == [
        ("storefront", REV_B, T0 + timedelta(hours=1))
    ]
    warnings = query(db, "SELECT detail, count FROM data_warnings WHERE kind = 'reconciler_input_skipped'"
                         " ORDER BY detail")
    assert sum(n for _, n in warnings) == 5, warnings
    details = " | ".join(d for d, _ in warnings)
    for part in ("0001-01-01T00:00:00+00:00", "9999-12-31T23:59:59+00:00", "without metadata.name",
                 "without involvedObject.name", "Kustomization/flux-system/infra-production"):
        assert part in details, details
    assert_store_healthy(db, tmp_path)


# --- webhooks --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def hooks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Receiver, Path]]:
    db = tmp_path_factory.mktemp("bad-hooks") / "db.ducklake"
    env = {"GITOPS_DORA_FLUX_SECRET": FLUX_SECRET, "GITOPS_DORA_ARGOCD_SECRET": ARGO_SECRET}
    with receiver(db, env) as running:
        yield running, db


def _post_argocd(url: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(url + "/webhooks/argocd", content=json.dumps(body).encode(), timeout=30,
                      headers={"Content-Type": "application/json", "Authorization": f"Bearer {ARGO_SECRET}"})


def _post_flux(url: str, body: dict[str, Any]) -> httpx.Response:
    raw = json.dumps(body).encode()
    signature = "sha256=" + hmac.new(FLUX_SECRET.encode(), raw, hashlib.sha256).hexdigest()
    return httpx.post(url + "/webhooks/flux", content=raw, timeout=30,
                      headers={"Content-Type": "application/json", "X-Signature": signature})


@pytest.mark.parametrize("where", ["deployedAt", "deployStartedAt"])
@pytest.mark.parametrize("value", [FAR, ZERO])
def test_argocd_webhook_refuses_a_time_outside_the_years(hooks: tuple[Receiver, Path], where: str,
                                                         value: str) -> None:
    rx, db = hooks
    body = app("storefront-production", [(REV_A, T0)])
    body["status"]["history"][0][where] = value
    answer = _post_argocd(rx.url, body)
    assert answer.status_code == 422, answer.text
    message = answer.json()["message"]
    assert "\n" not in message and "outside the years 1970-2100" in message and where in message, message
    assert query(db, "SELECT count(*) FROM reconciler_events") == [(0,)]


def test_flux_webhook_refuses_go_zero_time(hooks: tuple[Receiver, Path], tmp_path: Path) -> None:
    rx, db = hooks
    event = notification("Kustomization", "payments-production", "flux-system", "ReconciliationSucceeded",
                         "Reconciliation finished", T0, revision=f"main@sha1:{REV_A}")
    event["timestamp"] = ZERO
    answer = _post_flux(rx.url, event)
    assert answer.status_code == 422, answer.text
    message = answer.json()["message"]
    assert "\n" not in message and "timestamp" in message and "1970-2100" in message, message
    assert query(db, "SELECT count(*) FROM reconciler_events") == [(0,)]
    # A good delivery still goes through, and the store reads.
    event["timestamp"] = T0.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert _post_flux(rx.url, event).status_code == 200
    assert query(db, "SELECT count(*) FROM deployments") == [(1,)]
    assert_store_healthy(db, tmp_path)


# --- import ----------------------------------------------------------------------------------------

def _app_yaml(deployed: str, started: str, name: str = "storefront-production") -> str:
    """``kubectl get applications -o yaml`` of one Application, times written as given."""
    return f"""apiVersion: v1
kind: List
items:
- apiVersion: argoproj.io/v1alpha1
  kind: Application
  metadata:
    name: {name}
    namespace: argocd
  spec:
    destination: {{namespace: storefront, server: https://kubernetes.default.svc}}
    source: {{repoURL: https://example.com/config.git, path: apps/storefront}}
  status:
    history:
    - id: 0
      revision: {REV_A}
      deployStartedAt: {started}
      deployedAt: {deployed}
"""


@pytest.fixture
def seeded(tmp_path: Path) -> Path:
    """A store holding one good import, so a refused file can be shown to change nothing."""
    good = tmp_path / "good.yaml"
    good.write_text(_app_yaml("'2024-02-01T10:00:00Z'", "'2024-02-01T09:59:00Z'", "seed-production"))
    db = tmp_path / "db.ducklake"
    proc = cli("--db", str(db), "import", str(good), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    return db


def _snapshot(db: Path) -> list[Any]:
    return [query(db, f"SELECT * FROM {t} ORDER BY ALL") for t in
            ("deployments", "reconciler_events", "reconciler_objects")]


def _refused(db: Path, path: Path, *parts: str) -> None:
    """One error line naming the file and each of ``parts``, exit 2, the store unchanged."""
    before = _snapshot(db)
    proc = cli("--db", str(db), "import", str(path), cwd=path.parent)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(path) in lines[0], proc.stderr
    for part in parts:
        assert part in lines[0], lines[0]
    assert _snapshot(db) == before   # nothing written: metrics read the seeded store as before


def _jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


@pytest.mark.parametrize("value", [FAR, ZERO])
def test_import_kubectl_yaml_time_outside_the_years_names_the_line(seeded: Path, tmp_path: Path,
                                                                   value: str) -> None:
    path = tmp_path / "apps.yaml"
    path.write_text(_app_yaml(f"'{value}'", "'2024-02-01T09:59:00Z'"))
    _refused(seeded, path, "line 4:", "Application/argocd/storefront-production",
             "outside the years 1970-2100")


@pytest.mark.parametrize("value", [FAR, ZERO])
def test_import_argocd_notification_time_outside_the_years_names_the_line(seeded: Path, tmp_path: Path,
                                                                          value: str) -> None:
    bad = app("storefront-production", [(REV_A, T0)])
    bad["status"]["history"][0]["deployedAt"] = value
    path = _jsonl(tmp_path / "argo.jsonl", [app("storefront-production", [(REV_A, T0)]), bad])
    _refused(seeded, path, "line 2:", "deployedAt", "outside the years 1970-2100")


def test_import_flux_event_go_zero_time_names_the_line(seeded: Path, tmp_path: Path) -> None:
    good = notification("Kustomization", "payments-production", "flux-system", "ReconciliationSucceeded",
                        "done", T0, revision=f"main@sha1:{REV_A}")
    bad = dict(good, timestamp=ZERO, message="again")
    path = _jsonl(tmp_path / "flux.jsonl", [good, bad])
    _refused(seeded, path, "line 2:", "outside the years 1970-2100")


def test_import_argocd_notification_unreadable_time_names_the_line(seeded: Path, tmp_path: Path) -> None:
    bad = app("storefront-production", [(REV_A, T0)])
    bad["status"]["history"][0]["deployedAt"] = "not a time"
    path = _jsonl(tmp_path / "argo.jsonl", [app("storefront-production", [(REV_A, T0)]), bad])
    _refused(seeded, path, "line 2:", "status.history[].deployedAt: unreadable time 'not a time'")


def _no_name(obj: dict[str, Any], how: str) -> dict[str, Any]:
    obj = copy.deepcopy(obj)
    if how == "missing":
        del obj["metadata"]["name"]
    elif how == "list":
        obj["metadata"] = [obj["metadata"]]
    else:
        obj["metadata"]["name"] = ""
    return obj


@pytest.mark.parametrize("how", ["missing", "list", "empty"])
def test_import_kubectl_application_without_a_name_is_refused(seeded: Path, tmp_path: Path, how: str) -> None:
    good = app("storefront-production", [(REV_A, T0)])
    path = tmp_path / "apps.json"
    path.write_text(json.dumps(as_list("List", [good, _no_name(good, how)])))
    _refused(seeded, path, "line 2:", "without metadata.name")


def test_import_kubectl_yaml_application_without_a_name_names_its_line(seeded: Path, tmp_path: Path) -> None:
    path = tmp_path / "apps.yaml"
    text = _app_yaml("'2024-02-01T10:00:00Z'", "'2024-02-01T09:59:00Z'")
    path.write_text(text + text.split("items:\n", 1)[1].replace("    name: storefront-production\n", ""))
    _refused(seeded, path, "line 18:", "without metadata.name")


@pytest.mark.parametrize("controller", ["argocd", "flux"])
def test_import_core_event_without_a_name_is_refused(seeded: Path, tmp_path: Path, controller: str) -> None:
    if controller == "argocd":
        event = argocd_event("", "OperationCompleted", f"Sync operation to {REV_A} succeeded", T0, uid="e-1")
    else:
        event = flux_event("Kustomization", "", "flux-system", "ReconciliationSucceeded", "done", T0,
                           revision=f"main@sha1:{REV_A}", uid="e-2")
    good = argocd_event("storefront-production", "OperationCompleted", f"Sync operation to {REV_A} succeeded",
                        T0, uid="e-0")
    path = tmp_path / "events.json"
    path.write_text(json.dumps(as_list("List", [good, event])))
    _refused(seeded, path, "line 2:", "without involvedObject.name")


def test_import_argocd_notification_without_a_name_is_refused(seeded: Path, tmp_path: Path) -> None:
    good = app("storefront-production", [(REV_A, T0)])
    path = _jsonl(tmp_path / "argo.jsonl", [good, _no_name(good, "missing")])
    _refused(seeded, path, "line 2:", "metadata.name is required")


@pytest.mark.parametrize(("deployed", "started"), [
    ("2026-01-05T10:00:00Z", "2026-01-05T09:59:20Z"),              # aware, UTC
    ("2026-01-05T12:00:00+02:00", "2026-01-05T11:59:20+02:00"),    # aware, another zone
    ("2026-01-05 10:00:00", "2026-01-05 09:59:20"),                # naive: read as UTC
    ("2026-01-05T10:00:00.250000Z", "2026-01-05"),                 # fractions; a date is midnight UTC
])
def test_unquoted_yaml_times_import_as_their_quoted_text_does(tmp_path: Path, deployed: str,
                                                              started: str) -> None:
    stores = []
    for form, quote in (("unquoted", ""), ("quoted", "'")):
        path = tmp_path / f"{form}.yaml"
        path.write_text(_app_yaml(f"{quote}{deployed}{quote}", f"{quote}{started}{quote}"))
        db = tmp_path / f"{form}.ducklake"
        proc = cli("--db", str(db), "import", str(path), cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert "without a time skipped" not in proc.stdout + proc.stderr
        stores.append(db)
    unquoted, quoted = (
        (query(db, "SELECT id, service, revision, started_at, deployed_at, status FROM deployments"),
         query(db, "SELECT id, occurred_at, started_at FROM reconciler_events"))
        for db in stores
    )
    assert unquoted == quoted
    deployments = unquoted[0]
    assert len(deployments) == 1
    expected = datetime.fromisoformat(deployed.replace("Z", "+00:00"))
    expected = expected.replace(tzinfo=UTC) if expected.tzinfo is None else expected
    assert deployments[0][4] == expected
