"""Deployments read from git itself: release tags, and first-parent commits of a deploy branch."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

from analytics.collectors.git_log import Tag
from analytics.collectors.git_source import run_git
from analytics.errors import SourceError, UserError
from analytics.store.upsert import merge

GIT_SOURCES = ("git-tag", "git-branch")


@dataclass(frozen=True)
class GitDeployment:
    id: str
    revision: str
    epoch: int
    source: str
    source_ref: str
    raw_revision: str
    revision_format: str


def compile_pattern(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise UserError(f"--deploy-tags {pattern!r} is not a valid regular expression: {exc}") from None


def from_tags(repo_id: str, tags: Sequence[Tag], pattern: str) -> list[GitDeployment]:
    """Each tag whose name matches (``re.search``) is a deployment at the tag's time."""
    rx = compile_pattern(pattern)
    return [
        GitDeployment(f"git-tag:{repo_id}:{t.name}", t.sha, t.epoch, "git-tag", t.name, t.name, "git-tag")
        for t in tags if rx.search(t.name)
    ]


def resolve_branch(repo: Path, branch: str) -> str:
    """The full ref of ``branch``: a local branch, else a remote-tracking one, else any ref."""
    for candidate in (f"refs/heads/{branch}", f"refs/remotes/origin/{branch}", branch):
        ok = run_git(repo, ["rev-parse", "--verify", "--quiet", f"{candidate}^{{commit}}"], what="",
                     check=False)
        if ok.returncode == 0:
            return candidate
    raise SourceError(f"unknown ref {branch!r} for --deploy-branch in repository {repo}")


def from_branch(repo_id: str, repo: Path, branch: str) -> list[GitDeployment]:
    """Every first-parent commit of the branch, at its committer date (merge = deploy)."""
    ref = resolve_branch(repo, branch)
    proc = run_git(repo, ["log", "--first-parent", "--date=raw", "--format=%H %cd", ref, "--"],
                   what=f"cannot read branch {branch} of {repo}")
    out: list[GitDeployment] = []
    for line in proc.stdout.splitlines():
        sha, epoch, _tz = line.split(" ")
        out.append(GitDeployment(f"git-branch:{repo_id}:{branch}:{sha}", sha, int(epoch), "git-branch",
                                 branch, sha, "sha"))
    return out


def replace_deployments(
    con: duckdb.DuckDBPyConnection, repo_id: str, service: str, environment: str,
    deployments: Sequence[GitDeployment],
) -> set[tuple[str, str]]:
    """Make this repo+service's git deployments exactly ``deployments``; returns affected scopes.

    Deployments of the same repo for another service (a monorepo with per-service tag patterns)
    are left alone.
    """
    before = con.execute(
        "SELECT DISTINCT service, environment FROM deployments "
        "WHERE repository = ? AND service = ? AND source IN ('git-tag', 'git-branch')",
        [repo_id, service],
    ).fetchall()
    scopes = {(str(s), str(e)) for s, e in before}
    con.execute(
        """CREATE OR REPLACE TEMP TABLE _git_deployments AS
           SELECT unnest($1::VARCHAR[]) AS id, unnest($2::VARCHAR[]) AS revision,
                  to_timestamp(unnest($3::BIGINT[])) AS deployed_at, unnest($4::VARCHAR[]) AS source,
                  unnest($5::VARCHAR[]) AS source_ref, unnest($6::VARCHAR[]) AS raw_revision,
                  unnest($7::VARCHAR[]) AS revision_format""",
        [[d.id for d in deployments], [d.revision for d in deployments], [d.epoch for d in deployments],
         [d.source for d in deployments], [d.source_ref for d in deployments],
         [d.raw_revision for d in deployments], [d.revision_format for d in deployments]],
    )
    con.execute(
        """DELETE FROM deployments WHERE repository = $1 AND service = $2
             AND source IN ('git-tag', 'git-branch')
             AND id NOT IN (SELECT id FROM _git_deployments)""",
        [repo_id, service],
    )
    merge(con, "deployments",
          """SELECT id, $1 AS service, $2 AS environment, revision, $3 AS repository,
                    NULL::TIMESTAMPTZ AS started_at, deployed_at, 'success' AS status, source, source_ref,
                    FALSE AS is_rollback, NULL AS rollback_target, raw_revision, revision_format
             FROM _git_deployments""",
          ["id", "service", "environment", "revision", "repository", "started_at", "deployed_at", "status",
           "source", "source_ref", "is_rollback", "rollback_target", "raw_revision", "revision_format"],
          [service, environment, repo_id])
    con.execute("DROP TABLE _git_deployments")
    if deployments:
        scopes.add((service, environment))
    return scopes
