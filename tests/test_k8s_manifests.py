"""Kubernetes manifests (deploy/kubernetes), the GitHub Actions workflow and the crontab example.

Every object is validated against the Kubernetes OpenAPI schemas with kubernetes-validate (offline,
strict: unknown fields fail). The overlays are rendered by a small Python Kustomize renderer that
covers the features the manifests use; when `kubectl` is installed the test also checks that
renderer against `kubectl kustomize`, so the two cannot drift apart.
"""

from __future__ import annotations

import copy
import os
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
BASE = KUSTOMIZE / "base"
OVERLAYS = sorted(p.parent for p in (KUSTOMIZE / "overlays").glob("*/kustomization.yaml"))
PRODUCTION = KUSTOMIZE / "overlays" / "production"
SCALE_OUT = KUSTOMIZE / "overlays" / "scale-out"
MIGRATE_JOB = KUSTOMIZE / "jobs" / "migrate-store.yaml"
K8S_VERSION = "1.30.0"
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume", "StorageClass"}
WORKLOADS = {"CronJob", "Deployment", "Job"}
GROUP_KEY = re.compile(r"^collect-group-(\d+)\.sh$")


# ---- a minimal Kustomize renderer -------------------------------------------------------------------
# resources, namespace, labels, images, and patches: strategic-merge (by name, or on every object a
# `target` selects; a null value deletes the key) and JSON 6902 operation lists with a `target`.

def _merge(base: Any, patch: Any) -> Any:
    """Strategic merge for what the overlays patch: maps merge, lists of named maps merge by name,
    a null deletes the key."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for key, value in patch.items():
            if value is None:
                out.pop(key, None)
            else:
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


def _pointer(path: str) -> list[str]:
    assert path.startswith("/"), path
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _json6902(doc: dict[str, Any], ops: list[dict[str, Any]]) -> dict[str, Any]:
    """add / replace / remove, the operations the overlays use."""
    doc = copy.deepcopy(doc)
    for op in ops:
        *parents, last = _pointer(op["path"])
        node: Any = doc
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if op["op"] == "add" and isinstance(node, list):
            if last == "-":
                node.append(copy.deepcopy(op["value"]))
            else:
                node.insert(int(last), copy.deepcopy(op["value"]))
        elif op["op"] in ("add", "replace"):
            if isinstance(node, list):
                node[int(last)] = copy.deepcopy(op["value"])
            else:
                assert op["op"] == "add" or last in node, op
                node[last] = copy.deepcopy(op["value"])
        elif op["op"] == "remove":
            del node[int(last) if isinstance(node, list) else last]
        else:
            raise AssertionError(f"unsupported JSON patch op {op['op']}")
    return doc


def _selected(doc: dict[str, Any], target: dict[str, Any]) -> bool:
    group, _, version = doc["apiVersion"].rpartition("/")
    checks = {"kind": doc["kind"], "name": doc["metadata"]["name"], "group": group, "version": version,
              "namespace": doc["metadata"].get("namespace", "")}
    return all(re.fullmatch(str(target[key]), value) for key, value in checks.items() if key in target)


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
        target = patch.get("target")
        if target is None:
            assert isinstance(body, dict), f"patch {patch['path']}: a JSON 6902 patch needs a target"
            target = {"kind": body["kind"], "name": re.escape(body["metadata"]["name"])}
            hits = [i for i, d in enumerate(docs) if _selected(d, target)]
            assert len(hits) == 1, f"patch {patch['path']} matches {len(hits)} objects"
        else:
            hits = [i for i, d in enumerate(docs) if _selected(d, target)]
            assert hits, f"patch {patch['path']} selects nothing"
        for i in hits:
            docs[i] = _json6902(docs[i], body) if isinstance(body, list) else _merge(docs[i], body)
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


# ---- helpers over rendered objects ------------------------------------------------------------------

def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind]
    assert len(found) == 1, kind
    return found[0]


def by_name(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}"
    return found[0]


def workloads(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] in WORKLOADS]


def pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    spec = doc["spec"]
    if doc["kind"] == "CronJob":
        return spec["jobTemplate"]["spec"]["template"]["spec"]
    return spec["template"]["spec"]


def env_of(docs: list[dict[str, Any]], container: dict[str, Any]) -> dict[str, Any]:
    """The container's environment as Kubernetes builds it: envFrom ConfigMaps, then `env` on top.
    A literal value is a str; a valueFrom stays its dict."""
    env: dict[str, Any] = {}
    for source in container.get("envFrom", []):
        ref = source["configMapRef"]
        env.update(by_name(docs, "ConfigMap", ref["name"])["data"])
    for entry in container.get("env", []):
        env[entry["name"]] = entry["value"] if "value" in entry else entry["valueFrom"]
    return env


def expand(text: str, env: dict[str, Any]) -> str:
    """Kubernetes' $(VAR) expansion in command and args."""
    return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: str(env.get(m.group(1), m.group(0))), text)


