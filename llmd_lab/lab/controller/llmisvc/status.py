"""Status of an LLMInferenceService: knative-style conditions, URL discovery, observedGeneration.

``Ready`` = ``WorkloadsReady`` ∧ ``RouterReady``; each of those is the first not-True of its informational
conditions (RHDS-KSERVE @ rhoai-3.0 ``llm_inference_service_lifecycle.go``). Sources of readiness:
Deployment/LeaderWorkerSet ``Available``, Gateway ``Programmed``, HTTPRoute/InferencePool parent ``Accepted``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Cond:
    type: str
    status: str  # "True" | "False" | "Unknown"
    reason: str = ""
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "True"


def _find(conditions: list[Mapping[str, Any]] | None, type_: str) -> Mapping[str, Any] | None:
    return next((c for c in conditions or [] if c.get("type") == type_), None)


def workload_condition(type_: str, obj: Mapping[str, Any] | None) -> Cond:
    """From a Deployment's or LeaderWorkerSet's ``Available`` condition (absent → ``Progressing``)."""
    if obj is None:
        return Cond(type_, "Unknown", "Progressing", "waiting for the workload to be created")
    avail = _find((obj.get("status") or {}).get("conditions"), "Available")
    if avail is None:
        return Cond(type_, "False", "Progressing", "")
    if avail.get("status") == "True":
        return Cond(type_, "True")
    return Cond(type_, "False", avail.get("reason", "MinimumReplicasUnavailable"), avail.get("message", ""))


def gateway_condition(gateway: Mapping[str, Any] | None, ref: str, error: str = "") -> Cond:
    if error:
        return Cond("GatewaysReady", "False", "GatewayReconcileError", error)
    if gateway is None:
        return Cond("GatewaysReady", "False", "GatewayNotFound", f"Gateway {ref} not found")
    prog = _find((gateway.get("status") or {}).get("conditions"), "Programmed")
    if prog and prog.get("status") == "True":
        return Cond("GatewaysReady", "True")
    return Cond("GatewaysReady", "False", "GatewaysNotReady", f"Gateway {ref} is not Programmed")


def _parents_accepted(parents: list[Mapping[str, Any]] | None) -> bool:
    if not parents:
        return False
    for parent in parents:
        accepted = _find(parent.get("conditions"), "Accepted")
        if not accepted or accepted.get("status") != "True":
            return False
    return True


def route_condition(route: Mapping[str, Any] | None, managed: bool) -> Cond:
    if not managed:
        return Cond("HTTPRoutesReady", "True")
    if route is None:
        return Cond("HTTPRoutesReady", "False", "HTTPRoutesNotReady", "HTTPRoute not created yet")
    if _parents_accepted((route.get("status") or {}).get("parents")):
        return Cond("HTTPRoutesReady", "True")
    name = route["metadata"]["name"]
    return Cond("HTTPRoutesReady", "False", "HTTPRoutesNotReady", f"HTTPRoute {name} is not accepted by its parents")


def pool_condition(pool: Mapping[str, Any] | None, managed: bool) -> Cond:
    if not managed:
        return Cond("InferencePoolReady", "True")
    if pool is None:
        return Cond("InferencePoolReady", "False", "InferencePoolNotReady", "InferencePool not created yet")
    if _parents_accepted((pool.get("status") or {}).get("parent")):
        return Cond("InferencePoolReady", "True")
    return Cond("InferencePoolReady", "False", "InferencePoolNotReady",
                f"InferencePool {pool['metadata']['name']} is not accepted by a Gateway yet")


def aggregate(type_: str, parts: list[Cond]) -> Cond:
    """First False wins, then first Unknown, else True."""
    for wanted in ("False", "Unknown"):
        for c in parts:
            if c.status == wanted:
                return Cond(type_, wanted, c.reason or f"{c.type}NotReady", c.message)
    return Cond(type_, "True")


def ready(workloads: Cond, router: Cond) -> Cond:
    for c in (workloads, router):
        if not c.ok:
            return Cond("Ready", c.status, c.reason or f"{c.type[:-5]}NotReady", c.message)
    return Cond("Ready", "True")


def merge_conditions(previous: list[Mapping[str, Any]] | None, current: list[Cond], now: str) -> list[dict]:
    """Render conditions, keeping ``lastTransitionTime`` when a condition's status did not change."""
    out = []
    for c in sorted(current, key=lambda c: c.type):
        prev = _find(previous, c.type)
        when = prev["lastTransitionTime"] if prev and prev.get("status") == c.status and prev.get(
            "lastTransitionTime") else now
        cond: dict[str, Any] = {"type": c.type, "status": c.status, "lastTransitionTime": when}
        if c.reason:
            cond["reason"] = c.reason
        if c.message:
            cond["message"] = c.message
        if c.type not in ("Ready", "WorkloadsReady", "RouterReady") and not c.ok:
            cond["severity"] = "Info"
        out.append(cond)
    return out


def discover_urls(gateway: Mapping[str, Any] | None, route: Mapping[str, Any] | None) -> list[str]:
    """``scheme://host[:port]/path`` per Gateway address (router_discovery.go): the shortest route path,
    Service-backed rules first, the listener's scheme and port (omitted when it is the default)."""
    if gateway is None or route is None:
        return []
    listeners = (gateway.get("spec") or {}).get("listeners") or []
    if not listeners:
        return []
    listener = listeners[0]
    scheme = "https" if listener.get("protocol") == "HTTPS" else "http"
    port = int(listener.get("port", 443 if scheme == "https" else 80))
    hosts = list((route.get("spec") or {}).get("hostnames") or [])
    if not hosts and listener.get("hostname"):
        h = listener["hostname"]
        hosts = ["inference" + h[1:] if h.startswith("*") else h]
    if not hosts:
        hosts = [a.get("value") for a in (gateway.get("status") or {}).get("addresses") or [] if a.get("value")]
    rules = (route.get("spec") or {}).get("rules") or []

    def paths(service_only: bool) -> list[str]:
        found = []
        for rule in rules:
            backends = rule.get("backendRefs") or []
            if service_only and not any(b.get("kind", "Service") == "Service" for b in backends):
                continue
            for m in rule.get("matches") or []:
                value = (m.get("path") or {}).get("value")
                if value:
                    found.append(value)
        return found

    candidates = paths(True) or paths(False) or ["/"]
    path = min(candidates, key=len)
    default_port = 443 if scheme == "https" else 80
    urls = []
    for host in hosts:
        netloc = host if port == default_port or ":" in host else f"{host}:{port}"
        urls.append(f"{scheme}://{netloc}{path}")
    return urls


def url_parts(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of a status URL; used by tests and helpers."""
    parts = urlsplit(url)
    return parts.scheme, parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
