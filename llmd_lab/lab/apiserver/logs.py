"""``pods/{name}/log``: container logs streamed from the kubelet through ``ApiHooks.read_logs``."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from starlette.responses import Response, StreamingResponse

from llmd_lab.lab.apiserver import errors
from llmd_lab.lab.apiserver.hooks import ApiHooks
from llmd_lab.lab.apiserver.request import flag, int_param
from llmd_lab.lab.apiserver.streams import StreamCloser

FIRST_CHUNK_WAIT_S = 0.5  # wait this long for an early error (e.g. "waiting to start") before streaming


def pick_container(pod: dict, requested: str | None) -> str:
    """The container to read, with kube-apiserver's messages when the choice is ambiguous or wrong."""
    spec = pod.get("spec") or {}
    name = pod["metadata"]["name"]
    main = [c.get("name") for c in spec.get("containers") or []]
    every = main + [c.get("name") for c in (spec.get("initContainers") or []) + (spec.get("ephemeralContainers") or [])]
    if not requested:
        if len(main) == 1:
            return main[0]
        raise errors.bad_request(
            f"a container name must be specified for pod {name}, choose one of: [{' '.join(main)}]"
        )
    if requested not in every:
        raise errors.bad_request(
            f"container {requested} is not valid for pod {name} (its containers: {', '.join(every)})"
        )
    return requested


def _stamp(text: str) -> str:
    """``?timestamps=true``: each line prefixed with an RFC 3339 time in nanoseconds, as the kubelet writes."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f000Z")
    return "".join(f"{now} {line}" for line in text.splitlines(keepends=True))


async def logs_response(pod: dict, hooks: ApiHooks | None, query: Any,
                        streams: StreamCloser | None = None) -> Response:
    """The container's log as text; with ``follow`` a stream that ends with the container or the server."""
    namespace, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
    container = pick_container(pod, query.get("container"))
    if hooks is None or hooks.read_logs is None:
        raise errors.ApiError(
            404, "NotFound",
            f'logs for pod "{name}" container "{container}" are not available: no kubelet is attached to '
            "this API server (start the whole lab with `llmd-lab up`)",
        )
    tail = int_param(query, "tailLines")
    follow, previous, timestamps = flag(query.get("follow")), flag(query.get("previous")), flag(query.get("timestamps"))
    chunks = hooks.read_logs(namespace, name, container, tail, follow, previous)
    first = asyncio.ensure_future(anext(chunks))
    done, _ = await asyncio.wait({first}, timeout=FIRST_CHUNK_WAIT_S)
    if done:
        try:
            first.result()
        except StopAsyncIteration:
            return Response(b"", media_type="text/plain")
        # an ApiError from the kubelet propagates here, before any byte of the 200 was sent

    async def source() -> AsyncIterator[str]:
        try:
            chunk = await first
        except StopAsyncIteration:
            return
        yield chunk
        async for chunk in chunks:
            yield chunk

    closer = streams if streams is not None else StreamCloser()

    async def body() -> AsyncIterator[bytes]:
        try:
            async with contextlib.aclosing(source()) as src, contextlib.aclosing(closer.iterate(src)) as text:
                async for chunk in text:
                    yield (_stamp(chunk) if timestamps else chunk).encode()
        finally:
            if not first.done():
                first.cancel()
            close_chunks = getattr(chunks, "aclose", None)
            if close_chunks is not None:
                await close_chunks()

    return StreamingResponse(body(), media_type="text/plain")
