#!/usr/bin/env bash
# Installs gitops-dora, builds the demo organisation into demo/gitops-dora.ducklake and serves the dashboard.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export GITOPS_DORA_DB="${GITOPS_DORA_DB:-$PWD/demo/gitops-dora.ducklake}"
.venv/bin/gitops-dora demo
exec .venv/bin/gitops-dora dashboard --host "${HOST:-127.0.0.1}" --port "${PORT:-8501}"
