"""``collect gitlab GROUP/PROJECT``: merge requests, deployments and incident issues via python-gitlab,
and the runs of the CI jobs named in ``connections.gitlab.deployment_jobs`` as deployments.

Incremental by ``updated_after`` watermarks per kind (source ``gitlab:GROUP/PROJECT``). Pagination
follows the ``Link`` headers (python-gitlab's list iterator); 429/5xx are retried by the session's
urllib3 adapter, which waits out ``Retry-After``/``RateLimit-Reset`` with a countdown on stderr.
The first review of a merge request is the first note (comment or "approved" system note) by
someone other than its author, since GitLab's approvals API gives no time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
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
from analytics.collectors.codehost_ratelimit import TIMEOUT_ENV, LimitError, RunLimits
from analytics.collectors.codehost_store import Fetched, RunStart, Stored, run_collection
from analytics.config import Config
from analytics.errors import SourceError
from analytics.timestamps import parse_time

TOKEN_ENV = "GITLAB_TOKEN"
_OUTCOMES = {"success": "success", "failed": "failed"}
_JOB_LOOKBACK = timedelta(days=7)


@dataclass
class GitLabSummary:
    project: str
    repo_id: str
    merge_requests: int = 0
    deployments: int = 0
    incidents: int = 0
    changes: int = 0

    def line(self) -> str:
        return (
            f"gitlab {self.project} (repo id {self.repo_id}): {self.merge_requests} merge requests, "
            f"{self.deployments} deployments, {self.incidents} incidents"
        )


def validate_path(project: str) -> str:
    return repository_path(project, exactly=None, shape="GROUP/PROJECT", example="platform/payments-api")


def describe_error(exc: Exception, project: str, base_url: str) -> str:
    """One line per failure kind, naming the repository and the server, with every credential (the
    URL's userinfo, a token the server echoed back) masked by :mod:`analytics.redaction`."""
    from analytics.redaction import one_line, redact

    return one_line(_shorten(_describe_error(exc, project, redact(base_url))))


def _shorten(text: str, limit: int = 400) -> str:
    """A server's words (an HTML error page, a long body) cut to one readable line's worth."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _describe_error(exc: Exception, project: str, base_url: str) -> str:
    from gitlab.exceptions import GitlabAuthenticationError, GitlabError, GitlabParsingError

    where = f"gitlab {project} at {base_url}"
    if isinstance(exc, LimitError):
        return f"{where}: {exc}"
    if isinstance(exc, GitlabParsingError | ValueError | TypeError | KeyError | AttributeError):
        what = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return f"{where}: the API answered something that is not a GitLab API response ({what})"
    code = getattr(exc, "response_code", None)
    if isinstance(exc, GitlabAuthenticationError) or code == 401:
        return (
            f"{where}: 401 unauthorized: check the token in ${TOKEN_ENV}"
            " (or connections.gitlab.token_env/token_file)"
        )
    if code == 404:
        return f"{where}: 404 not found: the project does not exist or the token cannot see it"
    if code == 403:
        return f"{where}: 403 forbidden: {getattr(exc, 'error_message', '') or 'the token lacks permission'}"
    if code == 429:
        return f"{where}: 429 rate limit still exceeded after waiting; run again later"
    if isinstance(exc, GitlabError):
        return f"{where}: HTTP {code}: {getattr(exc, 'error_message', exc)}"
    text = str(exc)
    if "timed out" in text.lower():
        return f"{where}: cannot reach the API: no answer in time ({TIMEOUT_ENV}): {text}"
    return f"{where}: cannot reach the API: {text or type(exc).__name__}"


def _register_secrets(url: str, token: str | None) -> None:
    """The token (from a file too) and any password in the URL are masked in every message."""
    from analytics.redaction import register_secret, register_url_secrets

    register_secret(token)
    register_url_secrets(url)


def _client(base_url: str, token: str | None, limits: RunLimits) -> Any:
    """python-gitlab on a session whose adapter retries 429/5xx with our bounded countdown and
    reads every response within the run's limits (:class:`GuardedAdapter`)."""
    import gitlab
    import requests

    from analytics.collectors.codehost_ratelimit import GuardedAdapter, gitlab_retry

    class Client(gitlab.Gitlab):
        """python-gitlab retries a 429 itself after the adapter gave up (ten more times, each
        sleeping the ``Retry-After`` it was given, silently): the adapter's bounded waits are
        the only ones."""

        def http_request(self, *args: Any, **kwargs: Any) -> Any:
            kwargs.update(obey_rate_limit=False, retry_transient_errors=False)
            return super().http_request(*args, **kwargs)

    session = requests.Session()
    adapter = GuardedAdapter(limits, max_retries=gitlab_retry(limits=limits))
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return Client(
        base_url, private_token=token, per_page=100, timeout=limits.timeout, session=session,
        keep_base_url=True,
    )


def _since(mark: datetime | None) -> dict[str, str]:
    return {"updated_after": mark.isoformat().replace("+00:00", "Z")} if mark else {}


def _mr_rows(
    project: Any, rid: str, mark: datetime | None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], datetime | None]:
    rows: list[dict[str, Any]] = []
    reviews: list[dict[str, Any]] = []
    newest: datetime | None = None
    for mr in project.mergerequests.list(
        state="all", order_by="updated_at", sort="desc", iterator=True, **_since(mark)
    ):
        updated = parse_time(mr.updated_at)
        newest = later(newest, updated)
        author = (mr.author or {}).get("username")
        commits = list(mr.commits())
        times = [
            t
            for c in commits
            if (t := parse_time(c.authored_date if hasattr(c, "authored_date") else c.created_at))
        ]
        notes = [
            n
            for n in mr.notes.list(sort="asc", order_by="created_at", iterator=True)
            if (n.author or {}).get("username") != author
            and (not getattr(n, "system", False) or str(n.body).startswith("approved"))
        ]
        reviews.extend(
            {
                "repo": rid,
                "number": int(mr.iid),
                "review_id": f"note:{n.id}",
                "author": (n.author or {}).get("username"),
                "state": "approved" if getattr(n, "system", False) else "commented",
                "submitted_at": parse_time(n.created_at),
            }
            for n in notes
        )
        merged_at = parse_time(getattr(mr, "merged_at", None))
        rows.append(
            {
                "repo": rid,
                "number": int(mr.iid),
                "provider": "gitlab",
                "title": mr.title,
                "author": author,
                "state": mr.state,
                "created_at": parse_time(mr.created_at),
                "first_commit_at": min(times, default=None),
                "first_review_at": min((t for n in notes if (t := parse_time(n.created_at))), default=None),
                "merged_at": merged_at,
                "closed_at": parse_time(getattr(mr, "closed_at", None)),
                # a squash merge without a merge commit lands as squash_commit_sha
                "merge_commit_sha": getattr(mr, "merge_commit_sha", None)
                or getattr(mr, "squash_commit_sha", None),
                "base_ref": mr.target_branch,
                "head_ref": mr.source_branch,
                "labels": list(mr.labels or []),
                "commit_shas": [c.id for c in commits],
                "url": mr.web_url,
                "updated_at": updated,
            }
        )
    return rows, reviews, newest


