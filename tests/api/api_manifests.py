"""Valid manifests of the four kinds, and a way to derive broken ones from them, for the API tests.

Each invalid case changes a valid manifest at dotted paths (`spec.artifact.digest`), so a case reads
as the one mistake it makes. The expectation is the field path the API server must name.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

DIGEST = "sha256:" + "ab" * 32

VALID: dict[str, dict[str, Any]] = {
    "Dataset": {
        "apiVersion": "kubeloop.dev/v1alpha1",
        "kind": "Dataset",
        "metadata": {"name": "wine"},
        "spec": {
            "source": {"uri": "builtin://wine"},
            "target": "target",
            "schema": {
                "minRows": 100,
                "columns": [
                    {"name": "alcohol", "type": "number", "min": 0, "max": 20},
                    {"name": "color", "type": "category", "allowedValues": ["red", 1]},
                ],
            },
            "refreshInterval": "30m",
        },
    },
    "TrainingJob": {
        "apiVersion": "kubeloop.dev/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": "wine-lr"},
        "spec": {
            "datasetRef": {"name": "wine"},
            "modelName": "wine",
            "estimator": "sklearn.linear_model.LogisticRegression",
            "params": {"max_iter": 500, "C": 1.0},
            "search": {"strategy": "grid", "space": {"C": [0.1, 1.0]}, "maxTrials": 2},
            "evaluation": {"testSize": 0.3, "metric": "f1", "threshold": 0.8},
            "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"cpu": 1}},
            "backoffLimit": 1,
        },
    },
    "ModelVersion": {
        "apiVersion": "kubeloop.dev/v1alpha1",
        "kind": "ModelVersion",
        "metadata": {"name": "wine-v1"},
        "spec": {
            "modelName": "wine",
            "version": 1,
            "artifact": {"uri": "pvc://models/wine/v1", "digest": DIGEST},
            "framework": {"name": "scikit-learn", "version": "1.9.1"},
            "metrics": {"f1": 0.95, "accuracy": 0.96},
            "lineage": {"trainingJob": "wine-lr", "dataset": "wine", "datasetVersion": DIGEST},
            "inputExample": [{"alcohol": 13.2, "malic_acid": 1.78, "color": "red"}],
            "stage": "Staging",
        },
    },
    "InferenceService": {
        "apiVersion": "kubeloop.dev/v1alpha1",
        "kind": "InferenceService",
        "metadata": {"name": "wine"},
        "spec": {
            "model": {"name": "wine", "latest": True},
            "replicas": 1,
            "rollout": {"scaleDownDelaySeconds": 0},
            "monitoring": {"method": "psi", "window": 1000, "minSamples": 100},
            "retrain": {
                "enabled": True,
                "cooldown": "2h",
                "template": {
                    "datasetRef": {"name": "wine"},
                    "modelName": "wine",
                    "estimator": "sklearn.linear_model.LogisticRegression",
                },
            },
        },
    },
}

DELETE = object()


def _split(path: str) -> list[str | int]:
    parts: list[str | int] = []
    for part in path.split("."):
        if "[" in part:
            name, index = part.rstrip("]").split("[")
            parts += [name, int(index)]
        else:
            parts.append(part)
    return parts


def changed(manifest: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of `manifest` with each dotted path set to its value (or removed: DELETE)."""
    result = copy.deepcopy(manifest)
    for path, value in changes.items():
        *parents, last = _split(path)
        node: Any = result
        for part in parents:
            node = node[part]
        if value is DELETE:
            del node[last]
        else:
            node[last] = value
    return result


@dataclass(frozen=True)
class InvalidCase:
    """One mistake a user can make, and the field the API server must name in its refusal."""

    id: str
    kind: str
    changes: dict[str, Any]
    field_path: str
    message: str = ""  # a further fragment the refusal must contain, when it matters
    marks: tuple[Any, ...] = field(default=())

    def manifest(self) -> dict[str, Any]:
        return changed(VALID[self.kind], self.changes)


