#!/usr/bin/env bash
# Installs gitops-dora with its test tools from requirements/dev.lock, plus Debian's chromium (browser
# tests) and PostgreSQL server (the tests start their own with initdb/pg_ctl) when missing, then runs
# lint, type checks and the full test suite in three worker processes. Extra arguments go to pytest.
# GITOPS_DORA_TEST_VENV=DIR runs the same checks in another, already built venv (scripts/test-latest.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${GITOPS_DORA_TEST_VENV:-.venv}
if [ "$venv" = .venv ]; then
  bash scripts/bootstrap.sh dev
fi
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=()
  [ "$(id -u)" = 0 ] || sudo=(sudo)  # CI runs as root, with no sudo
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# Python writes bytecode caches (__pycache__, ignored by git) even where the environment turns them off
# (PYTHONDONTWRITEBYTECODE=1 in some images, this machine included): the suite starts hundreds of
# gitops-dora, receiver and dashboard processes, and each recompiled the project modules it imported
# (about 0.05 CPU-s a process).
unset PYTHONDONTWRITEBYTECODE
# On a fresh clone pytest rewrites the assertions of every test module (and Python compiles every
# module) before the first test, in each of the three workers at once: 6.1 CPU-s of collection per
# worker against 2.3 once the caches exist. One collection beside mypy (which runs on one core) writes
# those caches once for the three workers: their first tests start 3.9 s after pytest does instead of
# 7.7 s, though mypy loses part of the second core to it (docs/performance.md, session 13).
"$venv/bin/python" -m pytest --collect-only -q -p no:cacheprovider >/dev/null 2>&1 &
warm=$!
trap 'kill "$warm" 2>/dev/null || true' EXIT  # ruff or mypy failing ends the script, and the collection
"$venv/bin/ruff" check analytics assessment dashboards tests bench
"$venv/bin/mypy"
wait "$warm" || true  # a collection error shows in the run below, with its message
# Three pytest-xdist workers on the CI machine's two cores: many tests wait on a receiver, a
# dashboard, Chromium or a git process, and a third worker fills those waits (a fresh clone, quiet
# machine, one run each: 471 s with two workers, 439 s with three, 459 s with four, whose extra
# interpreter and PostgreSQL server cost more than they fill; docs/performance.md, session 10).
# --dist loadfile keeps each module on one worker, so its module-scoped fixtures are built once (as
# loadscope did; 12 modules alternated, same CPU, 76-82 s wall against 107-114 s with loadscope:
# docs/performance.md, "Test suite, session 7 (helper H4)"), handed out costliest first rather than
# by test count (tests/xdist_order.py, chosen by tests/conftest.py) so the workers end together.
# GITOPS_DORA_TEST_WORKERS=0 (or -n 0) runs serially.
# pyproject.toml's addopts print the 15 slowest tests (--durations=15).
# Each worker's DuckDB (and every gitops-dora it starts) runs one thread: two workers with two threads
# each on two cores cost more CPU, not less time. tests/test_store_threads.py compares one and four.
export GITOPS_DORA_DUCKDB_THREADS=${GITOPS_DORA_DUCKDB_THREADS:-1}
exec "$venv/bin/python" -m pytest -n "${GITOPS_DORA_TEST_WORKERS:-3}" --dist loadfile "$@"
