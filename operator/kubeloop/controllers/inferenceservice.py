"""The InferenceService controller: observe → builders → apply → status, nothing more.

One reconcile (`reconcile`) per InferenceService at a time (the Runner serialises them), woken by:
the InferenceService's own events (spec, annotations, and status: Kopf's `on.event` sees every
change, `status.drift` from the sidecars included), its Deployments and Pods, the ModelVersions
of its model (a new Ready version for `latest`, a moved alias or stage), and its retrain
TrainingJobs. What to do is decided by builders/target.py, rollout.py, retrain.py and
smoketest.py; this module only reads, applies, sends the smoke test, writes status and Events.
No finalizers, no Kopf timers: requeues are in memory, and every deadline they serve is kept in
status (candidate.since, scaleDown.at, lastRetrain.at), so a restarted operator recomputes them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
import kopf

from kubeloop import metrics
from kubeloop.api.base import API_VERSION, GROUP
from kubeloop.api.inferenceservice import Color, InferenceServiceSpec
from kubeloop.builders.inferenceservice import (
    ANNOTATION_PROMOTE,
    COLORS,
    LABEL_COLOR,
    LABEL_ISVC,
    Owner,
    build_active_service,
    build_deployment,
    build_preview_service,
    build_replicas_patch,
    build_sidecar_rbac,
    deployment_name,
    preview_service_name,
    template_hash,
)
from kubeloop.builders.retrain import (
    build_refresh_patch,
    build_retrain_training_job,
    decide_retrain,
    retrain_selector,
)
from kubeloop.builders.rollout import (
    ColorState,
    Desired,
    RolloutInputs,
    RolloutPlan,
    RolloutRecord,
    SmokeResult,
    availability,
    decide,
    deployment_essentials,
    observe_deployment,
    pod_failure,
    status_patch,
)
from kubeloop.builders.smoketest import SmokeAnswer, SmokeRequest, judge, smoke_requests
from kubeloop.builders.status import apply_merge_patch
from kubeloop.builders.target import ServingTarget, resolve_target
from kubeloop.kube.apply import (
    apply,
    create,
    get_or_none,
    list_objects,
    patch,
    patch_status,
)
from kubeloop.kube.errors import Conflict, NotFound
from kubeloop.kube.events import emit
from kubeloop.kube.views import (
    UNKNOWN,
    OwnWrites,
    index_values,
    read_object,
    version_of,
    without_managed_fields,
)
from kubeloop.runner import DONE, Context, Outcome, Runner

KIND = "InferenceService"
logger = logging.getLogger(__name__)
Key = tuple[str, str, str, str]  # apiVersion, kind, namespace, name


class AppliedManifests:
    """What this process last applied per child, so an unchanged manifest is not sent again.

    Server-side apply of an unchanged manifest changes nothing but still costs a request; an
    InferenceService is reconciled on every event of itself and its children, so most applies
    would be such no-ops. An entry is dropped when an event shows the child at another
    resourceVersion than our apply left it (a change by someone else, a deletion): the next
    reconcile applies again. Lost on restart, which is safe.
    """

    def __init__(self) -> None:
        self._applied: dict[Key, tuple[str, str | None]] = {}  # digest, resourceVersion
        self._lock = threading.Lock()

    @staticmethod
    def key(manifest: Mapping[str, Any]) -> Key:
        meta = manifest["metadata"]
        return (manifest["apiVersion"], manifest["kind"], meta.get("namespace", ""), meta["name"])

    def apply(self, api: Any, manifest: Mapping[str, Any]) -> None:
        key = self.key(manifest)
        digest = hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()
        with self._lock:
            known = self._applied.get(key)
        if known is not None and known[0] == digest:
            return
        result = apply(api, manifest)
        with self._lock:
            self._applied[key] = (digest, (result.get("metadata") or {}).get("resourceVersion"))

    def observed(self, key: Key, resource_version: str | None, deleted: bool) -> bool:
        """An event of the child; True when it is not the state our last apply left."""
        with self._lock:
            known = self._applied.get(key)
            if known is None:
                return True
            if deleted or known[1] != resource_version:
                del self._applied[key]
                return True
            return False


APPLIED = AppliedManifests()
# Kopf's watch-fed indexes a reconcile reads instead of a GET and a LIST (context.indexes, by
# these names; bound at startup): the InferenceServices, their Deployments and the ModelVersions
# of each model. OWN_WRITES: our writes they may not show yet (kube/views.py).
BODIES_INDEX = "inference_service_bodies"
DEPLOYMENTS_INDEX = "deployments_by_inference_service"
MODEL_VERSIONS_INDEX = "model_versions_by_model"
OWN_WRITES = OwnWrites()


class OwnStatusWrites:
    """The resourceVersion an InferenceService had right after this process wrote its status,
    when nothing else had written it since the reconcile read it: the watch event of that write
    is an echo with nothing new, and starts no reconcile. With Kopf's batching the echo may be
    the only event delivered of several, so a write is recorded only when its result is exactly
    the object read plus our patch (same generation and annotations, status = read status with
    the patch applied): otherwise someone else's change (a spec edit, the drift sidecar's
    status.drift) is in it, and its event must reconcile. Lost on restart, which is safe."""

    def __init__(self) -> None:
        self._versions: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    def wrote(
        self,
        read: Mapping[str, Any],
        status_patch: Mapping[str, Any],
        result: Mapping[str, Any],
    ) -> None:
        before, after = read["metadata"], result.get("metadata") or {}
        key = (str(before["namespace"]), str(before["name"]))
        alone = (
            before.get("generation") == after.get("generation")
            and (before.get("annotations") or {}) == (after.get("annotations") or {})
            and _same(apply_merge_patch(read.get("status"), status_patch), result.get("status"))
        )
        with self._lock:
            if alone and after.get("resourceVersion"):
                self._versions[key] = str(after["resourceVersion"])
            else:
                self._versions.pop(key, None)

    def is_echo(self, namespace: str, name: str, resource_version: str | None) -> bool:
        with self._lock:
            return resource_version is not None and (
                self._versions.get((namespace, name)) == resource_version
            )

    def forget(self, namespace: str, name: str) -> None:
        with self._lock:
            self._versions.pop((namespace, name), None)


def _same(left: Any, right: Any) -> bool:
    return json.dumps(left, sort_keys=True, default=str) == json.dumps(
        right, sort_keys=True, default=str
    )


OWN_STATUS = OwnStatusWrites()


def _read(context: Context, namespace: str, name: str) -> dict[str, Any] | None:
    """The InferenceService from the watch (with our own latest write), else from the API."""
    index = context.indexes.get(BODIES_INDEX)
    return read_object(context.api, OWN_WRITES, index, API_VERSION, KIND, namespace, name)


def _model_versions(context: Context, namespace: str, model: str) -> Sequence[Mapping[str, Any]]:
    """The ModelVersions of the model, from Kopf's index (as fresh as a list, without sending
    the namespace's whole registry for every reconcile), else listed from the API."""
    index = context.indexes.get(MODEL_VERSIONS_INDEX)
    if index is None:
        return list_objects(context.api, API_VERSION, "ModelVersion", namespace)
    return index_values(index, (namespace, model))


