"""Data capture: the served rows, predictions and feedback labels, written as Parquet part files.

The request path only appends: once per predict call `CaptureWriter.add` puts a reference to the
batch's rows on a deque (no copy, no conversion, no I/O), and `label` does the same for a feedback
label; both are O(1) on the event loop. When more records wait than the buffer holds, new ones are
dropped and counted. A background thread wakes every flush interval (or early, when a part's
worth of rows waits), turns what is queued into one part (captures.build_part), writes it
atomically under the capture folder, then enforces this pod's retention. ``close`` (on shutdown)
writes what is still queued. Format and settings: docs/design/contracts.md, "Data capture".

The two threads share only the deques (appends and pops are atomic in CPython) and counters that
each thread alone writes (records queued by the loop, records taken by the writer thread).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from kubeloop_runtime.captures import (
    PART_NAME,
    CaptureSchema,
    PartColumns,
    build_part,
    part_name,
)
from kubeloop_runtime.errors import StorageError
from kubeloop_runtime.serve.model import FeatureMatrix, Prediction
from kubeloop_runtime.storage import (
    Location,
    delete_file,
    list_folder,
    resolve,
    write_file_atomically,
)

log = logging.getLogger(__name__)

_HASH_MULTIPLIER: Final = 2654435761  # Knuth's multiplicative hash: spreads row numbers evenly
_HASH_MASK: Final = 0xFFFFFFFF


def sample_threshold(rate: float) -> int:
    """Rows whose hash is below this are captured (rate 1: all, rate 0: none)."""
    return round(rate * (1 << 32))


def is_sampled(seq: int, threshold: int) -> bool:
    """Whether row ``seq`` is captured: the same answer for its prediction and its feedback."""
    return ((seq * _HASH_MULTIPLIER) & _HASH_MASK) < threshold


def sampled_mask(first: int, count: int, threshold: int) -> npt.NDArray[np.bool_]:
    seqs = np.arange(first, first + count, dtype=np.uint64)
    hashed = (seqs * np.uint64(_HASH_MULTIPLIER)) & np.uint64(_HASH_MASK)
    mask: npt.NDArray[np.bool_] = hashed < np.uint64(threshold)
    return mask


@dataclass(frozen=True)
class CaptureLimits:
    sample_rate: float = 1.0
    flush_seconds: float = 10.0
    max_rows_per_part: int = 10_000
    buffer_rows: int = 100_000
    max_parts: int = 1000
    max_bytes: int = 1 << 30
    writer_share: float = 0.25  # most of one core the writer thread may use (CPU time)


# One queued predict call: (rows, count, time, features, outcome). ``rows`` is the first row's
# number when the rows are numbered on from it, or the array of their numbers when sampling
# left gaps; ``outcome`` holds class positions (classification) or predicted values. A plain
# tuple: it is built once per predict call on the event loop, where a class costs a microsecond.
_Queued = tuple[int | npt.NDArray[np.int64], int, float, FeatureMatrix, npt.NDArray[Any]]


def _seq_array(item: _Queued) -> npt.NDArray[np.int64]:
    rows, count = item[0], item[1]
    if isinstance(rows, int):
        return np.arange(rows, rows + count, dtype=np.int64)
    return rows


def _split(item: _Queued, head: int) -> tuple[_Queued, _Queued]:
    """The first ``head`` rows of a queued batch, and the rest."""
    rows, count, when, features, outcome = item
    if isinstance(rows, int):
        first: _Queued = (rows, head, when, features[:head], outcome[:head])
        rest: _Queued = (rows + head, count - head, when, features[head:], outcome[head:])
    else:
        first = (rows[:head], head, when, features[:head], outcome[:head])
        rest = (rows[head:], count - head, when, features[head:], outcome[head:])
    return first, rest


@dataclass
class CaptureStats:
    """Counters for /metrics. Each is written by one thread only (noted per field)."""

    queued: int = 0  # event loop: records ever queued
    taken: int = 0  # writer thread: records ever taken off the queue
    prediction_rows: int = 0  # writer thread: prediction records written
    feedback_rows: int = 0  # writer thread: feedback records written
    parts: int = 0  # writer thread
    dropped_buffer_full: int = 0  # event loop
    dropped_write_error: int = 0  # writer thread

    @property
    def waiting(self) -> int:
        return self.queued - self.taken


class CaptureWriter:
    """Queues captured records on the event loop; writes them from a thread of its own."""

    def __init__(
        self,
        uri: str,
        schema: CaptureSchema,
        instance: str,
        limits: CaptureLimits,
        class_values: list[Any] | None,
    ) -> None:
        self.folder: Location = resolve(uri if uri.endswith("/") else uri + "/")
        self.schema = schema
        self.instance = instance
        self.limits = limits
        self.stats = CaptureStats()
        self._threshold = sample_threshold(limits.sample_rate)
        self._sampling = self._threshold < (1 << 32)
        self._buffer_rows = limits.buffer_rows
        self._part_rows = limits.max_rows_per_part
        self._class_values = class_values
        self._numeric = all(kind == "number" for _, kind in schema.features)
        self._batches: deque[_Queued] = deque()
        self._labels: deque[tuple[int, float, Any]] = deque()
        self._wake = threading.Event()  # a part's worth waits, or close()
        self._stop = threading.Event()
        self._stopping = False
        self._seq = 0
        self._own_parts: deque[tuple[str, int]] = deque()
        self._thread = threading.Thread(target=self._run, name="kubeloop-capture", daemon=True)

    # -- event loop side ---------------------------------------------------------------------
    def add(self, first: int, features: FeatureMatrix, prediction: Prediction) -> None:
        """Queue the rows of one predict call (numbered from ``first``). The hot path."""
        index = prediction.class_index
        outcome = prediction.labels if index is None else index
        count = len(outcome)
        rows: int | npt.NDArray[np.int64] = first
        if self._sampling:
            if count == 1:
                if not is_sampled(first, self._threshold):
                    return
            else:
                mask = sampled_mask(first, count, self._threshold)
                kept = int(mask.sum())
                if kept == 0:
                    return
                if kept < count:
                    rows = np.arange(first, first + count, dtype=np.int64)[mask]
                    features, outcome, count = features[mask], outcome[mask], kept
        stats = self.stats
        waiting = stats.queued - stats.taken + count
        if waiting > self._buffer_rows:
            stats.dropped_buffer_full += count
            return
        self._batches.append((rows, count, time.time(), features, outcome))
        stats.queued += count
        if waiting >= self._part_rows and not self._wake.is_set():
            self._wake.set()

    def label(self, seq: int, value: Any) -> None:
        """Queue the label of row ``seq`` (already checked: a known prediction, a valid label)."""
        if not is_sampled(seq, self._threshold):
            return
        stats = self.stats
        if stats.queued - stats.taken + 1 > self.limits.buffer_rows:
            stats.dropped_buffer_full += 1
            return
        self._labels.append((seq, time.time(), value))
        stats.queued += 1

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def close(self, timeout: float = 20.0) -> None:
        """Write what is queued, then stop the thread (called on shutdown)."""
        self._stopping = True
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        else:
            self.flush()

    # -- writer thread -----------------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._own_parts.extend(self._existing_parts())
        except StorageError as error:
            log.warning("capture: cannot list %s for retention: %s", self.folder.uri, error)
        while not self._stopping:
            self._wake.wait(self.limits.flush_seconds)
            self._wake.clear()
            self.flush()
        self.flush()

    def flush(self) -> int:
        """Write everything queued now, as parts of at most max_rows_per_part records.

        While serving, after each part the thread rests long enough to keep its CPU time within
        ``writer_share`` of one core: when records arrive faster than that, the queue fills and
        new ones are dropped (counted) rather than the writer taking CPU from the requests. On
        shutdown it writes what is left without resting.
        """
        written = 0
        rest_factor = 1 / self.limits.writer_share - 1
        while self._batches or self._labels:
            started = time.thread_time()
            batches, labels = self._take(self.limits.max_rows_per_part)
            if not batches and not labels:
                break
            if self._write(batches, labels):
                written += 1
            rest = (time.thread_time() - started) * rest_factor
            if rest > 0 and not self._stopping:
                self._stop.wait(rest)  # close() cuts the rest short
        return written

    def _take(self, limit: int) -> tuple[list[_Queued], list[tuple[int, float, Any]]]:
        batches: list[_Queued] = []
        rows = 0
        while self._batches and rows < limit:
            batch = self._batches.popleft()
            if rows + batch[1] > limit:
                batch, rest = _split(batch, limit - rows)
                self._batches.appendleft(rest)
            batches.append(batch)
            rows += batch[1]
        labels: list[tuple[int, float, Any]] = []
        while self._labels and rows < limit:
            labels.append(self._labels.popleft())
            rows += 1
        self.stats.taken += rows
        return batches, labels

    def _write(self, batches: list[_Queued], labels: list[tuple[int, float, Any]]) -> bool:
        columns = self._columns(batches, labels)
        records = len(columns.seqs) + len(columns.feedback_seqs)
        name = part_name(datetime.now(UTC), self.schema.pod, self._seq)
        self._seq += 1
        try:
            data = build_part(self.schema, columns, self._class_values)
            write_file_atomically(self.folder.child(name), data)
        except Exception as error:  # storage down, disk full: capture must not stop serving
            self.stats.dropped_write_error += records
            log.warning("capture: dropped %d records, cannot write %s: %s", records, name, error)
            return False
        self.stats.prediction_rows += len(columns.seqs)
        self.stats.feedback_rows += len(columns.feedback_seqs)
        self.stats.parts += 1
        self._own_parts.append((name, len(data)))
        self._enforce_retention()
        return True

    def _columns(self, batches: list[_Queued], labels: list[tuple[int, float, Any]]) -> PartColumns:
        lengths = [batch[1] for batch in batches]
        times = np.repeat(np.array([batch[2] for batch in batches], dtype=np.float64), lengths)
        if all(isinstance(batch[0], int) for batch in batches):
            # numbered on from each first row: one arange over all of them, no loop per batch
            firsts = np.array([batch[0] for batch in batches], dtype=np.int64)
            offsets = np.arange(sum(lengths), dtype=np.int64)
            starts = np.cumsum(lengths, dtype=np.int64) - lengths
            seqs = offsets + np.repeat(firsts - starts, lengths)
        else:
            seqs = np.concatenate([_seq_array(batch) for batch in batches])
        outcome = (
            np.concatenate([np.asarray(batch[4]) for batch in batches])
            if batches
            else np.empty(0, dtype=np.float64)
        )
        row_labels: list[Any] | None = None
        feedback_seqs: list[int] = []
        feedback_times: list[float] = []
        feedback_labels: list[Any] = []
        if labels:
            position = {int(seq): index for index, seq in enumerate(seqs.tolist())}
            for seq, when, value in labels:
                index = position.get(seq)
                if index is not None:
                    if row_labels is None:
                        row_labels = [None] * len(seqs)
                    row_labels[index] = value
                else:
                    feedback_seqs.append(seq)
                    feedback_times.append(when)
                    feedback_labels.append(value)
        return PartColumns(
            self.instance, seqs, times, self._feature_columns(batches), outcome, row_labels,
            feedback_seqs, feedback_times, feedback_labels,
        )  # fmt: skip

    def _feature_columns(self, batches: list[_Queued]) -> list[Any]:
        names = [name for name, _ in self.schema.features]
        if not batches:
            return [[] for _ in names]
        if self._numeric and all(isinstance(batch[3], np.ndarray) for batch in batches):
            matrix = np.concatenate([np.asarray(batch[3]) for batch in batches])
            return [np.ascontiguousarray(matrix[:, index]) for index in range(len(names))]
        frames = [
            batch[3]
            if isinstance(batch[3], pd.DataFrame)
            else pd.DataFrame(batch[3], columns=names)
            for batch in batches
        ]
        frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
        columns: list[Any] = []
        for name, kind in self.schema.features:
            column = frame[name]
            if kind == "number":
                columns.append(column.to_numpy(dtype=np.float64, na_value=np.nan))
            else:
                pairs = zip(column.tolist(), column.isna().tolist(), strict=True)
                columns.append([None if gone else str(value) for value, gone in pairs])
        return columns

    def _existing_parts(self) -> list[tuple[str, int]]:
        """This pod's parts already in the folder (a restarted container keeps its name)."""
        own = []
        for name, size in list_folder(self.folder).items():
            match = PART_NAME.match(name)
            if match is not None and match.group("pod") == self.schema.pod:
                own.append((name, size))
        return sorted(own)

    def _enforce_retention(self) -> None:
        """Delete this pod's oldest parts beyond max_parts or max_bytes (the newest stays)."""
        parts = self._own_parts
        total = sum(size for _, size in parts)
        while len(parts) > 1 and (
            len(parts) > self.limits.max_parts or total > self.limits.max_bytes
        ):
            name, size = parts.popleft()
            total -= size
            try:
                delete_file(self.folder.child(name))
            except StorageError as error:
                log.warning("capture: cannot delete old part %s: %s", name, error)
