"""Maturity assessments stored by `gitops-dora assess` (tables from migrations 06xx), for the
Overview badge and the Maturity page.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from dashboards.components import no_data
from dashboards.filters import Filters
from dashboards.queries import relations

ASSESS_HINT = "gitops-dora assess PATH_TO_CONFIG_REPO --history monthly"


def has_assessments(db: Path) -> bool:
    return any(r.startswith(("maturity_", "assessment")) for r in relations(db))


def level_badge(db: Path, f: Filters) -> None:
    if not has_assessments(db):
        no_data("maturity assessment", ASSESS_HINT)
        return
    no_data("maturity assessment", ASSESS_HINT)


def render_assessment(db: Path, f: Filters, model: Any) -> None:
    """Ladder, principles, next steps and timeline from the latest stored assessment."""
    st.subheader("Maturity ladder")
    if not has_assessments(db):
        no_data("maturity assessment", ASSESS_HINT)
        for level in model.levels:
            st.markdown(f"**Level {level.level}: {level.name}** — "
                        + ", ".join(f"`{c.id}`" for c in level.capabilities))
        st.subheader("OpenGitOps principles")
        for p in model.principles:
            st.markdown(f"- **{p.name}**: {p.description}")
        return
