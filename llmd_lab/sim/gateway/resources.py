"""The objects the gateway routes by, kept current from ``ResourceSource`` watches (no polling)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from llmd_lab.sim.epp.datastore import pod_is_ready, pool_selector_and_port
from llmd_lab.sim.source import ResourceSource

WATCHED = (
    ("gateway.networking.k8s.io/v1", "HTTPRoute"),
    ("inference.networking.x-k8s.io/v1alpha2", "InferencePool"),
    ("inference.networking.k8s.io/v1", "InferencePool"),
    ("v1", "Service"),
    ("v1", "Pod"),
)
POOL_GROUPS = {"inference.networking.x-k8s.io": "v1alpha2", "inference.networking.k8s.io": "v1"}


def _key(obj: Mapping[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return meta.get("namespace", ""), meta["name"]


def _named_port(pod: Mapping[str, Any], name: str) -> int | None:
    if name.isdigit():
        return int(name)
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == name:
                return int(port["containerPort"])
    return None


@dataclass
class PoolTarget:
    """What the gateway needs from an InferencePool: the EPP address, failure mode, pods and port."""

    name: str
    namespace: str
    epp_host: str | None
    epp_port: int
    failure_mode: str
    selector: dict[str, str]
    target_port: int | None
    problem: str = ""
    epp_service: dict | None = None


class ResourceCache:
    """In-memory copies of watched objects, by (apiVersion, kind) then (namespace, name)."""

    def __init__(self, source: ResourceSource, log: logging.Logger) -> None:
        self.source = source
        self.log = log
        self.kinds: list[tuple[str, str]] = list(WATCHED)
        self.objects: dict[tuple[str, str], dict[tuple[str, str], dict]] = {k: {} for k in WATCHED}
        self._tasks: list[asyncio.Task] = []
        self.synced = asyncio.Event()
        self._seen: set[tuple[str, str]] = set()
        self.generation = 0  # bumped on every change, so derived views can be cached until the next one
        self._endpoints: dict[tuple[str, str, int], tuple[int, list[tuple[str, int]]]] = {}

    def watch_also(self, kinds: tuple[tuple[str, str], ...]) -> None:
        """Watch more kinds (a filter's resources); call before :meth:`start`."""
        for kind in kinds:
            if kind not in self.objects:
                self.kinds.append(kind)
                self.objects[kind] = {}

    async def start(self) -> None:
        for api_version, kind in self.kinds:
            self._tasks.append(asyncio.create_task(self._watch(api_version, kind), name=f"gateway-watch-{kind}"))

    async def _watch(self, api_version: str, kind: str) -> None:
        store = self.objects[(api_version, kind)]
        try:
            # the initial list marks this kind as synced; the watch then delivers changes
            for obj in await self.source.list(api_version, kind):
                store[_key(obj)] = obj
            self.generation += 1
            self._seen.add((api_version, kind))
            if len(self._seen) == len(self.kinds):
                self.synced.set()
            async for event in self.source.watch(api_version, kind):
                if event.type == "DELETED":
                    store.pop(_key(event.object), None)
                else:
                    store[_key(event.object)] = event.object
                self.generation += 1
        except asyncio.CancelledError:
            raise
        except Exception:
            self.log.exception("gateway watch of %s %s failed", api_version, kind)
            self._seen.add((api_version, kind))
            if len(self._seen) == len(self.kinds):
                self.synced.set()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- lookups --------------------------------------------------------------------------------------------
    def routes(self) -> list[dict]:
        return list(self.objects[("gateway.networking.k8s.io/v1", "HTTPRoute")].values())

    def service(self, namespace: str, name: str) -> dict | None:
        return self.objects[("v1", "Service")].get((namespace, name))

    def pool(self, group: str, namespace: str, name: str) -> dict | None:
        version = POOL_GROUPS.get(group)
        if version is None:
            return None
        return self.objects[(f"{group}/{version}", "InferencePool")].get((namespace, name))

    def ready_pods(self, namespace: str, selector: Mapping[str, str]) -> list[dict]:
        if not selector:
            return []
        out = []
        for (ns, _), pod in self.objects[("v1", "Pod")].items():
            labels = (pod.get("metadata") or {}).get("labels") or {}
            if ns == namespace and all(labels.get(k) == v for k, v in selector.items()) and pod_is_ready(pod):
                out.append(pod)
        return out

    def service_endpoints(self, service: Mapping[str, Any], port: int) -> list[tuple[str, int]]:
        """(pod IP, target port) of the Ready pods behind ``service``'s ``port``: where kube-proxy would send it."""
        meta = service.get("metadata") or {}
        key = (meta.get("namespace", ""), meta.get("name", ""), port)
        cached = self._endpoints.get(key)
        if cached is not None and cached[0] == self.generation:
            return cached[1]
        spec = service.get("spec") or {}
        ports = spec.get("ports") or []
        svc_port = next((p for p in ports if p.get("port") == port), None)
        out: list[tuple[str, int]] = []
        if svc_port is not None:
            target = svc_port.get("targetPort", port)
            for pod in self.ready_pods(key[0], spec.get("selector") or {}):
                ip = (pod.get("status") or {}).get("podIP")
                number = target if isinstance(target, int) else _named_port(pod, str(target))
                if ip and number:
                    out.append((ip, int(number)))
        self._endpoints[key] = (self.generation, out)
        return out

    def pool_target(self, group: str, namespace: str, name: str) -> PoolTarget | None:
        pool = self.pool(group, namespace, name)
        if pool is None:
            return None
        spec = pool.get("spec") or {}
        ref = spec.get("extensionRef") or spec.get("endpointPickerRef") or {}
        port_spec = ref.get("portNumber") or (ref.get("port") or {}).get("number") or 9002
        selector, target_port = pool_selector_and_port(pool)
        target = PoolTarget(name, namespace, None, int(port_spec), ref.get("failureMode") or "FailClose", selector,
                            target_port)
        svc = self.service(namespace, ref.get("name", "")) if ref.get("name") else None
        if svc is None:
            target.problem = f"endpoint picker Service {namespace}/{ref.get('name', '')} not found"
        else:
            target.epp_service = svc
            target.epp_host = (svc.get("spec") or {}).get("clusterIP")
            if not target.epp_host or target.epp_host == "None":
                target.problem = f"endpoint picker Service {namespace}/{ref['name']} has no cluster IP"
                target.epp_host = None
        return target
