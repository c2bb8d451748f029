#!/usr/bin/env python3
"""`make demo`: the whole loop on a real cluster, narrated; `make demo-down` removes it.

    python hack/demo.py up      # cluster, chart, base data, pipeline, drift, retrain, switch
    python hack/demo.py down    # what `up` started, and nothing else

The cluster is the one $KUBECONFIG names when it is set (kind, or any other; the images must be
on its nodes), else the local dev cluster (hack/devcluster.py), reused when it already runs and
started otherwise. Only a cluster this script started is stopped by `down` (.cache/kubeloop/demo/
state.json records what it started). The decisions (traffic, timeline, steps, summary) live in
hack/demolib and are unit-tested in tests/demo; this file only orders the I/O.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import yaml

from demolib import manifests, steps, summary, timeline, traffic
from demolib.cluster import PLURALS, Cluster, CommandError, condition, logs_hint, state_of
from demolib.load import TrafficSender, send_round
from demolib.plot import write_timeline_png
from demolib.progress import Narrator, WaitTimeoutError

REPO = Path(__file__).resolve().parent.parent
DEVCLUSTER = [sys.executable, str(REPO / "hack" / "devcluster.py")]
NAMESPACE = os.environ.get("KUBELOOP_DEMO_NAMESPACE", "kubeloop-demo")
# The release is named after the namespace: the chart's cluster-scoped objects (a discovery
# ClusterRole) carry the release name, so the demo and the benchmark never collide.
RELEASE = NAMESPACE
OPERATOR = RELEASE  # the chart's fullname (a release name containing "kubeloop"): its Deployment
PIPELINE = REPO / "examples" / "demo" / "iris-loop.yaml"
VALUES = REPO / "examples" / "demo" / "values.yaml"
# The images `make images` builds; another tag (already on the nodes) with KUBELOOP_DEMO_IMAGE_TAG.
IMAGE_TAG = os.environ.get("KUBELOOP_DEMO_IMAGE_TAG", "dev")
RUNTIME_IMAGE = f"kubeloop-runtime:{IMAGE_TAG}"
OPERATOR_IMAGE = f"kubeloop-operator:{IMAGE_TAG}"
# One folder per namespace, so bench/loop.py (its own namespace) never reads the demo's state.
WORKDIR = REPO / ".cache" / "kubeloop" / ("demo" if NAMESPACE == "kubeloop-demo" else NAMESPACE)
STATE = WORKDIR / "state.json"
PICTURE = WORKDIR / "timeline.png"
DATA_FOLDER = "pvc://kubeloop-artifacts/demo/iris-data/"
ISVC = "iris"
DATASET = "iris"
FIRST_JOB = "iris-rf"
# Traffic: base rows first (answers checked against their labels by the client, no feedback, so
# they add nothing to the data), then the shift: a labelled burst that dominates the captured data
# (the retrained model's reference then looks like the traffic it will serve: 150 base rows are 5%
# of it, too few for a KS test on 200 inputs to see), then a steady labelled flow.
BASE_SECONDS = 8.0
SHIFT_BURST_ROWS = 3000
STEADY_BATCH = 50


class DemoError(Exception):
    """A step failed; the text says which resource, its status message and where the logs are."""


@dataclass
class Target:
    """The cluster the demo runs on and whether this script started it."""

    kubeconfig: Path
    path: str
    devcluster: bool
    started: bool


def log_path(name: str) -> Path:
    WORKDIR.mkdir(parents=True, exist_ok=True)
    return WORKDIR / f"{name}.log"


def run_logged(
    argv: list[str], name: str, env: dict[str, str] | None = None, *, show: bool = False
) -> None:
    """Run a set-up command with its output in .cache/kubeloop/demo/<name>.log; with `show`, its
    lines are also printed (indented) as they come, so a long step is never silent."""
    path = log_path(name)
    with path.open("w") as out:
        process = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=REPO, text=True
        )
        assert process.stdout is not None
        for text in process.stdout:
            out.write(text)
            if show:
                print(f"           | {text.rstrip()}", flush=True)
        returncode = process.wait()
    if returncode != 0:
        tail = "\n".join(path.read_text().splitlines()[-15:])
        raise DemoError(f"{' '.join(argv)} exited {returncode} (log: {path}):\n{tail}")


def read_state() -> dict[str, Any]:
    return json.loads(STATE.read_text()) if STATE.exists() else {}


def write_state(state: dict[str, Any]) -> None:
    WORKDIR.mkdir(parents=True, exist_ok=True)
    STATE.write_text(json.dumps(state, indent=2) + "\n")


def devcluster_env() -> tuple[Path, str]:
    """KUBECONFIG and PATH of the dev cluster, from `devcluster.py env`."""
    out = subprocess.run([*DEVCLUSTER, "env"], capture_output=True, text=True, check=True).stdout
    kubeconfig, bin_dir = "", ""
    for line in out.splitlines():
        if line.startswith("export KUBECONFIG="):
            kubeconfig = line.split("=", 1)[1]
        elif line.startswith("export PATH="):
            bin_dir = line.split("=", 1)[1].strip('"').split(":", 1)[0]
    return Path(kubeconfig), f"{bin_dir}:{os.environ.get('PATH', '')}"


def resolve_target(say: Narrator, *, start: bool) -> Target:
    """$KUBECONFIG's cluster, or the dev cluster (started when it is not running and `start`)."""
    given = os.environ.get("KUBECONFIG")
    if given:
        say.say(f"cluster: $KUBECONFIG ({given}); the demo neither starts nor stops it")
        _, path = devcluster_env()  # the pinned kubectl and helm of this checkout
        return Target(Path(given), path, devcluster=False, started=False)
    running = subprocess.run([*DEVCLUSTER, "status"], capture_output=True).returncode == 0
    started = False
    if not running:
        if not start:
            raise DemoError("the dev cluster is not running")
        say.say("starting the local cluster (hack/devcluster.py up: plane, containerd, kubelet)")
        began = time.monotonic()
        run_logged([*DEVCLUSTER, "up"], "devcluster-up", show=True)
        started = True
        say.say("cluster up", took=time.monotonic() - began)
    else:
        say.say("cluster: the local dev cluster is already running; reusing it (not stopped later)")
    kubeconfig, path = devcluster_env()
    return Target(kubeconfig, path, devcluster=True, started=started)