def mount_volume(doc: dict[str, Any], container: dict[str, Any], path: str) -> tuple[dict, dict]:
    """The volumeMount (longest mountPath prefix) and volume that hold `path` in this pod."""
    mounts = [m for m in container["volumeMounts"]
              if path == m["mountPath"] or path.startswith(m["mountPath"].rstrip("/") + "/")]
    assert mounts, f"{path} is on no volume"
    mount = max(mounts, key=lambda m: len(m["mountPath"]))
    volume = next(v for v in pod_spec(doc)["volumes"] if v["name"] == mount["name"])
    return mount, volume


def claim_of(doc: dict[str, Any], container: dict[str, Any], path: str) -> str:
    _, volume = mount_volume(doc, container, path)
    assert "persistentVolumeClaim" in volume, f"{path} is not on a PersistentVolumeClaim"
    return str(volume["persistentVolumeClaim"]["claimName"])


def config_file(docs: list[dict[str, Any]], doc: dict[str, Any], container: dict[str, Any],
                path: str) -> str:
    """The text of a file a pod reads from a ConfigMap volume."""
    mount, volume = mount_volume(doc, container, path)
    data = by_name(docs, "ConfigMap", volume["configMap"]["name"])["data"]
    key = path.removeprefix(mount["mountPath"].rstrip("/") + "/")
    assert key in data, f"{path}: no key {key} in ConfigMap {volume['configMap']['name']}"
    return str(data[key])


def commands(script: str) -> list[str]:
    """The gitops-dora lines a script runs (comments left out)."""
    return [ln.strip() for ln in script.splitlines() if ln.strip().startswith("gitops-dora ")]


def store_path(env: dict[str, Any]) -> str:
    return str(env["GITOPS_DORA_DB"])


# ---- every overlay ----------------------------------------------------------------------------------

def manifest_files() -> list[Path]:
    return sorted(p for p in KUSTOMIZE.rglob("*.yaml") if p.name != "kustomization.yaml")


@pytest.mark.parametrize("path", manifest_files(), ids=lambda p: str(p.relative_to(KUSTOMIZE)))
def test_every_manifest_file_validates_against_the_kubernetes_schema(path: Path) -> None:
    raw = [d for d in yaml.safe_load_all(path.read_text()) if d]
    assert raw
    docs = [d for d in raw if isinstance(d, dict)] if "overlays" in path.parts else raw
    for doc in docs:
        if doc["kind"] in {"Deployment", "CronJob", "Job", "Service", "PersistentVolumeClaim",
                           "ConfigMap"} and "overlays" not in path.parts:
            assert "namespace" not in doc["metadata"]    # overlays (or `kubectl -n`) choose it
        if "overlays" in path.parts and doc["kind"] != "Namespace":
            continue  # overlay patches are partial objects; they are validated after rendering
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_validator_rejects_a_broken_manifest() -> None:
    """The schema check is real: a misspelt field fails it."""
    doc = yaml.safe_load((BASE / "service.yaml").read_text())
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
@pytest.mark.parametrize("folder", [BASE, *OVERLAYS], ids=lambda p: p.name)
def test_python_renderer_equals_kubectl_kustomize(folder: Path) -> None:
    out = subprocess.run(["kubectl", "kustomize", str(folder)], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    theirs = sorted((d for d in yaml.safe_load_all(out) if d),
                    key=lambda d: (d["kind"], d["metadata"]["name"]))
    ours = sorted(render(folder), key=lambda d: (d["kind"], d["metadata"]["name"]))
    assert ours == theirs


def test_renderer_applies_targeted_and_deleting_patches() -> None:
    """The renderer features scale-out relies on, checked without kubectl."""
    docs: list[dict[str, Any]] = [{"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": n},
                                   "spec": {"a": 1, "b": {"c": [1]}}} for n in ("x", "y")]
    ops: list[dict[str, Any]] = [{"op": "add", "path": "/spec/b/c/-", "value": 2},
                                 {"op": "replace", "path": "/spec/a", "value": 3},
                                 {"op": "remove", "path": "/spec/b/c/0"}]
    assert [_json6902(d, ops)["spec"] for d in docs] == [{"a": 3, "b": {"c": [2]}}] * 2
    assert [d for d in docs if _selected(d, {"kind": "CronJob", "name": "x"})] == docs[:1]
    assert not _selected(docs[0], {"kind": "Deployment"})
    assert _merge(docs[0], {"spec": {"a": None, "b": {"d": 4}}})["spec"] == {"b": {"c": [1], "d": 4}}


