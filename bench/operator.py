"""Operator benchmark: N InferenceServices created at once, against a plain client's floor.

For each N (default 100 and 1,000) on the API-only plane (hack/devcluster.py; Pods need not run):

- operator  N ModelVersions (Ready) exist; the real operator (`python -m kubeloop`, watching one
            namespace) runs; N InferenceServices are created at once by a pool of client threads.
            Watches record when each one's children exist (Deployment `<name>-blue`, Services
            `<name>` and `<name>-preview`, ServiceAccount, Role, RoleBinding: the last one seen)
            and when its status is first written. Latencies are from the create call to those
            moments; throughput is N over the time from the first create to the last status.
            The operator's peak RSS (VmHWM) and CPU seconds come from /proc.
- floor     the same children, built by the same builders, plus the InferenceService and one
            status patch each, created directly by a plain client with the same thread pool, as
            fast as the API server takes them (no reconcile, no Events), under the same Watcher
            as the operator run: its six watches load the same API server and cores, and are
            the benchmark's cost, not the operator's. The floor is also run without the Watcher,
            and that ratio printed beside.
- both      start once the API server is quiet (the last run's deletions finished); the
            requests each sent (apiserver_request_total) and the control plane's CPU seconds
            are printed per run.

Targets (issue 8): p99 < 2 s at N = 1,000, RSS < 200 MB, throughput >= 0.5x the floor's.

Usage: `python bench/operator.py [--sizes 100 1000] [--threads 16] [--json FILE]`. The plane is
reused when running (KUBELOOP_DEVCLUSTER_PORT picks it), else started and stopped again.
Numbers are indicative: 2 cores shared with other work.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "hack"), str(REPO / "operator")]

from kubernetes import client as k8s  # noqa: E402
from kubernetes import watch  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

import devcluster  # noqa: E402
from kubeloop.api.base import API_VERSION, GROUP, VERSION  # noqa: E402
from kubeloop.api.inferenceservice import InferenceServiceSpec  # noqa: E402
from kubeloop.builders.inferenceservice import (  # noqa: E402
    Owner,
    build_active_service,
    build_deployment,
    build_preview_service,
    build_sidecar_rbac,
)
from kubeloop.builders.target import ServingTarget  # noqa: E402
from kubeloop.kube.apply import create, patch_status  # noqa: E402
from kubeloop.kube.client import connect  # noqa: E402
from kubeloop.settings import OperatorSettings  # noqa: E402

DIGEST = "sha256:" + "0" * 64
CHILD_KINDS = ("Deployment", "Service", "ServiceAccount", "Role", "RoleBinding")
CHILDREN_PER_ISVC = 6
KIND = "InferenceService"


def stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def isvc_manifest(namespace: str, index: int) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "InferenceService",
        "metadata": {"name": f"m{index}", "namespace": namespace},
        "spec": {
            "model": {"name": f"m{index}", "latest": True},
            "replicas": 1,
            "rollout": {"smokeTest": {"enabled": False}},
        },
    }


def model_version(namespace: str, index: int) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "ModelVersion",
        "metadata": {"name": f"m{index}-v1", "namespace": namespace},
        "spec": {
            "modelName": f"m{index}",
            "version": 1,
            "artifact": {"uri": f"pvc://kubeloop-artifacts/models/m{index}/", "digest": DIGEST},
        },
    }


def ready_status() -> dict[str, Any]:
    """A verified version's status, as the operator leaves it: with observedGeneration, the
    operator keeps the verdict (without it, it would verify the made-up artifact again)."""
    return {
        "phase": "Ready",
        "observedGeneration": 1,
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "Verified",
                "message": "bench",
                "lastTransitionTime": stamp(),
            }
        ],
    }


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def pool_map(threads: int, work: Callable[[int], Any], count: int) -> None:
    with ThreadPoolExecutor(threads) as executor:
        for _ in executor.map(work, range(count)):
            pass


class Watcher:
    """First-seen times of objects in a namespace, per kind, from watch streams."""

    def __init__(self, api: k8s.ApiClient, namespace: str) -> None:
        self.api = api
        self.namespace = namespace
        self.seen: dict[str, dict[str, float]] = {kind: {} for kind in CHILD_KINDS}
        self.status_written: dict[str, float] = {}
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []

    def start(self) -> None:
        core = k8s.CoreV1Api(self.api)
        apps = k8s.AppsV1Api(self.api)
        rbac = k8s.RbacAuthorizationV1Api(self.api)
        sources: list[tuple[str, Callable[..., Any]]] = [
            ("Deployment", apps.list_namespaced_deployment),
            ("Service", core.list_namespaced_service),
            ("ServiceAccount", core.list_namespaced_service_account),
            ("Role", rbac.list_namespaced_role),
            ("RoleBinding", rbac.list_namespaced_role_binding),
        ]
        for kind, lister in sources:
            self._spawn(self._watch_kind, kind, lister)
        self._spawn(self._watch_status)
        time.sleep(1.0)  # let the watches start before anything is created

    def _spawn(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        self.threads.append(thread)

    def _watch_kind(self, kind: str, lister: Callable[..., Any]) -> None:
        while not self.stop.is_set():
            try:
                for event in watch.Watch().stream(lister, self.namespace, timeout_seconds=5):
                    name = event["object"].metadata.name
                    self.seen[kind].setdefault(name, time.perf_counter())
                    if self.stop.is_set():
                        break
            except Exception as error:  # a loaded API server drops watches: watch again
                print(f"watch of {kind}s restarted: {type(error).__name__}", file=sys.stderr)

    def _watch_status(self) -> None:
        custom = k8s.CustomObjectsApi(self.api)
        while not self.stop.is_set():
            try:
                for event in watch.Watch().stream(
                    custom.list_namespaced_custom_object,
                    GROUP,
                    VERSION,
                    self.namespace,
                    "inferenceservices",
                    timeout_seconds=5,
                ):
                    body = event["object"]
                    if (body.get("status") or {}).get("phase"):
                        name = body["metadata"]["name"]
                        self.status_written.setdefault(name, time.perf_counter())
                    if self.stop.is_set():
                        break
            except Exception as error:  # a loaded API server drops watches: watch again
                print(
                    f"watch of InferenceServices restarted: {type(error).__name__}", file=sys.stderr
                )

    def children_done(self, isvc: str) -> float | None:
        names = {
            "Deployment": [f"{isvc}-blue"],
            "Service": [isvc, f"{isvc}-preview"],
            "ServiceAccount": [f"{isvc}-drift"],
            "Role": [f"{isvc}-drift"],
            "RoleBinding": [f"{isvc}-drift"],
        }
        times = [self.seen[kind].get(name) for kind, group in names.items() for name in group]
        if any(t is None for t in times):
            return None
        return max(t for t in times if t is not None)


def proc_usage(pid: int) -> tuple[float, float]:
    """(peak RSS in MB, CPU seconds) of a live process, from /proc."""
    peak_kb = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            peak_kb = int(line.split()[1])
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return peak_kb / 1024, cpu


def plane_cpu(layout: devcluster.Layout) -> float:
    """CPU seconds used so far by the control plane (etcd, kube-apiserver,
    kube-controller-manager): diffed around a run, what its requests and watches cost."""
    total = 0.0
    for component in devcluster.PLANE:
        pid = int(layout.pidfile(component).read_text().split()[0])
        total += proc_usage(pid)[1]
    return total


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_operator(
    kubeconfig: str, namespace: str, log: Path
) -> tuple[subprocess.Popen[bytes], int]:
    health, metrics = free_port(), free_port()
    env = {
        **os.environ,
        "KUBELOOP_KUBECONFIG": kubeconfig,
        "KUBELOOP_NAMESPACES": namespace,
        "KUBELOOP_RUNTIME_IMAGE": "kubeloop-runtime:dev",
        "KUBELOOP_STANDALONE": "true",
        "KUBELOOP_HEALTH_PORT": str(health),
        "KUBELOOP_HEALTH_HOST": "127.0.0.1",
        "KUBELOOP_METRICS_PORT": str(metrics),
        "KUBELOOP_METRICS_HOST": "127.0.0.1",
        "KUBELOOP_LOG_LEVEL": "WARNING",
    }
    env.pop("KUBECONFIG", None)
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "kubeloop"], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the operator exited {process.returncode}; see {log}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{health}/healthz", timeout=1):
                return process, metrics
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"the operator never became healthy; see {log}")


def run_operator(
    api: k8s.ApiClient,
    layout: devcluster.Layout,
    kubeconfig: str,
    n: int,
    threads: int,
    log_dir: Path,
) -> dict[str, Any]:
    namespace = f"bench-op-{n}-{uuid.uuid4().hex[:5]}"
    k8s.CoreV1Api(api).create_namespace({"metadata": {"name": namespace}})

    def register(i: int) -> None:
        create(api, model_version(namespace, i))
        patch_status(api, API_VERSION, "ModelVersion", namespace, f"m{i}-v1", ready_status())

    pool_map(threads, register, n)
    process, metrics_port = start_operator(kubeconfig, namespace, log_dir / f"operator-{n}.log")
    watcher = Watcher(api, namespace)
    watcher.start()
    quiesce(api)  # the operator's start-up reconciles of the ModelVersions included
    created: dict[str, float] = {}

    def make(i: int) -> None:
        created[f"m{i}"] = time.perf_counter()
        create(api, isvc_manifest(namespace, i))

    before, plane_before = api_requests(api), plane_cpu(layout)
    first = time.perf_counter()
    pool_map(threads, make, n)
    deadline = time.monotonic() + max(120.0, n * 1.0)
    while len(watcher.status_written) < n and time.monotonic() < deadline:
        time.sleep(0.2)
    while time.monotonic() < deadline and any(
        watcher.children_done(name) is None for name in created
    ):
        time.sleep(0.2)
    rss, cpu = proc_usage(process.pid)
    reconciles = operator_metric(metrics_port, "kubeloop_reconciles_total", KIND)
    reconcile_seconds = operator_metric(
        metrics_port, "kubeloop_reconcile_duration_seconds_sum", KIND
    )
    requests = api_requests(api) - before
    plane_seconds = plane_cpu(layout) - plane_before
    watcher.stop.set()
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)
    children = [
        done - created[name]
        for name in created
        if (done := watcher.children_done(name)) is not None
    ]
    status = [
        watcher.status_written[name] - created[name]
        for name in created
        if name in watcher.status_written
    ]
    last = max(watcher.status_written.values(), default=first)
    delete_namespace(api, namespace)
    return {
        "n": n,
        "complete_children": len(children),
        "complete_status": len(status),
        "children_p50": percentile(children, 0.5),
        "children_p99": percentile(children, 0.99),
        "status_p50": percentile(status, 0.5),
        "status_p99": percentile(status, 0.99),
        "seconds": last - first,
        "throughput": n / (last - first) if last > first else float("nan"),
        "rss_mb": rss,
        "cpu_seconds": cpu,
        "reconciles_per_isvc": reconciles / n,
        "reconcile_mean_seconds": reconcile_seconds / reconciles if reconciles else float("nan"),
        "requests_per_isvc": sum(requests.values()) / n,
        "requests": dict(requests.most_common()),
        "plane_cpu_seconds": plane_seconds,
    }


def api_requests(api: k8s.ApiClient) -> Counter[str]:
    """The API server's requests so far (not watches), per "VERB resource[/subresource]", from
    its apiserver_request_total: diffed around a run, they show what each side sent (the
    kube-controller-manager's ReplicaSets and Pods for the Deployments included)."""
    response = api.call_api("GET", f"{api.configuration.host}/metrics")
    response.read()
    text = response.data.decode()
    counts: Counter[str] = Counter()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if sample.name != "apiserver_request_total" or labels.get("verb") == "WATCH":
                continue
            if not labels.get("resource"):
                continue  # health checks, discovery
            sub = f"/{labels['subresource']}" if labels.get("subresource") else ""
            counts[f"{labels['verb']} {labels['resource']}{sub}"] += int(sample.value)
    return counts


def operator_metric(metrics_port: int, name: str, kind: str) -> float:
    """The sum of the operator's samples `name` of `kind`, from its /metrics."""
    url = f"http://127.0.0.1:{metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and sample.labels.get("kind") == kind
    )


