#!/usr/bin/env bash
# Early warning for the next breaking release: builds .venv-latest with the newest versions that
# pyproject.toml's ranges allow (no lock), lists where they differ from requirements/dev.lock, then
# runs scripts/test.sh's lint, type and test sequence in it. Extra arguments go to pytest.
# The locked .venv is not touched.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
"$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "gitops-dora needs Python 3.11 or later")'
venv=.venv-latest
if [ ! -x "$venv/bin/python" ]; then
  "$PY" -m venv "$venv"
  echo '*' > "$venv/.gitignore"  # keep git status clean (Python 3.13's venv does this itself)
fi
pip=("$venv/bin/python" -m pip -q --disable-pip-version-check)
"${pip[@]}" install --upgrade pip setuptools  # setuptools: the build backend the lock pins too
"${pip[@]}" install --upgrade --upgrade-strategy eager -e '.[dev]'
"$venv/bin/python" - requirements/dev.lock <<'PY'
import re, sys
from importlib.metadata import distributions
norm = lambda name: re.sub(r"[-_.]+", "-", name).lower()
locked = dict(re.findall(r"^([A-Za-z0-9._-]+)==([^\s;\\]+)", open(sys.argv[1]).read(), re.M))
locked = {norm(name): version for name, version in locked.items()}
newer = sorted(f"{norm(d.metadata['Name'])} {locked[norm(d.metadata['Name'])]} -> {d.version}"
               for d in distributions() if locked.get(norm(d.metadata["Name"]), d.version) != d.version)
print("versions beyond the lock: " + (", ".join(newer) if newer else "none"))
PY
GITOPS_DORA_TEST_VENV="$venv" exec bash scripts/test.sh "$@"