# --- set-up -----------------------------------------------------------------------------------


def load_images(say: Narrator) -> None:
    """Copy the locally built images into the dev cluster's node (hack/images.sh load builds
    them first when their inputs changed; without it, devcluster.py load copies what Docker has)."""
    began = time.monotonic()
    script = REPO / "hack" / "images.sh"
    argv = ["bash", str(script), "load"] if script.exists() else [*DEVCLUSTER, "load"]
    try:
        run_logged([*argv, RUNTIME_IMAGE, OPERATOR_IMAGE], "load-images", show=True)
    except DemoError as error:
        # The node may have them from an earlier run; if not, the operator's Pod reports
        # ErrImageNeverPull and the wait for it says so.
        say.say(f"could not load the images, continuing with what the node has: {error}")
        return
    say.say(f"images {RUNTIME_IMAGE} and {OPERATOR_IMAGE} on the node", time.monotonic() - began)


def install(say: Narrator, target: Target, cluster: Cluster) -> None:
    """Images onto the node, CRDs, namespace, chart (operator in-cluster), base data."""
    if target.devcluster:
        load_images(say)
    else:
        say.say(f"$KUBECONFIG cluster: {RUNTIME_IMAGE} and {OPERATOR_IMAGE} must be on its nodes")
    began = time.monotonic()
    # The chart installs CRDs only when absent; an older CRD would prune the fields the demo
    # uses (monitoring.capture, evaluation.compareTo), so apply this tree's.
    cluster.kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=kubeloop-demo",
        "-f",
        str(REPO / "crds"),
    )
    cluster.apply(json.dumps(manifests.namespace(NAMESPACE)))
    say.say(
        f"CRDs applied; namespace {NAMESPACE} (Pod Security: restricted)", time.monotonic() - began
    )
    began = time.monotonic()
    say.say(f"make deploy: chart helm/kubeloop as release {RELEASE}, the operator in-cluster …")
    state = read_state()
    state.update(release=RELEASE)
    write_state(state)
    run_logged(
        [
            "make",
            "--no-print-directory",
            "deploy",
            f"RELEASE={RELEASE}",
            f"DEPLOY_NAMESPACE={NAMESPACE}",
            f"IMAGE_TAG={IMAGE_TAG}",
            f"HELM_ARGS=-f {VALUES} --set watch.namespaces={{{NAMESPACE}}}",
        ],
        "deploy",
        env={**os.environ, "KUBECONFIG": str(target.kubeconfig)},
        show=True,
    )
    wait_operator(say, cluster)
    say.say("operator running in-cluster", took=time.monotonic() - began)
    seed_base_data(say, cluster)


def wait_operator(say: Narrator, cluster: Cluster) -> None:
    def probe() -> tuple[bool | None, str]:
        deployment = cluster.deployment(NAMESPACE, OPERATOR) or {}
        if ((deployment.get("status") or {}).get("availableReplicas") or 0) >= 1:
            return True, "available"
        states = []
        for pod in cluster.pods(NAMESPACE, "app.kubernetes.io/component=operator"):
            for status in (pod.get("status") or {}).get("containerStatuses") or []:
                waiting = (status.get("state") or {}).get("waiting") or {}
                states.append(
                    f"{waiting.get('reason')}: {waiting.get('message') or ''}"
                    if waiting
                    else "running, not ready"
                )
        return None, ", ".join(states) or "no Pod yet"

    try:
        say.wait(f"deployment/{OPERATOR}", probe, timeout=180)
    except WaitTimeoutError as error:
        raise DemoError(
            summary.failure_text(
                "the operator did not become available",
                f"deployment/{OPERATOR}",
                str(error),
                f"kubectl -n {NAMESPACE} describe deploy/{OPERATOR}; "
                f"kubectl -n {NAMESPACE} logs deploy/{OPERATOR}",
            )
        ) from error


