"""Benchmark: `assess` on a generated config repository of 10k YAML files.

Prints seconds and ratios against baselines measured in the same run on the same repository:
  * raw read: `git ls-tree -r` + `git cat-file --batch` of every file (the floor for reading a revision);
  * raw read + yaml parse: the same bytes through PyYAML's C loader (what any YAML-aware scan must pay).
Then the monthly history of 6 months where 50 files change each month, against one point assessment,
to show that unchanged blobs are not parsed again.

Run:  .venv/bin/python bench/assess_scan.py [--files 10000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from assessment.runner import AssessRequest, run_assessment  # noqa: E402

T = TypeVar("T")

ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "b@example.com",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "b@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
}

DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: svc-{i}
  labels:
    app: svc-{i}
spec:
  replicas: {r}
  selector:
    matchLabels:
      app: svc-{i}
  template:
    metadata:
      labels:
        app: svc-{i}
    spec:
      containers:
        - name: app
          image: ghcr.io/acme/svc-{i}:1.{r}.0
          resources:
            requests:
              cpu: 100m
              memory: 128Mi
---
apiVersion: v1
kind: Service
metadata:
  name: svc-{i}
spec:
  selector:
    app: svc-{i}
  ports:
    - port: 80
      targetPort: 8080
"""
KUSTOMIZATION = (
    "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n"
    "  - ../../../base/svc-{i}\npatches:\n  - path: patch.yaml\n"
)
PATCH = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: svc-{i}\nspec:\n  replicas: {r}\n"
FLUX = """apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: svc-{i}
  namespace: flux-system
spec:
  interval: 10m
  path: ./apps/{env}/svc-{i}
  prune: true
  sourceRef:
    kind: GitRepository
    name: flux-system
"""


def git(repo: Path, *args: str, input_bytes: bytes | None = None, at: str | None = None) -> bytes:
    env = {**ENV, "GIT_AUTHOR_DATE": at, "GIT_COMMITTER_DATE": at} if at else ENV
    return subprocess.run(
        ["git", "-C", str(repo), *args], env=env, input=input_bytes, check=True, capture_output=True
    ).stdout


def generate(repo: Path, files: int) -> None:
    """files/10 services: a base (Deployment+Service), 3 env overlays (kustomization+patch), 3 Flux files."""
    git(repo.parent, "init", "-q", "-b", "main", str(repo))
    services = files // 10
    for i in range(services):
        (repo / f"base/svc-{i}").mkdir(parents=True, exist_ok=True)
        (repo / f"base/svc-{i}/deployment.yaml").write_text(DEPLOYMENT.format(i=i, r=2))
        for env in ("dev", "staging", "prod"):
            d = repo / f"apps/{env}/svc-{i}"
            d.mkdir(parents=True, exist_ok=True)
            (d / "kustomization.yaml").write_text(KUSTOMIZATION.format(i=i))
            (d / "patch.yaml").write_text(PATCH.format(i=i, r=3))
            c = repo / f"clusters/{env}"
            c.mkdir(parents=True, exist_ok=True)
            (c / f"svc-{i}.yaml").write_text(FLUX.format(i=i, env=env))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "generated", at="2024-01-15T10:00:00Z")


def raw_read(repo: Path) -> list[bytes]:
    listing = git(repo, "ls-tree", "-r", "-z", "HEAD")
    shas = [rec.split(b"\t")[0].split()[2] for rec in listing.split(b"\0") if rec]
    out = git(repo, "cat-file", "--batch", input_bytes=b"\n".join(shas) + b"\n")
    blobs, pos = [], 0
    while pos < len(out):
        nl = out.index(b"\n", pos)
        size = int(out[pos:nl].split()[2])
        blobs.append(out[nl + 1 : nl + 1 + size])
        pos = nl + 1 + size + 1
    return blobs


def timed(fn: Callable[[], T]) -> tuple[float, T]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="assess-bench-") as tmp:
        repo = Path(tmp) / "config"
        t_gen, _ = timed(lambda: generate(repo, args.files))
        count = len(git(repo, "ls-files").splitlines())
        print(f"generated {count} YAML files in {t_gen:.1f}s")
        db = Path(tmp) / "bench.duckdb"
        t_raw, blobs = timed(lambda: raw_read(repo))
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        t_parse, _ = timed(lambda: [list(yaml.load_all(b, Loader=loader)) for b in raw_read(repo)])
        t_rev, out = timed(lambda: run_assessment(AssessRequest(specs=[str(repo)], db_path=db, at="HEAD")))
        t_wt, _ = timed(lambda: run_assessment(AssessRequest(specs=[str(repo)], db_path=db)))
        print(f"level {out.result['level']} ({len(blobs)} files)")
        print(f"baseline raw read (ls-tree + cat-file --batch): {t_raw:.2f}s")
        print(f"baseline raw read + yaml C-loader parse:        {t_parse:.2f}s")
        print(
            f"assess --at HEAD:     {t_rev:.2f}s  = {t_rev / t_raw:.1f}x raw read, "
            f"{t_rev / t_parse:.2f}x read+parse"
        )
        print(
            f"assess (working tree): {t_wt:.2f}s  = {t_wt / t_raw:.1f}x raw read, "
            f"{t_wt / t_parse:.2f}x read+parse"
        )
        # History: 6 monthly commits, 50 changed files each.
        for month in range(2, 8):
            for i in range(50):
                (repo / f"apps/prod/svc-{i}/patch.yaml").write_text(PATCH.format(i=i, r=month))
            git(repo, "commit", "-q", "-am", f"month {month}", at=f"2024-{month:02d}-15T10:00:00Z")
        t_hist, hist = timed(
            lambda: run_assessment(AssessRequest(specs=[str(repo)], db_path=db, at="HEAD", history="monthly"))
        )
        points = len(hist.history)
        print(
            f"assess --history monthly ({points} months + 1 point): {t_hist:.2f}s  = "
            f"{t_hist / t_rev:.2f}x one point assessment ({t_hist / (points + 1) / t_rev:.2f}x per state)"
        )


if __name__ == "__main__":
    main()
