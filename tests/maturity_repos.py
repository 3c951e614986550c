"""Config repositories for the maturity tests, one builder per repository kind.

Each builder commits real files with fixed dates through ``tests.gitrepo.GitRepo`` and returns
the repo. The files are small but shaped like the upstream examples (Flux's kustomize-helm
layout, Argo CD's app-of-apps, a Helm chart with an Argo Rollout, SOPS-encrypted secrets...).
"""

from __future__ import annotations

from pathlib import Path

from tests.gitrepo import GitRepo

AT = "2024-06-03T10:00:00+00:00"


def gotk_sync(cluster: str) -> str:
    return f"""---
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  name: flux-system
  namespace: flux-system
spec:
  interval: 1m0s
  ref:
    branch: main
  url: ssh://git@github.com/acme/fleet-infra
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: flux-system
  namespace: flux-system
spec:
  interval: 10m0s
  path: ./clusters/{cluster}
  prune: true
  sourceRef:
    kind: GitRepository
    name: flux-system
"""


def flux_kustomization(name: str, path: str, depends_on: str | None = None, sops: bool = False) -> str:
    depends = f"  dependsOn:\n    - name: {depends_on}\n" if depends_on else ""
    decryption = "  decryption:\n    provider: sops\n    secretRef:\n      name: sops-age\n" if sops else ""
    return f"""apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: {name}
  namespace: flux-system
spec:
{depends}  interval: 1h
  retryInterval: 1m
  timeout: 5m
  sourceRef:
    kind: GitRepository
    name: flux-system
  path: {path}
  prune: true
{decryption}"""


def deployment(name: str, image: str) -> str:
    return f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  replicas: 2
  selector:
    matchLabels:
      app: {name}
  template:
    metadata:
      labels:
        app: {name}
    spec:
      containers:
        - name: {name}
          image: {image}
          ports:
            - containerPort: 8080
"""


INGRESS_RELEASE = """---
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
      version: "4.10.1"
      sourceRef:
        kind: HelmRepository
        name: ingress-nginx
        namespace: flux-system
  values:
    controller:
      service:
        type: LoadBalancer
"""


def flux_multi_cluster(path: Path) -> GitRepo:
    """Flux kustomize-helm layout: two clusters, infrastructure controllers, apps with overlays."""
    repo = GitRepo.init(path)
    files = {}
    for cluster in ("staging", "production"):
        files[f"clusters/{cluster}/flux-system/gotk-sync.yaml"] = gotk_sync(cluster)
        files[f"clusters/{cluster}/infrastructure.yaml"] = flux_kustomization(
            "infra-controllers", "./infrastructure/controllers"
        )
        files[f"clusters/{cluster}/apps.yaml"] = flux_kustomization(
            "apps", f"./apps/{cluster}", depends_on="infra-controllers"
        )
        files[f"apps/{cluster}/kustomization.yaml"] = (
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n"
            "  - ../base/podinfo\npatches:\n  - path: podinfo-patch.yaml\n"
            "    target:\n      kind: Deployment\n"
        )
        files[f"apps/{cluster}/podinfo-patch.yaml"] = (
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: podinfo\nspec:\n"
            f"  replicas: {3 if cluster == 'production' else 1}\n"
        )
    files["infrastructure/controllers/ingress-nginx.yaml"] = INGRESS_RELEASE
    files["apps/base/podinfo/kustomization.yaml"] = (
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - deployment.yaml\n"
    )
    files["apps/base/podinfo/deployment.yaml"] = deployment("podinfo", "ghcr.io/stefanprodan/podinfo:6.5.4")
    repo.commit("flux fleet layout", AT, files=files)
    return repo


APP_TEMPLATE = """apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: {name}
  namespace: argocd
  {{{{- with .Values.labels }}}}
  labels:
    {{{{- toYaml . | nindent 4 }}}}
  {{{{- end }}}}
  finalizers:
  - resources-finalizer.argocd.argoproj.io
spec:
  project: default
  source:
    repoURL: {{{{ .Values.spec.source.repoURL }}}}
    targetRevision: {{{{ .Values.spec.source.targetRevision }}}}
    path: {name}
  destination:
    server: {{{{ .Values.spec.destination.server }}}}
    namespace: {name}
{sync}"""


def argocd_app_of_apps(path: Path) -> GitRepo:
    """Argo CD app-of-apps: a root Application pointing at a chart of templated Applications."""
    repo = GitRepo.init(path)
    automated = "  syncPolicy:\n    automated:\n      prune: true\n      selfHeal: true\n"
    files = {
        "root-app.yaml": """apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: apps
  namespace: argocd