def seed_base_data(say: Narrator, cluster: Cluster) -> None:
    name = "demo-seed-iris"
    if cluster.job(NAMESPACE, name) is None:
        job = manifests.seed_job(name, NAMESPACE, RUNTIME_IMAGE, DATA_FOLDER)
        cluster.apply(json.dumps(job))
    began = time.monotonic()

    def probe() -> tuple[bool | None, str]:
        status = (cluster.job(NAMESPACE, name) or {}).get("status") or {}
        if status.get("succeeded"):
            return True, "done"
        if status.get("failed"):
            message = cluster.termination_message(NAMESPACE, name)
            raise DemoError(
                summary.failure_text(
                    "seeding the base data failed",
                    f"job/{name}",
                    json.dumps(message),
                    f"kubectl -n {NAMESPACE} logs job/{name}",
                )
            )
        return None, f"active {status.get('active') or 0} (writes {DATA_FOLDER}base.csv)"

    wait_or_fail(say, f"job/{name}", probe, timeout=180, kind="Job", name=name, cluster=cluster)
    # Its finished Pod would hold the claim (pvc-protection) when `make demo-down` deletes it.
    cluster.kubectl("-n", NAMESPACE, "delete", "job", name, "--cascade=foreground", "--wait")
    say.say(f"base data: 150 iris rows at {DATA_FOLDER}base.csv", took=time.monotonic() - began)


def wait_or_fail(
    say: Narrator,
    what: str,
    probe: Any,
    *,
    timeout: float,
    kind: str,
    name: str,
    cluster: Cluster,
) -> Any:
    try:
        return say.wait(what, probe, timeout=timeout)[0]
    except WaitTimeoutError as error:
        resource = (
            cluster.get(kind, NAMESPACE, name)
            if kind in ("Dataset", "TrainingJob", "ModelVersion", "InferenceService")
            else None
        )
        raise DemoError(
            summary.failure_text(
                f"{what} did not get there in {timeout:.0f} s",
                f"{kind.lower()}/{name}",
                str(error),
                logs_hint(kind, NAMESPACE, resource),
            )
        ) from error


# --- the loop ---------------------------------------------------------------------------------


def at_resource_time(say: Narrator, moment: datetime | None) -> float:
    """A resource's timestamp on the demo's clock (seconds since it started); now when None."""
    if moment is None:
        return say.elapsed()
    return say.elapsed() - (datetime.now(UTC) - moment).total_seconds()


def phase(resource: dict[str, Any] | None) -> str | None:
    return ((resource or {}).get("status") or {}).get("phase")


def stalled_message(resource: dict[str, Any] | None) -> str | None:
    stalled = condition(resource, "Stalled")
    if stalled and stalled.get("status") == "True":
        return str(stalled.get("message") or stalled.get("reason"))
    return None


def fail_resource(what: str, kind: str, resource: dict[str, Any] | None, message: str) -> None:
    name = (resource or {}).get("metadata", {}).get("name", "?")
    raise DemoError(
        summary.failure_text(
            what, f"{kind.lower()}/{name}", message, logs_hint(kind, NAMESPACE, resource)
        )
    )


def capture_diagnosis(cluster: Cluster) -> str:
    """Why captured traffic may not have reached the Dataset: is capture configured on the
    serving Pods at all?"""
    found = cluster.apps.list_namespaced_deployment(
        NAMESPACE, label_selector=f"kubeloop.dev/inferenceservice={ISVC}"
    )
    for deployment in (cluster.plain(d) for d in found.items):
        for container in deployment["spec"]["template"]["spec"].get("containers") or []:
            env = {e.get("name"): e.get("value") for e in container.get("env") or []}
            if env.get("KUBELOOP_CAPTURE_URI"):
                return (
                    f"capture is configured ({env['KUBELOOP_CAPTURE_URI']} in "
                    f"deployment/{deployment['metadata']['name']}); see its part files and "
                    f"the server's kubeloop_capture_* metrics"
                )
    return (
        "no serving container has KUBELOOP_CAPTURE_URI: the operator does not configure "
        "spec.monitoring.capture on the serving Pods, so no traffic is captured and the data "
        "cannot change"
    )


