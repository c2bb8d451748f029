"""Each package imports only what its image installs.

The operator image installs `kubeloop[operator]` (no scikit-learn, SciPy, pandas, NumPy) and the
runtime image `kubeloop[runtime,s3]` (no kopf): a module that imported one of those at import time
would crash its image on start. Every module of the package is imported in a fresh interpreter
(whatever modules exist when the test runs, so new ones are covered without editing this file) and
the interpreter's `sys.modules` is inspected afterwards.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# Imports every module of a package except `__main__` modules (importing one runs the program),
# then prints the top-level names in sys.modules.
IMPORT_ALL = """
import importlib, json, pkgutil, sys
package = importlib.import_module(sys.argv[1])
for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
    if info.name.rsplit(".", 1)[-1] != "__main__":
        importlib.import_module(info.name)
imported = sorted({name.split(".")[0] for name in sys.modules})
print(json.dumps(imported))
"""

RUNTIME_ONLY = ("sklearn", "scipy", "pandas", "numpy", "pyarrow", "joblib", "fastapi", "uvicorn")
OPERATOR_ONLY = ("kopf", "kubeloop")


def imported_after_importing_every_module(package: str) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_ALL, package],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert result.returncode == 0, f"importing {package}'s modules failed:\n{result.stderr}"
    return set(json.loads(result.stdout.splitlines()[-1]))


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [("kubeloop", RUNTIME_ONLY), ("kubeloop_runtime", OPERATOR_ONLY)],
)
def test_package_never_imports_the_other_images_dependencies(
    package: str, forbidden: tuple[str, ...]
) -> None:
    imported = imported_after_importing_every_module(package)
    assert package in imported
    leaked = sorted(imported & set(forbidden))
    assert not leaked, f"importing {package} imports {leaked}, which its image does not install"