def _deployments(context: Context, owner: Owner) -> Sequence[Mapping[str, Any]]:
    """The InferenceService's two Deployments as far as they exist, from the watch (with our own
    latest writes), else listed from the API."""
    index = context.indexes.get(DEPLOYMENTS_INDEX)
    seen = {
        body["metadata"]["name"]: body
        for body in index_values(index, (owner.namespace, owner.name))
    }
    if index is not None:
        found: list[Mapping[str, Any]] = []
        for color in COLORS:
            name = deployment_name(owner.name, color)
            body = OWN_WRITES.resolve(
                ("apps/v1", "Deployment", owner.namespace, name), seen.get(name)
            )
            if body is UNKNOWN:
                break
            if body is not None:
                found.append(body)
        else:
            return found
    listed = list_objects(
        context.api, "apps/v1", "Deployment", owner.namespace, f"{LABEL_ISVC}={owner.name}"
    )
    by_name = {body["metadata"]["name"]: body for body in listed}
    for color in COLORS:
        name = deployment_name(owner.name, color)
        body = by_name.get(name)
        OWN_WRITES.read(
            ("apps/v1", "Deployment", owner.namespace, name),
            version_of(seen.get(name)),
            deployment_essentials(body) if body is not None else None,
        )
    return listed


def _observe_colors(
    context: Context, owner: Owner, desired: Desired | None
) -> tuple[dict[Color, ColorState], dict[Color, str | None]]:
    """Each colour's Deployment, with its Pods' failure reason when it is not available, and
    the resourceVersion each was observed at (None: absent)."""
    colors: dict[Color, ColorState] = {}
    versions: dict[Color, str | None] = dict.fromkeys(COLORS)
    for body in _deployments(context, owner):
        color = (body["metadata"].get("labels") or {}).get(LABEL_COLOR)
        if color not in COLORS or body["metadata"]["name"] != deployment_name(owner.name, color):
            continue
        versions[color] = version_of(body)
        state = observe_deployment(body)
        if desired is not None and state.replicas > 0 and not availability(state, desired)[0]:
            pods = list_objects(
                context.api,
                "v1",
                "Pod",
                owner.namespace,
                f"{LABEL_ISVC}={owner.name},{LABEL_COLOR}={color}",
            )
            state = observe_deployment(body, pod_failure(pods))
        colors[color] = state
    return colors, versions


