"""Finding the repository to mine: a working tree, a bare repository, or a URL cloned into a cache.

Everything here shells out to the ``git`` binary; errors become one line that names the input.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import secrets
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from analytics.errors import SourceError

CACHE_ENV = "GITOPS_DORA_CACHE"
_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://|^[\w.-]+@[\w.-]+:")
_CREDENTIALS = re.compile(r"(://)[^/@]+@")
# Branches, remote-tracking branches and tags: "every commit reachable from any branch or tag".
REF_NAMESPACES = ("refs/heads", "refs/remotes", "refs/tags")
REV_SELECTION = ("--branches", "--remotes", "--tags")


def redact(url: str) -> str:
    """Drop any user:password@ from a URL so a token never reaches the DB, logs or errors (and mask
    any other credential :mod:`analytics.redaction` recognises)."""
    from analytics.redaction import redact as _redact

    return _redact(url, drop_userinfo=True)


def is_url(text: str) -> bool:
    return bool(_URL.match(text))


def git_env() -> dict[str, str]:
    """Never prompt for credentials or wait on a stalled server (a collector must not hang), and
    use plain C-locale output."""
    env = dict(os.environ)
    env.update(GIT_TERMINAL_PROMPT="0", LC_ALL="C", GIT_OPTIONAL_LOCKS="0")
    env.setdefault("GIT_HTTP_LOW_SPEED_LIMIT", "1000")  # bytes/s, for
    env.setdefault("GIT_HTTP_LOW_SPEED_TIME", "60")     # seconds: then git gives up
    return env


_AUTHORITY = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<authority>[^/?#]*)(?P<rest>.*)$", re.S)


def hidden_credentials(url: str) -> tuple[str, dict[str, str]]:
    """``url`` without its userinfo, for git's command line, and the environment that makes git use
    the URL as given: ``url.<as given>.insteadOf <without>``, passed in ``GIT_CONFIG_COUNT``/
    ``GIT_CONFIG_KEY_n``/``GIT_CONFIG_VALUE_n`` after any the environment already holds.

    Why: a process's command line is readable by every user of the machine (``ps``,
    ``/proc/PID/cmdline``) for as long as it runs, a clone of a large repository for minutes; its
    environment only by its own user. The user typed the URL into our command line already, but
    the git processes we start need not repeat it. A URL without userinfo (or scp-like
    ``git@host:path``, whose user is no secret) is returned as it is, with no environment."""
    m = _AUTHORITY.match(url)
    if m is None or "@" not in m.group("authority"):
        return url, {}
    host = m.group("authority").rpartition("@")[2]  # the last @ ends the userinfo
    bare = f"{m.group('scheme')}{host}{m.group('rest')}"
    try:
        count = int(os.environ.get("GIT_CONFIG_COUNT", "0") or 0)
    except ValueError:
        count = 0
    return bare, {"GIT_CONFIG_COUNT": str(count + 1), f"GIT_CONFIG_KEY_{count}": f"url.{url}.insteadOf",
                  f"GIT_CONFIG_VALUE_{count}": bare}


def run_git(
    repo: Path, args: Sequence[str], *, what: str, stdin: str | None = None, check: bool = True,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run git in ``repo``; on failure raise SourceError naming ``what`` and git's own reason.
    ``env``: added to :func:`git_env` (:func:`hidden_credentials`)."""
    try:
        proc = subprocess.run(
            ["git", "-C", str(repo), *args], input=stdin, capture_output=True, text=True,
            env={**git_env(), **(env or {})}, errors="replace",
        )
    except FileNotFoundError:
        raise SourceError("git is not installed (no `git` on PATH)") from None
    if check and proc.returncode != 0:
        raise SourceError(f"{what}: {git_reason(proc.stderr)}")
    return proc