def test_no_manifest_mentions_the_writer_lock() -> None:
    """Writers no longer exclude each other: no flock, no GITOPS_DORA_LOCK_WAIT, no copied
    `.snapshot` or `.lock` file beside the store."""
    for path in KUSTOMIZE.rglob("*.yaml"):
        text = path.read_text()
        for word in ("flock", "LOCK_WAIT", ".snapshot", ".lock"):
            assert word not in text, f"{path.relative_to(KUSTOMIZE)} mentions {word}"


@pytest.mark.parametrize("folder", [BASE, *OVERLAYS], ids=lambda p: p.name)
def test_no_writer_lock_is_left_in_the_rendered_objects(folder: Path) -> None:
    """... nor in what Kustomize renders, and no CronJob is kept from overlapping for its sake."""
    text = yaml.safe_dump_all(render(folder))
    assert "flock" not in text and "LOCK_WAIT" not in text
    for doc in render(folder):
        if doc["kind"] == "CronJob":
            assert doc["spec"].get("concurrencyPolicy", "Allow") != "Forbid", doc["metadata"]["name"]


@pytest.mark.parametrize("folder", [BASE, *OVERLAYS], ids=lambda p: p.name)
def test_maintain_cronjob_runs_daily_on_the_collectors_store(folder: Path) -> None:
    docs = render(folder)
    maintain = by_name(docs, "CronJob", "gitops-dora-maintain")
    collect = by_name(docs, "CronJob", "gitops-dora-collect")
    minute, hour, dom, month, dow = maintain["spec"]["schedule"].split()
    assert minute.isdigit() and hour.isdigit() and (dom, month, dow) == ("*", "*", "*")   # daily
    container = pod_spec(maintain)["containers"][0]
    env = env_of(docs, container)
    args = [expand(a, env) for a in container.get("args", [])]
    assert args[0] == "maintain"
    retention = int(args[args.index("--retention-days") + 1])           # configurable, a number
    assert retention == int(env["GITOPS_DORA_RETENTION_DAYS"]) == 30
    # Once a day, and a run ends before the next one starts.
    assert maintain["spec"]["jobTemplate"]["spec"]["activeDeadlineSeconds"] < 24 * 3600
    collector = pod_spec(collect)["containers"][0]
    collect_env = env_of(docs, collector)
    for key in ("GITOPS_DORA_DB", "GITOPS_DORA_DATA_PATH"):
        assert env.get(key) == collect_env.get(key)                     # the same store
    for path in {store_path(env), env.get("GITOPS_DORA_DATA_PATH", "")} - {""}:
        if path.startswith("/"):                                          # the same volume
            assert claim_of(maintain, container, path) == claim_of(collect, collector, path)
    assert container["securityContext"]["readOnlyRootFilesystem"] is True


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda p: p.name)
def test_pods_run_non_root_with_requests_and_no_privileges(overlay: Path) -> None:
    docs = render(overlay)
    assert {d["kind"] for d in workloads(docs)} == {"CronJob", "Deployment"}
    for doc in workloads(docs):
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


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda p: p.name)
def test_secrets_are_references_only(overlay: Path) -> None:
    """No Secret is shipped and nothing secret is written into a manifest: every token, password
    and key is a secretKeyRef, and the catalog URL carries no password."""
    docs = render(overlay)
    assert not [d for d in docs if d["kind"] == "Secret"]
    secretish = re.compile(r"TOKEN|PASSWORD|SECRET|ACCESS_KEY|PGPASS", re.I)
    for doc in docs:
        if doc["kind"] == "ConfigMap":
            assert not [k for k in doc["data"] if secretish.search(k)], doc["metadata"]["name"]
    for doc in workloads(docs):
        for c in pod_spec(doc)["containers"]:
            for entry in c.get("env", []):
                if secretish.search(entry["name"]):
                    assert "value" not in entry, entry["name"]
                    assert entry["valueFrom"]["secretKeyRef"]["name"].startswith("gitops-dora-")
    for text in _strings(docs):
        assert not re.search(r"postgres(ql)?://[^/@\s]*:[^/@\s]*@", text), text   # user:password@
        assert not re.search(r"PGPASSWORD=\S", text), text