def _deployment_rows(
    project: Any, rid: str, full: str, config: Config, mark: datetime | None
) -> tuple[list[dict[str, Any]], datetime | None]:
    rows: list[dict[str, Any]] = []
    newest: datetime | None = None
    service = service_for(rid, full, config)
    for dep in project.deployments.list(order_by="updated_at", sort="desc", iterator=True, **_since(mark)):
        updated = parse_time(dep.updated_at)
        newest = later(newest, updated)
        status = _OUTCOMES.get(str(dep.status))
        if status is None:
            continue  # created / running / canceled / blocked: not an outcome
        deployable = getattr(dep, "deployable", None) or {}
        finished = parse_time(deployable.get("finished_at")) or updated
        environment = (getattr(dep, "environment", None) or {}).get("name")
        rows.append(
            {
                "id": f"gitlab:{full}:{dep.id}",
                "service": service,
                "environment": environment or config.webhooks.default_environment,
                "revision": dep.sha,
                "repository": rid,
                "started_at": parse_time(dep.created_at),
                "deployed_at": finished,
                "status": status,
                "source": "gitlab",
                "source_ref": str(dep.iid),
                "is_rollback": False,
                "rollback_target": None,
                "raw_revision": dep.sha,
                "revision_format": "sha",
            }
        )
    return rows, newest


