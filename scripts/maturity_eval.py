"""Precision and recall of the maturity detectors on the fixture repositories (issue #14).

Each repository of tests/maturity_repos.py is built in a temporary directory and assessed (nothing
is stored); the capabilities it really has, worked out by hand from its files, are the labels below.
A capability counts as predicted when its status is ``met``; precision and recall are printed per
capability and pooled, followed by the evidence pointers (path:line) expected against secrets
management and immutable images.

    .venv/bin/python scripts/maturity_eval.py
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assessment.model import CAPABILITY_IDS  # noqa: E402
from assessment.runner import AssessRequest, run_assessment  # noqa: E402
from tests import maturity_repos as repos  # noqa: E402
from tests.gitrepo import GitRepo  # noqa: E402

L0 = {
    "declarative-iac", "declarative-workloads", "version-control", "immutable-images",
    "suitable-infrastructure",
}

# fixture -> (builder, capabilities that are really in place, (capability, path, line) expected against)
Fixture = tuple[Callable[[Path], GitRepo], set[str], set[tuple[str, str, int]]]
FIXTURES: dict[str, Fixture] = {
    "flux2-kustomize-helm-example": (
        repos.flux2_kustomize_helm_example,
        L0 | {"workload-reconciliation", "environment-management", "pull-based", "package-management",
              "whole-environment", "cluster-workload-separation", "template-customization"},
        set(),
    ),
    "flux-multi-cluster": (
        repos.flux_multi_cluster,
        L0 | {"workload-reconciliation", "environment-management", "pull-based", "package-management",
              "whole-environment", "cluster-workload-separation", "template-customization"},
        set(),
    ),
    "tool-with-examples": (
        repos.tool_repo_with_examples,
        {"declarative-workloads", "version-control", "immutable-images", "suitable-infrastructure",
         "package-management"},
        set(),
    ),
    "images-everywhere": (
        repos.images_everywhere,
        L0 | {"workload-reconciliation", "environment-management", "pull-based", "package-management",
              "whole-environment", "security-governance", "template-customization", "advanced-policy"},
        set(),
    ),
    "images-latest-in-values": (
        lambda p: repos.images_everywhere(p, web_tag="latest"),
        (L0 - {"immutable-images"}) | {"workload-reconciliation", "environment-management", "pull-based",
                                       "package-management", "whole-environment", "security-governance",
                                       "template-customization", "advanced-policy"},
        {("immutable-images", "charts/web/values.yaml", 3)},
    ),
    "plaintext-credentials": (
        repos.plaintext_credentials,
        {"declarative-workloads", "version-control", "immutable-images", "suitable-infrastructure",
         "pull-based", "package-management", "template-customization"},
        {("secrets-management", "charts/shop/values-production.yaml", 4),
         ("secrets-management", "manifests/config.yaml", 7),
         ("secrets-management", "manifests/worker.yaml", 21)},
    ),
    "flux-platform": (
        repos.flux_platform,
        L0 | {"workload-reconciliation", "pull-based", "package-management", "whole-environment",
              "cluster-workload-separation", "security-governance"},
        set(),
    ),
    "flux-platform-tenants": (
        lambda p: repos.flux_platform(p, tenants=True),
        L0 | {"workload-reconciliation", "pull-based", "package-management", "whole-environment",
              "cluster-workload-separation", "security-governance", "cross-enterprise-governance"},
        set(),
    ),
    "flux-v1": (
        repos.flux_v1,
        {"declarative-workloads", "version-control", "immutable-images", "suitable-infrastructure",
         "workload-reconciliation", "pull-based", "package-management", "template-customization"},
        set(),
    ),
    "overlays-staging-unbuilt": (
        lambda p: repos.overlay_environments(p, staging_by=None),  # dev and staging: nobody builds them
        L0 | {"workload-reconciliation", "pull-based", "package-management", "whole-environment",
              "cluster-workload-separation", "template-customization"},
        set(),
    ),
    "overlays-staging-by-argocd": (
        lambda p: repos.overlay_environments(p, staging_by="argocd"),
        L0 | {"workload-reconciliation", "environment-management", "pull-based", "package-management",
              "whole-environment", "cluster-workload-separation", "template-customization"},
        set(),
    ),
    "sops-flux": (
        repos.sops_flux,  # labels as worked out in tests/test_assess.py::test_sops_encrypted_secrets
        L0 | {"workload-reconciliation", "environment-management", "secrets-management", "pull-based",
              "package-management", "cluster-workload-separation"},
        set(),
    ),
}


def assess(builder: Callable[[Path], GitRepo], where: Path) -> dict[str, Any]:
    repo = builder(where / "repo")
    return run_assessment(AssessRequest(specs=[str(repo.path)], db_path=where / "none.duckdb")).result


def ratio(num: int, den: int) -> str:
    return "-" if den == 0 else f"{num / den:.2f}"


def main() -> int:
    tp: dict[str, int] = dict.fromkeys(CAPABILITY_IDS, 0)
    fp: dict[str, int] = dict.fromkeys(CAPABILITY_IDS, 0)
    fn: dict[str, int] = dict.fromkeys(CAPABILITY_IDS, 0)
    mistakes: list[str] = []
    ev_tp = ev_fp = ev_fn = 0
    for name, (builder, truth, against) in FIXTURES.items():
        with tempfile.TemporaryDirectory() as tmp:
            result = assess(builder, Path(tmp))
        for cap in result["capabilities"]:
            predicted, actual = cap["status"] == "met", cap["id"] in truth
            if predicted and actual:
                tp[cap["id"]] += 1
            elif predicted:
                fp[cap["id"]] += 1
                mistakes.append(f"{name}: {cap['id']} rated met, is not")
            elif actual:
                fn[cap["id"]] += 1
                mistakes.append(f"{name}: {cap['id']} rated {cap['status']}, is met")
        pointed = {
            (cap["id"], e["path"], e["line"])
            for cap in result["capabilities"]
            if cap["id"] in ("secrets-management", "immutable-images")
            for e in cap["evidence"]
            if not e["supports"] and e["path"]
        }
        ev_tp += len(pointed & against)
        ev_fp += len(pointed - against)
        ev_fn += len(against - pointed)
        mistakes += [f"{name}: unexpected evidence against {c} at {p}:{ln}" for c, p, ln in pointed - against]
        mistakes += [f"{name}: missed evidence against {c} at {p}:{ln}" for c, p, ln in against - pointed]
    print(f"{len(FIXTURES)} fixture repositories, {len(CAPABILITY_IDS)} capabilities each\n")
    print(f"{'capability':32} {'tp':>3} {'fp':>3} {'fn':>3} {'precision':>9} {'recall':>6}")
    for cid in CAPABILITY_IDS:
        print(f"{cid:32} {tp[cid]:>3} {fp[cid]:>3} {fn[cid]:>3} "
              f"{ratio(tp[cid], tp[cid] + fp[cid]):>9} {ratio(tp[cid], tp[cid] + fn[cid]):>6}")
    t, f, n = sum(tp.values()), sum(fp.values()), sum(fn.values())
    print(f"{'all capabilities (pooled)':32} {t:>3} {f:>3} {n:>3} {ratio(t, t + f):>9} {ratio(t, t + n):>6}")
    print(f"{'evidence against (path:line)':32} {ev_tp:>3} {ev_fp:>3} {ev_fn:>3} "
          f"{ratio(ev_tp, ev_tp + ev_fp):>9} {ratio(ev_tp, ev_tp + ev_fn):>6}")
    if mistakes:
        print("\nDisagreements:")
        for line in mistakes:
            print(f"  {line}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