def quiesce(api: k8s.ApiClient, limit: int = 40, window: float = 2.0) -> None:
    """Wait until the API server is quiet (fewer than `limit` requests in `window` seconds, at
    most 180 s): the garbage collector and the namespace controller finish the last run's
    deletions after its namespace is gone, and would load the next run."""
    deadline = time.monotonic() + 180
    last = sum(api_requests(api).values())
    while time.monotonic() < deadline:
        time.sleep(window)
        now = sum(api_requests(api).values())
        if now - last < limit:
            return
        last = now


def delete_namespace(api: k8s.ApiClient, namespace: str) -> None:
    """Delete the namespace and wait until it is gone: the namespace controller's thousands of
    deletions would otherwise load the API server during the next run."""
    core = k8s.CoreV1Api(api)
    core.delete_namespace(namespace)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        try:
            core.read_namespace(namespace)
        except k8s.ApiException as error:
            if error.status == 404:
                return
            raise
        time.sleep(1.0)
    raise SystemExit(f"namespace {namespace} was not deleted within 600 s")


def run_floor(
    api: k8s.ApiClient, layout: devcluster.Layout, n: int, threads: int, observed: bool
) -> dict[str, Any]:
    """The same children, same builders, written by a plain client as fast as it can;
    `observed`: under the operator run's Watcher, whose watches load the same API server and
    cores (and are not the operator's cost)."""
    namespace = f"bench-floor-{n}-{uuid.uuid4().hex[:5]}"
    k8s.CoreV1Api(api).create_namespace({"metadata": {"name": namespace}})
    settings = OperatorSettings(runtime_image="kubeloop-runtime:dev")
    latencies: list[float] = []
    watcher = Watcher(api, namespace) if observed else None
    if watcher is not None:
        watcher.start()
    quiesce(api)

    def make(i: int) -> None:
        started = time.perf_counter()
        manifest = isvc_manifest(namespace, i)
        body = create(api, manifest)
        owner = Owner(name=f"m{i}", namespace=namespace, uid=body["metadata"]["uid"])
        spec = InferenceServiceSpec.model_validate(manifest["spec"])
        target = ServingTarget(
            f"m{i}-v1", f"m{i}", 1, f"pvc://kubeloop-artifacts/models/m{i}/", DIGEST
        )
        for child in (
            *build_sidecar_rbac(owner),
            build_deployment(owner, spec, target, "blue", 1, settings),
            build_active_service(owner, "blue"),
            build_preview_service(owner, "blue"),
        ):
            create(api, child)
        patch_status(
            api, API_VERSION, "InferenceService", namespace, f"m{i}", {"phase": "Deploying"}
        )
        latencies.append(time.perf_counter() - started)

    before, plane_before = api_requests(api), plane_cpu(layout)
    first = time.perf_counter()
    pool_map(threads, make, n)
    seconds = time.perf_counter() - first
    requests = api_requests(api) - before
    plane_seconds = plane_cpu(layout) - plane_before
    if watcher is not None:
        watcher.stop.set()
    delete_namespace(api, namespace)
    return {
        "n": n,
        "observed": observed,
        "p50": percentile(latencies, 0.5),
        "p99": percentile(latencies, 0.99),
        "seconds": seconds,
        "throughput": n / seconds,
        "requests_per_isvc": sum(requests.values()) / n,
        "requests": dict(requests.most_common()),
        "plane_cpu_seconds": plane_seconds,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--threads", type=int, default=16, help="client threads (both runs)")
    parser.add_argument("--json", type=Path, help="write the results here too")
    args = parser.parse_args(argv)

    layout = devcluster.Layout.from_env()
    started = not devcluster.is_up(layout)
    if started:
        devcluster.up(layout)
    kubeconfig = str(layout.kubeconfig)
    kubectl = str(layout.bin / "kubectl")
    crds = sorted(str(p) for p in (REPO / "crds").glob("kubeloop.dev_*.yaml"))
    subprocess.run(
        [kubectl, f"--kubeconfig={kubeconfig}", "apply", "--server-side", "--force-conflicts"]
        + [f"-f={c}" for c in crds],
        check=True,
        capture_output=True,
    )
    log_dir = REPO / ".cache" / "kubeloop" / "bench" / "operator"
    log_dir.mkdir(parents=True, exist_ok=True)
    api = connect(kubeconfig)
    api.configuration.connection_pool_maxsize = args.threads + 8
    results: list[dict[str, Any]] = []
    try:
        for n in args.sizes:
            op = run_operator(api, layout, kubeconfig, n, args.threads, log_dir)
            floor = run_floor(api, layout, n, args.threads, observed=True)
            bare = run_floor(api, layout, n, args.threads, observed=False)
            results.append({"operator": op, "floor": floor, "floor_unobserved": bare})
    finally:
        api.close()
        if started:
            devcluster.down(layout, quiet=True)

    print(
        f"{'N':>5} {'children p50/p99 s':>19} {'status p50/p99 s':>17} {'op/s':>7} "
        f"{'floor/s':>8} {'ratio':>6} {'RSS MB':>7} {'CPU s':>6} "
        f"{'rec/isvc':>8} {'req/isvc op/floor':>17}"
    )
    for row in results:
        op, floor, bare = row["operator"], row["floor"], row["floor_unobserved"]
        ratio = op["throughput"] / floor["throughput"]
        print(
            f"{op['n']:>5} {op['children_p50']:>9.3f}/{op['children_p99']:<9.3f}"
            f" {op['status_p50']:>8.3f}/{op['status_p99']:<8.3f} {op['throughput']:>7.1f}"
            f" {floor['throughput']:>8.1f} {ratio:>6.2f} {op['rss_mb']:>7.1f}"
            f" {op['cpu_seconds']:>6.1f} {op['reconciles_per_isvc']:>8.1f}"
            f" {op['requests_per_isvc']:>8.1f}/{floor['requests_per_isvc']:<8.1f}"
        )
        per_isvc = {what: count / op["n"] for what, count in op["requests"].items()}
        print(
            f"      floor without the Watcher: {bare['throughput']:.1f}/s, ratio"
            f" {op['throughput'] / bare['throughput']:.2f}"
        )
        print(
            f"      operator run: a reconcile took {op['reconcile_mean_seconds']:.3f} s on average;"
            f" control plane CPU {op['plane_cpu_seconds']:.1f} s (floor run:"
            f" {floor['plane_cpu_seconds']:.1f} s, without the Watcher"
            f" {bare['plane_cpu_seconds']:.1f} s)"
        )
        print(
            "      operator run, requests per InferenceService: "
            + ", ".join(f"{what} {share:.2f}" for what, share in per_isvc.items() if share >= 0.05)
        )
        missing = op["n"] - min(op["complete_children"], op["complete_status"])
        if missing:
            print(f"      {missing} InferenceServices did not finish in time")
        if op["n"] >= 1000:
            verdicts = {
                "p99 < 2 s": op["status_p99"] < 2.0 and op["children_p99"] < 2.0,
                "RSS < 200 MB": op["rss_mb"] < 200,
                "throughput >= 0.5x floor": ratio >= 0.5,
            }
            for what, ok in verdicts.items():
                print(f"      {'PASS' if ok else 'FAIL'} {what}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
