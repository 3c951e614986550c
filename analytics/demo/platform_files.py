"""The platform team's own changes to ``platform-config``, committed on fixed dates.

The config repository starts as plain Kustomize overlays (nothing reconciles them as far as the
repository can show). Three changes then adopt GitOps step by step, so ``assess --history
monthly`` shows the maturity level rising the way a real adoption does:

* mid June: Flux bootstrapped per cluster (``gotk-sync.yaml``), a pruning Flux Kustomization
  per environment for the Flux-managed service, ingress-nginx as a HelmRelease and the clusters'
  Terraform, which together meet Level 0;
* mid August: SOPS-encrypted secrets and SOPS decryption on the Kustomizations (Level 1);
* October: CODEOWNERS and a Kyverno policy (security governance, one step towards Level 2).

Nothing here touches ``apps/<service>/overlays/``, so which config commit deployed which
image does not change. Image references are avoided on purpose: the HelmRelease values and the
policy hold none, so ``immutable-images`` is judged on the workloads alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from analytics.demo.fast_import import Person
from analytics.demo.orgspec import CONFIG_REPO, ENVIRONMENTS

PLATFORM_ENGINEER = Person("Nadia Petrova", "nadia@platform.example.com", "+0100")
FLUX_SERVICE = "inventory"  # the service Flux deploys (the others are Argo CD Applications)
CONFIG_URL = f"https://git.example.com/demo/{CONFIG_REPO}.git"
_SOPS_DECRYPTION = "  decryption:\n    provider: sops\n    secretRef:\n      name: sops-age\n"


@dataclass(frozen=True)
class PlatformChange:
    at: datetime
    message: str
    files: dict[str, str]


def _gotk_sync(env: str, decryption: bool) -> str:
    return (
        "# Flux bootstrap of the " + env + " cluster: where Flux reads its own configuration.\n"
        "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata:\n"
        f"  name: {CONFIG_REPO}\n  namespace: flux-system\nspec:\n  interval: 1m0s\n"
        "  ref:\n    branch: main\n  secretRef:\n    name: flux-system\n"
        f"  url: {CONFIG_URL}\n"
        "---\n"
        "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n"
        "  name: flux-system\n  namespace: flux-system\nspec:\n  interval: 10m0s\n"
        f"  path: ./clusters/{env}\n  prune: true\n"
        f"  sourceRef:\n    kind: GitRepository\n    name: {CONFIG_REPO}\n"
        + (_SOPS_DECRYPTION if decryption else "")
    )


def _infrastructure() -> str:
    return (
        "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n"
        "  name: infrastructure-controllers\n  namespace: flux-system\nspec:\n  interval: 1h\n"
        "  path: ./infrastructure/controllers\n  prune: true\n  wait: true\n"
        f"  sourceRef:\n    kind: GitRepository\n    name: {CONFIG_REPO}\n"
    )


def _workloads(env: str, decryption: bool) -> str:
    """Named like the Kustomization in the demo's reconciler dump (step 50), same path and source."""
    return (
        "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n"
        f"  name: {FLUX_SERVICE}-{env}\n  namespace: flux-system\nspec:\n  interval: 10m\n"
        "  dependsOn:\n    - name: infrastructure-controllers\n"
        f"  path: ./apps/{FLUX_SERVICE}/overlays/{env}\n  prune: true\n"
        f"  sourceRef:\n    kind: GitRepository\n    name: {CONFIG_REPO}\n"
        + (_SOPS_DECRYPTION if decryption else "")
    )


def _policies() -> str:
    return (
        "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n"
        "  name: policies\n  namespace: flux-system\nspec:\n  interval: 30m\n"
        "  dependsOn:\n    - name: infrastructure-controllers\n"
        "  path: ./policies\n  prune: true\n"
        f"  sourceRef:\n    kind: GitRepository\n    name: {CONFIG_REPO}\n"
    )


_INGRESS = """\
apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmRepository
metadata:
  name: ingress-nginx
  namespace: flux-system
spec:
  interval: 24h
  url: https://kubernetes.github.io/ingress-nginx
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: ingress-nginx
  namespace: ingress-nginx
spec:
  interval: 30m
  chart:
    spec:
      chart: ingress-nginx
      version: "4.11.3"
      sourceRef:
        kind: HelmRepository
        name: ingress-nginx
        namespace: flux-system
  install:
    createNamespace: true
  values:
    controller:
      replicaCount: 2
      metrics:
        enabled: true
"""

_KYVERNO = """\
apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmRepository
metadata:
  name: kyverno
  namespace: flux-system
spec:
  interval: 24h
  url: https://kyverno.github.io/kyverno/
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: kyverno
  namespace: kyverno
spec:
  interval: 30m
  chart:
    spec:
      chart: kyverno
      version: "3.2.6"
      sourceRef:
        kind: HelmRepository
        name: kyverno
        namespace: flux-system
  install:
    createNamespace: true
"""

_TERRAFORM = """\
# The demo's two EKS clusters. Applied from CI by the platform team; Flux runs inside them.
terraform {
  required_version = ">= 1.6"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.60"
    }
  }
}

provider "aws" {
  region = "eu-central-1"
}

module "cluster" {
  source   = "terraform-aws-modules/eks/aws"
  version  = "~> 20.24"
  for_each = toset(["staging", "production"])

  cluster_name    = "demo-${each.key}"
  cluster_version = "1.30"
  subnet_ids      = var.subnet_ids[each.key]
  vpc_id          = var.vpc_id
}

variable "vpc_id" {
  type = string
}

variable "subnet_ids" {
  type = map(list(string))
}
"""