def _strings(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [s for v in node.values() for s in _strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in _strings(v)]
    return [node] if isinstance(node, str) else []


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda p: p.name)
def test_tokens_come_from_a_secret_reference_and_config_validates(overlay: Path, tmp_path: Path) -> None:
    docs = render(overlay)
    cron = pod_spec(by_name(docs, "CronJob", "gitops-dora-collect"))["containers"][0]
    tokens = [e for e in cron["env"] if e["name"].endswith("_TOKEN")]
    assert tokens
    assert all("value" not in e and e["valueFrom"]["secretKeyRef"]["name"] == "gitops-dora-tokens"
               for e in tokens)
    config = by_name(docs, "ConfigMap", "gitops-dora-config")["data"]["gitops-dora.yaml"]
    path = tmp_path / "gitops-dora.yaml"
    path.write_text(config)
    cfg = load_config(path)                                   # the shipped config is valid
    assert cfg.connections.github.token_env == "GITHUB_TOKEN"


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda p: p.name)
def test_dashboard_deployment_probes_and_service(overlay: Path) -> None:
    docs = render(overlay)
    dep = by_kind(docs, "Deployment")
    spec = pod_spec(dep)
    container = spec["containers"][0]
    assert container["args"][:1] == ["dashboard"]
    port = container["ports"][0]
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"] == "/_stcore/health"
        assert container[probe]["httpGet"]["port"] in (port["name"], port["containerPort"])
    assert str(port["containerPort"]) == container["args"][container["args"].index("--port") + 1]
    service = by_kind(docs, "Service")
    assert service["spec"]["selector"].items() <= dep["spec"]["template"]["metadata"]["labels"].items()
    assert service["spec"]["ports"][0]["targetPort"] == port["name"]
    # The dashboard reads the same store the collector writes.
    collect = by_name(docs, "CronJob", "gitops-dora-collect")
    collector = pod_spec(collect)["containers"][0]
    env, collect_env = env_of(docs, container), env_of(docs, collector)
    assert env["GITOPS_DORA_DB"] == collect_env["GITOPS_DORA_DB"]
    assert env.get("GITOPS_DORA_DATA_PATH") == collect_env.get("GITOPS_DORA_DATA_PATH")


# ---- the embedded overlays (base, production) ------------------------------------------------------

def test_cronjob_collects_then_reports_into_the_volume() -> None:
    docs = render(PRODUCTION)
    cron = by_name(docs, "CronJob", "gitops-dora-collect")
    container = pod_spec(cron)["containers"][0]
    script = config_file(docs, cron, container, container["command"][-1])
    lines = commands(script)
    first_report = next(i for i, c in enumerate(lines) if c.startswith("gitops-dora report"))
    assert first_report > 0 and all(c.startswith("gitops-dora collect") for c in lines[:first_report])
    env = env_of(docs, container)
    db = store_path(env)
    assert db.startswith("/") and "GITOPS_DORA_DATA_PATH" not in env     # embedded: a catalog file
    assert claim_of(cron, container, db) == by_kind(docs, "PersistentVolumeClaim")["metadata"]["name"]
    assert claim_of(cron, container, env["GITOPS_DORA_CACHE"]) == claim_of(cron, container, db)
    reports = [c for c in lines if c.startswith("gitops-dora report")]
    assert all("--out /data/" in c or '--out "/data/' in c for c in reports)