INVALID_CASES: tuple[InvalidCase, ...] = (
    # Dataset
    InvalidCase(
        "dataset-missing-source",
        "Dataset",
        {"spec.source": DELETE},
        "spec.source",
        "Required value",
    ),
    InvalidCase(
        "dataset-uri-scheme",
        "Dataset",
        {"spec.source.uri": "ftp://host/data.csv"},
        "spec.source.uri",
        "should match",
    ),
    InvalidCase(
        "dataset-unknown-builtin",
        "Dataset",
        {"spec.source.uri": "builtin://mnist"},
        "spec.source.uri",
    ),
    InvalidCase(
        "dataset-format",
        "Dataset",
        {"spec.source.format": "xlsx"},
        "spec.source.format",
        "Unsupported value",
    ),
    InvalidCase(
        "dataset-column-type",
        "Dataset",
        {"spec.schema.columns[0].type": "float"},
        "spec.schema.columns[0].type",
        "Unsupported value",
    ),
    InvalidCase(
        "dataset-null-share-range",
        "Dataset",
        {"spec.schema.columns[0].maxNullShare": 1.5},
        "spec.schema.columns[0].maxNullShare",
        "less than or equal to 1",
    ),
    InvalidCase(
        "dataset-min-above-max",
        "Dataset",
        {"spec.schema.columns[0].min": 30},
        "spec.schema.columns[0].min",
        "min must not be greater than max",
    ),
    InvalidCase(
        "dataset-allowed-values-on-number",
        "Dataset",
        {"spec.schema.columns[0].allowedValues": ["a"]},
        "spec.schema.columns[0].allowedValues",
        "allowedValues applies only",
    ),
    InvalidCase(
        "dataset-range-on-category",
        "Dataset",
        {"spec.schema.columns[1].min": 0},
        "spec.schema.columns[1].type",
        "min and max apply only",
    ),
    InvalidCase(
        "dataset-duplicate-column",
        "Dataset",
        {"spec.schema.columns[1].name": "alcohol"},
        "spec.schema.columns[1]",
        "Duplicate value",
    ),
    InvalidCase(
        "dataset-refresh-interval",
        "Dataset",
        {"spec.refreshInterval": "hourly"},
        "spec.refreshInterval",
        "should match",
    ),
    InvalidCase(
        "dataset-min-rows-type",
        "Dataset",
        {"spec.schema.minRows": "many"},
        "spec.schema.minRows",
        "must be of type integer",
    ),
    # TrainingJob
    InvalidCase(
        "trainingjob-forbidden-estimator",
        "TrainingJob",
        {"spec.estimator": "os.system"},
        "spec.estimator",
        "Unsupported value",
    ),
    InvalidCase(
        "trainingjob-estimator-not-allow-listed",
        "TrainingJob",
        {"spec.estimator": "sklearn.cluster.KMeans"},
        "spec.estimator",
        "Unsupported value",
    ),
    InvalidCase(
        "trainingjob-missing-model-name",
        "TrainingJob",
        {"spec.modelName": DELETE},
        "spec.modelName",
        "Required value",
    ),
    InvalidCase(
        "trainingjob-model-name-pattern",
        "TrainingJob",
        {"spec.modelName": "Wine_Model"},
        "spec.modelName",
        "should match",
    ),
    InvalidCase(
        "trainingjob-missing-dataset-ref",
        "TrainingJob",
        {"spec.datasetRef": DELETE},
        "spec.datasetRef",
        "Required value",
    ),
    InvalidCase(
        "trainingjob-test-size-one",
        "TrainingJob",
        {"spec.evaluation.testSize": 1.0},
        "spec.evaluation.testSize",
        "less than 1",
    ),
    InvalidCase(
        "trainingjob-test-size-zero",
        "TrainingJob",
        {"spec.evaluation.testSize": 0},
        "spec.evaluation.testSize",
        "greater than 0",
    ),
    InvalidCase(
        "trainingjob-compare-to",
        "TrainingJob",
        {"spec.evaluation.compareTo": "best"},
        "spec.evaluation.compareTo",
        "Unsupported value",
    ),
    InvalidCase(
        "trainingjob-metric",
        "TrainingJob",
        {"spec.evaluation.metric": "auc"},
        "spec.evaluation.metric",
        "Unsupported value",
    ),
    InvalidCase(
        "trainingjob-threshold-range",
        "TrainingJob",
        {"spec.evaluation.threshold": 1.5},
        "spec.evaluation.threshold",
        "between 0 and 1",
    ),
    InvalidCase(
        "trainingjob-negative-error-ceiling",
        "TrainingJob",
        {"spec.evaluation.metric": "rmse", "spec.evaluation.threshold": -1},
        "spec.evaluation.threshold",
        "upper bound on the error",
    ),
    InvalidCase(
        "trainingjob-threshold-without-metric",
        "TrainingJob",
        {"spec.evaluation.metric": DELETE},
        "spec.evaluation.metric",
        "a threshold needs the metric",
    ),
    InvalidCase(
        "trainingjob-search-without-budget",
        "TrainingJob",
        {"spec.search.maxTrials": DELETE},
        "spec.search.maxTrials",
        "trial budget",
    ),
    InvalidCase(
        "trainingjob-parallelism-above-budget",
        "TrainingJob",
        {"spec.search.parallelism": 5},
        "spec.search.parallelism",
        "must not exceed maxTrials",
    ),
    InvalidCase(
        "trainingjob-empty-search-space",
        "TrainingJob",
        {"spec.search.space": {}},
        "spec.search.space",
    ),
    InvalidCase(
        "trainingjob-no-candidates",
        "TrainingJob",
        {"spec.search.space.C": []},
        "spec.search.space.C",
    ),
    InvalidCase(
        "trainingjob-search-strategy",
        "TrainingJob",
        {"spec.search.strategy": "bayes"},
        "spec.search.strategy",
        "Unsupported value",
    ),
    InvalidCase(
        "trainingjob-bad-quantity",
        "TrainingJob",
        {"spec.resources.requests.memory": "lots"},
        "spec.resources.requests.memory",
    ),
    InvalidCase(
        "trainingjob-backoff-range",
        "TrainingJob",
        {"spec.backoffLimit": 11},
        "spec.backoffLimit",
        "less than or equal to 10",
    ),
    InvalidCase(
        "trainingjob-params-type",
        "TrainingJob",
        {"spec.params": "n_estimators=5"},
        "spec.params",
        "must be of type object",
    ),
    InvalidCase(
        "trainingjob-unknown-field",
        "TrainingJob",
        {"spec.estimater": "x"},
        "spec.estimater",
        "unknown field",
    ),
    # ModelVersion
    InvalidCase(
        "modelversion-digest-algorithm",
        "ModelVersion",
        {"spec.artifact.digest": "md5:" + "a" * 32},
        "spec.artifact.digest",
        "should match",
    ),
    InvalidCase(
        "modelversion-digest-short",
        "ModelVersion",
        {"spec.artifact.digest": "sha256:abc"},
        "spec.artifact.digest",
    ),
    InvalidCase(
        "modelversion-digest-uppercase",
        "ModelVersion",
        {"spec.artifact.digest": "sha256:" + "AB" * 32},
        "spec.artifact.digest",
    ),
    InvalidCase(
        "modelversion-missing-artifact",
        "ModelVersion",
        {"spec.artifact": DELETE},
        "spec.artifact",
        "Required value",
    ),
    InvalidCase(
        "modelversion-artifact-uri",
        "ModelVersion",
        {"spec.artifact.uri": "models/wine"},
        "spec.artifact.uri",
        "should match",
    ),
    InvalidCase(
        "modelversion-version-zero",
        "ModelVersion",
        {"spec.version": 0},
        "spec.version",
        "greater than or equal to 1",
    ),
    InvalidCase(
        "modelversion-version-type",
        "ModelVersion",
        {"spec.version": "1"},
        "spec.version",
        "must be of type integer",
    ),
    InvalidCase(
        "modelversion-stage",
        "ModelVersion",
        {"spec.stage": "Prod"},
        "spec.stage",
        "Unsupported value",
    ),
    InvalidCase(
        "modelversion-metric-type",
        "ModelVersion",
        {"spec.metrics.f1": "high"},
        "spec.metrics.f1",
        "must be of type number",
    ),
    InvalidCase(
        "modelversion-name-is-not-model-and-version",
        "ModelVersion",
        {"metadata.name": "wine-latest"},
        "metadata.name",
        "must be <spec.modelName>-v<spec.version>",
    ),
    InvalidCase(
        "modelversion-name-names-another-version",
        "ModelVersion",
        {"metadata.name": "wine-v2"},
        "metadata.name",
        "must be <spec.modelName>-v<spec.version>",
    ),
    InvalidCase(
        "modelversion-dataset-version-digest",
        "ModelVersion",
        {"spec.lineage.datasetVersion": "v1"},
        "spec.lineage.datasetVersion",
    ),
    # InferenceService
    InvalidCase(
        "isvc-version-and-latest",
        "InferenceService",
        {"spec.model.version": 3},
        "spec.model",
        "exactly one of version, latest, stage or alias",
    ),
    InvalidCase(
        "isvc-stage-and-latest",
        "InferenceService",
        {"spec.model.stage": "Production"},
        "spec.model",
        "exactly one of version, latest, stage or alias",
    ),
    InvalidCase(
        "isvc-no-selector",
        "InferenceService",
        {"spec.model.latest": DELETE},
        "spec.model",
        "exactly one of version, latest, stage or alias",
    ),
    InvalidCase(
        "isvc-alias-and-latest",
        "InferenceService",
        {"spec.model.alias": "champion"},
        "spec.model",
        "exactly one of version, latest, stage or alias",
    ),
    InvalidCase(
        "isvc-alias-not-a-label",
        "InferenceService",
        {"spec.model.latest": DELETE, "spec.model.alias": "Champion!"},
        "spec.model.alias",
    ),
    InvalidCase(
        "isvc-progress-deadline-too-short",
        "InferenceService",
        {"spec.rollout.progressDeadlineSeconds": 5},
        "spec.rollout.progressDeadlineSeconds",
    ),
    InvalidCase(
        "isvc-env-bad-name",
        "InferenceService",
        {"spec.env": [{"name": "1BAD", "value": "x"}]},
        "spec.env[0].name",
    ),
    InvalidCase(
        "isvc-latest-false",
        "InferenceService",
        {"spec.model.latest": False},
        "spec.model.latest",
        "latest can only be true",
    ),
    InvalidCase(
        "isvc-negative-scale-down-delay",
        "InferenceService",
        {"spec.rollout.scaleDownDelaySeconds": -1},
        "spec.rollout.scaleDownDelaySeconds",
        "greater than or equal to 0",
    ),
    InvalidCase(
        "isvc-rollout-strategy",
        "InferenceService",
        {"spec.rollout.strategy": "Canary"},
        "spec.rollout.strategy",
        "Unsupported value",
    ),
    InvalidCase(
        "isvc-drift-method",
        "InferenceService",
        {"spec.monitoring.method": "mmd"},
        "spec.monitoring.method",
        "Unsupported value",
    ),
    InvalidCase(
        "isvc-capture-sample-rate",
        "InferenceService",
        {"spec.monitoring.capture": {"enabled": True, "sampleRate": 1.5}},
        "spec.monitoring.capture.sampleRate",
        "less than or equal to 1",
    ),
    InvalidCase(
        "isvc-capture-uri",
        "InferenceService",
        {"spec.monitoring.capture": {"enabled": True, "uri": "ftp://host/captures/"}},
        "spec.monitoring.capture.uri",
        "should match",
    ),
    InvalidCase(
        "isvc-min-samples-above-window",
        "InferenceService",
        {"spec.monitoring.minSamples": 2000},
        "spec.monitoring.minSamples",
        "must not exceed window",
    ),
    InvalidCase(
        "isvc-retrain-without-template",
        "InferenceService",
        {"spec.retrain.template": DELETE},
        "spec.retrain.template",
        "retraining needs a template",
    ),
    InvalidCase(
        "isvc-retrain-other-model",
        "InferenceService",
        {"spec.retrain.template.modelName": "red-wine"},
        "spec.retrain.template.modelName",
        "must equal model.name",
    ),
    InvalidCase(
        "isvc-retrain-without-monitoring",
        "InferenceService",
        {"spec.monitoring.enabled": False},
        "spec.retrain.enabled",
        "needs monitoring.enabled",
    ),
    InvalidCase(
        "isvc-retrain-forbidden-estimator",
        "InferenceService",
        {"spec.retrain.template.estimator": "subprocess.Popen"},
        "spec.retrain.template.estimator",
        "Unsupported value",
    ),
    InvalidCase(
        "isvc-cooldown",
        "InferenceService",
        {"spec.retrain.cooldown": "-5m"},
        "spec.retrain.cooldown",
        "should match",
    ),
    InvalidCase(
        "isvc-replicas-negative",
        "InferenceService",
        {"spec.replicas": -1},
        "spec.replicas",
        "greater than or equal to 0",
    ),
    InvalidCase(
        "isvc-name-starts-with-digit",
        "InferenceService",
        {"metadata.name": "9wine"},
        "metadata.name",
        "must start with a letter",
    ),
)


