"""gitops-dora analytics: collectors, the DuckDB store, DORA metrics and the CLI."""

__version__ = "0.1.0"
