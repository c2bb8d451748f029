#!/usr/bin/env bash
# Create the virtualenv of the drift benchmark's peer: evidently (Apache-2.0).
#
# It lives in .cache/kubeloop/bench/evidently-venv (git ignores .cache), never in the main
# environment: evidently pins its own pandas/numpy/pydantic ranges. Prints the venv path last.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${EVIDENTLY_VENV:-$root/.cache/kubeloop/bench/evidently-venv}"
python="${PYTHON:-python3}"

if [[ ! -x "$venv/bin/python" ]] || ! "$venv/bin/python" -c 'import evidently' 2>/dev/null; then
  "$python" -m venv "$venv"
  "$venv/bin/pip" install --quiet --upgrade pip
  # evidently 0.7 imports pandas internals that pandas 3 removed.
  "$venv/bin/pip" install --quiet "evidently>=0.7,<0.8" "pandas>=2.2,<3"
fi
"$venv/bin/python" -c 'import evidently, pandas, numpy, scipy; print("evidently", evidently.__version__, "pandas", pandas.__version__, "scipy", scipy.__version__)' >&2
echo "$venv"
