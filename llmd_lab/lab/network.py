"""The lab's network: pod IPs on 127.1.0.0/16, Service cluster IPs on 127.2.0.0/16, kube-proxy listeners,
the ``ResourceSource`` the EPP and gateway read, and the Gateway ``openshift-ingress/openshift-ai-inference``
on 127.0.0.1:<gateway port>.

Linux routes all of 127.0.0.0/8 to loopback, so every pod binds its own address and ``curl <podIP>:8000``
reaches exactly that pod, as on a cluster network. Whatever a Service asks for, kube-proxy only ever binds
loopback addresses: a ``clusterIP`` outside 127.0.0.0/8 (``0.0.0.0``, ``::``, a LAN address) gets no
listener, a Warning event and a log line, never a socket open to the network. One bad Service (a port
beyond 65535, an address it cannot bind) is isolated the same way and the others keep being served.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from llmd_lab.lab.apiserver.errors import ApiError
from llmd_lab.lab.apiserver.store import Store
from llmd_lab.lab.context import LabContext
from llmd_lab.lab.informer import Informer, list_and_watch
from llmd_lab.lab.ipam import POD_CIDR, SERVICE_CIDR, IPAllocator, Network, is_loopback
from llmd_lab.sim.gateway.kubeproxy import ServiceProxy
from llmd_lab.sim.source import SourceEvent

if TYPE_CHECKING:
    from llmd_lab.sim.gateway.server import Gateway

__all__ = ["POD_CIDR", "SERVICE_CIDR", "GatewayComponent", "IPAllocator", "Network", "ServiceNetwork", "StoreSource"]

log = logging.getLogger("llmd_lab.lab.network")

class StoreSource:
    """``ResourceSource`` over the lab's store, for the simulated EPP and gateway."""

    def __init__(self, store: Store) -> None:
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
        # list, then watch from the list's resourceVersion; re-list on 410; back off while the kind is not
        # served yet (its CRD may be installed later) or the store fails
        async for type_, obj in list_and_watch(self.store, api_version, kind, namespace):
            yield SourceEvent(type_, obj)


class ServiceNetwork:
    """Allocates cluster IPs and runs one kube-proxy listener per Service port (round robin over Ready pods)."""

    name = "kube-proxy"

    ctx: LabContext
    source: StoreSource

    def __init__(self, network: Network, mode: str = "round-robin") -> None:
        self.network = network
        self.mode = mode
        self._proxies: dict[tuple[str, str], list[ServiceProxy]] = {}
        self._serving: dict[tuple[str, str], tuple[str, list]] = {}  # what each key's listeners serve
        self._task: asyncio.Task | None = None

    async def start(self, ctx: LabContext) -> None:
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
        await Informer(self.ctx.store, "v1", "Service", self._handle, owner=self.name, on_error=self._failed).run()

    async def _failed(self, svc: dict, exc: Exception) -> None:
        with contextlib.suppress(ApiError):
            await self.ctx.events.record(svc, "Warning", "FailedToStartServiceHealthcheck" if isinstance(exc, OSError)
                                         else "InvalidService", f"kube-proxy cannot serve this Service: {exc}",
                                         self.name)

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
        if spec["clusterIP"] == "None":
            return
        wanted = (spec["clusterIP"], [p.get("port") for p in spec.get("ports") or []])
        if self._serving.get(key) == wanted:
            return
        await self._stop_proxies(key)  # a changed Service is served afresh
        await self._start_proxies(key, spec)
        self._serving[key] = wanted

    async def _start_proxies(self, key: tuple[str, str], spec: dict) -> None:
        """One listener per Service port on the cluster IP; raises (isolated by the informer) for what it
        will not or cannot serve, after stopping the listeners it had opened."""
        ip = spec["clusterIP"]
        if not is_loopback(ip):
            raise ValueError(f"spec.clusterIP {ip!r} is not a loopback address; the lab only listens on "
                             "127.0.0.0/8 (leave clusterIP unset and one is allocated from "
                             f"{self.network.services.cidr})")
        ports = [_service_port(p) for p in spec.get("ports") or []]
        self.network.services.reserve(ip)
        proxies: list[ServiceProxy] = []
        self._proxies[key] = proxies
        for port in ports:
            proxy = ServiceProxy(self.source, key[0], key[1], host=ip, port=port, mode=self.mode)
            try:
                await proxy.start()
            except OSError as exc:
                await self._stop_proxies(key)
                raise OSError(exc.errno, f"cannot listen on {ip}:{port}: {exc.strerror}") from exc
            proxies.append(proxy)

    async def _stop_proxies(self, key: tuple[str, str]) -> None:
        self._serving.pop(key, None)
        await asyncio.gather(*(proxy.stop() for proxy in self._proxies.pop(key, [])), return_exceptions=True)

    def resolve_service_address(self, service: dict, port: int) -> tuple[str, int] | None:
        ip = (service.get("spec") or {}).get("clusterIP")
        return (ip, port) if ip and is_loopback(ip) else None


def _service_port(port: dict) -> int:
    """A Service port as an int in 1-65535 (kube-apiserver's range); ValueError names the bad value."""
    value = port.get("port")
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 65535:
        raise ValueError(f"spec.ports[].port: Invalid value: {value!r}: must be between 1 and 65535, inclusive")
    return value


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
        self.gateway: Gateway | None = None

    async def start(self, ctx: LabContext) -> None:
        spec = ctx.profile.gateway if ctx.profile is not None else None
        if spec is None or ctx.profile is None:
            return  # e.g. the `fresh` profile: no inference Gateway on this cluster
        live = None
        with contextlib.suppress(ApiError):
            live = await ctx.store.get("gateway.networking.k8s.io/v1", "Gateway", spec.name, spec.namespace)
        previous = None
        if live is not None:
            previous = int(((live.get("spec") or {}).get("listeners") or [{}])[0].get("port", 0) or 0)
        from llmd_lab.sim.gateway.filters import AuthPolicyFilter, TlsOriginationFault
        from llmd_lab.sim.gateway.server import Gateway

        # TLS to the pods as KServe's DestinationRules originate it (SIMPLE, insecureSkipVerify): vLLM serves
        # HTTPS with the workload certificate the kubelet mounts, so plain HTTP would not get through
        self.gateway = Gateway(StoreSource(ctx.store), host="127.0.0.1", port=_free_port(previous),
                               name=spec.name, namespace=spec.namespace, upstream_tls=True)
        # what OpenShift's gateway adds with RHCL (Authorino: 401 without a valid token), and the known issue
        reviewer = ctx.store.token_reviewer  # set by the API server's app, which starts before the gateway
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