def test_embedded_dashboard_can_open_the_sqlite_catalog() -> None:
    """SQLite (WAL) needs to create files beside the catalog even to read it, so the embedded
    dashboard mounts the store's volume read-write, on the collector's claim."""
    docs = render(PRODUCTION)
    dep = by_kind(docs, "Deployment")
    container = pod_spec(dep)["containers"][0]
    db = store_path(env_of(docs, container))
    mount, volume = mount_volume(dep, container, db)
    assert not mount.get("readOnly", False)
    assert volume["persistentVolumeClaim"]["claimName"] == "gitops-dora-data"


def test_production_overlay_changes_schedule_size_and_resources() -> None:
    base = render(BASE)
    prod = render(PRODUCTION)
    assert by_name(base, "CronJob", "gitops-dora-collect")["spec"]["schedule"] == "17 * * * *"
    assert by_name(prod, "CronJob", "gitops-dora-collect")["spec"]["schedule"] == "*/30 * * * *"
    assert by_kind(prod, "PersistentVolumeClaim")["spec"]["resources"]["requests"]["storage"] == "20Gi"
    dash = pod_spec(by_kind(prod, "Deployment"))["containers"][0]
    assert dash["resources"]["requests"]["memory"] == "768Mi"
    assert dash["readinessProbe"]["httpGet"]["path"] == "/_stcore/health"   # the patch kept the rest


def schedule_period_seconds(schedule: str) -> int:
    """The shortest time between two runs of a cron schedule of the shapes the manifests use:
    ``M * * * *`` (hourly), ``*/N * * * *`` (N dividing 60), ``M H * * *`` (daily). Anything else
    fails here, so a new shape gets a rule instead of an unchecked deadline."""
    minute, hour, *rest = schedule.split()
    assert rest == ["*", "*", "*"], schedule
    if hour == "*" and minute.isdigit():
        return 3600
    if hour == "*" and (m := re.fullmatch(r"\*/(\d+)", minute)) and 60 % int(m.group(1)) == 0:
        return int(m.group(1)) * 60
    if minute.isdigit() and hour.isdigit():
        return 86400
    raise AssertionError(f"no period rule for schedule {schedule!r}")


@pytest.mark.parametrize("folder", [BASE, *OVERLAYS], ids=lambda p: p.name)
def test_every_cronjob_run_ends_before_the_next_is_due(folder: Path) -> None:
    """A run may start up to startingDeadlineSeconds late and then runs for at most
    activeDeadlineSeconds: together no longer than the schedule's period, so runs never pile up.
    The production overlay collects every 30 minutes and used to keep the base's 50-minute
    deadline (for an hourly schedule), with a base comment claiming it stayed under the period."""
    for cron in (d for d in render(folder) if d["kind"] == "CronJob"):
        spec = cron["spec"]
        late = spec["startingDeadlineSeconds"]
        deadline = spec["jobTemplate"]["spec"]["activeDeadlineSeconds"]
        period = schedule_period_seconds(spec["schedule"])
        assert late + deadline <= period, (folder.name, cron["metadata"]["name"], late, deadline, period)
    if folder == PRODUCTION:
        collect = by_name(render(folder), "CronJob", "gitops-dora-collect")["spec"]
        assert schedule_period_seconds(collect["schedule"]) == 1800
        assert collect["jobTemplate"]["spec"]["activeDeadlineSeconds"] < 1800


# ---- the scale-out overlay --------------------------------------------------------------------------

def _groups(docs: list[dict[str, Any]]) -> dict[int, str]:
    data = by_name(docs, "ConfigMap", "gitops-dora-config")["data"]
    return {int(m.group(1)): text for key, text in data.items() if (m := GROUP_KEY.match(key))}


def test_scale_out_collects_with_an_indexed_job_one_pod_per_group() -> None:
    docs = render(SCALE_OUT)
    cron = by_name(docs, "CronJob", "gitops-dora-collect")
    job = cron["spec"]["jobTemplate"]["spec"]
    groups = _groups(docs)
    assert job["completionMode"] == "Indexed"
    assert sorted(groups) == list(range(len(groups))) and len(groups) >= 2   # 0..N-1, no gap
    assert job["completions"] == len(groups)
    assert 1 < job["parallelism"] <= job["completions"]
    assert job["backoffLimitPerIndex"] >= 1 and "backoffLimit" not in job  # one group cannot stop the rest
    assert "collect.sh" not in by_name(docs, "ConfigMap", "gitops-dora-config")["data"]
    container = pod_spec(cron)["containers"][0]
    assert "${JOB_COMPLETION_INDEX}" in container["command"][-1]
    for index in range(job["completions"]):                               # each index has its script
        path = re.search(r'"?(/\S+?\$\{JOB_COMPLETION_INDEX\}\S*?\.sh)"?', container["command"][-1])
        assert path
        script_path = path.group(1).replace("${JOB_COMPLETION_INDEX}", str(index))
        script = config_file(docs, cron, container, script_path)
        assert all(c.startswith("gitops-dora collect ") for c in commands(script))
    # A source (also a commented-out example) is in one group only.
    sources = [line.split("||")[0].strip() for text in groups.values()
               for line in commands(text.replace("# gitops-dora ", "gitops-dora "))]
    assert len(sources) == len(set(sources)), "a source is in two groups"


