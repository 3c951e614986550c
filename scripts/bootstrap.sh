#!/usr/bin/env bash
# Creates .venv (Python 3.11+) and installs the project into it from a lock file: exact versions,
# hash-checked. Usage: scripts/bootstrap.sh [extras]  ("" = requirements/runtime.lock, "dev" = dev.lock)
# A re-run is a no-op when the lock installed last (its hash is kept in .venv/.lock-stamp) is unchanged
# and pins everything the requested lock pins (the dev set includes the runtime set).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
"$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "gitops-dora needs Python 3.11 or later")'
case "${1:-}" in
  "") lock=requirements/runtime.lock ;;
  dev) lock=requirements/dev.lock ;;
  *) echo "usage: scripts/bootstrap.sh [dev]" >&2; exit 2 ;;
esac
[ -x .venv/bin/python ] || "$PY" -m venv .venv
stamp=.venv/.lock-stamp
installed() {  # exit 0 when the stamp's lock is unchanged and covers every pin of $lock
  .venv/bin/python - "$stamp" "$lock" <<'PY'
import hashlib, pathlib, re, sys
stamp, wanted = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
try:
    digest, done = stamp.read_text().split()
    data = pathlib.Path(done).read_bytes()
except (OSError, ValueError):
    sys.exit(1)
pins = lambda text: set(re.findall(r"^\S+==\S+", text, re.M))
ok = hashlib.sha256(data).hexdigest() == digest and pins(wanted.read_text()) <= pins(data.decode())
sys.exit(0 if ok else 1)
PY
}
if [ -x .venv/bin/gitops-dora ] && installed; then
  exit 0
fi
rm -f "$stamp"
pip=(.venv/bin/python -m pip -q --disable-pip-version-check)
"${pip[@]}" install --require-hashes -r "$lock"
# The build backend (setuptools) is in the lock too, so nothing unlocked is fetched for this step.
"${pip[@]}" install --no-deps --no-build-isolation -e .
# The venv holds exactly what the lock pins: a package left over from an earlier install (or pulled in
# by hand) would let the code import something a fresh clone does not have, and the suite pass here
# while it fails in CI (it happened with httptools).
extra=$(.venv/bin/python - "$lock" <<'PY'
import importlib.metadata as md, pathlib, re, sys
norm = lambda name: re.sub(r"[-_.]+", "-", name).lower()
pinned = {norm(m) for m in re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", pathlib.Path(sys.argv[1]).read_text(), re.M)}
keep = pinned | {"pip", "gitops-dora"}
print(" ".join(sorted({norm(d.metadata["Name"]) for d in md.distributions()} - keep)))
PY
)
if [ -n "$extra" ]; then
  echo "bootstrap: removing packages the lock does not pin: $extra" >&2
  # shellcheck disable=SC2086
  "${pip[@]}" uninstall -y $extra
fi
digest=$(.venv/bin/python -c 'import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest())' "$lock")
echo "$digest $lock" > "$stamp"
