"""The demo's traffic: iris rows as the model first saw them, and the same flowers after a shift.

The shift is a deterministic covariate shift with a rule for its labels: a new instrument reads
every petal `PETAL_LENGTH_SHIFT` cm longer and `PETAL_WIDTH_SHIFT` cm wider, and the species of a
flower does not change. So a shifted row's label is the species of the iris row it came from. The
shifted rows lie where the first model never saw data (it calls nearly all of them virginica),
while a model trained on them separates them as well as the base rows: retraining on the captured,
labelled traffic earns its place. Pure: no I/O, the same rows for the same seed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np

FEATURES: tuple[str, ...] = (
    "sepal length (cm)",
    "sepal width (cm)",
    "petal length (cm)",
    "petal width (cm)",
)
TARGET = "target"
SPECIES: tuple[str, ...] = ("setosa", "versicolor", "virginica")
PETAL_LENGTH_SHIFT = 8.0
PETAL_WIDTH_SHIFT = 2.0
SHIFTED_FEATURES: tuple[str, ...] = ("petal length (cm)", "petal width (cm)")
# Measurement noise added to every drawn row (cm), so repeated draws are not copies of the 150.
NOISE_CM = 0.1


@dataclass(frozen=True)
class Batch:
    """Rows to predict, as `{feature: value}` records, with the label each row should get."""

    records: list[dict[str, float]]
    labels: list[str]


@cache
def iris_rows() -> tuple[tuple[tuple[float, ...], ...], tuple[int, ...]]:
    """The 150 iris rows (features in FEATURES order) and their target codes."""
    from sklearn.datasets import load_iris

    data = load_iris()
    rows = tuple(tuple(float(v) for v in row) for row in data.data)
    return rows, tuple(int(t) for t in data.target)


def iris_csv() -> str:
    """The base data as CSV, with the column names the Dataset schema expects and the species
    by name (what the demo's seed Job writes)."""
    rows, targets = iris_rows()
    lines = [",".join([*(f'"{f}"' for f in FEATURES), TARGET])]
    lines += [
        ",".join([*(f"{v:g}" for v in row), label_for(t)])
        for row, t in zip(rows, targets, strict=True)
    ]
    return "\n".join(lines) + "\n"


def shift_row(row: Sequence[float]) -> tuple[float, ...]:
    """One iris row as the new instrument reads it."""
    sepal_length, sepal_width, petal_length, petal_width = row
    return (
        sepal_length,
        sepal_width,
        petal_length + PETAL_LENGTH_SHIFT,
        petal_width + PETAL_WIDTH_SHIFT,
    )


def label_for(target: int) -> str:
    """The label rule: the species of the flower, shifted or not."""
    return SPECIES[target]


def draw(size: int, *, shifted: bool, seed: int) -> Batch:
    """`size` rows drawn with replacement from iris, with noise, shifted or not, and labelled."""
    rows, targets = iris_rows()
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(rows), size=size)
    noise = rng.normal(0.0, NOISE_CM, size=(size, len(FEATURES)))
    records: list[dict[str, float]] = []
    labels: list[str] = []
    for pick, jitter in zip(picks, noise, strict=True):
        row = shift_row(rows[pick]) if shifted else rows[pick]
        values = [max(0.1, round(v + float(j), 2)) for v, j in zip(row, jitter, strict=True)]
        records.append(dict(zip(FEATURES, values, strict=True)))
        labels.append(label_for(targets[pick]))
    return Batch(records=records, labels=labels)


def permuted(batch: Batch, steps: int = 1) -> Batch:
    """The same rows with each label moved `steps` species on (setosa → versicolor → virginica →
    setosa): concept drift. The inputs still look like the training data, but the rule from
    inputs to labels has changed, so only feedback accuracy can see it."""
    moved = [SPECIES[(SPECIES.index(label) + steps) % len(SPECIES)] for label in batch.labels]
    return Batch(records=batch.records, labels=moved)


def batches(batch_size: int, *, shifted: bool, seed: int) -> Iterator[Batch]:
    """An endless, deterministic stream of batches (batch i uses seed `seed + i`)."""
    index = 0
    while True:
        yield draw(batch_size, shifted=shifted, seed=seed + index)
        index += 1


def accuracy(predictions: Sequence[object], labels: Sequence[str]) -> float | None:
    """Share of predictions equal to their labels; None for an empty batch."""
    if not labels:
        return None
    hits = sum(1 for p, y in zip(predictions, labels, strict=True) if str(p) == y)
    return hits / len(labels)