def wait_dataset_version(
    say: Narrator, cluster: Cluster, *, other_than: str | None, timeout: float
) -> dict[str, Any]:
    def probe() -> tuple[dict[str, Any] | None, str]:
        dataset = cluster.get("Dataset", NAMESPACE, DATASET)
        status = (dataset or {}).get("status") or {}
        if phase(dataset) == "Failed" or stalled_message(dataset):
            fail_resource(
                "the Dataset failed",
                "Dataset",
                dataset,
                stalled_message(dataset) or str(status.get("message")),
            )
        if phase(dataset) == "Ready" and status.get("version") and status["version"] != other_than:
            return dataset, "Ready"
        return None, (
            f"{state_of(dataset)}; version {summary.short_digest(status.get('version'))} "
            f"({status.get('rows')} rows), last checked {status.get('lastCheckedAt')}"
        )

    what = f"dataset/{DATASET} " + ("to record a new version" if other_than else "to be profiled")
    result: dict[str, Any] = wait_or_fail(
        say, what, probe, timeout=timeout, kind="Dataset", name=DATASET, cluster=cluster
    )
    return result


def wait_training(say: Narrator, cluster: Cluster, name: str, timeout: float) -> dict[str, Any]:
    def probe() -> tuple[dict[str, Any] | None, str]:
        job = cluster.get("TrainingJob", NAMESPACE, name)
        status = (job or {}).get("status") or {}
        if phase(job) == "Succeeded" and status.get("modelVersion"):
            return job, "Succeeded"
        if phase(job) in ("Rejected", "Failed"):
            fail_resource(
                f"TrainingJob {name} ended {phase(job)}",
                "TrainingJob",
                job,
                str(status.get("rejectedReason") or state_of(job)),
            )
        return None, state_of(job)

    result: dict[str, Any] = wait_or_fail(
        say,
        f"trainingjob/{name}",
        probe,
        timeout=timeout,
        kind="TrainingJob",
        name=name,
        cluster=cluster,
    )
    return result


def wait_model_version_ready(say: Narrator, cluster: Cluster, name: str) -> dict[str, Any]:
    def probe() -> tuple[dict[str, Any] | None, str]:
        version = cluster.get("ModelVersion", NAMESPACE, name)
        if phase(version) == "Ready":
            return version, "Ready"
        if phase(version) == "Failed":
            fail_resource(f"ModelVersion {name} failed", "ModelVersion", version, state_of(version))
        return None, state_of(version)

    result: dict[str, Any] = wait_or_fail(
        say,
        f"modelversion/{name}",
        probe,
        timeout=120,
        kind="ModelVersion",
        name=name,
        cluster=cluster,
    )
    return result


def isvc_state(isvc: dict[str, Any] | None) -> str:
    status = (isvc or {}).get("status") or {}
    candidate = status.get("candidate") or {}
    text = state_of(isvc)
    if candidate:
        text += (
            f"; candidate {candidate.get('modelVersion')} ({candidate.get('color')}) "
            f"{candidate.get('phase')}: {candidate.get('message') or ''}"
        )
    return text


def wait_serving(
    say: Narrator, cluster: Cluster, model_version: str, timeout: float, narrate: bool = False
) -> dict[str, Any]:
    """Until the InferenceService's active Service serves `model_version`; with `narrate`, each
    candidate phase is a line of its own."""
    seen: set[str] = set()

    def probe() -> tuple[dict[str, Any] | None, str]:
        isvc = cluster.get("InferenceService", NAMESPACE, ISVC)
        status = (isvc or {}).get("status") or {}
        candidate = status.get("candidate") or {}
        if narrate and candidate.get("modelVersion") == model_version:
            key = str(candidate.get("phase"))
            if key not in seen:
                seen.add(key)
                say.say(
                    f"rollout: {model_version} in {candidate.get('color')} is {key}"
                    + (f" ({candidate['message']})" if candidate.get("message") else "")
                )
            if candidate.get("phase") == "Failed":
                fail_resource(
                    f"the rollout of {model_version} failed",
                    "InferenceService",
                    isvc,
                    str(candidate.get("message")),
                )
        if status.get("activeModelVersion") == model_version and phase(isvc) == "Ready":
            return isvc, "Ready"
        return None, isvc_state(isvc)

    result: dict[str, Any] = wait_or_fail(
        say,
        f"inferenceservice/{ISVC} to serve {model_version}",
        probe,
        timeout=timeout,
        kind="InferenceService",
        name=ISVC,
        cluster=cluster,
    )
    return result


def training_facts(job: dict[str, Any]) -> summary.ModelFacts:
    status = job.get("status") or {}
    metric = (job.get("spec", {}).get("evaluation") or {}).get("metric") or "accuracy"
    score = status.get("score")
    if score is None:
        score = (status.get("metrics") or {}).get(metric)
    return summary.ModelFacts(
        name=str(status.get("modelVersion")),
        metric=metric,
        score=score,
        dataset_version=status.get("datasetVersion"),
        training_job=job["metadata"]["name"],
    )


def comparison_of(cluster: Cluster, job: dict[str, Any]) -> summary.Comparison | None:
    """The retrain's comparison with the serving version: from its status when the operator
    reports it there, else from its Pod's termination message (train's result)."""
    status = job.get("status") or {}
    found = summary.comparison_from(status.get("comparison") and status)
    for _ in range(3):  # the Pod's status may lag the TrainingJob's by a moment
        if found is not None or not status.get("jobName"):
            break
        found = summary.comparison_from(cluster.termination_message(NAMESPACE, status["jobName"]))
        if found is None:
            time.sleep(1)
    return found


