"""Streamlit dashboard over the published read snapshot."""
