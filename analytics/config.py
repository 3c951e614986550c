"""The ``gitops-dora.yaml`` config, validated by pydantic; errors name the key and the line."""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from analytics.errors import ConfigError, yaml_mark

if TYPE_CHECKING:  # PyYAML loads with the first config file read: most runs have none
    import yaml

DEFAULT_CONFIG_NAME = "gitops-dora.yaml"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str | int | float) -> timedelta:
    """'7d', '12h', '30m', '90s', '2w'; a bare number means hours."""
    if isinstance(text, int | float):
        return timedelta(hours=float(text))
    m = _DURATION.match(str(text))
    if not m:
        raise ValueError(f"not a duration: {text!r} (use e.g. 7d, 12h, 30m)")
    return timedelta(**{_UNITS[m.group(2)]: float(m.group(1))})


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GitOpsRepo(_Model):
    repository: str = Field(description="path or URL of the GitOps config repository")
    paths: dict[str, str] = Field(default_factory=dict, description="environment -> path in the repo")


class Service(_Model):
    name: str
    team: str | None = None
    teams: list[str] = Field(
        default_factory=list,
        description="more teams the service belongs to: grouped by team, it counts in each",
    )
    repositories: list[str] = Field(default_factory=list)
    image: str | None = Field(default=None, description="container image name, for image-tag mapping")
    gitops: GitOpsRepo | None = None

    def all_teams(self) -> list[str]:
        """``team`` then ``teams``, each once; the first is the one stored with the service."""
        return list(dict.fromkeys([t for t in [self.team, *self.teams] if t]))


class Environment(_Model):
    name: str
    production: bool = False


class GitDeployments(_Model):
    tags: str | None = Field(default=None, description="regex of tags that are deployments")
    branch: str | None = Field(default=None, description="each first-parent commit here is a deployment")
    environment: str = "production"

    @field_validator("tags")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            re.compile(value)
        return value


class DeploymentSources(_Model):
    git: GitDeployments = Field(default_factory=GitDeployments)
    lead_time_start: Literal["author", "committer"] = "author"
    count_redeploys: bool = Field(
        default=True,
        description="a successful deployment of the revision already running counts as a deployment "
                    "(0 new changes); false: deployment frequency leaves it out",
    )
    default_environment: str | None = Field(
        default=None,
        description="environment of an imported deployment that names none; unset: the first "
                    "production environment",
    )


DEFAULT_HOTFIX_PATTERN = r"(?i)^(hotfix|hot-fix)[/_-]|\bhotfix\b"
# text every match of DEFAULT_HOTFIX_PATTERN contains (case-insensitively): a cheap pre-test
DEFAULT_HOTFIX_REQUIRED_TEXT = "hot"


class IncidentRules(_Model):
    max_attribution_gap: str = "7d"
    labels: list[str] = Field(default_factory=lambda: ["incident"])
    hotfix_pattern: str = DEFAULT_HOTFIX_PATTERN

    @field_validator("max_attribution_gap")
    @classmethod
    def _gap(cls, value: str) -> str:
        parse_duration(value)
        return value

    @field_validator("hotfix_pattern")
    @classmethod
    def _pattern(cls, value: str) -> str:
        re.compile(value)
        return value

    @property
    def gap(self) -> timedelta:
        return parse_duration(self.max_attribution_gap)


class TokenSource(_Model):
    """Where a token comes from: an environment variable or a file. Never the config itself."""

    token_env: str | None = None
    token_file: str | None = None

    def read_token(self, default_env: str) -> str | None:
        env = self.token_env or default_env
        if os.environ.get(env):
            return os.environ[env].strip()
        if self.token_file:
            from analytics.user_files import read_user_text

            path = Path(self.token_file).expanduser()
            return read_user_text(path, "token file", limit=64 * 1024, error=ConfigError).strip()
        return None


class GitHubConnection(TokenSource):
    base_url: str = "https://api.github.com"
    incident_labels: list[str] = Field(default_factory=lambda: ["incident"])
    deployment_workflows: list[str] = Field(
        default_factory=list,
        description="Actions workflows (name, or file name such as deploy.yml) whose completed runs "
                    "on the default branch are deployments; empty: none",
    )


