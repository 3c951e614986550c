"""Data shipped with gitops-dora (installed as the package ``gitops_dora_data``)."""
