"""``gitops-dora collect git PATH_OR_URL``: mine a repository's commits, tags and git deployments."""

from __future__ import annotations

import atexit
import gc
from typing import TYPE_CHECKING

import typer

from analytics.cli.app import collect_app, get_ctx

if TYPE_CHECKING:
    from analytics.config import Config

_exit_without_collections = False


def _exit_without_collections_at_shutdown() -> None:
    """Have the interpreter's shutdown skip its garbage collections (once per process).

    When the command is done, the process still tears down every module it imported (Typer,
    pydantic, duckdb, the store): about 40 ms of cyclic-GC passes over objects that are about to
    go anyway, 0.06-0.1 s at load 5, measured from the summary line to the exit. ``gc.freeze()``
    as the first exit handler moves them out of the collector's reach: the other exit handlers
    and the modules' teardown run as before, only objects kept alive by reference cycles are no
    longer collected at exit (Python promises no finalizer for objects alive at exit, and the
    command has closed the store and removed git's files by then). A process that runs the
    command in-process (the tests) is affected only when it exits itself.
    """
    global _exit_without_collections
    if not _exit_without_collections:
        atexit.register(gc.freeze)
        _exit_without_collections = True


@collect_app.command("git")
def collect_git_command(
    ctx: typer.Context,
    path_or_url: str = typer.Argument(
        ..., help="working tree, bare repository, or URL (cloned into a cache)"
    ),
    service: str | None = typer.Option(None, "--service", help="service the deployments belong to [repo id]"),
    environment: str | None = typer.Option(
        None, "--environment", help="environment of the git deployments [production]"
    ),
    deploy_tags: str | None = typer.Option(
        None, "--deploy-tags",
        help="regex: each matching tag is a deployment at the tag's time ('' switches them off)",
    ),
    deploy_branch: str | None = typer.Option(
        None, "--deploy-branch",
        help="each first-parent commit of this branch is a deployment ('' switches them off)",
    ),
    repo_id: str | None = typer.Option(None, "--repo-id", help="id of the repository [folder/URL basename]"),
) -> None:
    """Mine commits, tags and git deployments; a re-run only reads what is new."""
    _exit_without_collections_at_shutdown()
    from analytics.cli import git_head_start
    from analytics.collectors.git import (
        GitOptions,
        collect,
        remembered_options,
        state_reader,
        unchanged_summary,
    )
    from analytics.collectors.git_source import locate, ref_tips
    from analytics.progress import say

    app_ctx = get_ctx(ctx)
    config = app_ctx.config
    # a new store's run may have started git before the CLI loaded (git_head_start's docstring)
    head = git_head_start.take(path_or_url, repo_id)
    location = head.location if head is not None else locate(path_or_url, repo_id)
    rid = location.repo_id
    if location.is_shallow:
        say(f"warning: {location.url} is a shallow clone: history stops at the shallow boundary, "
            "so lead times of its oldest changes are truncated")
    tips = head.tips if head is not None else ref_tips(location.local_path)

    given = any(v is not None for v in (service, environment, deploy_tags, deploy_branch))
    git_cfg = config.deployments.git
    options: GitOptions | None = None
    reader = state_reader(app_ctx.db_path)  # one snapshot read for both checks (the attach dominates)
    if not given and git_cfg.tags is None and git_cfg.branch is None:
        options = remembered_options(app_ctx.db_path, rid, reader)
    if options is None:
        svc = service or _service_for_repo(config, rid, path_or_url) or rid
        env = environment or git_cfg.environment
        known = next((e for e in config.environments if e.name == env), None)
        svc_cfg = config.service(svc)
        options = GitOptions(
            service=svc, environment=env,
            deploy_tags=deploy_tags if deploy_tags is not None else git_cfg.tags,
            deploy_branch=deploy_branch if deploy_branch is not None else git_cfg.branch,
            team=svc_cfg.team if svc_cfg else None,
            environment_is_production=known.production if known else env == "production",
            environment_in_config=known is not None,
        )

    try:
        summary = unchanged_summary(app_ctx.db_path, rid, tips, options, reader)
    finally:
        if reader is not None:
            reader.close()
    if summary is None:
        summary = collect(app_ctx.db_path, location, options, tips, head.log if head is not None else None)
    for name in summary.skipped_tags[:5]:
        say(f"note: tag {name} does not point at a commit; skipped")
    say(summary.line())


def _service_for_repo(config: Config, repo_id: str, given: str) -> str | None:
    """The configured service that lists this repository (by id, path or URL), if exactly one does."""
    from analytics.collectors.git_source import default_repo_id

    hits = [
        s.name for s in config.services
        if any(r in (given, repo_id) or default_repo_id(r) == repo_id for r in s.repositories)
    ]
    return hits[0] if len(hits) == 1 else None
