"""Which service and environment a reconciler object deploys.

Objects are named by people, so the mapping tries the explicit signals first (config rules, then
labels and annotations), then naming conventions (``<service>-<environment>``, the destination
namespace or cluster), and says which one it used so the ``deployments`` view can show it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from analytics.config import Config


@dataclass(frozen=True)
class ObjectRef:
    """A reconciler object as far as mapping and keys need it."""

    reconciler: str  # argocd | flux
    kind: str  # Application | Kustomization | HelmRelease
    namespace: str
    name: str
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    destinations: tuple[str, ...] = ()  # destination namespace / cluster name / target namespace
    source_url: str | None = None

    @property
    def path(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}"

    @property
    def key(self) -> tuple[str, str, str, str]:
        """The natural key of its ``reconciler_objects`` row."""
        return (self.reconciler, self.kind, self.namespace, self.name)


@dataclass(frozen=True)
class Mapped:
    service: str
    environment: str
    mapped_by: str


def _str_dict(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(k): str(v) for k, v in value.items() if v is not None}


def object_ref(reconciler: str, obj: dict[str, Any], default_kind: str = "") -> ObjectRef:
    """Build a ref from a full Kubernetes object (Application, Kustomization, HelmRelease)."""
    meta: dict[str, Any] = obj["metadata"] if isinstance(obj.get("metadata"), dict) else {}
    spec: dict[str, Any] = obj["spec"] if isinstance(obj.get("spec"), dict) else {}
    dests: list[str] = []
    source_url: str | None = None
    dest: dict[str, Any] = spec["destination"] if isinstance(spec.get("destination"), dict) else {}
    for key in ("namespace", "name"):
        if dest.get(key):
            dests.append(str(dest[key]))
    if spec.get("targetNamespace"):
        dests.append(str(spec["targetNamespace"]))
    src = spec.get("source") if isinstance(spec.get("source"), dict) else None
    if src is None and isinstance(spec.get("sources"), list) and spec["sources"]:
        first = spec["sources"][0]
        src = first if isinstance(first, dict) else None
    if src and src.get("repoURL"):
        source_url = str(src["repoURL"])
    ref = spec.get("sourceRef") if isinstance(spec.get("sourceRef"), dict) else None
    if ref and ref.get("name"):
        ref_ns = ref.get("namespace", meta.get("namespace", ""))
        source_url = f"{ref.get('kind', 'GitRepository')}/{ref_ns}/{ref['name']}"
    return ObjectRef(
        reconciler=reconciler,
        kind=str(obj.get("kind") or default_kind),
        namespace=str(meta.get("namespace") or ""),
        name=str(meta.get("name") or ""),
        labels=_str_dict(meta.get("labels")),
        annotations=_str_dict(meta.get("annotations")),
        destinations=tuple(dests),
        source_url=source_url,
    )


def _env_names(config: Config) -> list[str]:
    return sorted((e.name for e in config.environments), key=len, reverse=True)


def _default_environment(config: Config) -> str:
    prod = config.production_environments()
    if prod:
        return prod[0]
    return config.environments[0].name if config.environments else "production"


def map_object(ref: ObjectRef, config: Config) -> Mapped:
    """Rules, then label/annotation keys, then naming conventions; never fails."""
    service: str | None = None
    environment: str | None = None
    how: list[str] = []
    for number, rule in enumerate(config.mapping.rules, start=1):
        m = re.search(rule.match, ref.path)
        if not m:
            continue
        groups = m.groupdict()
        svc = rule.service or groups.get("service")
        env = rule.environment or groups.get("environment")
        if svc and service is None:
            service = svc.format(**{k: v or "" for k, v in groups.items()}) if "{" in svc else svc
        if env and environment is None:
            environment = env.format(**{k: v or "" for k, v in groups.items()}) if "{" in env else env
        how.append(f"rule:{number}")
        if service and environment:
            break
    for kind, values in (("label", ref.labels), ("annotation", ref.annotations)):
        for key in config.mapping.service_keys:
            if service is None and values.get(key):
                service = values[key]
                how.append(f"{kind}:{key}")
        for key in config.mapping.environment_keys:
            if environment is None and values.get(key):
                environment = values[key]
                how.append(f"{kind}:{key}")
    envs = _env_names(config)
    if environment is None or service is None:
        for env in envs:
            for sep in ("-", "_", "."):
                if ref.name.endswith(sep + env) and len(ref.name) > len(env) + 1:
                    if environment is None:
                        environment = env
                    if service is None:
                        service = ref.name[: -len(env) - 1]
                    how.append("name-suffix")
                    break
            if "name-suffix" in how:
                break
    if environment is None:
        for dest in ref.destinations:
            env = next(
                (e for e in envs if dest == e or dest.endswith("-" + e) or dest.startswith(e + "-")), None
            )
            if env:
                environment = env
                how.append("destination")
                break
    if service is None:
        service = ref.name
        how.append("name")
    if environment is None:
        environment = _default_environment(config)
        how.append("default")
    return Mapped(service=service, environment=environment, mapped_by=",".join(dict.fromkeys(how)))
