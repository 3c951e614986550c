"""Maturity: the L0-L3 ladder with evidence, OpenGitOps principles, next steps, the maturity timeline
over the DORA trends, the self-assessment form, and each level's business benefits (from the model).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from dashboards import maturity_data, state
from dashboards.answers_form import UNANSWERED, answers_document, write_atomically
from dashboards.metrics_source import MetricsUnavailable, metrics, request_for, trend_frame

st.title("GitOps maturity")
f = state.current()
db = state.database()

model: Any = None
try:
    from assessment.model import load_model

    model = load_model()
except ImportError:
    pass
if model is None:
    st.warning("The maturity model is not installed in this version.")
    st.stop()

dora_trend = None
if maturity_data.assessments(db) is not None:
    try:
        dora_trend = trend_frame(
            metrics(db, request_for(f, group_by=("environment",), trend="month")),
            ["lead_time_median_hours", "deployments_per_week", "change_failure_rate"],
        )
    except MetricsUnavailable:
        dora_trend = None
maturity_data.render_assessment(db, f, model, dora_trend)

st.subheader("Business benefits per level")
for level in model.levels:
    with st.expander(f"Level {level.level}: {level.name}"):
        st.write(level.summary)
        for benefit in level.benefits:
            st.markdown(f"- {benefit}")

st.subheader("Self-assessment")
st.caption("One question per capability. The answers file feeds `gitops-dora assess PATH --answers FILE`; "
           "evidence found in the repositories outranks an answer, and disagreements are shown.")
default_path = db.resolve().parent / "maturity-answers.yaml"
with st.form("self-assessment"):
    answers: dict[str, str] = {}
    notes: dict[str, str] = {}
    for level in model.levels:
        st.markdown(f"**Level {level.level}: {level.name}**")
        for cap in level.capabilities:
            answers[cap.id] = st.radio(cap.question, [UNANSWERED, "yes", "no"], horizontal=True,
                                       key=f"ans-{cap.id}", help=f"{cap.title} (`{cap.id}`)")
            notes[cap.id] = st.text_input("Note (optional)", key=f"note-{cap.id}",
                                          label_visibility="collapsed", placeholder=f"note on {cap.id}")
    target = st.text_input("Write the answers to", value=str(default_path), key="answers-path")
    submitted = st.form_submit_button("Save answers")
document = answers_document(answers, notes)
if submitted:
    path = Path(target).expanduser()
    if path.suffix not in (".yaml", ".yml"):
        st.error(f"{path}: the answers file must end in .yaml or .yml")
    else:
        try:
            write_atomically(path, document)
        except OSError as exc:
            st.error(f"cannot write {path}: {exc.strerror}")
        else:
            st.success(f"Wrote {path}. Next: `gitops-dora assess PATH --answers {path}`")
st.download_button("Download answers YAML", document.encode(), file_name="maturity-answers.yaml",
                   mime="application/x-yaml", key="answers-download")
if not any(v != UNANSWERED for v in answers.values()):
    st.info("No self-assessment answers yet: answer the questions above and save (or download) them.")
