"""The Gateway proxy: HTTPRoute rules → InferencePool (asking its EPP where to go) or → Service.

Like Envoy with the GIE ext-proc filter. Per request: the route is matched once; the filters
(``filters``: auth, known-issue faults) see the request and its route and may answer it; the body is read
(bounded: 413 beyond ``max_request_body``); for an InferencePool backend the headers and JSON body go to
the EPP over the pool's ext-proc transport (``extproc_client``: in-process or HTTP, chosen once per pool),
the returned headers are set (``x-gateway-destination-endpoint`` picks the pod), the response headers go
back to the EPP, and the response is streamed to the client as it arrives (``upstream``: keep-alive
connections, one write per socket read); at its end the EPP's completion phase records the duration.
Upstreams speak TLS where KServe's Istio DestinationRules originate it (pool pods; Service ports with
appProtocol https), without verifying the self-signed certificate, as those rules say.
If the EPP cannot be reached, the pool's ``failureMode`` decides: FailOpen → any Ready pod, FailClose
→ 503. A pod that breaks off mid-stream resets the client's stream (no clean end), as Envoy does.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx
from starlette.responses import JSONResponse, PlainTextResponse, Response

from llmd_lab.sim.extproc import RequestVerdict
from llmd_lab.sim.gateway.extproc_client import ExtProcClients, ExtProcTransport, ExtProcUnavailableError
from llmd_lab.sim.gateway.filters import FilterRequest, RequestFilter
from llmd_lab.sim.gateway.resources import PoolTarget, ResourceCache
from llmd_lab.sim.gateway.routing import RouteMatch, match_route
from llmd_lab.sim.gateway.upstream import UpstreamError, UpstreamPool, UpstreamResponse
from llmd_lab.sim.headers import NOT_FORWARDED
from llmd_lab.sim.http import RunningServer, start_server
from llmd_lab.sim.source import ResourceSource
from llmd_lab.sim.tls import insecure_client_context

DESTINATION_HEADER = "x-gateway-destination-endpoint"
# Envoy buffers a request body for ext-proc up to the listener's buffer limit and answers 413 beyond it; the
# exact limit on OpenShift's gateway is unconfirmed (docs/gateway.md), 4 MiB is gRPC's default message size
MAX_REQUEST_BODY = 4 << 20
# Envoy closes an idle downstream connection after the HTTP connection manager's idle_timeout, 1 hour when not
# set (envoyproxy.io docs, "How do I configure timeouts?"; OpenShift's gateway setting unconfirmed). uvicorn's
# 30 s made clients that reused a connection as it closed see their request cut (ReadError) under load.
DOWNSTREAM_IDLE_TIMEOUT_S = 3600.0


def _error(status: int, message: str, kind: str) -> JSONResponse:
    return JSONResponse({"error": {"code": status, "type": kind, "message": message}}, status_code=status)


class BodyTooLargeError(Exception):
    """The client sent more than the gateway buffers."""


class UpstreamResetError(Exception):
    """Raised to make uvicorn cut the client connection mid-body, as Envoy resets a downstream stream when
    its upstream breaks: the client sees an incomplete body, never a clean end (uvicorn closes the
    connection without the final chunk). Filtered out of uvicorn's error log (it is expected)."""


class _DropUpstreamReset(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], UpstreamResetError))


logging.getLogger("uvicorn.error").addFilter(_DropUpstreamReset())


@dataclass
class GatewayStats:
    requests: int = 0
    epp_failures: int = 0
    fail_open: int = 0
    upstream_errors: int = 0
    extproc_in_process: int = 0  # EPP calls made directly (llmd_lab.sim.extproc) ...
    extproc_http: int = 0  # ... and over HTTP
    by_backend: dict[str, int] = field(default_factory=dict)


@dataclass
class _Upstream:
    """Where one request goes, and the EPP phases still to run for it."""

    host: str
    port: int
    tls: bool
    transport: ExtProcTransport | None = None
    request_id: str = ""


