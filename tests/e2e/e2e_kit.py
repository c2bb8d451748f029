"""What the e2e tests share: the installed release (`Stack`), one test's namespace (`Scene`) with
the demo's pipeline in it, waits that fail with the resource's status and the operator's log, and
a few objects the tests make (a hand-registered ModelVersion, Jobs on the artifact claim).

The reading and the traffic are hack/demolib's (`Cluster`, `load`, `traffic`, `timeline`): the
same code `make demo` and bench/loop.py use, so the tests check what a user sees there.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import pytest
import yaml

from demolib import manifests, traffic
from demolib.cluster import PLURALS, Cluster, condition, state_of
from demolib.load import Answer, send_round
from incluster import REPO, RUNTIME_IMAGE, KubectlRunner, image_ref, operator_logs

T = TypeVar("T")
Probe = Callable[[], tuple[T | None, str]]

PIPELINE = REPO / "examples" / "demo" / "iris-loop.yaml"
VALUES = REPO / "examples" / "demo" / "values.yaml"
RUNTIME = image_ref(RUNTIME_IMAGE)
CLAIM = "kubeloop-artifacts"  # the chart's claim in each namespace (examples/demo/values.yaml)
DATA_FOLDER = f"pvc://{CLAIM}/demo/iris-data/"  # where the demo pipeline's Dataset reads
ISVC, DATASET, FIRST_JOB, MODEL = "iris", "iris", "iris-rf", "iris"
SEED_JOB = "e2e-seed-iris"
LABEL_ISVC = "kubeloop.dev/inferenceservice"


def pipeline_docs() -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(PIPELINE.read_text()) if doc]


def pipeline_spec(kind: str) -> dict[str, Any]:
    return dict(next(d for d in pipeline_docs() if d["kind"] == kind)["spec"])


@dataclass
class Stack:
    """The chart's release: the operator in-cluster, serving the tests' namespaces."""

    name: str  # the release, also the operator's Deployment (its name contains "kubeloop")
    namespace: str  # the operator's
    watched: tuple[str, ...]
    kubectl: KubectlRunner
    cluster: Cluster

    @property
    def selector(self) -> str:
        return f"app.kubernetes.io/instance={self.name},app.kubernetes.io/component=operator"

    def logs(self, tail: int = 60) -> str:
        try:
            return operator_logs(self.kubectl, self.namespace, self.selector, tail=tail)
        except Exception as error:  # a failure message must not fail itself
            return f"(operator log unavailable: {error})"


@dataclass
class Baseline:
    """A namespace's pipeline at rest: the first data version, iris-v1 serving."""

    dataset_version: str
    rows: int
    model_version: str  # iris-v1
    url: str  # http://<ClusterIP of the active Service>
    artifact: dict[str, str]  # iris-v1's {uri, digest}
    accuracy: float | None  # iris-v1's held-out accuracy


