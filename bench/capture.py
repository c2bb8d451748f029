"""Capture benchmark: the model server's throughput with data capture on against off.

Same models, bodies, load generator and round-robin method as ``bench/serving.py`` (whose helpers
it reuses): a 100-tree random forest and a logistic regression on breast_cancer (30 features),
Open Inference Protocol v2 requests of 1 and of 100 rows, wrk with one thread and 16
connections. Two ``python -m kubeloop_runtime.serve`` processes serve the same model.joblib side
by side:

- kubeloop          capture off (``KUBELOOP_CAPTURE_URI`` unset)
- kubeloop+capture  capture on: every row (sample rate 1) written as Parquet parts under
                    ``.cache/kubeloop/bench/capture/parts/``, flushed every second, so the writer
                    thread works during the measurement rather than after it

Method: paired rounds. Each round measures one server right after the other (the order alternates
from round to round, so a load trend on the shared machine cancels out) and takes two ratios of
the pair: requests/s (what the target names), and the inverse ratio of the server process's CPU
time per request (utime + stime from /proc, the writer thread included), which is what
throughput becomes on a saturated core and which load from other work moves far less than
wall-clock throughput. The verdicts are medians over the rounds. Target (issue 10): capture on
>= 0.9x capture off, per model and request size. After the runs it reads the capture server's
/metrics and reports what it wrote and dropped.

Usage: ``python bench/capture.py`` (about 2.5 minutes) or ``--quick`` (about 1 minute).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
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
    check_answer,
    free_port,
    prepare_models,
    run_wrk,
    running,
    write_bodies,
)

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
OFF = "kubeloop"
ON = "kubeloop+capture"
TARGET = 0.9


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


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
    parser.add_argument("--rounds", type=int, help="paired rounds (default 7)")
    parser.add_argument("--warmup", type=int, default=1, help="seconds of warm-up per run")
    parser.add_argument("--connections", type=int, default=16, help="concurrent connections")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--json", type=Path, help="also write the measurements here")
    args = parser.parse_args(argv)
    args.duration = args.duration or 2
    args.rounds = args.rounds or (3 if args.quick else 7)
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
        f"capture benchmark: wrk 1 thread, {args.connections} connections; {args.rounds} paired "
        f"rounds of {args.duration} s per server; {os.cpu_count()} cores shared with other work"
    )
    results: list[Measurement] = []
    counters: dict[str, dict[str, float]] = {}
    paired: dict[tuple[str, int], tuple[float, list[float]]] = {}
    cpu_paired: dict[tuple[str, int], tuple[float, list[float]]] = {}
    for model in args.models:
        targets: dict[str, str] = {}
        pids: dict[str, int] = {}
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
                process = stack.enter_context(running(command, env, f"{base}/ready", log))
                pids[server] = process.pid
                targets[server] = f"{base}/infer"
            for rows, body in bodies.items():
                ratios: list[float] = []
                cpu_ratios: list[float] = []
                best: dict[str, Measurement] = {}
                for server, url in targets.items():
                    check_answer(server, url, body)
                    run_wrk(url, body, script, args.connections, args.warmup)
                for round_number in range(args.rounds):
                    order = [OFF, ON] if round_number % 2 == 0 else [ON, OFF]
                    speeds: dict[str, float] = {}
                    cpu_per_request: dict[str, float] = {}
                    for server in order:
                        cpu_before = cpu_seconds(pids[server])
                        requests, micros, p50, p99, bad, errors = run_wrk(
                            targets[server], body, script, args.connections, args.duration
                        )
                        cpu_per_request[server] = (cpu_seconds(pids[server]) - cpu_before) / max(
                            requests, 1
                        )
                        speed = requests / (micros / 1e6)
                        speeds[server] = speed
                        measured = Measurement(
                            model, rows, server, speed, p50 / 1000, p99 / 1000, bad + errors
                        )
                        if server not in best or speed > best[server].requests_per_second:
                            best[server] = measured
                    ratios.append(speeds[ON] / speeds[OFF])
                    cpu_ratios.append(cpu_per_request[OFF] / cpu_per_request[ON])
                median = statistics.median(ratios)
                paired[(model, rows)] = (median, ratios)
                cpu_paired[(model, rows)] = (statistics.median(cpu_ratios), cpu_ratios)
                results += best.values()
                print(
                    f"  {model:9} {rows:3} rows  on/off per round: req/s "
                    f"{' '.join(f'{r:.2f}' for r in ratios)} (median {median:.2f}); "
                    f"CPU per request {' '.join(f'{r:.2f}' for r in cpu_ratios)} "
                    f"(median {cpu_paired[(model, rows)][0]:.2f})"
                )
            time.sleep(1.5)  # one more flush interval: the counters include the last part
            counters[model] = capture_counters(targets[ON].rsplit("/v2/", 1)[0])
    print()
    print(f"{'model':9} {'rows':>4}  {'best off':>9} {'best on':>9}  {'p99 off':>8} {'p99 on':>8}"
          f"  {'req/s on/off':>12}  {'CPU off/on':>10}")  # fmt: skip
    verdicts: list[str] = []
    for model in args.models:
        for rows in ROW_COUNTS:
            off = next(m for m in results if (m.model, m.rows, m.server) == (model, rows, OFF))
            on = next(m for m in results if (m.model, m.rows, m.server) == (model, rows, ON))
            median, ratios = paired[(model, rows)]
            cpu_median, cpu_ratios = cpu_paired[(model, rows)]
            print(
                f"{model:9} {rows:4}  {off.requests_per_second:9.0f} "
                f"{on.requests_per_second:9.0f}  {off.p99_ms:8.2f} {on.p99_ms:8.2f}"
                f"  {median:12.2f}  {cpu_median:10.2f}"
            )
            verdicts.append(
                f"{model:9} {rows:3} rows: capture on {median:4.2f}x off in req/s (range "
                f"{min(ratios):.2f} to {max(ratios):.2f}), {cpu_median:4.2f}x in CPU per request "
                f"(range {min(cpu_ratios):.2f} to {max(cpu_ratios):.2f}) [target >= {TARGET}x] "
                f"{'PASS' if min(median, cpu_median) >= TARGET else 'FAIL'}"
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
