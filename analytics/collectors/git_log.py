"""Bulk commit and tag metadata: one streaming ``git log`` into a file, loaded by DuckDB's CSV reader.

pydriller builds a Python object per commit and is several times slower than git itself for plain
metadata, so commits are never touched row by row in Python: git writes unit-separated fields to a
temporary file and DuckDB parses and inserts them in one statement.
"""

from __future__ import annotations

import codecs
import re
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

from analytics.collectors.git_source import REV_SELECTION, git_env, git_reason, run_git
from analytics.errors import SourceError

SEP = "\x1f"
# Subject last: it is the only free-text field, and git never puts a newline in %s.
LOG_FIELDS = ("sha", "parents", "an", "ae", "ad", "cn", "ce", "cd", "subject")
LOG_FORMAT = "%H%x1f%P%x1f%an%x1f%ae%x1f%ad%x1f%cn%x1f%ce%x1f%cd%x1f%s"
_REVERT = re.compile(r"This reverts commit ([0-9a-f]{7,40})")
_GIT_LOG_CONFIG = ("-c", "log.showSignature=false", "-c", "core.quotePath=false")


def log_command(repo: Path, fmt: str = LOG_FORMAT) -> list[str]:
    """The git command whose output is mined (the benchmark times the same command)."""
    return ["git", "-C", str(repo), *_GIT_LOG_CONFIG, "log", *REV_SELECTION, "--stdin",
            "--date=raw", f"--format={fmt}"]


def _stdin_excluding(exclude: Sequence[str]) -> str:
    return "".join(f"^{sha}\n" for sha in exclude)


def find_reverts(repo: Path, exclude: Sequence[str]) -> dict[str, str]:
    """Commit -> the sha its message says it reverts; git's --grep keeps this pass cheap."""
    proc = subprocess.run(
        [*log_command(repo, "%H%x1f%B%x1e"), "-E", "--grep=This reverts commit [0-9a-f]{7,40}"],
        input=_stdin_excluding(exclude), capture_output=True, text=True, env=git_env(), errors="replace",
    )
    if proc.returncode != 0:
        raise SourceError(f"cannot read the history of {repo}: {git_reason(proc.stderr)}")
    found: dict[str, str] = {}
    for record in proc.stdout.split("\x1e"):
        sha, _, body = record.strip("\n").partition(SEP)
        m = _REVERT.search(body)
        if sha and m:
            found[sha] = m.group(1)
    return found


_BAD_OBJECT = re.compile(r"(?:bad object|could not read|missing \w+) ([^\s:]+)", re.IGNORECASE)


def missing_object_reason(repo: Path, stderr: str) -> str:
    """Name the missing object by its sha (git sometimes names the ref that leads to it instead)."""
    reason = git_reason(stderr)
    m = _BAD_OBJECT.search(stderr)
    if not m:
        return reason
    name = m.group(1)
    if re.fullmatch(r"[0-9a-f]{40,64}", name):
        return f"missing git object {name}"
    sha = run_git(repo, ["rev-parse", "--verify", "--quiet", name], what="", check=False).stdout.strip()
    return f"missing git object {sha} (reached from {name})" if sha else reason


def _sql_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _read_csv_sql(path: Path) -> str:
    cols = ", ".join(f"'{name}': 'VARCHAR'" for name in LOG_FIELDS)
    return (
        f"read_csv({_sql_str(str(path))}, delim='{SEP}', quote='', escape='', header=false, "
        f"auto_detect=false, new_line='\\n', columns={{{cols}}})"
    )


def _well_formed(path: Path, block: int = 1 << 23) -> bool:
    """Valid UTF-8 with exactly one separator per field boundary, checked at C speed in blocks.

    An error inside the transaction would abort the whole run, so the file is checked first.
    """
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    seps = lines = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(block):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError:
                return False
            seps += chunk.count(b"\x1f")
            lines += chunk.count(b"\n")
            if b"\0" in chunk:
                return False
    return seps == lines * (len(LOG_FIELDS) - 1)


def _sanitise(raw: Path, clean: Path) -> None:
    """Slow path for histories DuckDB's reader rejects (invalid UTF-8, stray separators)."""
    with open(raw, encoding="utf-8", errors="replace", newline="\n") as src, \
            open(clean, "w", encoding="utf-8", newline="\n") as dst:
        for line in src:
            parts = line.rstrip("\n").replace("\0", "").split(SEP)
            if len(parts) > len(LOG_FIELDS):  # a separator inside the subject
                parts = parts[: len(LOG_FIELDS) - 1] + [" ".join(parts[len(LOG_FIELDS) - 1:])]
            parts += [""] * (len(LOG_FIELDS) - len(parts))
            dst.write(SEP.join(parts) + "\n")


_INSERT = """
INSERT OR REPLACE INTO commits
    (repo, sha, parents, author_name, author_email, author_time, author_tz,
     committer_name, committer_email, committer_time, committer_tz, subject, is_merge, reverts_sha)
WITH logged AS (
    SELECT *, CASE WHEN coalesce(parents, '') = '' THEN []::VARCHAR[]
                   ELSE string_split(parents, ' ') END AS parent_list
    FROM {source}
), reverts AS (
    SELECT unnest($2::VARCHAR[]) AS sha, unnest($3::VARCHAR[]) AS reverted
)
SELECT $1, logged.sha, parent_list, an, ae,
       to_timestamp(CAST(split_part(ad, ' ', 1) AS BIGINT)), split_part(ad, ' ', 2),
       cn, ce,
       to_timestamp(CAST(split_part(cd, ' ', 1) AS BIGINT)), split_part(cd, ' ', 2),
       subject, len(parent_list) > 1, reverts.reverted
FROM logged LEFT JOIN reverts USING (sha)
"""

