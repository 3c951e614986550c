"""Repository layout: clusters/<name>/ and environment overlays, cluster-config vs workload dirs."""

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
        yield Finding(
            "layout.environment", f"environment {name} (cluster directory)", prefix, None, value=name
        )
    for prefix, name in sorted(envs.items()):
        yield Finding("layout.environment", f"environment overlay {name}", prefix, None, value=name)
    for prefix, name in sorted(config_dirs.items()):
        yield Finding(
            "layout.config-dir", f"cluster configuration directory {prefix}", prefix, None, value=name
        )
    for prefix, name in sorted(app_dirs.items()):
        yield Finding("layout.apps-dir", f"workload directory {prefix}", prefix, None, value=name)
