"""One assessment run, shared by ``gitops-dora assess`` and the demo step.

Repositories are scanned before the database is opened. A run stores its result only when asked
(``--store``: the demo, the scheduled job): an ad-hoc ``assess PATH`` of a clone, a fork or an
experiment reads collected evidence from the store's latest snapshot and writes nothing, so it can
never replace the organisation's assessment on the dashboard. A storing run writes everything in
one transaction; :func:`forget` deletes a target's stored assessments.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from analytics.errors import UserError
from analytics.progress import progress, say
from analytics.store.connection import WriteSession, open_writer
from analytics.store.location import StoreRef
from assessment import store
from assessment.answers import Answer, load_answers
from assessment.cluster import cluster_findings, live_objects, load_dump
from assessment.collected import collected_findings, repository_keys
from assessment.detectors import Finding
from assessment.model import load_model
from assessment.scan import Scanner
from assessment.scoring import score
from assessment.tree import Commit, Source, open_source

HISTORY_MODES = ("monthly",)


@dataclass
class AssessRequest:
    specs: Sequence[str]
    db_path: StoreRef
    answers: Path | None = None
    at: str | None = None
    history: str | None = None
    cluster_dump: Path | None = None
    kube_context: str | None = None
    store: bool = False  # write the result (and the --history timeline) to the store
    include_examples: bool = False  # count examples/, docs/, tests/... as deployed


@dataclass
class Point:
    """One state to assess: a revision per source (a working tree when ``revisions`` holds None)."""

    kind: str
    period: str | None
    as_of: datetime  # the state's own time: the newest commit assessed, or the run time for HEAD/worktree
    evidence_until: datetime  # collected data up to this moment counts (month end for monthly points)
    revisions: dict[str, str | None]
    findings: list[Finding] = field(default_factory=list)


@dataclass
class AssessOutcome:
    target: str
    result: dict[str, Any]  # the point assessment (at --at, or the working tree / HEAD)
    history: list[dict[str, Any]]  # monthly points, oldest first (empty without --history)
    skipped: list[str]
    stored: bool = False


def month_start(moment: datetime) -> datetime:
    return datetime(moment.year, moment.month, 1, tzinfo=UTC)


def next_month(moment: datetime) -> datetime:
    return datetime(moment.year + moment.month // 12, moment.month % 12 + 1, 1, tzinfo=UTC)


def monthly_points(histories: dict[str, list[Commit]]) -> list[Point]:
    """For each UTC month from the first commit to the last, each source at its last commit by then."""
    all_commits = [c for commits in histories.values() for c in commits]
    if not all_commits:
        return []
    month = month_start(min(c.committed_at for c in all_commits))
    end = month_start(max(c.committed_at for c in all_commits))
    points = []
    while month <= end:
        boundary = next_month(month)
        revisions: dict[str, str | None] = {}
        newest: list[datetime] = []
        for label, commits in histories.items():
            before = [c for c in commits if c.committed_at < boundary]
            if before:
                revisions[label] = before[-1].sha  # first-parent order: the tip at month end
                newest.append(before[-1].committed_at)
        if revisions:
            points.append(
                Point(
                    "monthly", f"{month:%Y-%m}", max(newest), boundary - timedelta(microseconds=1), revisions
                )
            )
        month = boundary
    return points


def _open_sources(specs: Sequence[str]) -> list[Source]:
    if not specs:
        raise UserError("assess needs at least one PATH_OR_URL")
    sources: list[Source] = []
    try:
        for spec in specs:
            src = open_source(spec)
            taken = {s.label for s in sources}
            base, n = src.label, 2
            while src.label in taken:
                src.label, n = f"{base}-{n}", n + 1
            sources.append(src)
    except BaseException:
        for src in sources:
            src.close()
        raise
    return sources


def run_assessment(req: AssessRequest) -> AssessOutcome:
    if req.history is not None and req.history not in HISTORY_MODES:
        raise UserError(f"--history {req.history!r} is not supported (use: {', '.join(HISTORY_MODES)})")
    model = load_model()
    answers: dict[str, Answer] = load_answers(req.answers) if req.answers else {}
    live: list[Finding] = []
    if req.cluster_dump is not None:
        live += cluster_findings(load_dump(req.cluster_dump), str(req.cluster_dump))
    if req.kube_context is not None:
        live += cluster_findings(
            live_objects(req.kube_context or None), f"context {req.kube_context or 'current'}"
        )
    sources = _open_sources(req.specs)
    try:
        return _run(req, model, answers, live, sources)
    finally:
        for src in sources:
            src.close()


def _scan_point(point: Point, sources: list[Source], scanner: Scanner, skipped: list[str]) -> None:
    multi = len(sources) > 1
    for src in sources:
        if src.label not in point.revisions:
            continue
        rev = point.revisions[src.label]
        tree = src.tree(rev)
        result = scanner.scan(src, tree, prefix=src.label if multi else None)
        point.findings.extend(result.findings)
        skipped.extend(s for s in result.skipped if s not in skipped)


def _run(
    req: AssessRequest, model: Any, answers: dict[str, Answer], live: list[Finding], sources: list[Source]
) -> AssessOutcome:
    scanner = Scanner(not_deployed=() if req.include_examples else tuple(model.not_deployed))
    skipped: list[str] = []
    target = "+".join(s.label for s in sources)
    now = datetime.now(UTC)
    # The point assessment: --at REV, or the working tree (HEAD for bare repositories and URLs).
    revisions: dict[str, str | None] = {}
    times: list[datetime] = []
    for src in sources:
        if req.at is None and src.worktree is not None:
            revisions[src.label] = None
        else:
            sha = src.resolve(req.at or "HEAD")
            revisions[src.label] = sha
            times.append(src.commit_time(str(sha)))
    # HEAD or a working tree is the state of now; an explicit --at is the state of its commit.
    as_of = max(times) if req.at is not None and times else now
    current = Point("point", None, as_of, as_of, revisions)
    _scan_point(current, sources, scanner, skipped)
    current.findings.extend(live)  # the cluster is observed now, so it only counts for this point
    history: list[Point] = []
    if req.history == "monthly":
        histories = {s.label: s.commits(req.at or "HEAD") for s in sources if s.git_dir is not None}
        if not histories:
            raise UserError(
                f"--history needs a git repository; {', '.join(s.spec for s in sources)} is not one"
            )
        history = monthly_points(histories)
        with progress("assessing monthly history", total=len(history)) as bar:
            for point in history:
                _scan_point(point, sources, scanner, skipped)
                bar.advance()
    stored_revisions = [_revision_label(src, current.revisions.get(src.label)) for src in sources]
    labels = [s.label for s in sources]
    specs = [s.spec for s in sources]
    with _evidence(req, target) as (con, session):
        repos = repository_keys(con, labels, _locations(sources))
        timeline = []
        to_save: list[store.Assessment] = []
        collected = collected_findings(con, repos, [p.evidence_until for p in history] + [current.as_of])
        for point in history:
            # Answers speak about today, so the timeline is scored on evidence alone.
            scored = score(model, point.findings + collected[point.evidence_until])
            revs = [point.revisions.get(s.label) or "" for s in sources]
            to_save.append(store.Assessment(
                target=target, sources=specs, revisions=revs, kind="monthly", period=point.period,
                as_of=point.as_of, assessed_at=now, answers_file=None, result=scored))
            timeline.append(
                {
                    "period": point.period,
                    "as_of": point.as_of,
                    "revisions": revs,
                    "level": scored["level"],
                    "levels": scored["levels"],
                    "statuses": {c["id"]: c["status"] for c in scored["capabilities"]},
                }
            )
        result = score(model, current.findings + collected[current.as_of], answers)
        result["skipped"] = list(skipped)
        if session is not None:
            # A later assessed_at than the months', so "newest first" readers pick today's
            # assessment over the month that holds the same commit.
            to_save.append(store.Assessment(
                target=target, sources=specs, revisions=stored_revisions, kind="point", period=None,
                as_of=current.as_of, assessed_at=datetime.now(UTC),
                answers_file=str(req.answers) if req.answers else None, result=result))
            store.save(session, to_save)
            if skipped:
                session.warn(
                    "assess_skipped_files",
                    f"{len(skipped)} files could not be scanned: {skipped[0]}",
                    len(skipped),
                )
    for line in skipped[:5]:
        say(f"warning: skipped {line}")
    if not req.store:
        say(f"{target}: not stored (an ad-hoc assessment); pass --store to keep it for the dashboard")
    return AssessOutcome(target=target, result=result, history=timeline, skipped=skipped, stored=req.store)


def _locations(sources: list[Source]) -> list[str]:
    """How the store may know each source: the argument as given, and its folders on disk."""
    places: list[str] = []
    for src in sources:
        places.append(src.spec)
        for folder in (src.worktree, src.git_dir if src.worktree is None else None):
            if folder is not None and not str(folder).startswith(tempfile.gettempdir()):
                places.append(str(folder))
    return places


@contextmanager
def _evidence(
    req: AssessRequest, target: str
) -> Iterator[tuple[duckdb.DuckDBPyConnection | None, WriteSession | None]]:
    """With ``store``: one writer transaction whose connection also reads the evidence. Without:
    a reader pinned to the latest snapshot (None when there is no store yet); nothing is written."""
    if req.store:
        with open_writer(req.db_path, source="assess", target=target) as session:
            yield session.con, session
        return
    from analytics.store.connection import latest_snapshot_id, open_reader

    if latest_snapshot_id(req.db_path) is None:
        yield None, None
        return
    con = open_reader(req.db_path, install_views=False)
    try:
        yield con, None
    finally:
        con.close()


def forget(db_path: StoreRef, target: str) -> int:
    """Delete every stored assessment of ``target`` (point and monthly, with their per-capability
    and per-level rows) in one transaction; returns how many assessments went."""
    from analytics.store.connection import latest_snapshot_id, open_reader

    if latest_snapshot_id(db_path) is None:
        raise UserError(f"no stored assessment of {target!r}: the store {db_path} does not exist")
    reader = open_reader(db_path, install_views=False)
    try:
        known = store.targets(reader)
    finally:
        reader.close()
    if target not in known:
        listing = ", ".join(known) if known else "none"
        raise UserError(f"no stored assessment of {target!r} (stored targets: {listing})")
    with open_writer(db_path, source="assess-forget", target=target) as session:
        removed = store.delete(session, target)
        session.messages.append(f"forgot {removed} assessments of {target}")
    return removed


def _revision_label(src: Source, sha: str | None) -> str:
    if sha is not None:
        return sha
    head = src.resolve("HEAD", required=False) if src.git_dir is not None else None
    return f"worktree@{head}" if head else "worktree"
