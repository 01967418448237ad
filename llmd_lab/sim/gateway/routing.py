"""HTTPRoute matching (Gateway API PathPrefix semantics) and URL rewrites."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass
class RouteMatch:
    route: dict
    rule: dict
    prefix: str
    match_type: str
    backend: dict
    rewritten_path: str


def _prefix_matches(prefix: str, path: str) -> bool:
    """Gateway API PathPrefix: element-wise, so ``/a/b`` matches ``/a/b`` and ``/a/b/c`` but not ``/a/bc``."""
    prefix = prefix.rstrip("/") or "/"
    if prefix == "/":
        return True
    return path == prefix or path.startswith(prefix + "/")


def _attached(route: Mapping[str, Any], gateway_name: str, gateway_namespace: str) -> bool:
    ns = route["metadata"].get("namespace", "")
    for ref in (route.get("spec") or {}).get("parentRefs") or []:
        if (ref.get("kind", "Gateway") == "Gateway" and ref.get("name") == gateway_name
                and ref.get("namespace", ns) == gateway_namespace):
            return True
    return False


def rewrite_path(path: str, prefix: str, match_type: str, rule: Mapping[str, Any]) -> str:
    for flt in rule.get("filters") or []:
        if flt.get("type") != "URLRewrite":
            continue
        spec = ((flt.get("urlRewrite") or {}).get("path")) or {}
        if spec.get("type") == "ReplaceFullPath":
            return spec.get("replaceFullPath", "/") or "/"
        if spec.get("type") == "ReplacePrefixMatch" and match_type == "PathPrefix":
            replacement = spec.get("replacePrefixMatch", "/") or "/"
            rest = path[len(prefix.rstrip("/")):] if prefix != "/" else path
            if replacement.endswith("/") and rest.startswith("/"):
                rest = rest[1:]
            joined = replacement + rest
            return joined or "/"
    return path


def match_route(routes: list[dict], path: str, gateway_name: str, gateway_namespace: str) -> RouteMatch | None:
    """The most specific (longest) matching rule among routes attached to this gateway."""
    best: RouteMatch | None = None
    best_len = -1
    for route in routes:
        if not _attached(route, gateway_name, gateway_namespace):
            continue
        for rule in (route.get("spec") or {}).get("rules") or []:
            backends = rule.get("backendRefs") or []
            matches = rule.get("matches") or [{"path": {"type": "PathPrefix", "value": "/"}}]
            for m in matches:
                pspec = m.get("path") or {"type": "PathPrefix", "value": "/"}
                mtype, value = pspec.get("type", "PathPrefix"), pspec.get("value", "/")
                ok = path == value if mtype == "Exact" else _prefix_matches(value, path)
                length = len(value) + (1 if mtype == "Exact" else 0)
                if ok and length > best_len and backends:
                    best_len = length
                    best = RouteMatch(route, rule, value, mtype, backends[0],
                                      rewrite_path(path, value, mtype, rule))
    return best
