"""Helpers for tests and benchmarks: lab components over an in-memory Store, polling with a deadline."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from llmd_lab.lab.apiserver.store import Store
from llmd_lab.lab.context import LabContext, make_context
from llmd_lab.lab.controller.base import Reconciler
from llmd_lab.lab.profiles import Profile

T = TypeVar("T")


def make_ctx(tmp_path: Path, profile: Profile | None = None, time_scale: float = 50.0,
             store: Store | None = None) -> LabContext:
    return make_context(store or Store(":memory:"), tmp_path, profile, time_scale)


@contextlib.asynccontextmanager
async def running(ctx: LabContext, *controllers: Reconciler, resync_s: float = 0.2) -> AsyncIterator[None]:
    """Run ``controllers`` on ``ctx`` for the block, re-queueing every key each ``resync_s`` real seconds so a
    test sees time-driven state converge quickly; stop them on the way out, also when the block fails."""
    for c in controllers:
        c.resync_seconds = resync_s
        await c.start(ctx)
    try:
        yield
    finally:
        for c in controllers:
            await c.stop()


async def eventually(check: Callable[[], Awaitable[T]], timeout: float = 60.0, what: str = "condition") -> T:
    """Poll ``check`` until it returns something truthy; fail with ``what`` after ``timeout`` seconds.

    The timeout is a failure deadline, not a budget: a passing check returns as soon as it holds, so the
    default is generous enough for a machine whose cores are busy with other work.
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value: {last!r}")


async def events_for(store: Store, name: str, namespace: str) -> list[dict]:
    events, _ = await store.list("v1", "Event", namespace)
    return [e for e in events if e["involvedObject"]["name"] == name]
