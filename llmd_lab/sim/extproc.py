"""The ext-proc contract between the gateway and an endpoint picker, and an in-process fast path for it.

On a cluster Envoy streams each request to the EPP over gRPC ext-proc (GIE v1.0.0
``pkg/epp/handlers/server.go``): request headers and body, then response headers, then the response body
up to end-of-stream, when the EPP records the request's duration and sizes (``metrics.RecordRequestLatencies``).
The lab's EPP serves an HTTP stand-in on its ``--grpc-port``: ``POST /extproc/request``,
``/extproc/response`` (response headers) and ``/extproc/complete`` (end of the response body). Every
simulator usually lives in one Python process and one event loop, so a running EPP also registers its
processor here under the address it listens on; the gateway calls it directly when it finds one registered
in its own event loop and uses HTTP otherwise (``llmd_lab.sim.gateway.extproc_client``). The EPP makes the
same decision either way, and it unregisters before it stops listening, so a stopped EPP looks the same on
both paths (connection refused → the pool's ``failureMode``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

IMMEDIATE_RESPONSE_HEADER = "x-epp-immediate-response"


@dataclass(frozen=True)
class RequestVerdict:
    """The EPP's answer for one request: headers to set/remove (routing), or an immediate response."""

    set_headers: dict[str, str]
    remove_headers: list[str]
    request_id: str
    immediate_status: int | None = None
    immediate_body: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {"set_headers": self.set_headers, "remove_headers": self.remove_headers,
                "request_id": self.request_id}


class ExternalProcessor(Protocol):
    """What an EPP offers the gateway: the request phase, the response-headers phase and the completion
    phase (the response body reached its end, or broke off)."""

    def process_request(self, headers: Mapping[str, str], body: Any, body_size: int) -> RequestVerdict: ...

    def process_response(self, request_id: str, headers: Mapping[str, str]) -> dict[str, str]: ...

    def process_completion(self, request_id: str, response_size: int) -> None: ...


_registry: dict[tuple[str, int], tuple[asyncio.AbstractEventLoop, ExternalProcessor]] = {}


def register(host: str, port: int, processor: ExternalProcessor) -> None:
    """Offer ``processor`` to gateways in the current event loop for ``host:port``."""
    _registry[(host, int(port))] = (asyncio.get_running_loop(), processor)


def unregister(host: str, port: int, processor: ExternalProcessor) -> None:
    """Withdraw ``processor`` (only if it is still the one registered for ``host:port``)."""
    entry = _registry.get((host, int(port)))
    if entry is not None and entry[1] is processor:
        del _registry[(host, int(port))]


def lookup(host: str, port: int) -> ExternalProcessor | None:
    """The processor listening on ``host:port`` in this event loop, or None (then use HTTP)."""
    entry = _registry.get((host, int(port)))
    if entry is None:
        return None
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return None
    return entry[1] if entry[0] is loop else None
