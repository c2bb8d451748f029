"""The runner: per-object serialised reconciles, coalesced triggers, requeues and backoff."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from kubeloop.runner import DONE, PAUSED_RECHECK_SECONDS, Context, Outcome, Runner
from kubeloop.settings import OperatorSettings


def make_runner() -> Runner:
    settings = OperatorSettings(retry_base_seconds=0.05, retry_max_seconds=0.2)
    return Runner(Context(api=None, settings=settings))  # type: ignore[arg-type]


def test_triggers_during_a_run_coalesce_into_one_more_run() -> None:
    runner = make_runner()
    calls: list[str] = []
    overlapping = threading.Event()
    active = threading.Lock()

    def reconcile(context: Context, namespace: str, name: str) -> Outcome:
        if not active.acquire(blocking=False):
            overlapping.set()
        try:
            calls.append(name)
            time.sleep(0.05)
        finally:
            active.release()
        return DONE

    runner.register("Thing", reconcile)

    async def scenario() -> None:
        await asyncio.gather(*(runner.trigger("Thing", "ns", "a") for _ in range(5)))

    asyncio.run(scenario())
    assert not overlapping.is_set()
    assert calls == ["a", "a"]  # the first run, then one for the four that came meanwhile


def test_requeue_after_runs_again_and_forget_cancels() -> None:
    runner = make_runner()
    calls: list[float] = []

    def reconcile(context: Context, namespace: str, name: str) -> Outcome:
        calls.append(time.monotonic())
        return Outcome(requeue_after=0.05) if len(calls) < 3 else DONE

    runner.register("Thing", reconcile)

    async def scenario() -> None:
        await runner.trigger("Thing", "ns", "a")
        await asyncio.sleep(0.4)
        assert runner.pending("Thing", "ns", "a") is None
        runner.register("Other", lambda c, n, m: Outcome(requeue_after=10))
        await runner.trigger("Other", "ns", "b")
        assert runner.pending("Other", "ns", "b") is not None
        runner.forget("Other", "ns", "b")
        assert runner.pending("Other", "ns", "b") is None

    asyncio.run(scenario())
    assert len(calls) == 3
    assert calls[1] - calls[0] >= 0.04


def test_a_failing_reconcile_is_retried_with_backoff() -> None:
    runner = make_runner()
    calls: list[float] = []

    def reconcile(context: Context, namespace: str, name: str) -> Outcome:
        calls.append(time.monotonic())
        if len(calls) < 3:
            raise RuntimeError("the API is down")
        return DONE

    runner.register("Thing", reconcile)

    async def scenario() -> None:
        await runner.trigger("Thing", "ns", "a")
        await asyncio.sleep(0.6)

    asyncio.run(scenario())
    assert len(calls) == 3
    assert calls[2] - calls[1] > calls[1] - calls[0]  # 0.1 s after 0.05 s
    assert [runner.backoff(n) for n in (1, 2, 3, 10)] == [0.05, 0.1, 0.2, 0.2]


def test_reconciles_of_different_objects_run_at_once_up_to_the_worker_count() -> None:
    runner = Runner(Context(api=None, settings=OperatorSettings(reconcile_workers=3)))  # type: ignore[arg-type]
    lock = threading.Lock()
    running, most = 0, 0
    release = threading.Event()

    def reconcile(context: Context, namespace: str, name: str) -> Outcome:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        release.wait(timeout=5)
        with lock:
            running -= 1
        return DONE

    runner.register("Thing", reconcile)

    async def scenario() -> None:
        runs = [asyncio.ensure_future(runner.trigger("Thing", "ns", str(i))) for i in range(8)]
        await asyncio.sleep(0.3)  # all eight triggered; only three may be running
        with lock:
            assert running == 3
        release.set()
        await asyncio.gather(*runs)

    asyncio.run(scenario())
    assert most == 3


def test_notify_returns_at_once_and_the_reconcile_runs_after() -> None:
    runner = make_runner()
    started = threading.Event()
    release = threading.Event()

    def reconcile(context: Context, namespace: str, name: str) -> Outcome:
        started.set()
        release.wait(timeout=5)
        return DONE

    runner.register("Thing", reconcile)

    async def scenario() -> None:
        runner.notify("Thing", "ns", "a")  # Kopf's handler returns here, the event is done
        runner.on_event("Thing", "MODIFIED", "ns", "a")  # coalesced into one more run
        await asyncio.to_thread(started.wait, 5)
        release.set()
        await settled(runner)

    asyncio.run(scenario())
    assert started.is_set()


async def settled(runner: Runner) -> None:
    """Until every reconcile that `notify` started (and its reruns) has finished."""
    while runner._tasks:
        await asyncio.sleep(0.01)


def test_a_deleted_object_is_not_revived_by_its_childrens_events() -> None:
    runner = make_runner()
    calls: list[str] = []

    def reconcile(context: Context, namespace: str, name: str) -> Outcome:
        calls.append(name)
        # What a deleted namespace answers once its Role is gone: a 403, retried with backoff.
        raise RuntimeError("403 Forbidden")

    runner.register("Thing", reconcile)

    async def scenario() -> None:
        runner.on_event("Thing", "ADDED", "ns", "a")
        await settled(runner)
        runner.on_event("Thing", "DELETED", "ns", "a")
        # A child (a Pod, a Deployment) deleted with the namespace, after its owner.
        runner.notify("Thing", "ns", "a")
        await asyncio.sleep(0.3)
        assert runner.pending("Thing", "ns", "a") is None
        assert calls == ["a"]
        # Created again under the same name: its own event counts, and so do its children's.
        runner.on_event("Thing", "ADDED", "ns", "a")
        await settled(runner)
        await runner.trigger("Thing", "ns", "a")
        assert calls == ["a", "a", "a"]
        runner.forget("Thing", "ns", "a")

    asyncio.run(scenario())


def test_a_closed_gate_holds_reconciles_and_they_run_once_it_opens() -> None:
    open_ = threading.Event()
    runner = Runner(
        Context(api=None, settings=OperatorSettings()),  # type: ignore[arg-type]
        gate=open_.is_set,
    )
    calls: list[str] = []
    runner.register("Thing", lambda context, namespace, name: calls.append(name) or DONE)

    async def scenario() -> None:
        await runner.trigger("Thing", "ns", "a")
        assert calls == []
        # Held, not dropped: it looks again after PAUSED_RECHECK_SECONDS.
        assert runner.pending("Thing", "ns", "a") == pytest.approx(PAUSED_RECHECK_SECONDS, abs=0.1)
        open_.set()
        await asyncio.sleep(PAUSED_RECHECK_SECONDS + 0.3)

    asyncio.run(scenario())
    assert calls == ["a"]
