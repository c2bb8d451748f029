"""The ``train`` entry point: dataset in, gated model artifact and a termination message out.

Steps: read the configuration → refuse a non-allow-listed estimator (before importing it or loading
any data) → load and version the dataset → validate its schema → fit (optionally through a grid or
random search) → evaluate on a held-out split → gate → write the artifact folder → report.

A model that fails its gate is still written, so a person can inspect it, but the result says
``"ok": false, "passed": false, "reason": "GateFailed"`` and the process exits with code 3
(errors.EXIT_GATE_FAILED), apart from real errors. Exit codes: docs/runtime.md. The same holds
for a model that scores worse than the serving one (``evaluation.compareTo: serving``, reason
``ComparisonFailed``): both are scored on the same held-out rows (baseline.py).

Feature columns are every column but the target, in dataset order; that order is
``metadata.features``. With categorical features the model is a Pipeline (one-hot encoding, then
the estimator) that takes a DataFrame with those named columns; with numeric features only it is the
bare estimator fitted on a float array, which is what the server's fast path feeds it.
"""

from __future__ import annotations

import json
import platform
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from kubeloop_runtime.artifact import write_artifact
from kubeloop_runtime.baseline import Baseline, check_fits, load_baseline, rows_for
from kubeloop_runtime.cli import batch_argument_parser
from kubeloop_runtime.config import (
    SearchSpec,
    TrainConfig,
    parse_train_config,
    read_config_document,
)
from kubeloop_runtime.datasets import LoadedDataset, load_dataset
from kubeloop_runtime.errors import (
    EXIT_GATE_FAILED,
    EXIT_OK,
    BaselineError,
    ConfigError,
    DatasetError,
    EstimatorError,
    StorageError,
    TrainingError,
)
from kubeloop_runtime.estimators import build_estimator, check_param_names
from kubeloop_runtime.evaluation import (
    LOWER_IS_BETTER,
    Task,
    apply_gate,
    choose_metric,
    evaluate,
    no_worse,
    scoring_for,
    split,
    task_of,
)
from kubeloop_runtime.profile import ProfileError, build_profile
from kubeloop_runtime.schema import (
    apply_declared_types,
    column_type,
    feature_columns,
    validate,
)
from kubeloop_runtime.storage import resolve, upload_folder
from kubeloop_runtime.termination import run_batch, termination_log_path, to_plain

ESTIMATOR_STEP: Final = "estimator"
LIBRARIES: Final = ("scikit-learn", "numpy", "scipy", "pandas", "joblib")
FRAMEWORK: Final = "scikit-learn"
# The input example (like MLflow's): a few feature rows in /predict's records form. The artifact
# keeps up to EXAMPLE_ROWS; the result, which must fit the termination message, fewer and small.
EXAMPLE_ROWS: Final = 5
RESULT_EXAMPLE_ROWS: Final = 2
RESULT_EXAMPLE_BYTES: Final = 1024


@dataclass(frozen=True)
class PreparedData:
    """The training table: feature matrix (array or frame), target, and what describes them."""

    features: list[str]
    feature_types: dict[str, str]  # name -> "number" | "category"
    matrix: Any  # np.ndarray (numeric only) or pd.DataFrame (with categorical columns)
    target: np.ndarray
    profile_frame: pd.DataFrame


def main(argv: Sequence[str] | None = None) -> int:
    parser = batch_argument_parser(
        "train", "Train, evaluate and gate a model; write its artifact folder."
    )
    args = parser.parse_args(argv)

    def work() -> tuple[dict[str, Any], int]:
        config = parse_train_config(read_config_document(args.config))
        result = run_training(config)
        return result, EXIT_OK if result["passed"] else EXIT_GATE_FAILED

    return run_batch("train", termination_log_path(args.termination_log), work)