spec:
  project: default
  source:
    repoURL: https://github.com/acme/argocd-example-apps.git
    targetRevision: HEAD
    path: apps
  destination:
    server: https://kubernetes.default.svc
    namespace: argocd
  syncPolicy:
    automated:
      prune: true
      selfHeal: true
""",
        "apps/Chart.yaml": "apiVersion: v2\nname: applications\nversion: 0.1.0\n",
        "apps/values.yaml": (
            "spec:\n  destination:\n    server: https://kubernetes.default.svc\n"
            "  source:\n    repoURL: https://github.com/acme/argocd-example-apps.git\n"
            "    targetRevision: HEAD\n"
        ),
        "apps/templates/guestbook.yaml": APP_TEMPLATE.format(name="guestbook", sync=automated),
        "apps/templates/helm-guestbook.yaml": APP_TEMPLATE.format(name="helm-guestbook", sync=""),
        "guestbook/guestbook-ui-deployment.yaml": deployment(
            "guestbook-ui", "gcr.io/heptio-images/ks-guestbook-demo:0.2"
        ),
        "guestbook/guestbook-ui-svc.yaml": (
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: guestbook-ui\n"
            "spec:\n  ports:\n    - port: 80\n      targetPort: 80\n"
            "  selector:\n    app: guestbook-ui\n"
        ),
    }
    repo.commit("app of apps", AT, files=files)
    return repo


ROLLOUT_TEMPLATE = """apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: {{ include "web.fullname" . }}
  labels:
    {{- include "web.labels" . | nindent 4 }}
spec:
  replicas: {{ .Values.replicaCount }}
  selector:
    matchLabels:
      {{- include "web.selectorLabels" . | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "web.selectorLabels" . | nindent 8 }}
    spec:
      containers:
        - name: web
          image: "{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}"
  strategy:
    canary:
      analysis:
        templates:
          - templateName: {{ include "web.fullname" . }}-success-rate
      steps:
        - setWeight: 20
        - pause: {duration: 5m}
        - setWeight: 60
        - pause: {duration: 5m}
"""

ANALYSIS_TEMPLATE = """apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata:
  name: {{ include "web.fullname" . }}-success-rate
spec:
  metrics:
    - name: success-rate
      interval: 1m
      successCondition: result[0] >= 0.95
      provider:
        prometheus:
          address: {{ .Values.prometheus.address }}
          query: sum(rate(http_requests_total{status!~"5.*",app="{{ .Release.Name }}"}[2m]))
"""


def helm_rollout(path: Path) -> GitRepo:
    """An application chart whose workload is a templated Argo Rollout, with per-env values."""
    repo = GitRepo.init(path)
    files = {
        "charts/web/Chart.yaml": 'apiVersion: v2\nname: web\nversion: 1.3.0\nappVersion: "2.4.1"\n',
        "charts/web/values.yaml": (
            'replicaCount: 2\nimage:\n  repository: ghcr.io/acme/web\n  tag: ""\n'
            "prometheus:\n  address: http://prometheus.monitoring:9090\n"
        ),
        "charts/web/values-staging.yaml": "replicaCount: 1\n",
        "charts/web/values-production.yaml": "replicaCount: 4\n",
        "charts/web/templates/rollout.yaml": ROLLOUT_TEMPLATE,
        "charts/web/templates/analysis.yaml": ANALYSIS_TEMPLATE,
        "charts/web/templates/service.yaml": (
            "apiVersion: v1\nkind: Service\nmetadata:\n"
            '  name: {{ include "web.fullname" . }}\nspec:\n'
            "  ports:\n    - port: 80\n"
        ),
        "src/main.go": "package main\n\nfunc main() {}\n",
    }
    repo.commit("web chart with canary rollout", AT, files=files)
    return repo


SOPS_SECRET = """apiVersion: v1
kind: Secret
metadata:
  name: db-credentials
  namespace: payments
type: Opaque
data:
  password: ENC[AES256_GCM,data:p673JCgHYw==,iv:Ph6Qs5wNj2kq3F0=,tag:nXSXw6o4TqzfLQvPTG5nLg==,type:str]
sops:
  kms: []
  age:
    - recipient: age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p
      enc: |
        -----BEGIN AGE ENCRYPTED FILE-----
        YWdlLWVuY3J5cHRpb24ub3JnL3YxCi0+IFgyNTUxOSBhYmNkZWYK
        -----END AGE ENCRYPTED FILE-----
  lastmodified: "2024-05-30T12:00:00Z"
  mac: ENC[AES256_GCM,data:Jm5Bq1E=,iv:cG9ydA==,tag:dGFn,type:str]
  encrypted_regex: ^(data|stringData)$
  version: 3.8.1
