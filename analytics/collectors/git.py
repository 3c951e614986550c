"""``collect git``: commits, tags and git-derived deployments of one repository, incrementally.

The watermark is the set of ref tips (branches, remote-tracking branches, tags) plus the
deployment options. If both are unchanged the run stops after reading the latest snapshot:
no mining, no write, no pandas import. Otherwise only commits not reachable from the old tips
that still exist are read (``git log --branches --remotes --tags --not <old tips>``).
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from analytics.collectors.git_source import RepoLocation, existing_objects
from analytics.store.literals import execute, sql_string
from analytics.store.location import StoreRef, redact_url
from analytics.store.upsert import OnMatch, merge

if TYPE_CHECKING:
    from analytics.collectors.git_deploy import GitDeployment
    from analytics.collectors.git_log import CommitLoad, LogReader, Tag
    from analytics.deployments.loaded_nodes import LoadedNodes

STATE_TIPS = "ref_tips"
STATE_OPTIONS = "options"

# The ref tips of the previous run as the fast path read them from the latest snapshot: the guess
# that lets ``collect`` start git before the store is open. The transaction checks it (a
# wrong guess only costs starting git again), so a stale entry is harmless.
_seen_tips: dict[str, str | None] = {}


@dataclass(frozen=True)
class GitOptions:
    """What turns this repository's history into deployments (part of the watermark)."""

    service: str
    environment: str
    deploy_tags: str | None = None
    deploy_branch: str | None = None
    team: str | None = None
    environment_is_production: bool = True
    environment_in_config: bool = False

    def fingerprint(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


@dataclass
class GitSummary:
    repo_id: str
    up_to_date: bool = False
    full: bool = False
    new_commits: int = 0
    total_commits: int = 0
    tags: int = 0
    deployments: int = 0
    changes: int = 0
    skipped_tags: list[str] = field(default_factory=list)
    is_shallow: bool = False
    timings: dict[str, float] = field(default_factory=dict)
    # (chunks, DuckDB threads) of each load of the commits (git_log.mine_commits)
    loads: list[tuple[int, int]] = field(default_factory=list)
    # chunks of git's output loaded before the tags, while git still walked
    loaded_early: int = 0

    def mark(self, phase: str) -> None:
        """Seconds since the previous mark, kept per phase (printed with GITOPS_DORA_TIMINGS=1)."""
        now, cpu = time.perf_counter(), time.process_time()
        self.timings[phase] = now - self.timings.get("_last", now)
        self.timings[f"{phase} cpu"] = cpu - self.timings.get("_last cpu", cpu)
        self.timings["_last"], self.timings["_last cpu"] = now, cpu

    def line(self) -> str:
        if self.up_to_date:
            return (f"git {self.repo_id}: up to date, nothing mined ({self.total_commits} commits, "
                    f"{self.deployments} git deployments)")
        mode = "full" if self.full else "incremental"
        return (f"git {self.repo_id}: {self.new_commits} new commits "
                f"({mode}; {self.total_commits} in total), "
                f"{self.tags} tags, {self.deployments} git deployments, {self.changes} attributed changes")


def source_key(repo_id: str) -> str:
    return f"git:{repo_id}"


def unchanged_summary(
    db_path: StoreRef, repo_id: str, tips: dict[str, str], options: GitOptions, reader: Any = None,
) -> GitSummary | None:
    """The fast path: a summary if the latest snapshot's watermark equals the current refs and options.
    ``reader``: an open :func:`state_reader` connection to use (and leave open)."""
    import duckdb


    con = reader if reader is not None else state_reader(db_path)
    if con is None:
        return None
    try:
        # literals, not parameters: binding one makes DuckDB import pandas (sql_string says why)
        state = dict(con.execute(
            f"SELECT key, value FROM collector_state WHERE source = {sql_string(source_key(repo_id))}"
        ).fetchall())
        _seen_tips[repo_id] = state.get(STATE_TIPS)
        if state.get(STATE_TIPS) != json.dumps(tips, sort_keys=True) or \
                state.get(STATE_OPTIONS) != options.fingerprint():
            return None
        commits = con.execute(
            f"SELECT count(*) FROM commits WHERE repo = {sql_string(repo_id)}").fetchall()[0]
        deps = con.execute(
            f"SELECT count(*) FROM deployments WHERE repository = {sql_string(repo_id)} "
            f"AND service = {sql_string(options.service)} AND source IN ('git-tag', 'git-branch')"
        ).fetchall()[0]
    except duckdb.Error:
        return None  # an older schema: let the writer migrate it
    finally:
        if reader is None:
            con.close()
    return GitSummary(repo_id, up_to_date=True, total_commits=int(commits[0]) if commits else 0,
                      deployments=int(deps[0]) if deps else 0)


def state_reader(db_path: StoreRef) -> Any:
    """A reader on the latest snapshot for the watermark checks, or None without a store."""
    from analytics.errors import UserError
    from analytics.store.connection import open_reader

    try:
        return open_reader(db_path, install_views=False, threads=1)  # a few catalog queries
    except UserError:
        return None  # no store yet, or unreadable: the writer path gives the proper error


def remembered_options(db_path: StoreRef, repo_id: str, reader: Any = None) -> GitOptions | None:
    """The options of this repository's previous run, so a bare re-run (cron) keeps its deployments."""
    import duckdb


    con = reader if reader is not None else state_reader(db_path)
    if con is None:
        return None
    try:
        rows = con.execute(
            f"SELECT value FROM collector_state WHERE source = {sql_string(source_key(repo_id))} "
            f"AND key = {sql_string(STATE_OPTIONS)}"
        ).fetchall()
    except duckdb.Error:
        return None
    finally:
        if reader is None:
            con.close()
    row = rows[0] if rows else None
    if not row or not row[0]:
        return None
    try:
        return GitOptions(**json.loads(row[0]))
    except (TypeError, ValueError):
        return None


class _Background:
    """A git call run on a thread while the store opens; ``result`` re-raises its error here."""

    def __init__(self, work: Callable[[], Any]) -> None:
        self._work = work
        self._value: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._value = self._work()
        except BaseException as exc:  # noqa: BLE001 - re-raised by result() on the caller's thread
            self._error = exc

    def result(self) -> Any:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


class Prefetch:
    """git's share of a run, started before the store is opened (attaching the catalog and, for
    a new store, creating its tables take as long as git's walk of a large history): the
    ``git log`` of the new commits, the tag listing and the deploy branch's first-parent log.

    ``git log`` needs the previous run's tips, which only the transaction can read for sure; it
    starts from ``old_tips`` (what the fast path saw, or nothing for a new repository) and
    :func:`ingest` uses it only if the transaction finds the same. Each part is used once: a unit
    run again after a conflict reads git again.
    """

    def __init__(self, location: RepoLocation, options: GitOptions, branch_ref: str | None,
                 old_tips: str | None, log: LogReader | None = None) -> None:
        from analytics.collectors import git_deploy, git_log

        repo = location.local_path
        self.log: LogReader | None = log if log is not None and log.repo == repo else None
        if self.log is None:
            try:
                tips: dict[str, str] = json.loads(old_tips) if old_tips else {}
                exclude = existing_objects(repo, sorted(set(tips.values()))) if tips else []
                self.log = git_log.LogReader(repo, exclude)
            except Exception:  # noqa: BLE001 - only a head start: the transaction runs git itself and reports
                self.log = None
        self.tags: _Background | None = _Background(lambda: git_log.list_tags(repo))
        self.branch: _Background | None = None
        if branch_ref is not None and options.deploy_branch is not None:
            branch = options.deploy_branch
            self.branch = _Background(lambda: git_deploy.from_branch(location.repo_id, repo, branch))

    def take_log(self) -> LogReader | None:
        log, self.log = self.log, None
        return log

    def take_tags(self) -> tuple[list[Tag], list[str]] | None:
        tags, self.tags = self.tags, None
        return tags.result() if tags is not None else None

    def take_branch(self) -> list[GitDeployment] | None:
        branch, self.branch = self.branch, None
        return branch.result() if branch is not None else None

    def close(self) -> None:
        """Stop whatever was not used (the store failed to open, or the guess was wrong)."""
        if self.log is not None:
            self.log.abort()
        for job in (self.tags, self.branch):
            if job is not None:
                with contextlib.suppress(Exception):  # its error only matters to ingest
                    job.result()


def collect(
    db_path: StoreRef, location: RepoLocation, options: GitOptions, tips: dict[str, str],
    log: LogReader | None = None,
) -> GitSummary:
    """Mine into the store in one writer session (one transaction); see the module docstring.

    ``log``: a ``git log`` of this repository already running, started before the CLI loaded
    (analytics/cli/git_head_start.py: a new store, so nothing excluded); the transaction checks
    its exclusions like any other guess."""
    from analytics.collectors import git_deploy
    from analytics.store.connection import WriteSession, write_unit

    repo_id, repo = location.repo_id, location.local_path
    summary = GitSummary(repo_id, is_shallow=location.is_shallow)
    summary.mark("start")
    # Validate what can be validated before the writer opens: nothing is written on bad input.
    if options.deploy_tags is not None:
        git_deploy.compile_pattern(options.deploy_tags)
    branch_ref = git_deploy.resolve_branch(repo, options.deploy_branch) if options.deploy_branch else None
    prefetch = Prefetch(location, options, branch_ref, _seen_tips.get(repo_id), log)

    def work(session: WriteSession) -> None:
        ingest(session, location, options, tips, summary, branch_ref, prefetch)

    try:
        # one DuckDB thread from the open on (ingest says why); the commits' load after git takes more
        with _cyclic_gc_paused():
            write_unit(db_path, work, source=source_key(repo_id), target=redact_url(location.url), threads=1)
    finally:
        prefetch.close()
    summary.mark("commit+snapshot")
    if os.environ.get("GITOPS_DORA_TIMINGS"):
        print("timings: " + ", ".join(f"{k} {v:.2f}s" for k, v in summary.timings.items()
                                      if not k.startswith("_"))
              + "; loads (chunks, threads): " + " ".join(f"{n},{t}" for n, t in summary.loads),
              file=sys.stderr)
    return summary


@contextlib.contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while the unit runs (the previous setting is put back).

    The unit makes few reference cycles but many tracked objects: attribution fetches a row
    tuple per commit, so a 100k-commit run set off about 230 collections, 35 ms of CPU (half of
    it after git's exit, where nothing runs beside it), each re-scanning objects that live on
    anyway. What cycles the unit leaves are collected once it is over.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def ingest(
    session: Any, location: RepoLocation, options: GitOptions, tips: dict[str, str], summary: GitSummary,
    branch_ref: str | None, prefetch: Prefetch | None = None,
) -> None:
    """The unit of work of ``collect git`` on an open session: commits, tags, deployments,
    attribution and the new watermark (kept apart from ``collect`` so bench/store_engines.py can
    run the very same work on a native DuckDB connection). ``prefetch``: git already running
    for this run (:class:`Prefetch`).

    Every statement that reads the store is a catalog round trip on DuckLake, so reads are
    combined where one statement can answer several questions.
    """
    from analytics.store.connection import duckdb_threads, machine_threads

    # One DuckDB thread: on DuckLake most of the unit's statements are a few dozen small catalog
    # queries each, and a second worker thread doubled their CPU time (measured per statement:
    # 16 -> 9 ms for one table reference) while git's walk already keeps the other core busy.
    with duckdb_threads(session.con, 1) as threads:
        # the commits' load once git has exited: the user's setting, else the connection's or one per core
        _ingest(session, location, options, tips, summary, branch_ref, prefetch, machine_threads(threads))


def _ingest(
    session: Any, location: RepoLocation, options: GitOptions, tips: dict[str, str], summary: GitSummary,
    branch_ref: str | None, prefetch: Prefetch | None, threads: int = 1,
) -> None:
    """``threads``: the connection's own setting, for the commits' load once git has exited."""
    from analytics.collectors import git_log
    from analytics.deployments.loaded_nodes import LoadedNodes
    from analytics.progress import progress
    from analytics.store.connection import store_was_empty

    repo_id, repo = location.repo_id, location.local_path
    with progress(f"git {repo_id}", total=5) as bar:
        con = session.con
        source = source_key(repo_id)
        empty = store_was_empty(con)
        # the unit registers one repository, service and environment, a one-row MERGE each
        session.began_empty = empty
        old_raw, had = (None, 0) if empty else execute(con,
            "SELECT (SELECT value FROM collector_state WHERE source = $1 AND key = $2), "
            "(SELECT count(*) FROM commits WHERE repo = $3)", [source, STATE_TIPS, repo_id],
        ).fetchall()[0]
        old_tips: dict[str, str] = json.loads(old_raw) if old_raw else {}
        exclude = existing_objects(repo, sorted(set(old_tips.values()))) if had else []
        summary.full = not exclude
        summary.mark("open")
        reader = prefetch.take_log() if prefetch is not None else None
        # a repository's first load numbers its commits for attribution while git walks
        nodes = LoadedNodes(repo_id) if not had else None
        load = git_log.CommitLoad(con, repo_id, repo, exclude, before=int(had), reader=reader,
                                  threads_after_git=threads, loads=summary.loads, nodes=nodes)
        try:
            _ingest_with(session, location, options, tips, summary, branch_ref, prefetch, bar, load,
                         int(had), empty, nodes)
        finally:
            load.abort()


def _ingest_with(
    session: Any, location: RepoLocation, options: GitOptions, tips: dict[str, str], summary: GitSummary,
    branch_ref: str | None, prefetch: Prefetch | None, bar: Any, load: CommitLoad, had: int,
    empty: bool = False, nodes: LoadedNodes | None = None,
) -> None:
    """The rest of the unit, with the commits' load (``git_log.CommitLoad``) under way.
    ``empty``: the unit began on a store without rows (``store.connection.store_was_empty``)."""
    from analytics.collectors import git_deploy, git_log
    from analytics.deployments.attribution import prepare_attribution

    repo_id, repo = location.repo_id, location.local_path
    con = session.con
    source = source_key(repo_id)

    def mine() -> None:
        summary.new_commits = load.finish()

    # What git has written by now is loaded first, while it walks on (no waiting); tags and
    # deployments, which need none of the commits, come next, and the rest of the commits
    # last: on a large history git is often still walking when the store is ready, and the
    # load of the rest would only wait for it. git's own errors keep their order: a failed
    # walk of the history is still the one reported when the tag listing or the deploy
    # branch fails as well.
    summary.loaded_early = load.load_ready()
    bar.update(description=f"git {repo_id}: tags")
    try:
        listed = prefetch.take_tags() if prefetch is not None else None
        tags, summary.skipped_tags = listed if listed is not None else git_log.list_tags(repo)
        branch: list[git_deploy.GitDeployment] | None = None
        if branch_ref is not None and options.deploy_branch is not None:
            branch = prefetch.take_branch() if prefetch is not None else None
            if branch is None:
                branch = git_deploy.from_branch(repo_id, repo, options.deploy_branch)
    except Exception:
        mine()
        raise
    summary.tags = git_log.replace_tags(con, repo_id, tags, store_was_empty=empty)
    _load(con, empty, "repositories",
          "SELECT ? AS id, ? AS url, ? AS local_path, ? AS is_bare, ? AS is_shallow,"
          " now() AS last_collected_at",
          ["id", "url", "local_path", "is_bare", "is_shallow", "last_collected_at"],
          [repo_id, redact_url(location.url), str(repo), location.is_bare, location.is_shallow])
    session.forget_repositories()
    bar.advance()
    summary.mark("tags")
    bar.update(description=f"git {repo_id}: deployments")
    deployments: list[git_deploy.GitDeployment] = []
    if options.deploy_tags:  # '' switches tag deployments off (and is remembered as such)
        deployments += git_deploy.from_tags(repo_id, tags, options.deploy_tags)
    deployments += branch or []
    scopes = git_deploy.replace_deployments(con, repo_id, options.service, options.environment,
                                            deployments, store_was_empty=empty)
    summary.deployments = len(deployments)
    if deployments:
        _upsert_service(con, options, empty)
    bar.advance()
    summary.mark("deployments")
    # The new watermark needs none of the commits either: written while git may still walk, it
    # leaves the time after git's exit to the rest of the load, attribution and the commit.
    if location.is_shallow:
        session.warn("shallow_clone", f"{repo_id}: shallow clone, history and lead times are truncated")
    _load(con, empty, "collector_state",
          "SELECT source, key, value, now() AS updated_at "
          "FROM (VALUES ($1, $2, $3), ($1, $4, $5)) AS v(source, key, value)",
          ["source", "key", "value", "updated_at"],
          [source, STATE_TIPS, json.dumps(tips, sort_keys=True), STATE_OPTIONS, options.fingerprint()])
    # New commits can complete deployments from any source that name this repository.
    # Attribution's reads that need no commit run now too, while git may still walk; only the
    # graph, the walks and the writes are left for after the commits' load.
    attribution = prepare_attribution(session, scopes=scopes, repositories=[repo_id], loaded=nodes,
                                      nothing_stored=empty)
    bar.update(description=f"git {repo_id}: reading history")
    mine()
    bar.advance()
    summary.mark("commits")
    bar.update(description=f"git {repo_id}: attributing commits to deployments")
    summary.changes = attribution.finish()
    bar.advance()
    summary.mark("attribution")
    summary.total_commits = had + summary.new_commits
    session.rows_written += summary.new_commits + summary.tags + summary.deployments + summary.changes
    session.messages.append(summary.line())
    bar.advance()


def _load(con: Any, empty: bool, table: str, source_sql: str, columns: list[str], params: list[Any],
          on_match: OnMatch = "replace") -> None:
    """A few rows MERGEd on the table's key, or, in a unit that began on a store without rows
    (``empty``: nothing in the table to match, and the unit loads each table here once), the
    MERGE's insert alone: the MERGE's read of the table cost 6-8 ms of catalog look-ups on
    DuckLake, four times before git's exit in a first collection."""
    if not empty:
        merge(con, table, source_sql, columns, params, on_match=on_match, few_rows=True)
        return
    names = ", ".join(f'"{c}"' for c in columns)
    execute(con, f"INSERT INTO {table} ({names}) SELECT {names} FROM ({source_sql}) AS src", params)


def _upsert_service(con: object, options: GitOptions, empty: bool = False) -> None:
    """Register the service and environment; a team or production flag from the config wins."""
    _load(con, empty, "services", "SELECT ? AS name, ? AS team", ["name", "team"],
          [options.service, options.team], on_match="replace" if options.team is not None else "ignore")
    _load(con, empty, "environments", "SELECT ? AS name, ? AS is_production", ["name", "is_production"],
          [options.environment, options.environment_is_production],
          on_match="replace" if options.environment_in_config else "ignore")
