"""Maturity assessments stored by `gitops-dora assess` (tables from migrations 06xx)."""

from __future__ import annotations

from pathlib import Path

from dashboards.components import no_data
from dashboards.filters import Filters
from dashboards.queries import relations

ASSESS_HINT = "gitops-dora assess PATH_TO_CONFIG_REPO --history monthly"


def level_badge(db: Path, f: Filters) -> None:
    if not any(r.startswith(("maturity", "assessment")) for r in relations(db)):
        no_data("maturity assessment", ASSESS_HINT)
        return
    no_data("maturity assessment", ASSESS_HINT)
