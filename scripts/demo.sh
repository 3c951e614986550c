#!/usr/bin/env bash
# Installs gitops-dora, builds the demo organisation into demo/gitops-dora.ducklake and serves the dashboard.
# Says how long each step took (install, demo data, server start) on stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
now() { date +%s.%N; }
took() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
t0=$(now)
t=$(now)
bash scripts/bootstrap.sh
echo "demo.sh: install took $(took "$t") s" >&2
export GITOPS_DORA_DB="${GITOPS_DORA_DB:-$PWD/demo/gitops-dora.ducklake}"
t=$(now)
.venv/bin/gitops-dora demo --workdir "$(dirname "$GITOPS_DORA_DB")"  # repositories beside the database, not demo/demo
echo "demo.sh: demo data took $(took "$t") s" >&2
HOST="${HOST:-127.0.0.1}"
PORT="${PORT:-8501}"
t=$(now)
.venv/bin/gitops-dora dashboard --host "$HOST" --port "$PORT" &
server=$!
trap 'kill "$server" 2>/dev/null || true' INT TERM
# The server has started when it answers; report that once, then keep serving in the foreground.
for _ in $(seq 1 600); do
  if ! kill -0 "$server" 2>/dev/null; then
    wait "$server"
    exit $?
  fi
  if curl -fsS -o /dev/null "http://$HOST:$PORT/" 2>/dev/null \
     || python3 -c "import socket,sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), 1)" "$HOST" "$PORT" 2>/dev/null; then
    echo "demo.sh: server start took $(took "$t") s (total $(took "$t0") s): http://$HOST:$PORT/" >&2
    break
  fi
  sleep 0.2
done
wait "$server"
