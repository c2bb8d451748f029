"""Per-feature drift tests against a reference profile (kubeloop_runtime.drift.stattests)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from kubeloop_runtime.drift.errors import DriftInputError
from kubeloop_runtime.drift.stattests import (
    FeatureReference,
    check_feature,
    choose_method,
    prepare_reference,
    sorted_wasserstein,
)
from kubeloop_runtime.profile import build_profile

RNG_SEED = 7


def reference_of(frame: pd.DataFrame) -> dict[str, FeatureReference]:
    return prepare_reference(build_profile(frame))


@pytest.fixture(scope="module")
def normal_reference() -> dict[str, FeatureReference]:
    rng = np.random.default_rng(RNG_SEED)
    return reference_of(pd.DataFrame({"x": rng.normal(10.0, 2.0, size=20_000)}))


def test_sorted_wasserstein_matches_scipy() -> None:
    rng = np.random.default_rng(RNG_SEED)
    left, right = np.sort(rng.normal(size=3000)), np.sort(rng.normal(0.3, 1.2, size=7000))
    assert sorted_wasserstein(left, right) == pytest.approx(stats.wasserstein_distance(left, right))


def test_auto_follows_evidently_defaults(normal_reference: dict[str, FeatureReference]) -> None:
    rng = np.random.default_rng(RNG_SEED)
    large = normal_reference["x"]
    small = reference_of(pd.DataFrame({"x": rng.normal(size=500)}))["x"]
    few_values = reference_of(pd.DataFrame({"x": rng.integers(0, 4, size=500).astype(float)}))["x"]
    binary_large = reference_of(pd.DataFrame({"x": rng.integers(0, 2, size=5000).astype(float)}))
    category = reference_of(pd.DataFrame({"c": rng.choice(["a", "b", "c"], size=500)}))["c"]
    current = rng.normal(size=100)
    assert choose_method(large, current) == "wasserstein"
    assert choose_method(small, current) == "ks"
    assert choose_method(few_values, np.array([0.0, 1.0, 2.0])) == "chisquare"
    assert choose_method(binary_large["x"], np.array([0.0, 1.0])) == "jensenshannon"
    assert choose_method(category, np.array(["a", "b"], dtype=object)) == "chisquare"


@pytest.mark.parametrize("method", ["ks", "wasserstein", "psi", "jensenshannon"])
def test_numeric_methods_tell_same_from_shifted(
    normal_reference: dict[str, FeatureReference], method: str
) -> None:
    rng = np.random.default_rng(RNG_SEED + 1)
    same = check_feature(normal_reference["x"], rng.normal(10.0, 2.0, size=20_000), method)
    moved = check_feature(normal_reference["x"], rng.normal(13.0, 2.0, size=20_000), method)
    assert not same.drifted, same
    assert moved.drifted, moved
    assert same.method == moved.method == method
    assert moved.samples == 20_000


def test_psi_values_on_reference_bins(normal_reference: dict[str, FeatureReference]) -> None:
    rng = np.random.default_rng(RNG_SEED + 2)
    same = check_feature(normal_reference["x"], rng.normal(10.0, 2.0, size=50_000), "psi")
    moved = check_feature(normal_reference["x"], rng.normal(11.0, 2.0, size=50_000), "psi")
    assert same.statistic < 0.01
    assert moved.statistic > 0.2  # half a std: a "significant" shift by the usual PSI reading
    outside = check_feature(normal_reference["x"], np.full(1000, 1e6), "psi")
    assert outside.drifted  # values past the reference max land in the last (open) bin


def test_chisquare_on_a_synthetic_category_column() -> None:
    rng = np.random.default_rng(RNG_SEED)
    frame = pd.DataFrame({"plan": rng.choice(["free", "pro", "team"], p=[0.5, 0.3, 0.2], size=800)})
    plan = reference_of(frame)["plan"]
    same = rng.choice(["free", "pro", "team"], p=[0.5, 0.3, 0.2], size=400).astype(object)
    moved = rng.choice(["free", "pro", "team"], p=[0.2, 0.3, 0.5], size=400).astype(object)
    unseen = np.array(["free"] * 390 + ["enterprise"] * 10, dtype=object)
    assert choose_method(plan, same) == "chisquare"
    assert not check_feature(plan, same, "auto").drifted
    shifted = check_feature(plan, moved, "auto")
    assert shifted.drifted
    assert shifted.statistic < 1e-6
    assert check_feature(plan, unseen, "chisquare").statistic == 0.0
    alias = check_feature(plan, moved, "chi2")  # the InferenceService spec's spelling
    assert alias.method == "chisquare"
    assert alias.statistic == shifted.statistic
    for method in ("psi", "jensenshannon"):
        assert check_feature(plan, moved, method).drifted
        assert not check_feature(plan, same, method).drifted


def test_z_test_on_a_binary_feature() -> None:
    rng = np.random.default_rng(RNG_SEED)
    flag = reference_of(pd.DataFrame({"flag": rng.random(600) < 0.3}))["flag"]
    assert choose_method(flag, np.array([0.0, 1.0])) == "z"
    share = float(flag.sample.mean())
    same = np.array([1.0] * round(300 * share) + [0.0] * (300 - round(300 * share)))
    doubled = np.array([1.0] * round(600 * share) + [0.0] * (300 - round(600 * share)))
    assert not check_feature(flag, same, "auto").drifted
    assert check_feature(flag, doubled, "auto").drifted


def test_threshold_override_and_errors(normal_reference: dict[str, FeatureReference]) -> None:
    rng = np.random.default_rng(RNG_SEED)
    values = rng.normal(10.2, 2.0, size=2000)
    loose = check_feature(normal_reference["x"], values, "wasserstein", threshold=0.5)
    assert loose.threshold == 0.5
    assert not loose.drifted
    with pytest.raises(DriftInputError, match="feature 'x': the window holds no values"):
        check_feature(normal_reference["x"], np.array([]), "ks")
    category = reference_of(pd.DataFrame({"c": ["a", "b"]}))["c"]
    with pytest.raises(DriftInputError, match="feature 'c': method 'ks' does not apply"):
        check_feature(category, np.array(["a"], dtype=object), "ks")
    with pytest.raises(DriftInputError, match="feature 'y': profile kind 'text'"):
        prepare_reference({"features": {"y": {"kind": "text"}}})
    with pytest.raises(DriftInputError, match="no 'features'"):
        prepare_reference({"rows": 3})
