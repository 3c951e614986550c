"""DORA metrics: SQL views over the core tables, composed per group and period."""
