"""Pull requests (and their reviews and commits) from CSV, JSON or YAML (``examples/import/``).

Three kinds of record, in one file or in separate files:

* a **pull request**: ``repository, number, created_at`` plus ``id, title, author, merged_at,
  closed_at, state, base_ref`` (or ``base_branch``), ``head_ref`` (or ``head_branch``),
  ``merge_commit_sha, first_commit_at, first_review_at, labels, url, provider``. JSON/YAML records
  may nest ``reviews`` and ``commits`` lists.
* a **review** (``pr_reviews``): ``pr_id`` (or ``repository`` + ``number``), ``submitted_at``,
  ``author``, ``state`` and optional ``id``.
* a **PR commit** (``pr_commits``): ``pr_id`` (or ``repository`` + ``number``), ``sha``,
  ``authored_at``.

A JSON/YAML mapping may hold the three as sections: ``{"pull_requests": [...], "pr_reviews":
[...], "pr_commits": [...]}``. ``pr_id`` names a pull request by the ``id`` it was given in this
file or in an earlier import, or as ``repository#number``.

After loading, a pull request's ``first_review_at`` is its earliest review by someone other than
its author (pending reviews and the author's own comments or approvals never count), and its
``first_commit_at`` the earliest author time of its commits (or the ``first_commit_at`` column,
whichever is earlier); its ``commit_shas`` gain the listed commits. ``repository`` must be the
repository id the commits and deployments use, so a merged PR's merge commit starts at its first
commit (docs/metrics.md, "Pull requests and lead time").
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from analytics.config import Config
from analytics.errors import SourceError
from analytics.importers._fields import (
    RowContext,
    columns_present,
    normalise_keys,
    required_text,
    text,
    timestamp,
)
from analytics.importers.base import ImportSummary, ParsedFile
from analytics.store.connection import WriteSession
from analytics.store.upsert import merge_rows

KIND = "pull_requests"
SECTIONS = ("pull_requests", "pr_reviews", "pr_commits")
_HEX = re.compile(r"^[0-9a-fA-F]{7,64}$")
_REF = re.compile(r"^(?P<repo>.+)#(?P<number>\d+)$")
_FOREIGN = {"deployed_at", "service", "resolved_at"}  # deployments and incidents
_PR_COLUMNS = (
    "repo", "number", "provider", "title", "author", "state", "created_at", "first_commit_at",
    "first_review_at", "merged_at", "closed_at", "merge_commit_sha", "base_ref", "head_ref", "labels",
    "url", "updated_at",
)
_MAX_NUMBER = 2**31 - 1


class _ItemContext(RowContext):
    """Where an item of a section came from: ``file: pr_reviews item 3: ...``."""

    def __init__(self, path: Any, line: int, section: str) -> None:
        super().__init__(path, line)
        self.section = section

    def error(self, message: str) -> SourceError:
        return SourceError(f"{self.path}: {self.section} item {self.line}: {message}; "
                           "nothing from this file was imported")


@dataclass
class _Item:
    record: dict[str, Any]
    where: RowContext
    pr: tuple[str, int] | None = None   # the enclosing PR of a nested review or commit


# Apache DevLake's domain-layer columns (pull_requests, pull_request_comments,
# pull_request_commits exported as CSV), read as this kind's own; applied only where the
# canonical column is absent.
_DEVLAKE_PR = {"base_repo_id": "repository", "pull_request_key": "number", "created_date": "created_at",
               "merged_date": "merged_at", "closed_date": "closed_at", "status": "state"}
_DEVLAKE_COMMENT = {"created_date": "submitted_at", "account_id": "author"}
_DEVLAKE_COMMIT = {"commit_sha": "sha", "commit_authored_date": "authored_at"}


def _normal(record: Any) -> dict[str, Any]:
    """Lower-case keys, and DevLake's column names mapped to this kind's."""
    out = normalise_keys(record)
    keys = set(out)
    if "commit_sha" in keys and "pull_request_id" in keys:
        aliases = _DEVLAKE_COMMIT
    elif "pull_request_id" in keys and "created_date" in keys:
        aliases = _DEVLAKE_COMMENT
    elif "base_repo_id" in keys or "pull_request_key" in keys:
        aliases = _DEVLAKE_PR
        if "author" not in keys and (out.get("author_id") or out.get("author_name")):
            out["author"] = out.get("author_id") or out.get("author_name")
    else:
        return out
    for source, target in aliases.items():
        if source in out and target not in out:
            out[target] = out[source]
    return out


def _has_pr_key(keys: set[str]) -> bool:
    return "pr_id" in keys or "pull_request_id" in keys or {"repository", "number"} <= keys


def _is_pr(keys: set[str]) -> bool:
    return ({"repository", "number"} <= keys and bool(keys & {"created_at", "merged_at"})
            and not keys & {"sha", "submitted_at", "authored_at"})


def _is_review(keys: set[str]) -> bool:
    return "submitted_at" in keys and _has_pr_key(keys)


def _is_commit(keys: set[str]) -> bool:
    return {"sha", "authored_at"} <= keys and _has_pr_key(keys) and "submitted_at" not in keys


def _classify(keys: set[str]) -> str | None:
    if keys & _FOREIGN:
        return None
    if _is_pr(keys):
        return "pull_requests"
    if _is_review(keys):
        return "pr_reviews"
    if _is_commit(keys):
        return "pr_commits"
    return None


def _sections(doc: Any) -> bool:
    return isinstance(doc, dict) and any(isinstance(doc.get(s), list) for s in SECTIONS)


def detect(parsed: ParsedFile) -> bool:
    """Sections named pull_requests/pr_reviews/pr_commits, or records that are all pull requests,
    reviews or PR commits."""
    if any(_sections(d) for d in parsed.documents):
        return True
    if not parsed.records:
        return False
    return all(_classify(set(_normal(r))) is not None for r in parsed.records) and bool(
        columns_present(parsed.records))


def _items(parsed: ParsedFile) -> dict[str, list[_Item]]:
    found: dict[str, list[_Item]] = {s: [] for s in SECTIONS}

    def add(section: str | None, record: Any, where: RowContext) -> None:
        if not isinstance(record, dict):
            raise where.error("not a mapping of fields")
        normal = _normal(record)
        kind = section or _classify(set(normal))
        if kind is None:
            raise where.error("not a pull request, review or PR commit record")
        found[kind].append(_Item(normal, where))
        if kind == "pull_requests":
            for nested, target in (("reviews", "pr_reviews"), ("commits", "pr_commits")):
                value = normal.get(nested)
                if value is None:
                    continue
                if not isinstance(value, list):
                    raise where.error(f"'{nested}' is not a list")
                for item in value:
                    if not isinstance(item, dict):
                        raise where.error(f"an item of '{nested}' is not a mapping")
                    found[target].append(_Item(_normal(item), where, pr=_pr_key(normal, where)))

    if any(_sections(d) for d in parsed.documents):
        for doc in parsed.documents:
            if _sections(doc):
                for section in SECTIONS:
                    for i, record in enumerate(doc.get(section) or [], start=1):
                        add(section, record, _ItemContext(parsed.path, i, section))
            else:
                for i, record in enumerate(doc if isinstance(doc, list) else [doc], start=1):
                    add(None, record, _ItemContext(parsed.path, i, "records"))
        return found
    for record, line in zip(parsed.records, parsed.lines, strict=True):
        add(None, record, RowContext(parsed.path, line))
    return found


def _number(record: dict[str, Any], where: RowContext) -> int:
    raw = required_text(record, "number", where)
    try:
        value = int(raw.lstrip("#"))
    except ValueError:
        raise where.error(f"'number' is not a whole number: {raw!r}") from None
    if not 0 < value <= _MAX_NUMBER:
        raise where.error(f"'number' {value} is out of range")
    return value


def _pr_key(record: dict[str, Any], where: RowContext) -> tuple[str, int]:
    return required_text(record, "repository", where), _number(record, where)


def _first(record: dict[str, Any], *keys: str) -> str | None:
    for key in keys:
        value = text(record, key)
        if value is not None:
            return value
    return None


def _labels(value: Any) -> list[str] | None:
    if value is None or value == "":
        return None
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    return [part.strip() for part in str(value).replace(";", ",").split(",") if part.strip()]


def _when(record: dict[str, Any], key: str, where: RowContext, summary: ImportSummary) -> datetime | None:
    stamp = timestamp(record, key, where)
    if stamp is None:
        return None
    if not stamp.had_zone:
        summary.naive_timestamps += 1
    return stamp.value


def _sha(value: str | None, what: str, where: RowContext) -> str | None:
    if value is None:
        return None
    if not _HEX.match(value):
        raise where.error(f"'{what}' {value!r} is not a commit sha (7 to 64 hex digits)")
    return value.lower()


def _pr_row(item: _Item, summary: ImportSummary) -> dict[str, Any]:
    record, where = item.record, item.where
    repo, number = _pr_key(record, where)
    created = _when(record, "created_at", where, summary)
    if created is None:
        raise where.error("missing value for 'created_at'")
    merged = _when(record, "merged_at", where, summary)
    closed = _when(record, "closed_at", where, summary)
    if merged is not None and merged < created:
        raise where.error("'merged_at' is earlier than 'created_at'")
    state = (text(record, "state") or ("merged" if merged else "closed" if closed else "open")).lower()
    return {
        "repo": repo,
        "number": number,
        "provider": (text(record, "provider") or "import").lower(),
        "title": text(record, "title"),
        "author": _first(record, "author", "user", "author_login"),
        "state": state,
        "created_at": created,
        "first_commit_at": _when(record, "first_commit_at", where, summary),
        "first_review_at": _when(record, "first_review_at", where, summary),
        "merged_at": merged,
        "closed_at": closed if closed is not None else merged,
        "merge_commit_sha": _sha(_first(record, "merge_commit_sha", "merge_commit"), "merge_commit_sha",
                                 where),
        "base_ref": _first(record, "base_ref", "base_branch", "base"),
        "head_ref": _first(record, "head_ref", "head_branch", "head"),
        "labels": _labels(record.get("labels")),
        "url": text(record, "url"),
        "updated_at": _when(record, "updated_at", where, summary) or merged or closed or created,
    }


def load(session: WriteSession, parsed: ParsedFile, config: Config) -> ImportSummary:
    summary = ImportSummary(kind=KIND, path=parsed.path)
    items = _items(parsed)
    prs: dict[tuple[str, int], dict[str, Any]] = {}
    ids: dict[str, tuple[str, int]] = {}
    for item in items["pull_requests"]:
        row = _pr_row(item, summary)
        key = (row["repo"], row["number"])
        if key in prs:
            raise item.where.error(f"duplicate pull request {key[0]}#{key[1]}")
        prs[key] = row
        source_id = text(item.record, "id")
        if source_id is not None:
            if source_id in ids and ids[source_id] != key:
                raise item.where.error(f"duplicate pull request id {source_id!r}")
            ids[source_id] = key
    resolve = _resolver(session, ids, items)
    reviews = _review_rows(items["pr_reviews"], resolve, summary)
    commits = _commit_rows(items["pr_commits"], resolve, summary)
    _check_known(session, prs, [k for k, _ in reviews] + [k for k, _ in commits], items)

    if prs:
        columns = list(_PR_COLUMNS)
        # a value the file leaves empty keeps the stored one; the first commit is the earliest known
        keep = {c: f'coalesce(src."{c}", tgt."{c}")' for c in columns if c not in ("repo", "number")}
        keep["first_commit_at"] = 'least(src."first_commit_at", tgt."first_commit_at")'
        session.upsert("pull_requests", list(prs.values()), columns, on_match=keep)
    merge_rows(session.con, "imported_pull_request_ids", ["source_id", "repo", "number"],
               [[sid, repo, number] for sid, (repo, number) in sorted(ids.items())])
    if reviews:
        session.upsert("pr_reviews", [row for _, row in reviews])
        summary.notes.append(f"{len(reviews)} reviews")
    if reviews or prs:
        # stored reviews decide first_review_at, also over a first_review_at column
        _first_reviews(session, sorted({k for k, _ in reviews} | set(prs)))
    if commits:
        _pr_commits(session, commits)
        summary.notes.append(f"{len(commits)} PR commits")
    summary.rows = len(prs)
    return summary


Resolver = Any  # Callable[[_Item], tuple[str, int]]


def _resolver(
    session: WriteSession, ids: dict[str, tuple[str, int]], items: dict[str, list[_Item]]
) -> Resolver:
    """How a review or PR commit names its pull request: nesting, repository + number, or pr_id
    (this file's ids, then ids stored by earlier imports, then ``repository#number``)."""
    wanted = sorted({
        pid for section in ("pr_reviews", "pr_commits") for item in items[section]
        if item.pr is None and (pid := _first(item.record, "pr_id", "pull_request_id")) is not None
        and pid not in ids
    })
    stored: dict[str, tuple[str, int]] = {}
    if wanted:
        stored = {str(sid): (str(repo), int(number)) for sid, repo, number in session.con.execute(
            "SELECT source_id, repo, number FROM imported_pull_request_ids "
            "WHERE source_id IN (SELECT unnest(?::VARCHAR[]))", [wanted]).fetchall()}

    def resolve(item: _Item) -> tuple[str, int]:
        if item.pr is not None:
            return item.pr
        record, where = item.record, item.where
        if text(record, "repository") is not None and text(record, "number") is not None:
            return _pr_key(record, where)
        pid = _first(record, "pr_id", "pull_request_id")
        if pid is None:
            raise where.error("missing value for 'pr_id'")
        if pid in ids:
            return ids[pid]
        if pid in stored:
            return stored[pid]
        m = _REF.match(pid)
        if m:
            return m.group("repo"), int(m.group("number"))
        raise where.error(f"pr_id {pid!r} names no pull request of this file or of an earlier import "
                          "(or give repository#number)")

    return resolve


def _review_rows(items: Iterable[_Item], resolve: Resolver, summary: ImportSummary
                 ) -> list[tuple[tuple[str, int], dict[str, Any]]]:
    rows: dict[tuple[str, int, str], tuple[tuple[str, int], dict[str, Any]]] = {}
    for item in items:
        key = resolve(item)
        submitted = _when(item.record, "submitted_at", item.where, summary)
        if submitted is None:
            raise item.where.error("missing value for 'submitted_at'")
        author = _first(item.record, "author", "user", "reviewer", "account_id")
        review_id = _first(item.record, "id", "review_id") or f"import:{author or ''}:{submitted.isoformat()}"
        row = {"repo": key[0], "number": key[1], "review_id": review_id, "author": author,
               "state": (text(item.record, "state") or "COMMENTED").upper(), "submitted_at": submitted}
        rows[(key[0], key[1], review_id)] = (key, row)
    return list(rows.values())


def _commit_rows(items: Iterable[_Item], resolve: Resolver, summary: ImportSummary
                 ) -> list[tuple[tuple[str, int], dict[str, Any]]]:
    rows: list[tuple[tuple[str, int], dict[str, Any]]] = []
    for item in items:
        key = resolve(item)
        sha = _sha(_first(item.record, "sha", "commit_sha"), "sha", item.where)
        authored = _when(item.record, "authored_at", item.where, summary)
        if sha is None or authored is None:
            raise item.where.error("a PR commit needs 'sha' and 'authored_at'")
        rows.append((key, {"sha": sha, "authored_at": authored}))
    return rows


def _check_known(session: WriteSession, prs: dict[tuple[str, int], dict[str, Any]],
                 keys: list[tuple[str, int]], items: dict[str, list[_Item]]) -> None:
    """Reviews and commits must name a pull request of this file or of the store."""
    missing = sorted({k for k in keys if k not in prs})
    if not missing:
        return
    found = {(str(r), int(n)) for r, n in session.con.execute(
        "SELECT p.repo, p.number FROM pull_requests p JOIN (SELECT unnest(?::VARCHAR[]) AS repo, "
        "unnest(?::INTEGER[]) AS number) k ON k.repo = p.repo AND k.number = p.number",
        [[k[0] for k in missing], [k[1] for k in missing]]).fetchall()}
    unknown = [k for k in missing if k not in found]
    if unknown:
        repo, number = unknown[0]
        where = next((i.where for s in ("pr_reviews", "pr_commits") for i in items[s]), None)
        message = f"pull request {repo}#{number} is neither in this file nor imported or collected before"
        if where is not None:
            raise where.error(message)
        raise SourceError(message)


def _first_reviews(session: WriteSession, keys: list[tuple[str, int]]) -> None:
    """Recompute first_review_at of those of these PRs that have stored reviews: the earliest by
    someone other than the PR's author, pending reviews left out (NULL when every review is the
    author's own). A PR without any stored review keeps the file's first_review_at."""
    session.con.execute(
        """UPDATE pull_requests AS p SET first_review_at = r.first_review_at
           FROM (SELECT k.repo, k.number,
                        min(v.submitted_at) FILTER (
                            WHERE (pr.author IS NULL OR v.author IS NULL
                                   OR lower(v.author) <> lower(pr.author))
                              AND coalesce(upper(v.state), '') <> 'PENDING') AS first_review_at
                 FROM (SELECT unnest($1::VARCHAR[]) AS repo, unnest($2::INTEGER[]) AS number) k
                 JOIN pull_requests pr ON pr.repo = k.repo AND pr.number = k.number
                 JOIN pr_reviews v ON v.repo = k.repo AND v.number = k.number
                 GROUP BY k.repo, k.number) AS r
           WHERE p.repo = r.repo AND p.number = r.number""",
        [[k[0] for k in keys], [k[1] for k in keys]],
    )


def _pr_commits(session: WriteSession, commits: list[tuple[tuple[str, int], dict[str, Any]]]) -> None:
    """Add the commits to their PRs' commit_shas; first_commit_at becomes the earliest author time."""
    session.con.execute(
        """UPDATE pull_requests AS p
           SET commit_shas = list_sort(list_distinct(list_concat(coalesce(p.commit_shas, []), c.shas))),
               first_commit_at = least(coalesce(p.first_commit_at, c.first_at), c.first_at)
           FROM (SELECT repo, number, list(DISTINCT sha) AS shas, min(authored_at) AS first_at
                 FROM (SELECT unnest($1::VARCHAR[]) AS repo, unnest($2::INTEGER[]) AS number,
                              unnest($3::VARCHAR[]) AS sha, unnest($4::TIMESTAMPTZ[]) AS authored_at)
                 GROUP BY repo, number) AS c
           WHERE p.repo = c.repo AND p.number = c.number""",
        [[k[0] for k, _ in commits], [k[1] for k, _ in commits],
         [r["sha"] for _, r in commits], [r["authored_at"] for _, r in commits]],
    )
