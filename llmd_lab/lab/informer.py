"""One informer for every part of the lab that follows a kind: list, watch from the list's resourceVersion,
re-list on 410 Gone, back off on errors, and keep one bad object from stopping the rest.

This is client-go's reflector + shared informer reduced to what the lab needs (kubernetes
``staging/src/k8s.io/client-go/tools/cache/reflector.go``: ``ListAndWatch`` lists, then watches from the
list's resourceVersion, re-lists when the watch answers 410 "too old resource version", and waits with an
exponential back-off of 800 ms up to 30 s between failed attempts). A re-list reports the objects that
vanished meanwhile as DELETED, as the DeltaFIFO's ``Replace`` does, so a consumer's view never keeps a
ghost. A handler that raises for one object is logged once for that object (not once per event) and the
informer carries on with the next event: one typo in one object must not blind a controller for everyone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from llmd_lab.lab.apiserver.errors import ApiError
from llmd_lab.lab.apiserver.store import Store

log = logging.getLogger("llmd_lab.lab.informer")

Handler = Callable[[str, dict], Awaitable[None]]
"""``handler(event_type, obj)`` with ``event_type`` ADDED, MODIFIED or DELETED."""
ErrorHandler = Callable[[dict, Exception], Awaitable[None]]
"""Called once when the handler first fails for an object (e.g. to record a Warning event on it)."""

BACKOFF_INITIAL_S = 0.8  # client-go reflector: NewExponentialBackoffManager(800*time.Millisecond, 30*time.Second…)
BACKOFF_MAX_S = 30.0
NOT_SERVED_RETRY_S = 1.0  # a kind not served yet (its CRD comes later): look again soon, not after 30 s


@dataclass
class Backoff:
    """Exponential back-off between failed list/watch attempts, reset by a successful list."""

    initial: float = BACKOFF_INITIAL_S
    maximum: float = BACKOFF_MAX_S
    current: float = 0.0

    def next(self) -> float:
        self.current = self.initial if self.current == 0 else min(self.maximum, self.current * 2)
        return self.current

    def reset(self) -> None:
        self.current = 0.0


def _key(obj: dict) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return meta.get("namespace") or "", meta.get("name") or ""


def _replace(known: dict[tuple[str, str], dict], items: list[dict]) -> list[tuple[str, dict]]:
    """The events a fresh list means against what was known: vanished objects DELETED, the rest ADDED or
    MODIFIED (DeltaFIFO ``Replace``); ``known`` becomes the list."""
    listed = {_key(o): o for o in items}
    events = [("DELETED", known[k]) for k in known if k not in listed]
    events += [("MODIFIED" if k in known else "ADDED", o) for k, o in listed.items()]
    known.clear()
    known.update(listed)
    return events


async def _watch_from(store: Store, api_version: str, kind: str, namespace: str | None, rv: str,
                      known: dict[tuple[str, str], dict]) -> AsyncIterator[tuple[str, dict]]:
    """Watch from ``rv`` until the stream ends, keeping ``known`` current; ApiError (410…) propagates."""
    stream = store.watch(api_version, kind, namespace, resource_version=rv)
    try:
        async for event in stream:
            if event.type not in ("ADDED", "MODIFIED", "DELETED"):
                continue
            if event.type == "DELETED":
                known.pop(_key(event.object), None)
            else:
                known[_key(event.object)] = event.object
            yield event.type, event.object
    finally:
        await stream.aclose()


async def list_and_watch(store: Store, api_version: str, kind: str, namespace: str | None = None, *,
                         backoff: Backoff | None = None) -> AsyncIterator[tuple[str, dict]]:
    """Yield ``(type, object)`` for every object now (ADDED), then every change, forever.

    Survives a watch that ends or fails: it watches again from the last resourceVersion it saw, re-lists
    on 410 (reporting objects that vanished meanwhile as DELETED), and backs off on other errors.
    """
    backoff = backoff or Backoff()
    known: dict[tuple[str, str], dict] = {}
    while True:
        try:
            items, list_meta = await store.list(api_version, kind, namespace)
            rv = list_meta["resourceVersion"]
        except ApiError as exc:
            delay = NOT_SERVED_RETRY_S if exc.code == 404 else backoff.next()
            log.debug("list %s %s: %s; retrying in %.1fs", api_version, kind, exc.message, delay)
            await asyncio.sleep(delay)
            continue
        backoff.reset()
        for event in _replace(known, items):
            yield event
        try:
            while True:  # a watch that ends cleanly is re-opened from the last resourceVersion seen
                async for type_, obj in _watch_from(store, api_version, kind, namespace, rv, known):
                    rv = obj["metadata"].get("resourceVersion") or rv
                    yield type_, obj
        except ApiError as exc:
            if exc.code != 410:  # 410 Gone: re-list at once; anything else after a back-off
                await asyncio.sleep(NOT_SERVED_RETRY_S if exc.code == 404 else backoff.next())
            log.debug("watch %s %s: %s; re-listing", api_version, kind, exc.message)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("watch %s %s failed; re-listing after back-off", api_version, kind)
            await asyncio.sleep(backoff.next())


class Informer:
    """Runs :func:`list_and_watch` for one kind and hands each event to ``handler``, isolating failures.

    A handler failure is logged with its traceback the first time for an object (keyed by namespace/name
    and resourceVersion, so an edited object gets a fresh chance and a fresh log line) and reported to
    ``on_error``; the informer goes on with the next event.
    """

    def __init__(self, store: Store, api_version: str, kind: str, handler: Handler, *, owner: str,
                 namespace: str | None = None, on_error: ErrorHandler | None = None) -> None:
        self.store = store
        self.api_version = api_version
        self.kind = kind
        self.handler = handler
        self.owner = owner
        self.namespace = namespace
        self.on_error = on_error
        self._failed: set[tuple[str, str, str]] = set()

    async def run(self) -> None:
        async for type_, obj in list_and_watch(self.store, self.api_version, self.kind, self.namespace):
            await self._dispatch(type_, obj)

    async def _dispatch(self, type_: str, obj: dict) -> None:
        ns, name = _key(obj)
        marker = (ns, name, str((obj.get("metadata") or {}).get("resourceVersion", "")))
        try:
            await self.handler(type_, obj)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if marker in self._failed:
                return
            self._failed.add(marker)
            log.warning("%s: cannot handle %s %s/%s (skipping it, carrying on with the rest): %s",
                        self.owner, self.kind, ns, name, exc, exc_info=not isinstance(exc, ApiError | ValueError))
            if self.on_error is not None:
                try:
                    await self.on_error(obj, exc)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.debug("%s: reporting the failure on %s/%s failed", self.owner, ns, name, exc_info=True)
        else:
            if self._failed:
                self._failed = {m for m in self._failed if m[:2] != (ns, name)}
