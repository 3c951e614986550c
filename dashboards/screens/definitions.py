"""Definitions: docs/metrics.md and docs/maturity.md, one expander per section; the section a
page's "How this is computed" linked (``?doc=metrics&section=change-failure-rate``) is open."""

from __future__ import annotations

import streamlit as st

from dashboards.definitions import DOCS, METRICS, doc_sections, help_text, slug
from dashboards.safe_text import md

st.title("Definitions")
st.caption("How every number on these pages is computed: the project's docs, section by section.")

wanted_doc = st.query_params.get("doc") or ""
wanted = st.query_params.get("section") or ""
docs = {name.removesuffix(".md"): doc_sections(name) for name in DOCS}
known = {(d, slug(h)) for d, sections in docs.items() for h, _ in sections or []}
if (wanted_doc or wanted) and (wanted_doc, wanted) not in known and any(docs.values()):
    st.warning(f"Ignored URL parameter: no section {md(repr(wanted))} in docs/{md(wanted_doc)}.md; "
               "showing every section closed.")
    wanted_doc = wanted = ""

if not any(docs.values()):
    st.info("The docs folder is not installed with this copy of gitops-dora (it ships with the "
            "source repository); here are the metric definitions the tiles quote.")
    for metric in METRICS:
        st.markdown(f"**{metric.title}**: {help_text(metric)}")
for name, sections in docs.items():  # the linked section first, open
    for heading, body in (sections or [])[1:]:
        if name == wanted_doc and slug(heading) == wanted:
            st.subheader(f"docs/{name}.md: {heading}", anchor=wanted)
            st.markdown(body)
            st.divider()
for name, sections in docs.items():
    if not sections:
        continue
    title, intro = sections[0]
    st.header(f"docs/{name}.md: {title}", anchor=name)
    with st.expander("Introduction", expanded=False):
        st.markdown(intro)
    for heading, body in sections[1:]:
        with st.expander(heading):
            st.markdown(body)