class StatusSampler:
    """Polls the InferenceService once a second into the timeline."""

    def __init__(self, cluster: Cluster, line: timeline.Timeline, clock: Any) -> None:
        self.cluster, self.line, self.clock = cluster, line, clock
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self.run, name="demo-sampler", daemon=True)

    def run(self) -> None:
        while not self.stop_event.is_set():
            try:
                isvc = self.cluster.get("InferenceService", NAMESPACE, ISVC)
            except Exception:  # a missed poll is a gap in the picture, not a failure
                isvc = None
            if isvc:
                status = isvc.get("status") or {}
                drift = status.get("drift") or {}
                self.line.add_drift(
                    timeline.DriftSample(
                        self.clock(),
                        drift.get("score"),
                        drift.get("detected"),
                        status.get("activeModelVersion"),
                    )
                )
            self.stop_event.wait(1.0)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(timeout=5)


def first_prediction(say: Narrator, base_url: str) -> None:
    batch = traffic.draw(1, shifted=False, seed=1)

    def probe() -> tuple[str | None, str]:
        try:
            answer, _ = send_round(base_url, batch, timeout=3)
        except (httpx.HTTPError, ValueError) as error:
            return None, f"{type(error).__name__}: {error}"  # kube-proxy may lag 1-2 s
        return f"{answer.predictions[0]} from version {answer.model_version}", "answered"

    began = time.monotonic()
    text, _ = say.wait(f"an answer from {base_url}/predict", probe, timeout=60)
    say.say(
        f"prediction through the Service: {json.dumps(batch.records[0])} → {text} "
        f"(label {batch.labels[0]})",
        took=time.monotonic() - began,
    )


def run_demo(say: Narrator, target: Target, cluster: Cluster, record: summary.DemoRecord) -> None:
    # The traffic's iris rows come from scikit-learn, whose import takes seconds on a busy
    # machine: load them while the cluster work goes on, not in the middle of the story.
    threading.Thread(target=traffic.iris_rows, daemon=True).start()
    install(say, target, cluster)
    pipeline = PIPELINE.read_text()
    spec = {d["kind"]: d for d in yaml.safe_load_all(pipeline) if d}["InferenceService"]["spec"]
    min_samples = int(spec["monitoring"]["minSamples"])
    threshold = float(spec["monitoring"]["threshold"])
    cluster.apply(pipeline, NAMESPACE)
    applied = cluster.get("InferenceService", NAMESPACE, ISVC) or {}
    if not (applied.get("spec", {}).get("monitoring") or {}).get("capture"):
        raise DemoError(
            "the cluster's InferenceService CRD dropped spec.monitoring.capture (an older CRD): "
            "apply this tree's crds/ (kubectl apply --server-side -f crds/)"
        )
    say.say(f"applied {PIPELINE.relative_to(REPO)}: Dataset, TrainingJob, InferenceService")

    began = time.monotonic()
    dataset = wait_dataset_version(say, cluster, other_than=None, timeout=240)
    first_version = dataset["status"]["version"]
    record.data_versions.append((first_version, dataset["status"].get("rows")))
    say.say(
        f"dataset {DATASET} profiled: version {summary.short_digest(first_version)}, "
        f"{dataset['status'].get('rows')} rows, "
        f"{len(dataset['status'].get('features') or [])} features",
        took=time.monotonic() - began,
    )

    began = time.monotonic()
    job = wait_training(say, cluster, FIRST_JOB, timeout=600)
    record.first_model = training_facts(job)
    first = record.first_model
    say.say(
        f"trainingjob {FIRST_JOB}: {first.metric} {summary.number(first.score)} on data "
        f"{summary.short_digest(first.dataset_version)}; registered {first.name}",
        took=time.monotonic() - began,
    )
    wait_model_version_ready(say, cluster, record.first_model.name)

    began = time.monotonic()
    isvc = wait_serving(say, cluster, record.first_model.name, timeout=300)
    ip = cluster.service_ip(NAMESPACE, ISVC)
    if not ip:
        fail_resource(
            "the active Service has no ClusterIP", "InferenceService", isvc, isvc_state(isvc)
        )
    base_url = f"http://{ip}"
    record.endpoint = base_url
    say.say(
        f"inferenceservice {ISVC} serves {record.first_model.name} "
        f"({isvc['status'].get('activeColor')}) at {base_url} "
        f"(in-cluster {isvc['status'].get('url')})",
        took=time.monotonic() - began,
    )
    first_prediction(say, base_url)
    first_seen = datetime.now(UTC)

    line = timeline.Timeline()
    sampler = StatusSampler(Cluster(target.kubeconfig, target.path), line, say.elapsed)
    sender = TrafficSender(base_url, line, say.elapsed, batch_size=10, rounds_per_second=2.0)
    sampler.start()
    sender.start()
    try:
        run_loop(say, cluster, record, line, sender, min_samples=min_samples, threshold=threshold)
        first_job = cluster.get("TrainingJob", NAMESPACE, FIRST_JOB) or {}
        created, milestones = steps.trainingjob_to_serving(
            isvc=cluster.get("InferenceService", NAMESPACE, ISVC) or {},
            training_job=first_job,
            model_version=cluster.get("ModelVersion", NAMESPACE, record.first_model.name) or {},
            serving_seen=first_seen,
        )
        if created:
            record.job_to_serving_seconds = steps.total_seconds(created, milestones)
            record.loop_lines.append(
                steps.format_spans("trainingjob created → its model serving", created, milestones)
            )
    finally:
        sender.stop()
        sampler.stop()
        final = line.snapshot()
        record.picture = write_timeline_png(final, PICTURE, threshold=threshold)
        if sender.stats.failed_rounds or sender.stats.feedback_refused:
            stats = sender.stats
            rounds = stats.rounds + stats.failed_rounds
            error = f" (last error: {stats.last_error})" if stats.last_error else ""
            record.notes.append(
                f"{stats.failed_rounds} of {rounds} request rounds failed, "
                f"{stats.feedback_refused} feedback lists refused{error}"
            )


