"""The lab's network: pod IPs on 127.1.0.0/16, Service cluster IPs on 127.2.0.0/16, kube-proxy listeners,
the ``ResourceSource`` the EPP and gateway read, and the Gateway ``openshift-ingress/openshift-ai-inference``
on 127.0.0.1:<gateway port>.

Linux routes all of 127.0.0.0/8 to loopback, so every pod binds its own address and ``curl <podIP>:8000``
reaches exactly that pod, as on a cluster network.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import random
import socket
from collections.abc import AsyncIterator
from typing import Any

from llmd_lab.lab.apiserver.errors import ApiError
from llmd_lab.sim.source import SourceEvent

log = logging.getLogger("llmd_lab.lab.network")

POD_CIDR = ipaddress.ip_network("127.1.0.0/16")
SERVICE_CIDR = ipaddress.ip_network("127.2.0.0/16")


class IPAllocator:
    """Hands out addresses of one CIDR (skipping .0/.255 of each /24 so they look like host addresses)."""

    def __init__(self, cidr: ipaddress.IPv4Network, start: int | None = None) -> None:
        self.cidr = cidr
        self._used: set[str] = set()
        # a random starting point keeps two labs (or test runs) on one machine from handing out the same IPs
        self._next = random.randrange(cidr.num_addresses) if start is None else start

    def reserve(self, ip: str) -> bool:
        """Mark an address already in use (e.g. from state kept across ``down``/``up``)."""
        if ip and ipaddress.ip_address(ip) in self.cidr:
            self._used.add(ip)
            return True
        return False

    def allocate(self) -> str:
        hosts = self.cidr.num_addresses
        for _ in range(hosts):
            self._next = (self._next + 1) % hosts
            ip = self.cidr.network_address + self._next
            last = int(ip) & 0xFF
            if last in (0, 255) or str(ip) in self._used:
                continue
            self._used.add(str(ip))
            return str(ip)
        raise RuntimeError(f"no free addresses left in {self.cidr}")

    def release(self, ip: str) -> None:
        self._used.discard(ip)


class StoreSource:
    """``ResourceSource`` over the lab's store, for the simulated EPP and gateway."""

    def __init__(self, store: Any) -> None:
        self.store = store

    async def list(self, api_version: str, kind: str, namespace: str | None = None,
                   label_selector: str | None = None) -> list[dict]:
        try:
            items, _ = await self.store.list(api_version, kind, namespace, label_selector=label_selector)
        except ApiError as exc:
            if exc.code == 404:  # kind not served on this cluster
                return []
            raise
        return items

    async def watch(self, api_version: str, kind: str, namespace: str | None = None) -> AsyncIterator[SourceEvent]:
        while self.store.registry.find_kind(api_version, kind) is None:
            await asyncio.sleep(1.0)  # the CRD may be installed later
        async for event in self.store.watch(api_version, kind, namespace):
            if event.type in ("ADDED", "MODIFIED", "DELETED"):
                yield SourceEvent(event.type, event.object)


class Network:
    """Address allocation shared by the kubelet (pod IPs) and the Service controller (cluster IPs)."""

    def __init__(self) -> None:
        self.pods = IPAllocator(POD_CIDR)
        self.services = IPAllocator(SERVICE_CIDR)