def _smoke_test(
    context: Context, owner: Owner, spec: InferenceServiceSpec, target: ServingTarget
) -> SmokeResult:
    """Send the smoke requests through the preview Service's ClusterIP; retried until the
    test's timeout, since a fresh Service endpoint can refuse for a second or two."""
    service = get_or_none(
        context.api, "v1", "Service", owner.namespace, preview_service_name(owner.name)
    )
    address = (service or {}).get("spec", {}).get("clusterIP")
    if not address or address == "None":
        return SmokeResult(False, f"Service {preview_service_name(owner.name)} has no ClusterIP")
    test = spec.rollout.smoke_test
    deadline = time.monotonic() + test.timeout_seconds
    base = f"http://{address}:80"
    answers: list[SmokeAnswer] = []
    with httpx.Client(base_url=base, timeout=5.0) as client:
        for request in smoke_requests(test, target.model_name, target.input_example):
            answers.append(_send_until_ok(client, request, deadline))
    return judge(answers, test)


def _send_until_ok(client: httpx.Client, request: SmokeRequest, deadline: float) -> SmokeAnswer:
    while True:
        try:
            response = client.request(request.method, request.path, json=request.body)
            try:
                answer: Any = response.json()
            except ValueError:
                answer = None
            ok = request.accepts(response.status_code, answer)
            result = SmokeAnswer(request, response.status_code, response.text[:300], ok)
        except httpx.HTTPError as error:
            result = SmokeAnswer(request, 0, f"{type(error).__name__}: {error}", False)
        # Connection problems and 503 (still loading, endpoints catching up) are retried.
        if result.ok or (result.status not in (0, 503)) or time.monotonic() > deadline:
            return result
        time.sleep(0.5)


def _emit_all(context: Context, body: Mapping[str, Any], plan: RolloutPlan) -> None:
    meta = body["metadata"]
    ref = {"kind": KIND, "namespace": meta["namespace"], "name": meta["name"]}
    for event in plan.events:
        logger.info("%s: %s", event.reason, event.message, extra={"k8s_ref": ref})
        emit(context.api, body, event.type, event.reason, event.message)
    for counter in plan.counters:
        metrics.ROLLOUTS.labels(counter).inc()


def _apply_children(
    context: Context,
    owner: Owner,
    spec: InferenceServiceSpec,
    target: ServingTarget | None,
    plan: RolloutPlan,
    colors: Mapping[Color, ColorState],
    versions: dict[Color, str | None],
    template: str | None,
) -> None:
    api = context.api
    for manifest in build_sidecar_rbac(owner):
        APPLIED.apply(api, manifest)
    if target is not None:
        for color, replicas in plan.render.items():
            state = colors.get(color)
            if state is not None and (state.template_hash, state.replicas) == (template, replicas):
                continue  # observed as wanted: nothing to send
            manifest = build_deployment(owner, spec, target, color, replicas, context.settings)
            _wrote_deployment(versions, color, apply(api, manifest))
    # Services after the Deployments (the selector flips once the new colour exists), and the
    # old colour scales down after the flip.
    APPLIED.apply(api, build_active_service(owner, plan.active_service))
    APPLIED.apply(api, build_preview_service(owner, plan.preview_service))
    for color, replicas in plan.scale.items():
        with contextlib.suppress(NotFound):  # nothing to scale
            scaled = patch(
                api,
                "apps/v1",
                "Deployment",
                owner.namespace,
                deployment_name(owner.name, color),
                build_replicas_patch(replicas),
            )
            _wrote_deployment(versions, color, scaled)


