"""Discovery documents: the stateless "scaffold" that tells clients which resources exist.

Legacy discovery (``/api``, ``/api/v1``, ``/apis``, ``/apis/<g>``, ``/apis/<g>/<v>``) is what the Python
client's ``DynamicClient`` reads; ``kubectl`` 1.32 first asks for aggregated discovery
(``apidiscovery.k8s.io/v2``, one document for all groups), which is served too so that each ``kubectl``
call costs two requests instead of one per group version. Documents are rebuilt only when the registry
changes (CRDs come and go).
"""

from __future__ import annotations

import json
import platform
import sys
from typing import Any

from llmd_lab.lab.apiserver.registry import ResourceRegistry, ResourceType

AGGREGATED_V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
GIT_VERSION = "v1.32.0-llmd-lab"


def version_info() -> dict[str, Any]:
    return {
        "major": "1",
        "minor": "32",
        "gitVersion": GIT_VERSION,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": f"python{sys.version_info.major}.{sys.version_info.minor}",
        "compiler": "cpython",
        "platform": f"{platform.system().lower()}/{platform.machine().lower()}",
    }


def wants_aggregated(accept: str) -> bool:
    """True when the client lists aggregated discovery v2 among what it accepts."""
    for part in accept.split(","):
        params = {k.strip(): v.strip() for k, _, v in (p.partition("=") for p in part.split(";")[1:])}
        if params.get("g") == "apidiscovery.k8s.io" and params.get("v") == "v2" and params.get("as") == "APIGroupDiscoveryList":
            return True
    return False


class Discovery:
    """Builds (and caches per registry generation) the discovery documents."""

    def __init__(self, registry: ResourceRegistry) -> None:
        self.registry = registry
        self._cache: dict[str, bytes] = {}
        self._generation = -1

    def _cached(self, key: str, build: Any) -> bytes:
        if self._generation != self.registry.generation:
            self._cache.clear()
            self._generation = self.registry.generation
        body = self._cache.get(key)
        if body is None:
            body = json.dumps(build(), separators=(",", ":")).encode()
            self._cache[key] = body
        return body

    # ---- legacy
    def api_versions(self, server_address: str) -> bytes:
        return self._cached("api", lambda: {
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
        })

    def group_list(self) -> bytes:
        return self._cached("apis", lambda: {
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": [self._group(g, vs) for g, vs in self.registry.groups() if g],
        })

    def group(self, name: str) -> bytes | None:
        for g, versions in self.registry.groups():
            if g == name and g:
                return self._cached(f"group:{g}", lambda g=g, versions=versions: {
                    "kind": "APIGroup", "apiVersion": "v1", **self._group(g, versions)})
        return None

    @staticmethod
    def _group(group: str, versions: list[str]) -> dict[str, Any]:
        gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        return {"name": group, "versions": gvs, "preferredVersion": gvs[0]}

    def resource_list(self, group: str, version: str) -> bytes | None:
        types = self.registry.resources_in(group, version)
        if not types:
            return None

        def build() -> dict[str, Any]:
            resources = []
            for rt in types:
                resources.append(_legacy_resource(rt))
                for sub in sorted(rt.subresources):
                    resources.append(_legacy_subresource(rt, sub))
            return {
                "kind": "APIResourceList",
                "apiVersion": "v1",
                "groupVersion": f"{group}/{version}" if group else version,
                "resources": resources,
            }

        return self._cached(f"res:{group}/{version}", build)

    # ---- aggregated (apidiscovery.k8s.io/v2)
    def aggregated(self, core: bool) -> bytes:
        """``/api`` (core group only) or ``/apis`` (every named group) as an ``APIGroupDiscoveryList``."""

        def build() -> dict[str, Any]:
            items = []
            for group, versions in self.registry.groups():
                if (group == "") != core:
                    continue
                items.append({
                    "metadata": {"name": group, "creationTimestamp": None},
                    "versions": [
                        {
                            "version": v,
                            "resources": [_aggregated_resource(rt) for rt in self.registry.resources_in(group, v)],
                            "freshness": "Current",
                        }
                        for v in versions
                    ],
                })
            return {"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2",
                    "metadata": {}, "items": items}

        return self._cached(f"agg:{core}", build)


def _legacy_resource(rt: ResourceType) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": rt.plural,
        "singularName": rt.singular,
        "namespaced": rt.namespaced,
        "kind": rt.kind,
        "verbs": list(rt.verbs),
    }
    if rt.short_names:
        out["shortNames"] = list(rt.short_names)
    if rt.categories:
        out["categories"] = list(rt.categories)
    if not rt.virtual:
        out["storageVersionHash"] = rt.storage_version_hash
    return out


_SUB_KINDS = {"scale": ("autoscaling", "v1", "Scale"), "log": ("", "v1", "Pod"), "proxy": ("", "v1", "")}


def _sub_verbs(sub: str) -> list[str]:
    if sub == "log":
        return ["get"]
    if sub == "proxy":
        return ["create", "delete", "get", "patch", "update"]
    return ["get", "patch", "update"]


def _legacy_subresource(rt: ResourceType, sub: str) -> dict[str, Any]:
    group, version, kind = _SUB_KINDS.get(sub, (rt.group, rt.version, rt.kind))
    out: dict[str, Any] = {"name": f"{rt.plural}/{sub}", "singularName": "", "namespaced": rt.namespaced,
                           "kind": kind or "", "verbs": _sub_verbs(sub)}
    if sub == "scale":
        out["group"], out["version"] = group, version
    return out


def _aggregated_resource(rt: ResourceType) -> dict[str, Any]:
    out: dict[str, Any] = {
        "resource": rt.plural,
        "responseKind": {"group": rt.group, "version": rt.version, "kind": rt.kind},
        "scope": "Namespaced" if rt.namespaced else "Cluster",
        "singularResource": rt.singular,
        "verbs": list(rt.verbs),
    }
    if rt.short_names:
        out["shortNames"] = list(rt.short_names)
    if rt.categories:
        out["categories"] = list(rt.categories)
    subs = []
    for sub in sorted(rt.subresources):
        group, version, kind = _SUB_KINDS.get(sub, (rt.group, rt.version, rt.kind))
        entry: dict[str, Any] = {"subresource": sub, "verbs": _sub_verbs(sub)}
        if kind:
            entry["responseKind"] = {"group": group, "version": version, "kind": kind}
        subs.append(entry)
    if subs:
        out["subresources"] = subs
    return out
