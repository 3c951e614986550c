#!/bin/bash
# Every benchmark behind docs/performance.md's "Latest figures" table, one after another, each
# line headed by the time and the load average (figures taken with other work running are not
# comparable). Run from a checkout whose .venv the set-up command made; about 3 minutes once the
# fixtures exist (bench/.work), 10-15 minutes the first time.
set -u
cd "$(dirname "$0")/.."
P=.venv/bin/python
stamp() { echo "=== $1  $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)"; }
for b in "machine.py" "metrics_scale.py --runs 2" "git_ingest.py --runs 2" "store_engines.py --runs 2 --writers 0" \
         "import_scale.py --read --jsonl" "import_deployments_scale.py" "webhook_body_memory.py" \
         "webhook_receiver.py" "cli_startup.py --repeat 5"; do
  stamp "bench/$b"
  # shellcheck disable=SC2086  # the options are meant to split
  $P bench/$b 2>&1 | tail -40
done
stamp "demo data"
work=$(mktemp -d)
/usr/bin/time -f 'demo wall %e s, user %U s, sys %S s, peak %M kB' \
  .venv/bin/gitops-dora --db "$work/d.ducklake" demo --workdir "$work/w" 2>&1 | tail -3
rm -rf "$work"
stamp done
