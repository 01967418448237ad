"""Request filters the gateway runs after matching a route and before picking a backend, as Envoy's HTTP
filter chain does: each sees the request and its matched route and either lets it through (``None``) or
answers it. They read only the gateway's cached view of its resources (watched, never fetched per request).

* :class:`AuthPolicyFilter` — what OpenShift's gateway adds with Red Hat Connectivity Link: an AuthPolicy
  (kuadrant.io/v1) targeting the HTTPRoute makes Authorino demand a valid bearer token (401 otherwise).
* :class:`TlsOriginationFault` — the RHOAI 3.0 known issue where the gateway cannot originate TLS to the
  HTTPS backends (Envoy answers 500 with its TLS error), switched on by a lab profile.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from starlette.responses import JSONResponse, PlainTextResponse, Response

from llmd_lab.sim.gateway.resources import ResourceCache
from llmd_lab.sim.gateway.routing import RouteMatch

AUTH_POLICY = ("kuadrant.io/v1", "AuthPolicy")
ENVOY_TLS_ERROR = (
    "upstream connect error or disconnect/reset before headers. retried and the latest reset reason: remote "
    "connection failure, transport failure reason: TLS_error:|268435581:SSL routines:OPENSSL_internal:"
    "CERTIFICATE_VERIFY_FAILED:TLS_error_end"
)


@dataclass(frozen=True)
class FilterRequest:
    """What a filter may look at: the request's headers (lower-case names) and the route it matched."""

    headers: Mapping[str, str]
    match: RouteMatch


class RequestFilter(Protocol):
    def __call__(self, request: FilterRequest) -> Response | None: ...


class AuthPolicyFilter:
    """401 unless the bearer token is valid, for routes an AuthPolicy targets (RHCL not installed: no
    AuthPolicy is ever watched and nothing is enforced). ``token_valid`` is the cluster's TokenReview."""

    kinds = (AUTH_POLICY,)

    def __init__(self, cache: ResourceCache, token_valid: Callable[[str], bool]) -> None:
        self.cache = cache
        self.token_valid = token_valid

    def _policy_for(self, route: Mapping[str, Any]) -> str | None:
        meta = route["metadata"]
        for (ns, name), policy in self.cache.objects.get(AUTH_POLICY, {}).items():
            ref = (policy.get("spec") or {}).get("targetRef") or {}
            if ns == meta.get("namespace", "") and ref.get("kind") == "HTTPRoute" and ref.get("name") == meta["name"]:
                return f"{ns}/{name}"
        return None

    def __call__(self, request: FilterRequest) -> Response | None:
        policy = self._policy_for(request.match.route)
        if policy is None:
            return None
        header = request.headers.get("authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        if token and self.token_valid(token):
            return None
        return JSONResponse({"error": "Unauthorized", "message": "the request needs a valid bearer token "
                             "(Authorization: Bearer $(oc whoami --show-token)); AuthPolicy "
                             f"{policy} protects this route"},
                            status_code=401, headers={"www-authenticate": 'Bearer realm="kubernetes-user"'})


class TlsOriginationFault:
    """Envoy's 500 for a backend that speaks HTTPS when the gateway cannot originate TLS to it: an
    InferencePool (KServe's pool targets vLLM's HTTPS port 8000) or a Service port with appProtocol https."""

    kinds: tuple[tuple[str, str], ...] = ()

    def __init__(self, cache: ResourceCache) -> None:
        self.cache = cache

    def __call__(self, request: FilterRequest) -> Response | None:
        backend = request.match.backend
        if backend.get("kind") == "InferencePool":
            return PlainTextResponse(ENVOY_TLS_ERROR, status_code=500)
        ns = backend.get("namespace", request.match.route["metadata"].get("namespace", ""))
        svc = self.cache.service(ns, backend.get("name", ""))
        if svc is not None and any(p.get("appProtocol") == "https" for p in (svc.get("spec") or {}).get("ports") or []):
            return PlainTextResponse(ENVOY_TLS_ERROR, status_code=500)
        return None
