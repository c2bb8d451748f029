#!/usr/bin/env python3
"""The loop benchmark: how long the closed loop takes on a real cluster, step by step.

    python bench/loop.py [--keep] [--target-seconds 60]

It runs the demo (hack/demo.py: chart, base data, examples/demo/iris-loop.yaml and its short
settings, shifted labelled traffic) in its own namespace, `kubeloop-bench`, then reports two spans
read from the resources' own timestamps (conditions' lastTransitionTime, status times, promotion
times) and the client's clock:

- drift injected → the retrained version answering through the Service: detect, profile (the new
  data version), train, register, roll out, switch;
- the first TrainingJob created → its model answering: profile, start, train, register, roll out,
  switch.

Target (issue 10): drift → new version serving in under 60 s with the demo's settings. Exit code 0
on PASS, 1 on FAIL, 2 when the loop did not complete or did not close (no new data version). The
namespace and release are removed afterwards unless --keep; a cluster is never started or stopped
here (start it first: `hack/devcluster.py up`, or point KUBECONFIG at one with the images loaded).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "hack"))
os.environ.setdefault("KUBELOOP_DEMO_NAMESPACE", "kubeloop-bench")

import demo  # after the namespace is chosen: the demo module reads it at import

TARGET_SECONDS = 60.0


def verdict(seconds: float | None, target: float) -> str:
    """`PASS (41.2 s < 60 s)`, `FAIL (…)`, or `FAIL (not reached)`."""
    if seconds is None:
        return "FAIL (not reached)"
    word = "PASS" if seconds < target else "FAIL"
    return f"{word} ({seconds:.1f} s {'<' if seconds < target else '>='} {target:.0f} s)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--keep", action="store_true", help="leave the namespace and release")
    parser.add_argument("--target-seconds", type=float, default=TARGET_SECONDS)
    args = parser.parse_args(argv)
    if not os.environ.get("KUBECONFIG"):
        # Only a running dev cluster: the benchmark must not start one behind the user's back.
        probe = subprocess.run([*demo.DEVCLUSTER, "status"], capture_output=True)
        if probe.returncode != 0:
            print("bench/loop.py: no cluster (set KUBECONFIG or run hack/devcluster.py up)")
            return 2
    try:
        code, record, _ = demo.run()
    finally:
        if not args.keep:
            demo.down()
    print(f"\nloop benchmark (namespace {demo.NAMESPACE}):")
    if record is None:
        return 2
    for line in record.loop_lines:
        print(f"  {line}")
    print(
        f"  target drift → new version serving < {args.target_seconds:.0f} s: "
        f"{verdict(record.drift_to_serving_seconds, args.target_seconds)}"
    )
    for failure in record.failures:
        print(f"  but the loop did not close: {failure}")
    if code != 0 or record.failures or record.drift_to_serving_seconds is None:
        return 2
    return 0 if record.drift_to_serving_seconds < args.target_seconds else 1


if __name__ == "__main__":
    sys.exit(main())
