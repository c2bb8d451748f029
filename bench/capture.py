"""Capture benchmark: the model server's throughput with data capture on against off.

Same models, bodies, load generator and round-robin method as ``bench/serving.py`` (whose helpers
it reuses): a 100-tree random forest and a logistic regression on breast_cancer (30 features),
Open Inference Protocol v2 requests of 1 and of 100 rows, wrk with one thread and 16
connections. Two ``python -m kubeloop_runtime.serve`` processes serve the same model.joblib side
by side and take turns:

- kubeloop          capture off (``KUBELOOP_CAPTURE_URI`` unset)
- kubeloop+capture  capture on: every row (sample rate 1) written as Parquet parts under
                    ``.cache/kubeloop/bench/capture/parts/``, flushed every second, so the writer
                    thread works during the measurement rather than after it

Target (issue 10): capture on >= 0.9x capture off, per model and request size. After the runs it
reads the capture server's /metrics and reports what it wrote and dropped.

Usage: ``python bench/capture.py`` (about 2 minutes) or ``--quick`` (about 1 minute).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import sys
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families
from serving import (
    CACHE,
    MODELS,
    ROW_COUNTS,
    WRK_SCRIPT,
    Measurement,
    free_port,
    measure_round_robin,
    prepare_models,
    running,
    write_bodies,
)

OFF = "kubeloop"
ON = "kubeloop+capture"
TARGET = 0.9


def capture_counters(url: str) -> dict[str, float]:
    counters: dict[str, float] = {}
    for family in text_string_to_metric_families(httpx.get(f"{url}/metrics").text):
        for sample in family.samples:
            if sample.name.startswith("kubeloop_capture_"):
                key = sample.name + "".join(f"{{{v}}}" for v in sample.labels.values())
                counters[key] = sample.value
    return counters


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="short runs (about 1 minute)")
    parser.add_argument("--duration", type=int, help="seconds per round (default 3)")
    parser.add_argument("--rounds", type=int, help="rounds per server, best kept (default 3)")
    parser.add_argument("--warmup", type=int, default=1, help="seconds of warm-up per run")
    parser.add_argument("--connections", type=int, default=16, help="concurrent connections")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--json", type=Path, help="also write the measurements here")
    args = parser.parse_args(argv)
    args.duration = args.duration or (2 if args.quick else 3)
    args.rounds = args.rounds or (2 if args.quick else 3)
    if shutil.which("wrk") is None:
        print("wrk is missing: apt-get install -y wrk", file=sys.stderr)
        return 2
    started = time.monotonic()
    root = CACHE / "serving"
    root.mkdir(parents=True, exist_ok=True)
    parts = CACHE / "capture" / "parts"
    shutil.rmtree(parts, ignore_errors=True)
    folders, features = prepare_models(root)
    bodies = write_bodies(root, features)
    script = root / "post.lua"
    script.write_text(WRK_SCRIPT)
    print(
        f"capture benchmark: wrk 1 thread, {args.connections} connections; the two servers take "
        f"turns, {args.rounds} rounds of {args.duration} s (best kept); 2 shared cores, so "
        "numbers are indicative"
    )
    results: list[Measurement] = []
    counters: dict[str, dict[str, float]] = {}
    for model in args.models:
        targets: dict[str, str] = {}
        with contextlib.ExitStack() as stack:
            for server, extra in (
                (OFF, {}),
                (ON, {"KUBELOOP_CAPTURE_URI": f"file://{parts / model}/",
                      "KUBELOOP_CAPTURE_FLUSH_SECONDS": "1",
                      "KUBELOOP_POD_NAME": f"bench-{model}"}),
            ):  # fmt: skip
                port = free_port()
                env = {
                    "KUBELOOP_MODEL_DIR": str(folders[model]),
                    "KUBELOOP_HOST": "127.0.0.1",
                    "KUBELOOP_PORT": str(port),
                    "KUBELOOP_LOG_LEVEL": "warning",
                    "KUBELOOP_TERMINATION_LOG": str(root / "termination-log"),
                    **extra,
                }
                base = f"http://127.0.0.1:{port}/v2/models/{model}"
                log = root / f"{server}-{model}.log"
                command = [sys.executable, "-m", "kubeloop_runtime.serve"]
                stack.enter_context(running(command, env, f"{base}/ready", log))
                targets[server] = f"{base}/infer"
            results += measure_round_robin(model, targets, bodies, args, script)
            time.sleep(1.5)  # one more flush interval: the counters include the last part
            counters[model] = capture_counters(targets[ON].rsplit("/v2/", 1)[0])
    print()
    print(f"{'model':9} {'rows':>4}  {'off req/s':>10} {'on req/s':>10} {'on/off':>7}  "
          f"{'p99 off':>8} {'p99 on':>8}")  # fmt: skip
    verdicts: list[str] = []
    for model in args.models:
        for rows in ROW_COUNTS:
            off = next(m for m in results if (m.model, m.rows, m.server) == (model, rows, OFF))
            on = next(m for m in results if (m.model, m.rows, m.server) == (model, rows, ON))
            ratio = on.requests_per_second / off.requests_per_second
            print(
                f"{model:9} {rows:4}  {off.requests_per_second:10.0f} "
                f"{on.requests_per_second:10.0f} {ratio:7.2f}  {off.p99_ms:8.2f} {on.p99_ms:8.2f}"
            )
            verdicts.append(
                f"{model:9} {rows:3} rows: capture on {ratio:4.2f}x off "
                f"[target >= {TARGET}x] {'PASS' if ratio >= TARGET else 'FAIL'}"
            )
    print()
    for model, values in counters.items():
        wanted = {k: int(v) for k, v in values.items() if "rows_total" in k or "dropped" in k
                  or "parts_total" in k}  # fmt: skip
        print(f"{model}: {wanted}")
    written = sum(1 for _ in parts.rglob("*.parquet"))
    print(f"part files on disk: {written} under {parts}")
    print()
    for line in verdicts:
        print(line)
    print(f"\ntotal {time.monotonic() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps([m.__dict__ for m in results], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