def git_reason(stderr: str) -> str:
    """The most telling line of git's stderr (a 'fatal:' or 'error:' line), for one-line errors."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for prefix in ("error: could not read", "fatal: bad object", "error:", "fatal:"):
        for line in lines:
            if line.lower().startswith(prefix):
                return redact(line)
    return redact(lines[-1]) if lines else "git failed"


@dataclass(frozen=True)
class RepoLocation:
    """Where and what the repository is."""

    repo_id: str
    url: str            # as the user gave it (credentials removed)
    local_path: Path    # where git runs
    is_bare: bool
    is_shallow: bool
    fetched: bool       # a cache clone that was cloned or fetched in this run


def default_repo_id(path_or_url: str) -> str:
    """The folder or URL basename without ``.git`` (``/src/payments.git`` -> ``payments``)."""
    text = path_or_url.rstrip("/")
    text = re.split(r"[/:]", text)[-1] if is_url(text) else Path(text).resolve().name
    return text[:-4] if text.endswith(".git") else text or "repo"


def cache_root() -> Path:
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else Path.home() / ".cache" / "gitops-dora" / "repos"


def _cache_clone(url: str, repo_id: str) -> Path:
    """Clone (bare, blobs left out) into the cache on the first run; fetch on later runs."""
    digest = hashlib.sha1(redact(url).encode()).hexdigest()[:10]
    dest = cache_root() / f"{repo_id}-{digest}.git"
    shown = redact(url)
    # git's command lines name the URL without its userinfo; the environment maps it back
    bare, credentials = hidden_credentials(url)
    if (dest / "HEAD").exists():
        # "origin" is the URL the clone stored, without its userinfo; the credentials reach git
        # through ``credentials`` only. Fetching "origin" keeps the clone's partial-clone settings
        # without a second remote. (A ``-c remote.origin.url=...`` here would be a second value of a
        # multi-valued key: git fetches from the first, the stored one.)
        run_git(dest, ["fetch", "--quiet", "--prune", "--force",
                       "origin", "+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"],
                what=f"cannot fetch {shown}", env=credentials)
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    # Random, not the pid: runs in other PID namespaces (pods sharing a ReadWriteMany cache) have
    # the same pids, and one run's clean-up deleted another's clone in progress.
    tmp = dest.with_name(f"{dest.name}.partial-{secrets.token_hex(8)}")
    try:
        proc = subprocess.run(
            ["git", "clone", "--quiet", "--bare", "--filter=blob:none", bare, str(tmp)],
            capture_output=True, text=True, env={**git_env(), **credentials}, errors="replace",
        )
        if proc.returncode != 0:
            raise SourceError(f"cannot clone {shown}: {git_reason(proc.stderr)}")
        if not _really_partial(tmp):
            # The server ignored the filter and sent every object. Left marked as a partial clone,
            # later fetches from a server without filter support (git's "dumb" HTTP) stall.
            for key in ("remote.origin.promisor", "remote.origin.partialclonefilter"):
                run_git(tmp, ["config", "--unset", key], what="", check=False)
        if shown != url:  # git wrote the URL with its credentials into the clone's config
            run_git(tmp, ["remote", "set-url", "origin", shown], what=f"cannot configure {tmp}")
        try:
            os.replace(tmp, dest)  # a half-finished clone never looks like a cache hit
        except OSError as exc:
            # Another run's clone got there first (a folder cannot be renamed over a non-empty
            # one): it is complete, since only a finished clone is renamed, and it was made
            # while this one was, so it is as fresh. Use it; this copy is removed below.
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST) or not (dest / "HEAD").exists():
                raise SourceError(f"cannot store the clone of {shown} in {dest}: {exc.strerror}") from None
        return dest
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # gone after a rename; a failed or losing clone's copy


def _really_partial(repo: Path) -> bool:
    """Whether blobs were left out: HEAD's tree lists missing objects as ``?sha`` (no lazy fetch)."""
    proc = run_git(repo, ["rev-list", "--objects", "--missing=print", "--no-walk", "HEAD"],
                   what="", check=False)
    return proc.returncode != 0 or any(line.startswith("?") for line in proc.stdout.splitlines())


def locate(path_or_url: str, repo_id: str | None = None) -> RepoLocation:
    """Resolve the user's argument to a local repository, cloning/fetching a URL into the cache."""
    if is_url(path_or_url):
        rid = repo_id or default_repo_id(path_or_url)
        local = _cache_clone(path_or_url, rid)
        shown, fetched = redact(path_or_url), True
    else:
        local = Path(path_or_url).expanduser()
        if not local.exists():
            raise SourceError(f"{path_or_url}: no such file or directory")
        if not local.is_dir():
            raise SourceError(f"{path_or_url} is not a git repository (it is a file)")
        rid, shown, fetched = "", str(local), False
    proc = run_git(local, ["rev-parse", "--is-bare-repository", "--is-shallow-repository"],
                   what="", check=False)
    if proc.returncode != 0:
        raise SourceError(f"{shown} is not a git repository ({git_reason(proc.stderr)})")
    flags = proc.stdout.split()
    is_bare, is_shallow = flags[0] == "true", flags[1] == "true"
    if not is_bare:
        top = run_git(local, ["rev-parse", "--show-toplevel"], what="", check=False)
        if top.returncode == 0 and top.stdout.strip():
            toplevel = Path(top.stdout.strip())
            if toplevel.resolve() != local.resolve():
                # Mining the enclosing repository instead would be a silent surprise.
                raise SourceError(f"{shown} is not a git repository (it is a folder inside the "
                                  f"repository {toplevel}; pass that instead)")
        elif local.resolve().name == ".git":
            local = local.resolve().parent
    if not fetched:
        local = local.resolve()
        rid = repo_id or default_repo_id(str(local))
        shown = str(local)
    return RepoLocation(repo_id=rid, url=shown, local_path=local, is_bare=is_bare,
                        is_shallow=is_shallow, fetched=fetched)


def ref_tips(repo: Path) -> dict[str, str]:
    """Every branch, remote-tracking branch and tag with the object it points at: the watermark."""
    proc = run_git(repo, ["for-each-ref", "--format=%(objectname) %(refname)", *REF_NAMESPACES],
                   what=f"cannot list refs of {repo}")
    tips: dict[str, str] = {}
    for line in proc.stdout.splitlines():
        sha, _, ref = line.partition(" ")
        if ref.endswith("/HEAD") and ref.startswith("refs/remotes/"):
            continue  # a symbolic alias of another remote branch
        tips[ref] = sha
    return tips


def existing_objects(repo: Path, shas: Sequence[str]) -> list[str]:
    """The subset of ``shas`` still present in the object store (old tips may be gone after a gc)."""
    if not shas:
        return []
    proc = run_git(repo, ["cat-file", "--batch-check=%(objectname) %(objecttype)"],
                   stdin="\n".join(shas) + "\n", what=f"cannot read objects of {repo}")
    return [line.split()[0] for line in proc.stdout.splitlines() if not line.endswith(" missing")]
