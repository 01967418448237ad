"""A kube-proxy-style Service listener: the round-robin / random baseline the workshop compares against.

It works at L4 like kube-proxy: each new TCP *connection* to ``clusterIP:port`` goes to one Ready
endpoint of the Service (round robin, or random like iptables mode) and bytes are piped both ways.
(A client that keeps a connection alive keeps talking to the same pod, as on a cluster.) The lab's own
network layer has the full version; this one serves in-process tests and benchmarks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from typing import Any

from llmd_lab.sim.epp.datastore import pod_is_ready
from llmd_lab.sim.source import ResourceSource


def _target_port(pod: dict, target: Any) -> int | None:
    if isinstance(target, int):
        return target
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == target:
                return int(port["containerPort"])
    return int(target) if isinstance(target, str) and target.isdigit() else None


class ServiceProxy:
    """Listen on ``host:port`` for Service ``namespace/name`` and spread connections over its Ready pods."""

    def __init__(self, source: ResourceSource, namespace: str, name: str, *, host: str, port: int,
                 mode: str = "round-robin", seed: int | None = None, log: logging.Logger | None = None) -> None:
        if mode not in {"round-robin", "random"}:
            raise ValueError(f"mode must be round-robin or random, got {mode!r}")
        self.source = source
        self.namespace = namespace
        self.name = name
        self.host = host
        self.port = port
        self.mode = mode
        self.rng = random.Random(seed)
        self.log = log or logging.getLogger("llmd_lab.sim.gateway.kubeproxy")
        self.service: dict | None = None
        self.pods: dict[str, dict] = {}
        self._next = 0
        self._tasks: list[asyncio.Task] = []
        self._server: asyncio.base_events.Server | None = None
        self.connections: dict[str, int] = {}

    def endpoints(self) -> list[tuple[str, str, int]]:
        """(pod name, IP, port) of every Ready pod the Service selects, in a stable order."""
        if self.service is None:
            return []
        spec = self.service.get("spec") or {}
        selector = spec.get("selector") or {}
        ports = spec.get("ports") or []
        svc_port = next((p for p in ports if p.get("port") == self.port), ports[0] if ports else {})
        target = svc_port.get("targetPort", svc_port.get("port"))
        out = []
        for name in sorted(self.pods):
            pod = self.pods[name]
            labels = (pod.get("metadata") or {}).get("labels") or {}
            if selector and all(labels.get(k) == v for k, v in selector.items()) and pod_is_ready(pod):
                port = _target_port(pod, target)
                if port:
                    out.append((name, pod["status"]["podIP"], port))
        return out

    def pick(self) -> tuple[str, str, int] | None:
        eps = self.endpoints()
        if not eps:
            return None
        if self.mode == "random":
            return self.rng.choice(eps)
        choice = eps[self._next % len(eps)]
        self._next += 1
        return choice

    async def _watch(self, api_version: str, kind: str) -> None:
        async for event in self.source.watch(api_version, kind, self.namespace):
            name = event.object["metadata"]["name"]
            if kind == "Service":
                if name == self.name:
                    self.service = None if event.type == "DELETED" else event.object
            elif event.type == "DELETED":
                self.pods.pop(name, None)
            else:
                self.pods[name] = event.object

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        target = self.pick()
        if target is None:  # no endpoints: kube-proxy rejects the connection
            writer.close()
            return
        name, ip, port = target
        try:
            up_reader, up_writer = await asyncio.open_connection(ip, port)
        except OSError:
            writer.close()
            return
        self.connections[name] = self.connections.get(name, 0) + 1
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def start(self) -> None:
        for api_version, kind in (("v1", "Service"), ("v1", "Pod")):
            self._tasks.append(asyncio.create_task(self._watch(api_version, kind)))
        self._server = await asyncio.start_server(self._on_connection, self.host, self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