@dataclass(frozen=True)
class UpdateCase:
    """A change to an existing ModelVersion that a transition rule must refuse."""

    id: str
    patch: list[dict[str, Any]]  # JSON patch
    field_path: str
    message: str


IMMUTABLE_UPDATES: tuple[UpdateCase, ...] = (
    UpdateCase(
        "artifact-digest",
        [{"op": "replace", "path": "/spec/artifact/digest", "value": "sha256:" + "cd" * 32}],
        "spec.artifact",
        "is immutable",
    ),
    UpdateCase(
        "artifact-uri",
        [{"op": "replace", "path": "/spec/artifact/uri", "value": "s3://models/wine/v1"}],
        "spec.artifact",
        "is immutable",
    ),
    UpdateCase(
        "version",
        [{"op": "replace", "path": "/spec/version", "value": 2}],
        "spec.version",
        "is immutable",
    ),
    UpdateCase(
        "model-name",
        [{"op": "replace", "path": "/spec/modelName", "value": "red-wine"}],
        "spec.modelName",
        "is immutable",
    ),
    UpdateCase(
        "metrics",
        [{"op": "replace", "path": "/spec/metrics/f1", "value": 0.99}],
        "spec.metrics",
        "is immutable",
    ),
    UpdateCase(
        "framework-version",
        [{"op": "replace", "path": "/spec/framework/version", "value": "1.10.0"}],
        "spec.framework",
        "is immutable",
    ),
    UpdateCase(
        "lineage-dataset",
        [{"op": "replace", "path": "/spec/lineage/dataset", "value": "red-wine"}],
        "spec.lineage",
        "is immutable",
    ),
    UpdateCase(
        "lineage-removed",
        [{"op": "remove", "path": "/spec/lineage"}],
        "spec.lineage",
        "cannot be added or removed",
    ),
    UpdateCase(
        "input-example-row",
        [{"op": "replace", "path": "/spec/inputExample/0/alcohol", "value": 1.0}],
        "spec.inputExample",
        "is immutable",
    ),
    UpdateCase(
        "input-example-removed",
        [{"op": "remove", "path": "/spec/inputExample"}],
        "spec.inputExample",
        "cannot be added or removed",
    ),
)
