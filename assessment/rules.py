"""Which detector signals satisfy (or refute) each capability.

A rule sees every finding grouped by signal and returns an ``Outcome``: ``met`` with supporting
evidence; ``not_met`` (``refuted`` when evidence shows the capability is missing, e.g. a
``:latest`` image, rather than merely absent); or ``unknown`` when the sources cannot tell.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from fnmatch import fnmatchcase

from assessment.detectors import Finding
from assessment.detectors.layout import environment_name


@dataclass
class Outcome:
    status: str  # met | not_met | unknown
    supporting: list[Finding] = field(default_factory=list)
    against: list[Finding] = field(default_factory=list)
    refuted: bool = False
    note: str | None = None


class Signals:
    def __init__(self, findings: Iterable[Finding]) -> None:
        self.by_signal: dict[str, list[Finding]] = defaultdict(list)
        for f in findings:
            self.by_signal[f.signal].append(f)

    def any(self, *names: str) -> list[Finding]:
        return [f for n in names for f in self.by_signal.get(n, [])]

    def values(self, *names: str) -> dict[str, Finding]:
        """One finding per distinct value (environment, provider, tenant...)."""
        out: dict[str, Finding] = {}
        for f in self.any(*names):
            if f.value:
                out.setdefault(f.value, f)
        return out


def _present(pos: list[Finding], against: Sequence[Finding] = (), missing: str | None = None) -> Outcome:
    """Met when anything supports it; evidence against is shown either way."""
    if pos:
        return Outcome("met", pos, list(against))
    return Outcome("not_met", [], list(against), refuted=bool(against), note=missing)


RECONCILERS = (
    "flux.kustomization",
    "flux.helmrelease",
    "flux.source",
    "flux.gotk-sync",
    "argocd.application",
    "argocd.applicationset",
    "cluster.reconciler",
    "collected.reconciler",
    "flux.v1",
)
INFRA = (
    "infra.terraform",
    "infra.crossplane",
    "infra.capi-cluster",
    "infra.capi-clusterclass",
    "flux.terraform",
    "k8s.infra-manifest",
)
INFRA_UNDER_GITOPS = (
    "infra.crossplane",
    "infra.capi-cluster",
    "infra.capi-clusterclass",
    "flux.terraform",
    "k8s.infra-manifest",
)
POLICY = ("policy.kyverno", "policy.gatekeeper", "cluster.policy")


def declarative_iac(s: Signals) -> Outcome:
    return _present(
        s.any(*INFRA),
        missing="no Terraform, Crossplane, Cluster API, cluster add-ons or cluster configuration declared",
    )


def declarative_workloads(s: Signals) -> Outcome:
    return _present(
        s.any("k8s.manifest", "helm.chart", "kustomize.kustomization"),
        missing="no Kubernetes manifests, Helm charts or kustomizations",
    )


def version_control(s: Signals) -> Outcome:
    """Met by a repository with history; one with no commit yet versions nothing so far."""
    unborn = s.any("vcs.unborn")
    return _present(s.any("vcs.git"), unborn,
                    missing="a git repository with no commit yet" if unborn else "not a git repository")


def _image_name(ref: str) -> str:
    last = ref.rsplit("/", 1)[-1]
    return ref.rsplit(":", 1)[0] if ":" in last else ref


def immutable_images(s: Signals) -> Outcome:
    """A base's `:latest` that a kustomization overrides with a pinned tag is never deployed."""
    overridden = {f.value for f in s.any("images.override")}
    latest = [f for f in s.any("images.latest") if _image_name(f.value or "") not in overridden]
    pinned = s.any("images.pinned", "images.automation")
    if latest:
        return Outcome(
            "not_met",
            pinned,
            latest,
            refuted=True,
            note=f"{len(latest)} image references use :latest or no tag",
        )
    if pinned:
        return Outcome("met", pinned)
    return Outcome("unknown", note="no container image references found")


def suitable_infrastructure(s: Signals) -> Outcome:
    return _present(
        s.any("cluster.kubernetes", "k8s.manifest", "helm.chart"),
        missing="no Kubernetes manifests and no cluster evidence",
    )


def workload_reconciliation(s: Signals) -> Outcome:
    against = s.any(
        "argocd.no-self-heal", "argocd.manual-sync", "flux.suspended", "collected.drift-uncorrected"
    )
    return _present(
        # Flux v1 re-applies the repository on every sync, correcting drift
        s.any("flux.kustomization", "flux.helm-drift", "argocd.self-heal", "collected.drift-corrected",
              "flux.v1"),
        against,
        missing="no reconciler that corrects drift automatically",
    )


# Objects that decide which folder a cluster builds: they live in a cluster folder or name a path.
PATH_RECONCILERS = (
    "flux.kustomization",
    "flux.helmrelease",
    "flux.gotk-sync",
    "flux.v1",
    "argocd.application",
    "argocd.applicationset",
)


