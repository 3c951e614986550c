"""The maturity model shipped as data (``data/maturity/model.yaml``), loaded into typed objects.

The model is data so that wording, questions and actions can change without touching the scoring
code; the ids, however, are a contract with answers files, stored assessments and the dashboard.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from analytics.errors import UserError, yaml_problem
from analytics.paths import data_dir
from analytics.user_files import MB, read_user_text

CAPABILITY_IDS: tuple[str, ...] = (
    "declarative-iac",
    "declarative-workloads",
    "version-control",
    "immutable-images",
    "suitable-infrastructure",
    "workload-reconciliation",
    "environment-management",
    "secrets-management",
    "pull-based",
    "package-management",
    "whole-environment",
    "cluster-workload-separation",
    "security-governance",
    "progressive-delivery",
    "template-customization",
    "fleet-management",
    "mass-customization",
    "advanced-policy",
    "cross-enterprise-governance",
    "multi-cloud",
)
PRINCIPLE_IDS: tuple[str, ...] = (
    "declarative",
    "versioned-immutable",
    "pulled-automatically",
    "continuously-reconciled",
)


@dataclass(frozen=True)
class Capability:
    id: str
    level: int
    title: str
    question: str
    action: str
    evidence: str  # what evidence would satisfy it, in words


@dataclass(frozen=True)
class Level:
    level: int
    name: str
    summary: str
    benefits: tuple[str, ...]
    capabilities: tuple[Capability, ...]


@dataclass(frozen=True)
class Principle:
    id: str
    name: str
    description: str
    capabilities: tuple[str, ...]


# Folders whose files are not what the repository deploys (examples, docs, tests, scripts):
# evidence there is shown apart as "seen in examples", never as met. `not_deployed:` in the model
# file replaces the list; `assess --include-examples` lifts it.
NOT_DEPLOYED: tuple[str, ...] = (
    "examples", "example", "docs", "test", "tests", "e2e", "testdata", "fixtures", "hack",
)


@dataclass(frozen=True)
class Model:
    levels: tuple[Level, ...]
    principles: tuple[Principle, ...]
    not_deployed: tuple[str, ...] = NOT_DEPLOYED

    @property
    def capabilities(self) -> tuple[Capability, ...]:
        return tuple(c for lvl in self.levels for c in lvl.capabilities)

    def capability(self, cap_id: str) -> Capability:
        for cap in self.capabilities:
            if cap.id == cap_id:
                return cap
        raise KeyError(cap_id)


def default_model_path() -> Path:
    return data_dir() / "maturity" / "model.yaml"


def _text(node: dict[str, Any], key: str, where: str) -> str:
    value = node.get(key)
    if not isinstance(value, str) or not value.strip():
        raise UserError(f"maturity model {where}: `{key}` must be a non-empty string")
    return value.strip()


def parse_model(raw: Any, source: str = "model") -> Model:
    """Validate the structure and the fixed ids, so a bad edit fails loudly instead of mis-scoring."""
    if not isinstance(raw, dict) or not isinstance(raw.get("levels"), list):
        raise UserError(f"{source}: expected a mapping with a `levels` list")
    levels = []
    for i, lvl in enumerate(raw["levels"]):
        where = f"{source} levels[{i}]"
        if not isinstance(lvl, dict) or lvl.get("level") != i:
            raise UserError(f"{where}: levels must be listed in order 0, 1, 2, 3")
        caps = []
        for j, cap in enumerate(lvl.get("capabilities") or []):
            cwhere = f"{where}.capabilities[{j}]"
            if not isinstance(cap, dict):
                raise UserError(f"{cwhere}: expected a mapping")
            caps.append(
                Capability(
                    id=_text(cap, "id", cwhere),
                    level=i,
                    title=_text(cap, "title", cwhere),
                    question=_text(cap, "question", cwhere),
                    action=_text(cap, "action", cwhere),
                    evidence=_text(cap, "evidence", cwhere),
                )
            )
        benefits = lvl.get("benefits") or []
        if not isinstance(benefits, list) or not all(isinstance(b, str) for b in benefits):
            raise UserError(f"{where}: `benefits` must be a list of strings")
        levels.append(
            Level(
                level=i,
                name=_text(lvl, "name", where),
                summary=_text(lvl, "summary", where),
                benefits=tuple(benefits),
                capabilities=tuple(caps),
            )
        )
    ids = tuple(c.id for lvl in levels for c in lvl.capabilities)
    if ids != CAPABILITY_IDS:
        raise UserError(f"{source}: capability ids must be exactly {', '.join(CAPABILITY_IDS)} in order")
    principles = []
    for k, pr in enumerate(raw.get("principles") or []):
        pwhere = f"{source} principles[{k}]"
        if not isinstance(pr, dict):
            raise UserError(f"{pwhere}: expected a mapping")
        caps_of = pr.get("capabilities") or []
        unknown = [c for c in caps_of if c not in CAPABILITY_IDS]
        if unknown or not caps_of:
            raise UserError(f"{pwhere}: `capabilities` must list known capability ids (bad: {unknown})")
        principles.append(
            Principle(
                id=_text(pr, "id", pwhere),
                name=_text(pr, "name", pwhere),
                description=_text(pr, "description", pwhere),
                capabilities=tuple(caps_of),
            )
        )
    if tuple(p.id for p in principles) != PRINCIPLE_IDS:
        raise UserError(f"{source}: principles must be exactly {', '.join(PRINCIPLE_IDS)} in order")
    scope = raw.get("not_deployed", list(NOT_DEPLOYED))
    if not isinstance(scope, list) or not all(isinstance(d, str) and d.strip("/") for d in scope):
        raise UserError(f"{source}: `not_deployed` must be a list of folder names")
    return Model(
        levels=tuple(levels),
        principles=tuple(principles),
        not_deployed=tuple(d.strip("/") for d in scope),
    )


@lru_cache(maxsize=4)
def load_model(path: Path | None = None) -> Model:
    """The shipped model (or another file with the same ids); cached because it never changes in a run."""
    path = path or default_model_path()
    try:
        raw = yaml.safe_load(read_user_text(path, "maturity model", limit=4 * MB))
    except yaml.YAMLError as exc:
        raise UserError(f"maturity model {path} is not valid YAML: {yaml_problem(exc)}") from None
    return parse_model(raw, str(path))
