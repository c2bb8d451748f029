"""Level-based reconciling: one reconcile at a time per object, coalesced triggers, timed requeues.

Kopf calls `Runner.trigger` from `@kopf.on.event` handlers (an event of the object or of one of its
children). A reconcile is a plain synchronous function `(context, namespace, name) -> Outcome`: it
reads the object (from Kopf's watch-fed indexes, kept consistent with its own writes by
kube/views.py, else from the API), decides, applies, writes status. It runs in a worker thread so
the sync kubernetes client never blocks Kopf's event loop. Triggers that arrive while the object's
reconcile runs are coalesced into one more run. Up to `settings.reconcile_workers` reconciles of
different objects run at once (the interpreter's default pool, 4 + CPUs threads, left the API
server idle while a burst of objects waited). `Outcome.requeue_after` asks for a run later (a
refresh interval, a backoff); a failing reconcile is retried with exponential backoff.

Why not Kopf timers or TemporaryError retries: timers add a finalizer to every object, and
retries keep Kopf's progress in annotations. Here the timers are only in memory, and every due
time is derived from status (e.g. `lastCheckedAt + refreshInterval`), so a restarted operator,
which re-lists everything, recomputes them from the API.

With peering, Kopf pauses its watches in an outranked replica but not these timers: a `gate`
(peering.PeeringGate) closed by a live higher-priority peer holds every reconcile, which then
looks again every PAUSED_RECHECK_SECONDS, so a replica that takes over misses none.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client as k8s

from kubeloop import metrics
from kubeloop.settings import OperatorSettings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Context:
    """What every reconcile gets: the API client, the settings, and Kopf's in-memory indexes
    (live views, filled by the controllers' startup handlers) by name."""

    api: k8s.ApiClient
    settings: OperatorSettings
    indexes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    """What a reconcile asks for next: nothing, or another run after `requeue_after` seconds."""

    requeue_after: float | None = None


DONE = Outcome()
# How often a reconcile held by a closed gate looks again (the gate reads its peers this often).
PAUSED_RECHECK_SECONDS = 2.0
# How many deleted objects the runner remembers (to ignore their children's late events).
GONE_LIMIT = 10_000
Reconcile = Callable[[Context, str, str], Outcome]
Key = tuple[str, str, str]  # kind, namespace, name


@dataclass
class _State:
    running: bool = False
    dirty: bool = False
    failures: int = 0
    timer: asyncio.TimerHandle | None = None
    due: float = field(default=0.0)


class Runner:
    """Runs the registered reconcile of a kind for one object, serialised per object."""

    def __init__(self, context: Context, gate: Callable[[], bool] | None = None) -> None:
        self.context = context
        self._gate = gate
        self._reconcilers: dict[str, Reconcile] = {}
        self._states: dict[Key, _State] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._pool = ThreadPoolExecutor(
            max_workers=context.settings.reconcile_workers, thread_name_prefix="reconcile"
        )
        # Objects whose own DELETED event was seen, oldest first: a child's event (a Pod, a
        # Deployment going away with its namespace) must not bring them back as a reconcile that
        # fails and retries forever (once the namespace's Role is gone, a 403, not a 404).
        self._gone: OrderedDict[Key, None] = OrderedDict()

    def register(self, kind: str, reconcile: Reconcile) -> None:
        self._reconcilers[kind] = reconcile

    def handles(self, kind: str) -> bool:
        return kind in self._reconcilers

    def backoff(self, failures: int) -> float:
        """Exponential backoff after `failures` consecutive failures, capped."""
        settings = self.context.settings
        return float(
            min(settings.retry_max_seconds, settings.retry_base_seconds * 2 ** max(failures - 1, 0))
        )

    async def trigger(self, kind: str, namespace: str, name: str) -> None:
        """Reconcile the object now, or once more after the run in progress."""
        key = (kind, namespace, name)
        if key in self._gone:
            return
        state = self._states.setdefault(key, _State())
        if state.running:
            state.dirty = True
            return
        state.running = True
        outcome = DONE
        try:
            while True:
                state.dirty = False
                outcome = await self._run_once(key, state)
                if not state.dirty:
                    break
        finally:
            state.running = False
        self._schedule(key, state, outcome.requeue_after)

    def notify(self, kind: str, namespace: str, name: str) -> None:
        """`trigger` without waiting for the reconcile: what Kopf's handlers call. Kopf hands
        one object's events to its handlers one at a time, so a handler that waited for a
        reconcile (seconds, on a busy API server) would hold that object's later events, and
        their bodies, in Kopf's queue; the reconcile reads the object's latest state itself."""
        self._spawn(self.trigger(kind, namespace, name))

    def on_event(self, kind: str, event_type: str | None, namespace: str | None, name: str) -> None:
        """A watch event of the object itself: reconcile it, or forget it once deleted."""
        if namespace is None:
            return
        if event_type == "DELETED":
            self.forget(kind, namespace, name)
            return
        self._gone.pop((kind, namespace, name), None)  # (re)created: its triggers count again
        self.notify(kind, namespace, name)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)  # a reference, or the loop may drop the task half-way
        task.add_done_callback(self._tasks.discard)

    def forget(self, kind: str, namespace: str, name: str) -> None:
        """The object is gone: drop its timer and state, and ignore triggers for it until its
        own event says it exists again (`on_event`)."""
        key = (kind, namespace, name)
        state = self._states.pop(key, None)
        if state is not None and state.timer is not None:
            state.timer.cancel()
        self._gone[key] = None
        self._gone.move_to_end(key)
        while len(self._gone) > GONE_LIMIT:
            self._gone.popitem(last=False)

    def pending(self, kind: str, namespace: str, name: str) -> float | None:
        """Seconds until the object's next timed run, if one is scheduled (for tests and logs)."""
        state = self._states.get((kind, namespace, name))
        if state is None or state.timer is None:
            return None
        return max(state.due - time.monotonic(), 0.0)

    async def _run_once(self, key: Key, state: _State) -> Outcome:
        kind, namespace, name = key
        reconcile = self._reconcilers[kind]

        def timed() -> Outcome:
            if self._gate is not None and not self._gate():
                return Outcome(requeue_after=PAUSED_RECHECK_SECONDS)  # a peer outranks us
            metrics.RECONCILES.labels(kind).inc()
            # Timed in the worker: the wait for a free worker is not the reconcile's.
            started = time.perf_counter()
            try:
                return reconcile(self.context, namespace, name)
            finally:
                metrics.RECONCILE_DURATION.labels(kind).observe(time.perf_counter() - started)

        try:
            outcome = await asyncio.get_running_loop().run_in_executor(self._pool, timed)
        except Exception:
            state.failures += 1
            delay = self.backoff(state.failures)
            metrics.RECONCILE_ERRORS.labels(kind).inc()
            logger.exception(
                "reconcile of %s %s/%s failed; retrying in %.0fs",
                kind,
                namespace,
                name,
                delay,
                extra={"k8s_ref": {"kind": kind, "namespace": namespace, "name": name}},
            )
            return Outcome(requeue_after=delay)
        state.failures = 0
        return outcome

    def _schedule(self, key: Key, state: _State, delay: float | None) -> None:
        if state.timer is not None:
            state.timer.cancel()
            state.timer = None
        if delay is None or key not in self._states:
            return
        loop = asyncio.get_running_loop()
        state.due = time.monotonic() + delay

        def fire() -> None:
            state.timer = None
            self._spawn(self.trigger(*key))

        state.timer = loop.call_later(max(delay, 0.0), fire)
