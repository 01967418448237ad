"""An open watch as the REST layer hands it out: replayed events first, then live ones from the bus (and
BOOKMARKs when asked), each presented in the watched version, until ``aclose()``."""

from __future__ import annotations

import asyncio
import weakref

from llmd_lab.lab.apiserver.bus import Subscriber, WatchEvent, clone
from llmd_lab.lab.apiserver.registry import ResourceType
from llmd_lab.lab.apiserver.storage import Storage

__all__ = ["WatchStream", "present"]


def present(obj: dict, rt: ResourceType) -> dict:
    """The stored object as seen through one served version (CRD conversion strategy None)."""
    if obj.get("apiVersion") == rt.api_version:
        return obj
    return {**obj, "apiVersion": rt.api_version}


class WatchStream:
    """See the module docstring."""

    def __init__(self, storage: Storage, rt: ResourceType, initial: list[WatchEvent], sub: Subscriber,
                 bookmarks: bool, interval: float, copy: bool) -> None:
        self._storage, self._rt, self._sub = storage, rt, sub
        self._pending = list(reversed(initial))
        self._bookmarks, self._interval, self._copy = bookmarks, interval, copy
        self._closed = False
        # a watch its caller abandons (``async for`` cancelled, never closed) stops receiving when collected
        self._release = weakref.finalize(self, storage.bus.unsubscribe, sub)

    def __aiter__(self) -> WatchStream:
        return self

    async def __anext__(self) -> WatchEvent:
        if self._closed:
            raise StopAsyncIteration
        if self._pending:
            return self._out(self._pending.pop())
        if not self._bookmarks:
            return self._out(await self._sub.queue.get())
        # asyncio.wait, not wait_for: on Python 3.11 wait_for can swallow the cancellation of a closing watch
        get = asyncio.ensure_future(self._sub.queue.get())
        try:
            done, _ = await asyncio.wait({get}, timeout=self._interval)
        except BaseException:
            get.cancel()
            raise
        if done:
            return self._out(get.result())
        get.cancel()  # an event arriving just now stays queued (Queue.get takes it only when it resumes)
        return WatchEvent("BOOKMARK", {
            "kind": self._rt.kind, "apiVersion": self._rt.api_version,
            "metadata": {"resourceVersion": str(self._storage.rv)},
        })

    def _out(self, event: WatchEvent) -> WatchEvent:
        obj = present(event.object, self._rt)
        return WatchEvent(event.type, clone(obj) if self._copy else obj)

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            self._release()
