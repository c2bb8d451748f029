"""The smoke test of a candidate colour: which requests to send through its preview Service, and
how to judge the answers. Pure; the controller sends the requests.

With `rollout.smokeTest.instances`, each row is one `POST /predict` (records form) and must be
answered 200 with one prediction. Without them, the test asks the readiness endpoint and the v2
model metadata through the preview Service (the Service routes to a loaded model of the right
name), then predicts each row of the ModelVersion's `spec.inputExample` (training rows that
train recorded), so a real prediction is checked by default. Only a version without an example
(registered by hand, or by an older runtime) is checked for readiness and metadata alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from kubeloop.api.inferenceservice import SmokeTest
from kubeloop.builders.rollout import SmokeResult


@dataclass(frozen=True, slots=True)
class SmokeRequest:
    method: Literal["GET", "POST"]
    path: str
    body: dict[str, Any] | None = None

    def accepts(self, status: int, answer: Any) -> bool:
        if status != 200:
            return False
        if self.method == "POST":
            predictions = answer.get("predictions") if isinstance(answer, dict) else None
            return isinstance(predictions, list) and len(predictions) == 1
        return True


@dataclass(frozen=True, slots=True)
class SmokeAnswer:
    request: SmokeRequest
    status: int  # 0: no HTTP answer (connection refused, timeout)
    detail: str  # the error or a short body excerpt
    ok: bool


def smoke_requests(
    test: SmokeTest, model_name: str, input_example: Sequence[Mapping[str, Any]] = ()
) -> list[SmokeRequest]:
    if test.instances:
        return [SmokeRequest("POST", "/predict", {"instances": [row]}) for row in test.instances]
    return [
        SmokeRequest("GET", "/v2/health/ready"),
        SmokeRequest("GET", f"/v2/models/{model_name}"),
        *(SmokeRequest("POST", "/predict", {"instances": [dict(row)]}) for row in input_example),
    ]


def judge(answers: Sequence[SmokeAnswer], test: SmokeTest) -> SmokeResult:
    """Passed when the share of good answers reaches minSuccessRatio (and there is at least one)."""
    good = sum(1 for answer in answers if answer.ok)
    total = len(answers)
    summary = f"{good}/{total} requests answered as expected"
    if total and good / total >= test.min_success_ratio and good > 0:
        return SmokeResult(True, summary)
    first_bad = next((answer for answer in answers if not answer.ok), None)
    if first_bad is not None:
        code = f"HTTP {first_bad.status}" if first_bad.status else "no answer"
        summary += (
            f"; {first_bad.request.method} {first_bad.request.path}: {code}: "
            f"{first_bad.detail[:300]}"
        )
    return SmokeResult(False, summary)
