#!/usr/bin/env bash
# Installs gitops-dora with its test tools (and Debian's chromium for the browser tests), then runs
# lint, type checks and the full test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh dev
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  fi
fi
.venv/bin/ruff check analytics assessment dashboards tests bench
.venv/bin/mypy
exec .venv/bin/python -m pytest "$@"
