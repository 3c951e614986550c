"""Maturity: the L0-L3 ladder with evidence; what blocks the next level, what is undecided and what
was only seen in examples, each apart; OpenGitOps principles, next steps, the maturity timeline over
the DORA trends, the self-assessment form, and each level's business benefits (from the model).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from analytics.config import load_config
from dashboards import maturity_data, state
from dashboards.answers_form import (
    DOWNLOAD_NAME,
    UNANSWERED,
    AnswersFolderError,
    answers_document,
    answers_folder,
    save_answers,
)
from dashboards.components import how_computed
from dashboards.metrics_source import MetricsUnavailable, metrics, request_for, trend_frame
from dashboards.safe_text import md, md_code
from dashboards.source import config_path

st.title("GitOps maturity")
f = state.current()
db = state.database()
how_computed("maturity")

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


@st.fragment
def self_assessment(levels: Any, folder: Path | None) -> None:
    """The questions, the download of the answers YAML, and (with ``dashboard.answers_dir``) saving
    it on the server. A fragment: answering reruns only this part, so the download is always the
    answers as shown."""
    answers: dict[str, str] = {}
    notes: dict[str, str] = {}
    for level in levels:
        st.markdown(f"**Level {level.level}: {level.name}**")
        for cap in level.capabilities:
            answers[cap.id] = st.radio(cap.question, [UNANSWERED, "yes", "no"], horizontal=True,
                                       key=f"ans-{cap.id}", help=f"{cap.title} (`{cap.id}`)")
            notes[cap.id] = st.text_input("Note (optional)", key=f"note-{cap.id}",
                                          label_visibility="collapsed", placeholder=f"note on {cap.id}")
    document = answers_document(answers, notes)
    st.download_button("Download answers YAML", document.encode(), file_name=DOWNLOAD_NAME,
                       mime="application/x-yaml", key="answers-download", on_click="ignore",
                       icon=":material/download:")
    save = folder is not None and st.button(
        "Save in the answers folder", key="answers-save", icon=":material/save:",
        help="Writes a new maturity-answers-<UTC time>.yaml into the folder set by "
             "`dashboard.answers_dir` in gitops-dora.yaml.")
    if save and folder is not None:
        try:
            saved = save_answers(folder, document)
        except AnswersFolderError as exc:
            st.error(f"Answers not saved: {md(exc)}")
        else:
            st.success(f"Saved {md_code(saved.name)} in the answers folder. Next: "
                       f"`gitops-dora assess PATH --answers {saved.name}` (path in that folder)")
    if not any(v != UNANSWERED for v in answers.values()):
        st.info("No self-assessment answers yet: answer the questions above, then download them"
                + (" or save them in the answers folder." if folder is not None else "."))


settings = load_config(config_path()).dashboard
self_assessment(model.levels, answers_folder(settings.answers_dir, config_path()))
