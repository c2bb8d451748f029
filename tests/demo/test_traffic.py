"""The demo's traffic: deterministic, shifted where the first model never saw data, labelled by a
rule a retrained model can learn (real scikit-learn models on iris)."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split

from demolib import traffic


def as_arrays(batch: traffic.Batch) -> tuple[np.ndarray, np.ndarray]:
    x = np.array([[r[f] for f in traffic.FEATURES] for r in batch.records])
    y = np.array([traffic.SPECIES.index(label) for label in batch.labels])
    return x, y


def test_the_same_seed_draws_the_same_rows_and_another_seed_others() -> None:
    assert traffic.draw(20, shifted=True, seed=3) == traffic.draw(20, shifted=True, seed=3)
    assert traffic.draw(20, shifted=True, seed=3) != traffic.draw(20, shifted=True, seed=4)


def test_the_shift_moves_only_the_petal_features_by_the_documented_amounts() -> None:
    row = (5.1, 3.5, 1.4, 0.2)
    assert traffic.shift_row(row) == (5.1, 3.5, 1.4 + 8.0, 0.2 + 2.0)
    base, shifted = (
        traffic.draw(500, shifted=False, seed=1),
        traffic.draw(500, shifted=True, seed=1),
    )
    for feature in traffic.FEATURES:
        gap = np.mean([r[feature] for r in shifted.records]) - np.mean(
            [r[feature] for r in base.records]
        )
        expected = {"petal length (cm)": 8.0, "petal width (cm)": 2.0}.get(feature, 0.0)
        assert abs(gap - expected) < 0.05, feature
    assert shifted.labels == base.labels  # the species do not change


def test_the_base_csv_has_the_iris_rows_and_the_dataset_columns() -> None:
    frame = pd.read_csv(io.StringIO(traffic.iris_csv()))
    assert list(frame.columns) == [*traffic.FEATURES, traffic.TARGET]
    assert len(frame) == 150
    assert sorted(frame[traffic.TARGET].unique()) == list(traffic.SPECIES)


def test_a_model_of_the_base_data_fails_on_shifted_rows_and_a_retrained_one_does_not() -> None:
    rows, targets = traffic.iris_rows()
    first = RandomForestClassifier(n_estimators=50, random_state=0).fit(np.array(rows), targets)
    x_base, y_base = as_arrays(traffic.draw(300, shifted=False, seed=5))
    x_new, y_new = as_arrays(traffic.draw(3000, shifted=True, seed=6))
    assert (first.predict(x_base) == y_base).mean() > 0.9
    assert (first.predict(x_new) == y_new).mean() < 0.5
    x_all = np.vstack([np.array(rows), x_base, x_new])
    y_all = np.concatenate([targets, y_base, y_new])
    x_train, x_test, y_train, y_test = train_test_split(
        x_all, y_all, test_size=0.2, random_state=42, stratify=y_all
    )
    retrained = RandomForestClassifier(n_estimators=50, random_state=0).fit(x_train, y_train)
    new_score = (retrained.predict(x_test) == y_test).mean()
    old_score = (first.predict(x_test) == y_test).mean()
    assert new_score > 0.9 > old_score + 0.3


def test_accuracy_compares_predictions_with_labels() -> None:
    assert traffic.accuracy(["setosa", "virginica"], ["setosa", "versicolor"]) == 0.5
    assert traffic.accuracy([], []) is None


def test_permuted_labels_keep_the_rows_and_match_none_of_the_true_labels() -> None:
    batch = traffic.draw(60, shifted=False, seed=3)
    moved = traffic.permuted(batch)
    assert moved.records == batch.records
    assert all(a != b for a, b in zip(moved.labels, batch.labels, strict=True))
    assert traffic.permuted(batch, steps=3).labels == batch.labels
    assert sorted(set(moved.labels)) == sorted(set(batch.labels))
