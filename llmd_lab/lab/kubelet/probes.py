"""The kubelet's prober: HTTP (with ``scheme: HTTPS`` not verifying), gRPC and TCP probes against a pod's IP,
with the failure details Go's clients give (kubernetes ``pkg/probe/http``, ``pkg/probe/tcp``, ``pkg/probe/grpc``)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from llmd_lab.sim.keepalive import POD_CLIENT_KEEPALIVE_EXPIRY_S
from llmd_lab.sim.tls import insecure_client_context


@dataclass(frozen=True)
class ProbeTiming:
    """When a probe runs and when its failures count, with the API's defaults (``core/v1`` ``Probe``:
    ``periodSeconds`` 10, ``failureThreshold`` 3, ``initialDelaySeconds`` 0)."""

    initial_delay_s: float
    period_s: float
    failure_threshold: int

    @classmethod
    def of(cls, probe: Mapping[str, Any]) -> ProbeTiming:
        return cls(float(probe.get("initialDelaySeconds", 0)), float(probe.get("periodSeconds", 10)),
                   int(probe.get("failureThreshold", 3)))


def probe_port(container: Mapping[str, Any], port: Any) -> int:
    """A probe's port: a number, or the name of one of the container's ports."""
    if isinstance(port, int) or (isinstance(port, str) and port.isdigit()):
        return int(port)
    for p in container.get("ports") or []:
        if p.get("name") == port:
            return int(p["containerPort"])
    raise ValueError(f"unknown named port {port!r}")


def probe_client(probe: Mapping[str, Any]) -> httpx.AsyncClient:
    """The prober's client: ``scheme: HTTPS`` probes do not verify the certificate (kubernetes
    ``pkg/probe/http/http.go``: ``InsecureSkipVerify: true``), so KServe's SAN-less certificate passes."""
    return httpx.AsyncClient(timeout=float(probe.get("timeoutSeconds", 1)) + 1.0, verify=insecure_client_context(),
                             limits=httpx.Limits(keepalive_expiry=POD_CLIENT_KEEPALIVE_EXPIRY_S))


def probe_error(exc: httpx.HTTPError, ip: str, port: int) -> str:
    """Go's wording for what the probe met: a refused dial, a TLS port closing on plain HTTP (``EOF``), or
    a plain-HTTP server answering the TLS handshake."""
    text = str(exc)
    if isinstance(exc, httpx.ConnectError) and ("SSL" in text or "record layer" in text.lower()):
        return "http: server gave HTTP response to HTTPS client"
    if isinstance(exc, httpx.ConnectError):
        return f"dial tcp {ip}:{port}: connect: connection refused"
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError):
        return "EOF"
    return text


async def probe_once(client: httpx.AsyncClient, ip: str, container: Mapping[str, Any], probe: Mapping[str, Any],
               ) -> tuple[bool, str]:
    """One probe of ``container`` at ``ip``: (success, the kubelet's failure detail)."""
    try:
        if "httpGet" in probe:
            g = probe["httpGet"]
            port = probe_port(container, g.get("port", 80))
            url = f"{str(g.get('scheme', 'HTTP')).lower()}://{ip}:{port}{g.get('path', '/')}"
            try:
                resp = await client.get(url)
            except httpx.HTTPError as exc:
                return False, f'Get "{url}": {probe_error(exc, ip, port)}'
            if 200 <= resp.status_code < 400:
                return True, ""
            return False, f"HTTP probe failed with statuscode: {resp.status_code}"
        if "grpc" in probe:
            port = probe_port(container, probe["grpc"].get("port"))
            try:
                resp = await client.get(f"http://{ip}:{port}/")
            except httpx.HTTPError:
                return False, f'timeout: failed to connect service "{ip}:{port}" within 1s: context deadline exceeded'
            return (resp.status_code == 200), "service unhealthy (responded with \"NOT_SERVING\")"
        if "tcpSocket" in probe:
            port = probe_port(container, probe["tcpSocket"].get("port"))
            try:
                async with asyncio.timeout(1.0):
                    _, writer = await asyncio.open_connection(ip, port)
            except (OSError, TimeoutError):
                return False, f"dial tcp {ip}:{port}: connect: connection refused"
            writer.close()
            return True, ""
    except ValueError as exc:
        return False, str(exc)
    return True, ""


async def probe_to_completion(client: httpx.AsyncClient, ip: str, container: Mapping[str, Any],
                              probe: Mapping[str, Any]) -> tuple[bool, str]:
    """:func:`probe_once`, finished even when the container stops meanwhile: the kubelet's prober worker reads
    its stop channel only between probes (``pkg/kubelet/prober/worker.go``). Cancelling an HTTPS probe in its
    handshake would also leave the connection open (httpcore closes the stream on errors, not on cancel)."""
    attempt = asyncio.ensure_future(probe_once(client, ip, container, probe))
    try:
        return await asyncio.shield(attempt)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await attempt  # bounded by the probe's own timeout
        raise