def run_training(config: TrainConfig) -> dict[str, Any]:
    """Do the whole training run and return its result (the termination message payload)."""
    started = time.monotonic()
    seed = config.evaluation.random_seed
    estimator = build_estimator(config.estimator, config.params, seed)
    if config.search is not None:
        valid = set(estimator.get_params(deep=False))
        check_param_names(config.estimator, config.search.space, valid, "search.space")
    task = task_of(estimator)
    metric = choose_metric(task, config.evaluation.metric)

    loaded = load_dataset(config.dataset)
    target_name = config.dataset.target or loaded.default_target
    if target_name is None:
        raise ConfigError("dataset.target: name the target column to train on")
    if config.dataset.schema_ is not None:
        validate(loaded.frame, config.dataset.schema_, target_name)
    typed = apply_declared_types(loaded.frame, config.dataset.schema_)
    data = prepare(loaded, target_name, typed, task)

    baseline: Baseline | None = None
    if config.evaluation.compare_to == "serving" and config.evaluation.baseline is not None:
        # Before the fit: a baseline that cannot be used should fail fast, not after training.
        baseline = load_baseline(config.evaluation.baseline)
        check_fits(baseline, task, data.feature_types)

    categorical = [name for name in data.features if data.feature_types[name] == "category"]
    model = wrap_for_features(estimator, categorical)
    x_train, x_test, y_train, y_test = split(
        data.matrix, data.target, config.evaluation.test_size, seed, task
    )
    classes_seen = np.unique(y_train) if task == "classification" else None
    search_summary: dict[str, Any] | None = None
    if config.search is None:
        fit(model, x_train, y_train, config.estimator)
    else:
        model, search_summary = search(
            model,
            config.search,
            config.estimator,
            seed,
            x_train,
            y_train,
            metric,
            classes_seen,
            bool(categorical),
        )
    metrics = evaluate(model, x_test, y_test, task)
    gate = apply_gate(metrics, metric, config.evaluation.threshold)
    comparison: dict[str, Any] | None = None
    if config.evaluation.compare_to == "serving":
        comparison = compare_with_baseline(
            baseline, metric, gate.value, x_test, y_test, task, data.features
        )
    passed = gate.passed and (comparison is None or bool(comparison["passed"]))

    params = dict(config.params)
    if search_summary is not None:
        params.update(search_summary["bestParams"])
    if "random_state" in estimator.get_params(deep=False) and "random_state" not in params:
        params["random_state"] = seed
    # The builtin class names label the builtin target only, not another column trained on.
    class_names = loaded.target_names if target_name == loaded.default_target else None
    try:
        profile = build_profile(data.profile_frame)
    except ProfileError as error:
        raise DatasetError(f"{config.dataset.uri}: {error}") from error

    dataset_lineage = describe_dataset(loaded, config)
    example = input_example(data.profile_frame, EXAMPLE_ROWS)
    framework = framework_info()
    metadata: dict[str, Any] = to_plain(
        {
            "schemaVersion": 1,
            "modelName": config.model_name,
            "task": task,
            "estimator": config.estimator,
            "params": params,
            "metrics": metrics,
            "gate": gate.to_dict(),
            "features": [
                {"name": name, "type": data.feature_types[name]} for name in data.features
            ],
            "target": describe_target(target_name, task, model, class_names),
            "profile": profile,
            "dataset": dataset_lineage,
            "inputExample": example,
            "framework": framework,
            "search": search_summary,
            "comparison": comparison,
            "evaluation": {
                "testSize": config.evaluation.test_size,
                "trainRows": len(y_train),
                "testRows": len(y_test),
                "randomSeed": seed,
            },
            "libraries": library_versions(),
            "createdAt": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
    )
    digest = save_artifact(model, metadata, config.output.uri)

    result: dict[str, Any] = {
        "ok": passed,
        "kind": "train",
        "passed": passed,
        "modelName": config.model_name,
        "task": task,
        "estimator": config.estimator,
        "metrics": metrics,
        "gate": gate.to_dict(),
        "artifact": {"uri": config.output.uri, "digest": digest},
        "dataset": dataset_lineage,
        "framework": framework,
        "params": params,
        "durationSeconds": round(time.monotonic() - started, 3),
    }
    small_example = result_example(metadata["inputExample"])
    if small_example:
        result["inputExample"] = small_example
    if search_summary is not None:
        result["search"] = {
            key: search_summary[key] for key in ("strategy", "trials", "bestScore", "bestParams")
        }
    if comparison is not None:
        result["comparison"] = comparison
    lost = comparison is not None and not comparison["passed"]
    if not passed:
        problems = []
        if not gate.passed:
            direction = "above" if metric in LOWER_IS_BETTER else "below"
            problems.append(
                f"{metric} {gate.value:.4g} is {direction} the threshold {gate.threshold:g}"
            )
        if comparison is not None and lost:
            problems.append(
                f"{metric} {gate.value:.4g} is worse than {comparison['baseline']:.4g} of the "
                f"serving version {comparison['baselineVersion']} on the same "
                f"{comparison['testRows']} held-out rows"
            )
        result["reason"] = "GateFailed" if not gate.passed else "ComparisonFailed"
        result["message"] = (
            "; ".join(problems) + f"; the model was written to {config.output.uri} for inspection"
        )
    return result


def compare_with_baseline(
    baseline: Baseline | None,
    metric: str,
    candidate: float,
    x_test: Any,
    y_test: np.ndarray,
    task: Task,
    features: list[str],
) -> dict[str, Any]:
    """Score the serving model on the candidate's held-out rows; the comparison's result."""
    score: float | None = None
    if baseline is not None:
        try:
            baseline_metrics = evaluate(
                baseline.model, rows_for(baseline, x_test, features), y_test, task
            )
        except (ValueError, TypeError, AttributeError) as error:
            raise BaselineError(
                f"evaluation.baseline {baseline.label}: scoring it on the held-out rows failed: "
                f"{error}"
            ) from error
        score = baseline_metrics.get(metric)
    return {
        "metric": metric,
        "candidate": candidate,
        "baseline": score,
        "baselineVersion": None if baseline is None else baseline.label,
        "passed": no_worse(metric, candidate, score),
        "testRows": len(y_test),
    }


def prepare(
    loaded: LoadedDataset, target_name: str, typed: pd.DataFrame, task: Task
) -> PreparedData:
    """Pick the features, their types and the target; refuse what cannot be trained on.

    ``typed`` is the dataset after `apply_declared_types`.
    """
    features = feature_columns(typed, target_name, loaded.uri)
    target_column = loaded.frame[target_name]
    nulls = int(target_column.isna().sum())
    if nulls:
        raise DatasetError(f"column {target_name!r}: the target has {nulls} null values")
    if task == "classification" and target_column.nunique() < 2:
        raise DatasetError(
            f"column {target_name!r}: a classifier needs at least two classes in the target, "
            f"found only {target_column.iloc[0]!r}"
        )
    if task == "regression" and not pd.api.types.is_numeric_dtype(target_column.dtype):
        raise DatasetError(
            f"column {target_name!r}: a regressor needs a numeric target, "
            f"found {target_column.dtype}"
        )
    feature_frame = typed[features]
    feature_types = {name: column_type(name, feature_frame[name]) for name in features}
    matrix: Any
    if any(kind == "category" for kind in feature_types.values()):
        matrix = feature_frame
    else:
        matrix = feature_frame.to_numpy(dtype=np.float64, na_value=np.nan)
    return PreparedData(features, feature_types, matrix, target_column.to_numpy(), feature_frame)


def wrap_for_features(estimator: Any, categorical: list[str]) -> Any:
    """The estimator alone, or one-hot encoding of the categorical columns in front of it."""
    if not categorical:
        return estimator
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    columns = ColumnTransformer(
        # Dense output: several allow-listed estimators (HistGradientBoosting*, GaussianNB)
        # refuse sparse input, and one-hot columns of tabular data are few.
        [
            (
                "categorical",
                OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                categorical,
            )
        ],
        remainder="passthrough",
        verbose_feature_names_out=False,
    )
    return Pipeline([("columns", columns), (ESTIMATOR_STEP, estimator)])


def fit(model: Any, features: Any, target: np.ndarray, estimator_path: str) -> None:
    try:
        model.fit(features, target)
    except (ValueError, TypeError) as error:
        raise TrainingError(f"fitting {estimator_path} failed: {error}") from error


def search(
    model: Any,
    spec: SearchSpec,
    estimator_path: str,
    seed: int,
    features: Any,
    target: np.ndarray,
    metric: str,
    classes: np.ndarray | None,
    in_pipeline: bool,
) -> tuple[Any, dict[str, Any]]:
    """Grid or random search with cross-validation; return the refitted best model, a summary."""
    from sklearn.model_selection import GridSearchCV, RandomizedSearchCV

    prefix = f"{ESTIMATOR_STEP}__" if in_pipeline else ""
    space = {prefix + name: values for name, values in spec.space.items()}
    scoring = scoring_for(metric, classes)
    searcher: Any
    if spec.strategy == "grid":
        searcher = GridSearchCV(
            model,
            space,
            scoring=scoring,
            cv=spec.cv_folds,
            n_jobs=spec.parallelism,
            error_score="raise",
        )
    else:
        searcher = RandomizedSearchCV(
            model,
            space,
            # maxTrials is required for random (config.py); a smaller grid is drawn whole.
            n_iter=min(spec.max_trials or spec.grid_size, spec.grid_size),
            scoring=scoring,
            cv=spec.cv_folds,
            n_jobs=spec.parallelism,
            random_state=seed,
            error_score="raise",
        )
    try:
        searcher.fit(features, target)
    except (ValueError, TypeError) as error:
        raise EstimatorError(f"search over {estimator_path} failed: {error}") from error
    best_params = {
        name.removeprefix(prefix): value for name, value in searcher.best_params_.items()
    }
    best_score = float(searcher.best_score_)
    if metric in LOWER_IS_BETTER:
        best_score = -best_score  # scikit-learn maximises the negated error
    summary = {
        "strategy": spec.strategy,
        "trials": len(searcher.cv_results_["params"]),
        "cvFolds": spec.cv_folds,
        "metric": metric,
        "bestParams": best_params,
        "bestScore": best_score,
    }
    return searcher.best_estimator_, summary


def describe_target(
    name: str, task: Task, model: Any, target_names: tuple[str, ...] | None
) -> dict[str, Any]:
    """``classes[i]`` is the label of ``model.classes_[i]`` (``values[i]``); see contracts.md.

    The model is fitted on the original target values (for builtin datasets, integer codes), so
    ``values`` is what ``predict`` returns and ``classes`` is what a person reads.
    """
    if task == "regression":
        return {"name": name, "classes": None, "values": None}
    values = [value.item() if isinstance(value, np.generic) else value for value in model.classes_]
    labels: list[str] = []
    for value in values:
        code_is_index = (
            target_names is not None
            and isinstance(value, int)
            and not isinstance(value, bool)
            and 0 <= value < len(target_names)
        )
        labels.append(
            target_names[value] if target_names is not None and code_is_index else str(value)
        )
    return {"name": name, "classes": labels, "values": values}


def save_artifact(model: Any, metadata: dict[str, Any], uri: str) -> str:
    """Write the artifact folder at ``uri`` and return the model digest.

    A local folder is written beside its final place and renamed into it, so a crash never leaves a
    half-written artifact under the final name; a remote one is written to a temporary folder and
    uploaded.
    """
    location = resolve(uri)
    if not location.is_local:
        with tempfile.TemporaryDirectory(prefix="kubeloop-artifact-") as scratch:
            digest = write_artifact(Path(scratch), model, metadata)
            upload_folder(Path(scratch), location)
        return digest
    final = Path(location.path)
    staging = final.parent / f".{final.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        digest = write_artifact(staging, model, metadata)
        if final.is_dir():
            # A retried Job writes the same artifact again: replace the old one.
            shutil.rmtree(final)
        staging.rename(final)
    except OSError as error:
        # A read-only or full volume, a file where the folder should be: the user's to fix.
        raise StorageError(
            f"output.uri {uri}: cannot write the artifact folder: {error}"
        ) from error
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return digest


def describe_dataset(loaded: LoadedDataset, config: TrainConfig) -> dict[str, Any]:
    """What was trained on: URI, digest (the data version), rows; for a folder also the file
    count and the manifest's digest (the exact files, docs/design/contracts.md)."""
    described: dict[str, Any] = {"uri": loaded.uri, "digest": loaded.digest, "rows": loaded.rows}
    if loaded.format == "folder":
        described.update(files=loaded.files, manifest=loaded.manifest_digest)
        if config.dataset.manifest is not None and config.dataset.manifest.uri is not None:
            described["manifestUri"] = config.dataset.manifest.uri
    return described


def input_example(features: pd.DataFrame, rows: int) -> list[dict[str, Any]]:
    """Up to ``rows`` training rows as ``{feature: value}`` (complete rows first), JSON-ready."""
    complete = features.dropna()
    picked = (complete if len(complete) else features).head(rows)
    records: list[dict[str, Any]] = to_plain(
        [
            {str(name): value for name, value in zip(picked.columns, row, strict=True)}
            for row in picked.itertuples(index=False, name=None)
        ]
    )
    return records


def result_example(example: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The example rows that fit the result: at most RESULT_EXAMPLE_ROWS, within the byte budget."""
    rows = example[:RESULT_EXAMPLE_ROWS]
    while rows and len(json.dumps(rows, separators=(",", ":"))) > RESULT_EXAMPLE_BYTES:
        rows = rows[:-1]
    return rows


def framework_info() -> dict[str, str]:
    """The library that fits the model and the Python that ran it (ModelVersion spec.framework)."""
    return {
        "name": FRAMEWORK,
        "version": version(FRAMEWORK),
        "pythonVersion": platform.python_version(),
    }


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            continue
    return versions


if __name__ == "__main__":
    sys.exit(main())