def _builds(directory: str, reference: str) -> bool:
    """Whether a reconciler building ``reference`` builds ``directory`` or a folder inside it,
    segment by segment, so a glob (an ApplicationSet git generator's ``apps/*/overlays/*``) matches
    too. A reference to a parent (``./overlays``) builds one thing out of every overlay: that is no
    environment."""
    folders, refs = directory.split("/"), reference.split("/")
    if not directory or len(refs) < len(folders):
        return False
    return all(fnmatchcase(d, r) for d, r in zip(folders, refs, strict=False))


def environment_management(s: Signals) -> Outcome:
    """Environments are what really targets different clusters or namespaces (issue #14): Argo CD
    destinations, an ApplicationSet cluster generator, cluster folders that hold a reconciler
    (Flux's Kustomizations per cluster), and overlays a reconciler builds (a Flux Kustomization's
    ``spec.path``, an Argo CD source path or git generator directory). An overlay no reconciler
    builds is not an environment; values files never are.

    When the sources hold no reconciler at all, overlays and cluster folders cannot be judged either
    way (the Kustomizations or Applications may live in another repository): ``unknown``."""
    references = s.any("flux.path", "argocd.path")
    # Every folder an exact path builds (the path and each parent of it), so matching a candidate is
    # one lookup: thousands of overlays times thousands of Kustomizations would otherwise be
    # millions of comparisons. Globs (git generators) are few and compared one by one.
    built: dict[str, Finding] = {}
    globs = [r for r in references if any(c in (r.value or "") for c in "*?[")]
    for r in references:
        parts = (r.value or "").split("/") if r not in globs else []
        for n in range(1, len(parts) + 1):
            built.setdefault("/".join(parts[:n]), r)
    reconcilers = s.any(*PATH_RECONCILERS)
    envs: dict[str, Finding] = {}
    unreferenced: dict[str, Finding] = {}
    for folder in s.any("layout.cluster"):
        prefix = folder.path or ""
        holder = next((r for r in reconcilers if (r.path or "").startswith(prefix)), None)
        if holder is not None:
            where = f"{holder.path}:{holder.line}" if holder.line else holder.path
            envs.setdefault(folder.value or "?", replace(
                folder, detail=f"environment {folder.value} (cluster directory with a reconciler, {where})"))
        else:
            unreferenced.setdefault(folder.value or "?", folder)
    for candidate in s.any("layout.environment", "kustomize.overlay"):
        directory = candidate.value or ""
        name = environment_name(directory)
        ref = built.get(directory) if directory else None
        if ref is None:
            ref = next((r for r in globs if _builds(directory, r.value or "")), None)
        if ref is not None:
            detail = f"environment {name}: {directory} built by {ref.detail}"
            envs.setdefault(name, replace(ref, detail=detail))
        else:
            unreferenced.setdefault(name, candidate)
    for name in envs:
        unreferenced.pop(name, None)
    destinations = s.values("argocd.destination")
    generated = s.any("argocd.cluster-generator")
    found = list(envs.values()) + list(destinations.values())
    if len(envs) >= 2 or len(destinations) >= 2 or generated:
        return Outcome("met", found + generated)
    named = ", ".join(sorted(unreferenced))
    if not reconcilers and len(envs) + len(unreferenced) >= 2:
        # the folders are named in the note, not listed as support: nothing shows they are environments
        return Outcome("unknown", found,
                       note=f"overlays or cluster folders for {named}, but no Flux Kustomization or Argo CD "
                       "Application in these sources builds them")
    note = "fewer than two environments described (different clusters or namespaces)"
    if unreferenced:
        note += f"; no reconciler builds the overlays or cluster folders for {named}"
    return Outcome("not_met", found, note=note)


def secrets_management(s: Signals) -> Outcome:
    tools = s.any(
        "secrets.sops-config",
        "secrets.sops-encrypted",
        "secrets.sealed",
        "secrets.external",
        "secrets.sops-decryption",
        "cluster.secrets",
    )
    plain = s.any("k8s.plain-secret", "secrets.plaintext")
    if plain:
        secrets = len(s.any("k8s.plain-secret"))
        creds = len(plain) - secrets
        what = [f"{secrets} Secrets hold plain-text data"] if secrets else []
        what += [f"{creds} plain-text credentials in ConfigMaps, values or env"] if creds else []
        return Outcome("not_met", tools, plain, refuted=True, note="; ".join(what))
    return _present(tools, missing="no SOPS, Sealed Secrets or External Secrets")


def pull_based(s: Signals) -> Outcome:
    return _present(s.any(*RECONCILERS), s.any("push.ci-deploy"), missing="no Flux or Argo CD reconciler")


def package_management(s: Signals) -> Outcome:
    return _present(
        s.any(
            "helm.chart",
            "kustomize.kustomization",
            "flux.helmrelease",
            "flux.v1-helm",
            "argocd.helm-source",
            "argocd.kustomize-source",
        ),
        missing="no Helm charts or kustomizations",
    )


