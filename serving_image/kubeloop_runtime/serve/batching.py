"""Adaptive micro-batching: requests that arrive together share one ``predict`` call.

One asyncio task drains a queue. It takes the first waiting request, every request already
queued behind it, and, only when the previous batch had company (requests are arriving
concurrently), waits up to ``max_wait`` for more, never beyond ``max_rows``. A lone request at
low load therefore pays no wait. While a batch predicts in the worker thread, new requests
queue up and form the next batch: the busier the server, the larger the batches.

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

import numpy as np
import pandas as pd

from kubeloop_runtime.serve.model import FeatureMatrix, Prediction

PredictFunction = Callable[[FeatureMatrix, bool], Prediction]
BatchObserver = Callable[[int, int], None]
"""Called with (requests, rows) of each predict call, e.g. for metrics."""


@dataclass
class _Pending:
    features: FeatureMatrix
    probabilities: bool
    future: asyncio.Future[Prediction] = field(repr=False)

    @property
    def rows(self) -> int:
        return len(self.features)


def _concatenate(parts: list[FeatureMatrix]) -> FeatureMatrix:
    frames = [part for part in parts if isinstance(part, pd.DataFrame)]
    if frames:
        return pd.concat(frames, ignore_index=True)
    return np.concatenate([part for part in parts if isinstance(part, np.ndarray)])


class MicroBatcher:
    def __init__(
        self,
        predict: PredictFunction,
        max_rows: int,
        max_wait_seconds: float,
        in_thread: bool,
        observer: BatchObserver | None = None,
    ) -> None:
        self._predict = predict
        self._max_rows = max_rows
        self._max_wait = max_wait_seconds
        self._observer = observer
        self._executor = ThreadPoolExecutor(1, "kubeloop-predict") if in_thread else None
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._had_company = False

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="micro-batcher")

    async def stop(self) -> None:
        """Finish queued requests, then stop. Called after the server stopped taking requests."""
        if self._task is not None:
            while not self._queue.empty():
                await asyncio.sleep(0.001)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._executor is not None:
            self._executor.shutdown(wait=True)

    async def predict(self, features: FeatureMatrix, probabilities: bool = False) -> Prediction:
        future: asyncio.Future[Prediction] = asyncio.get_running_loop().create_future()
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
        if self._had_company and self._max_wait > 0 and rows < self._max_rows:
            deadline = time.monotonic() + self._max_wait
            while rows < self._max_rows:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    pending = await asyncio.wait_for(self._queue.get(), remaining)
                except TimeoutError:
                    break
                batch.append(pending)
                rows = self._take_queued(batch, rows + pending.rows)
        self._had_company = len(batch) > 1
        return batch

    async def _call(self, features: FeatureMatrix, probabilities: bool) -> Prediction:
        if self._executor is None:
            return self._predict(features, probabilities)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._predict, features, probabilities)

    async def _run(self) -> None:
        while True:
            batch = await self._collect()
            live = [pending for pending in batch if not pending.future.done()]
            if not live:
                continue
            await self._predict_batch(live)

    async def _predict_batch(self, batch: list[_Pending]) -> None:
        probabilities = any(pending.probabilities for pending in batch)
        rows = sum(pending.rows for pending in batch)
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
        if self._observer is not None:
            self._observer(len(batch), rows)
        start = 0
        for pending in batch:
            stop = start + pending.rows
            if not pending.future.done():
                pending.future.set_result(prediction.rows(start, stop))
            start = stop