"""


def sops_flux(path: Path, image: str = "ghcr.io/acme/payments:3.2.0") -> GitRepo:
    """Flux with two clusters, SOPS-encrypted secrets decrypted by the Kustomization, Terraform for AWS."""
    repo = GitRepo.init(path)
    files = {
        ".sops.yaml": (
            "creation_rules:\n  - path_regex: .*.yaml\n    encrypted_regex: ^(data|stringData)$\n"
            "    age: age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p\n"
        ),
        "apps/payments/kustomization.yaml": (
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
            "resources:\n  - deployment.yaml\n  - secret.enc.yaml\n"
        ),
        "apps/payments/deployment.yaml": deployment("payments", image),
        "apps/payments/secret.enc.yaml": SOPS_SECRET,
        "terraform/main.tf": (
            'provider "aws" {\n  region = "eu-west-1"\n}\n\n'
            'resource "aws_eks_cluster" "main" {\n  name     = "main"\n'
            "  role_arn = aws_iam_role.cluster.arn\n}\n"
        ),
    }
    for cluster in ("staging", "production"):
        files[f"clusters/{cluster}/flux-system/gotk-sync.yaml"] = gotk_sync(cluster)
        files[f"clusters/{cluster}/payments.yaml"] = flux_kustomization(
            "payments", "./apps/payments", sops=True
        )
    repo.commit("payments with sops", AT, files=files)
    return repo


KYVERNO_VALIDATE = """apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: require-labels
spec:
  validationFailureAction: Enforce
  rules:
    - name: check-team
      match:
        any:
          - resources:
              kinds: [Pod]
      validate:
        message: "label team is required"
        pattern:
          metadata:
            labels:
              team: "?*"
"""

KYVERNO_MUTATE = """apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: add-default-requests
spec:
  rules:
    - name: add-requests
      match:
        any:
          - resources:
              kinds: [Pod]
      mutate:
        patchStrategicMerge:
          spec:
            containers:
              - (name): "*"
                resources:
                  requests:
                    +(memory): 64Mi
"""

GATEKEEPER_TEMPLATE = """apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata:
  name: k8srequiredlabels
spec:
  crd:
    spec:
      names:
        kind: K8sRequiredLabels
  targets:
    - target: admission.k8s.gatekeeper.sh
      rego: |
        package k8srequiredlabels
        violation[{"msg": msg}] { not input.review.object.metadata.labels.team; msg := "team label" }
"""


def kyverno_policies(path: Path) -> GitRepo:
    repo = GitRepo.init(path)
    files = {
        "policies/kustomization.yaml": (
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
            "resources:\n  - require-labels.yaml\n  - add-default-requests.yaml\n"
        ),
        "policies/require-labels.yaml": KYVERNO_VALIDATE,
        "policies/add-default-requests.yaml": KYVERNO_MUTATE,
        "gatekeeper/required-labels-template.yaml": GATEKEEPER_TEMPLATE,
    }
    repo.commit("cluster policies", AT, files=files)
    return repo


APPSET = """apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata:
  name: guestbook
  namespace: argocd
spec:
  goTemplate: true
  generators:
    - clusters:
        selector:
          matchLabels:
            env: production
  template:
    metadata:
      name: '{{.name}}-guestbook'
    spec:
      project: '{{index .metadata.labels "team"}}'
      source:
        repoURL: https://github.com/acme/gitops.git
        targetRevision: HEAD
        path: guestbook
      destination:
        server: '{{.server}}'
        namespace: guestbook
      syncPolicy:
        automated:
          prune: true
          selfHeal: true
"""


def project(name: str) -> str:
    return f"""apiVersion: argoproj.io/v1alpha1
kind: AppProject
metadata:
  name: {name}
  namespace: argocd