@dataclass
class Scene:
    """One test's namespace on the release, with the demo's pipeline applied to it."""

    stack: Stack
    namespace: str
    baseline_cache: Baseline | None = field(default=None, repr=False)

    @property
    def cluster(self) -> Cluster:
        return self.stack.cluster

    # --- reads ---------------------------------------------------------------------------------

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        return self.cluster.get(kind, self.namespace, name)

    def isvc(self) -> dict[str, Any]:
        return self.get("InferenceService", ISVC) or {}

    def status(self, kind: str, name: str) -> dict[str, Any]:
        return dict((self.get(kind, name) or {}).get("status") or {})

    def names(self, kind: str, selector: str = "") -> list[str]:
        return sorted(
            i["metadata"]["name"] for i in self.cluster.items(kind, self.namespace, selector)
        )

    def serving_pods(self, color: str | None = None) -> list[dict[str, Any]]:
        selector = f"{LABEL_ISVC}={ISVC},app.kubernetes.io/component=predictor"
        if color:
            selector += f",kubeloop.dev/color={color}"
        return self.cluster.pods(self.namespace, selector)

    def kubectl(self, *args: str, check: bool = True, timeout: float = 60) -> str:
        return self.stack.kubectl("-n", self.namespace, *args, check=check, timeout=timeout).stdout

    # --- failure messages ----------------------------------------------------------------------

    def diagnose(self, *focus: tuple[str, str]) -> str:
        """The focused resources' status, what runs in the namespace, its recent Events and the
        operator's log: what a failed wait says."""
        parts = []
        for kind, name in focus or (("InferenceService", ISVC),):
            resource = self.get(kind, name)
            status = (resource or {}).get("status")
            parts.append(f"{kind}/{name} status:\n{yaml.safe_dump(status) if status else '(none)'}")
        kinds = ",".join(f"{p}.kubeloop.dev" for p in PLURALS.values())
        listing = self.stack.kubectl(
            "get",
            f"{kinds},deployments,jobs,pods",
            "-n",
            self.namespace,
            "-o",
            "wide",
            check=False,
        )
        parts.append(f"kubectl get -n {self.namespace}:\n{listing.stdout}{listing.stderr}")
        events = self.stack.kubectl(
            "get", "events", "-n", self.namespace, "--sort-by=.lastTimestamp", check=False
        ).stdout.splitlines()
        parts.append("events (last 15):\n" + "\n".join(events[-15:]))
        parts.append(f"operator log (tail):\n{self.stack.logs()}")
        return "\n\n".join(parts)

    def wait(
        self,
        what: str,
        probe: Probe[T],
        *,
        timeout: float,
        interval: float = 1.0,
        focus: tuple[tuple[str, str], ...] = (),
    ) -> T:
        """Poll `probe` (value or None, progress text) until it gives a value; on timeout fail
        with what was waited for, the last progress and `diagnose(*focus)`."""
        deadline = time.monotonic() + timeout
        progress = "not checked yet"
        while True:
            value, progress = probe()
            if value is not None and value is not False:
                return value
            if time.monotonic() > deadline:
                pytest.fail(
                    f"timed out after {timeout:.0f}s waiting for {what} in {self.namespace}; "
                    f"last seen: {progress}\n\n{self.diagnose(*focus)}",
                    pytrace=False,
                )
            time.sleep(interval)

    # --- the pipeline --------------------------------------------------------------------------

    def seed(self) -> None:
        """The demo's base data (150 iris rows as base.csv) into the Dataset's folder."""
        job = manifests.seed_job(SEED_JOB, self.namespace, RUNTIME, DATA_FOLDER)
        self.cluster.apply(json.dumps(job))

    def wait_job(self, name: str, timeout: float = 180) -> dict[str, Any] | None:
        """Until the batch Job `name` succeeded; its Pod's parsed termination message."""

        def probe() -> tuple[bool | None, str]:
            status = (self.cluster.job(self.namespace, name) or {}).get("status") or {}
            if status.get("succeeded"):
                return True, "succeeded"
            if status.get("failed"):
                logs = self.kubectl("logs", f"job/{name}", "--tail=20", check=False)
                pytest.fail(f"job/{name} in {self.namespace} failed:\n{logs}", pytrace=False)
            return None, f"active {status.get('active') or 0}"

        self.wait(f"job/{name}", probe, timeout=timeout)
        return self.cluster.termination_message(self.namespace, name)

    def apply_pipeline(self) -> None:
        self.cluster.apply(PIPELINE.read_text(), self.namespace)

    def baseline(self, timeout: float = 420) -> Baseline:
        """Waits for the pipeline at rest: the Dataset profiled, iris-rf Succeeded, iris-v1
        Ready and serving through the active Service (and answering there)."""
        if self.baseline_cache is not None:
            return self.baseline_cache
        began = time.monotonic()

        def left() -> float:
            return max(30.0, timeout - (time.monotonic() - began))

        dataset = self.wait(
            "the Dataset to be profiled",
            lambda: _ready(self.get("Dataset", DATASET)),
            timeout=left(),
            focus=(("Dataset", DATASET),),
        )
        job = self.wait(
            f"trainingjob/{FIRST_JOB} to succeed",
            lambda: self.training_done(FIRST_JOB),
            timeout=left(),
            focus=(("TrainingJob", FIRST_JOB),),
        )
        version = str(job["status"]["modelVersion"])
        registered = self.wait(
            f"modelversion/{version} to be Ready",
            lambda: _ready(self.get("ModelVersion", version)),
            timeout=left(),
            focus=(("ModelVersion", version),),
        )
        self.wait_serving(version, timeout=left())
        ip = self.cluster.service_ip(self.namespace, ISVC)
        assert ip, f"service/{ISVC} has no ClusterIP:\n{self.diagnose()}"
        url = f"http://{ip}"
        # A ClusterIP can refuse connections for a moment after its endpoints become ready.
        self.wait(
            f"an answer through {url}",
            lambda: self.try_predict(url, traffic.draw(1, shifted=False, seed=1)),
            timeout=60,
        )
        spec = registered["spec"]
        self.baseline_cache = Baseline(
            dataset_version=str(dataset["status"]["version"]),
            rows=int(dataset["status"]["rows"]),
            model_version=version,
            url=url,
            artifact={"uri": spec["artifact"]["uri"], "digest": spec["artifact"]["digest"]},
            accuracy=(spec.get("metrics") or {}).get("accuracy"),
        )
        return self.baseline_cache

    def training_done(self, name: str) -> tuple[dict[str, Any] | None, str]:
        job = self.get("TrainingJob", name)
        phase = ((job or {}).get("status") or {}).get("phase")
        if phase == "Succeeded" and job and job["status"].get("modelVersion"):
            return job, "Succeeded"
        if phase in ("Rejected", "Failed"):
            pytest.fail(
                f"trainingjob/{name} ended {phase}\n\n{self.diagnose(('TrainingJob', name))}",
                pytrace=False,
            )
        return None, state_of(job)

    def retrain_started(self) -> tuple[dict[str, Any] | None, str]:
        """status.lastRetrain once it names a TrainingJob (the probe of a wait)."""
        status = self.isvc().get("status") or {}
        last = status.get("lastRetrain") or {}
        if last.get("trainingJob"):
            return dict(last), "started"
        return None, f"drift {status.get('drift')}; lastRetrain {last or None}"

    def wait_condition(self, kind: str, status: str, *, timeout: float = 60) -> dict[str, Any]:
        """Until the InferenceService's condition `kind` has `status` (the operator writes its
        conditions after the sidecars patch status.drift: a moment later)."""

        def probe() -> tuple[dict[str, Any] | None, str]:
            found = condition_of(self.isvc(), kind)
            return (found if found.get("status") == status else None), str(found)

        return self.wait(f"condition {kind}={status}", probe, timeout=timeout)

    def wait_serving(self, version: str, timeout: float = 300) -> dict[str, Any]:
        """Until the InferenceService is Ready with `version` active (fails at once when the
        rollout of `version` is aborted)."""

        def probe() -> tuple[dict[str, Any] | None, str]:
            isvc = self.isvc()
            status = isvc.get("status") or {}
            candidate = status.get("candidate") or {}
            if candidate.get("modelVersion") == version and candidate.get("phase") == "Failed":
                pytest.fail(
                    f"the rollout of {version} failed: {candidate.get('message')}\n\n"
                    f"{self.diagnose()}",
                    pytrace=False,
                )
            if status.get("activeModelVersion") == version and status.get("phase") == "Ready":
                return isvc, "Ready"
            return None, isvc_state(isvc)

        return self.wait(f"inferenceservice/{ISVC} to serve {version}", probe, timeout=timeout)

    @staticmethod
    def try_predict(url: str, batch: traffic.Batch) -> tuple[Answer | None, str]:
        try:
            answer, _ = send_round(url, batch, timeout=5, feedback=False)
        except (httpx.HTTPError, ValueError) as error:
            return None, f"{type(error).__name__}: {error}"
        return answer, "answered"

    # --- objects the tests make ----------------------------------------------------------------

    def register(self, version: int, artifact: dict[str, str], *, description: str) -> str:
        """A ModelVersion of `iris` registered by hand (verified by the operator's Job)."""
        name = f"{MODEL}-v{version}"
        body = {
            "apiVersion": "kubeloop.dev/v1alpha1",
            "kind": "ModelVersion",
            "metadata": {"name": name, "namespace": self.namespace},
            "spec": {
                "modelName": MODEL,
                "version": version,
                "artifact": artifact,
                "description": description,
            },
        }
        self.cluster.apply(json.dumps(body))
        return name

    def claim_job(self, name: str, script: str, *args: str) -> dict[str, Any] | None:
        """Run a Python script with the artifact claim at /mnt/pvc/<claim>; its result."""
        job = manifests.claim_job(
            name, self.namespace, RUNTIME, CLAIM, ["python", "-c", script, *args]
        )
        self.cluster.apply(json.dumps(job))
        return self.wait_job(name)


def claim_path(uri: str) -> str:
    """`pvc://claim/a/b/` → `/mnt/pvc/claim/a/b` (where claim_job mounts it)."""
    return manifests.pvc_mount(uri)[1]


def _ready(resource: dict[str, Any] | None) -> tuple[dict[str, Any] | None, str]:
    if ((resource or {}).get("status") or {}).get("phase") == "Ready":
        return resource, "Ready"
    return None, state_of(resource)


def isvc_state(isvc: dict[str, Any] | None) -> str:
    status = (isvc or {}).get("status") or {}
    candidate = status.get("candidate") or {}
    text = (
        f"{state_of(isvc)}; active {status.get('activeModelVersion')} ({status.get('activeColor')})"
    )
    if candidate:
        text += (
            f"; candidate {candidate.get('modelVersion')} ({candidate.get('color')}) "
            f"{candidate.get('phase')}: {candidate.get('message') or ''}"
        )
    return text


def condition_of(resource: dict[str, Any] | None, kind: str) -> dict[str, Any]:
    return dict(condition(resource, kind) or {})
