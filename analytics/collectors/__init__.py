"""Collectors: one module per source (git, code hosts, reconcilers)."""
