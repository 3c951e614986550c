"""The demo imports its reconciler history as one ``kubectl get applications,kustomizations,events``
dump (one store unit, one derivation) where it used to import one file per kind. Both must load the
same rows: the demo's dump, split back into the four files it used to write (Argo CD Applications,
their Events, Flux Kustomizations as YAML, their Events), imported into one new store, and the
single dump imported into another, give identical reconciler, deployment and change tables."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from tests import cli_inprocess
from tests.child_env import child_env
from tests.store_fixture import DemoStore
from tests.store_query import query

DUMP = Path("reconcilers") / "kubectl-get-applications-kustomizations-events.json"
COMPARED = {
    "reconciler_events": "SELECT * EXCLUDE (payload) FROM reconciler_events ORDER BY ALL",
    "reconciler_objects": "SELECT * EXCLUDE (last_seen) FROM reconciler_objects ORDER BY ALL",
    "deployments": "SELECT * FROM deployments ORDER BY ALL",
    "deployment_changes": "SELECT * FROM deployment_changes ORDER BY ALL",
    "config_image_changes": "SELECT * FROM config_image_changes ORDER BY ALL",
}


def _import(db: Path, config: Path, files: list[Path], cwd: Path) -> None:
    """``gitops-dora import`` in this process (tests/cli_inprocess.py: the same entry point, environment
    and folder; the import is what is compared, not the process, whose start-up cost 0.5 CPU-s)."""
    proc = cli_inprocess.run(["--db", str(db), "--config", str(config), "import", *map(str, files)],
                             env=child_env(), cwd=cwd)
    assert proc.returncode == 0, proc.stderr


def _per_kind(items: list[dict[str, Any]], out: Path) -> list[Path]:
    def involved(item: dict[str, Any]) -> str:
        return str(item.get("involvedObject", {}).get("kind", ""))

    groups = {
        "argocd-applications.json": [i for i in items if i["kind"] == "Application"],
        "argocd-events.json": [i for i in items if i["kind"] == "Event" and involved(i) == "Application"],
        "flux-kustomizations.yaml": [i for i in items if i["kind"] == "Kustomization"],
        "flux-events.json": [i for i in items if i["kind"] == "Event" and involved(i) == "Kustomization"],
    }
    assert sum(len(g) for g in groups.values()) == len(items)
    files = []
    for name, group in groups.items():
        assert group, name
        doc = {"apiVersion": "v1", "kind": "List", "items": group}
        path = out / name
        path.write_text(yaml.safe_dump(doc, sort_keys=False) if name.endswith(".yaml")
                        else json.dumps(doc, indent=1) + "\n")
        files.append(path)
    return files


def test_one_dump_loads_what_a_file_per_kind_loads(demo_store: DemoStore, tmp_path: Path) -> None:
    dump = demo_store.workdir / DUMP
    config = demo_store.workdir / "gitops-dora.yaml"
    items = json.loads(dump.read_text())["items"]
    files = _per_kind(items, tmp_path)
    _import(tmp_path / "per-kind.ducklake", config, files, tmp_path)
    _import(tmp_path / "one.ducklake", config, [dump], tmp_path)
    for name, sql in COMPARED.items():
        per_kind, one = query(tmp_path / "per-kind.ducklake", sql), query(tmp_path / "one.ducklake", sql)
        assert per_kind == one, name
    assert len(query(tmp_path / "one.ducklake", COMPARED["deployments"])) > 60
    assert len(query(tmp_path / "one.ducklake", COMPARED["deployment_changes"])) > 500