def run_loop(
    say: Narrator,
    cluster: Cluster,
    record: summary.DemoRecord,
    line: timeline.Timeline,
    sender: TrafficSender,
    *,
    min_samples: int,
    threshold: float,
) -> None:
    assert record.first_model is not None
    say.say(
        f"sending base traffic for {BASE_SECONDS:.0f} s (20 rows/s; answers checked against "
        "their labels by the client, no feedback: these rows add nothing to the data)"
    )
    base_started = say.elapsed()

    def base_probe() -> tuple[bool | None, str]:
        if say.elapsed() - base_started >= BASE_SECONDS:
            return True, "done"
        sent = line.snapshot().traffic
        right = timeline.accuracy_between(sent, base_started, say.elapsed())
        return None, f"{sum(s.rows for s in sent)} rows answered, {summary.percent(right)} right"

    say.wait("the base traffic", base_probe, timeout=BASE_SECONDS + 30)

    shift_at = say.elapsed()
    injected = datetime.now(UTC)
    line.mark(shift_at, "shift")
    sender.shifted = True
    sender.batch_size = STEADY_BATCH
    say.say(
        f"drift injected: petal length +{traffic.PETAL_LENGTH_SHIFT:g} cm, petal width "
        f"+{traffic.PETAL_WIDTH_SHIFT:g} cm, labels = the flowers' species; a burst of "
        f"{SHIFT_BURST_ROWS} rows, then {STEADY_BATCH * 2} rows/s"
    )
    burst = sender.burst(SHIFT_BURST_ROWS)

    def drift_probe() -> tuple[dict[str, Any] | None, str]:
        isvc = cluster.get("InferenceService", NAMESPACE, ISVC)
        drift = ((isvc or {}).get("status") or {}).get("drift") or {}
        if drift.get("detected"):
            return drift, "detected"
        return None, (
            f"score {summary.number(drift.get('score'))}, samples {drift.get('samples')}, "
            f"checked {drift.get('checkedAt')}; burst {sender.burst_sent}/{SHIFT_BURST_ROWS} "
            "rows sent"
        )

    drift = wait_or_fail(
        say,
        "the drift sidecar to report drift",
        drift_probe,
        timeout=120,
        kind="InferenceService",
        name=ISVC,
        cluster=cluster,
    )
    detected_isvc = cluster.get("InferenceService", NAMESPACE, ISVC)
    detected_at = steps.condition_time(detected_isvc or {}, "DriftDetected")
    line.mark(at_resource_time(say, detected_at), "drift detected")
    record.drift_features = list(drift.get("driftedFeatures") or [])
    record.drift_score = drift.get("score")
    say.say(
        f"drift detected: score {summary.number(drift.get('score'))} (threshold "
        f"{drift.get('threshold')}, {drift.get('method')}) on {', '.join(record.drift_features)}; "
        f"feedback accuracy {summary.number(drift.get('accuracy'))}",
        took=say.elapsed() - shift_at,
    )

    def retrain_probe() -> tuple[dict[str, Any] | None, str]:
        isvc = cluster.get("InferenceService", NAMESPACE, ISVC)
        last = ((isvc or {}).get("status") or {}).get("lastRetrain") or {}
        if last.get("trainingJob"):
            return last, "started"
        return None, isvc_state(isvc)

    last = wait_or_fail(
        say,
        "the operator to start a retrain",
        retrain_probe,
        timeout=60,
        kind="InferenceService",
        name=ISVC,
        cluster=cluster,
    )
    retrain_job = str(last["trainingJob"])
    line.mark(at_resource_time(say, steps.parse_time(last.get("at"))), "retrain")
    say.say(f"retraining started: trainingjob/{retrain_job} ({last.get('reason') or 'drift'})")
    burst.join(timeout=120)
    burst_accuracy = timeline.accuracy_between(line.snapshot().traffic, shift_at, say.elapsed())
    say.say(
        f"the burst: {sender.burst_sent} shifted rows sent with their labels; "
        f"{record.first_model.name} got {summary.percent(burst_accuracy)} of them right"
    )

    began = time.monotonic()

    def pinned_probe() -> tuple[str | None, str]:
        job = cluster.get("TrainingJob", NAMESPACE, retrain_job)
        pinned = ((job or {}).get("status") or {}).get("datasetVersion")
        if pinned:
            return str(pinned), "pinned"
        dataset = cluster.get("Dataset", NAMESPACE, DATASET)
        return None, f"trainingjob: {state_of(job)}; dataset: {state_of(dataset)}"

    pinned = wait_or_fail(
        say,
        f"the Dataset refresh and trainingjob/{retrain_job} to pin its data",
        pinned_probe,
        timeout=240,
        kind="TrainingJob",
        name=retrain_job,
        cluster=cluster,
    )
    dataset = cluster.get("Dataset", NAMESPACE, DATASET) or {}
    rows = next(
        (
            e.get("rows")
            for e in dataset.get("status", {}).get("history") or []
            if e.get("version") == pinned
        ),
        None,
    )
    if pinned == record.data_versions[0][0]:
        failure = (
            f"no new data version: {retrain_job} trains on {summary.short_digest(pinned)}, the "
            f"version iris-v1 was trained on; {capture_diagnosis(cluster)}"
        )
        record.failures.append(failure)
        say.say(f"FAILED: {failure}")
    else:
        record.data_versions.append((pinned, rows))
        say.say(
            f"dataset {DATASET}: new version {summary.short_digest(pinned)} with {rows} rows "
            f"(base + labelled captures); {retrain_job} trains on it",
            took=time.monotonic() - began,
        )

    began = time.monotonic()
    job = wait_training(say, cluster, retrain_job, timeout=600)
    record.retrained = training_facts(job)
    record.comparison = comparison_of(cluster, job)
    registered = cluster.get("ModelVersion", NAMESPACE, record.retrained.name) or {}
    line.mark(
        at_resource_time(say, steps.parse_time(registered["metadata"].get("creationTimestamp"))),
        f"{record.retrained.name} registered",
    )
    say.say(
        f"trainingjob {retrain_job}: registered {record.retrained.name}; "
        f"{summary.comparison_line(record.comparison)}",
        took=time.monotonic() - began,
    )
    wait_model_version_ready(say, cluster, record.retrained.name)

    began = time.monotonic()
    before = cluster.get("InferenceService", NAMESPACE, ISVC) or {}
    old_color = (before.get("status") or {}).get("activeColor")
    isvc = wait_serving(say, cluster, record.retrained.name, timeout=300, narrate=True)
    line.mark(at_resource_time(say, steps.promoted_at(isvc, record.retrained.name)), "switch")
    say.say(
        f"blue-green switch: the active Service moved {old_color} → "
        f"{isvc['status'].get('activeColor')}; {record.retrained.name} serves",
        took=time.monotonic() - began,
    )

    new_name = record.retrained.name

    def answered_probe() -> tuple[float | None, str]:
        seen = timeline.first_answer_from(line.snapshot().traffic, new_name)
        return seen, "answers still come from the old version"

    seen_at, _ = say.wait(f"answers from {new_name}", answered_probe, timeout=60)
    # The client's clock at that first answer, for the step breakdown.
    serving_seen = datetime.now(UTC) - timedelta(seconds=say.elapsed() - seen_at)
    say.say(f"the clients' answers now come from {new_name}")

    def cleared_probe() -> tuple[dict[str, Any] | None, str]:
        now = cluster.get("InferenceService", NAMESPACE, ISVC)
        drift = ((now or {}).get("status") or {}).get("drift") or {}
        judged = (drift.get("samples") or 0) >= min_samples and drift.get("score") is not None
        clean = judged and float(drift["score"]) < threshold
        if clean and not drift.get("detected"):
            return drift, "cleared"
        return None, (
            f"detected {drift.get('detected')}, score {summary.number(drift.get('score'))}, "
            f"samples {drift.get('samples')}"
        )

    # Without new data the retrained model has the old reference: drift cannot clear, so the
    # wait is short and only confirms it.
    clear_timeout = 20 if record.failures else 90
    try:
        cleared, waited = say.wait(
            "drift to clear on the new version", cleared_probe, timeout=clear_timeout
        )
        line.mark(say.elapsed(), "drift cleared")
        say.say(
            f"drift cleared: score {summary.number(cleared.get('score'))} against "
            f"{record.retrained.name}'s own reference; feedback accuracy "
            f"{summary.number(cleared.get('accuracy'))}",
            took=waited,
        )
    except WaitTimeoutError as error:
        record.notes.append(f"drift did not clear within {clear_timeout} s of the switch: {error}")
        say.say(f"drift has not cleared: {error}")

    time.sleep(3)  # a few more labelled answers from the new version for the picture
    final = line.snapshot()
    end = say.elapsed()
    record.accuracy_before = timeline.accuracy_between(final.traffic, base_started, shift_at)
    record.accuracy_shifted = timeline.accuracy_between(
        final.traffic, shift_at, end, served_by=record.first_model.name
    )
    record.accuracy_after = timeline.accuracy_between(
        final.traffic, shift_at, end, served_by=record.retrained.name
    )
    isvc_now = cluster.get("InferenceService", NAMESPACE, ISVC) or {}
    dataset_now = cluster.get("Dataset", NAMESPACE, DATASET) or {}
    job_now = cluster.get("TrainingJob", NAMESPACE, retrain_job) or {}
    version_now = cluster.get("ModelVersion", NAMESPACE, record.retrained.name) or {}
    milestones = steps.drift_to_serving(
        injected,
        isvc=isvc_now,
        dataset=dataset_now,
        training_job=job_now,
        model_version=version_now,
        serving_seen=serving_seen,
        detected=detected_at,
    )
    record.drift_to_serving_seconds = steps.total_seconds(injected, milestones)
    record.loop_lines.append(
        steps.format_spans("drift → new version serving", injected, milestones)
    )