_SOPS_RULES = """\
creation_rules:
  - path_regex: clusters/production/.*\\.enc\\.yaml$
    encrypted_regex: ^(data|stringData)$
    age: age1demo0production0key0qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq
  - path_regex: clusters/staging/.*\\.enc\\.yaml$
    encrypted_regex: ^(data|stringData)$
    age: age1demo0staging0key0qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq
"""

_PRODUCTION_SECRET = """\
apiVersion: v1
kind: Secret
metadata:
  name: inventory-db
  namespace: inventory-production
type: Opaque
stringData:
  DATABASE_URL: ENC[AES256_GCM,data:q8Jm3dW1c0Zr5y2Lk9vT,iv:ZGVtby1pdi0x,tag:ZGVtby10YWctMQ==,type:str]
  DATABASE_PASSWORD: ENC[AES256_GCM,data:Yk2pX7rQ,iv:ZGVtby1pdi0y,tag:ZGVtby10YWctMg==,type:str]
sops:
  age:
    - recipient: age1demo0production0key0qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq
      enc: |
        -----BEGIN AGE ENCRYPTED FILE-----
        ZGVtbyBvbmx5OiBub3QgYSByZWFsIGtleQ==
        -----END AGE ENCRYPTED FILE-----
  lastmodified: "2026-08-14T10:12:00Z"
  mac: ENC[AES256_GCM,data:ZGVtby1tYWM=,iv:ZGVtby1pdi0z,tag:ZGVtby10YWctMw==,type:str]
  encrypted_regex: ^(data|stringData)$
  version: 3.9.0
"""

_KYVERNO_POLICY = """\
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: require-app-labels
  annotations:
    policies.kyverno.io/title: Require app labels
    policies.kyverno.io/description: Every workload names its app and its team.
spec:
  validationFailureAction: Enforce
  background: true
  rules:
    - name: require-name-and-part-of
      match:
        any:
          - resources:
              kinds:
                - Deployment
                - StatefulSet
      validate:
        message: "app.kubernetes.io/name and app.kubernetes.io/part-of labels are required."
        pattern:
          metadata:
            labels:
              app.kubernetes.io/name: "?*"
              app.kubernetes.io/part-of: "?*"
"""

_CODEOWNERS = """\
# The platform team reviews everything; each team also owns its own overlays.
*                      @demo/platform
/apps/payments-api/    @demo/payments @demo/platform
/apps/storefront/      @demo/web @demo/platform
/apps/inventory/       @demo/supply @demo/platform
/policies/             @demo/platform @demo/security
"""


def _envs() -> list[str]:
    return [env for env, _ in ENVIRONMENTS]


def platform_changes() -> list[PlatformChange]:
    """The three adoption commits, oldest first."""
    bootstrap: dict[str, str] = {
        "infrastructure/controllers/ingress-nginx.yaml": _INGRESS,
        "infrastructure/controllers/kustomization.yaml": (
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n"
            "  - ingress-nginx.yaml\n"
        ),
        "infrastructure/terraform/main.tf": _TERRAFORM,
    }
    for env in _envs():
        bootstrap[f"clusters/{env}/flux-system/gotk-sync.yaml"] = _gotk_sync(env, decryption=False)
        bootstrap[f"clusters/{env}/infrastructure.yaml"] = _infrastructure()
        bootstrap[f"clusters/{env}/{FLUX_SERVICE}.yaml"] = _workloads(env, decryption=False)
    secrets: dict[str, str] = {
        ".sops.yaml": _SOPS_RULES,
        "clusters/production/secret.enc.yaml": _PRODUCTION_SECRET,
    }
    for env in _envs():
        secrets[f"clusters/{env}/flux-system/gotk-sync.yaml"] = _gotk_sync(env, decryption=True)
        secrets[f"clusters/{env}/{FLUX_SERVICE}.yaml"] = _workloads(env, decryption=True)
    governance: dict[str, str] = {
        "CODEOWNERS": _CODEOWNERS,
        "policies/require-app-labels.yaml": _KYVERNO_POLICY,
        "policies/kustomization.yaml": (
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n"
            "  - require-app-labels.yaml\n"
        ),
        "infrastructure/controllers/kyverno.yaml": _KYVERNO,
        "infrastructure/controllers/kustomization.yaml": (
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n"
            "  - ingress-nginx.yaml\n  - kyverno.yaml\n"
        ),
    }
    for env in _envs():
        governance[f"clusters/{env}/policies.yaml"] = _policies()
    return [
        PlatformChange(
            datetime(2026, 6, 15, 10, 20, tzinfo=UTC),
            "platform: bootstrap Flux on staging and production\n\n"
            f"Flux reconciles {FLUX_SERVICE} and ingress-nginx from this repository; the clusters'\n"
            "Terraform moves here too.\n",
            bootstrap,
        ),
        PlatformChange(
            datetime(2026, 8, 14, 10, 12, tzinfo=UTC),
            "platform: SOPS-encrypted secrets, decrypted by Flux\n",
            secrets,
        ),
        PlatformChange(
            datetime(2026, 10, 1, 9, 45, tzinfo=UTC),
            "platform: CODEOWNERS and a Kyverno policy for app labels\n",
            governance,
        ),
    ]
