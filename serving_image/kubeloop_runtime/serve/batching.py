"""Adaptive micro-batching: requests that arrive together share one ``predict`` call.

One asyncio task drains a queue. It takes the first waiting request and every request already
queued behind it. It then waits (at most ``max_wait``, never beyond ``max_rows``) only while
requests are already inside the server but still reading their body: ``arriving()`` counts
them. Waiting for requests that have not arrived would only add latency, so a lone request,
or a batch that holds every request in flight, goes at once.
While a batch predicts, new requests queue up and form the next batch: the busier the server,
the larger the batches.

Predict runs inline on the event loop when it is fast, and in one worker thread when recent
calls were slow (``threshold``): the hand-off costs about 0.1 ms, worth it only when predict
takes long and releases the GIL for part of it, as tree ensembles do.

When predict is cheaper than batching itself (recent calls under ``direct_threshold``, e.g. a
linear model on a few rows) and nothing is queued or predicting, a request is predicted on the
spot: a queue hop and two task switches would cost more than the call they try to share.

If a merged batch fails, each request is retried alone, so one bad request cannot fail the
others that happened to share its batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from kubeloop_runtime.serve.model import FeatureMatrix, Prediction

PredictFunction = Callable[[FeatureMatrix, bool], Prediction]
BatchRecorder = Callable[[FeatureMatrix, Prediction, int], int]
"""Called once per predict call with (rows, predictions, requests merged); returns the number
of the batch's first row, from which each request's rows are numbered."""
ThreadMode = Literal["auto", "always", "never"]


@dataclass
class _Pending:
    features: FeatureMatrix
    probabilities: bool
    future: asyncio.Future[tuple[Prediction, int]] = field(repr=False)

    @property
    def rows(self) -> int:
        return len(self.features)


def _concatenate(parts: list[FeatureMatrix]) -> FeatureMatrix:
    frames = [part for part in parts if isinstance(part, pd.DataFrame)]
    if frames:
        return pd.concat(frames, ignore_index=True)
    return np.concatenate([part for part in parts if isinstance(part, np.ndarray)])


def _nobody_else() -> int:
    return 0


def _no_recorder(features: FeatureMatrix, prediction: Prediction, requests: int) -> int:
    return 0


class MicroBatcher:
    def __init__(
        self,
        predict: PredictFunction,
        max_rows: int,
        max_wait_seconds: float,
        thread_mode: ThreadMode = "auto",
        thread_threshold_seconds: float = 0.001,
        direct_threshold_seconds: float = 0.0001,
        arriving: Callable[[], int] = _nobody_else,
        recorder: BatchRecorder = _no_recorder,
    ) -> None:
        self._predict = predict
        self._max_rows = max_rows
        self._max_wait = max_wait_seconds
        self._thread_mode = thread_mode
        self._threshold = thread_threshold_seconds
        self._arriving = arriving
        self._recorder = recorder
        self._executor: ThreadPoolExecutor | None = None
        if thread_mode != "never":
            self._executor = ThreadPoolExecutor(1, "kubeloop-predict")
        self._direct_threshold = direct_threshold_seconds
        self._recent_seconds = 0.0
        self._busy = False
        self._threaded = False
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="micro-batcher")

    async def stop(self, timeout: float = 10.0) -> None:
        """Finish queued requests, then stop. Called once the server stopped taking requests."""
        if self._task is not None:
            deadline = time.monotonic() + timeout
            while not self._queue.empty() and time.monotonic() < deadline:
                await asyncio.sleep(0.005)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._executor is not None:
            self._executor.shutdown(wait=True)

    def predict_now(
        self, features: FeatureMatrix, probabilities: bool = False
    ) -> tuple[Prediction, int] | None:
        """Predict on the spot if predict is cheap and nothing waits; else None (use predict).

        A plain function, not a coroutine: on the hot path of cheap models every await level
        counts.
        """
        if (
            self._busy
            or self._recent_seconds >= self._direct_threshold
            or self._thread_mode == "always"
            or not self._queue.empty()
        ):
            return None
        started = time.perf_counter()
        prediction = self._predict(features, probabilities)
        self._note_duration(time.perf_counter() - started)
        return prediction, self._recorder(features, prediction, 1)

    async def predict(
        self, features: FeatureMatrix, probabilities: bool = False
    ) -> tuple[Prediction, int]:
        """Predict these rows along with whatever else is waiting.

        Returns the predictions and the number (``recorder``) of the first of these rows.
        """
        now = self.predict_now(features, probabilities)
        if now is not None:
            return now
        future: asyncio.Future[tuple[Prediction, int]] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Pending(features, probabilities, future))
        return await future

    def _take_queued(self, batch: list[_Pending], rows: int) -> int:
        while rows < self._max_rows and not self._queue.empty():
            pending = self._queue.get_nowait()
            batch.append(pending)
            rows += pending.rows
        return rows

    async def _collect(self) -> list[_Pending]:
        first = await self._queue.get()
        batch = [first]
        rows = self._take_queued(batch, first.rows)
        if self._max_wait <= 0:
            return batch
        deadline = time.monotonic() + self._max_wait
        while rows < self._max_rows and self._arriving() > 0:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                pending = await asyncio.wait_for(self._queue.get(), remaining)
            except TimeoutError:
                break
            batch.append(pending)
            rows = self._take_queued(batch, rows + pending.rows)
        return batch

    def _timed(self, features: FeatureMatrix, probabilities: bool) -> Prediction:
        started = time.perf_counter()
        try:
            return self._predict(features, probabilities)
        finally:
            self._note_duration(time.perf_counter() - started)

    def _note_duration(self, seconds: float) -> None:
        # A moving average, so that one slow call (a cold cache, a large batch) does not
        # flip the mode back and forth.
        self._recent_seconds = 0.8 * self._recent_seconds + 0.2 * seconds

    async def _call(self, features: FeatureMatrix, probabilities: bool) -> Prediction:
        # Hysteresis: into the thread above the threshold, back only below half of it, so a
        # model whose calls take about the threshold does not switch on every batch.
        if self._recent_seconds > self._threshold:
            self._threaded = True
        elif self._recent_seconds < self._threshold / 2:
            self._threaded = False
        use_thread = self._executor is not None and (
            self._thread_mode == "always" or self._threaded
        )
        if not use_thread or self._executor is None:
            return self._timed(features, probabilities)
        started = time.perf_counter()
        self._busy = True
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(
                self._executor, self._predict, features, probabilities
            )
        finally:
            self._busy = False
            self._note_duration(time.perf_counter() - started)

    async def _run(self) -> None:
        while True:
            batch = await self._collect()
            live = [pending for pending in batch if not pending.future.done()]
            if live:
                await self._predict_batch(live)

    async def _predict_batch(self, batch: list[_Pending]) -> None:
        probabilities = any(pending.probabilities for pending in batch)
        try:
            if len(batch) == 1:
                features = batch[0].features
            else:
                features = _concatenate([pending.features for pending in batch])
            prediction = await self._call(features, probabilities)
        except asyncio.CancelledError:
            for pending in batch:
                if not pending.future.done():
                    pending.future.cancel()
            raise
        except Exception as error:
            if len(batch) == 1:
                if not batch[0].future.done():
                    batch[0].future.set_exception(error)
                return
            for pending in batch:  # find the culprit: alone, only it fails
                await self._predict_batch([pending])
            return
        first = self._recorder(features, prediction, len(batch))
        if len(batch) == 1:
            if not batch[0].future.done():
                batch[0].future.set_result((prediction, first))
            return
        start = 0
        for pending in batch:
            stop = start + pending.rows
            if not pending.future.done():
                pending.future.set_result((prediction.rows(start, stop), first + start))
            start = stop