class GitLabConnection(TokenSource):
    base_url: str = "https://gitlab.com"
    incident_labels: list[str] = Field(default_factory=lambda: ["incident"])
    deployment_jobs: list[str] = Field(
        default_factory=list,
        description="CI job names whose finished runs in default-branch pipelines are deployments; "
                    "empty: none",
    )


class KubernetesConnection(_Model):
    kubeconfig: str | None = None
    context: str | None = None
    namespaces: list[str] = Field(default_factory=list)


class Connections(_Model):
    github: GitHubConnection = Field(default_factory=GitHubConnection)
    gitlab: GitLabConnection = Field(default_factory=GitLabConnection)
    kubernetes: KubernetesConnection = Field(default_factory=KubernetesConnection)


class MappingRule(_Model):
    match: str = Field(description="regex over '<kind>/<namespace>/<name>' of a reconciler object")
    service: str | None = None
    environment: str | None = None

    @field_validator("match")
    @classmethod
    def _regex(cls, value: str) -> str:
        re.compile(value)
        return value


class ReconcilerMapping(_Model):
    service_keys: list[str] = Field(
        default_factory=lambda: ["gitops-dora/service", "app.kubernetes.io/name", "app.kubernetes.io/part-of"]
    )
    environment_keys: list[str] = Field(
        default_factory=lambda: ["gitops-dora/environment", "app.kubernetes.io/environment", "environment"]
    )
    image_value_paths: list[str] = Field(
        default_factory=lambda: ["image.tag", "image.version", "*.image.tag"],
        description="HelmRelease values paths that hold an image tag",
    )
    rules: list[MappingRule] = Field(default_factory=list)


class Webhooks(_Model):
    default_repository: str = "webhook"
    default_environment: str = "production"


class DashboardSettings(_Model):
    answers_dir: str | None = Field(
        default=None,
        description="folder (relative to this file) the Maturity page may save answers into; "
                    "unset: download only",
    )
    login: bool = Field(default=False, description="require Streamlit's OIDC login ([auth] in secrets.toml)")


# The metrics a target can be set for (their `metrics --format json` field names, so a target
# reads in the unit of the figure it is compared with) and which way is better.
TARGET_METRICS: dict[str, Literal["at_least", "at_most"]] = {
    "deployments_per_week": "at_least",
    "lead_time_median_hours": "at_most",
    "change_failure_rate": "at_most",
    "failed_deployment_recovery_median_hours": "at_most",
    "time_to_restore_median_hours": "at_most",
    "rework_rate": "at_most",
}
_RATES = ("change_failure_rate", "rework_rate")
_HOURS = ("lead_time_median_hours", "failed_deployment_recovery_median_hours", "time_to_restore_median_hours")


class MetricTargets(_Model):
    """Targets for one scope. Hours accept a duration ("24h", "2d", "90m"); rates a ratio (0.1) or
    a percentage ("10%"). Deployment frequency is a floor, every other metric a ceiling."""

    deployments_per_week: float | None = Field(default=None, gt=0, description="at least this many a week")
    lead_time_median_hours: float | None = Field(default=None, gt=0, description="median at most (hours)")
    change_failure_rate: float | None = Field(default=None, ge=0, le=1, description="at most (0.1 or 10%)")
    failed_deployment_recovery_median_hours: float | None = Field(default=None, gt=0)
    time_to_restore_median_hours: float | None = Field(default=None, gt=0)
    rework_rate: float | None = Field(default=None, ge=0, le=1)

    @field_validator(*_HOURS, mode="before")
    @classmethod
    def _hours(cls, value: Any) -> Any:
        if isinstance(value, str):
            return parse_duration(value).total_seconds() / 3600
        return value

    @field_validator(*_RATES, mode="before")
    @classmethod
    def _ratio(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().endswith("%"):
            try:
                return float(value.strip()[:-1]) / 100
            except ValueError:
                raise ValueError(f"not a percentage: {value!r} (use e.g. 10%)") from None
        return value

    def values(self) -> dict[str, float]:
        return {m: v for m in TARGET_METRICS if (v := getattr(self, m)) is not None}


class Targets(MetricTargets):
    """Organisation-wide targets, with per-team and per-service ones that override them metric by
    metric (a service's over its team's over the organisation's)."""

    teams: dict[str, MetricTargets] = Field(default_factory=dict)
    services: dict[str, MetricTargets] = Field(default_factory=dict)

    def metrics(self) -> list[str]:
        """Every metric some scope sets a target for, in TARGET_METRICS order."""
        scopes = [self, *self.teams.values(), *self.services.values()]
        return [m for m in TARGET_METRICS if any(getattr(t, m) is not None for t in scopes)]


@dataclass(frozen=True)
class TargetCheck:
    metric: str
    target: float
    value: float | None
    met: bool | None    # None: no value to judge (no deployments, no lead times...)
    missed_by: float    # how far the value is on the wrong side, in the metric's unit; 0 when met

    @property
    def comparison(self) -> str:
        return "≥" if TARGET_METRICS[self.metric] == "at_least" else "≤"


def check_target(metric: str, value: Any, target: float) -> TargetCheck:
    """Whether ``value`` meets ``target`` (a floor for deployment frequency, a ceiling otherwise)."""
    number = None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)
    if number is None:
        return TargetCheck(metric, target, None, None, 0.0)
    gap = target - number if TARGET_METRICS[metric] == "at_least" else number - target
    return TargetCheck(metric, target, number, gap <= 0, max(gap, 0.0))