def run() -> tuple[int, summary.DemoRecord | None, Target | None]:
    """The whole demo: (exit code, what it established, the cluster it ran on)."""
    say = Narrator()
    say.say("kubeloop demo: data → training → registry → blue-green serving → drift → retrain")
    state = read_state()
    target: Target | None = None
    record: summary.DemoRecord | None = None
    try:
        target = resolve_target(say, start=True)
        state.update(
            namespace=NAMESPACE,
            devcluster=target.devcluster,
            started_cluster=bool(state.get("started_cluster")) or target.started,
            kubeconfig=str(target.kubeconfig),
        )
        write_state(state)
        cluster = Cluster(target.kubeconfig, target.path)
        record = summary.DemoRecord(namespace=NAMESPACE, isvc=ISVC)
        run_demo(say, target, cluster, record)
    except (DemoError, CommandError) as error:
        print(f"\n{error}", file=sys.stderr)
        print("make demo-down removes what the demo started.", file=sys.stderr)
        return 1, record, target
    record.elapsed_seconds = say.elapsed()
    return (1 if record.failures else 0), record, target


def up() -> int:
    code, record, target = run()
    if record and target and record.elapsed_seconds is not None:
        print(summary.render_summary(record, kubectl=f"KUBECONFIG={target.kubeconfig} kubectl"))
    return code


