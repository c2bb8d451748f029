"""Serving benchmark: Kubeloop's model server against MLServer and two floors, same run, same load.

For a 100-tree random forest (prediction-bound) and a logistic regression (overhead-bound), both
fitted on scikit-learn's breast_cancer data (30 features) and written as ONE artifact folder each,
it measures requests/s and p50/p99 latency of Open Inference Protocol v2 requests of 1 and of
100 rows, with the same request bodies, against:

- kubeloop       ``python -m kubeloop_runtime.serve`` (uvicorn, uvloop, httptools, one process)
- mlserver       MLServer's scikit-learn runtime serving THE SAME model.joblib, adaptive batching
                 off (its default), ``parallel_workers: 0`` (inference in the server process, one
                 process like ours)
- mlserver+batch the same, adaptive batching on (max_batch_size = concurrency, max_batch_time 2 ms)
- bare-asgi      a raw ASGI app under the same uvicorn setup that reads the body and answers a
                 fixed JSON: the ceiling any Python HTTP server on this machine can reach
- predict-floor  ``model.predict`` called in-process in a loop: no HTTP at all

The load generator is wrk (Debian package ``wrk``) in its own process: one thread, a fixed number of
connections, a fixed duration, a Lua script for the POST body. MLServer comes from its own
virtualenv, created by ``bench/setup-peers.sh``.

Targets (issue 4): forest: at least 2x MLServer's best configuration at a lower p99; logistic
regression: at least 2x MLServer's best and at least half the bare ASGI app's throughput.

The servers of one model run side by side and take turns, a few rounds of a few seconds each,
keeping each server's best round: load from other work comes and goes, and interleaving spreads
it over all servers alike.

Usage: ``python bench/serving.py`` (about 3.5 minutes) or ``--quick`` (about 1 minute).
The numbers are indicative: the machine has 2 cores shared with other work.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import joblib
import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from kubeloop_runtime.artifact import MODEL_FILE, write_artifact

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / ".cache" / "kubeloop" / "bench"
MLSERVER_VENV = Path(os.environ.get("MLSERVER_VENV", CACHE / "mlserver-venv"))
MODELS = ("forest100", "logreg")
ROW_COUNTS = (1, 100)
KUBELOOP = "kubeloop"
MLSERVER = "mlserver"
MLSERVER_BATCH = "mlserver+batch"
BARE = "bare-asgi"
FLOOR = "predict-floor"
SERVERS = (KUBELOOP, MLSERVER, MLSERVER_BATCH, BARE, FLOOR)

WRK_SCRIPT = r"""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local file = io.open(os.getenv("BENCH_BODY_FILE"), "rb")
wrk.body = file:read("*a")
file:close()
done = function(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format("RESULT %d %d %d %d %d %d\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), errors.status,
    errors.connect + errors.read + errors.write + errors.timeout))
