"""A tiny controller-runtime: watches feed a de-duplicating work queue, a worker reconciles one key at a time.

Reconcilers are level-triggered and idempotent: they read the world from the store and make it right, so a
missed or repeated event costs nothing. Every watch is an :class:`~llmd_lab.lab.informer.Informer` (list,
watch, re-list on 410, back-off), and every key is re-queued periodically (resync) so time-driven state
(back-off, availability) converges too. A key whose reconcile keeps failing is logged once per distinct
error, not on every pass, so one bad object neither floods ``lab.log`` nor holds up the other keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from llmd_lab._tasks import cancel_and_wait
from llmd_lab.lab.apiserver.errors import ApiError
from llmd_lab.lab.apiserver.store import Store
from llmd_lab.lab.context import LabContext
from llmd_lab.lab.informer import Informer

log = logging.getLogger("llmd_lab.lab.controller")

# client-go workqueue.DefaultControllerRateLimiter: ItemExponentialFailureRateLimiter(5*time.Millisecond,
# 1000*time.Second) — a key that fails waits 5 ms, 10 ms, 20 ms … up to 1000 s before it is retried
BACKOFF_BASE_S = 0.005
BACKOFF_MAX_S = 1000.0

Key = tuple[str, str]  # (namespace, name)


@dataclass(frozen=True)
class Watch:
    """Watch ``kind`` and map each changed object to the keys to reconcile."""

    api_version: str
    kind: str
    keys: Callable[[dict], Iterable[Key]]


def self_key(obj: dict) -> list[Key]:
    meta = obj["metadata"]
    return [(meta.get("namespace", ""), meta["name"])]


def owner_keys(kind: str) -> Callable[[dict], list[Key]]:
    """Map a child to its controller owner of ``kind`` (same namespace)."""

    def keys(obj: dict) -> list[Key]:
        meta = obj["metadata"]
        return [
            (meta.get("namespace", ""), ref["name"])
            for ref in meta.get("ownerReferences") or []
            if ref.get("kind") == kind and ref.get("controller")
        ]

    return keys


class Reconciler:
    """Subclass: set ``name`` and ``watches``; implement ``reconcile(namespace, name)``."""

    name = "controller"
    watches: tuple[Watch, ...] = ()
    resync_seconds = 2.0  # real seconds between full re-queues
    ctx: LabContext
    store: Store

    def __init__(self) -> None:
        self._failing: dict[Key, str] = {}  # key -> the error last logged for it
        self._failures: dict[Key, int] = {}  # key -> consecutive failures (the back-off exponent)
        self._not_before: dict[Key, float] = {}  # key -> loop time before which resync leaves it alone
        self._queue: asyncio.Queue[Key] = asyncio.Queue()
        self._pending: set[Key] = set()
        self._tasks: list[asyncio.Task] = []
        self._known: set[Key] = set()

    # ---- lifecycle (LabComponent)
    async def start(self, ctx: LabContext) -> None:
        self.ctx = ctx
        self.store = ctx.store
        for watch in self.watches:
            self._tasks.append(asyncio.create_task(self._watch(watch), name=f"{self.name}-watch-{watch.kind}"))
        self._tasks.append(asyncio.create_task(self._work(), name=f"{self.name}-worker"))
        self._tasks.append(asyncio.create_task(self._resync(), name=f"{self.name}-resync"))

    async def stop(self) -> None:
        await cancel_and_wait(self._tasks, swallow_errors=True)
        self._tasks.clear()

    def enqueue(self, key: Key) -> None:
        self._known.add(key)
        if key not in self._pending:
            self._pending.add(key)
            self._queue.put_nowait(key)

    async def _watch(self, watch: Watch) -> None:
        async def handle(_type: str, obj: dict) -> None:
            for key in watch.keys(obj):
                self.enqueue(key)

        await Informer(self.store, watch.api_version, watch.kind, handle, owner=self.name).run()

    async def _resync(self) -> None:
        while True:
            await asyncio.sleep(self.resync_seconds)
            now = asyncio.get_running_loop().time()
            for key in list(self._known):
                if self._not_before.get(key, 0.0) <= now:
                    self.enqueue(key)

    def back_off(self, key: Key) -> float:
        """Retry ``key`` after the work queue's per-item exponential back-off (rate-limited re-queue)."""
        failures = self._failures.get(key, 0)
        self._failures[key] = failures + 1
        delay = min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2**failures)
        loop = asyncio.get_running_loop()
        self._not_before[key] = loop.time() + delay
        loop.call_later(delay, self.enqueue, key)
        return delay

    def failures(self, key: Key) -> int:
        """How many times in a row ``key`` has failed (0 once it reconciles cleanly)."""
        return self._failures.get(key, 0)

    def forget(self, key: Key) -> None:
        """``key`` reconciled cleanly: its back-off starts over (workqueue ``Forget``)."""
        self._failing.pop(key, None)
        self._failures.pop(key, None)
        self._not_before.pop(key, None)

    async def _work(self) -> None:
        while True:
            key = await self._queue.get()
            self._pending.discard(key)
            try:
                keep = await self.reconcile(*key)
            except asyncio.CancelledError:
                raise
            except ApiError as exc:
                if exc.code == 404:
                    self._known.discard(key)
                elif exc.code != 409:  # conflicts resolve on the next pass
                    self._log_failure(key, exc.message)
                continue
            except Exception as exc:
                self._log_failure(key, f"{type(exc).__name__}: {exc}", traceback=True)
                continue
            if key not in self._not_before or self._not_before[key] <= asyncio.get_running_loop().time():
                self.forget(key)
            if keep is False:
                self._known.discard(key)

    def _log_failure(self, key: Key, message: str, *, traceback: bool = False) -> None:
        """Log a reconcile failure once per key and message (the resync retries it every few seconds)."""
        delay = self.back_off(key)
        if self._failing.get(key) == message:
            return
        self._failing[key] = message
        log.warning("%s: reconcile %s/%s failed (retrying with back-off, now %.2fs): %s", self.name, key[0], key[1],
                    delay, message, exc_info=traceback)

    async def reconcile(self, namespace: str, name: str) -> bool | None:
        """Make the world match ``namespace/name``; return False when the object is gone."""
        raise NotImplementedError

    # ---- helpers
    async def get_or_none(self, api_version: str, kind: str, name: str, namespace: str | None) -> dict | None:
        try:
            return await self.store.get(api_version, kind, name, namespace)
        except ApiError as exc:
            if exc.code == 404:
                return None
            raise

    async def event(self, obj: dict, type_: str, reason: str, message: str) -> None:
        with contextlib.suppress(ApiError):
            await self.ctx.events.record(obj, type_, reason, message, self.name)

    def now(self) -> str:
        return self.ctx.clock.stamp()