spec:
  sourceRepos:
    - https://github.com/acme/{name}-*.git
  destinations:
    - namespace: {name}-*
      server: '*'
  roles:
    - name: deployer
      policies:
        - p, proj:{name}:deployer, applications, sync, {name}/*, allow
"""


def argocd_appset(path: Path) -> GitRepo:
    repo = GitRepo.init(path)
    files = {
        "bootstrap/guestbook-appset.yaml": APPSET,
        "projects/team-a.yaml": project("team-a"),
        "projects/team-b.yaml": project("team-b"),
        "guestbook/deployment.yaml": deployment("guestbook", "ghcr.io/acme/guestbook@sha256:" + "ab" * 32),
    }
    repo.commit("fleet guestbook", AT, files=files)
    return repo


def terraform(path: Path) -> GitRepo:
    repo = GitRepo.init(path)
    files = {
        "gcp/main.tf": (
            'provider "google" {\n  project = "acme-prod"\n}\n\n'
            'resource "google_container_cluster" "primary" {\n  name     = "primary"\n'
            '  location = "europe-west1"\n}\n'
        ),
        "aws/eks.tf": ('resource "aws_eks_cluster" "edge" {\n  name = "edge"\n}\n'),
        "modules/network/variables.tf": 'variable "cidr" {\n  type = string\n}\n',
        "README.md": "# infra\n",
    }
    repo.commit("clusters on two clouds", AT, files=files)
    return repo


def plain_app(path: Path) -> GitRepo:
    repo = GitRepo.init(path)
    files = {
        "src/app.py": "print('hello')\n",
        "tests/test_app.py": "def test_ok():\n    assert True\n",
        "Dockerfile": "FROM python:3.12-slim\nCOPY src /app\n",
        # local development only: its :latest images are not deployed, so they are not judged
        "docker-compose.yml": "services:\n  db:\n    image: postgres:latest\n",
        "README.md": "# app\n",
        ".github/workflows/deploy.yml": (
            "name: deploy\non: [push]\njobs:\n  deploy:\n    runs-on: ubuntu-latest\n"
            "    steps:\n      - uses: actions/checkout@v4\n"
            "      - run: helm upgrade --install app ./chart\n"
        ),
    }
    repo.commit("app", AT, files=files)
    return repo


# --- issue #14: repositories shaped like the ones the assessment got wrong -------------------------

FLUX_EXAMPLE_CLUSTER_INFRA = """---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: infra-controllers
  namespace: flux-system
spec:
  interval: 1h
  retryInterval: 1m
  timeout: 5m
  sourceRef:
    kind: GitRepository
    name: flux-system
  path: ./infrastructure/controllers
  prune: true
  wait: true
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: infra-configs
  namespace: flux-system
spec:
  dependsOn:
    - name: infra-controllers
  interval: 1h
  retryInterval: 1m
  timeout: 5m
  sourceRef:
    kind: GitRepository
    name: flux-system
  path: ./infrastructure/configs
  prune: true
"""

FLUX_EXAMPLE_CERT_MANAGER = """---
apiVersion: v1
kind: Namespace
metadata:
  name: cert-manager
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmRepository
metadata:
  name: cert-manager
  namespace: cert-manager
spec:
  interval: 24h
  url: https://charts.jetstack.io
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: cert-manager
  namespace: cert-manager
spec:
  interval: 30m
  chart:
    spec:
      chart: cert-manager
      version: "1.x"
      sourceRef:
        kind: HelmRepository
        name: cert-manager
        namespace: cert-manager
      interval: 12h
  values:
    crds:
      enabled: true
"""

FLUX_EXAMPLE_PODINFO_RELEASE = """apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: podinfo
  namespace: podinfo
spec:
  interval: 50m
  releaseName: podinfo
  chart:
    spec:
      chart: podinfo
      sourceRef:
        kind: HelmRepository
        name: podinfo
  install:
    strategy:
      name: RetryOnFailure
  upgrade:
    strategy:
      name: RetryOnFailure
  # Default values
  values:
    redis:
      enabled: true
      repository: public.ecr.aws/docker/library/redis
      tag: 8.6.2
    httpRoute:
      enabled: true
"""


def flux_values_patch(env: str) -> str:
    return f"""apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: podinfo
  namespace: podinfo
spec:
  chart:
    spec:
      version: ">=1.0.0{'-alpha' if env == 'staging' else ''}"
  test:
    enable: true
  values:
    ingress:
      hosts:
        - host: podinfo.{env}
"""


def flux2_kustomize_helm_example(path: Path) -> GitRepo:
    """fluxcd/flux2-kustomize-helm-example's documented layout: clusters/{production,staging},
    infrastructure/{configs,controllers}, apps/{base,production,staging}; podinfo's only image is
    the redis repository/tag pair in its HelmRelease values. No secrets tooling: honestly Level 0."""
    repo = GitRepo.init(path)
    kz = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
    files: dict[str, str] = {
        ".github/workflows/e2e.yaml": (
            "name: e2e\non:\n  push:\n    branches: ['*']\njobs:\n  kubernetes:\n    runs-on: ubuntu-latest\n"
            "    steps:\n      - uses: actions/checkout@v4\n      - uses: fluxcd/flux2/action@main\n"
            "      - uses: helm/kind-action@v1\n      - run: flux install\n"
        ),
        "scripts/validate.sh": "#!/usr/bin/env bash\nkustomize build . | kubeconform\n",
        # a CLI schema-validation config: no declaration, never the first evidence
        ".fluxschema.yml": (
            "version: \"1\"\nvalidate:\n  schema-location:\n    - default\n  skip-missing-schemas: true\n"
            "  skip-json-path:\n    - Secret:/sops\n"
        ),
        "infrastructure/controllers/kustomization.yaml": kz + "resources:\n  - cert-manager.yaml\n",
        "infrastructure/controllers/cert-manager.yaml": FLUX_EXAMPLE_CERT_MANAGER,
        "infrastructure/configs/kustomization.yaml": kz + "resources:\n  - cluster-issuers.yaml\n",
        "infrastructure/configs/cluster-issuers.yaml": (
            "apiVersion: cert-manager.io/v1\nkind: ClusterIssuer\nmetadata:\n  name: letsencrypt\nspec:\n"
            "  acme:\n    email: fluxcdbot@users.noreply.github.com\n"
            "    server: https://acme-staging-v02.api.letsencrypt.org/directory\n"
            "    privateKeySecretRef:\n      name: letsencrypt-nginx\n"
        ),
        "apps/base/podinfo/kustomization.yaml": (
            kz + "namespace: podinfo\nresources:\n  - namespace.yaml\n  - repository.yaml\n  - release.yaml\n"
        ),
        "apps/base/podinfo/namespace.yaml": "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: podinfo\n",
        "apps/base/podinfo/repository.yaml": (
            "apiVersion: source.toolkit.fluxcd.io/v1\nkind: HelmRepository\nmetadata:\n  name: podinfo\n"
            "  namespace: podinfo\nspec:\n  interval: 5m\n  type: oci\n  url: oci://ghcr.io/stefanprodan/charts\n"
        ),
        "apps/base/podinfo/release.yaml": FLUX_EXAMPLE_PODINFO_RELEASE,
    }
    for env in ("production", "staging"):
        files[f"clusters/{env}/flux-system/gotk-sync.yaml"] = gotk_sync(env)
        files[f"clusters/{env}/infrastructure.yaml"] = FLUX_EXAMPLE_CLUSTER_INFRA
        files[f"clusters/{env}/apps.yaml"] = flux_kustomization("apps", f"./apps/{env}", "infra-configs")
        files[f"apps/{env}/kustomization.yaml"] = (
            kz + "resources:\n  - ../base/podinfo\npatches:\n  - path: podinfo-values.yaml\n"
            "    target:\n      kind: HelmRelease\n"
        )
        files[f"apps/{env}/podinfo-values.yaml"] = flux_values_patch(env)
    repo.commit("flux kustomize-helm example layout", AT, files=files)
    return repo


CANARY = """apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: podinfo
  namespace: test
spec:
  targetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: podinfo
  analysis:
    interval: 15s
    threshold: 10
"""

ROLLOUT = """apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: rollouts-demo
spec:
  replicas: 5
  strategy:
    canary:
      steps:
        - setWeight: 20
        - pause: {}
  template:
    spec:
      containers:
        - name: rollouts-demo
          image: argoproj/rollouts-demo:blue
"""


def tool_repo_with_examples(path: Path) -> GitRepo:
    """A delivery tool's own repository: its chart is what it ships; Canaries, Rollouts and a test
    Secret live under examples/, docs/, test/e2e/ and artifacts/examples/ and deploy nothing."""
    repo = GitRepo.init(path)
    files = {
        "charts/mytool/Chart.yaml": "apiVersion: v2\nname: mytool\nversion: 1.2.0\nappVersion: 1.2.0\n",
        "charts/mytool/values.yaml": "image:\n  repository: ghcr.io/acme/mytool\n  tag: 1.2.0\n",
        "charts/mytool/templates/deployment.yaml": deployment("mytool", "ghcr.io/acme/mytool:1.2.0"),
        "examples/canary/canary.yaml": CANARY,
        "docs/rollout.yaml": ROLLOUT,
        "artifacts/examples/rollout.yaml": ROLLOUT,
        "test/e2e/secret.yaml": (
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: e2e-creds\ntype: Opaque\n"
            "stringData:\n  password: e2e-only-password\n"
        ),
    }
    repo.commit("tool with examples", AT, files=files)
    return repo


def images_everywhere(path: Path, web_tag: str = "1.25.3") -> GitRepo:
    """Images declared every way but `image: x:y`: Helm values, Argo CD kustomize.images and
    helm.parameters, a Flux ImagePolicy; a Kyverno `:*` pattern that is no pin; a repeated image."""
    repo = GitRepo.init(path)
    app = """apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: {name}
  namespace: argocd
spec:
  project: default
  source:
    repoURL: https://github.com/acme/deploy
    path: {path}
    targetRevision: main
{extra}  destination:
    server: https://kubernetes.default.svc
    namespace: {ns}
  syncPolicy:
    automated:
      selfHeal: true
"""
    files = {
        "argocd/api.yaml": app.format(
            name="api", path="apps/api", ns="api-staging",
            extra="    kustomize:\n      images:\n        - ghcr.io/acme/api=ghcr.io/acme/api:1.4.2\n",
        ),
        "argocd/web.yaml": app.format(
            name="web", path="charts/web", ns="web-production",
            extra="    helm:\n      parameters:\n        - name: image.repository\n"
                  "          value: ghcr.io/acme/web\n"
                  "        - name: image.tag\n          value: 2.0.1\n",
        ),
        "charts/web/Chart.yaml": "apiVersion: v2\nname: web\nversion: 0.1.0\n",
        "charts/web/values.yaml": (
            "image:\n  registry: docker.io\n  repository: bitnami/nginx\n  tag: " + web_tag + "\n"
            "metrics:\n  enabled: true\n  exporter:\n    repository: quay.io/prometheus/nginx-exporter\n"
            "    tag: v1.1.0\n"
        ),
        "apps/jobs/cron.yaml": (
            "apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: cleanup\nspec:\n"
            "  schedule: '0 3 * * *'\n"
            "  jobTemplate:\n    spec:\n      template:\n        spec:\n          containers:\n"
            "            - name: a\n              image: busybox:1.36\n"
            "            - name: b\n              image: busybox:1.36\n"
        ),
        "policies/verify-images.yaml": (
            "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata:\n  name: verify-flux\nspec:\n"
            "  rules:\n"
            "    - name: verify\n      verifyImages:\n        - image: \"ghcr.io/fluxcd/helm-controller:*\"\n"
            "          imageReferences:\n            - \"ghcr.io/fluxcd/*\"\n"
        ),
        "flux/image-policy.yaml": (
            "apiVersion: image.toolkit.fluxcd.io/v1beta2\nkind: ImagePolicy\nmetadata:\n  name: api\nspec:\n"
            "  imageRepositoryRef:\n    name: api\n  policy:\n    semver:\n      range: '>=1.0.0'\n"
        ),
    }
    repo.commit("images everywhere", AT, files=files)
    return repo


def plaintext_credentials(path: Path) -> GitRepo:
    """Credentials in plain text in a values file, a ConfigMap and env; two values-file variants of
    one chart (not environments); one Argo CD Application targeting one cluster."""
    repo = GitRepo.init(path)
    files = {
        "charts/shop/Chart.yaml": "apiVersion: v2\nname: shop\nversion: 0.3.0\nappVersion: 0.3.0\n",
        "charts/shop/values.yaml": "image:\n  repository: ghcr.io/acme/shop\n  tag: 0.3.0\n",
        "charts/shop/values-nomaria.yaml": "mariadb:\n  enabled: false\n",
        "charts/shop/values-production.yaml": (
            "replicaCount: 3\nenv:\n  DB_HOST: mariadb\n  DB_PASSWORD: prod_password\n"
            "  existingSecret: shop-db\n"
        ),
        "manifests/config.yaml": (
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: shop-config\ndata:\n  LOG_LEVEL: info\n"
            "  API_TOKEN: tok_live_123456\n"
        ),
        "manifests/worker.yaml": deployment("worker", "ghcr.io/acme/worker:0.3.0")
        + "          env:\n            - name: SMTP_PASSWORD\n              value: mail-pass-42\n"
        "            - name: DB_PASSWORD\n              valueFrom:\n                secretKeyRef:\n"
        "                  name: shop-db\n                  key: password\n",
        "argocd/shop.yaml": (
            "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: shop\nspec:\n"
            "  project: default\n  source:\n    repoURL: https://github.com/acme/shop\n"
            "    path: charts/shop\n"
            "  destination:\n    server: https://kubernetes.default.svc\n    namespace: shop\n"
        ),
    }
    repo.commit("shop with plain-text credentials", AT, files=files)
    return repo


def flux_platform(path: Path, tenants: bool = False) -> GitRepo:
    """Platform Kustomizations impersonating Flux's own kustomize-controller account, a Kyverno
    policy, an istio/ folder of HelmReleases (infrastructure outside infrastructure/), and one
    postBuild.substituteFrom into one cluster. ``tenants`` adds two real tenants."""
    repo = GitRepo.init(path)

    def ks(name: str, target: str, account: str, extra: str = "") -> str:
        return flux_kustomization(name, f"./{name}") + (
            f"  serviceAccountName: {account}\n  targetNamespace: {target}\n{extra}"
        )

    files = {
        "clusters/prod/flux-system/gotk-sync.yaml": gotk_sync("prod"),
        "clusters/prod/platform.yaml": ks("platform", "platform", "kustomize-controller",
                                          "  postBuild:\n    substituteFrom:\n      - kind: ConfigMap\n"
                                          "        name: cluster-vars\n")
        + "---\n" + ks("monitoring", "monitoring", "kustomize-controller"),
        "istio/istiod.yaml": (
            "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: istiod\n"
            "  namespace: istio-system\nspec:\n  interval: 1h\n  chart:\n    spec:\n      chart: istiod\n"
            "      version: 1.22.1\n      sourceRef:\n        kind: HelmRepository\n        name: istio\n"
        ),
        "policies/require-labels.yaml": (
            "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata:\n  name: require-labels\nspec:\n"
            "  validationFailureAction: Enforce\n  rules:\n    - name: check-team\n      match:\n"
            "        any:\n          - resources:\n              kinds: [Deployment]\n      validate:\n"
            "        message: team label required\n        pattern:\n          metadata:\n"
            "            labels:\n              team: '?*'\n"
        ),
        "apps/shop/deployment.yaml": deployment("shop", "ghcr.io/acme/shop:1.0.0"),
    }
    if tenants:
        for team in ("team-a", "team-b"):
            files[f"clusters/prod/tenants/{team}.yaml"] = ks(team, team, team)
    repo.commit("platform", AT, files=files)
    return repo


def flux_v1(path: Path) -> GitRepo:
    """A repository from the Flux v1 / Helm Operator era."""
    repo = GitRepo.init(path)
    files = {
        "releases/podinfo.yaml": (
            "apiVersion: helm.fluxcd.io/v1\nkind: HelmRelease\nmetadata:\n  name: podinfo\n"
            "  namespace: demo\n  annotations:\n    fluxcd.io/automated: \"true\"\nspec:\n"
            "  releaseName: podinfo\n"
            "  chart:\n    repository: https://stefanprodan.github.io/podinfo\n    name: podinfo\n"
            "    version: 3.2.0\n  values:\n    image:\n      repository: stefanprodan/podinfo\n"
            "      tag: 3.2.0\n"
        ),
        "workloads/web.yaml": deployment("web", "nginx:1.19.0").replace(
            "metadata:\n  name: web\n",
            "metadata:\n  name: web\n  annotations:\n    flux.weave.works/automated: \"true\"\n", 1,
        ),
    }
    repo.commit("flux v1", AT, files=files)
    return repo


# --- environments come from what a reconciler builds (issue #14) --------------------------------

def argocd_application(name: str, path: str, server: str, namespace: str) -> str:
    return f"""apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: {name}
  namespace: argocd
spec:
  project: default
  source:
    repoURL: https://github.com/acme/podinfo-config.git
    targetRevision: main
    path: {path}
  destination:
    server: {server}
    namespace: {namespace}
  syncPolicy:
    automated:
      prune: true
      selfHeal: true
"""


PODINFO_APPSET = """apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata:
  name: podinfo-staging
  namespace: argocd
spec:
  goTemplate: true
  generators:
    - git:
        repoURL: https://github.com/acme/podinfo-config.git
        revision: main
        directories:
          - path: apps/*/overlays/staging
  template:
    metadata:
      name: '{{.path.basename}}-staging'
    spec:
      project: default
      source:
        repoURL: https://github.com/acme/podinfo-config.git
        targetRevision: main
        path: '{{.path.path}}'
      destination:
        server: https://staging.k8s.acme.example
        namespace: podinfo