class ServiceNetwork:
    """Allocates cluster IPs and runs one kube-proxy listener per Service port (round robin over Ready pods)."""

    name = "kube-proxy"

    def __init__(self, network: Network, mode: str = "round-robin") -> None:
        self.network = network
        self.mode = mode
        self.ctx: Any = None
        self.source: StoreSource | None = None
        self._proxies: dict[tuple[str, str], list[Any]] = {}
        self._task: asyncio.Task | None = None

    async def start(self, ctx: Any) -> None:
        self.ctx = ctx
        self.source = StoreSource(ctx.store)
        services, _ = await ctx.store.list("v1", "Service")
        for svc in services:
            self.network.services.reserve((svc.get("spec") or {}).get("clusterIP", ""))
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        # in parallel: each listener may wait for its open keep-alive connections to close
        await asyncio.gather(*(self._stop_proxies(key) for key in list(self._proxies)), return_exceptions=True)

    async def _run(self) -> None:
        while True:
            try:
                async for event in self.ctx.store.watch("v1", "Service"):
                    await self._handle(event.type, event.object)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("kube-proxy watch failed; restarting")
                await asyncio.sleep(0.5)

    async def _handle(self, type_: str, svc: dict) -> None:
        key = (svc["metadata"]["namespace"], svc["metadata"]["name"])
        if type_ == "DELETED" or svc["metadata"].get("deletionTimestamp"):
            await self._stop_proxies(key)
            self.network.services.release((svc.get("spec") or {}).get("clusterIP", ""))
            return
        spec = svc.get("spec") or {}
        if spec.get("type", "ClusterIP") not in ("ClusterIP", "NodePort", "LoadBalancer"):
            return
        if not spec.get("clusterIP"):
            ip = self.network.services.allocate()
            spec["clusterIP"] = ip
            spec["clusterIPs"] = [ip]
            try:
                await self.ctx.store.update(svc)
            except ApiError as exc:
                self.network.services.release(ip)
                if exc.code not in (404, 409):
                    raise
            return  # the MODIFIED event starts the listeners
        if spec["clusterIP"] == "None" or key in self._proxies:
            return
        await self._start_proxies(key, spec)

    async def _start_proxies(self, key: tuple[str, str], spec: dict) -> None:
        from llmd_lab.sim.gateway.kubeproxy import ServiceProxy

        self.network.services.reserve(spec["clusterIP"])
        proxies = []
        for port in spec.get("ports") or []:
            proxy = ServiceProxy(self.source, key[0], key[1], host=spec["clusterIP"], port=int(port["port"]),
                                 mode=self.mode)
            try:
                await proxy.start()
            except OSError as exc:
                log.warning("kube-proxy: cannot listen on %s:%s for %s/%s: %s", spec["clusterIP"], port["port"],
                            key[0], key[1], exc)
                continue
            proxies.append(proxy)
        self._proxies[key] = proxies

    async def _stop_proxies(self, key: tuple[str, str]) -> None:
        await asyncio.gather(*(proxy.stop() for proxy in self._proxies.pop(key, [])), return_exceptions=True)

    def resolve_service_address(self, service: dict, port: int) -> tuple[str, int] | None:
        ip = (service.get("spec") or {}).get("clusterIP")
        return (ip, port) if ip and ip != "None" else None


def _free_port(preferred: int | None) -> int:
    """``preferred`` when it can be bound on 127.0.0.1 (stable URLs across down/up), else any free port."""
    if preferred and preferred not in (80, 443):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", preferred))
                return preferred
            except OSError:
                pass
    return 0


class GatewayComponent:
    """Runs the simulated gateway for the profile's Gateway and points the Gateway's listener at it."""

    name = "gateway"

    def __init__(self) -> None:
        self.ctx: Any = None
        self.gateway: Any = None

    async def start(self, ctx: Any) -> None:
        self.ctx = ctx
        spec = getattr(ctx.profile, "gateway", None)
        if spec is None:
            return  # e.g. the `fresh` profile: no inference Gateway on this cluster
        live = None
        with contextlib.suppress(ApiError):
            live = await ctx.store.get("gateway.networking.k8s.io/v1", "Gateway", spec.name, spec.namespace)
        previous = None
        if live is not None:
            previous = int(((live.get("spec") or {}).get("listeners") or [{}])[0].get("port", 0) or 0)
        from llmd_lab.sim.gateway.filters import AuthPolicyFilter, TlsOriginationFault
        from llmd_lab.sim.gateway.server import Gateway

        self.gateway = Gateway(StoreSource(ctx.store), host="127.0.0.1", port=_free_port(previous),
                               name=spec.name, namespace=spec.namespace)
        # what OpenShift's gateway adds with RHCL (Authorino: 401 without a valid token), and the known issue
        reviewer = getattr(ctx.store, "token_reviewer", None)
        self.gateway.add_filter(AuthPolicyFilter(self.gateway.cache, reviewer or (lambda token: False)))
        if ctx.profile.issue("gatewayTlsOriginationFails"):
            self.gateway.add_filter(TlsOriginationFault(self.gateway.cache))
        await self.gateway.start()
        port = int(self.gateway.url.rsplit(":", 1)[1])
        ctx.gateway_port = port
        if live is not None and previous != port:
            live["spec"]["listeners"][0]["port"] = port
            with contextlib.suppress(ApiError):
                await ctx.store.update(live)

    async def stop(self) -> None:
        if self.gateway is not None:
            await self.gateway.stop()


def components(ctx: Any) -> list:
    """kube-proxy and the gateway; the network allocator is shared through ``ctx.network``."""
    if ctx.network is None:
        ctx.network = Network()
    services = ServiceNetwork(ctx.network)
    ctx.hooks.setdefault("resolve_service_address", services.resolve_service_address)
    return [services, GatewayComponent()]
