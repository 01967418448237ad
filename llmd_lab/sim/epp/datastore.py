"""The EPP's view of its InferencePool: the pool spec and its Ready pods (GIE ``datastore`` + reconcilers).

Both come from a :class:`~llmd_lab.sim.source.ResourceSource` *watch*: a pod joins the candidate set
when it matches the pool selector, is Ready and not being deleted, and leaves it on the first event
that says otherwise. Metrics survive a pod update; a pod that comes back starts from fresh metrics.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from llmd_lab._tasks import cancel_and_wait
from llmd_lab.sim.epp.types import Endpoint
from llmd_lab.sim.source import ResourceSource

POOL_VERSIONS = {"inference.networking.x-k8s.io": "v1alpha2", "inference.networking.k8s.io": "v1"}


def pool_selector_and_port(pool: Mapping[str, Any]) -> tuple[dict[str, str], int | None]:
    """Selector and target port of a v1alpha2 (``selector``/``targetPortNumber``) or v1 pool."""
    spec = pool.get("spec") or {}
    selector = spec.get("selector") or {}
    if "matchLabels" in selector:
        selector = selector.get("matchLabels") or {}
    port = spec.get("targetPortNumber")
    if port is None:
        ports = spec.get("targetPorts") or []
        port = ports[0].get("number") if len(ports) == 1 else None
    return dict(selector), port


def pod_is_ready(pod: Mapping[str, Any]) -> bool:
    meta = pod.get("metadata") or {}
    status = pod.get("status") or {}
    if meta.get("deletionTimestamp") or not status.get("podIP"):
        return False
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])


class Datastore:
    """Pool + endpoints, kept current by watches."""

    def __init__(self, source: ResourceSource, pool_name: str, namespace: str,
                 pool_group: str = "inference.networking.k8s.io", log: logging.Logger | None = None) -> None:
        if pool_group not in POOL_VERSIONS:
            raise ValueError(f"unsupported --pool-group {pool_group!r} (use one of {', '.join(POOL_VERSIONS)})")
        self.source = source
        self.pool_name = pool_name
        self.namespace = namespace
        self.pool_api_version = f"{pool_group}/{POOL_VERSIONS[pool_group]}"
        self.log = log or logging.getLogger("llmd_lab.sim.epp.datastore")
        self.pool: dict[str, Any] | None = None
        self.selector: dict[str, str] = {}
        self.target_port: int | None = None
        self.pods: dict[str, dict[str, Any]] = {}
        self.endpoints: dict[str, Endpoint] = {}
        self.objectives: dict[str, int | None] = {}
        self.changed = asyncio.Event()
        self._tasks: list[asyncio.Task] = []

    # -- queries --------------------------------------------------------------------------------------------
    def pool_synced(self) -> bool:
        return self.pool is not None

    def candidates(self) -> list[Endpoint]:
        return list(self.endpoints.values())

    def port(self) -> int:
        if self.target_port is None:
            raise LookupError(f"InferencePool {self.namespace}/{self.pool_name} has no single target port")
        return self.target_port

    def objective_priority(self, name: str) -> int | None:
        return self.objectives.get(name)

    # -- reconciling ----------------------------------------------------------------------------------------
    def _reconcile_pods(self) -> None:
        wanted: dict[str, dict[str, Any]] = {}
        if self.pool is not None and self.selector and self.target_port:
            for name, pod in self.pods.items():
                labels = (pod.get("metadata") or {}).get("labels") or {}
                if all(labels.get(k) == v for k, v in self.selector.items()) and pod_is_ready(pod):
                    wanted[name] = pod
        for name in list(self.endpoints):
            if name not in wanted or self.endpoints[name].address != wanted[name]["status"]["podIP"]:
                self.log.info("pod %s left the candidate set", name)
                del self.endpoints[name]
        for name, pod in wanted.items():
            labels = dict((pod.get("metadata") or {}).get("labels") or {})
            if name in self.endpoints:
                self.endpoints[name].labels = labels
                self.endpoints[name].port = self.target_port or 0
                continue
            self.log.info("pod %s joined the candidate set at %s:%s", name, pod["status"]["podIP"], self.target_port)
            self.endpoints[name] = Endpoint(name, self.namespace, pod["status"]["podIP"], self.target_port or 0, labels)
        self.changed.set()

    async def _watch_pool(self) -> None:
        async for event in self.source.watch(self.pool_api_version, "InferencePool", self.namespace):
            if (event.object.get("metadata") or {}).get("name") != self.pool_name:
                continue
            if event.type == "DELETED":
                self.pool, self.selector, self.target_port = None, {}, None
            else:
                self.pool = event.object
                self.selector, self.target_port = pool_selector_and_port(event.object)
            self._reconcile_pods()

    async def _watch_pods(self) -> None:
        async for event in self.source.watch("v1", "Pod", self.namespace):
            name = event.object["metadata"]["name"]
            if event.type == "DELETED":
                self.pods.pop(name, None)
            else:
                self.pods[name] = event.object
            self._reconcile_pods()

    async def _watch_objectives(self) -> None:
        async for event in self.source.watch("inference.networking.x-k8s.io/v1alpha2", "InferenceObjective",
                                             self.namespace):
            name = event.object["metadata"]["name"]
            if event.type == "DELETED":
                self.objectives.pop(name, None)
            else:
                self.objectives[name] = (event.object.get("spec") or {}).get("priority")

    async def start(self) -> None:
        for coro in (self._watch_pool(), self._watch_pods(), self._watch_objectives()):
            self._tasks.append(asyncio.create_task(self._guard(coro)))

    async def _guard(self, coro) -> None:
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception:  # a watch that dies must be visible in the EPP log, not silently stop updates
            self.log.exception("watch failed")

    async def stop(self) -> None:
        await cancel_and_wait(self._tasks)
        self._tasks.clear()
