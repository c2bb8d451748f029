"""The estimator allow-list, and building an estimator from an import path and parameters.

A TrainingJob names its estimator by import path. Importing a module runs its code, so a path
outside `ALLOWED_ESTIMATORS` is refused before anything is imported. The operator keeps the same
list in ``operator/kubeloop/estimators.py`` to refuse a TrainingJob early; the two must stay
identical (tests/runtime/test_estimators.py compares them).

Parameters are checked against the estimator's ``get_params()`` keys (an unknown key is an error
listing the valid ones) and against scikit-learn's own parameter constraints, before any fitting.
"""

from __future__ import annotations

import importlib
from typing import Any, Final

from kubeloop_runtime.errors import EstimatorError

ALLOWED_ESTIMATORS: Final[frozenset[str]] = frozenset(
    {
        "sklearn.linear_model.LogisticRegression",
        "sklearn.linear_model.LinearRegression",
        "sklearn.linear_model.Ridge",
        "sklearn.linear_model.Lasso",
        "sklearn.linear_model.ElasticNet",
        "sklearn.linear_model.SGDClassifier",
        "sklearn.linear_model.SGDRegressor",
        "sklearn.ensemble.RandomForestClassifier",
        "sklearn.ensemble.RandomForestRegressor",
        "sklearn.ensemble.ExtraTreesClassifier",
        "sklearn.ensemble.ExtraTreesRegressor",
        "sklearn.ensemble.GradientBoostingClassifier",
        "sklearn.ensemble.GradientBoostingRegressor",
        "sklearn.ensemble.HistGradientBoostingClassifier",
        "sklearn.ensemble.HistGradientBoostingRegressor",
        "sklearn.tree.DecisionTreeClassifier",
        "sklearn.tree.DecisionTreeRegressor",
        "sklearn.neighbors.KNeighborsClassifier",
        "sklearn.neighbors.KNeighborsRegressor",
        "sklearn.svm.SVC",
        "sklearn.svm.SVR",
        "sklearn.svm.LinearSVC",
        "sklearn.svm.LinearSVR",
        "sklearn.naive_bayes.GaussianNB",
    }
)


def resolve_estimator(path: str) -> type[Any]:
    """Return the class at an allow-listed import path; refuse any other path, unimported."""
    if path not in ALLOWED_ESTIMATORS:
        raise EstimatorError(
            f"estimator {path!r} is not allowed; allowed estimators: "
            + ", ".join(sorted(ALLOWED_ESTIMATORS))
        )
    module_name, _, class_name = path.rpartition(".")
    estimator_class: type[Any] = getattr(importlib.import_module(module_name), class_name)
    return estimator_class


def build_estimator(path: str, params: dict[str, Any], random_seed: int | None = None) -> Any:
    """Instantiate an allow-listed estimator with checked parameters.

    ``random_seed`` fills ``random_state`` when the estimator has one and the params do not set it,
    so a training run is reproducible by default.
    """
    estimator_class = resolve_estimator(path)
    estimator = estimator_class()
    valid = set(estimator.get_params(deep=False))
    check_param_names(path, params, valid, "params")
    chosen = dict(params)
    if random_seed is not None and "random_state" in valid and "random_state" not in chosen:
        chosen["random_state"] = random_seed
    estimator.set_params(**chosen)
    check_param_values(path, estimator)
    return estimator


def check_param_names(path: str, names: Any, valid: set[str], field: str) -> None:
    """Refuse parameter names the estimator does not have, naming them and the valid ones."""
    unknown = sorted(str(name) for name in names if name not in valid)
    if unknown:
        raise EstimatorError(
            f"{field}: {path} has no parameter{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(repr(name) for name in unknown)}; valid parameters: "
            + ", ".join(sorted(valid))
        )


def check_param_values(path: str, estimator: Any) -> None:
    """Check the values against scikit-learn's declared constraints, before fitting.

    ``_validate_params`` is private scikit-learn API (present since 1.2); fit calls it anyway, and
    calling it here turns a bad value into a configuration error instead of a failed fit after the
    data was loaded. Where it is missing, fit still checks.
    """
    validate = getattr(estimator, "_validate_params", None)
    if validate is None:
        return
    try:
        validate()
    except (TypeError, ValueError) as error:
        raise EstimatorError(f"params: invalid value for {path}: {error}") from error
