"""Data health: what was collected when, watermarks, row counts, and what the metrics left out."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import streamlit as st

from dashboards import charts, health, state
from dashboards.components import COLLECT_DEPLOYMENTS, COLLECT_INCIDENTS, how_computed, no_data, table
from dashboards.queries import deployment_count, has_database
from dashboards.safe_text import md

st.title("Data health")
db = state.database()
st.caption("Covers the whole database (the sidebar filters do not apply here).")
how_computed("data_health")

if not has_database(db):
    no_data(f"database at {db}", COLLECT_DEPLOYMENTS)
    st.stop()

if deployment_count(db) == 0:
    no_data("deployments", COLLECT_DEPLOYMENTS)

st.subheader("Last collection per source")
runs = health.last_collections(db)
if runs.empty:
    no_data("collection runs", COLLECT_DEPLOYMENTS)
else:
    failed = runs[runs["last_status"] != "ok"]
    if len(failed):
        st.error(f"{len(failed)} source(s) failed on their last run: "
                 + ", ".join(md(f"{r.source} {r.target}".strip()) for r in failed.itertuples()))
    table(runs, key="runs", file_name="collection-runs.csv")
    st.markdown(f"**{charts.RUNS_TITLE}**")
    st.plotly_chart(charts.collection_runs(health.run_history(db)), key="runs-chart")

left, right = st.columns(2)
with left:
    st.subheader("Row counts")
    table(health.row_counts(db), key="counts", file_name="row-counts.csv")
with right:
    st.subheader("Watermarks")
    marks = health.watermarks(db)
    if marks.empty:
        st.info("No incremental watermarks yet: every collector run so far was a full load.")
    else:
        table(marks, key="watermarks", file_name="watermarks.csv")

st.subheader("Unattributed incidents")
unattributed = health.unattributed_incidents(db)
if unattributed is None:
    no_data("incident attribution", COLLECT_INCIDENTS)
elif unattributed.empty:
    st.success("Every incident is attributed to a deployment.")
else:
    st.caption("Counted in the incident totals but against no deployment: no root cause matched and no "
               "deployment of the same service and environment within the attribution gap before it.")
    table(unattributed, key="unattributed", file_name="unattributed-incidents.csv")

st.subheader("Excluded negative lead times")
negative = health.negative_lead_times(db)
if negative is None:
    no_data("change lead times", COLLECT_DEPLOYMENTS)
elif negative.empty:
    st.success("No change was deployed before its start time.")
else:
    st.caption("Changes whose start (author/committer time) is after their deployment, usually clock skew "
               "or rewritten history. Left out of lead time and counted in `excluded_negative_lead_times`.")
    table(negative, key="negative", file_name="negative-lead-times.csv")

def findings(found: pd.DataFrame, found_warnings: pd.DataFrame, *, ok: str, explain: Callable[[str], object],
             why: str, files: tuple[str, str]) -> None:
    """A check's rows and its data-quality warnings, or its all-clear line; ``files``: the two
    tables' download names (without .csv), also their widget keys."""
    if found.empty and found_warnings.empty:
        st.success(ok)
        return
    explain(why)
    for frame, name in ((found, files[0]), (found_warnings, files[1])):
        if not frame.empty:
            table(frame, key=name, file_name=f"{name}.csv")


warnings = health.warnings(db)
st.subheader("Shallow clones")
findings(health.shallow_repositories(db), warnings[warnings["kind"].str.contains("shallow")],
         ok="No repository was mined from a shallow clone.", explain=st.warning,
         why="History is truncated in these repositories, so their lead times are too short.",
         files=("shallow-repositories", "shallow-clone-warnings"))

st.subheader("Unknown revision formats")
findings(health.unknown_revisions(db), warnings[warnings["kind"].str.contains("revision")],
         ok="Every deployment revision was understood.", explain=st.caption,
         why="Revisions the collectors could not map to a commit; their deployments have no changes.",
         files=("unknown-revisions", "revision-warnings"))

st.subheader("All data-quality warnings")
if warnings.empty:
    st.success("No data-quality warnings recorded.")
else:
    table(warnings, key="warnings", file_name="data-warnings.csv")
