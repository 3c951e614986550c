"""Each table's natural key.

DuckLake has no PRIMARY KEY or UNIQUE constraints, so the key that makes a load an idempotent
upsert lives here instead of in the DDL; ``tests/test_store_keys.py`` checks that every table the
migrations create has one and that its columns exist.
"""

from __future__ import annotations

TABLE_KEYS: dict[str, tuple[str, ...]] = {
    "schema_migrations": ("version",),
    "repositories": ("id",),
    "commits": ("repo", "sha"),
    "tags": ("repo", "name"),
    "services": ("name",),
    "environments": ("name",),
    "deployments": ("id",),
    "deployment_changes": ("deployment_id", "repo", "sha"),
    "pull_requests": ("repo", "number"),
    "incidents": ("id",),
    "reconciler_events": ("id",),
    "collector_state": ("source", "key"),
    "collection_runs": ("id",),
    "data_warnings": ("source", "target", "kind", "detail"),
    "webhook_deliveries": ("provider", "delivery_id"),
    "releases": ("repo", "provider", "tag_name"),
    "pr_reviews": ("repo", "number", "review_id"),
    "webhook_pushes": ("repo", "ref", "after_sha"),
    "webhook_pull_requests": ("repo", "number"),
    "reconciler_objects": ("reconciler", "kind", "namespace", "name"),
    "config_image_changes": ("config_repo", "commit_sha", "path", "service", "environment", "tag"),
    "maturity_assessments": ("id",),
    "maturity_capability_status": ("assessment_id", "capability"),
    "maturity_level_progress": ("assessment_id", "level"),
    "imported_pull_request_ids": ("source_id",),
    "deployment_revisions": ("deployment_id", "repository"),
    "devlake_project_mapping": ("project_name", "table_name", "mapped_id"),
    "devlake_row_scopes": ("record_kind", "record_id", "scope_table", "scope_id"),
}


def key_of(table: str) -> tuple[str, ...]:
    try:
        return TABLE_KEYS[table]
    except KeyError:
        raise KeyError(f"no natural key declared for table {table!r} in analytics/store/keys.py") from None
