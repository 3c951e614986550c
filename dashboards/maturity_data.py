"""Maturity assessments stored by `gitops-dora assess` (``maturity_*`` tables, migration 0601), for
the Overview badge and the Maturity page.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from dashboards.components import is_missing, no_data, table
from dashboards.filters import Filters
from dashboards.queries import frame, relations
from dashboards.safe_text import md

ASSESS_HINT = "gitops-dora assess PATH_TO_CONFIG_REPO --history monthly --store"
# plain words: emoji fonts are often missing on servers and in headless browsers
STATUS_LABELS = {"met": "met", "attested": "attested (self-assessed)", "not_met": "missing",
                 "unknown": "unknown"}
PRINCIPLE_LABELS = {"satisfied": "satisfied", "partial": "partial", "not_satisfied": "not satisfied"}
LEVEL_COLORS = {0: "orange", 1: "blue", 2: "violet", 3: "green"}
STATUS_COLORS = {"met": "good", "attested (self-assessed)": "partial", "missing": "bad", "unknown": "neutral",
                 "satisfied": "good", "partial": "partial", "not satisfied": "bad"}
KIND_TEXT = {"point": "a single assessment", "monthly": "monthly history"}


def assessments(db: Path) -> pd.DataFrame | None:
    """All stored assessments, newest state first; None before the maturity tables exist."""
    if "maturity_assessments" not in relations(db):
        return None
    return frame(
        db,
        """
        SELECT id, target, kind, period, as_of, assessed_at, level, answers_file
        FROM maturity_assessments ORDER BY as_of DESC, assessed_at DESC, id
        """,
    )


def latest_result(db: Path, target: str) -> dict[str, Any]:
    row = frame(
        db,
        """
        SELECT result FROM maturity_assessments WHERE target = $target
        ORDER BY as_of DESC, assessed_at DESC, id LIMIT 1
        """,
        target=target,
    )
    raw = row["result"].iloc[0]
    return raw if isinstance(raw, dict) else json.loads(raw)


def _level_text(level: Any) -> str:
    return "below Level 0" if is_missing(level) else f"Level {int(level)}"


def level_badge(db: Path, f: Filters) -> None:
    """The latest assessed level of each target (Overview). The badge holds only the level: st.badge
    escapes square brackets itself, so data in it could not be shown literally; the target (a path
    or URL) is in the caption below it."""
    found = assessments(db)
    if found is None or found.empty:
        no_data("maturity assessment", ASSESS_HINT)
        return
    latest = found.drop_duplicates("target")
    for row in latest.itertuples():
        level = row.level
        color = "gray" if is_missing(level) else LEVEL_COLORS.get(int(level), "gray")
        st.badge(_level_text(level), color=color)  # type: ignore[arg-type]
        kind = KIND_TEXT.get(str(row.kind), str(row.kind))
        st.caption(f"{md(row.target)}: assessed as of {pd.Timestamp(row.as_of).date()} ({md(kind)})")


def _evidence_text(evidence: list[dict[str, Any]] | None) -> str:
    items = []
    for ev in evidence or []:
        where = ev.get("path") or ev.get("object") or ""
        if ev.get("line"):
            where = f"{where}:{ev['line']}"
        detail = ev.get("detail") or ""
        items.append(f"{where} {detail}".strip())
    return "; ".join(items)


def render_assessment(db: Path, f: Filters, model: Any, dora_trend: pd.DataFrame | None) -> None:
    """Ladder, principles, next steps and the maturity timeline from the stored assessments."""
    found = assessments(db)
    if found is None or found.empty:
        st.subheader("Maturity ladder")
        no_data("maturity assessment", ASSESS_HINT)
        for level in model.levels:
            st.markdown(f"**Level {level.level}: {level.name}** — "
                        + ", ".join(f"`{c.id}`" for c in level.capabilities))
        st.subheader("OpenGitOps principles")
        for p in model.principles:
            st.markdown(f"- **{p.name}**: {p.description}")
        return
    targets = list(dict.fromkeys(found["target"]))
    target = st.selectbox("Assessed repositories", targets, key="maturity_target") if len(targets) > 1 \
        else targets[0]
    result = latest_result(db, target)
    level = result.get("level")
    st.subheader(f"Maturity ladder: {_level_text(level)}")
    capabilities = {c["id"]: c for c in result.get("capabilities") or []}
    progress = {lv["level"]: lv for lv in result.get("levels") or []}
    for lvl in model.levels:
        prog = progress.get(lvl.level, {})
        met = "reached" if prog.get("met") else "not reached"
        st.markdown(f"**Level {lvl.level}: {lvl.name}** — {met}, "
                    f"{float(prog.get('progress') or 0) * 100:.0f}% of capabilities met")
        rows = []
        for cap in lvl.capabilities:
            c = capabilities.get(cap.id, {})
            rows.append({
                "capability": cap.title, "id": cap.id,
                "status": STATUS_LABELS.get(str(c.get("status")), str(c.get("status") or "unknown")),
                "evidence": _evidence_text(c.get("evidence")),
                "answer": c.get("answer") or "not answered", "conflict": c.get("conflict") or "none",
            })
        table(pd.DataFrame(rows), key=f"ladder-{lvl.level}", file_name=f"maturity-level-{lvl.level}.csv",
              colors={"status": STATUS_COLORS})

    st.subheader("OpenGitOps principles")
    principle_names = {p.id: p.name for p in model.principles}
    prows = [{"principle": principle_names.get(p.get("id"), p.get("id")),
              "status": PRINCIPLE_LABELS.get(str(p.get("status")), str(p.get("status"))),
              "evidence": _evidence_text(p.get("evidence"))} for p in result.get("principles") or []]
    table(pd.DataFrame(prows, columns=["principle", "status", "evidence"]), key="principles",
          file_name="opengitops-principles.csv", colors={"status": STATUS_COLORS})

    st.subheader("Next steps")
    steps = result.get("next_steps") or []
    if not steps:
        st.success("No open capability at the next level.")
    actions = {c.id: c.action for lvl in model.levels for c in lvl.capabilities}
    for step in steps:
        # the action text is the model's own Markdown when the stored id is a model capability;
        # anything else in the stored result is shown as plain text
        cap_id = str(step.get("capability"))
        action = actions.get(cap_id) or md(step.get("action"))
        st.markdown(f"- **{md(cap_id)}**: {action}")

    st.subheader("Maturity over time, with DORA trends")
    monthly = found[(found["target"] == target) & (found["kind"] == "monthly")].sort_values("as_of")
    if monthly.empty:
        no_data("maturity timeline", ASSESS_HINT)
        return
    from dashboards import charts

    st.plotly_chart(charts.maturity_timeline(monthly, dora_trend), key="maturity-timeline")
    timeline = monthly[["period", "as_of", "level"]].copy()
    timeline["level"] = [_level_text(v) for v in timeline["level"]]
    table(timeline, key="maturity-monthly", file_name="maturity-timeline.csv")