# git revert writes the full sha, but a hand-written message may abbreviate it.
_EXPAND_REVERTS = """
UPDATE commits SET reverts_sha = full.sha
FROM (
    SELECT c.sha AS reverting, min(t.sha) AS sha, count(*) AS n
    FROM commits c JOIN commits t ON t.repo = c.repo AND starts_with(t.sha, c.reverts_sha)
    WHERE c.repo = $1 AND length(c.reverts_sha) < 40
    GROUP BY c.sha
) AS full
WHERE commits.repo = $1 AND commits.sha = full.reverting AND full.n = 1
"""


def mine_commits(con: duckdb.DuckDBPyConnection, repo_id: str, repo: Path, exclude: Sequence[str]) -> int:
    """Insert every commit reachable from a branch or tag but not from ``exclude``; returns the count."""
    with tempfile.TemporaryDirectory(prefix="gitops-dora-log-") as tmp:
        raw = Path(tmp) / "log.txt"
        with open(raw, "wb") as out:
            proc = subprocess.run(
                log_command(repo), input=_stdin_excluding(exclude).encode(), stdout=out,
                stderr=subprocess.PIPE, env=git_env(),
            )
        if proc.returncode != 0:
            raise SourceError(f"cannot read the history of {repo}: "
                              f"{missing_object_reason(repo, proc.stderr.decode(errors='replace'))}")
        if raw.stat().st_size == 0:
            return 0
        reverts = find_reverts(repo, exclude)
        params = [repo_id, list(reverts), list(reverts.values())]
        source = raw
        if not _well_formed(raw):
            source = Path(tmp) / "log.clean.txt"
            _sanitise(raw, source)
        before = _count(con, repo_id)
        try:
            con.execute(_INSERT.format(source=_read_csv_sql(source)), params)
        except duckdb.Error as exc:
            raise SourceError(f"cannot parse the history of {repo}: {str(exc).splitlines()[0]}") from None
        if any(len(target) < 40 for target in reverts.values()):
            con.execute(_EXPAND_REVERTS, [repo_id])
        return _count(con, repo_id) - before


def _count(con: duckdb.DuckDBPyConnection, repo_id: str) -> int:
    row = con.execute("SELECT count(*) FROM commits WHERE repo = ?", [repo_id]).fetchone()
    return int(row[0]) if row else 0


@dataclass(frozen=True)
class Tag:
    name: str
    sha: str            # the commit it points at (peeled)
    is_annotated: bool
    epoch: int          # tagger date (annotated) or committer date (lightweight)
    tagger: str | None


_TAG_FORMAT = "%1f".join([
    "%(refname:strip=2)", "%(objecttype)", "%(objectname)", "%(*objecttype)", "%(*objectname)",
    "%(taggerdate:raw)", "%(taggername)", "%(committerdate:raw)", "%(*committerdate:raw)",
])


def list_tags(repo: Path) -> tuple[list[Tag], list[str]]:
    """Tags that point (possibly through a tag object) at a commit; also the names skipped."""
    proc = run_git(repo, ["for-each-ref", f"--format={_TAG_FORMAT}", "refs/tags"],
                   what=f"cannot list the tags of {repo}")
    tags: list[Tag] = []
    skipped: list[str] = []
    nested: list[tuple[str, int, str | None]] = []
    for line in proc.stdout.splitlines():
        name, otype, osha, ptype, psha, tdate, tagger, cdate, pcdate = line.split(SEP)
        if otype == "commit":
            tags.append(Tag(name, osha, False, _epoch(cdate), None))
        elif otype == "tag" and ptype == "commit":
            when = tdate or pcdate  # very old tags may lack a tagger line
            tags.append(Tag(name, psha, True, _epoch(when), tagger or None))
        elif otype == "tag" and ptype == "tag":
            nested.append((name, _epoch(tdate) if tdate else 0, tagger or None))
        else:
            skipped.append(name)  # a tag of a tree or blob is not a release of code
    for name, epoch, nested_tagger in nested:
        peeled = run_git(repo, ["rev-parse", "--verify", "--quiet", f"refs/tags/{name}^{{commit}}"],
                         what="", check=False).stdout.strip()
        if peeled:
            tags.append(Tag(name, peeled, True, epoch, nested_tagger))
        else:
            skipped.append(name)
    return tags, skipped


def _epoch(raw_date: str) -> int:
    return int(raw_date.split()[0]) if raw_date.strip() else 0


def replace_tags(con: duckdb.DuckDBPyConnection, repo_id: str, tags: Sequence[Tag]) -> int:
    """Tags are few and cheap to list, so the repo's rows are replaced wholesale (deleted tags go)."""
    con.execute("DELETE FROM tags WHERE repo = ?", [repo_id])
    if not tags:
        return 0
    con.execute(
        """INSERT INTO tags (repo, name, sha, is_annotated, tagged_at, tagger_name)
           SELECT $1, unnest($2::VARCHAR[]), unnest($3::VARCHAR[]), unnest($4::BOOLEAN[]),
                  to_timestamp(unnest($5::BIGINT[])), unnest($6::VARCHAR[])""",
        [repo_id, [t.name for t in tags], [t.sha for t in tags], [t.is_annotated for t in tags],
         [t.epoch for t in tags], [t.tagger for t in tags]],
    )
    return len(tags)
