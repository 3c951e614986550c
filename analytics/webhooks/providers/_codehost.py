"""What the GitHub and GitLab webhook providers share: the row shape of a pushed commit and the
re-derivation that follows a batch. Underscored, so the receiver does not serve it as a provider."""

from __future__ import annotations

from typing import Any

from analytics.collectors.codehost_mapping import reverts_sha
from analytics.config import Config
from analytics.store.connection import WriteSession

Rows = dict[str, list[dict[str, Any]]]
ZERO_SHA = "0" * 40  # ``before``/``after`` of a push that creates or deletes a branch

# finalize re-derives PRs and deployment_changes: needless after e.g. an incidents-only batch
FINALIZE_AFTER = frozenset(
    {"commits", "deployments", "webhook_pull_requests", "pr_reviews", "webhook_pushes"}
)


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def commit_row(
    repo: str,
    sha: str,
    parent: str | None,
    author: dict[str, Any],
    committer: dict[str, Any],
    when: Any,
    message: str,
) -> dict[str, Any]:
    """A ``commits`` row from a push payload, which gives one time and no zone per commit."""
    return {
        "repo": repo, "sha": sha, "parents": [parent] if parent else [],
        "author_name": author.get("name"), "author_email": author.get("email"),
        "author_time": when, "author_tz": None,
        "committer_name": committer.get("name"), "committer_email": committer.get("email"),
        "committer_time": when, "committer_tz": None,
        "subject": message.splitlines()[0] if message else None, "is_merge": False,
        "reverts_sha": reverts_sha(message),
    }


def finalize(session: WriteSession, config: Config) -> None:
    from analytics.webhooks.derive import derive_all

    derive_all(session, config)