def _wrote_deployment(
    versions: dict[Color, str | None], color: Color, result: Mapping[str, Any]
) -> None:
    OWN_WRITES.wrote(versions[color], deployment_essentials(result))
    versions[color] = version_of(result)


def _retrain(
    context: Context,
    body: Mapping[str, Any],
    owner: Owner,
    spec: InferenceServiceSpec,
    status: Mapping[str, Any],
    now: datetime,
) -> tuple[dict[str, Any] | None, float | None]:
    """Drift → retrain; returns the new `status.lastRetrain` (None: unchanged) and a requeue."""
    template = spec.retrain.template
    drifting = bool((status.get("drift") or {}).get("detected"))
    waiting = (status.get("lastRetrain") or {}).get("phase") == "RefreshingData"
    if not ((spec.retrain.enabled and drifting) or waiting):
        return None, None  # nothing to decide: spare the TrainingJob list and the Dataset read
    api = context.api
    jobs = list_objects(api, API_VERSION, "TrainingJob", owner.namespace, retrain_selector(owner))
    dataset = (
        get_or_none(api, API_VERSION, "Dataset", owner.namespace, template.dataset_ref.name)
        if template is not None
        else None
    )
    decision = decide_retrain(
        owner, spec, status.get("drift"), status.get("lastRetrain"), jobs, dataset, now
    )
    if decision.action == "refresh" and decision.training_job and decision.dataset:
        if dataset is not None:
            patch(
                api,
                API_VERSION,
                "Dataset",
                owner.namespace,
                decision.dataset,
                build_refresh_patch(decision.training_job),
            )
        emit(api, body, "Normal", "RetrainRequested", decision.message)
    elif decision.action == "create" and decision.training_job and decision.last_retrain:
        manifest = build_retrain_training_job(
            owner, spec, decision.training_job, decision.last_retrain.reason or "drift"
        )
        try:
            create(api, manifest)
            metrics.RETRAINS.inc()
            metrics.CHILDREN_CREATED.labels(KIND, "TrainingJob").inc()
            emit(api, body, "Normal", "RetrainStarted", decision.message)
        except Conflict:
            pass  # created before a restart: the same name, nothing twice
    last = decision.last_retrain.to_wire() if decision.last_retrain else None
    return last, decision.requeue_after


def reconcile(context: Context, namespace: str, name: str) -> Outcome:
    api = context.api
    body = _read(context, namespace, name)
    if body is None or body["metadata"].get("deletionTimestamp"):
        return DONE
    meta = body["metadata"]
    spec = InferenceServiceSpec.model_validate(body.get("spec") or {})
    status: dict[str, Any] = dict(body.get("status") or {})
    owner = Owner(name=name, namespace=namespace, uid=meta["uid"])
    settings = context.settings
    now = datetime.now(UTC)

    registry = _model_versions(context, namespace, spec.model.name)
    resolution = resolve_target(spec.model, registry)
    target = resolution.target
    desired = (
        Desired(target.model_version, template_hash(owner, spec, target, settings), spec.replicas)
        if target is not None
        else None
    )
    colors, versions = _observe_colors(context, owner, desired)
    inputs = RolloutInputs(
        desired=desired,
        waiting_for=resolution.waiting_for,
        colors=colors,
        record=RolloutRecord.from_status(status),
        rollout=spec.rollout,
        promote_requested=bool((meta.get("annotations") or {}).get(ANNOTATION_PROMOTE)),
        now=now,
    )
    plan = decide(inputs)
    logger.debug(
        "desired %s, observed %s, active %s, candidate %s",
        desired,
        {c: (st.template_hash, st.replicas) for c, st in colors.items()},
        inputs.record.active_color,
        inputs.record.candidate,
        extra={"k8s_ref": {"kind": KIND, "namespace": namespace, "name": name}},
    )
    if plan.smoke_test_due is not None and target is not None:
        # The preview Service must select the candidate before the test goes through it.
        APPLIED.apply(api, build_preview_service(owner, plan.smoke_test_due))
        smoke = _smoke_test(context, owner, spec, target)
        emit(
            api,
            body,
            "Normal" if smoke.passed else "Warning",
            "SmokeTestPassed" if smoke.passed else "SmokeTestFailed",
            f"{target.model_version} in {plan.smoke_test_due}: {smoke.message}",
        )
        plan = decide(inputs, smoke)

    template = desired.template_hash if desired is not None else None
    _apply_children(context, owner, spec, target, plan, colors, versions, template)
    _emit_all(context, body, plan)
    last_retrain, retrain_requeue = _retrain(context, body, owner, spec, status, now)

    generation = int(meta.get("generation") or 0)
    new_status = status_patch(
        plan, previous=status, name=name, namespace=namespace, generation=generation, now=now
    )
    if last_retrain is not None:
        new_status["lastRetrain"] = last_retrain
    version = version_of(body)
    if _differs(status, new_status):
        written = patch_status(api, API_VERSION, KIND, namespace, name, new_status)
        OWN_STATUS.wrote(body, new_status, written)
        OWN_WRITES.wrote(version, written)
        version = version_of(written)
    if plan.consume_promote:
        consumed = patch(
            api,
            API_VERSION,
            KIND,
            namespace,
            name,
            {"metadata": {"annotations": {ANNOTATION_PROMOTE: None}}},
        )
        OWN_WRITES.wrote(version, consumed)

    waits = [w for w in (plan.requeue_after, retrain_requeue) if w is not None]
    return Outcome(requeue_after=min(waits) if waits else None)


