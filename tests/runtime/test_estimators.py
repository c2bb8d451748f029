"""The estimator allow-list: refused paths are never imported; parameters are checked early."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from kubeloop_runtime.errors import EstimatorError
from kubeloop_runtime.estimators import ALLOWED_ESTIMATORS, build_estimator, resolve_estimator


def test_every_allowed_path_resolves_to_an_estimator() -> None:
    assert len(ALLOWED_ESTIMATORS) == 24
    for path in sorted(ALLOWED_ESTIMATORS):
        estimator_class = resolve_estimator(path)
        assert estimator_class.__name__ == path.rsplit(".", 1)[1]
        assert isinstance(estimator_class().get_params(), dict)


def test_operator_keeps_the_same_list() -> None:
    from kubeloop import estimators as operator_estimators

    assert set(operator_estimators.ALLOWED_ESTIMATORS) == ALLOWED_ESTIMATORS


def test_refused_path_is_never_imported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    marker = tmp_path / "imported"
    (tmp_path / "evil_module.py").write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).write_text('ran')\nclass Thing: ...\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("evil_module", None)

    with pytest.raises(EstimatorError, match=r"'evil_module\.Thing' is not allowed"):
        build_estimator("evil_module.Thing", {})

    assert "evil_module" not in sys.modules
    assert not marker.exists()


@pytest.mark.parametrize(
    "path",
    [
        "os.system",
        "sklearn.ensemble.RandomForestClassifierX",
        "sklearn.pipeline.Pipeline",
        " sklearn.svm.SVC",
        "",
    ],
)
def test_paths_outside_the_list_are_refused(path: str) -> None:
    with pytest.raises(EstimatorError, match="is not allowed; allowed estimators: "):
        resolve_estimator(path)


def test_unknown_parameter_is_named_with_the_valid_ones() -> None:
    with pytest.raises(EstimatorError) as caught:
        build_estimator("sklearn.linear_model.Ridge", {"alpha": 1.0, "n_trees": 3, "depth": 2})
    message = str(caught.value)
    assert "params: sklearn.linear_model.Ridge has no parameters 'depth', 'n_trees'" in message
    assert "valid parameters: " in message
    assert "alpha" in message.split("valid parameters: ")[1]


def test_bad_parameter_value_is_refused_before_fitting() -> None:
    with pytest.raises(EstimatorError, match=r"params: invalid value .*n_estimators"):
        build_estimator("sklearn.ensemble.RandomForestClassifier", {"n_estimators": -3})


def test_seed_fills_random_state_unless_given() -> None:
    seeded = build_estimator("sklearn.ensemble.ExtraTreesRegressor", {"n_estimators": 5}, 11)
    assert seeded.get_params()["random_state"] == 11
    assert seeded.get_params()["n_estimators"] == 5
    explicit = build_estimator("sklearn.tree.DecisionTreeClassifier", {"random_state": 3}, 11)
    assert explicit.get_params()["random_state"] == 3
    no_seed_param = build_estimator("sklearn.naive_bayes.GaussianNB", {}, 11)
    assert "random_state" not in no_seed_param.get_params()
