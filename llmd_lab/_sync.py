"""Run the library's async code from synchronous callers, including inside Jupyter's running loop.

A notebook cell already runs inside an event loop, so ``asyncio.run`` fails there ("cannot be called
from a running event loop"). Like kr8s's blocking portal, we keep one daemon thread with its own loop
and hand coroutines to it: ``run_sync(coro)`` blocks the caller until the result is back, from any
thread, with or without a loop of its own. Async objects (httpx clients) must be created and used on
the portal's loop, so sync facades build them inside the coroutine they submit.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Coroutine, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None


def portal_loop() -> asyncio.AbstractEventLoop:
    """The background loop (started on first use; a daemon thread, so it never blocks interpreter exit)."""
    global _loop, _thread
    with _lock:
        if _loop is None or _loop.is_closed() or _thread is None or not _thread.is_alive():
            loop = asyncio.new_event_loop()
            ready = threading.Event()

            def _run() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(ready.set)
                loop.run_forever()

            thread = threading.Thread(target=_run, name="llmd-lab-portal", daemon=True)
            thread.start()
            ready.wait()
            _loop, _thread = loop, thread
        return _loop


def run_sync(coro: Coroutine[Any, Any, T] | Awaitable[T], timeout: float | None = None) -> T:
    """Run ``coro`` on the portal loop and return its result (exceptions propagate to the caller).

    Calling this *from* the portal thread would deadlock, so it raises instead: async code should
    ``await`` the coroutine directly.
    """
    loop = portal_loop()
    if threading.current_thread() is _thread:
        raise RuntimeError("run_sync() called from the portal's own loop: await the coroutine instead")

    async def _wrap() -> T:
        return await coro

    future = asyncio.run_coroutine_threadsafe(_wrap(), loop)
    try:
        return future.result(timeout)
    except BaseException:
        future.cancel()
        raise


def iterate_sync(agen: AsyncIterator[T]) -> Iterator[T]:
    """Iterate an async generator from sync code, one item per portal round trip."""
    sentinel = object()

    async def _next() -> Any:
        try:
            return await agen.__anext__()
        except StopAsyncIteration:
            return sentinel

    try:
        while True:
            item = run_sync(_next())
            if item is sentinel:
                return
            yield item
    finally:
        aclose = getattr(agen, "aclose", None)
        if aclose is not None:
            run_sync(aclose())