class Gateway:
    """One Gateway (default ``openshift-ingress/openshift-ai-inference``) listening on ``host:port``."""

    def __init__(self, source: ResourceSource, *, host: str = "127.0.0.1", port: int = 0,
                 name: str = "openshift-ai-inference", namespace: str = "openshift-ingress",
                 log: logging.Logger | None = None, epp_timeout_s: float = 5.0, max_connections: int = 1024,
                 seed: int | None = None, max_request_body: int = MAX_REQUEST_BODY, upstream_tls: bool = False,
                 ) -> None:
        self.name = name
        self.namespace = namespace
        self.host = host
        self.port = port
        self.log = log or logging.getLogger("llmd_lab.sim.gateway")
        self.cache = ResourceCache(source, self.log)
        self.epp_timeout_s = epp_timeout_s
        self.max_request_body = max_request_body
        # TLS origination as KServe's DestinationRules configure it (pool pods, appProtocol https Services).
        # The lab's gateway and the mini cluster pass True (their pods serve HTTPS); False only for plain-HTTP
        # test backends.
        self.upstream_tls = upstream_tls
        self.rng = random.Random(seed)
        self.stats = GatewayStats()
        self.filters: list[RequestFilter] = []
        self._max_connections = max_connections
        self._client: httpx.AsyncClient | None = None
        self._extproc: ExtProcClients | None = None
        self._upstreams: dict[tuple[str, int, bool], UpstreamPool] = {}
        self._tls = insecure_client_context()
        self._server: RunningServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://{self.host}:{self._server.port}"

    @property
    def upstream_connections_opened(self) -> int:
        """Upstream connections made so far (each one a handshake; kept-alive ones are reused)."""
        return sum(pool.opened for pool in self._upstreams.values())

    def add_filter(self, request_filter: RequestFilter) -> None:
        """Run ``request_filter`` on every routed request (in the order added); watch what it reads."""
        self.cache.watch_also(getattr(request_filter, "kinds", ()))
        self.filters.append(request_filter)

    async def start(self) -> None:
        # for the EPP over HTTP, when it does not run in this process (see llmd_lab.sim.extproc)
        self._client = httpx.AsyncClient(limits=httpx.Limits(max_connections=256, max_keepalive_connections=64),
                                         timeout=httpx.Timeout(30.0, read=None, pool=30.0))
        self._extproc = ExtProcClients(self._client, self.epp_timeout_s)
        await self.cache.start()
        await asyncio.wait_for(self.cache.synced.wait(), timeout=30)

        async def app(scope, receive, send) -> None:  # a plain coroutine function: uvicorn sees ASGI 3
            await self._asgi(scope, receive, send)

        self._server = await start_server(app, self.host, self.port, name="gateway",
                                          keep_alive_s=DOWNSTREAM_IDLE_TIMEOUT_S)
        self.log.info("gateway %s/%s listening on %s", self.namespace, self.name, self.url)

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop()
        await self.cache.stop()
        if self._client is not None:
            await self._client.aclose()
        for pool in self._upstreams.values():
            await pool.aclose()

    def _upstream(self, host: str, port: int, tls: bool) -> UpstreamPool:
        """One keep-alive connection pool per upstream host:port (and TLS or not)."""
        pool = self._upstreams.get((host, port, tls))
        if pool is None:
            pool = UpstreamPool(host, port, max_connections=self._max_connections, ssl=self._tls if tls else None)
            self._upstreams[(host, port, tls)] = pool
        return pool

    # -- request path ---------------------------------------------------------------------------------------
    async def _asgi(self, scope, receive, send) -> None:
        """Every path and method goes to :meth:`handle` (no router or middleware stack: Envoy has neither)."""
        if scope["type"] != "http":
            return
        try:
            response = await self.handle(scope, receive)
        except Exception as exc:
            self.log.exception("gateway failed on %s %s", scope.get("method"), scope.get("path"))
            response = _error(500, f"gateway internal error: {type(exc).__name__}", "Internal")
        await response(scope, receive, send)

    async def _body(self, receive) -> bytes:
        parts: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_request_body:
                raise BodyTooLargeError
            parts.append(chunk)
            if not message.get("more_body", False):
                break
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def _headers(self, scope) -> dict[str, str]:
        headers = {}
        for raw_name, raw_value in scope["headers"]:
            name = raw_name.decode("latin-1").lower()
            if name not in NOT_FORWARDED:
                headers[name] = raw_value.decode("latin-1")
        headers.setdefault("x-request-id", str(uuid.uuid4()))
        headers["x-envoy-original-path"] = scope["path"]
        client_host = scope["client"][0] if scope.get("client") else ""
        headers["x-forwarded-for"] = ", ".join(filter(None, [headers.get("x-forwarded-for"), client_host]))
        return headers

    async def handle(self, scope, receive) -> Response:
        """Route once, run the filters, read the body (bounded), then go to the pool or the Service."""
        self.stats.requests += 1
        path = scope["path"]
        if any(c in path for c in "\r\n\0"):
            return PlainTextResponse("Bad Request", status_code=400)  # Envoy refuses control bytes in :path
        matched = match_route(self.cache.routes(), path, self.name, self.namespace)
        if matched is None:
            return _error(404, f"no HTTPRoute attached to gateway {self.namespace}/{self.name} matches path {path!r}",
                          "NotFound")
        headers = self._headers(scope)
        if self.filters:
            view = FilterRequest(headers, matched)
            for request_filter in self.filters:
                answer = request_filter(view)
                if answer is not None:
                    return answer
        try:
            body = await self._body(receive)
        except BodyTooLargeError:
            return PlainTextResponse("Payload Too Large", status_code=413)
        backend = matched.backend
        kind = backend.get("kind", "Service")
        ns = backend.get("namespace", matched.route["metadata"].get("namespace", ""))
        key = f"{kind}/{ns}/{backend.get('name')}"
        self.stats.by_backend[key] = self.stats.by_backend.get(key, 0) + 1
        target = matched.rewritten_path
        query = scope.get("query_string") or b""
        if query:
            target += "?" + query.decode("latin-1")
        if kind == "InferencePool":
            return await self._to_pool(scope["method"], matched, ns, target, headers, body)
        if kind == "Service" and backend.get("group", "") == "":
            return await self._to_service(scope["method"], backend, ns, target, headers, body)
        return _error(500, f"unsupported backendRef kind {kind!r}", "Internal")

    async def _to_service(self, method: str, backend: dict, ns: str, target: str, headers: dict[str, str],
                          body: bytes) -> Response:
        svc = self.cache.service(ns, backend.get("name", ""))
        cluster_ip = (svc or {}).get("spec", {}).get("clusterIP")
        if svc is None or not cluster_ip or cluster_ip == "None":
            return _error(503, f"backend Service {ns}/{backend.get('name')} not found or has no cluster IP",
                          "ServiceUnavailable")
        ports = svc["spec"].get("ports") or [{}]
        port = backend.get("port") or ports[0].get("port")
        svc_port = next((p for p in ports if p.get("port") == port), {})
        # KServe's workload Service port says appProtocol https and its DestinationRule originates TLS
        tls = self.upstream_tls and svc_port.get("appProtocol") == "https"
        return await self._forward(method, _Upstream(cluster_ip, int(port), tls), target, headers, body)

    async def _to_pool(self, method: str, matched: RouteMatch, ns: str, target: str, headers: dict[str, str],
                       body: bytes) -> Response:
        backend = matched.backend
        pool = self.cache.pool_target(backend.get("group", "inference.networking.x-k8s.io"), ns,
                                      backend.get("name", ""))
        if pool is None:
            return _error(503, f"InferencePool {ns}/{backend.get('name')} not found", "ServiceUnavailable")
        try:
            parsed = json.loads(body) if body else None
        except (ValueError, RecursionError):  # the EPP's JSON parse fails: BadRequest (400)
            return _error(400, "request body is not valid JSON", "BadRequest")
        verdict, transport = await self._ask_epp(pool, headers, body, parsed)
        if verdict is not None and verdict.immediate_status is not None:
            return JSONResponse(verdict.immediate_body, status_code=verdict.immediate_status)
        if verdict is None:
            destination = self._fail_open(pool)
            if isinstance(destination, Response):
                return destination
            transport = None
        else:
            for name in verdict.remove_headers:
                headers.pop(name.lower(), None)
            headers.update(verdict.set_headers)
            destination = headers[DESTINATION_HEADER].split(",")[0].strip()
        host, _, port = destination.rpartition(":")
        if not host or not port.isdigit():
            return _error(503, f"endpoint picker chose an invalid destination {destination!r}", "ServiceUnavailable")
        rid = (verdict.request_id if verdict is not None else "") or headers.get("x-request-id", "")
        # KServe's DestinationRule for the pool's shadow Service: TLS SIMPLE, insecureSkipVerify
        upstream = _Upstream(host.strip("[]"), int(port), self.upstream_tls, transport, rid)
        return await self._forward(method, upstream, target, headers, body)

    async def _ask_epp(self, pool: PoolTarget, headers: dict[str, str], body: bytes, parsed: object,
                       ) -> tuple[RequestVerdict | None, ExtProcTransport | None]:
        """The request phase, over the pool's transport; (None, None) when the EPP cannot be reached."""
        if pool.epp_host is None:
            return None, None
        assert self._extproc is not None
        endpoints = self.cache.service_endpoints(pool.epp_service, pool.epp_port) if pool.epp_service else []
        transport = self._extproc.get((pool.namespace, pool.name), pool.epp_host, pool.epp_port, endpoints)
        if transport.name == "http":
            self.stats.extproc_http += 1
        else:
            self.stats.extproc_in_process += 1
        try:
            return await transport.request(headers, body, parsed), transport
        except ExtProcUnavailableError as exc:
            self.stats.epp_failures += 1
            self._extproc.forget((pool.namespace, pool.name), pool.epp_host, pool.epp_port)
            self.log.warning("endpoint picker for pool %s/%s: %s", pool.namespace, pool.name, exc)
            return None, None

    def _fail_open(self, pool: PoolTarget) -> str | Response:
        """No decision from the EPP: FailClose → 503; FailOpen → any Ready pod of the pool."""
        why = pool.problem or f"endpoint picker at {pool.epp_host}:{pool.epp_port} is not answering"
        where = f"InferencePool {pool.namespace}/{pool.name}"
        if pool.failure_mode != "FailOpen":
            return _error(503, f"{where}: {why} and failureMode is FailClose", "ServiceUnavailable")
        pods = self.cache.ready_pods(pool.namespace, pool.selector)
        if not pods or not pool.target_port:
            return _error(503, f"{where}: {why} (FailOpen) and no Ready pod to fall back to", "ServiceUnavailable")
        self.stats.fail_open += 1
        return f"{self.rng.choice(pods)['status']['podIP']}:{pool.target_port}"

    async def _forward(self, method: str, upstream: _Upstream, target: str, headers: dict[str, str],
                       body: bytes) -> Response:
        out = list(headers.items())
        out.append(("host", f"{upstream.host}:{upstream.port}"))
        if body or method not in ("GET", "HEAD", "DELETE", "OPTIONS"):
            out.append(("content-length", str(len(body))))
        where = f"{'https' if upstream.tls else 'http'}://{upstream.host}:{upstream.port}"
        try:
            response = await self._upstream(upstream.host, upstream.port, upstream.tls).request(method, target, out,
                                                                                                body)
        except TimeoutError:
            return _error(503, "gateway overloaded: no upstream connection became free in time", "ServiceUnavailable")
        except UpstreamError as exc:
            self.stats.upstream_errors += 1
            await self._complete(upstream, 0)
            return _error(503, f"upstream connect error or disconnect/reset before headers ({where}{target}: {exc})",
                          "ServiceUnavailable")
        received: dict[str, str] = {}
        for k, v in response.headers:
            received[k] = f"{received[k]}, {v}" if k in received else v
        out_headers = {k: v for k, v in received.items() if k not in NOT_FORWARDED}
        # echo the request id (Envoy's always_set_request_id_in_response) so clients can fetch the EPP's trace
        out_headers.setdefault("x-request-id", headers.get("x-request-id", ""))
        if upstream.transport is not None:
            try:
                out_headers.update(await upstream.transport.response_headers(upstream.request_id, received))
            except ExtProcUnavailableError as exc:
                self.log.warning("endpoint picker response phase: %s", exc)
        return _RelayResponse(response, out_headers, self, where, lambda size: self._complete(upstream, size))

    async def _complete(self, upstream: _Upstream, size: int) -> None:
        """The completion phase: the EPP records the request's duration (end-of-stream or broken off)."""
        if upstream.transport is None:
            return
        try:
            await upstream.transport.completion(upstream.request_id, size)
        except ExtProcUnavailableError as exc:
            self.log.warning("endpoint picker completion phase: %s", exc)


