"""Long-lived responses (watches, ``logs -f``) that end when the API server shuts down.

uvicorn's graceful shutdown waits for every in-flight response, and a watch or a followed log never
finishes by itself: without this, stopping the lab waited out ``timeout_graceful_shutdown`` and then
cancelled the streams mid-body (clients saw a broken chunked response, ``lab.log`` a traceback).
kube-apiserver ends its watches when it shuts down as well; a client then re-lists or simply exits.

Each stream waits on its next item *and* the closing signal with ``asyncio.wait`` — not ``wait_for``,
which on Python 3.11 can swallow the cancellation of a stopping server.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TypeVar

T = TypeVar("T")


class StreamCloser:
    """Ends every stream iterated through :meth:`iterate` once :meth:`close` is called (in the server's loop)."""

    def __init__(self) -> None:
        self._closing = asyncio.Event()  # binds to the loop that first waits on it (the server's)
        self.open_streams = 0

    @property
    def closed(self) -> bool:
        return self._closing.is_set()

    def close(self) -> None:
        """End the open streams at their next wait and every stream opened from now on. Idempotent."""
        self._closing.set()

    async def iterate(self, source: AsyncIterator[T], timeout: float | None = None) -> AsyncIterator[T]:
        """The items of ``source`` until it ends, ``timeout`` seconds pass, or the server closes streams."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        closing = asyncio.ensure_future(self._closing.wait())
        pending: asyncio.Future | None = None
        self.open_streams += 1
        try:
            while not self._closing.is_set():
                remaining = None if deadline is None else deadline - loop.time()
                if remaining is not None and remaining <= 0:
                    return
                pending = asyncio.ensure_future(anext(source))
                await asyncio.wait({pending, closing}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
                if not pending.done():
                    return  # closing, or the deadline passed
                item_future, pending = pending, None
                try:
                    item = item_future.result()
                except StopAsyncIteration:
                    return
                yield item
        finally:
            self.open_streams -= 1
            closing.cancel()
            if pending is not None and not pending.done():
                pending.cancel()
                # let the source unwind before its owner closes it ("generator is already running" otherwise)
                await asyncio.wait({pending})