class Config(_Model):
    services: list[Service] = Field(default_factory=list)
    environments: list[Environment] = Field(
        default_factory=lambda: [Environment(name="production", production=True)]
    )
    deployments: DeploymentSources = Field(default_factory=DeploymentSources)
    incidents: IncidentRules = Field(default_factory=IncidentRules)
    connections: Connections = Field(default_factory=Connections)
    mapping: ReconcilerMapping = Field(default_factory=ReconcilerMapping)
    webhooks: Webhooks = Field(default_factory=Webhooks)
    dashboard: DashboardSettings = Field(default_factory=DashboardSettings)
    targets: Targets = Field(default_factory=Targets)

    def targets_for(self, *, service: str | None = None, team: str | None = None) -> dict[str, float]:
        """The targets of one group: the organisation's, overridden by its team's (a service's team
        from ``services`` when the group has none), overridden by the service's."""
        if team is None and service is not None and (known := self.service(service)) is not None:
            team = known.team
        merged = self.targets.values()
        if team is not None and team in self.targets.teams:
            merged.update(self.targets.teams[team].values())
        if service is not None and service in self.targets.services:
            merged.update(self.targets.services[service].values())
        return merged

    def service(self, name: str) -> Service | None:
        return next((s for s in self.services if s.name == name), None)

    def production_environments(self) -> list[str]:
        return [e.name for e in self.environments if e.production]

    def default_deployment_environment(self) -> str:
        """Where a deployment that names no environment goes: the configured default, else the
        first production environment (as for incidents), else "production"."""
        return self.deployments.default_environment or (self.production_environments() or ["production"])[0]


def _node_at(node: yaml.Node | None, loc: tuple[Any, ...]) -> yaml.Node | None:
    """Walk a composed YAML node tree along a pydantic error location."""
    import yaml

    current = node
    for part in loc:
        if isinstance(current, yaml.MappingNode):
            match = next((v for k, v in current.value if getattr(k, "value", None) == part), None)
            if match is None:
                key = next((k for k, _ in current.value if getattr(k, "value", None) == part), None)
                return key or current
            current = match
        elif isinstance(current, yaml.SequenceNode) and isinstance(part, int) and part < len(current.value):
            current = current.value[part]
        else:
            return current
    return current


def load_config(path: Path | None) -> Config:
    """Load and validate; ``None`` (no file) gives the defaults."""
    if path is None:
        return Config()
    import yaml

    from analytics.user_files import MB, read_user_text

    text = read_user_text(path, "config", limit=4 * MB, error=ConfigError)
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        where, problem = yaml_mark(exc)
        raise ConfigError(f"{path}:{' ' + where if where else ''}: invalid YAML: {problem}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the config must be a mapping of sections")
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(err["loc"])
        key = ".".join(str(p) for p in loc) or "(top level)"
        node = _node_at(root, loc)
        line = node.start_mark.line + 1 if node is not None else 1
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ConfigError(f"{path}: line {line}: {key}: {err['msg']}{more}") from None


def resolve_config_path(explicit: Path | None) -> Path | None:
    if explicit is not None:
        if not explicit.exists():
            raise ConfigError(f"config file {explicit} does not exist")
        return explicit
    default = Path(DEFAULT_CONFIG_NAME)
    return default if default.exists() else None
