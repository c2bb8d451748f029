"""Traffic through the active Service's ClusterIP: predictions, then their feedback labels.

Each round opens a fresh connection (kube-proxy balances per connection, so a kept-alive one would
stay on the old colour after the switch) and sends the feedback on the same connection as its
predictions: prediction ids belong to the Pod that answered.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from demolib.timeline import Timeline, TrafficSample
from demolib.traffic import Batch, accuracy, draw


@dataclass(frozen=True)
class Answer:
    predictions: list[object]
    ids: list[str]
    model_version: str | None


def predict(http: httpx.Client, base_url: str, records: list[dict[str, float]]) -> Answer:
    response = http.post(f"{base_url}/predict", json={"instances": records})
    response.raise_for_status()
    body = response.json()
    version = body.get("modelVersion")
    return Answer(
        predictions=list(body.get("predictions", [])),
        ids=[str(i) for i in body.get("ids", [])],
        model_version=str(version) if version is not None else None,
    )


def send_round(
    base_url: str, batch: Batch, timeout: float = 5.0, *, feedback: bool = True
) -> tuple[Answer, bool]:
    """Predict `batch` and, with `feedback`, feed its labels back on the same connection;
    (answer, feedback taken)."""
    with httpx.Client(timeout=timeout, headers={"connection": "keep-alive"}) as http:
        answer = predict(http, base_url, batch.records)
        if not feedback:
            return answer, True
        labels = [{"id": i, "label": y} for i, y in zip(answer.ids, batch.labels, strict=True)]
        taken = http.post(f"{base_url}/feedback", json=labels).status_code < 300
    return answer, taken


@dataclass
class TrafficStats:
    rounds: int = 0
    rows: int = 0
    failed_rounds: int = 0
    feedback_refused: int = 0
    last_error: str = ""
    failed_at: list[float] = field(default_factory=list)  # the sender's clock at each failure


@dataclass
class TrafficSender:
    """A thread that sends batches at a rate; `shifted` and `rate` can change while it runs."""

    base_url: str
    timeline: Timeline
    clock: Callable[[], float]
    batch_size: int = 10
    rounds_per_second: float = 2.0
    shifted: bool = False
    # Labels go back as feedback only for shifted rows: labelled captures become training rows,
    # and the retrained model's reference should be dominated by the new data it will serve.
    feedback_base: bool = False
    stats: TrafficStats = field(default_factory=TrafficStats)
    burst_sent: int = 0
    _idle: threading.Event = field(default_factory=threading.Event)  # set: steady flow paused
    _seed: int = 1000
    _burst_seed: int = 1_000_000
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def send(self, batch: Batch, shifted: bool) -> Answer | None:
        try:
            answer, taken = send_round(self.base_url, batch, feedback=shifted or self.feedback_base)
        except (httpx.HTTPError, ValueError) as error:
            self.stats.failed_rounds += 1
            self.stats.failed_at.append(self.clock())
            self.stats.last_error = f"{type(error).__name__}: {error}"
            return None
        correct = round((accuracy(answer.predictions, batch.labels) or 0.0) * len(batch.labels))
        self.timeline.add_traffic(
            TrafficSample(self.clock(), len(batch.labels), correct, shifted, answer.model_version)
        )
        self.stats.rounds += 1
        self.stats.rows += len(batch.labels)
        self.stats.feedback_refused += 0 if taken else 1
        return answer

    def burst(self, rows: int, batch_size: int = 50, workers: int = 2) -> threading.Thread:
        """Send `rows` shifted rows on `workers` connections at once, as fast as they go, while
        the steady flow pauses (so the server's window never evicts a batch before its
        feedback). Returns the thread that runs it; `burst_sent` counts the rows sent."""
        lock = threading.Lock()
        rounds = list(range(0, rows, batch_size))

        def worker() -> None:
            while True:
                with lock:
                    if not rounds:
                        return
                    rounds.pop()
                    self._burst_seed += 1
                    seed = self._burst_seed
                self.send(draw(batch_size, shifted=True, seed=seed), shifted=True)
                with lock:
                    self.burst_sent += batch_size

        def run() -> None:
            self._idle.set()
            threads = [threading.Thread(target=worker, daemon=True) for _ in range(workers)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            self._idle.clear()

        thread = threading.Thread(target=run, name="demo-burst", daemon=True)
        thread.start()
        return thread

    def _run(self) -> None:
        while not self._stop.is_set():
            if self._idle.is_set():
                self._stop.wait(0.1)
                continue
            began = time.monotonic()
            self._seed += 1
            shifted = self.shifted
            self.send(draw(self.batch_size, shifted=shifted, seed=self._seed), shifted=shifted)
            pause = 1.0 / self.rounds_per_second - (time.monotonic() - began)
            self._stop.wait(max(0.0, pause))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="demo-traffic", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)
