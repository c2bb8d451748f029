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


def send_round(base_url: str, batch: Batch, timeout: float = 5.0) -> tuple[Answer, bool]:
    """Predict `batch` and feed its labels back on the same connection; (answer, feedback taken)."""
    with httpx.Client(timeout=timeout, headers={"connection": "keep-alive"}) as http:
        answer = predict(http, base_url, batch.records)
        feedback = [{"id": i, "label": y} for i, y in zip(answer.ids, batch.labels, strict=True)]
        taken = http.post(f"{base_url}/feedback", json=feedback).status_code < 300
    return answer, taken


@dataclass
class TrafficStats:
    rounds: int = 0
    rows: int = 0
    failed_rounds: int = 0
    feedback_refused: int = 0
    last_error: str = ""


@dataclass
class TrafficSender:
    """A thread that sends batches at a rate; `shifted` and `rate` can change while it runs."""

    base_url: str
    timeline: Timeline
    clock: Callable[[], float]
    batch_size: int = 10
    rounds_per_second: float = 2.0
    shifted: bool = False
    stats: TrafficStats = field(default_factory=TrafficStats)
    _seed: int = 1000
    _burst_seed: int = 1_000_000
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def send(self, batch: Batch, shifted: bool) -> Answer | None:
        try:
            answer, taken = send_round(self.base_url, batch)
        except (httpx.HTTPError, ValueError) as error:
            self.stats.failed_rounds += 1
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

    def burst(
        self, rows: int, batch_size: int = 100, progress: Callable[[int], None] | None = None
    ) -> None:
        """Send `rows` shifted rows as fast as one connection at a time goes (caller's thread);
        `progress` hears the rows sent every 2000."""
        for start in range(0, rows, batch_size):
            self._burst_seed += 1
            self.send(draw(batch_size, shifted=True, seed=self._burst_seed), shifted=True)
            sent = start + batch_size
            if progress and sent % 2000 == 0 and sent < rows:
                progress(sent)

    def _run(self) -> None:
        while not self._stop.is_set():
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
