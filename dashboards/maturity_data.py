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


def _next_level(result: dict[str, Any]) -> int:
    level = result.get("level")
    return int(level) + 1 if isinstance(level, int | float) and not is_missing(level) else 0


def decisions(result: dict[str, Any], model: Any) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """What blocks the next level (``not_met``), what is undecided (``unknown``, with the question
    to answer or the source to add) and the evidence seen only in examples, docs and tests, as three
    tables. An assessment stored before these lists existed gets them from its capability statuses
    (blocking: the next level's not_met ones; undecided: unknown ones up to it)."""
    nxt = _next_level(result)
    caps = {c.get("id"): c for c in result.get("capabilities") or []}
    model_caps = {c.id: c for lvl in model.levels for c in lvl.capabilities}
    blocking, undecided = result.get("blocking"), result.get("undecided")
    if blocking is None or undecided is None:
        derived_blocking, derived_undecided = [], []
        for c in caps.values():
            level = c.get("level")
            known = model_caps.get(c.get("id"))
            row = {"capability": c.get("id"), "level": level, "title": c.get("title"), "why": c.get("note")}
            if level == nxt and c.get("status") == "not_met":
                derived_blocking.append({**row, "action": getattr(known, "action", None)})
            if isinstance(level, int) and level <= nxt and c.get("status") == "unknown":
                derived_undecided.append({**row, "question": getattr(known, "question", None)})
        blocking = derived_blocking if blocking is None else blocking
        undecided = derived_undecided if undecided is None else undecided
    block_rows = [{"capability": b.get("title"), "id": b.get("capability"), "level": b.get("level"),
                   "why": b.get("why"), "action": b.get("action")} for b in blocking]
    undecided_rows = [{"capability": u.get("title"), "id": u.get("capability"), "level": u.get("level"),
                       "why": u.get("why"), "question to answer": u.get("question"),
                       "or source to add": u.get("source") or "attest it in an answers file"}
                      for u in undecided]
    example_rows = []
    for cap in caps.values():
        for ev in cap.get("seen_in_examples") or []:
            where = ev.get("path") or ev.get("object") or ""
            example_rows.append({
                "capability": cap.get("title"), "id": cap.get("id"),
                "status": STATUS_LABELS.get(str(cap.get("status")), str(cap.get("status"))),
                "where": f"{where}:{ev['line']}" if ev.get("line") else where,
                "detail": ev.get("detail"),
            })
    return (
        pd.DataFrame(block_rows, columns=["capability", "id", "level", "why", "action"]),
        pd.DataFrame(undecided_rows, columns=["capability", "id", "level", "why", "question to answer",
                                              "or source to add"]),
        pd.DataFrame(example_rows, columns=["capability", "id", "status", "where", "detail"]),
    )


def render_decisions(result: dict[str, Any], model: Any) -> None:
    """Blocking, undecided and seen-in-examples, each apart: a missing capability is a fix, an unknown
    one a question, and examples never count as met. Every value is a table cell, drawn as text."""
    nxt = _next_level(result)
    blocking, undecided, examples = decisions(result, model)
    in_model = nxt < len(model.levels)
    st.subheader("Blocking the next level")
    if not in_model:
        st.success("Every level is reached.")
    elif blocking.empty:
        st.success(f"Nothing at Level {nxt} is missing.")
    else:
        st.caption(f"Missing (not met) at Level {nxt}: each of these keeps the level from being reached.")
        table(blocking, key="maturity-blocking", file_name="maturity-blocking.csv")
    st.subheader("Undecided")
    if undecided.empty:
        st.caption(f"Nothing undecided up to Level {min(nxt, len(model.levels) - 1)}.")
    else:
        st.caption("Unknown: the sources cannot tell. Not counted as missing, but a level is not reached on "
                   "unknowns alone; answer the question in the self-assessment below, or add the source.")
        table(undecided, key="maturity-undecided", file_name="maturity-undecided.csv")
    st.subheader("Seen in examples")
    if examples.empty:
        st.caption("No evidence found only in examples, docs or tests.")
    else:
        st.caption("Evidence in examples, docs and tests: not deployed, so never counted as met. The status "
                   "column is the capability's status from deployed evidence.")
        table(examples, key="maturity-examples", file_name="maturity-seen-in-examples.csv",
              colors={"status": STATUS_COLORS})


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

    render_decisions(result, model)

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