def _job_rows(
    project: Any, rid: str, full: str, config: Config, mark: datetime | None
) -> tuple[list[dict[str, Any]], datetime | None]:
    """Finished runs of the CI jobs named in ``connections.gitlab.deployment_jobs``, in pipelines of
    the default branch, as deployments of the pipeline's sha (only when the key names some: a
    pipeline without a GitLab environment leaves no Deployments API record, and nothing else says
    which job deploys). A retried job is a new job, so a failed try and its successful retry are a
    failed attempt and a deployment. Jobs are listed newest first; the run stops a week before the
    watermark, as a job can finish long after it was created."""
    wanted = set(config.connections.gitlab.deployment_jobs)
    if not wanted:
        return [], None
    rows: list[dict[str, Any]] = []
    newest: datetime | None = None
    service = service_for(rid, full, config)
    environment = config.default_deployment_environment()
    branch = getattr(project, "default_branch", None)
    for job in project.jobs.list(scope=["success", "failed"], iterator=True):
        created = parse_time(job.created_at)
        if mark is not None and created is not None and created < mark - _JOB_LOOKBACK:
            break
        newest = later(newest, created)
        status = _OUTCOMES.get(str(job.status))
        pipeline = getattr(job, "pipeline", None) or {}
        sha = pipeline.get("sha") or (getattr(job, "commit", None) or {}).get("id")
        if (status is None or job.name not in wanted or getattr(job, "tag", False) or not sha
                or job.ref != branch):
            continue
        rows.append(
            {
                "id": f"gitlab-job:{full}:{job.id}",
                "service": service,
                "environment": environment,
                "revision": sha,
                "repository": rid,
                "started_at": parse_time(getattr(job, "started_at", None)) or created,
                "deployed_at": parse_time(getattr(job, "finished_at", None)) or created,
                "status": status,
                "source": "gitlab-ci",
                "source_ref": f"{job.name}#{pipeline.get('id')}",
                "is_rollback": False,
                "rollback_target": None,
                "raw_revision": sha,
                "revision_format": "sha",
            }
        )
    return rows, newest


def _incident_rows(
    project: Any, rid: str, full: str, config: Config, mark: datetime | None
) -> tuple[list[dict[str, Any]], datetime | None]:
    wanted = incident_labels(config, "gitlab")
    rows: list[dict[str, Any]] = []
    newest: datetime | None = None
    for issue in project.issues.list(
        state="all", order_by="updated_at", sort="desc", iterator=True, **_since(mark)
    ):
        newest = later(newest, parse_time(issue.updated_at))
        labels = list(issue.labels or [])
        kind = str(getattr(issue, "issue_type", None) or getattr(issue, "type", None) or "").lower()
        if kind != "incident" and not is_incident(labels, wanted):
            continue
        rows.append(
            {
                "id": f"gitlab:{full}#{issue.iid}",
                "service": service_for(rid, full, config),
                "environment": config.webhooks.default_environment,
                "created_at": parse_time(issue.created_at),
                "resolved_at": parse_time(issue.closed_at) if issue.state == "closed" else None,
                "title": issue.title,
                "root_cause": root_cause(issue.description),
                "source": "gitlab",
                "source_ref": str(issue.iid),
                "url": issue.web_url,
                "labels": labels,
            }
        )
    return rows, newest


def collect_gitlab(
    db_path: Path,
    config: Config,
    project_path: str,
    *,
    base_url: str | None = None,
    explicit_repo_id: str | None = None,
    full: bool = False,
    since: datetime | None = None,
) -> GitLabSummary:
    from gitlab.exceptions import GitlabError
    from requests import RequestException

    path = validate_path(project_path)
    conn = config.connections.gitlab
    url = api_base_url(base_url or conn.base_url,
                       "--base-url" if base_url else "connections.gitlab.base_url")
    token = conn.read_token(TOKEN_ENV)
    _register_secrets(url, token)
    limits = RunLimits.from_env()

    def fetch(start: RunStart) -> Fetched:
        rid, marks = start.repo_id, start.marks
        try:
            project = _client(url, token, limits).projects.get(path)
            mrs, reviews, mr_mark = _mr_rows(project, rid, marks["mrs_updated_at"])
            deployments, dep_mark = _deployment_rows(
                project, rid, path, config, marks["deployments_updated_at"]
            )
            jobs, jobs_mark = _job_rows(project, rid, path, config, marks["jobs_created_at"])
            incidents, issue_mark = _incident_rows(project, rid, path, config, marks["issues_updated_at"])
            tables = {"pull_requests": mrs, "pr_reviews": reviews, "deployments": deployments + jobs,
                      "incidents": incidents}
            check_rows(tables)
        except (GitlabError, RequestException, LimitError, ShapeError, ValueError, TypeError, KeyError,
                AttributeError) as exc:  # one line, no data written
            raise SourceError(describe_error(exc, path, url)) from None
        return Fetched(
            tables,
            {"mrs_updated_at": mr_mark, "deployments_updated_at": dep_mark, "issues_updated_at": issue_mark,
             "jobs_created_at": jobs_mark},
        )

    def summary(stored: Stored) -> GitLabSummary:
        counts = stored.counts
        return GitLabSummary(
            project=path, repo_id=stored.repo_id, merge_requests=counts["pull_requests"],
            deployments=counts["deployments"], incidents=counts["incidents"], changes=stored.changes,
        )

    return summary(run_collection(
        db_path, config, host="gitlab", name=path, explicit_repo_id=explicit_repo_id,
        mark_keys=("mrs_updated_at", "deployments_updated_at", "issues_updated_at", "jobs_created_at"),
        parse=parse_time,
        full=full, since=since, fetch=fetch, describe=lambda stored: summary(stored).line(),
    ))
