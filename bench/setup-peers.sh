#!/usr/bin/env bash
# Create the virtualenv of the serving benchmark's peer: MLServer with its scikit-learn runtime.
#
# It lives in .cache/kubeloop/bench/mlserver-venv (git ignores .cache), never in the main
# environment: MLServer pins its own FastAPI/uvicorn/pydantic ranges. The scikit-learn and joblib
# versions are pinned to the main environment's, so both servers unpickle THE SAME model file
# with the same library.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${MLSERVER_VENV:-$root/.cache/kubeloop/bench/mlserver-venv}"
python="${PYTHON:-python3}"

sklearn_version="$("$python" -c 'import sklearn; print(sklearn.__version__)')"
joblib_version="$("$python" -c 'import joblib; print(joblib.__version__)')"

if [[ ! -x "$venv/bin/mlserver" ]]; then
  "$python" -m venv "$venv"
  "$venv/bin/pip" install --quiet --upgrade pip
  "$venv/bin/pip" install --quiet "mlserver>=1.7,<2" "mlserver-sklearn>=1.7,<2" \
    "scikit-learn==$sklearn_version" "joblib==$joblib_version"
fi
"$venv/bin/python" -c 'import mlserver, mlserver_sklearn, sklearn; print("mlserver", mlserver.__version__, "sklearn", sklearn.__version__)'
echo "$venv"