def test_scale_out_index_runs_only_its_group(tmp_path: Path) -> None:
    """Run the Job's command as each completion index would, against the ConfigMap's scripts and a
    stand-in `gitops-dora` that logs its arguments."""
    docs = render(SCALE_OUT)
    cron = by_name(docs, "CronJob", "gitops-dora-collect")
    container = pod_spec(cron)["containers"][0]
    mount, volume = next((m, v) for m in container["volumeMounts"] for v in pod_spec(cron)["volumes"]
                         if m["name"] == v["name"] and "configMap" in v)
    config = tmp_path / "etc"
    config.mkdir()
    for key, text in by_name(docs, "ConfigMap", volume["configMap"]["name"])["data"].items():
        (config / key).write_text(text)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "gitops-dora"
    fake.write_text('#!/bin/sh\necho "$JOB_COMPLETION_INDEX $*" >> "$LOG"\n')
    fake.chmod(0o755)
    command = [part.replace(mount["mountPath"], str(config)) for part in container["command"]]
    completions = cron["spec"]["jobTemplate"]["spec"]["completions"]
    groups = _groups(docs)
    for index in range(completions + 1):
        log = tmp_path / f"log-{index}"
        run = subprocess.run(command, capture_output=True, text=True, timeout=30,
                             env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}",
                                  "JOB_COMPLETION_INDEX": str(index), "LOG": str(log)})
        ran = log.read_text().splitlines() if log.exists() else []
        if index == completions:                 # no such group: the pod fails, it does not pass
            assert run.returncode != 0 and not ran
            continue
        assert run.returncode == 0, run.stderr
        assert len(ran) == len(commands(groups[index]))
        assert all(line.startswith(f"{index} collect ") for line in ran)
    assert any(commands(text) for text in groups.values())


def test_scale_out_reports_after_collection_into_the_shared_volume() -> None:
    docs = render(SCALE_OUT)
    report = by_name(docs, "CronJob", "gitops-dora-report")
    collect = by_name(docs, "CronJob", "gitops-dora-collect")
    container = pod_spec(report)["containers"][0]
    lines = commands(config_file(docs, report, container, container["command"][-1]))
    assert lines and all(c.startswith("gitops-dora report ") for c in lines)
    assert all("--out /data/" in c or '--out "/data/' in c for c in lines)
    assert claim_of(report, container, "/data/reports") == "gitops-dora-data"
    report_minute = int(report["spec"]["schedule"].split()[0])
    collect_minute = int(collect["spec"]["schedule"].split()[0])
    assert report_minute > collect_minute                    # within the hour, after the groups start
    assert report["spec"]["timeZone"] == collect["spec"]["timeZone"] == "Etc/UTC"


def test_scale_out_catalog_is_postgresql_with_the_password_from_a_secret() -> None:
    docs = render(SCALE_OUT)
    pvc = by_kind(docs, "PersistentVolumeClaim")
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]
    for doc in workloads(docs):
        for container in pod_spec(doc)["containers"]:
            env = env_of(docs, container)
            url = store_path(env)
            assert re.fullmatch(r"postgresql://gitops_dora@[a-z0-9.-]+:5432/gitops_dora", url), url
            assert env["GITOPS_DORA_DB_PASSWORD"]["secretKeyRef"] == {
                "name": "gitops-dora-catalog", "key": "password"}          # required, not optional
            for key, name in (("AWS_ACCESS_KEY_ID", "access-key-id"),
                              ("AWS_SECRET_ACCESS_KEY", "secret-access-key")):
                assert env[key]["secretKeyRef"] == {"name": "gitops-dora-s3", "key": name, "optional": True}
            data = env["GITOPS_DORA_DATA_PATH"]
            if data.startswith("/"):                       # the default: a folder on the RWX volume
                assert claim_of(doc, container, data) == pvc["metadata"]["name"]
            else:
                assert data.startswith("s3://")


