"""``collect github OWNER/REPO``: pull requests, deployments, incident issues and releases via PyGithub,
and the runs of the Actions workflows named in ``connections.github.deployment_workflows`` as
deployments.

Incremental: each kind keeps its own watermark in ``collector_state`` (source ``github:OWNER/REPO``):
pull requests and issues by ``updated_at`` (pulls are listed newest-updated first and paging
stops at the watermark; issues use the API's ``since``), deployments by ``created_at`` minus a
week, because a deployment's final status can arrive after it was created (workflow runs the same
way, by their ``created_at``). Everything of a run
is fetched and written inside one write session, so an API error leaves the store untouched.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from analytics.collectors.codehost_input import api_base_url, repository_path
from analytics.collectors.codehost_mapping import (
    ShapeError,
    check_rows,
    incident_labels,
    is_incident,
    later,
    root_cause,
    service_for,
)
from analytics.collectors.codehost_ratelimit import MAX_WAIT_ENV, TIMEOUT_ENV, LimitError, RunLimits
from analytics.collectors.codehost_store import Fetched, RunStart, Stored, run_collection
from analytics.config import Config
from analytics.errors import SourceError

TOKEN_ENV = "GITHUB_TOKEN"
DEPLOYMENT_LOOKBACK = timedelta(days=7)
_OUTCOMES = {"success": "success", "failure": "failed", "error": "failed"}


@dataclass
class GitHubSummary:
    repository: str
    repo_id: str
    pull_requests: int = 0
    deployments: int = 0
    incidents: int = 0
    releases: int = 0
    changes: int = 0

    def line(self) -> str:
        return (
            f"github {self.repository} (repo id {self.repo_id}): {self.pull_requests} pull requests, "
            f"{self.deployments} deployments, {self.incidents} incidents, {self.releases} releases"
        )


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _from_state(value: str | None) -> datetime | None:
    return None if not value else _utc(datetime.fromisoformat(value))


def validate_name(full_name: str) -> str:
    return repository_path(full_name, exactly=2, shape="OWNER/REPO", example="octo-org/payments-api")


def describe_error(exc: Exception, full_name: str, base_url: str) -> str:
    """One line per failure kind, naming the repository and the server, with every credential (the
    URL's userinfo, a token the server echoed back) masked by :mod:`analytics.redaction`."""
    from analytics.redaction import one_line, redact

    return one_line(_shorten(_describe_error(exc, full_name, redact(base_url))))


def _shorten(text: str, limit: int = 400) -> str:
    """A server's words (an HTML error page, a long body) cut to one readable line's worth."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _describe_error(exc: Exception, full_name: str, base_url: str) -> str:
    """One line per failure kind, naming the repository and the server."""
    from github import BadAttributeException, BadCredentialsException, GithubException, UnknownObjectException
    from github.GithubException import RateLimitExceededException

    where = f"github {full_name} at {base_url}"
    if isinstance(exc, LimitError):
        return f"{where}: {exc}"
    if isinstance(exc, BadAttributeException | ValueError | TypeError | KeyError | AttributeError):
        return f"{where}: the API answered something that is not a GitHub API response ({_what(exc)})"
    if isinstance(exc, BadCredentialsException) or getattr(exc, "status", None) == 401:
        return (
            f"{where}: 401 bad credentials: check the token in ${TOKEN_ENV}"
            " (or connections.github.token_env/token_file)"
        )
    if isinstance(exc, UnknownObjectException) or getattr(exc, "status", None) == 404:
        return f"{where}: 404 not found: the repository does not exist or the token cannot see it"
    if isinstance(exc, RateLimitExceededException) and getattr(exc, "wait", None) is not None:
        limit = RunLimits.from_env().max_wait
        return (f"{where}: rate limited (HTTP {exc.status}): the server asks to wait"
                f" {math.ceil(float(getattr(exc, 'wait', 0)))}s, more than the {limit:g}s limit"
                f" ({MAX_WAIT_ENV}); run again later")
    if isinstance(exc, RateLimitExceededException):
        return f"{where}: rate limit still exceeded after waiting; run again later"
    if isinstance(exc, GithubException):
        message = exc.data.get("message") if isinstance(exc.data, dict) else exc.data
        if exc.status == 403:
            return f"{where}: 403 forbidden: {message or 'the token lacks permission'}"
        return f"{where}: HTTP {exc.status}: {message}"
    text = str(exc)
    if "timed out" in text.lower():
        return f"{where}: cannot reach the API: no answer in time ({TIMEOUT_ENV}): {text}"
    return f"{where}: cannot reach the API: {text or type(exc).__name__}"


def _what(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _register_secrets(url: str, token: str | None) -> None:
    """The token (from a file too) and any password in the URL are masked in every message."""
    from analytics.redaction import register_secret, register_url_secrets

    register_secret(token)
    register_url_secrets(url)


def _client(base_url: str, token: str | None, limits: RunLimits) -> Any:
    """PyGithub with the run's limits: its retry waits through our countdown (bounded by
    ``limits``), and its connections read every response through a :class:`GuardedAdapter`."""
    from github import Auth, Github
    from github.Requester import HTTPRequestsConnectionClass, HTTPSRequestsConnectionClass

    from analytics.collectors.codehost_ratelimit import GuardedAdapter, github_retry

    # our countdown reports the waits; PyGithub's own INFO lines would repeat them on stderr
    logging.getLogger("github.GithubRetry").setLevel(logging.WARNING)

    gh = Github(
        base_url=base_url.rstrip("/"),
        auth=Auth.Token(token) if token else None,
        per_page=100,
        timeout=math.ceil(limits.timeout),  # PyGithub wants an int; the adapter uses limits.timeout
        retry=github_retry(limits=limits),
        seconds_between_requests=None,
        seconds_between_writes=None,
    )
    https = base_url.lower().startswith("https:")
    plain: Any = HTTPSRequestsConnectionClass if https else HTTPRequestsConnectionClass

    class Guarded(plain):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.adapter = GuardedAdapter(limits, max_retries=self.retry,
                                          pool_connections=self.pool_size, pool_maxsize=self.pool_size)
            self.session.mount(f"{self.protocol}://", self.adapter)

    # PyGithub picks its connection class per Requester at construction; its public hook
    # (Requester.injectConnectionClasses) is process-wide and turns keep-alive off, so the
    # instance's own choice is replaced instead
    setattr(gh.requester, "_Requester__connectionClass", Guarded)  # noqa: B010
    return gh


def _pull_rows(
    repo: Any, rid: str, since: datetime | None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], datetime | None]:
    prs: list[dict[str, Any]] = []
    reviews: list[dict[str, Any]] = []
    newest: datetime | None = None
    for pr in repo.get_pulls(state="all", sort="updated", direction="desc"):
        updated = _utc(pr.updated_at)
        if since is not None and updated is not None and updated < since:
            break  # newest-updated first: everything after this was seen by an earlier run
        newest = later(newest, updated)
        author = pr.user.login if pr.user else None
        commits = list(pr.get_commits())
        commit_times = [
            _utc(c.commit.author.date) for c in commits if c.commit.author and c.commit.author.date
        ]
        pr_reviews = [r for r in pr.get_reviews() if r.submitted_at is not None and r.state != "PENDING"]
        by_others = [r for r in pr_reviews if not (r.user and r.user.login == author)]
        reviews.extend(
            {
                "repo": rid,
                "number": pr.number,
                "review_id": str(r.id),
                "author": r.user.login if r.user else None,
                "state": r.state,
                "submitted_at": _utc(r.submitted_at),
            }
            for r in pr_reviews
        )
        merged_at = _utc(pr.merged_at)
        prs.append(
            {
                "repo": rid,
                "number": pr.number,
                "provider": "github",
                "title": pr.title,
                "author": author,
                "state": "merged" if merged_at else pr.state,
                "created_at": _utc(pr.created_at),
                "first_commit_at": min((t for t in commit_times if t), default=None),
                "first_review_at": min((t for r in by_others if (t := _utc(r.submitted_at))), default=None),
                "merged_at": merged_at,
                "closed_at": _utc(pr.closed_at),
                "merge_commit_sha": pr.merge_commit_sha,
                "base_ref": pr.base.ref if pr.base else None,
                "head_ref": pr.head.ref if pr.head else None,
                "labels": [label.name for label in pr.labels],
                "commit_shas": [c.sha for c in commits],
                "url": pr.html_url,
                "updated_at": updated,
            }
        )
    return prs, reviews, newest


def _deployment_rows(
    repo: Any, rid: str, full_name: str, config: Config, since: datetime | None
) -> tuple[list[dict[str, Any]], datetime | None]:
    rows: list[dict[str, Any]] = []
    newest: datetime | None = None
    service = service_for(rid, full_name, config)
    for deployment in repo.get_deployments():  # newest first
        created = _utc(deployment.created_at)
        if since is not None and created is not None and created < since - DEPLOYMENT_LOOKBACK:
            break
        newest = later(newest, created)
        # the latest outcome; GitHub later marks superseded deployments "inactive", which is no outcome
        outcome = next((s for s in deployment.get_statuses() if s.state in _OUTCOMES), None)
        if outcome is None:
            continue
        rows.append(
            {
                "id": f"github:{full_name}:{deployment.id}",
                "service": service,
                "environment": deployment.environment or config.webhooks.default_environment,
                "revision": deployment.sha,
                "repository": rid,
                "started_at": created,
                "deployed_at": _utc(outcome.created_at),
                "status": _OUTCOMES[outcome.state],
                "source": "github",
                "source_ref": str(deployment.id),
                "is_rollback": False,
                "rollback_target": None,
                "raw_revision": deployment.sha,
                "revision_format": "sha",
            }
        )
    return rows, newest


_RUN_OUTCOMES = {"success": "success", "failure": "failed", "timed_out": "failed"}


def _workflow_matches(run: Any, wanted: list[str]) -> bool:
    """A run of one of the configured deployment workflows, named by its name, its file name
    (``deploy.yml``) or its path (``.github/workflows/deploy.yml``)."""
    path = str(run.path or "").split("@", 1)[0]
    return bool({str(run.name or ""), path, path.rsplit("/", 1)[-1]} & set(wanted))


def _workflow_run_rows(
    repo: Any, rid: str, full_name: str, config: Config, since: datetime | None
) -> tuple[list[dict[str, Any]], datetime | None]:
    """Completed runs of the configured deployment workflows on the default branch, as
    deployments of their head sha (only when ``connections.github.deployment_workflows`` names
    some: most workflows build and test, and nothing says which one deploys). A re-run attempt
    keeps its run id, so it updates that deployment; cancelled and skipped runs deployed nothing."""
    wanted = config.connections.github.deployment_workflows
    if not wanted:
        return [], None
    rows: list[dict[str, Any]] = []
    newest: datetime | None = None
    service = service_for(rid, full_name, config)
    environment = config.default_deployment_environment()
    for run in repo.get_workflow_runs(branch=repo.default_branch, status="completed"):  # newest first
        created = _utc(run.created_at)
        if since is not None and created is not None and created < since - DEPLOYMENT_LOOKBACK:
            break
        newest = later(newest, created)
        status = _RUN_OUTCOMES.get(str(run.conclusion))
        if status is None or not _workflow_matches(run, wanted) or not run.head_sha:
            continue
        rows.append(
            {
                "id": f"github-run:{full_name}:{run.id}",
                "service": service,
                "environment": environment,
                "revision": run.head_sha,
                "repository": rid,
                "started_at": _utc(run.run_started_at) or created,
                "deployed_at": _utc(run.updated_at),
                "status": status,
                "source": "github-actions",
                "source_ref": f"{run.name}#{run.run_number}",
                "is_rollback": False,
                "rollback_target": None,
                "raw_revision": run.head_sha,
                "revision_format": "sha",
            }
        )
    return rows, newest


def _incident_rows(
    repo: Any, rid: str, full_name: str, config: Config, since: datetime | None
) -> tuple[list[dict[str, Any]], datetime | None]:
    wanted = incident_labels(config, "github")
    rows: list[dict[str, Any]] = []
    newest: datetime | None = None
    issues = repo.get_issues(state="all", since=since) if since else repo.get_issues(state="all")
    for issue in issues:
        updated = _utc(issue.updated_at)
        newest = later(newest, updated)
        labels = [label.name for label in issue.labels]
        # the issues list includes pull requests; their html_url says /pull/ (reading
        # .pull_request instead would cost one extra request per plain issue)
        if "/pull/" in (issue.html_url or "") or not is_incident(labels, wanted):
            continue
        rows.append(
            {
                "id": f"github:{full_name}#{issue.number}",
                "service": service_for(rid, full_name, config),
                "environment": config.webhooks.default_environment,
                "created_at": _utc(issue.created_at),
                "resolved_at": _utc(issue.closed_at) if issue.state == "closed" else None,
                "title": issue.title,
                "root_cause": root_cause(issue.body),
                "source": "github",
                "source_ref": str(issue.number),
                "url": issue.html_url,
                "labels": labels,
            }
        )
    return rows, newest


def _release_rows(repo: Any, rid: str) -> list[dict[str, Any]]:
    return [
        {
            "repo": rid,
            "provider": "github",
            "tag_name": r.tag_name,
            "name": r.name,
            "target": r.target_commitish,
            "created_at": _utc(r.created_at),
            "published_at": _utc(r.published_at),
            "is_prerelease": bool(r.prerelease),
            "is_draft": bool(r.draft),
            "url": r.html_url,
        }
        for r in repo.get_releases()
    ]


def collect_github(
    db_path: Path,
    config: Config,
    full_name: str,
    *,
    base_url: str | None = None,
    explicit_repo_id: str | None = None,
    full: bool = False,
    since: datetime | None = None,
) -> GitHubSummary:
    from github import BadAttributeException, GithubException
    from requests import RequestException
    from urllib3.exceptions import HTTPError

    full_name = validate_name(full_name)
    conn = config.connections.github
    url = api_base_url(base_url or conn.base_url,
                       "--base-url" if base_url else "connections.github.base_url")
    token = conn.read_token(TOKEN_ENV)
    _register_secrets(url, token)
    limits = RunLimits.from_env()

    def fetch(start: RunStart) -> Fetched:
        rid, marks = start.repo_id, start.marks
        try:
            gh = _client(url, token, limits)
            repo = gh.get_repo(full_name)
            prs, reviews, pulls_mark = _pull_rows(repo, rid, marks["pulls_updated_at"])
            deployments, deploy_mark = _deployment_rows(
                repo, rid, full_name, config, marks["deployments_created_at"]
            )
            runs, runs_mark = _workflow_run_rows(repo, rid, full_name, config, marks["runs_created_at"])
            incidents, issues_mark = _incident_rows(repo, rid, full_name, config, marks["issues_updated_at"])
            releases = _release_rows(repo, rid)
            tables = {"pull_requests": prs, "pr_reviews": reviews, "deployments": deployments + runs,
                      "incidents": incidents, "releases": releases}
            check_rows(tables)
        except (GithubException, RequestException, HTTPError, LimitError, ShapeError, BadAttributeException,
                ValueError, TypeError, KeyError, AttributeError) as exc:  # one line, no data written
            raise SourceError(describe_error(exc, full_name, url)) from None
        return Fetched(
            tables,
            {"pulls_updated_at": pulls_mark, "deployments_created_at": deploy_mark,
             "issues_updated_at": issues_mark, "runs_created_at": runs_mark},
        )

    def summary(stored: Stored) -> GitHubSummary:
        counts = stored.counts
        return GitHubSummary(
            repository=full_name, repo_id=stored.repo_id, pull_requests=counts["pull_requests"],
            deployments=counts["deployments"], incidents=counts["incidents"], releases=counts["releases"],
            changes=stored.changes,
        )

    return summary(run_collection(
        db_path, config, host="github", name=full_name, explicit_repo_id=explicit_repo_id,
        mark_keys=("pulls_updated_at", "deployments_created_at", "issues_updated_at", "runs_created_at"),
        parse=_from_state,
        full=full, since=since, fetch=fetch, describe=lambda stored: summary(stored).line(),
    ))
