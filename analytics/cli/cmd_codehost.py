"""``collect github OWNER/REPO`` and ``collect gitlab GROUP/PROJECT``. Tokens never come from arguments."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import typer

from analytics.cli.app import collect_app, get_ctx

# the same options mean the same thing for both hosts
_FULL = typer.Option(False, "--full", help="ignore the watermarks and fetch everything again")
_SINCE = typer.Option(
    None, "--since", help="skip items last updated before this (YYYY-MM-DD or ISO 8601 with zone)"
)


def _collect(
    ctx: typer.Context,
    collector: Callable[..., Any],
    target: str,
    base_url: str | None,
    repo_id: str | None,
    full: bool,
    since: str | None,
) -> None:
    from analytics.metrics.window import parse_instant
    from analytics.progress import say

    app_ctx = get_ctx(ctx)
    summary = collector(app_ctx.db_path, app_ctx.config, target, base_url=base_url,
                        explicit_repo_id=repo_id, full=full,
                        since=parse_instant(since, "--since") if since else None)
    say(summary.line())


@collect_app.command("github")
def collect_github_command(
    ctx: typer.Context,
    repository: str = typer.Argument(..., help="OWNER/REPO"),
    base_url: str | None = typer.Option(
        None, "--base-url", help="API root (GHE: https://HOST/api/v3); default: connections.github.base_url"
    ),
    repo_id: str | None = typer.Option(
        None, "--repo-id", help="id of the collected git repository these PRs belong to; default: by name"
    ),
    full: bool = _FULL,
    since: str | None = _SINCE,
) -> None:
    """Pull requests, deployments, incident issues and releases (token: $GITHUB_TOKEN)."""
    from analytics.collectors.github import collect_github

    _collect(ctx, collect_github, repository, base_url, repo_id, full, since)


@collect_app.command("gitlab")
def collect_gitlab_command(
    ctx: typer.Context,
    project: str = typer.Argument(..., help="GROUP/PROJECT (subgroups allowed: group/sub/project)"),
    base_url: str | None = typer.Option(
        None, "--base-url", help="GitLab root URL; default: connections.gitlab.base_url"
    ),
    repo_id: str | None = typer.Option(
        None, "--repo-id", help="id of the collected git repository these MRs belong to; default: by name"
    ),
    full: bool = _FULL,
    since: str | None = _SINCE,
) -> None:
    """Merge requests, deployments per environment and incident issues (token: $GITLAB_TOKEN)."""
    from analytics.collectors.gitlab import collect_gitlab

    _collect(ctx, collect_gitlab, project, base_url, repo_id, full, since)