def test_scale_out_dashboard_runs_two_replicas_on_no_single_node_volume() -> None:
    docs = render(SCALE_OUT)
    dep = by_kind(docs, "Deployment")
    assert dep["spec"]["replicas"] == 2
    spec = pod_spec(dep)
    claims = {v["persistentVolumeClaim"]["claimName"] for v in spec["volumes"]
              if "persistentVolumeClaim" in v}
    for pvc in (d for d in docs if d["kind"] == "PersistentVolumeClaim"):
        if pvc["metadata"]["name"] in claims:
            assert not {"ReadWriteOnce", "ReadWriteOncePod"} & set(pvc["spec"]["accessModes"])
    data = next(m for m in spec["containers"][0]["volumeMounts"] if m["mountPath"] == "/data")
    assert data["readOnly"] is True                          # a PostgreSQL catalog: only data files are read
    pod_labels = dep["spec"]["template"]["metadata"]["labels"].items()
    spread = spec["topologySpreadConstraints"][0]
    assert spread["topologyKey"] == "kubernetes.io/hostname"
    assert spread["labelSelector"]["matchLabels"].items() <= pod_labels
    pdb = by_kind(docs, "PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels
    assert pdb["spec"]["minAvailable"] < dep["spec"]["replicas"]


# ---- the one-off migration Job ----------------------------------------------------------------------

def test_migrate_store_job_copies_the_old_file_into_the_configured_store() -> None:
    job = yaml.safe_load(MIGRATE_JOB.read_text())
    base = yaml.safe_load((BASE / "kustomization.yaml").read_text())["images"][0]
    container = pod_spec(job)["containers"][0]
    assert container["image"] == f"{base['newName']}:{base['newTag']}"        # the same release
    docs = render(BASE)
    env = env_of(docs, container)
    args = [expand(a, env) for a in container["args"]]
    assert args[0] == "migrate-store" and args[1].endswith(".duckdb")
    assert args[2] == store_path(env) != args[1]
    assert claim_of(job, container, args[1]) == claim_of(job, container, args[2]) == "gitops-dora-data"
    assert job["spec"]["backoffLimit"] == 0                  # a failed copy is looked at, not retried
    password = next(e for e in container["env"] if e["name"] == "GITOPS_DORA_DB_PASSWORD")
    assert password["valueFrom"]["secretKeyRef"]["optional"] is True          # embedded needs none


# ---- other schedulers --------------------------------------------------------------------------------

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
    for overlay in OVERLAYS:
        for doc in workloads(render(overlay)):
            ctx = pod_spec(doc)["securityContext"]
            assert (ctx["runAsUser"], ctx["runAsGroup"]) == (int(user.group(1)), int(user.group(2)))
    assert re.search(r'^ENTRYPOINT \["gitops-dora"\]$', text, re.M)
    # The image's default store is the manifests' store, not the 0.1 file migrate-store reads: a
    # pod (or `docker run`) without the ConfigMap used to create a new store at the old path.
    default_db = re.search(r"^\s*GITOPS_DORA_DB=(\S+?)\s*\\?$", text, re.M)
    assert default_db
    for overlay in OVERLAYS:
        stores = {store_path(env_of(render(overlay), pod_spec(doc)["containers"][0]))
                  for doc in workloads(render(overlay)) if doc["kind"] != "Job"}
        embedded = {s for s in stores if s.startswith("/")}
        assert embedded <= {default_db.group(1)}, (overlay.name, stores)
    base_store = yaml.safe_load((BASE / "store.yaml").read_text())["data"]["GITOPS_DORA_DB"]
    assert default_db.group(1) == base_store
    migrate = yaml.safe_load(MIGRATE_JOB.read_text())
    assert default_db.group(1) not in pod_spec(migrate)["containers"][0]["args"][1]   # not the 0.1 input
    for package in ("analytics", "assessment", "dashboards", "data"):
        assert re.search(rf"^COPY {package} ", text, re.M), package
