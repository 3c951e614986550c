"""Lead time across two repositories: config-repo deployments reach the app commits behind them.

A reconciler deploys a commit of the GitOps config repo, but the changes users care about are the
application commits whose image that config commit points at. So:

1. one ``git log`` walks the config repo and records, per commit, each service's image references in
   the YAML files it touched (container ``image:``, kustomize ``images[].newTag``, HelmRelease
   ``spec.values`` at the configured paths) in ``config_image_changes``;
2. each tag is mapped to an app commit: a hex run of 7+ characters that names a commit of the
   service's app repo (``sha-1a2b3c4``, ``main-1a2b3c4-1700000000``), or an app repo tag;
3. a deployment of config commit C ships the app commits reachable from the image at C and not
   from the image of the previous successful deployment of the same object, plus the config
   commits under the service's path for that environment in the same range.
"""

from __future__ import annotations

import heapq
import os
import re
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from analytics.config import Config, Service
from analytics.store.connection import WriteSession
from analytics.store.literals import execute
from analytics.store.relations import rows_relation

_HEX_RUN = re.compile(r"(?<![0-9a-fA-F])([0-9a-f]{7,40})(?![0-9a-fA-F])")
_GIT_ENV = {"GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1"}
_GIT_WORKERS = max(2, min(8, os.cpu_count() or 2))
# Largest history read only to walk ranges in memory (about 200 bytes a commit); git walks each range
# of a larger one (a config repository's graph, read for ancestry anyway, is walked whatever its size).
_GRAPH_MAX = 200_000


@dataclass(frozen=True)
class ImageRef:
    image: str | None
    tag: str


def _git(repo: Path, *args: str) -> str | None:
    proc = subprocess.run(
        ["git", "-C", str(repo), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **_GIT_ENV},
    )
    return proc.stdout.strip() if proc.returncode == 0 else None


def split_image(value: str) -> ImageRef | None:
    """``registry:5000/acme/app:sha-1a2b3c4`` -> (``registry:5000/acme/app``, ``sha-1a2b3c4``)."""
    text = value.strip()
    if "@" in text:
        text = text.split("@", 1)[0]
    slash = text.rfind("/")
    colon = text.rfind(":")
    if colon <= slash:
        return None
    return ImageRef(image=text[:colon], tag=text[colon + 1 :])


