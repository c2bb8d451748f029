"""Two replicas of the real operator meeting in Kopf peering (the chart's `peering.enabled`), on
a real API server: only the replica with the highest priority reconciles, and a standby takes over
once the active one's record expires after a SIGKILL.

Kopf pauses its watches in an outranked replica, but the operator's own timed requeues (a
backoff, a refresh interval, a rollout's wait) run outside Kopf: the Dataset here is between two
attempts on such a timer when the higher-priority replica arrives.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from helpers_kubelet import JobRunner
from helpers_operator import OperatorProcess
from helpers_resources import profile_job, status_of, unreachable_dataset
from prometheus_client.parser import text_string_to_metric_families

from kubeloop.kube import apply as kube
from support import eventually

# Their Jobs' Pods run on the real node when there is one (else the test plays the kubelet).
pytestmark = [pytest.mark.cluster, pytest.mark.node]

# Attempt 1 fails, attempt 2 is due RETRY s later: time enough for the second replica to start
# and for Kopf to pause the first. The record of a killed replica expires after LIFETIME s.
RETRY = 12
LIFETIME = 5
PEERING = {
    "KUBELOOP_STANDALONE": "false",
    "KUBELOOP_PEERING_LIFETIME_SECONDS": str(LIFETIME),
    "KUBELOOP_RETRY_BASE_SECONDS": str(RETRY),
    "KUBELOOP_RETRY_MAX_SECONDS": str(RETRY),
    "KUBELOOP_UNREACHABLE_TIMEOUT_SECONDS": "600",
}


def dataset_reconciles(operator: OperatorProcess) -> float:
    """The operator's kubeloop_reconciles_total for Datasets (0 before its first)."""
    for family in text_string_to_metric_families(operator.metrics()):
        for sample in family.samples:
            if sample.name == "kubeloop_reconciles_total" and sample.labels == {"kind": "Dataset"}:
                return float(sample.value)
    return 0.0


def test_only_the_highest_priority_replica_reconciles_and_a_standby_takes_over(
    operator: OperatorProcess,
    jobs: JobRunner,
    api: Any,
    namespace: str,
    kubeconfig: str,
    tmp_path: Path,
) -> None:
    low = operator.start(**PEERING, KUBELOOP_PEERING_PRIORITY="5")
    kube.create(api, unreachable_dataset(namespace))
    first = profile_job(api, namespace, "remote")
    assert jobs.run(first) == 4
    eventually(
        lambda: (
            (status_of(api, "Dataset", namespace, "remote").get("check") or {}).get("result")
            == "Retrying"
        ),
        what="attempt 1 to be Retrying",
    )

    high_logs = tmp_path / "high"
    high_logs.mkdir()
    high = OperatorProcess(kubeconfig=kubeconfig, namespace=namespace, log_dir=high_logs)
    try:
        high.start(**PEERING, KUBELOOP_PEERING_PRIORITY="10")
        eventually(
            lambda: "Pausing operations" in low.log(),
            timeout=RETRY / 2,
            what="the priority-5 replica to pause for the priority-10 one",
        )
        paused_at = dataset_reconciles(low)
        # Attempt 2 falls due while `low` is paused: `high` alone starts it.
        second = profile_job(api, namespace, "remote", after=first)
        time.sleep(2)  # a timer of `low` due at the same moment would have fired by now
        assert dataset_reconciles(low) == paused_at, "a paused replica reconciled"
        assert dataset_reconciles(high) > 0

        high.kill()
        eventually(
            lambda: "Resuming operations" in low.log(),
            timeout=LIFETIME + 30,
            what="the priority-5 replica to resume once the killed one's record expired",
        )
    finally:
        high.stop()
    # `low` works again: it sees attempt 2 fail and starts attempt 3 on its own timer.
    assert jobs.run(second) == 4
    third = profile_job(api, namespace, "remote", after=second)
    assert third.endswith("-a3"), third
    assert dataset_reconciles(low) > paused_at
    log = low.log()
    assert "reconciles paused: outranked by" in log
    assert "reconciles resumed" in log
