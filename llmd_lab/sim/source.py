"""Where the simulated EPP and gateway read Kubernetes objects from.

On a cluster the EPP and the gateway watch the API server. In the lab they get a ``ResourceSource``
that the lab implements over its store; tests and benchmarks use :class:`StaticSource`. Keeping this a
protocol is what lets the simulators stay independent of the lab.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class SourceEvent:
    """One watch event: ``type`` is ADDED, MODIFIED or DELETED; ``object`` the object after the change."""

    type: str
    object: dict


class ResourceSource(Protocol):
    """Read-only view of cluster objects: list now, then watch for changes."""

    async def list(
        self, api_version: str, kind: str, namespace: str | None = None, label_selector: str | None = None
    ) -> list[dict]: ...

    def watch(self, api_version: str, kind: str, namespace: str | None = None) -> AsyncIterator[SourceEvent]:
        """Yield ADDED for every existing object, then every later change, until cancelled."""
        ...


def _matches(obj: Mapping, api_version: str, kind: str, namespace: str | None) -> bool:
    meta = obj.get("metadata", {})
    return (
        obj.get("apiVersion") == api_version
        and obj.get("kind") == kind
        and (namespace is None or meta.get("namespace") == namespace)
    )


def _labels_match(obj: Mapping, label_selector: str | None) -> bool:
    if not label_selector:
        return True
    labels = obj.get("metadata", {}).get("labels", {}) or {}
    for term in label_selector.split(","):
        key, _, value = term.partition("=")
        if labels.get(key.strip()) != value.strip():
            return False
    return True


@dataclass
class StaticSource:
    """An in-memory source for tests and benchmarks: ``put``/``remove`` objects, watchers see the change.

    Label selectors support equality terms (``a=b,c=d``) only, which is all the simulators use.
    """

    objects: dict[tuple[str, str, str, str], dict] = field(default_factory=dict)
    _watchers: list[tuple[str, str, str | None, asyncio.Queue[SourceEvent]]] = field(default_factory=list)

    @staticmethod
    def _key(obj: Mapping) -> tuple[str, str, str, str]:
        meta = obj["metadata"]
        return (obj["apiVersion"], obj["kind"], meta.get("namespace", ""), meta["name"])

    def put(self, obj: dict) -> None:
        """Add or replace an object and notify watchers."""
        key = self._key(obj)
        event_type = "MODIFIED" if key in self.objects else "ADDED"
        self.objects[key] = obj
        self._notify(SourceEvent(event_type, obj))

    def remove(self, obj: Mapping) -> None:
        """Delete an object (no-op if absent) and notify watchers."""
        removed = self.objects.pop(self._key(obj), None)
        if removed is not None:
            self._notify(SourceEvent("DELETED", removed))

    def _notify(self, event: SourceEvent) -> None:
        for api_version, kind, namespace, queue in self._watchers:
            if _matches(event.object, api_version, kind, namespace):
                queue.put_nowait(event)

    async def list(
        self, api_version: str, kind: str, namespace: str | None = None, label_selector: str | None = None
    ) -> list[dict]:
        return [
            obj
            for obj in self.objects.values()
            if _matches(obj, api_version, kind, namespace) and _labels_match(obj, label_selector)
        ]

    async def watch(self, api_version: str, kind: str, namespace: str | None = None) -> AsyncIterator[SourceEvent]:
        queue: asyncio.Queue[SourceEvent] = asyncio.Queue()
        entry = (api_version, kind, namespace, queue)
        self._watchers.append(entry)
        try:
            for obj in await self.list(api_version, kind, namespace):
                yield SourceEvent("ADDED", obj)
            while True:
                yield await queue.get()
        finally:
            self._watchers.remove(entry)