class _RelayResponse(Response):
    """Streams an upstream body to the client as it arrives, in the request's own task.

    A pod that breaks mid-stream ends the client's stream (no hang); a client that goes away cuts the
    upstream connection, so the pod aborts the request, as it would behind Envoy. (Starlette's
    StreamingResponse does the same with an anyio task group per response, which costs more.)"""

    def __init__(self, upstream: UpstreamResponse, headers: dict[str, str], gateway: Gateway, where: str,
                 on_complete: Callable[[int], Awaitable[None]]) -> None:
        self.status_code = upstream.status_code
        self.background = None
        self.init_headers(headers)
        self.upstream = upstream
        self.gateway = gateway
        self.where = where
        self.on_complete = on_complete

    async def __call__(self, scope, receive, send) -> None:
        upstream = self.upstream
        finished = False

        async def watch_client() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            if not finished:
                upstream.abort()

        watcher = asyncio.get_running_loop().create_task(watch_client())
        size = 0
        try:
            await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
            try:
                async for chunk in upstream.chunks():
                    size += len(chunk)
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            except UpstreamError as exc:  # the pod went away mid-stream: reset the client's stream, as Envoy does
                if not watcher.done():
                    self.gateway.stats.upstream_errors += 1
                    self.gateway.log.warning("upstream %s failed mid-stream: %s", self.where, exc)
                raise UpstreamResetError(str(exc)) from exc
            finished = True
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            finished = True
            watcher.cancel()
            await upstream.aclose()
            await self.on_complete(size)
