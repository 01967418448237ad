"""``pods/{name[:port]}/proxy/{path}`` and ``services/{[scheme:]name[:port]}/proxy/{path}``.

Forwards the HTTP request (streaming both ways) to the pod's or the Service's address, over TLS when the
name carries kube-apiserver's ``https:`` scheme prefix (without verifying the backend's certificate, as
kube-apiserver's proxy transport does not). Plain HTTP to a TLS port fails as it does through kube-apiserver:
the backend closes the connection (``EOF``). The client's bearer token is never forwarded.
"""

from __future__ import annotations

import inspect
from typing import Any

import httpx
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from llmd_lab.lab.apiserver import errors
from llmd_lab.lab.apiserver.hooks import ApiHooks
from llmd_lab.sim.headers import HOP_BY_HOP, forwardable

# kube-apiserver's proxy is Go's httputil.ReverseProxy (apimachinery pkg/util/proxy/upgradeaware.go): it drops
# the connection-specific fields; Host comes from the target, and the Authorization header never reaches it
# (apiserver pkg/endpoints/filters/authentication.go deletes it once the request is authenticated)
NOT_FORWARDED = HOP_BY_HOP | {"host", "authorization"}


def split_name(value: str) -> tuple[str, str, str]:
    """``https:name:port`` / ``name:port`` / ``name`` → (scheme, name, port)."""
    parts = value.split(":")
    if len(parts) == 3:
        return parts[0], parts[1], parts[2]
    if len(parts) == 2:
        return "", parts[0], parts[1]
    if len(parts) == 1:
        return "", parts[0], ""
    raise errors.bad_request(f"invalid proxy target {value!r}: use name, name:port or scheme:name:port")


def pod_port(pod: dict, port: str) -> int:
    if not port:
        return 80
    if port.isdigit():
        number = int(port)
        if not 1 <= number <= 65535:  # what dialing podIP:port answers through kube-apiserver's proxy
            raise errors.ApiError(503, "ServiceUnavailable",
                                  f"error trying to reach service: dial tcp: address {port}: invalid port")
        return number
    for c in (pod.get("spec") or {}).get("containers") or []:
        for p in c.get("ports") or []:
            if p.get("name") == port:
                return int(p["containerPort"])
    raise errors.bad_request(f'pod "{pod["metadata"]["name"]}" has no container port named {port!r}')


def service_port(svc: dict, port: str) -> int:
    ports = (svc.get("spec") or {}).get("ports") or []
    name = svc["metadata"]["name"]
    for p in ports:
        if (port.isdigit() and p.get("port") == int(port)) or (port and p.get("name") == port):
            return int(p["port"])
        if not port and not p.get("name") and len(ports) == 1:
            return int(p["port"])
    if not port and len(ports) == 1:
        return int(ports[0]["port"])
    raise errors.ApiError(
        503, "ServiceUnavailable",
        f'no endpoints available for service "{name}"' if not ports else
        f'service "{name}" has no port {port or "(unnamed)"!r}; its ports: '
        + ", ".join(f"{p.get('name') or ''}:{p.get('port')}" for p in ports),
    )


async def _resolve(fn: Any, obj: dict, port: int) -> tuple[str, int] | None:
    result = fn(obj, port)
    if inspect.isawaitable(result):
        result = await result
    return result


async def address_of(kind: str, obj: dict, port: str, hooks: ApiHooks | None) -> tuple[str, int]:
    name = obj["metadata"]["name"]
    if kind == "Pod":
        number = pod_port(obj, port)
        if hooks and hooks.resolve_pod_address:
            found = await _resolve(hooks.resolve_pod_address, obj, number)
        else:
            ip = (obj.get("status") or {}).get("podIP")
            found = (ip, number) if ip else None
        if not found:
            raise errors.ApiError(503, "ServiceUnavailable", f'pod "{name}" has no IP address yet (is it Running?)')
        return found
    number = service_port(obj, port)
    if hooks and hooks.resolve_service_address:
        found = await _resolve(hooks.resolve_service_address, obj, number)
    else:
        ip = (obj.get("spec") or {}).get("clusterIP")
        found = (ip, number) if ip and ip != "None" else None
    if not found:
        raise errors.ApiError(503, "ServiceUnavailable", f'no endpoints available for service "{name}"')
    return found


def checked_scheme(scheme: str) -> str:
    """The proxy name's scheme prefix: ``http`` (also when absent) or ``https``; anything else is refused."""
    if scheme in ("", "http", "https"):
        return scheme or "http"
    raise errors.bad_request(f"unsupported proxy scheme {scheme!r}: use http or https")


def _dial_error(exc: httpx.HTTPError) -> str:
    """Go's wording for what the proxy met: a TLS port closing on plain HTTP (``EOF``), a plain-HTTP port
    answering a TLS handshake, else httpx's own description."""
    text = str(exc)
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError) and "disconnected" in text.lower():
        return "EOF"
    if isinstance(exc, httpx.ConnectError) and ("WRONG_VERSION_NUMBER" in text or "record layer" in text.lower()):
        return "tls: first record does not look like a TLS handshake"
    return f"{type(exc).__name__}: {exc}"


async def forward(request: Request, client: httpx.AsyncClient, host: str, port: int, path: str, *,
                  scheme: str = "http") -> Response:
    url = f"{scheme}://{host}:{port}/{path}"
    if request.url.query:
        url += "?" + request.url.query
    headers = forwardable(request.headers.items(), NOT_FORWARDED)
    has_body = request.method not in ("GET", "HEAD", "OPTIONS", "DELETE") or request.headers.get("content-length")
    outgoing = client.build_request(
        request.method, url, headers=headers, content=request.stream() if has_body else None
    )
    try:
        upstream = await client.send(outgoing, stream=True)
    except httpx.HTTPError as exc:
        raise errors.ApiError(
            503, "ServiceUnavailable", f"error trying to reach service: {_dial_error(exc)} ({host}:{port})"
        ) from None
    out_headers = dict(forwardable(upstream.headers.items(), NOT_FORWARDED))
    return StreamingResponse(
        upstream.aiter_raw(), status_code=upstream.status_code, headers=out_headers,
        background=BackgroundTask(upstream.aclose),
    )