def down() -> int:
    say = Narrator()
    state = read_state()
    try:
        target = resolve_target(say, start=False)
    except DemoError as error:
        say.say(f"no cluster to clean ({error})")
        STATE.unlink(missing_ok=True)
        return 0
    cluster = Cluster(target.kubeconfig, target.path)
    namespace = state.get("namespace", NAMESPACE)
    kinds = ",".join(f"{plural}.kubeloop.dev" for plural in PLURALS.values())
    for text, argv in (
        # The resources first, while the operator still runs to release its finalizers; then
        # the demo's own Jobs, whose Pods would hold the artifact claim.
        (
            "deleting the demo's Kubeloop resources",
            [
                "kubectl",
                "-n",
                namespace,
                "delete",
                kinds,
                "--all",
                "--ignore-not-found",
                "--wait",
                "--timeout=90s",
            ],
        ),
        (
            "deleting the demo's Jobs",
            [
                "kubectl",
                "-n",
                namespace,
                "delete",
                "jobs",
                "-l",
                "app.kubernetes.io/part-of=kubeloop-demo",
                "--cascade=foreground",
                "--ignore-not-found",
                "--wait",
                "--timeout=60s",
            ],
        ),
        (
            f"helm uninstall {RELEASE}",
            [
                "helm",
                "uninstall",
                RELEASE,
                "--namespace",
                namespace,
                "--wait",
                "--timeout=2m",
                "--ignore-not-found",
            ],
        ),
        (
            f"deleting namespace {namespace}",
            [
                "kubectl",
                "delete",
                "namespace",
                namespace,
                "--ignore-not-found",
                "--wait",
                "--timeout=120s",
            ],
        ),
    ):
        say.say(f"{text} …")
        try:
            cluster.run(argv)
        except CommandError as error:
            say.say(f"{error}")
    say.say(f"removed the demo's resources, release {RELEASE} and namespace {namespace}")
    if state.get("started_cluster") and target.devcluster:
        run_logged([*DEVCLUSTER, "down"], "devcluster-down", show=True)
        say.say("stopped the local cluster the demo had started (hack/devcluster.py down)")
    STATE.unlink(missing_ok=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("command", choices=("up", "down"))
    args = parser.parse_args(argv)
    return up() if args.command == "up" else down()


if __name__ == "__main__":
    sys.exit(main())
