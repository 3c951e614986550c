"""Step 10: generate the app repositories, the GitOps config repository and the demo config.

Each app repository gets about six months of history shaped like a real team's: feature branches
merged with ``--no-ff``, some commits rebased (committer time later than author time), reverts,
``hotfix/...`` branches, and annotated semver release tags. The config repository
``platform-config`` bumps each release's image tag (``sha-<7 hex>``) in the staging overlay, then
in the production overlay hours or days later; between those bumps the platform team adopts
Flux, SOPS and policies on fixed dates (``analytics/demo/platform_files.py``). Everything comes
from a seeded RNG and fixed dates, so two builds produce the same shas.
"""

from __future__ import annotations

import random
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from analytics.config import load_config
from analytics.demo.context import DemoContext
from analytics.demo.fast_import import FastImport, Person, run_git
from analytics.demo.orgspec import (
    CONFIG_REPO,
    END,
    ENVIRONMENTS,
    RELEASE_BOT,
    RELEASE_TAG_PATTERN,
    SERVICES,
    START,
    ServiceSpec,
)
from analytics.demo.platform_files import PLATFORM_ENGINEER, platform_changes
from analytics.errors import UserError

STORE_FREE = True  # runs while the demo opens the store in a thread (analytics/demo/build.py)
MINUTE, HOUR, DAY = 60, 3600, 86400
MAIN = "refs/heads/main"
_SUBJECTS = (
    "feat({word}): first cut",
    "feat({word}): handle the empty case",
    "refactor({word}): split the handler",
    "test({word}): cover the edge cases",
    "fix({word}): off-by-one in pagination",
    "perf({word}): cache the lookup",
    "docs({word}): explain the flow",
)
# How often things go wrong. Every hotfix release and every deployment shipping a revert is
# rework (docs/metrics.md), so these two set the demo's rework rate: at 30% hotfixes after a
# feature release and 10% reverted branches it was 0.28-0.48 per service, far above what teams
# report; these give roughly 0.1-0.2.
HOTFIX_SHARE = 0.1   # feature releases followed by a hotfix release
REVERT_SHARE = 0.04  # feature branches whose last commit is reverted on main after the merge
_HOTFIX_WORDS = ("null-total", "timeout", "double-charge", "stale-cache", "crash-on-empty", "wrong-tz")


def iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


@dataclass
class Release:
    tag: str
    mark: int
    tagged_at: int
    kind: str  # initial | feature | hotfix
    branch: str | None = None
    sha: str = ""


@dataclass
class AppHistory:
    """What was generated for one service, for the manifest and the config repository."""

    spec: ServiceSpec
    releases: list[Release] = field(default_factory=list)
    reverts: list[dict[str, str]] = field(default_factory=list)
    commits: int = 0


