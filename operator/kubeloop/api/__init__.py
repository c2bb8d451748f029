"""Kubeloop's API: the spec and status models of the four kinds, the source of the CRDs.

Each kind lives in its own module with a `KindInfo` naming its CRD, printer columns and short
names; shared parts (conditions, references, resources, constrained scalars) have their own.
`kubeloop.crdgen` turns `KINDS` into CRD YAML and reference docs. Nothing here does I/O.
"""

from kubeloop.api.base import API_VERSION, CATEGORY, GROUP, VERSION, ApiModel, KindInfo
from kubeloop.api.conditions import READY, RECONCILING, STALLED, Condition
from kubeloop.api.dataset import DATASET, DatasetSpec, DatasetStatus
from kubeloop.api.inferenceservice import (
    INFERENCE_SERVICE,
    InferenceServiceSpec,
    InferenceServiceStatus,
)
from kubeloop.api.modelversion import MODEL_VERSION, ModelVersionSpec, ModelVersionStatus
from kubeloop.api.trainingjob import TRAINING_JOB, TrainingJobSpec, TrainingJobStatus

KINDS: tuple[KindInfo, ...] = (DATASET, TRAINING_JOB, MODEL_VERSION, INFERENCE_SERVICE)

__all__ = [
    "API_VERSION",
    "CATEGORY",
    "DATASET",
    "GROUP",
    "INFERENCE_SERVICE",
    "KINDS",
    "MODEL_VERSION",
    "READY",
    "RECONCILING",
    "STALLED",
    "TRAINING_JOB",
    "VERSION",
    "ApiModel",
    "Condition",
    "DatasetSpec",
    "DatasetStatus",
    "InferenceServiceSpec",
    "InferenceServiceStatus",
    "KindInfo",
    "ModelVersionSpec",
    "ModelVersionStatus",
    "TrainingJobSpec",
    "TrainingJobStatus",
]
