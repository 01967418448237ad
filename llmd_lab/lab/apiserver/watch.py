"""``?watch=1`` over HTTP: one JSON ``WatchEvent`` per line, streamed until ``timeoutSeconds`` or until the
server shuts down (see streams.py).

A resume from a resourceVersion older than the history window is answered the way kube-apiserver answers
it: HTTP 200 and a single ``ERROR`` event carrying a 410 ``Expired`` Status, which is what clients
(client-go reflectors, ``kubernetes.watch.Watch``) react to by re-listing.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.responses import StreamingResponse

from llmd_lab.lab.apiserver import errors
from llmd_lab.lab.apiserver.registry import ResourceType
from llmd_lab.lab.apiserver.responses import dumps
from llmd_lab.lab.apiserver.store import Store
from llmd_lab.lab.apiserver.streams import StreamCloser

DEFAULT_TIMEOUT_S = 1800.0


def _line(event_type: str, obj: Any) -> bytes:
    return dumps({"type": event_type, "object": obj}) + b"\n"


def watch_response(
    store: Store,
    rt: ResourceType,
    namespace: str | None,
    query: Any,
    *,
    timeout_s: float | None,
    bookmark_interval: float,
    transform: Callable[[dict], Any] | None = None,
    streams: StreamCloser | None = None,
) -> StreamingResponse:
    bookmarks = (query.get("allowWatchBookmarks") or "").lower() in ("1", "true")
    try:
        stream = store.watch(
            rt.api_version, rt.kind, namespace, query.get("resourceVersion"), query.get("labelSelector"),
            query.get("fieldSelector"), allow_bookmarks=bookmarks, bookmark_interval=bookmark_interval, copy=False,
        )
    except errors.ApiError as exc:
        if exc.code != 410:
            raise
        status = exc.to_status()

        async def expired() -> AsyncIterator[bytes]:
            yield _line("ERROR", status)

        return StreamingResponse(expired(), media_type="application/json")

    limit = timeout_s if timeout_s is not None else DEFAULT_TIMEOUT_S
    closer = streams if streams is not None else StreamCloser()

    async def events() -> AsyncIterator[bytes]:
        try:
            async with contextlib.aclosing(closer.iterate(stream, limit)) as events_:
                async for event in events_:
                    obj = event.object
                    if transform is not None and event.type != "BOOKMARK":
                        obj = transform(obj)
                    yield _line(event.type, obj)
        finally:
            await stream.aclose()

    return StreamingResponse(events(), media_type="application/json")