def _differs(current: Mapping[str, Any], patch_body: Mapping[str, Any]) -> bool:
    """Whether a merge patch would change anything (keeps the reconcile loop quiet)."""
    for key, value in patch_body.items():
        if value is None:
            if key in current:
                return True
        elif json.dumps(current.get(key), sort_keys=True, default=str) != json.dumps(
            value, sort_keys=True, default=str
        ):
            return True
    return False


# --- Kopf wiring: every event hands the InferenceService to the Runner ---------------------


@kopf.index(GROUP, "v1alpha1", "modelversions")
def model_versions_by_model(
    namespace: str | None,
    meta: Mapping[str, Any],
    spec: Mapping[str, Any],
    status: Mapping[str, Any],
    **_: Any,
) -> dict[tuple[str | None, str], dict[str, Any]]:
    """(namespace, model name) → what target resolution reads of each ModelVersion."""
    body = {
        "metadata": {"name": meta["name"], "deletionTimestamp": meta.get("deletionTimestamp")},
        "spec": dict(spec),
        "status": {"phase": status.get("phase"), "conditions": status.get("conditions")},
    }
    return {(namespace, str(spec.get("modelName"))): body}


@kopf.index(GROUP, "v1alpha1", "inferenceservices")
def inference_service_bodies(
    namespace: str | None, name: str | None, body: Mapping[str, Any], **_: Any
) -> dict[tuple[str | None, str | None], dict[str, Any]]:
    """(namespace, name) → the InferenceService as last seen (what a reconcile reads)."""
    return {(namespace, name): without_managed_fields(body)}


@kopf.index("apps", "v1", "deployments", labels={LABEL_ISVC: kopf.PRESENT})
def deployments_by_inference_service(
    namespace: str | None, labels: Mapping[str, str], body: Mapping[str, Any], **_: Any
) -> dict[tuple[str | None, str], dict[str, Any]]:
    """(namespace, InferenceService) → what the rollout reads of each of its Deployments."""
    return {(namespace, labels[LABEL_ISVC]): deployment_essentials(body)}


@kopf.on.startup()
def remember_indexes(memo: Any, **kwargs: Any) -> None:
    """Give the reconciles (which run in threads, outside Kopf's handlers) the live indexes.
    Kopf hands startup handlers its indexes empty and calls no resource handler, so starts no
    reconcile, before they are filled."""
    for name in (BODIES_INDEX, DEPLOYMENTS_INDEX, MODEL_VERSIONS_INDEX):
        memo.runner.context.indexes[name] = kwargs[name]


@kopf.index(GROUP, "v1alpha1", "inferenceservices")
def inference_services_by_model(
    namespace: str | None, name: str | None, spec: Mapping[str, Any], **_: Any
) -> dict[tuple[str | None, str], str | None]:
    """(namespace, model name) → the InferenceServices that serve that model."""
    return {(namespace, str((spec.get("model") or {}).get("name"))): name}


