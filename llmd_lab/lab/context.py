"""The lab's ground floor: what every component is handed (:class:`LabContext`) and what it must offer
(:class:`LabComponent`), plus the two shared helpers every component uses — the clock and the event recorder.

Kept apart from the lab process (``server.py``) so components, tests and benchmarks can type against it
without pulling in uvicorn or the API server's HTTP app.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol, runtime_checkable

from llmd_lab.lab.apiserver import errors
from llmd_lab.lab.apiserver.hooks import ApiHooks
from llmd_lab.lab.apiserver.store import Store
from llmd_lab.lab.ipam import Network
from llmd_lab.lab.profiles import Profile


class LabClock:
    """Wall-clock timestamps, simulated durations divided by ``time_scale`` (``--time-scale 10`` = 10× faster)."""

    def __init__(self, time_scale: float = 1.0) -> None:
        if time_scale <= 0:
            raise ValueError(f"time scale must be > 0, got {time_scale}")
        self.time_scale = time_scale

    def now(self) -> datetime:
        return datetime.now(UTC)

    def stamp(self) -> str:
        """``now()`` as Kubernetes writes timestamps (RFC 3339, seconds, ``Z``)."""
        return self.now().strftime("%Y-%m-%dT%H:%M:%SZ")

    def real_seconds(self, simulated_seconds: float) -> float:
        return simulated_seconds / self.time_scale

    async def sleep(self, simulated_seconds: float) -> None:
        await asyncio.sleep(max(0.0, simulated_seconds) / self.time_scale)


class EventRecorder:
    """Creates core/v1 Events (``kubectl describe`` / ``get events``), counting repeats like the real recorder."""

    def __init__(self, store: Store, clock: LabClock) -> None:
        self.store = store
        self.clock = clock
        self._seen: dict[tuple, str] = {}

    async def record(self, obj: dict, event_type: str, reason: str, message: str, component: str) -> dict:
        meta = obj.get("metadata", {})
        namespace = meta.get("namespace") or "default"
        key = (obj.get("kind"), namespace, meta.get("name"), meta.get("uid"), event_type, reason, message)
        stamp = self.clock.stamp()
        name = self._seen.get(key)
        if name:
            with contextlib.suppress(errors.ApiError):
                event = await self.store.get("v1", "Event", name, namespace)
                event["count"] = int(event.get("count") or 1) + 1
                event["lastTimestamp"] = stamp
                return await self.store.update(event)
        name = f"{meta.get('name', 'object')}.{uuid.uuid4().hex[:16]}"
        self._seen[key] = name
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": {
                "apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"), "name": meta.get("name"),
                "namespace": meta.get("namespace"), "uid": meta.get("uid"),
                "resourceVersion": meta.get("resourceVersion"),
            },
            "type": event_type,
            "reason": reason,
            "message": message,
            "count": 1,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "source": {"component": component},
            "reportingComponent": component,
            "reportingInstance": "llmd-lab",
        }
        return await self.store.create(event)


@dataclass
class LabContext:
    """What every component is handed: the store, where state lives, the profile, and the shared helpers."""

    store: Store
    home: Path
    profile: Profile | None  # None: no cluster profile (unit tests of a single component)
    time_scale: float
    clock: LabClock
    events: EventRecorder
    api_url: str = ""
    network: Network = field(default_factory=Network)  # pod and cluster IPs, shared by kubelet and kube-proxy
    gateway_port: int | None = None  # set by the gateway component once it listens
    # what only a component can answer for the HTTP app (pod logs, pod/service addresses): filled in where
    # the lab constructs its components, read by the app per request
    hooks: ApiHooks = field(default_factory=ApiHooks)


def make_context(store: Store, home: Path, profile: Profile | None, time_scale: float,
                 api_url: str = "") -> LabContext:
    """A context with its own clock and event recorder (the lab process, tests and benchmarks)."""
    clock = LabClock(time_scale)
    return LabContext(store=store, home=home, profile=profile, time_scale=time_scale, clock=clock,
                      events=EventRecorder(store, clock), api_url=api_url)


@runtime_checkable
class LabComponent(Protocol):
    """A part of the lab (controller, scheduler, kubelet, gateway…) with a start/stop lifecycle."""

    name: str

    async def start(self, ctx: LabContext) -> None: ...

    async def stop(self) -> None: ...
