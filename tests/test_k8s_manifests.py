"""Kubernetes manifests (deploy/kubernetes), the GitHub Actions workflow and the crontab example.

Every object is validated against the Kubernetes OpenAPI schemas with kubernetes-validate (offline,
strict: unknown fields fail). The overlays are rendered by a small Python Kustomize renderer that
covers the features the manifests use; when `kubectl` is installed the test also checks that
renderer against `kubectl kustomize`, so the two cannot drift apart.
"""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from analytics.config import load_config

ROOT = Path(__file__).resolve().parents[1]
KUSTOMIZE = ROOT / "deploy" / "kubernetes"
OVERLAYS = sorted(p.parent for p in (KUSTOMIZE / "overlays").glob("*/kustomization.yaml"))
K8S_VERSION = "1.30.0"
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume", "StorageClass"}


# ---- a minimal Kustomize renderer (resources, namespace, labels, images, strategic-merge patches) --

def _merge(base: Any, patch: Any) -> Any:
    """Strategic merge for what the overlays patch: maps merge, lists of named maps merge by name."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for key, value in patch.items():
            out[key] = _merge(base[key], value) if key in base else copy.deepcopy(value)
        return out
    if (isinstance(base, list) and isinstance(patch, list) and patch
            and all(isinstance(x, dict) and "name" in x for x in base + patch)):
        merged = [copy.deepcopy(x) for x in base]
        for item in patch:
            idx = next((i for i, x in enumerate(merged) if x["name"] == item["name"]), None)
            if idx is None:
                merged.append(copy.deepcopy(item))
            else:
                merged[idx] = _merge(merged[idx], item)
        return merged
    return copy.deepcopy(patch)


def _containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    spec = doc.get("spec", {})
    pod = spec.get("jobTemplate", {}).get("spec", {}).get("template", {}).get("spec") \
        or spec.get("template", {}).get("spec") or {}
    return [*pod.get("initContainers", []), *pod.get("containers", [])]


def render(folder: Path) -> list[dict[str, Any]]:
    kust = yaml.safe_load((folder / "kustomization.yaml").read_text())
    docs: list[dict[str, Any]] = []
    for res in kust.get("resources", []):
        path = folder / res
        if path.is_dir():
            docs.extend(render(path))
        else:
            docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    for patch in kust.get("patches", []):
        body = yaml.safe_load((folder / patch["path"]).read_text())
        hits = [i for i, d in enumerate(docs)
                if d["kind"] == body["kind"] and d["metadata"]["name"] == body["metadata"]["name"]]
        assert len(hits) == 1, f"patch {patch['path']} matches {len(hits)} objects"
        docs[hits[0]] = _merge(docs[hits[0]], body)
    for image in kust.get("images", []):
        for doc in docs:
            for c in _containers(doc):
                if c["image"].split(":")[0] == image["name"]:
                    c["image"] = f"{image.get('newName', image['name'])}:{image['newTag']}"
    for group in kust.get("labels", []):
        for doc in docs:
            doc["metadata"].setdefault("labels", {}).update(group["pairs"])
    ns = kust.get("namespace")
    if ns:
        for doc in docs:
            if doc["kind"] not in CLUSTER_SCOPED:
                doc["metadata"]["namespace"] = ns
            for subject in doc.get("subjects", []):
                if subject.get("kind") == "ServiceAccount":
                    subject["namespace"] = ns
    return docs


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind]
    assert len(found) == 1, kind
    return found[0]


def pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    spec = doc["spec"]
    if doc["kind"] == "CronJob":
        return spec["jobTemplate"]["spec"]["template"]["spec"]
    return spec["template"]["spec"]


# ---- tests ----------------------------------------------------------------------------------------

def manifest_files() -> list[Path]:
    return sorted(p for p in KUSTOMIZE.rglob("*.yaml") if p.name != "kustomization.yaml")


@pytest.mark.parametrize("path", manifest_files(), ids=lambda p: str(p.relative_to(KUSTOMIZE)))
def test_every_manifest_file_validates_against_the_kubernetes_schema(path: Path) -> None:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    assert docs
    for doc in docs:
        if doc["kind"] in {"Deployment", "CronJob", "Service", "PersistentVolumeClaim"} and \
                "patch" not in path.name and path.parent.name == "base":
            assert "namespace" not in doc["metadata"]    # overlays choose the namespace
        if path.parent.name != "base" and doc["kind"] != "Namespace":
            continue  # overlay patches are partial objects; they are validated after rendering
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_validator_rejects_a_broken_manifest() -> None:
    """The schema check is real: a misspelt field fails it."""
    doc = yaml.safe_load((KUSTOMIZE / "base" / "service.yaml").read_text())
    doc["spec"]["prots"] = doc["spec"].pop("ports")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda p: p.name)
def test_rendered_overlay_validates_and_has_every_part(overlay: Path) -> None:
    docs = render(overlay)
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    kinds = sorted(d["kind"] for d in docs)
    for kind in ("CronJob", "Deployment", "Service", "PersistentVolumeClaim", "ConfigMap",
                 "ServiceAccount"):
        assert kind in kinds
    ns = yaml.safe_load((overlay / "kustomization.yaml").read_text())["namespace"]
    assert all(d["metadata"].get("namespace") == ns for d in docs if d["kind"] not in CLUSTER_SCOPED)
    binding = by_kind(docs, "ClusterRoleBinding")
    assert binding["subjects"][0]["namespace"] == ns


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")
@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda p: p.name)
def test_python_renderer_equals_kubectl_kustomize(overlay: Path) -> None:
    out = subprocess.run(["kubectl", "kustomize", str(overlay)], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    theirs = sorted((d for d in yaml.safe_load_all(out) if d),
                    key=lambda d: (d["kind"], d["metadata"]["name"]))
    ours = sorted(render(overlay), key=lambda d: (d["kind"], d["metadata"]["name"]))
    assert ours == theirs


def test_cronjob_collects_then_reports_into_the_volume() -> None:
    docs = render(OVERLAYS[0])
    cron = by_kind(docs, "CronJob")
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"       # one writer at a time
    container = pod_spec(cron)["containers"][0]
    script_path = container["command"][-1]
    config = by_kind(docs, "ConfigMap")
    mount = next(m for m in container["volumeMounts"] if script_path.startswith(m["mountPath"]))
    script = config["data"][script_path.removeprefix(mount["mountPath"] + "/")]
    commands = [ln.strip() for ln in script.splitlines() if ln.strip().startswith("gitops-dora ")]
    first_report = next(i for i, c in enumerate(commands) if c.startswith("gitops-dora report"))
    assert first_report > 0 and all(c.startswith("gitops-dora collect") for c in commands[:first_report])
    env = {e["name"]: e for e in container["env"]}
    db_dir = str(Path(env["GITOPS_DORA_DB"]["value"]).parent)
    data_mount = next(m for m in container["volumeMounts"] if m["mountPath"] == db_dir)
    volume = next(v for v in pod_spec(cron)["volumes"] if v["name"] == data_mount["name"])
    pvc = by_kind(docs, "PersistentVolumeClaim")
    assert volume["persistentVolumeClaim"]["claimName"] == pvc["metadata"]["name"]
    reports = [c for c in commands if c.startswith("gitops-dora report")]
    assert all("--out /data/" in c or '--out "/data/' in c for c in reports)


def test_dashboard_deployment_probes_security_and_read_only_data() -> None:
    docs = render(OVERLAYS[0])
    dep = by_kind(docs, "Deployment")
    spec = pod_spec(dep)
    container = spec["containers"][0]
    assert container["args"][:1] == ["dashboard"]
    port = container["ports"][0]
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"] == "/_stcore/health"
        assert container[probe]["httpGet"]["port"] in (port["name"], port["containerPort"])
    assert str(port["containerPort"]) == container["args"][container["args"].index("--port") + 1]
    data = next(m for m in container["volumeMounts"] if m["mountPath"] == "/data")
    assert data["readOnly"] is True
    service = by_kind(docs, "Service")
    assert service["spec"]["selector"].items() <= dep["spec"]["template"]["metadata"]["labels"].items()
    assert service["spec"]["ports"][0]["targetPort"] == port["name"]


@pytest.mark.parametrize("kind", ["CronJob", "Deployment"])
def test_pods_run_non_root_with_requests_and_no_privileges(kind: str) -> None:
    doc = by_kind(render(OVERLAYS[0]), kind)
    spec = pod_spec(doc)
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] != 0
    for c in spec["containers"]:
        assert c["securityContext"]["allowPrivilegeEscalation"] is False
        assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
        assert {"cpu", "memory"} <= c["resources"]["requests"].keys()
        assert re.fullmatch(r"ghcr\.io/[\w./-]+:[\w.-]+", c["image"])   # pinned, never :latest
        assert not c["image"].endswith(":latest")


def test_tokens_come_from_a_secret_reference_and_config_validates(tmp_path: Path) -> None:
    docs = render(OVERLAYS[0])
    assert not [d for d in docs if d["kind"] == "Secret"]     # secrets are never committed here
    cron = pod_spec(by_kind(docs, "CronJob"))["containers"][0]
    tokens = [e for e in cron["env"] if e["name"].endswith("_TOKEN")]
    assert tokens
    assert all("value" not in e and e["valueFrom"]["secretKeyRef"]["name"] == "gitops-dora-tokens"
               for e in tokens)
    config = by_kind(docs, "ConfigMap")["data"]["gitops-dora.yaml"]
    path = tmp_path / "gitops-dora.yaml"
    path.write_text(config)
    cfg = load_config(path)                                   # the shipped config is valid
    assert cfg.connections.github.token_env == "GITHUB_TOKEN"


def test_production_overlay_changes_schedule_size_and_resources() -> None:
    base = {(d["kind"]): d for d in render(KUSTOMIZE / "base")}
    prod = {(d["kind"]): d for d in render(KUSTOMIZE / "overlays" / "production")}
    assert base["CronJob"]["spec"]["schedule"] == "17 * * * *"
    assert prod["CronJob"]["spec"]["schedule"] == "*/30 * * * *"
    assert prod["PersistentVolumeClaim"]["spec"]["resources"]["requests"]["storage"] == "20Gi"
    dash = pod_spec(prod["Deployment"])["containers"][0]
    assert dash["resources"]["requests"]["memory"] == "768Mi"
    assert dash["readinessProbe"]["httpGet"]["path"] == "/_stcore/health"   # the patch kept the rest


CRON_FIELD = r"(\*|\*/\d+|\d+(-\d+)?(,\d+)*)"
CRON_LINE = re.compile(rf"^{CRON_FIELD}( {CRON_FIELD}){{4}} (?P<command>.+)$")


def test_github_actions_example_is_scheduled_and_runs_the_report() -> None:
    wf = yaml.safe_load((ROOT / "examples" / "github-actions-report.yml").read_text())
    on = wf.get("on", wf.get(True))        # YAML 1.1 reads a bare `on` key as True
    cron = on["schedule"][0]["cron"]
    assert CRON_LINE.match(cron + " x")
    runs = "\n".join(step.get("run", "") for step in wf["jobs"]["report"]["steps"])
    assert "gitops-dora report" in runs
    assert runs.index("gitops-dora collect") < runs.index("gitops-dora report")
    assert "secrets." not in runs                                  # tokens via env, not arguments
    assert "--token" not in runs


def test_crontab_example_lines_are_valid() -> None:
    lines = [ln for ln in (ROOT / "examples" / "crontab").read_text().splitlines()
             if ln.strip() and not ln.startswith("#") and not re.match(r"^[A-Z_]+=", ln)]
    assert lines
    commands = []
    for line in lines:
        m = CRON_LINE.match(line)
        assert m, line
        commands.append(m.group("command"))
        assert "%" not in line.replace("\\%", "")               # a bare % ends the command in cron
    assert any("gitops-dora report" in c for c in commands)


def test_dockerfile_matches_what_the_manifests_expect() -> None:
    """The image runs as the manifests' runAsUser, with `gitops-dora` as its entrypoint."""
    text = (ROOT / "deploy" / "docker" / "Dockerfile").read_text()
    user = re.search(r"^USER (\d+):(\d+)$", text, re.M)
    assert user
    for kind in ("CronJob", "Deployment"):
        ctx = pod_spec(by_kind(render(OVERLAYS[0]), kind))["securityContext"]
        assert (ctx["runAsUser"], ctx["runAsGroup"]) == (int(user.group(1)), int(user.group(2)))
    assert re.search(r'^ENTRYPOINT \["gitops-dora"\]$', text, re.M)
    for package in ("analytics", "assessment", "dashboards", "data"):
        assert re.search(rf"^COPY {package} ", text, re.M), package