def whole_environment(s: Signals) -> Outcome:
    parts = {
        "infrastructure": s.any(*INFRA_UNDER_GITOPS),
        "workloads": s.any("k8s.workload", "helm.chart", "flux.helmrelease"),
        "a pull-based reconciler": s.any(*RECONCILERS),
    }
    missing = [k for k, v in parts.items() if not v]
    found = [f for v in parts.values() for f in v[:3]]
    if missing:
        return Outcome("not_met", found, note="missing " + ", ".join(missing))
    return Outcome("met", found)


def cluster_workload_separation(s: Signals) -> Outcome:
    config, apps = s.any("layout.config-dir"), s.any("layout.apps-dir")
    depends = s.any("flux.depends-on")
    if (config and apps) or depends:
        return Outcome("met", config + apps + depends)
    return Outcome("not_met", config + apps, note="cluster configuration and workloads are not separated")


def security_governance(s: Signals) -> Outcome:
    return _present(
        s.any(*POLICY, "governance.codeowners", "collected.all-prs-reviewed"),
        s.any("collected.unreviewed-prs"),
        missing="no policy engine, CODEOWNERS or review data",
    )


def progressive_delivery(s: Signals) -> Outcome:
    return _present(
        s.any("progressive.canary", "progressive.rollout", "progressive.analysis", "cluster.progressive"),
        missing="no Flagger or Argo Rollouts",
    )


def template_customization(s: Signals) -> Outcome:
    return _present(
        s.any("kustomize.overlay", "flux.helm-values", "argocd.helm-values", "helm.values-variants"),
        missing="no overlays or per-environment values",
    )


def fleet_management(s: Signals) -> Outcome:
    clusters = s.values("layout.cluster")
    pos = s.any("argocd.cluster-generator", "infra.capi-clusterclass")
    if pos or len(clusters) >= 3:
        return Outcome("met", pos + list(clusters.values()))
    return Outcome(
        "not_met", list(clusters.values()), note=f"{len(clusters)} cluster directories, no fleet generator"
    )


def mass_customization(s: Signals) -> Outcome:
    """Flux postBuild substitution counts when it parameterises several clusters, not one value into
    one cluster."""
    substitute = s.values("flux.substitute")
    pos = s.any("argocd.appset-parameters", "kustomize.component")
    if len(substitute) >= 2:
        pos += list(substitute.values())
    return _present(pos, missing="no parameterised generation per cluster or tenant")


def advanced_policy(s: Signals) -> Outcome:
    return _present(s.any("policy.advanced"), missing="no mutate, generate or verifyImages policies")


def cross_enterprise_governance(s: Signals) -> Outcome:
    tenants = s.values("argocd.restricted-project", "flux.tenant")
    policy = s.any(*POLICY)
    if len(tenants) >= 2 and policy:
        return Outcome("met", list(tenants.values()) + policy[:3])
    if not tenants and not policy:
        return Outcome("unknown", note="no tenancy or policy evidence in the sources")
    return Outcome(
        "not_met",
        list(tenants.values()) + policy[:3],
        note=f"{len(tenants)} restricted tenants, policy engine {'present' if policy else 'absent'}",
    )


def multi_cloud(s: Signals) -> Outcome:
    providers: dict[str, Finding] = {}
    for name, finding in s.values("infra.provider").items():
        if not name.startswith("local"):  # vSphere and OpenStack are both one place: on-premises
            providers.setdefault(name.split(" (", 1)[0], finding)
    if len(providers) >= 2:
        return Outcome("met", list(providers.values()))
    if providers:
        return Outcome("not_met", list(providers.values()), note="one infrastructure provider only")
    return Outcome("unknown", note="no infrastructure provider found")


RULES: dict[str, Callable[[Signals], Outcome]] = {
    "declarative-iac": declarative_iac,
    "declarative-workloads": declarative_workloads,
    "version-control": version_control,
    "immutable-images": immutable_images,
    "suitable-infrastructure": suitable_infrastructure,
    "workload-reconciliation": workload_reconciliation,
    "environment-management": environment_management,
    "secrets-management": secrets_management,
    "pull-based": pull_based,
    "package-management": package_management,
    "whole-environment": whole_environment,
    "cluster-workload-separation": cluster_workload_separation,
    "security-governance": security_governance,
    "progressive-delivery": progressive_delivery,
    "template-customization": template_customization,
    "fleet-management": fleet_management,
    "mass-customization": mass_customization,
    "advanced-policy": advanced_policy,
    "cross-enterprise-governance": cross_enterprise_governance,
    "multi-cloud": multi_cloud,
}

# For an ``unknown``: the source that would decide it (the alternative to answering the question).
UNKNOWN_SOURCES: dict[str, str] = {
    "environment-management": "pass the repository (or a --cluster-dump) with the Flux Kustomizations or "
    "Argo CD Applications that build the overlays",
    "immutable-images": "pass the application repository (or a --cluster-dump) that declares the images",
    "cross-enterprise-governance": "pass the repository that declares tenants (AppProjects, Flux tenants) "
    "and policies",
    "multi-cloud": "pass the repository that declares clusters and cloud resources (Terraform, Cluster API, "
    "Crossplane)",
}
