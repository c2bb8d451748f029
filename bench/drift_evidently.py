"""The drift benchmark's peer: evidently's DataDriftPreset on the same reference and current data.

Runs in evidently's own virtualenv (bench/setup-evidently.sh), started by bench/drift.py as a
subprocess. Reads ``reference.npy``, ``current.npy`` and ``columns.json`` from the folder given as
the first argument, times ``Report([DataDriftPreset()]).run`` best of N, and its default per-column
stattests alone (the floor under the preset), and prints one JSON object: seconds per run, the
per-column method / score / verdict and the dataset-level share.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import evidently
import numpy as np
import pandas as pd
from evidently import Report
from evidently.legacy.calculations.stattests import get_stattest
from evidently.presets import DataDriftPreset


def verdicts(snapshot: Any) -> tuple[dict[str, dict[str, Any]], float]:
    columns: dict[str, dict[str, Any]] = {}
    share = float("nan")
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if config["type"].endswith("ValueDrift"):
            method = str(config["method"])
            score = float(metric["value"])
            threshold = float(config["threshold"])
            # p-value tests drift below the threshold, distances at or above it.
            drifted = score < threshold if "p_value" in method else score >= threshold
            columns[config["column"]] = {
                "method": method,
                "score": score,
                "threshold": threshold,
                "drifted": drifted,
            }
        elif config["type"].endswith("DriftedColumnsCount"):
            share = float(metric["value"]["share"])
    return columns, share


def main(folder: Path, repeats: int) -> None:
    names = json.loads((folder / "columns.json").read_text())
    reference = pd.DataFrame(np.load(folder / "reference.npy"), columns=names)
    current = pd.DataFrame(np.load(folder / "current.npy"), columns=names)
    timings = []
    snapshot = None
    for _ in range(repeats):
        started = time.perf_counter()
        snapshot = Report([DataDriftPreset()]).run(current_data=current, reference_data=reference)
        timings.append(time.perf_counter() - started)
    columns, share = verdicts(snapshot)
    # The floor of evidently's cost: only its per-column default tests (the same functions the
    # preset calls), without the report machinery around them.
    stattest_timings = []
    stattest_verdicts: dict[str, bool] = {}
    for _ in range(repeats):
        started = time.perf_counter()
        for name in names:
            test = get_stattest(reference[name], current[name], "num", None)
            result = test(reference[name], current[name], "num", None)
            stattest_verdicts[name] = bool(result.drifted)
        stattest_timings.append(time.perf_counter() - started)
    print(
        json.dumps(
            {
                "evidently": evidently.__version__,
                "seconds": timings,
                "columns": columns,
                "driftShare": share,
                "stattestSeconds": stattest_timings,
                "stattestVerdicts": stattest_verdicts,
            }
        )
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 3)
