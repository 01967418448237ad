"""The Gateway proxy: HTTPRoute rules → InferencePool (asking its EPP where to go) or → Service.

Like Envoy with the GIE ext-proc filter: for an InferencePool backend the request headers and JSON
body go to the EPP (``/extproc/request`` on the EPP Service's cluster IP, or directly when the EPP runs
in this event loop: ``llmd_lab.sim.extproc``), the returned headers are set (``x-gateway-destination-
endpoint`` picks the pod), and the response is streamed back as it arrives (``upstream``: keep-alive
connections, one write per socket read).
If the EPP cannot be reached, the pool's ``failureMode`` decides: FailOpen → any Ready pod, FailClose
→ 503. Service backends go to the Service's cluster IP (the lab's kube-proxy spreads them).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import random
import uuid
from dataclasses import dataclass, field

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from llmd_lab.sim.epp.httpserver import RunningServer, start_server
from llmd_lab.sim.extproc import IMMEDIATE_RESPONSE_HEADER, ExternalProcessor
from llmd_lab.sim.extproc import lookup as lookup_processor
from llmd_lab.sim.gateway.resources import PoolTarget, ResourceCache
from llmd_lab.sim.gateway.routing import match_route
from llmd_lab.sim.gateway.upstream import UpstreamError, UpstreamPool, UpstreamResponse
from llmd_lab.sim.source import ResourceSource

DESTINATION_HEADER = "x-gateway-destination-endpoint"
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
              "transfer-encoding", "upgrade", "host", "content-length"}


def _error(status: int, message: str, kind: str) -> JSONResponse:
    return JSONResponse({"error": {"code": status, "type": kind, "message": message}}, status_code=status)


@dataclass
class GatewayStats:
    requests: int = 0
    epp_failures: int = 0
    fail_open: int = 0
    upstream_errors: int = 0
    extproc_in_process: int = 0  # EPP calls made directly (llmd_lab.sim.extproc) ...
    extproc_http: int = 0  # ... and over HTTP
    by_backend: dict[str, int] = field(default_factory=dict)


class Gateway:
    """One Gateway (default ``openshift-ingress/openshift-ai-inference``) listening on ``host:port``."""

    def __init__(self, source: ResourceSource, *, host: str = "127.0.0.1", port: int = 0,
                 name: str = "openshift-ai-inference", namespace: str = "openshift-ingress",
                 log: logging.Logger | None = None, epp_timeout_s: float = 5.0, max_connections: int = 1024,
                 seed: int | None = None) -> None:
        self.name = name
        self.namespace = namespace
        self.host = host
        self.port = port
        self.log = log or logging.getLogger("llmd_lab.sim.gateway")
        self.cache = ResourceCache(source, self.log)
        self.epp_timeout_s = epp_timeout_s
        self.rng = random.Random(seed)
        self.stats = GatewayStats()
        self._max_connections = max_connections
        self._client: httpx.AsyncClient | None = None
        self._upstreams: dict[tuple[str, int], UpstreamPool] = {}
        self._server: RunningServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://{self.host}:{self._server.port}"

    async def start(self) -> None:
        # for the EPP over HTTP, when it does not run in this process (see llmd_lab.sim.extproc)
        self._client = httpx.AsyncClient(limits=httpx.Limits(max_connections=256, max_keepalive_connections=64),
                                         timeout=httpx.Timeout(30.0, read=None, pool=30.0))
        await self.cache.start()
        await asyncio.wait_for(self.cache.synced.wait(), timeout=30)
        async def app(scope, receive, send) -> None:  # a plain coroutine function: uvicorn sees ASGI 3
            await self._asgi(scope, receive, send)

        self._server = await start_server(app, self.host, self.port, name="gateway")
        self.log.info("gateway %s/%s listening on %s", self.namespace, self.name, self.url)

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop()
        await self.cache.stop()
        if self._client is not None:
            await self._client.aclose()
        for pool in self._upstreams.values():
            await pool.aclose()

    def _local_processor(self, pool: PoolTarget) -> ExternalProcessor | None:
        """The pool's EPP when it runs in this process and event loop (``sim.extproc``): called directly
        instead of over HTTP. Looked up at the Service's cluster IP (the testbed binds the EPP there), then
        at the Ready endpoints behind it, the ones kube-proxy would forward the connection to."""
        if pool.epp_host is None:
            return None
        processor = lookup_processor(pool.epp_host, pool.epp_port)
        if processor is None and pool.epp_service is not None:
            for ip, port in self.cache.service_endpoints(pool.epp_service, pool.epp_port):
                processor = lookup_processor(ip, port)
                if processor is not None:
                    break
        return processor

    def _upstream(self, host: str, port: int) -> UpstreamPool:
        """One keep-alive connection pool per upstream host:port."""
        pool = self._upstreams.get((host, port))
        if pool is None:
            pool = UpstreamPool(host, port, max_connections=self._max_connections)
            self._upstreams[(host, port)] = pool
        return pool

    # -- request path ---------------------------------------------------------------------------------------
    async def _asgi(self, scope, receive, send) -> None:
        """Every path and method goes to :meth:`handle` (no router or middleware stack: Envoy has neither)."""
        if scope["type"] != "http":
            return
        try:
            response = await self.handle(Request(scope, receive))
        except Exception as exc:
            self.log.exception("gateway failed on %s %s", scope.get("method"), scope.get("path"))
            response = _error(500, f"gateway internal error: {type(exc).__name__}", "Internal")
        await response(scope, receive, send)

    async def handle(self, request: Request) -> Response:
        self.stats.requests += 1
        scope = request.scope  # read the ASGI scope directly: building request.url costs more than routing
        path = scope["path"]
        matched = match_route(self.cache.routes(), path, self.name, self.namespace)
        if matched is None:
            return _error(404, f"no HTTPRoute attached to gateway {self.namespace}/{self.name} matches path {path!r}",
                          "NotFound")
        backend = matched.backend
        route_ns = matched.route["metadata"].get("namespace", "")
        ns = backend.get("namespace", route_ns)
        target_path = matched.rewritten_path
        query = scope.get("query_string") or b""
        if query:
            target_path += "?" + query.decode("latin-1")
        headers = {}
        for raw_name, raw_value in scope["headers"]:
            name = raw_name.decode("latin-1").lower()
            if name not in HOP_BY_HOP:
                headers[name] = raw_value.decode("latin-1")
        headers.setdefault("x-request-id", str(uuid.uuid4()))
        headers["x-envoy-original-path"] = path
        client_host = scope["client"][0] if scope.get("client") else ""
        headers["x-forwarded-for"] = ", ".join(filter(None, [headers.get("x-forwarded-for"), client_host]))
        body = await request.body()
        kind = backend.get("kind", "Service")
        key = f"{kind}/{ns}/{backend.get('name')}"
        self.stats.by_backend[key] = self.stats.by_backend.get(key, 0) + 1
        if kind == "InferencePool":
            return await self._to_pool(request, backend, ns, target_path, headers, body)
        if kind == "Service" and backend.get("group", "") == "":
            svc = self.cache.service(ns, backend.get("name", ""))
            cluster_ip = (svc or {}).get("spec", {}).get("clusterIP")
            if svc is None or not cluster_ip or cluster_ip == "None":
                return _error(503, f"backend Service {ns}/{backend.get('name')} not found or has no cluster IP",
                              "ServiceUnavailable")
            port = backend.get("port") or ((svc["spec"].get("ports") or [{}])[0].get("port"))
            return await self._forward(request.method, cluster_ip, int(port), target_path, headers, body)
        return _error(500, f"unsupported backendRef kind {kind!r}", "Internal")

    async def _to_pool(self, request: Request, backend: dict, ns: str, target_path: str, headers: dict[str, str],
                       body: bytes) -> Response:
        group = backend.get("group", "inference.networking.x-k8s.io")
        pool = self.cache.pool_target(group, ns, backend.get("name", ""))
        if pool is None:
            return _error(503, f"InferencePool {ns}/{backend.get('name')} not found", "ServiceUnavailable")
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            return _error(400, "request body is not valid JSON", "BadRequest")
        decision: dict | None = None
        epp_url = f"http://{pool.epp_host}:{pool.epp_port}" if pool.epp_host else None
        processor = self._local_processor(pool)
        if processor is not None:
            self.stats.extproc_in_process += 1
            try:
                verdict = processor.process_request(headers, parsed, len(body))
            except Exception as exc:  # what an EPP answering 500 looks like over HTTP
                self.stats.epp_failures += 1
                self.log.warning("endpoint picker for pool %s/%s failed: %r", ns, pool.name, exc)
            else:
                if verdict.immediate_status is not None:
                    return JSONResponse(verdict.immediate_body, status_code=verdict.immediate_status)
                decision = verdict.to_json()
        elif epp_url is not None:
            assert self._client is not None
            self.stats.extproc_http += 1
            payload = b"".join((b'{"headers":', json.dumps(headers).encode(), b',"body":', body or b"null",
                                b',"body_size":', str(len(body)).encode(), b"}"))
            try:
                reply = await self._client.post(f"{epp_url}/extproc/request", content=payload,
                                                headers={"content-type": "application/json"},
                                                timeout=self.epp_timeout_s)
                if reply.headers.get(IMMEDIATE_RESPONSE_HEADER) == "true":
                    return Response(reply.content, status_code=reply.status_code, media_type="application/json")
                reply.raise_for_status()
                decision = reply.json()
            except (httpx.HTTPError, ValueError) as exc:
                self.stats.epp_failures += 1
                self.log.warning("endpoint picker for pool %s/%s unreachable: %s", ns, pool.name, exc)
        if decision is None:
            why = pool.problem or f"endpoint picker at {epp_url} is not answering"
            if pool.failure_mode != "FailOpen":
                return _error(503, f"InferencePool {ns}/{pool.name}: {why} and failureMode is FailClose",
                              "ServiceUnavailable")
            pods = self.cache.ready_pods(ns, pool.selector)
            if not pods or not pool.target_port:
                return _error(503, f"InferencePool {ns}/{pool.name}: {why} (FailOpen) and no Ready pod to fall back "
                              "to", "ServiceUnavailable")
            self.stats.fail_open += 1
            pod = self.rng.choice(pods)
            destination = f"{pod['status']['podIP']}:{pool.target_port}"
            headers[DESTINATION_HEADER] = destination
        else:
            for name in decision.get("remove_headers") or []:
                headers.pop(name, None)
                headers.pop(name.lower(), None)
            headers.update(decision.get("set_headers") or {})
            destination = headers[DESTINATION_HEADER].split(",")[0].strip()
        on_headers = None
        if decision is not None:
            rid = decision.get("request_id") or headers.get("x-request-id", "")
            if processor is not None:
                def on_headers(resp_headers: dict[str, str]) -> dict[str, str]:
                    try:
                        return processor.process_response(rid, resp_headers)
                    except Exception as exc:
                        self.log.warning("endpoint picker response phase failed: %r", exc)
                        return {}
            elif epp_url is not None:
                client = self._client

                async def on_headers(resp_headers: dict[str, str]) -> dict[str, str]:
                    try:
                        assert client is not None
                        r = await client.post(f"{epp_url}/extproc/response",
                                              json={"request_id": rid, "headers": resp_headers}, timeout=2.0)
                        return dict(r.json().get("set_headers") or {})
                    except (httpx.HTTPError, ValueError):
                        return {}

        host, _, port = destination.rpartition(":")
        if not host or not port.isdigit():
            return _error(503, f"endpoint picker chose an invalid destination {destination!r}", "ServiceUnavailable")
        return await self._forward(request.method, host.strip("[]"), int(port), target_path, headers, body,
                                   on_headers)

    async def _forward(self, method: str, host: str, port: int, target: str, headers: dict[str, str], body: bytes,
                       on_headers=None) -> Response:
        pool = self._upstream(host, port)
        out = [(k, v) for k, v in headers.items()]
        out.append(("host", f"{host}:{port}"))
        if body or method not in ("GET", "HEAD", "DELETE", "OPTIONS"):
            out.append(("content-length", str(len(body))))
        try:
            response = await pool.request(method, target, out, body)
        except TimeoutError:
            return _error(503, "gateway overloaded: no upstream connection became free in time", "ServiceUnavailable")
        except UpstreamError as exc:
            self.stats.upstream_errors += 1
            return _error(503, f"upstream connect error or disconnect/reset before headers (http://{host}:{port}"
                          f"{target}: {exc})", "ServiceUnavailable")
        received: dict[str, str] = {}
        for k, v in response.headers:
            received[k] = f"{received[k]}, {v}" if k in received else v
        out_headers = {k: v for k, v in received.items() if k not in HOP_BY_HOP}
        # echo the request id (Envoy's always_set_request_id_in_response) so clients can fetch the EPP's trace
        out_headers.setdefault("x-request-id", headers.get("x-request-id", ""))
        if on_headers is not None:
            added = on_headers(received)
            out_headers.update(await added if inspect.isawaitable(added) else added)

        return _RelayResponse(response, out_headers, self, f"{host}:{port}")


class _RelayResponse(Response):
    """Streams an upstream body to the client as it arrives, in the request's own task.

    A pod that breaks mid-stream ends the client's stream (no hang); a client that goes away cuts the
    upstream connection, so the pod aborts the request, as it would behind Envoy. (Starlette's
    StreamingResponse does the same with an anyio task group per response, which costs more.)"""

    def __init__(self, upstream: UpstreamResponse, headers: dict[str, str], gateway: Gateway, where: str) -> None:
        self.status_code = upstream.status_code
        self.background = None
        self.init_headers(headers)
        self.upstream = upstream
        self.gateway = gateway
        self.where = where

    async def __call__(self, scope, receive, send) -> None:
        upstream = self.upstream
        finished = False

        async def watch_client() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            if not finished:
                upstream.abort()

        watcher = asyncio.get_running_loop().create_task(watch_client())
        try:
            await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
            try:
                async for chunk in upstream.chunks():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            except UpstreamError as exc:  # the pod went away mid-stream: end the stream, do not hang
                if not watcher.done():
                    self.gateway.stats.upstream_errors += 1
                    self.gateway.log.warning("upstream %s failed mid-stream: %s", self.where, exc)
            finished = True
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            finished = True
            watcher.cancel()
            await upstream.aclose()