class _AppWriter:
    def __init__(self, fi: FastImport, spec: ServiceSpec) -> None:
        self.fi, self.spec = fi, spec
        self.rng = random.Random(spec.seed)
        self.history = AppHistory(spec)
        self.version = (0, 1, 0)
        self.tip = 0

    def dev(self) -> Person:
        return self.rng.choice(self.spec.developers)

    def commit(self, ref: str, message: str, **kwargs: Any) -> int:
        self.history.commits += 1
        return self.fi.commit(ref, message, **kwargs)

    def release(self, mark: int, at: int, kind: str, branch: str | None = None) -> None:
        tag = "v{}.{}.{}".format(*self.version)
        self.fi.annotated_tag(tag, mark, tagger=self.dev(), at=at, message=f"Release {tag}\n")
        self.history.releases.append(Release(tag, mark, at, kind, branch))

    def feature(self, number: int, start: int) -> int:
        """A feature branch of 1-4 commits merged with --no-ff; returns the merge time."""
        rng = self.rng
        word = rng.choice(self.spec.feature_words)
        slug = f"{word}-{number}"
        path = f"src/features/{word.replace('-', '_')}_{number}.py"
        author = self.dev()
        content, at, parent = "", start, self.tip
        commits: list[tuple[int, str, str | None, int]] = []
        for step in range(rng.randint(1, 4)):
            at += rng.randint(HOUR // 2, 20 * HOUR)
            previous = content or None
            function = f"{word.replace('-', '_')}_{number}_{step}"
            content += f"def {function}() -> int:\n    return {rng.randint(1, 999)}\n"
            subject = rng.choice(_SUBJECTS).format(word=word)
            committed = at if rng.random() < 0.8 else at + rng.randint(HOUR, 30 * HOUR)  # rebased later
            parent = self.commit(f"refs/heads/feature/{slug}", subject + "\n", author=author, authored_at=at,
                                 committed_at=committed, parent=parent, files={path: content})
            commits.append((parent, subject, previous, committed))
        merge_at = max(c[3] for c in commits) + rng.randint(HOUR, 30 * HOUR)
        merger = self.dev()
        self.tip = self.commit(MAIN, f"Merge branch 'feature/{slug}'\n", author=merger, authored_at=merge_at,
                               parent=self.tip, merge=parent, files={path: content})
        if rng.random() < REVERT_SHARE:  # the last commit broke something: revert it on main
            mark, subject, previous, _ = commits[-1]
            reverted = self.fi.sha(mark)
            revert_at = merge_at + rng.randint(2 * HOUR, 30 * HOUR)
            self.tip = self.commit(
                MAIN, f'Revert "{subject}"\n\nThis reverts commit {reverted}.\n', author=merger,
                authored_at=revert_at, parent=self.tip, files={path: previous},
            )
            self.history.reverts.append({"reverted_sha": reverted, "sha": self.fi.sha(self.tip),
                                         "at": iso(revert_at)})
            return revert_at
        return merge_at

    def hotfix(self, number: int, after: int) -> int:
        """A hotfix/... branch off the release just tagged, merged and tagged as a patch release."""
        rng = self.rng
        word = rng.choice(_HOTFIX_WORDS)
        branch = f"hotfix/{word}-{number}"
        path = f"src/fixes/{word.replace('-', '_')}_{number}.py"
        content = f"FIXED = {rng.randint(1, 999)}\n"
        author = self.dev()
        fix_at = after + rng.randint(6 * HOUR, 40 * HOUR)
        fix = self.commit(f"refs/heads/{branch}", f"fix: {word.replace('-', ' ')}\n", author=author,
                          authored_at=fix_at, parent=self.tip, files={path: content})
        merge_at = fix_at + rng.randint(HOUR // 2, 2 * HOUR)
        self.tip = self.commit(MAIN, f"Merge branch '{branch}'\n", author=author, authored_at=merge_at,
                               parent=self.tip, merge=fix, files={path: content})
        major, minor, patch = self.version
        self.version = (major, minor, patch + 1)
        tag_at = merge_at + rng.randint(15 * MINUTE, HOUR)
        self.release(self.tip, tag_at, "hotfix", branch)
        return tag_at

    def run(self) -> AppHistory:
        rng, spec = self.rng, self.spec
        t0 = _epoch(START) + 9 * HOUR + rng.randint(0, HOUR)
        self.tip = self.commit(
            MAIN, "Initial commit\n", author=self.dev(), authored_at=t0,
            files={"README.md": f"# {spec.name}\n\nOwned by team {spec.team}.\n",
                   "src/app.py": "def main() -> None:\n    pass\n"},
        )
        self.release(self.tip, t0 + HOUR, "initial")
        now = t0 + DAY
        next_release = now + rng.randint(*spec.release_days) * DAY
        last_work_day = _epoch(END) - 5 * DAY
        features = hotfixes = 0
        while now < last_work_day:
            day = datetime.fromtimestamp(now, UTC)
            if day.weekday() >= 5:  # nobody merges at the weekend
                midnight = _epoch(datetime(day.year, day.month, day.day, tzinfo=UTC))
                monday = midnight + (7 - day.weekday()) * DAY
                now = monday + 8 * HOUR + rng.randint(0, 3 * HOUR)
                continue
            features += 1
            now = self.feature(features, now)
            if now >= next_release:
                major, minor, _ = self.version
                self.version = (major, minor + 1, 0)
                now += rng.randint(HOUR, 4 * HOUR)
                self.release(self.tip, now, "feature")
                next_release = now + rng.randint(*spec.release_days) * DAY
                if rng.random() < HOTFIX_SHARE:
                    hotfixes += 1
                    now = self.hotfix(hotfixes, now)
            now += rng.randint(2 * HOUR, 36 * HOUR)
        for release in self.history.releases:
            release.sha = self.fi.sha(release.mark)
        return self.history


def _deployment_yaml(spec: ServiceSpec) -> str:
    return (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n"
        f"  name: {spec.name}\n  labels:\n    app.kubernetes.io/name: {spec.name}\n"
        f"    app.kubernetes.io/part-of: {spec.team}\n"
        "spec:\n  replicas: 2\n  selector:\n    matchLabels:\n"
        f"      app.kubernetes.io/name: {spec.name}\n"
        "  template:\n    metadata:\n      labels:\n"
        f"        app.kubernetes.io/name: {spec.name}\n"
        "    spec:\n      containers:\n"
        f"        - name: {spec.name}\n          image: {spec.image}:latest\n"
        "          ports:\n            - containerPort: 8080\n"
    )


def _overlay_yaml(spec: ServiceSpec, env: str, image_tag: str) -> str:
    return (
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        f"namespace: {spec.name}-{env}\nresources:\n  - ../../base\n"
        f"images:\n  - name: {spec.image}\n    newTag: {image_tag}\n"
    )


def overlay_path(service: str, env: str) -> str:
    return f"apps/{service}/overlays/{env}"


def _promotions(history: AppHistory, rng: random.Random) -> list[tuple[int, str, str, Release]]:
    """(time, service, environment, release): staging first, production hours or days later."""
    events: list[tuple[int, str, str, Release]] = []
    last_staging = last_production = 0
    cutoff = _epoch(END) - HOUR
    for release in history.releases[1:]:
        hotfix = release.kind == "hotfix"
        staging = max(release.tagged_at + rng.randint(10 * MINUTE, HOUR if hotfix else 3 * HOUR),
                      last_staging + 10 * MINUTE)
        soak = rng.randint(HOUR, 3 * HOUR) if hotfix else rng.randint(4 * HOUR, 72 * HOUR)
        production = max(staging + soak, last_production + 10 * MINUTE)
        if staging < cutoff:
            events.append((staging, history.spec.name, "staging", release))
            last_staging = staging
        if production < cutoff:
            events.append((production, history.spec.name, "production", release))
            last_production = production
    return events


def _write_config_repo(path: Path, histories: list[AppHistory]) -> dict[str, list[dict[str, str]]]:
    rng = random.Random(4404)
    commits: dict[str, list[dict[str, str]]] = {env: [] for env, _ in ENVIRONMENTS}
    with FastImport(path) as fi:
        files: dict[str, str | None] = {}
        init_at = _epoch(START) + 14 * HOUR
        for history in histories:
            spec, first = history.spec, history.releases[0]
            files[f"apps/{spec.name}/base/deployment.yaml"] = _deployment_yaml(spec)
            files[f"apps/{spec.name}/base/kustomization.yaml"] = (
                "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n"
                "  - deployment.yaml\n"
            )
            for env, _ in ENVIRONMENTS:
                files[f"{overlay_path(spec.name, env)}/kustomization.yaml"] = _overlay_yaml(
                    spec, env, f"sha-{first.sha[:7]}")
        tip = fi.commit(MAIN, "Bootstrap platform config for all services\n", author=RELEASE_BOT,
                        authored_at=init_at, files=files)
        init_sha = fi.sha(tip)
        for history in histories:
            first = history.releases[0]
            for env, _ in ENVIRONMENTS:
                commits[env].append(_config_entry(history.spec, first, init_sha, init_at))
        events = sorted((e for h in histories for e in _promotions(h, rng)), key=lambda e: (e[0], e[1], e[2]))
        changes = platform_changes()
        last = init_at
        for at, service, env, release in events:
            while changes and _epoch(changes[0].at) <= at:
                change = changes.pop(0)
                last = max(_epoch(change.at), last + MINUTE)
                tip = fi.commit(MAIN, change.message, author=PLATFORM_ENGINEER, authored_at=last, parent=tip,
                                files=dict(change.files))
            at = max(at, last + MINUTE)
            last = at
            spec = next(h.spec for h in histories if h.spec.name == service)
            image_tag = f"sha-{release.sha[:7]}"
            tip = fi.commit(
                MAIN, f"deploy({service}): {release.tag} to {env}\n\nimage {spec.image}:{image_tag}\n",
                author=RELEASE_BOT, authored_at=at, parent=tip,
                files={
                    f"{overlay_path(service, env)}/kustomization.yaml": _overlay_yaml(spec, env, image_tag)
                },
            )
            commits[env].append(_config_entry(spec, release, fi.sha(tip), at))
        if changes:
            raise UserError(f"demo: platform change of {changes[0].at:%Y-%m-%d} is after the last deployment")
    return commits


def _config_entry(spec: ServiceSpec, release: Release, commit: str, at: int) -> dict[str, str]:
    return {"service": spec.name, "tag": release.tag, "app_sha": release.sha,
            "image_tag": f"sha-{release.sha[:7]}", "commit": commit, "committed_at": iso(at)}


def _refs(path: Path) -> str:
    return run_git(path, "for-each-ref", "--format=%(objectname) %(refname)")


def _install(new: Path, target: Path, owned: bool) -> None:
    """Keep an identical existing repository (so re-runs change nothing), else replace it."""
    if target.exists():
        if not owned:
            raise UserError(f"demo: {target} exists and was not generated by the demo; use another --workdir")
        if (target / ".git").exists() and _refs(target) == _refs(new):
            shutil.rmtree(new)
            return
        shutil.rmtree(target)
    new.rename(target)


def _demo_config(demo: DemoContext) -> dict[str, Any]:
    config_repo = str(demo.repo_path(CONFIG_REPO))
    return {
        "services": [
            {
                "name": spec.name,
                "team": spec.team,
                "repositories": [str(demo.repo_path(spec.name))],
                "image": spec.image,
                "gitops": {
                    "repository": config_repo,
                    "paths": {env: overlay_path(spec.name, env) for env, _ in ENVIRONMENTS},
                },
            }
            for spec in SERVICES
        ],
        "environments": [{"name": env, "production": prod} for env, prod in ENVIRONMENTS],
        "deployments": {"git": {"tags": RELEASE_TAG_PATTERN, "environment": "production"},
                        "lead_time_start": "author"},
    }


def run(demo: DemoContext) -> None:
    owned = demo.manifest_path.exists()
    demo.repos_dir.mkdir(parents=True, exist_ok=True)
    histories: list[AppHistory] = []
    staging_dir = demo.repos_dir / ".generating"
    if staging_dir.exists():
        shutil.rmtree(staging_dir)
    staging_dir.mkdir()
    for spec in SERVICES:
        with FastImport(staging_dir / spec.name) as fi:
            histories.append(_AppWriter(fi, spec).run())
    config_commits = _write_config_repo(staging_dir / CONFIG_REPO, histories)
    for name in [*(s.name for s in SERVICES), CONFIG_REPO]:
        _install(staging_dir / name, demo.repo_path(name), owned or not demo.repo_path(name).exists())
    staging_dir.rmdir()

    header = "# The demo organisation's config, written by `gitops-dora demo`.\n"
    demo.config_path.write_text(header + yaml.safe_dump(_demo_config(demo), sort_keys=False))
    load_config(demo.config_path)  # what the demo writes must validate like a user's file

    demo.manifest = {
        "version": 1,
        "start": iso(_epoch(START)),
        "end": iso(_epoch(END)),
        "release_tag_pattern": RELEASE_TAG_PATTERN,
        "environments": [{"name": env, "production": prod} for env, prod in ENVIRONMENTS],
        "config_repo": {"name": CONFIG_REPO, "path": f"repos/{CONFIG_REPO}"},
        "services": [
            {"name": h.spec.name, "team": h.spec.team, "image": h.spec.image, "repo": f"repos/{h.spec.name}",
             "commits": h.commits,
             "config_paths": {env: overlay_path(h.spec.name, env) for env, _ in ENVIRONMENTS}}
            for h in histories
        ],
        "releases": {
            h.spec.name: [
                {"tag": r.tag, "sha": r.sha, "tagged_at": iso(r.tagged_at), "kind": r.kind,
                 **({"branch": r.branch} if r.branch else {})}
                for r in h.releases
            ]
            for h in histories
        },
        "reverts": {h.spec.name: h.reverts for h in histories},
        "config_commits": config_commits,
    }
    demo.save_manifest()
    total = sum(h.commits for h in histories)
    demo.say(f"generated {len(histories)} app repositories ({total} commits) and {CONFIG_REPO} under "
             f"{demo.repos_dir}")