@kopf.on.event(GROUP, "v1alpha1", "inferenceservices")
async def inference_service_event(
    memo: Any, type: str | None, namespace: str | None, name: str | None, **kwargs: Any
) -> None:
    runner: Runner = memo.runner
    if name is None or namespace is None:
        return
    resource_version = kwargs["body"]["metadata"].get("resourceVersion")
    OWN_WRITES.observed((API_VERSION, KIND, namespace, name), resource_version, type == "DELETED")
    if type == "DELETED":
        OWN_STATUS.forget(namespace, name)
    elif OWN_STATUS.is_echo(namespace, name, resource_version):
        return  # the echo of our own status write: nothing we did not decide on
    runner.on_event(KIND, type, namespace, name)


async def _child_event(
    memo: Any, body: Mapping[str, Any], labels: Mapping[str, str], type: str | None
) -> None:
    """A child changed: unless it is the echo of our own apply, its owner looks again."""
    meta = body["metadata"]
    namespace = meta.get("namespace")
    if namespace is None:
        return
    key = (body["apiVersion"], body["kind"], namespace, meta["name"])
    if APPLIED.observed(key, meta.get("resourceVersion"), deleted=type == "DELETED"):
        memo.runner.notify(KIND, namespace, labels[LABEL_ISVC])


OURS = {LABEL_ISVC: kopf.PRESENT}


@kopf.on.event("apps", "v1", "deployments", labels=OURS)
async def deployment_event(
    memo: Any,
    labels: Mapping[str, str],
    namespace: str | None,
    name: str | None,
    type: str | None,
    body: Mapping[str, Any],
    **kwargs: Any,
) -> None:
    # Deployments are compared with what is observed, not with what we applied: every event
    # counts.
    if namespace is None or name is None:
        return
    resource_version = body["metadata"].get("resourceVersion")
    OWN_WRITES.observed(
        ("apps/v1", "Deployment", namespace, name), resource_version, type == "DELETED"
    )
    memo.runner.notify(KIND, namespace, labels[LABEL_ISVC])


@kopf.on.event("v1", "services", labels=OURS)
async def service_event(
    memo: Any, body: Any, labels: Mapping[str, str], type: str | None, **_: Any
) -> None:
    await _child_event(memo, body, labels, type)


@kopf.on.event("v1", "serviceaccounts", labels=OURS)
async def service_account_event(
    memo: Any, body: Any, labels: Mapping[str, str], type: str | None, **_: Any
) -> None:
    await _child_event(memo, body, labels, type)


@kopf.on.event("rbac.authorization.k8s.io", "v1", "roles", labels=OURS)
async def role_event(
    memo: Any, body: Any, labels: Mapping[str, str], type: str | None, **_: Any
) -> None:
    await _child_event(memo, body, labels, type)


@kopf.on.event("rbac.authorization.k8s.io", "v1", "rolebindings", labels=OURS)
async def role_binding_event(
    memo: Any, body: Any, labels: Mapping[str, str], type: str | None, **_: Any
) -> None:
    await _child_event(memo, body, labels, type)


@kopf.on.event("v1", "pods", labels={LABEL_ISVC: kopf.PRESENT, LABEL_COLOR: kopf.PRESENT})
async def pod_event(memo: Any, labels: Mapping[str, str], namespace: str | None, **_: Any) -> None:
    if namespace is not None:
        memo.runner.notify(KIND, namespace, labels[LABEL_ISVC])


@kopf.on.event(GROUP, "v1alpha1", "trainingjobs", labels=OURS)
async def training_job_event(
    memo: Any, labels: Mapping[str, str], namespace: str | None, **_: Any
) -> None:
    if namespace is not None:
        memo.runner.notify(KIND, namespace, labels[LABEL_ISVC])


@kopf.on.event(GROUP, "v1alpha1", "modelversions")
async def model_version_event(
    memo: Any, spec: Mapping[str, Any], namespace: str | None, **kwargs: Any
) -> None:
    """A new, changed or deleted ModelVersion: every InferenceService of its model looks again."""
    index: kopf.Index[tuple[str | None, str], str | None] = kwargs["inference_services_by_model"]
    key = (namespace, str(spec.get("modelName")))
    if namespace is None or key not in index:
        return
    for name in set(index[key]):
        if name is not None:
            memo.runner.notify(KIND, namespace, name)
