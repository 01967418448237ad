"""The gateway's side of ext-proc: one interface, two transports, chosen once per pool.

:class:`InProcessTransport` calls an EPP registered in this event loop (``llmd_lab.sim.extproc``);
:class:`HttpTransport` posts to the EPP's HTTP stand-in on its Service. :class:`ExtProcClients` picks one per
(pool, EPP address) the first time the pool is used and keeps it until that EPP stops answering, so the request
path never asks again. Both raise :class:`ExtProcUnavailableError` when the EPP cannot be reached, and the gateway
then applies the pool's ``failureMode``. The phases follow Envoy's ext-proc stream (GIE v1.0.0
``pkg/epp/handlers/server.go``): request, response headers, and completion at the response's end-of-stream.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Protocol

import httpx

from llmd_lab.sim import extproc
from llmd_lab.sim.extproc import IMMEDIATE_RESPONSE_HEADER, ExternalProcessor, RequestVerdict


class ExtProcUnavailableError(Exception):
    """The EPP could not be reached or answered with an error of its own (not an immediate response)."""


class ExtProcTransport(Protocol):
    """How the gateway reaches one pool's EPP."""

    name: str

    async def request(self, headers: Mapping[str, str], body: bytes, parsed: Any) -> RequestVerdict: ...

    async def response_headers(self, request_id: str, headers: Mapping[str, str]) -> dict[str, str]: ...

    async def completion(self, request_id: str, response_size: int) -> None: ...


class InProcessTransport:
    """Direct calls to an EPP in this event loop; unavailable once it unregisters (it stopped listening)."""

    name = "in-process"

    def __init__(self, host: str, port: int, processor: ExternalProcessor) -> None:
        self.host, self.port, self.processor = host, port, processor

    def _live(self) -> ExternalProcessor:
        if extproc.lookup(self.host, self.port) is not self.processor:
            raise ExtProcUnavailableError(f"endpoint picker at {self.host}:{self.port} stopped")
        return self.processor

    async def request(self, headers: Mapping[str, str], body: bytes, parsed: Any) -> RequestVerdict:
        processor = self._live()
        try:
            return processor.process_request(headers, parsed, len(body))
        except Exception as exc:  # what an EPP answering 500 looks like over HTTP
            raise ExtProcUnavailableError(f"endpoint picker failed: {exc!r}") from exc

    async def response_headers(self, request_id: str, headers: Mapping[str, str]) -> dict[str, str]:
        try:
            return self._live().process_response(request_id, headers)
        except Exception as exc:
            raise ExtProcUnavailableError(f"endpoint picker response phase failed: {exc!r}") from exc

    async def completion(self, request_id: str, response_size: int) -> None:
        try:
            self._live().process_completion(request_id, response_size)
        except Exception as exc:
            raise ExtProcUnavailableError(f"endpoint picker completion phase failed: {exc!r}") from exc


class HttpTransport:
    """The EPP's HTTP stand-in for the gRPC stream (``/extproc/request``, ``/response``, ``/complete``)."""

    name = "http"

    def __init__(self, client: httpx.AsyncClient, host: str, port: int, timeout_s: float) -> None:
        self.client = client
        self.url = f"http://{host}:{port}/extproc"
        self.timeout_s = timeout_s

    async def _post(self, phase: str, content: bytes) -> httpx.Response:
        try:
            return await self.client.post(f"{self.url}/{phase}", content=content,
                                          headers={"content-type": "application/json"}, timeout=self.timeout_s)
        except httpx.HTTPError as exc:
            raise ExtProcUnavailableError(f"endpoint picker at {self.url} unreachable: {exc!r}") from exc

    async def request(self, headers: Mapping[str, str], body: bytes, parsed: Any) -> RequestVerdict:
        payload = b"".join((b'{"headers":', json.dumps(dict(headers)).encode(), b',"body":', body or b"null",
                            b',"body_size":', str(len(body)).encode(), b"}"))
        reply = await self._post("request", payload)
        try:
            answer = reply.json()
        except ValueError as exc:
            raise ExtProcUnavailableError(f"endpoint picker answered {reply.status_code} without JSON") from exc
        if reply.headers.get(IMMEDIATE_RESPONSE_HEADER) == "true":
            return RequestVerdict({}, [], "", reply.status_code, answer)
        if reply.status_code != 200 or not isinstance(answer, dict):
            raise ExtProcUnavailableError(f"endpoint picker answered {reply.status_code}")
        return RequestVerdict(dict(answer.get("set_headers") or {}), list(answer.get("remove_headers") or []),
                              str(answer.get("request_id") or ""))

    async def response_headers(self, request_id: str, headers: Mapping[str, str]) -> dict[str, str]:
        reply = await self._post("response", json.dumps({"request_id": request_id, "headers": dict(headers)}).encode())
        try:
            return dict(reply.json().get("set_headers") or {})
        except (ValueError, AttributeError) as exc:
            raise ExtProcUnavailableError(f"endpoint picker response phase answered {reply.status_code}") from exc

    async def completion(self, request_id: str, response_size: int) -> None:
        await self._post("complete", json.dumps({"request_id": request_id, "response_size": response_size}).encode())


class ExtProcClients:
    """One transport per (pool, EPP address), chosen on first use and kept while the EPP Service's Ready
    endpoints stay the same; dropped when it becomes unavailable."""

    def __init__(self, client: httpx.AsyncClient, timeout_s: float) -> None:
        self.client = client
        self.timeout_s = timeout_s
        self._chosen: dict[tuple[str, str, str, int], tuple[list[tuple[str, int]], ExtProcTransport]] = {}

    def get(self, pool_key: tuple[str, str], host: str, port: int,
            endpoints: list[tuple[str, int]]) -> ExtProcTransport:
        """The pool's transport: in-process when its EPP is registered in this loop at the Service address or
        one of the Service's Ready endpoints (where kube-proxy would forward), else HTTP to the Service."""
        key = (*pool_key, host, port)
        chosen = self._chosen.get(key)
        if chosen is None or chosen[0] != endpoints:
            chosen = (endpoints, self._choose(host, port, endpoints))
            self._chosen[key] = chosen
        return chosen[1]

    def _choose(self, host: str, port: int, endpoints: list[tuple[str, int]]) -> ExtProcTransport:
        for ip, target in [(host, port), *endpoints]:
            processor = extproc.lookup(ip, target)
            if processor is not None:
                return InProcessTransport(ip, target, processor)
        return HttpTransport(self.client, host, port, self.timeout_s)

    def forget(self, pool_key: tuple[str, str], host: str, port: int) -> None:
        """Choose again next time (the EPP stopped, restarted, or moved)."""
        self._chosen.pop((*pool_key, host, port), None)
