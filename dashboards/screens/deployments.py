"""Deployments: a filterable table and a drill-down into one deployment."""

from __future__ import annotations

import streamlit as st

from dashboards import charts, drilldown, state
from dashboards.components import (
    COLLECT_DEPLOYMENTS,
    COLLECT_PRS,
    COLLECT_RECONCILERS,
    how_computed,
    is_missing,
    no_data,
    table,
    with_short_ids,
)
from dashboards.queries import deployment_list
from dashboards.safe_text import md, md_code

st.title("Deployments")
f = state.current()
db = state.database()
how_computed("deployments")

listing = deployment_list(db, f)
if listing is None or listing.empty:
    no_data("deployments in this window", COLLECT_DEPLOYMENTS)
    st.stop()

c1, c2, c3 = st.columns([1, 1, 2])
statuses = c1.multiselect("Outcome", sorted(listing["outcome"].unique()), key="dep_status")
sources = c2.multiselect("Source", sorted(listing["source"].unique()), key="dep_source")
text = c3.text_input("Search id, revision or ref", key="dep_text").strip().lower()
shown = listing
if statuses:
    shown = shown[shown["outcome"].isin(statuses)]
if sources:
    shown = shown[shown["source"].isin(sources)]
if text:
    hay = (shown["id"].fillna("") + " " + shown["revision"].fillna("") + " " + shown["source_ref"].fillna(""))
    shown = shown[hay.str.lower().str.contains(text, regex=False)]
st.caption(f"{len(shown)} of {len(listing)} deployments")
if len(shown):
    st.caption(charts.DEPLOYMENTS_TITLE)  # a caption: the drill-down header is the page's first bold line
    st.plotly_chart(charts.deployment_timeline(shown), key="deployment-timeline")
picked = table(with_short_ids(shown, "id", "deployment"), key="deployments", file_name="deployments.csv",
               selectable=True, colors={"outcome": {"ok": "good", "failed": "bad"}})

if shown.empty:
    st.stop()
st.subheader("Drill-down")
st.caption("Click a row in the table above to open it here (the newest is shown by default); "
           "the link then names the deployment.")
linked = st.query_params.get("deployment")
if picked is not None and picked < len(shown):
    row = shown.iloc[picked]
    st.query_params["deployment"] = str(row["id"])
elif linked and linked in set(shown["id"]):
    row = shown[shown["id"] == linked].iloc[0]
else:
    if linked:
        st.warning(f"Ignored URL parameter: deployment={md(repr(linked))} is not in this view; "
                   "showing the newest")
        del st.query_params["deployment"]
    row = shown.iloc[0]
chosen = str(row["id"])
revision = "—" if is_missing(row["revision"]) else row["revision"]
st.markdown(
    f"**{md(row['service'])}** → **{md(row['environment'])}** at {row['deployed_at']}"
    f" · source {md_code(row['source'])} · revision {md_code(revision)}"
)
st.caption(f"Deployment id: {md_code(chosen)}")
signals = drilldown.failure_signals(db, chosen)
reported = md(row["status"])
if signals is not None and len(signals):
    names = ", ".join(md(s) for s in dict.fromkeys(signals["signal"]))
    st.markdown(f"**Counted as a failed deployment** because of: {names} "
                f"(the rollout itself reported {reported}). The signals:")
    table(signals, key="dep-signals", file_name=f"{chosen}-failure-signals.csv")
elif row["status"] == "failed":
    st.markdown(f"**Counted as a failed deployment**: the rollout itself reported {reported}.")
else:
    st.markdown(f"**Not a failed deployment**: no incident, revert, failed rollout or rollback names "
                f"it (the rollout reported {reported}).")

tabs = st.tabs(["Changes", "Pull requests", "Incidents", "Reconciler events"])
with tabs[0]:
    ch = drilldown.changes(db, chosen)
    if ch.empty:
        st.info("This deployment shipped no new commits (a redeploy, or the baseline).")
    else:
        table(ch, key="dep-changes", file_name=f"{chosen}-changes.csv")
with tabs[1]:
    pr = drilldown.pull_requests(db, chosen)
    if pr.empty:
        no_data("pull requests for this deployment", COLLECT_PRS)
    else:
        table(pr, key="dep-prs", file_name=f"{chosen}-prs.csv")
with tabs[2]:
    inc = drilldown.incidents(db, chosen)
    if inc.empty:
        st.info("No incident is attributed to this deployment.")
    else:
        table(inc, key="dep-incidents", file_name=f"{chosen}-incidents.csv")
        if inc["resolved_at"].isna().any():
            st.caption("An incident without resolved_at is still open.")
with tabs[3]:
    ev = drilldown.reconciler_events(db, chosen)
    if ev.empty:
        no_data("reconciler events for this deployment", COLLECT_RECONCILERS)
    else:
        table(ev, key="dep-events", file_name=f"{chosen}-reconciler-events.csv")
