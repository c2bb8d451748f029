"""The bounded window of recent inputs and predictions that the drift sidecar reads.

A ring buffer: one preallocated rows-by-features matrix (float64, or object when some features
are categories) and the prediction made for each row. Rows are written in order, so the window
holds exactly the rows numbered ``seq - capacity`` to ``seq - 1``. A prediction id is
``<instance>-<seq>``: the row's place in the ring follows from ``seq``, so feedback finds its
prediction without a dictionary, and an id from another replica or an evicted row is refused.
Labelled feedback is kept apart (bounded as well) as (prediction, label) pairs. Wire format of
``snapshot``: docs/design/contracts.md, "Server window".

Single-threaded by design: only the event loop touches it.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from kubeloop_runtime.serve.model import FeatureMatrix, ModelSchema


class Window:
    def __init__(self, schema: ModelSchema, capacity: int, instance: str | None = None) -> None:
        self.capacity = capacity
        self.features = schema.feature_names
        self.instance = instance or secrets.token_hex(4)
        self._numeric = schema.all_numeric
        self._matrix: npt.NDArray[Any] = np.zeros(
            (capacity, len(self.features)), dtype=np.float64 if self._numeric else object
        )
        self._predictions: npt.NDArray[Any] = np.empty(capacity, dtype=object)
        self._feedback: OrderedDict[int, tuple[Any, Any]] = OrderedDict()
        self.seq = 0
        """Rows ever received; the next row gets this sequence number."""

    @property
    def rows(self) -> int:
        return min(self.seq, self.capacity)

    @property
    def labelled(self) -> int:
        return len(self._feedback)

    def ids(self, first: int, count: int) -> list[str]:
        """The prediction ids of ``count`` rows from sequence number ``first`` on."""
        prefix = self.instance
        return [f"{prefix}-{seq}" for seq in range(first, first + count)]

    def append(self, features: FeatureMatrix, labels: npt.NDArray[Any]) -> int:
        """Record a batch of rows and their predictions; return the first row's number."""
        count = len(labels)
        first = self.seq
        self.seq += count
        if count == 1 and isinstance(features, np.ndarray):  # the common case, kept short
            slot = first % self.capacity
            self._matrix[slot] = features[0]
            self._predictions[slot] = labels[0]
            return first
        keep = min(count, self.capacity)
        skip = count - keep
        if isinstance(features, pd.DataFrame):
            values = features[list(self.features)].to_numpy(dtype=object)[skip:]
        else:
            values = features[skip:]
        start = (first + skip) % self.capacity
        head = min(keep, self.capacity - start)  # rows before the ring wraps
        self._matrix[start : start + head] = values[:head]
        self._predictions[start : start + head] = labels[skip : skip + head]
        if head < keep:
            tail = keep - head
            self._matrix[:tail] = values[head:]
            self._predictions[:tail] = labels[skip + head :]
        return first

    def prediction_for(self, prediction_id: str) -> Any:
        """The prediction an id names, or KeyError if unknown or evicted."""
        instance, _, number = prediction_id.rpartition("-")
        if instance != self.instance or not number.isdigit():
            raise KeyError(prediction_id)
        seq = int(number)
        if number != str(seq):  # one spelling per id: "x-07" is not "x-7"
            raise KeyError(prediction_id)
        slot = seq % self.capacity
        if not self.seq - self.capacity <= seq < self.seq:  # rows are written in order
            raise KeyError(prediction_id)
        return self._predictions[slot]

    def add_feedback(self, prediction_id: str, label: Any) -> None:
        """Remember the true label of a prediction (a repeated id overwrites its label)."""
        prediction = self.prediction_for(prediction_id)
        seq = int(prediction_id.rpartition("-")[2])
        self._feedback.pop(seq, None)
        self._feedback[seq] = (prediction, label)
        while len(self._feedback) > self.capacity:
            self._feedback.popitem(last=False)

    def snapshot(self, model_name: str, model_version: str) -> dict[str, Any]:
        """The window, oldest row first, as the contract's JSON object (numpy columns)."""
        rows = self.rows
        if self.seq <= self.capacity:
            order: npt.NDArray[np.int64] | slice = slice(0, rows)
        else:
            order = np.roll(np.arange(self.capacity), -(self.seq % self.capacity))
        rows_in_order = self._matrix[order]
        columns: dict[str, Any] = {}
        for position, name in enumerate(self.features):
            column = rows_in_order[:, position]
            columns[name] = np.ascontiguousarray(column) if self._numeric else column.tolist()
        pairs = list(self._feedback.values())
        return {
            "model": model_name,
            "modelVersion": model_version,
            "seq": self.seq,
            "size": rows,
            "capacity": self.capacity,
            "features": list(self.features),
            "columns": columns,
            "feedback": {
                "predictions": [prediction for prediction, _ in pairs],
                "labels": [label for _, label in pairs],
            },
        }