end
"""

BARE_APP = r'''
"""A raw ASGI app that reads the request body and answers a fixed JSON: the HTTP floor."""
import sys

import uvicorn

ANSWER = (b'{"model_name":"bare","outputs":[{"name":"predict","datatype":"INT64",'
          b'"shape":[1],"data":[0]}]}')
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(ANSWER)).encode())]


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": ANSWER})


# the same uvicorn settings as kubeloop_runtime.serve
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), loop="uvloop", http="httptools",
            lifespan="off", access_log=False, log_level="warning", server_header=False,
            proxy_headers=False)
'''


@dataclass(frozen=True)
class Measurement:
    model: str
    rows: int
    server: str
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def prepare_models(root: Path) -> tuple[dict[str, Path], np.ndarray[Any, Any]]:
    """Fit both models once and write them as artifact folders; reuse them on later runs."""
    data = load_breast_cancer()
    features = np.asarray(data.data, dtype=np.float64)
    estimators: dict[str, Any] = {
        "forest100": RandomForestClassifier(n_estimators=100, random_state=0),
        "logreg": LogisticRegression(max_iter=10_000),
    }
    folders: dict[str, Path] = {}
    for name, estimator in estimators.items():
        folder = root / "models" / name
        folders[name] = folder
        if (folder / MODEL_FILE).is_file():
            continue
        estimator.fit(features, data.target)
        metadata = {
            "schemaVersion": 1,
            "modelName": name,
            "task": "classification",
            "estimator": f"{type(estimator).__module__}.{type(estimator).__name__}",
            "params": {},
            "metrics": {},
            "features": [{"name": str(f), "type": "number"} for f in data.feature_names],
            "target": {"name": "target", "classes": [str(c) for c in data.target_names]},
            "profile": {},
        }
        write_artifact(folder, estimator, metadata)
    return folders, features


def write_bodies(root: Path, features: np.ndarray[Any, Any]) -> dict[int, Path]:
    bodies: dict[int, Path] = {}
    for rows in ROW_COUNTS:
        chunk = features[:rows]
        body = {
            "inputs": [
                {
                    "name": "input-0",
                    "shape": list(chunk.shape),
                    "datatype": "FP64",
                    "data": chunk.ravel().tolist(),
                }
            ]
        }
        path = root / f"body-{rows}.json"
        path.write_text(json.dumps(body))
        bodies[rows] = path
    return bodies


@contextlib.contextmanager
def running(
    command: list[str], env: dict[str, str], ready_url: str, log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """Start a server process (its own session), wait until ``ready_url`` answers 200, stop it."""
    with log.open("wb") as output:
        process = subprocess.Popen(
            command,
            env={**os.environ, **env},
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=log.parent,
        )
        try:
            deadline = time.monotonic() + 90
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"{command[0]} exited early; see {log}")
                with contextlib.suppress(httpx.TransportError):
                    if httpx.get(ready_url, timeout=2).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{ready_url} not ready after 90 s; see {log}")
                time.sleep(0.2)
            yield process
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def run_wrk(url: str, body: Path, script: Path, connections: int, seconds: int) -> list[int]:
    completed = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            url,
        ],
        env={**os.environ, "BENCH_BODY_FILE": str(body)},
        capture_output=True,
        text=True,
        check=True,
    )
    for line in completed.stdout.splitlines():
        if line.startswith("RESULT "):
            return [int(value) for value in line.split()[1:]]
    raise RuntimeError(f"wrk printed no result:\n{completed.stdout}\n{completed.stderr}")


def check_answer(server: str, url: str, body: Path) -> None:
    response = httpx.post(
        url, content=body.read_bytes(), headers={"content-type": "application/json"}
    )
    if response.status_code != 200:
        raise RuntimeError(f"{server} answered {response.status_code}: {response.text[:300]}")


def measure_round_robin(
    model: str, targets: dict[str, str], bodies: dict[int, Path], args: argparse.Namespace,
    script: Path,
) -> list[Measurement]:  # fmt: skip
    """Measure every server in turn, ``rounds`` times, keeping each server's best round.

    The machine is shared: load from other work comes and goes over seconds. Interleaving the
    servers spreads it over all of them, and the best of a few rounds is the least disturbed.
    """
    results: list[Measurement] = []
    for rows, body in bodies.items():
        best: dict[str, Measurement] = {}
        for server, url in targets.items():
            check_answer(server, url, body)
            run_wrk(url, body, script, args.connections, args.warmup)
        for _ in range(args.rounds):
            for server, url in targets.items():
                requests, micros, p50, p99, bad_status, socket_errors = run_wrk(
                    url, body, script, args.connections, args.duration
                )
                measurement = Measurement(
                    model, rows, server, requests / (micros / 1e6), p50 / 1000, p99 / 1000,
                    bad_status + socket_errors,
                )  # fmt: skip
                kept = best.get(server)
                if kept is None or measurement.requests_per_second > kept.requests_per_second:
                    best[server] = measurement
        for server, measurement in best.items():
            print(
                f"  {model:9} {rows:3} rows  {server:15} "
                f"{measurement.requests_per_second:8.0f} req/s"
            )
            results.append(measurement)
    return results


def measure_floor(
    model: str, folder: Path, features: np.ndarray[Any, Any], seconds: float
) -> list[Measurement]:
    estimator = joblib.load(folder / MODEL_FILE)
    results: list[Measurement] = []
    for rows in ROW_COUNTS:
        chunk = np.ascontiguousarray(features[:rows])
        estimator.predict(chunk)
        timings: list[float] = []
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            estimator.predict(chunk)
            timings.append(time.perf_counter() - started)
        timings.sort()
        results.append(
            Measurement(
                model,
                rows,
                FLOOR,
                len(timings) / sum(timings),
                statistics.median(timings) * 1000,
                timings[int(len(timings) * 0.99)] * 1000,
                0,
            )
        )
    return results


def mlserver_repository(
    root: Path, model: str, folder: Path, batching: bool, connections: int
) -> tuple[Path, dict[str, int]]:
    ports = {"http_port": free_port(), "grpc_port": free_port(), "metrics_port": free_port()}
    repository = root / f"mlserver-{model}-{'batch' if batching else 'plain'}"
    shutil.rmtree(repository, ignore_errors=True)
    (repository / model).mkdir(parents=True)
    settings = {"debug": False, "parallel_workers": 0, "host": "127.0.0.1", **ports}
    (repository / "settings.json").write_text(json.dumps(settings))
    model_settings: dict[str, Any] = {
        "name": model,
        "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": str(folder / MODEL_FILE), "version": "1"},
    }
    if batching:
        model_settings["max_batch_size"] = connections
        model_settings["max_batch_time"] = 0.002
    (repository / model / "model-settings.json").write_text(json.dumps(model_settings))
    return repository, ports


def run_all(args: argparse.Namespace) -> list[Measurement]:
    root = CACHE / "serving"
    root.mkdir(parents=True, exist_ok=True)
    folders, features = prepare_models(root)
    bodies = write_bodies(root, features)
    script = root / "post.lua"
    script.write_text(WRK_SCRIPT)
    bare_app = root / "bare_app.py"
    bare_app.write_text(BARE_APP)
    results: list[Measurement] = []
    wanted = set(args.servers)
    for model in args.models:
        folder = folders[model]
        if FLOOR in wanted:
            results += measure_floor(model, folder, features, args.floor_seconds)
        targets: dict[str, str] = {}
        with contextlib.ExitStack() as stack:
            if KUBELOOP in wanted:
                port = free_port()
                env = {
                    "KUBELOOP_MODEL_DIR": str(folder),
                    "KUBELOOP_HOST": "127.0.0.1",
                    "KUBELOOP_PORT": str(port),
                    "KUBELOOP_LOG_LEVEL": "warning",
                    "KUBELOOP_TERMINATION_LOG": str(root / "termination-log"),
                    **dict(item.split("=", 1) for item in args.kubeloop_env),
                }
                base = f"http://127.0.0.1:{port}/v2/models/{model}"
                command = [sys.executable, "-m", "kubeloop_runtime.serve"]
                log = root / f"kubeloop-{model}.log"
                stack.enter_context(running(command, env, f"{base}/ready", log))
                targets[KUBELOOP] = f"{base}/infer"
            for server, batching in ((MLSERVER, False), (MLSERVER_BATCH, True)):
                if server not in wanted:
                    continue
                repository, ports = mlserver_repository(
                    root, model, folder, batching, args.connections
                )
                base = f"http://127.0.0.1:{ports['http_port']}/v2/models/{model}"
                command = [str(MLSERVER_VENV / "bin" / "mlserver"), "start", str(repository)]
                log = repository / "mlserver.log"
                stack.enter_context(running(command, {}, f"{base}/ready", log))
                targets[server] = f"{base}/infer"
            if BARE in wanted:
                port = free_port()
                url = f"http://127.0.0.1:{port}/"
                command = [sys.executable, str(bare_app), str(port)]
                stack.enter_context(running(command, {}, url, root / "bare.log"))
                targets[BARE] = url
            results += measure_round_robin(model, targets, bodies, args, script)
    return results


def _find(results: list[Measurement], model: str, rows: int, server: str) -> Measurement | None:
    for result in results:
        if (result.model, result.rows, result.server) == (model, rows, server):
            return result
    return None


def verdicts(results: list[Measurement]) -> list[str]:
    """One line per target and request size, with the ratios the targets ask for."""
    lines: list[str] = []
    for model in MODELS:
        for rows in ROW_COUNTS:
            ours = _find(results, model, rows, KUBELOOP)
            peers = [m for s in (MLSERVER, MLSERVER_BATCH) if (m := _find(results, model, rows, s))]
            if ours is None or not peers:
                continue
            best = max(peers, key=lambda m: m.requests_per_second)
            ratio = ours.requests_per_second / best.requests_per_second
            label = f"{model:9} {rows:3} rows"
            if model == "forest100":
                passed = ratio >= 2 and ours.p99_ms < best.p99_ms
                lines.append(
                    f"{label}: {ratio:5.2f}x best MLServer ({best.server}), p99 "
                    f"{ours.p99_ms:.1f} vs {best.p99_ms:.1f} ms "
                    f"[target >= 2x at lower p99] {'PASS' if passed else 'FAIL'}"
                )
            else:
                bare = _find(results, model, rows, BARE)
                bare_ratio = ours.requests_per_second / bare.requests_per_second if bare else 0
                passed = ratio >= 2 and bare_ratio >= 0.5
                lines.append(
                    f"{label}: {ratio:5.2f}x best MLServer ({best.server}), {bare_ratio:4.2f}x "
                    f"bare ASGI [target >= 2x and >= 0.5x] {'PASS' if passed else 'FAIL'}"
                )
    return lines


def table(results: list[Measurement]) -> str:
    header = f"{'model':9} {'rows':>4}  {'server':15} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6}"  # noqa: E501
    lines = [header, "-" * len(header)]
    for model in MODELS:
        for rows in ROW_COUNTS:
            for server in SERVERS:
                m = _find(results, model, rows, server)
                if m is not None:
                    lines.append(
                        f"{m.model:9} {m.rows:4}  {m.server:15} {m.requests_per_second:9.0f} "
                        f"{m.p50_ms:8.2f} {m.p99_ms:8.2f} {m.errors:6}"
                    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="short runs (about 1 minute)")
    parser.add_argument("--duration", type=int, help="seconds per round (default 3)")
    parser.add_argument("--rounds", type=int, help="rounds per server, best kept (default 3)")
    parser.add_argument("--warmup", type=int, default=1, help="seconds of warm-up per run")
    parser.add_argument("--connections", type=int, default=16, help="concurrent connections")
    parser.add_argument("--servers", nargs="+", default=list(SERVERS), choices=SERVERS)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument(
        "--kubeloop-env", action="append", default=[], metavar="KEY=VALUE",
        help="extra environment for the Kubeloop server (e.g. KUBELOOP_PREDICT_IN_THREAD=false)",
    )  # fmt: skip
    parser.add_argument("--json", type=Path, help="also write the measurements here")
    args = parser.parse_args(argv)
    args.duration = args.duration or (1 if args.quick else 3)
    args.rounds = args.rounds or (2 if args.quick else 3)
    args.floor_seconds = 1.0 if args.quick else 2.0
    if shutil.which("wrk") is None:
        print("wrk is missing: apt-get install -y wrk", file=sys.stderr)
        return 2
    if {MLSERVER, MLSERVER_BATCH} & set(args.servers) and not (
        MLSERVER_VENV / "bin" / "mlserver"
    ).exists():
        print("MLServer is missing: run bench/setup-peers.sh", file=sys.stderr)
        return 2
    started = time.monotonic()
    print(
        f"serving benchmark: wrk 1 thread, {args.connections} connections; servers take turns, "
        f"{args.rounds} rounds of {args.duration} s each (best round kept) after {args.warmup} s "
        f"warm-up; {os.cpu_count()} cores shared with other work, so numbers are indicative"
    )
    results = run_all(args)
    print()
    print(table(results))
    print()
    for line in verdicts(results):
        print(line)
    print(f"\ntotal {time.monotonic() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps([m.__dict__ for m in results], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