def _walk_images(node: Any) -> Iterator[ImageRef]:
    """Container ``image:`` fields anywhere in a manifest."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "image" and isinstance(value, str):
                ref = split_image(value)
                if ref:
                    yield ref
            else:
                yield from _walk_images(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk_images(item)


def _path_values(node: Any, path: list[str]) -> Iterator[tuple[Any, dict[str, Any]]]:
    """Values at a dotted path (``*`` matches any key); yields (value, parent mapping)."""
    if not path or not isinstance(node, dict):
        return
    head, rest = path[0], path[1:]
    keys = list(node.keys()) if head == "*" else [head]
    for key in keys:
        if key not in node:
            continue
        if rest:
            yield from _path_values(node[key], rest)
        else:
            yield node[key], node


def image_refs(doc: Any, value_paths: list[str]) -> list[ImageRef]:
    """Every image reference one YAML document sets."""
    if not isinstance(doc, dict):
        return []
    found: list[ImageRef] = []
    for entry in doc.get("images") or []:  # kustomize images transformer
        if isinstance(entry, dict) and entry.get("newTag") is not None:
            found.append(
                ImageRef(
                    image=str(entry.get("newName") or entry.get("name") or "") or None,
                    tag=str(entry["newTag"]),
                )
            )
    found.extend(_walk_images({k: v for k, v in doc.items() if k not in ("images",)}))
    values = None
    if doc.get("kind") == "HelmRelease" and isinstance(doc.get("spec"), dict):
        values = doc["spec"].get("values")
    elif "apiVersion" not in doc and "kind" not in doc:
        values = doc  # a plain Helm values file
    if isinstance(values, dict):
        for dotted in value_paths:
            for value, parent in _path_values(values, dotted.split(".")):
                if isinstance(value, str | int | float) and not isinstance(value, bool) and str(value):
                    repo = parent.get("repository") or parent.get("name")
                    found.append(ImageRef(image=str(repo) if isinstance(repo, str) else None, tag=str(value)))
    unique: dict[tuple[str | None, str], ImageRef] = {}
    for ref in found:
        unique.setdefault((ref.image, ref.tag), ref)
    return list(unique.values())


@dataclass
class AppRepo:
    id: str
    path: Path
    _cache: dict[str, str | None] = field(default_factory=dict)

    def resolve_tag(self, tag: str) -> str | None:
        """An image tag -> full app commit: a hex run naming a commit, or an app repo tag."""
        if tag in self._cache:
            return self._cache[tag]
        sha = None
        for candidate in (tag, f"v{tag}"):
            sha = _git(self.path, "rev-parse", "--verify", "-q", f"refs/tags/{candidate}^{{commit}}")
            if sha:
                break
        if not sha:
            for run in _HEX_RUN.findall(tag.lower()):
                sha = _git(self.path, "rev-parse", "--verify", "-q", f"{run}^{{commit}}")
                if sha:
                    break
        self._cache[tag] = sha
        return sha

    def prefetch(self, tags: set[str]) -> None:
        """Resolve many tags as :meth:`resolve_tag` would, with one ``git cat-file --batch-check``."""
        todo = sorted(t for t in tags if t not in self._cache and "\n" not in t)
        if not todo:
            return
        candidates: dict[str, list[str]] = {
            tag: [f"refs/tags/{tag}^{{commit}}", f"refs/tags/v{tag}^{{commit}}",
                  *(f"{run}^{{commit}}" for run in _HEX_RUN.findall(tag.lower()))]
            for tag in todo
        }
        asked = sorted({c for names in candidates.values() for c in names})
        proc = subprocess.run(
            ["git", "-C", str(self.path), "cat-file", "--batch-check=%(objectname) %(objecttype)"],
            input="".join(f"{c}\n" for c in asked), capture_output=True, text=True,
            env={**os.environ, **_GIT_ENV}, check=False,
        )
        lines = proc.stdout.splitlines() if proc.returncode == 0 else []
        if len(lines) != len(asked):
            return  # resolve_tag asks one at a time
        found = {}
        for name, line in zip(asked, lines, strict=True):
            parts = line.split()
            if len(parts) == 2 and parts[1] == "commit":
                found[name] = parts[0]
        for tag, names in candidates.items():
            self._cache[tag] = next((found[n] for n in names if n in found), None)


def _local_path(session: WriteSession, location: str) -> Path | None:
    row = next((r for r in session.repositories()
                if location in (r[1], r[0], r[2]) and r[2] is not None), None)
    candidates = [Path(str(row[2]))] if row else []
    if "://" not in location:
        candidates.append(Path(location).expanduser())
    return next((p for p in candidates if p.exists()), None)


def _service_for(path: str, ref: ImageRef, config: Config) -> list[tuple[Service, str]]:
    """Which service(s) and environment a file path + image belongs to."""
    envs = {e.name for e in config.environments}
    segments = path.split("/")
    env_from_path = next((s for s in reversed(segments) if s in envs), "")
    hits: list[tuple[Service, str]] = []
    for svc in config.services:
        if svc.gitops and svc.gitops.paths:
            for env, prefix in svc.gitops.paths.items():
                if path.startswith(prefix.rstrip("/") + "/"):
                    hits.append((svc, env))
        if hits:
            continue
        name_hit = svc.name in segments
        image_hit = bool(
            svc.image
            and ref.image
            and (ref.image == svc.image or ref.image.rsplit("/", 1)[-1] == svc.image.rsplit("/", 1)[-1])
        )
        if image_hit or (name_hit and not svc.image):
            hits.append((svc, env_from_path))
    # A path-matched service only takes images that are its own (or unnamed ones).
    return [
        (s, e)
        for s, e in hits
        if not (
            s.image
            and ref.image
            and ref.image.rsplit("/", 1)[-1] != s.image.rsplit("/", 1)[-1]
            and ref.image != s.image
        )
    ]


# Image references of one YAML blob, by (blob id, image value paths): a blob's content never
# changes, so a file shared by many commits (or re-read by a later import in this process) is
# parsed once. None: the blob is not YAML.
_BLOB_REFS: dict[tuple[str, tuple[str, ...]], list[ImageRef] | None] = {}
_BLOB_CACHE_MAX = 50_000


@dataclass(frozen=True)
class _Touched:
    sha: str
    committed_at: datetime
    path: str
    blob: str


def _yaml_changes(path: Path, skip: set[str]) -> list[_Touched]:
    """Every YAML file each commit reachable from HEAD added or modified (first parent; merge
    commits contribute nothing, as with pydriller), oldest first, leaving out commits in ``skip``.
    One ``git log`` for the whole history: no per-commit diff."""
    proc = subprocess.run(
        ["git", "-C", str(path), "log", "HEAD", "--no-merges", "--root", "--reverse",
         "--format=%x1e%H%x1f%ct", "--raw", "--no-renames", "--no-abbrev", "-z",
         "--", "*.yaml", "*.yml"],
        capture_output=True, env={**os.environ, **_GIT_ENV}, check=False,
    )
    if proc.returncode != 0:
        return []
    touched: list[_Touched] = []
    for chunk in proc.stdout.split(b"\x1e"):
        if not chunk:
            continue
        tokens = chunk.split(b"\0")
        sha, _, stamp = tokens[0].decode().partition("\x1f")
        if sha in skip:
            continue
        at = datetime.fromtimestamp(int(stamp), UTC)
        for meta, name in zip(tokens[1::2], tokens[2::2], strict=False):
            fields = meta.strip().split()
            if len(fields) < 5 or fields[4] == b"D" or fields[1] == b"160000":
                continue
            file_path = name.decode("utf-8", "surrogateescape")
            if file_path.endswith((".yaml", ".yml")):
                touched.append(_Touched(sha, at, file_path, fields[3].decode()))
    return touched


def _blob_texts(path: Path, blobs: list[str]) -> dict[str, str | None]:
    """Contents of blobs (one ``git cat-file --batch``); None where not UTF-8 text."""
    if not blobs:
        return {}
    proc = subprocess.run(
        ["git", "-C", str(path), "cat-file", "--batch"],
        input="".join(f"{b}\n" for b in blobs).encode(), capture_output=True,
        env={**os.environ, **_GIT_ENV}, check=False,
    )
    out, pos, texts = proc.stdout, 0, {}  # type: bytes, int, dict[str, str | None]
    for blob in blobs:
        eol = out.find(b"\n", pos)
        if eol < 0:
            break
        header = out[pos:eol].split()
        pos = eol + 1
        if len(header) < 3 or header[1] == b"missing":
            texts[blob] = None
            continue
        size = int(header[2])
        data = out[pos:pos + size]
        pos += size + 1
        try:
            texts[blob] = data.decode("utf-8")
        except UnicodeDecodeError:
            texts[blob] = None
    return texts


# libyaml's loader when PyYAML was built with it (the wheels are): the same documents as SafeLoader,
# about ten times faster; the demo's four reconciler imports spent half a second in pure-Python YAML.
_YAML_LOADER: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _refs_by_blob(path: Path, blobs: set[str], value_paths: list[str]) -> dict[str, list[ImageRef] | None]:
    key_paths = tuple(value_paths)
    missing = sorted(b for b in blobs if (b, key_paths) not in _BLOB_REFS)
    if len(_BLOB_REFS) + len(missing) > _BLOB_CACHE_MAX:
        _BLOB_REFS.clear()
        missing = sorted(blobs)
    for blob, text in _blob_texts(path, missing).items():
        refs: list[ImageRef] | None = []
        if text is not None:
            try:
                docs = list(yaml.load_all(text, Loader=_YAML_LOADER))
            except yaml.YAMLError:
                refs = None
            else:
                refs = [ref for doc in docs for ref in image_refs(doc, value_paths)]
        _BLOB_REFS[(blob, key_paths)] = refs
    return {b: _BLOB_REFS.get((b, key_paths), []) for b in blobs}


def scan_config_repo(session: WriteSession, config: Config, repo_id: str, path: Path) -> int:
    """Record each commit's image references per service (idempotent upsert).

    Commits already recorded with every tag resolved are not read again (a later import reads only
    what changed); each YAML blob is parsed once, however many commits carry it."""
    apps: dict[str, list[AppRepo]] = {}
    for svc in config.services:
        repos = []
        for location in svc.repositories:
            local = _local_path(session, location)
            if local is not None:
                from analytics.deployments.from_reconcilers import repo_id_for

                repos.append(AppRepo(id=repo_id_for(session, location), path=local))
        apps[svc.name] = repos
    done = {
        str(r[0]) for r in execute(
            session.con,
            "SELECT commit_sha FROM config_image_changes WHERE config_repo = ? "
            "GROUP BY commit_sha HAVING bool_and(app_sha IS NOT NULL)",
            [repo_id],
        ).fetchall()
    }
    touched = _yaml_changes(path, done)
    refs_of = _refs_by_blob(path, {t.blob for t in touched}, config.mapping.image_value_paths)
    tags = {ref.tag for refs in refs_of.values() if refs for ref in refs}
    for repos in apps.values():
        for app in repos:
            app.prefetch(tags)
    rows: list[dict[str, Any]] = []
    unparsable: list[str] = []
    for change in touched:
        refs = refs_of.get(change.blob)
        if refs is None:
            unparsable.append(f"{repo_id}:{change.sha[:12]}:{change.path}")
            continue
        for ref in refs:
            for svc, env in _service_for(change.path, ref, config):
                app_repo, app_sha = None, None
                for app in apps.get(svc.name, []):
                    app_sha = app.resolve_tag(ref.tag)
                    if app_sha:
                        app_repo = app.id
                        break
                rows.append(
                    {
                        "config_repo": repo_id,
                        "commit_sha": change.sha,
                        "committed_at": change.committed_at,
                        "path": change.path,
                        "service": svc.name,
                        "environment": env,
                        "image": ref.image,
                        "tag": ref.tag,
                        "app_repo": app_repo,
                        "app_sha": app_sha,
                    }
                )
    session.warn_many("unparsable_config_yaml", unparsable)
    unresolved = sorted({f"{repo_id}: {r['tag']}" for r in rows if r["app_sha"] is None})
    session.warn_many("unresolved_image_tag", unresolved)
    if rows:
        session.upsert("config_image_changes", rows)
    return len(rows)


class CommitGraph:
    """A repository's commit graph, read with one ``git rev-list --parents --all HEAD``: ancestry
    and ranges are set operations here instead of one ``git`` process per deployment (or, in the
    demo's incident step, per "which release shipped this commit" question)."""

    def __init__(self, repo: Path) -> None:
        self.repo = repo
        self._parents: dict[str, tuple[str, ...]] | None = None
        self._too_large = False
        self._ancestors: dict[str, frozenset[str]] = {}
        self._resolved: dict[str, str | None] = {}
        self._generation: dict[str, int] | None = None
        self._changed: dict[str, tuple[str, ...]] | None = None

    def _read_parents(self, limit: int | None) -> dict[str, tuple[str, ...]] | None:
        """Every commit's parents (empty when git fails); None when there are more than ``limit``."""
        parents: dict[str, tuple[str, ...]] = {}
        proc = subprocess.Popen(
            ["git", "-C", str(self.repo), "rev-list", "--parents", "--all", "HEAD"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env={**os.environ, **_GIT_ENV},
        )
        assert proc.stdout is not None
        with proc:
            for line in proc.stdout:
                sha, *rest = line.split()
                parents[sha] = tuple(rest)
                if limit is not None and len(parents) > limit:
                    proc.kill()
                    return None
        return parents if proc.returncode == 0 else {}

    @property
    def parents(self) -> dict[str, tuple[str, ...]]:
        if self._parents is None:
            self._parents = self._read_parents(None) or {}
        return self._parents

    def _walkable(self) -> dict[str, tuple[str, ...]] | None:
        """The graph to walk ranges in: None for a history of more than ``_GRAPH_MAX`` commits
        not read yet (git then walks each range, reading only the commits it needs)."""
        if self._parents is None and not self._too_large:
            self._parents = self._read_parents(_GRAPH_MAX)
            self._too_large = self._parents is None
        return self._parents

    def ancestors(self, sha: str) -> frozenset[str]:
        """``git rev-list sha`` as a set (the commit and everything reachable from it)."""
        if sha in self._ancestors:
            return self._ancestors[sha]
        if sha not in self.parents:  # not reachable from a ref, or a history too large: ask git
            out = _git(self.repo, "rev-list", sha)
            found = frozenset(out.split()) if out else frozenset()
        else:
            seen: set[str] = set()
            stack = [sha]
            while stack:
                current = stack.pop()
                if current in seen:
                    continue
                known = self._ancestors.get(current)
                if known is not None:
                    seen |= known
                    continue
                seen.add(current)
                stack.extend(p for p in self.parents.get(current, ()) if p not in seen)
            found = frozenset(seen)
        self._ancestors[sha] = found
        return found

    def _generations(self) -> dict[str, int]:
        """1 + the largest generation of a commit's parents (0 without parents in the graph): every
        commit's generation is larger than each of its ancestors'."""
        if self._generation is None:
            parents, gen = self.parents, {}  # type: dict[str, tuple[str, ...]], dict[str, int]
            for start in parents:
                if start in gen:
                    continue
                stack = [start]
                while stack:
                    sha = stack[-1]
                    todo = [p for p in parents.get(sha, ()) if p in parents and p not in gen]
                    if todo:
                        stack.extend(todo)
                        continue
                    stack.pop()
                    gen[sha] = 1 + max((gen[p] for p in parents.get(sha, ()) if p in gen), default=-1)
            self._generation = gen
        return self._generation

    def range(self, tip: str, exclude: str | None) -> list[str] | None:
        """``git rev-list tip ^exclude``: the commits reachable from ``tip`` and not from
        ``exclude``, walked from both in decreasing generation (git's own order for this walk), so
        only the commits between them are visited. None when either is not in the graph."""
        parents = self._walkable()
        if parents is None or tip not in parents or (exclude is not None and exclude not in parents):
            return None
        gen = self._generations()
        hidden: dict[str, bool] = {}  # commit queued or walked -> reachable from ``exclude``
        heap: list[tuple[int, str]] = []
        shown = 0  # queued commits not (yet) known to be reachable from ``exclude``

        def push(sha: str, from_excluded: bool) -> None:
            nonlocal shown
            before = hidden.get(sha)
            if before is None:
                hidden[sha] = from_excluded
                heapq.heappush(heap, (-gen[sha], sha))
                shown += 0 if from_excluded else 1
            elif from_excluded and not before:
                hidden[sha] = True  # still queued: its generation is below every walked commit's
                shown -= 1

        push(tip, False)
        if exclude is not None:
            push(exclude, True)
        out: list[str] = []
        while shown > 0:
            _, sha = heapq.heappop(heap)
            excluded = hidden[sha]
            if not excluded:
                shown -= 1
                out.append(sha)
            for parent in parents[sha]:
                if parent in parents:
                    push(parent, excluded)
        return out

    def _changed_paths(self) -> dict[str, tuple[str, ...]]:
        """The files each non-merge commit changed against its parent (all of a root commit's)."""
        if self._changed is None:
            self._changed = {}
            proc = subprocess.run(
                ["git", "-C", str(self.repo), "log", "--all", "HEAD", "--no-merges", "--root",
                 "--no-renames", "--name-only", "-z", "--format=%x1e%H"],
                capture_output=True, env={**os.environ, **_GIT_ENV}, check=False,
            )
            if proc.returncode == 0:
                for chunk in proc.stdout.split(b"\x1e"):
                    tokens = chunk.split(b"\0")
                    if tokens[0]:
                        names = (t.lstrip(b"\n") for t in tokens[1:])
                        self._changed[tokens[0].decode()] = tuple(
                            n.decode("utf-8", "surrogateescape") for n in names if n)
        return self._changed

    def path_range(self, tip: str, exclude: str | None, path: str) -> list[str] | None:
        """``git rev-list tip ^exclude -- path`` for a plain directory or file path and a range
        without merge commits (whose history simplification is git's business); None otherwise."""
        plain = path.strip("/")
        if not plain or plain.startswith((".", ":")) or any(c in plain for c in "*?[\\"):
            return None
        commits = self.range(tip, exclude)
        if commits is None or any(len(self.parents[c]) > 1 for c in commits):  # range(): graph read
            return None
        changed = self._changed_paths()
        if any(c not in changed for c in commits):
            return None
        prefix = plain + "/"
        return [c for c in commits if any(f == plain or f.startswith(prefix) for f in changed[c])]

    def resolve(self, revisions: list[str]) -> dict[str, str | None]:
        """Revisions -> full commit shas (one ``git cat-file --batch-check`` for all new ones)."""
        todo = sorted({r for r in revisions if r not in self._resolved})
        todo = [r for r in todo if r and "\n" not in r and not r.startswith("-")]
        if todo:
            proc = subprocess.run(
                ["git", "-C", str(self.repo), "cat-file", "--batch-check=%(objectname) %(objecttype)"],
                input="".join(f"{r}^{{commit}}\n" for r in todo), capture_output=True, text=True,
                env={**os.environ, **_GIT_ENV}, check=False,
            )
            lines = proc.stdout.splitlines() if proc.returncode == 0 else []
            for rev, line in zip(todo, lines, strict=False):
                parts = line.split()
                self._resolved[rev] = parts[0] if len(parts) == 2 and parts[1] == "commit" else None
        return {r: self._resolved.get(r) for r in revisions}

    def has_commit(self, sha: str) -> bool:
        return self.resolve([sha])[sha] is not None


@dataclass
class _Linker:
    session: WriteSession
    config: Config
    scanned: set[str] = field(default_factory=set)
    graphs: dict[str, CommitGraph] = field(default_factory=dict)
    # config repo -> service -> (commit, app repo, app sha, environment), newest first
    image_rows: dict[str, dict[str, list[tuple[Any, ...]]]] = field(default_factory=dict)

    def config_path(self, service: Service) -> Path | None:
        if service.gitops is None:
            return None
        return _local_path(self.session, service.gitops.repository)

    def graph(self, repo: Path) -> CommitGraph:
        if str(repo) not in self.graphs:
            self.graphs[str(repo)] = CommitGraph(repo)
        return self.graphs[str(repo)]

    def ancestry(self, repo: Path, sha: str) -> frozenset[str]:
        return self.graph(repo).ancestors(sha)

    def app_state(
        self, repo_id: str, repo: Path, config_sha: str, service: str, env: str
    ) -> tuple[str, str] | None:
        """(app repo, app sha) the service's image pointed at in config commit ``config_sha``."""
        reachable = self.ancestry(repo, config_sha)
        if not reachable:
            return None
        if repo_id not in self.image_rows:  # one query per config repository, not per deployment
            by_service: dict[str, list[tuple[Any, ...]]] = {}
            for row in execute(
                self.session.con,
                """SELECT service, commit_sha, app_repo, app_sha, environment FROM config_image_changes
                   WHERE config_repo = ? AND app_sha IS NOT NULL
                   ORDER BY committed_at DESC, commit_sha, path""",
                [repo_id],
            ).fetchall():
                by_service.setdefault(str(row[0]), []).append(tuple(row[1:]))
            self.image_rows[repo_id] = by_service
        rows = self.image_rows[repo_id].get(service, [])
        for wanted_env in (env, ""):
            for commit_sha, app_repo, app_sha, row_env in rows:
                if row_env == wanted_env and commit_sha in reachable:
                    return str(app_repo), str(app_sha)
        return None


def link_deployments(session: WriteSession, config: Config, deployment_ids: list[str]) -> int:
    """Fill deployment_changes of config-repo deployments with app commits (and config commits)."""
    linker = _Linker(session, config)
    written = 0
    linked = [s.name for s in config.services if s.gitops is not None]
    if not deployment_ids or not linked:
        return 0
    with rows_relation(session.con, "_link_ids", ["id"], [(i,) for i in deployment_ids],
                       as_objects=True) as ids:
        deps = session.con.execute(
            "SELECT d.id, d.service, d.environment, d.revision, d.repository, d.source, d.source_ref, "
            f"d.deployed_at FROM deployments d JOIN {ids} USING (id) "
            "WHERE d.status = 'success' AND d.revision IS NOT NULL AND d.repository IS NOT NULL "
            "ORDER BY d.deployed_at, d.id"
        ).fetchall()
    deps = [d for d in deps if d[1] in linked]
    relinked: list[str] = []
    all_changes: list[dict[str, Any]] = []
    ranges: list[tuple[str, str, Path, tuple[str, ...]]] = []  # (deployment, repo id, clone, git args)
    # (deployment, service, (app repo, app sha) now, the same before it or None)
    app_states: list[tuple[str, Service, tuple[str, str], tuple[str, str] | None]] = []
    history: dict[tuple[str, str], list[tuple[Any, str]]] = {(d[5], d[6]): [] for d in deps}
    if history:
        for source, source_ref, at, revision in execute(
            session.con,
            "SELECT source, source_ref, deployed_at, revision FROM deployments "
            "WHERE list_contains(?, source || chr(31) || source_ref) "
            "AND status = 'success' AND revision IS NOT NULL ORDER BY deployed_at",
            [[f"{a}\x1f{b}" for a, b in history]],
        ).fetchall():
            history[(source, source_ref)].append((at, revision))
    # Every revision each config repository is asked about, resolved in one git call per repository.
    wanted: dict[str, list[str]] = {}
    for _dep_id, service_name, _env, revision, _repo, source, source_ref, _at in deps:
        service = config.service(service_name)
        repo_path = linker.config_path(service) if service is not None else None
        if repo_path is not None:
            wanted.setdefault(str(repo_path), []).append(revision)
            wanted[str(repo_path)].extend(rev for _, rev in history[(source, source_ref)])
    for path_text, revisions in wanted.items():
        linker.graph(Path(path_text)).resolve(revisions)
    missing: list[str] = []
    for dep_id, service_name, env, revision, config_repo, source, source_ref, deployed_at in deps:
        service = config.service(service_name)
        if service is None:
            continue
        repo_path = linker.config_path(service)
        if repo_path is None:
            continue
        if str(repo_path) not in linker.scanned:
            scan_config_repo(session, config, config_repo, repo_path)
            linker.scanned.add(str(repo_path))
        graph = linker.graph(repo_path)
        config_sha = graph.resolve([revision])[revision]
        if not config_sha:
            missing.append(f"{config_repo}: {revision}")
            continue
        earlier = [rev for at, rev in history[(source, source_ref)] if at < deployed_at]
        prev = (earlier[-1],) if earlier else None
        prev_sha = graph.resolve([prev[0]])[prev[0]] if prev else None
        new_state = linker.app_state(config_repo, repo_path, config_sha, service_name, env)
        old_state = (
            linker.app_state(config_repo, repo_path, prev_sha, service_name, env) if prev_sha else None
        )
        if new_state is not None:
            app_states.append((dep_id, service, new_state, old_state))
        # Config commits under this service's path for this environment are changes too.
        env_path = service.gitops.paths.get(env) if service.gitops else None
        if env_path:
            walked = graph.path_range(config_sha, prev_sha, env_path)
            if walked is not None:
                all_changes.extend({"deployment_id": dep_id, "repo": config_repo, "sha": s} for s in walked)
            else:
                spec = [config_sha] + ([f"^{prev_sha}"] if prev_sha else [])
                ranges.append((dep_id, config_repo, repo_path, ("rev-list", *spec, "--", env_path)))
        relinked.append(dep_id)
    # Which app clone holds each deployed app sha: one `git cat-file --batch-check` per clone for
    # all of them, instead of one per deployment.
    asked: dict[Path, list[str]] = {}
    for _dep_id, service, (_repo_id, app_sha), _old in app_states:
        for loc in service.repositories:
            if (path := _local_path(session, loc)) is not None:
                asked.setdefault(path, []).append(app_sha)
    for path, shas in asked.items():
        linker.graph(path).resolve(shas)
    for dep_id, service, (app_repo_id, app_sha), old_state in app_states:
        app_path = next(
            (
                p
                for loc in service.repositories
                if (p := _local_path(session, loc)) is not None and linker.graph(p).has_commit(app_sha)
            ),
            None,
        )
        if app_path is not None:
            # Walked from both ends in the app repository's graph (never a whole ancestry as a
            # set: an app repository can be far larger than its config repo); git walks it when
            # the graph is too large to hold or does not have the commits.
            before = old_state[1] if old_state and old_state[0] == app_repo_id else None
            walked = linker.graph(app_path).range(app_sha, before)
            if walked is not None:
                all_changes.extend({"deployment_id": dep_id, "repo": app_repo_id, "sha": s} for s in walked)
            else:
                spec = [app_sha] + ([f"^{before}"] if before else [])
                ranges.append((dep_id, app_repo_id, app_path, ("rev-list", *spec)))
    # The ranges are independent git processes: run them side by side (two per deployment, each
    # mostly process start-up, made the demo's reconciler import wait seconds on them one by one).
    with ThreadPoolExecutor(max_workers=_GIT_WORKERS) as pool:
        listings = pool.map(lambda job: _git(job[2], *job[3]) or "", ranges)
        for (dep_id, repo_id, _path, _args), listed in zip(ranges, listings, strict=True):
            all_changes.extend({"deployment_id": dep_id, "repo": repo_id, "sha": s} for s in listed.split())
    session.warn_many("revision_not_in_config_repo", missing)
    # One delete and one load for every deployment linked here: each statement costs a catalog
    # round trip on DuckLake, so per-deployment statements would dominate the import.
    if relinked:
        session.con.execute("DELETE FROM deployment_changes WHERE list_contains(?, deployment_id)",
                            [relinked])
        unique = {(c["deployment_id"], c["repo"], c["sha"]): c for c in all_changes}
        written = session.upsert("deployment_changes", list(unique.values())) if unique else 0
        if written:
            # each change carries its commit's times (migration 1601); a commit not collected
            # yet leaves them NULL, and readers then look the commit up
            session.con.execute(
                "UPDATE deployment_changes dc"
                " SET author_time = c.author_time, committer_time = c.committer_time FROM commits c"
                " WHERE c.repo = dc.repo AND c.sha = dc.sha AND list_contains(?, dc.deployment_id)",
                [relinked])
    return written
