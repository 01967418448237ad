"""What the API server needs from the rest of the lab (filled in by the lab process).

Logs come from the kubelet, addresses from the network; without hooks the API server answers logs with
a 404 that says so and proxies to ``status.podIP`` / ``spec.clusterIP``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

ReadLogs = Callable[[str, str, str, int | None, bool, bool], AsyncIterator[str]]
"""``read_logs(namespace, pod, container, tail_lines, follow, previous)`` → text chunks (lines with ``\\n``).
Raise ``ApiError`` (e.g. 400 "container ... is waiting to start") for what kubectl should print."""

ResolvePod = Callable[[dict, int], "tuple[str, int] | Awaitable[tuple[str, int] | None] | None"]
"""``resolve_pod_address(pod, port)`` → ``(host, port)`` to connect to, or ``None`` (not reachable)."""

ResolveService = Callable[[dict, int], "tuple[str, int] | Awaitable[tuple[str, int] | None] | None"]
"""``resolve_service_address(service, port)`` → ``(host, port)``: a ready endpoint or the kube-proxy listener."""


@dataclass
class ApiHooks:
    read_logs: ReadLogs | None = None
    resolve_pod_address: ResolvePod | None = None
    resolve_service_address: ResolveService | None = None