"""


def overlay_environments(
    path: Path, staging_by: str | None = "flux", production_flux: bool = True
) -> GitRepo:
    """A podinfo config repository with dev, staging and production overlays of one base. Flux in
    clusters/production builds the production overlay; who builds the staging overlay is
    ``staging_by``: ``flux`` (a second Flux Kustomization into a staging namespace of the same
    cluster), ``argocd`` (an Application), ``appset`` (an ApplicationSet git generator's
    ``apps/*/overlays/staging``) or None. Nothing ever builds the dev overlay. Without
    ``production_flux`` the repository holds no reconciler at all (only with ``staging_by=None``)."""
    repo = GitRepo.init(path)
    files = {
        "apps/podinfo/base/deployment.yaml": deployment("podinfo", "ghcr.io/stefanprodan/podinfo:6.7.1"),
        "apps/podinfo/base/kustomization.yaml": "resources:\n  - deployment.yaml\n",
        "infrastructure/namespaces.yaml": "---\n".join(
            f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: podinfo-{env}\n"
            for env in ("dev", "staging", "production")),
    }
    for env, replicas in (("dev", 1), ("staging", 2), ("production", 3)):
        files[f"apps/podinfo/overlays/{env}/kustomization.yaml"] = (
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
            f"namespace: podinfo-{env}\nresources:\n  - ../../base\n"
            f"replicas:\n  - name: podinfo\n    count: {replicas}\n"
        )
    if production_flux:
        files["clusters/production/flux-system/gotk-sync.yaml"] = gotk_sync("production")
        files["clusters/production/podinfo.yaml"] = flux_kustomization(
            "podinfo", "./apps/podinfo/overlays/production")
    if staging_by == "flux":
        files["clusters/production/podinfo-staging.yaml"] = flux_kustomization(
            "podinfo-staging", "./apps/podinfo/overlays/staging")
    elif staging_by == "argocd":
        files["argocd/podinfo-staging.yaml"] = argocd_application(
            "podinfo-staging", "apps/podinfo/overlays/staging", "https://staging.k8s.acme.example", "podinfo")
    elif staging_by == "appset":
        files["argocd/podinfo-staging.yaml"] = PODINFO_APPSET
    repo.commit("podinfo overlays", AT, files=files)
    return repo


# --- exact lines: several matches of one kind in one document (issue #14) -----------------------

KYVERNO_TWO_ADVANCED_RULES = """apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: defaults
spec:
  rules:
    - name: add-requests
      match:
        any:
          - resources:
              kinds: [Pod]
      mutate:
        patchStrategicMerge:
          spec:
            containers:
              - (name): "*"
                resources:
                  requests:
                    +(memory): 64Mi
    - name: add-team-label
      match:
        any:
          - resources:
              kinds: [Pod]
      mutate:
        patchStrategicMerge:
          metadata:
            labels:
              +(team): platform
"""

TWO_CHART_APPLICATION = """apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: observability
  namespace: argocd
  annotations:
    notes: |
      automated: sync, with selfHeal: on (set below)
spec:
  project: default
  sources:
    - repoURL: https://prometheus-community.github.io/helm-charts
      chart: kube-prometheus-stack
      targetRevision: 58.2.1
      helm:
        valueFiles:
          - $values/observability/prometheus.yaml
    - repoURL: https://grafana.github.io/helm-charts
      chart: loki
      targetRevision: 6.3.4
      helm:
        parameters:
          - name: loki.auth_enabled
            value: "false"
  destination:
    server: https://kubernetes.default.svc
    namespace: observability
  syncPolicy:
    syncOptions:
      - CreateNamespace=true
    automated:
      prune: true
      selfHeal: true
"""

TWO_FLUX_KUSTOMIZATIONS = """# Both clusters' apps, one file
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: apps-eu
  namespace: flux-system
spec:
  interval: 10m
  sourceRef:
    kind: GitRepository
    name: flux-system
  path: ./apps/eu
  prune: true
  postBuild:
    substituteFrom:
      - kind: ConfigMap
        name: cluster-vars
  decryption:
    provider: sops
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: apps-us
  namespace: flux-system
spec:
  dependsOn:
    - name: apps-eu
  interval: 10m
  sourceRef:
    kind: GitRepository
    name: flux-system
  path: ./apps/us
  prune: true
  decryption:
    provider: sops
"""

SECRET_AFTER_ANNOTATIONS = """apiVersion: v1
kind: Secret
metadata:
  name: db
  annotations:
    description: |
      data: the password, stringData: the user
type: Opaque
stringData:
  username: app
data:
  password: cGFzc3dvcmQ=
"""


def exact_lines(path: Path) -> GitRepo:
    """Documents where a regex's first match is the wrong line: two rules, two sources, two
    Kustomizations, keys mentioned in comments and annotations before the real ones."""
    repo = GitRepo.init(path)
    repo.commit("exact lines", AT, files={
        "policies/defaults.yaml": KYVERNO_TWO_ADVANCED_RULES,
        "argocd/observability.yaml": TWO_CHART_APPLICATION,
        "clusters/prod/apps.yaml": TWO_FLUX_KUSTOMIZATIONS,
        "apps/db/secret.yaml": SECRET_AFTER_ANNOTATIONS,
        "workloads/legacy.yaml": "# fluxctl set flux.weave.works/automated on this one\n" + deployment(
            "legacy", "nginx:1.19.0").replace(
            "metadata:\n  name: legacy\n",
            "metadata:\n  name: legacy\n  annotations:\n    flux.weave.works/automated: \"true\"\n", 1),
        ".sops.yaml": (
            "# creation_rules: one per environment\ncreation_rules:\n"
            "  - path_regex: .*.yaml\n    age: age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9a\n"
        ),
        "apps/eu/kustomization.yaml": (
            "# eu overlay: the images: override comes after the resources\n"
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
            "resources:\n  - ../base\nnamePrefix: eu-\n"
        ),
    })
    return repo
