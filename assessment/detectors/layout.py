"""Repository layout: clusters/<name>/ and environment overlays, cluster-config vs workload dirs.

A directory is only a *candidate* environment here: the rules count it when a reconciler lives in
it (a cluster directory) or builds it (a Flux Kustomization ``spec.path``, an Argo CD source path),
because a folder name alone does not show that anything targets another cluster or namespace.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from assessment.detectors import Finding

CLUSTER_DIRS = {"clusters"}
ENV_DIRS = {"overlays", "environments", "envs", "env"}
CONFIG_DIRS = {"clusters", "infrastructure", "infra", "platform"}
APP_DIRS = {"apps", "applications", "workloads", "services", "tenants"}
_MANIFEST = (".yaml", ".yml")


def layout(paths: Sequence[str]) -> Iterator[Finding]:
    clusters: dict[str, str] = {}
    envs: dict[str, str] = {}
    config_dirs: dict[str, str] = {}
    app_dirs: dict[str, str] = {}
    for path in paths:
        if not path.endswith(_MANIFEST):
            continue
        parts = path.split("/")
        for i, seg in enumerate(parts[:-2]):  # a named directory that holds at least one file
            prefix = "/".join(parts[: i + 2]) + "/"
            if seg in CLUSTER_DIRS:
                clusters.setdefault(prefix, parts[i + 1])
            if seg in ENV_DIRS:
                envs.setdefault(prefix, parts[i + 1])
        for i, seg in enumerate(parts[:2][: len(parts) - 1]):
            prefix = "/".join(parts[: i + 1]) + "/"
            if seg in CONFIG_DIRS:
                config_dirs.setdefault(prefix, seg)
            if seg in APP_DIRS:
                app_dirs.setdefault(prefix, seg)
    for prefix, name in sorted(clusters.items()):
        yield Finding("layout.cluster", f"cluster directory {name}", prefix, None, value=name)
    for prefix, name in sorted(envs.items()):
        # value: the directory itself (unprefixed in multi-repository runs), which references name
        yield Finding("layout.environment", f"environment overlay {name}", prefix, None,
                      value=prefix.rstrip("/"))
    for prefix, name in sorted(config_dirs.items()):
        yield Finding(
            "layout.config-dir", f"cluster configuration directory {prefix}", prefix, None, value=name
        )
    for prefix, name in sorted(app_dirs.items()):
        yield Finding("layout.apps-dir", f"workload directory {prefix}", prefix, None, value=name)


def environment_name(directory: str) -> str:
    """The environment a directory stands for: the folder after ``clusters/``, ``overlays/``,
    ``environments/``... (``apps/web/overlays/prod/us`` is ``prod``), else its last folder
    (``apps/staging`` is ``staging``)."""
    parts = [p for p in directory.strip("/").split("/") if p]
    for i, part in enumerate(parts[:-1]):
        if part in ENV_DIRS or part in CLUSTER_DIRS:
            return parts[i + 1]
    return parts[-1] if parts else "."


def normalise_path(path: str) -> str:
    """A reconciler's path as a directory of the repository: no ``./``, no trailing slash, ``""``
    for the root."""
    parts = [p for p in path.strip().split("/") if p and p != "."]
    return "/".join(parts)
