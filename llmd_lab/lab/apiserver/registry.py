"""Resource types as data: what discovery advertises and what the store accepts.

Built-in kinds are a table (like kr8s/lightkube keep them); CustomResourceDefinitions add rows at run time.
Objects are stored per *group kind*: two versions of one CRD share their objects (conversion strategy
``None`` rewrites only ``apiVersion``, which is what the lab does), while ``v1`` Events and
``events.k8s.io/v1`` Events are separate groups and therefore separate stores.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from llmd_lab.lab.apiserver import errors

CRUD_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
CREATE_ONLY = ("create",)
SCALE_PATHS = {
    "specReplicasPath": ".spec.replicas",
    "statusReplicasPath": ".status.replicas",
    "labelSelectorPath": ".status.selector",
}


@dataclass(frozen=True)
class ResourceType:
    """One served resource (``group/version`` + plural) and how the API treats it."""

    group: str
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = CRUD_VERBS
    subresources: frozenset[str] = frozenset()
    # CRD additionalPrinterColumns (name, type, jsonPath, priority, format, description)
    printer_columns: tuple[dict[str, Any], ...] = ()
    scale: dict[str, str] | None = None  # specReplicasPath / statusReplicasPath / labelSelectorPath
    crd: str | None = None  # name of the CRD that serves it
    storage: bool = True  # the storage version of its group kind
    virtual: bool = False  # create-only reviews: answered, never stored
    schema: dict[str, Any] | None = field(default=None, compare=False, hash=False)  # CRD openAPIV3Schema

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_kind(self) -> tuple[str, str]:
        return (self.group, self.kind)

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def storage_version_hash(self) -> str:
        digest = hashlib.sha256(f"{self.group}/{self.version}/{self.kind}".encode()).digest()
        return base64.b64encode(digest[:8]).decode()

    def has(self, subresource: str) -> bool:
        return subresource in self.subresources


def _rt(
    group: str,
    version: str,
    kind: str,
    plural: str,
    *,
    namespaced: bool = True,
    short: Iterable[str] = (),
    cats: Iterable[str] = (),
    sub: Iterable[str] = (),
    verbs: tuple[str, ...] = CRUD_VERBS,
    virtual: bool = False,
    scale: dict[str, str] | None = None,
) -> ResourceType:
    return ResourceType(
        group=group,
        version=version,
        kind=kind,
        plural=plural,
        singular=kind.lower(),
        namespaced=namespaced,
        short_names=tuple(short),
        categories=tuple(cats),
        verbs=verbs,
        subresources=frozenset(sub),
        scale=scale,
        virtual=virtual,
    )


def builtin_types() -> list[ResourceType]:
    """The Kubernetes 1.32 kinds the workshop touches."""
    all_ = ("all",)
    return [
        _rt("", "v1", "Namespace", "namespaces", namespaced=False, short=["ns"], sub=["status"]),
        _rt("", "v1", "Node", "nodes", namespaced=False, short=["no"], sub=["status", "proxy"]),
        _rt("", "v1", "Pod", "pods", short=["po"], cats=all_, sub=["status", "log", "proxy"]),
        _rt("", "v1", "Service", "services", short=["svc"], cats=all_, sub=["status", "proxy"]),
        _rt("", "v1", "Endpoints", "endpoints", short=["ep"]),
        _rt("", "v1", "ConfigMap", "configmaps", short=["cm"]),
        _rt("", "v1", "Secret", "secrets"),
        _rt("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", short=["pvc"], sub=["status"]),
        _rt("", "v1", "PersistentVolume", "persistentvolumes", namespaced=False, short=["pv"], sub=["status"]),
        _rt("storage.k8s.io", "v1", "StorageClass", "storageclasses", namespaced=False, short=["sc"]),
        _rt("", "v1", "ServiceAccount", "serviceaccounts", short=["sa"]),
        _rt("", "v1", "Event", "events", short=["ev"]),
        _rt("events.k8s.io", "v1", "Event", "events", short=["ev"]),
        _rt("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices"),
        _rt("apps", "v1", "Deployment", "deployments", short=["deploy"], cats=all_, sub=["status", "scale"],
            scale=SCALE_PATHS),
        _rt("apps", "v1", "ReplicaSet", "replicasets", short=["rs"], cats=all_, sub=["status", "scale"],
            scale=SCALE_PATHS),
        _rt("apps", "v1", "StatefulSet", "statefulsets", short=["sts"], cats=all_, sub=["status", "scale"],
            scale=SCALE_PATHS),
        _rt("batch", "v1", "Job", "jobs", cats=all_, sub=["status"]),
        _rt("rbac.authorization.k8s.io", "v1", "Role", "roles"),
        _rt("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings"),
        _rt("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", namespaced=False),
        _rt("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", namespaced=False),
        _rt("authorization.k8s.io", "v1", "SelfSubjectAccessReview", "selfsubjectaccessreviews",
            namespaced=False, verbs=CREATE_ONLY, virtual=True),
        _rt("authorization.k8s.io", "v1", "SelfSubjectRulesReview", "selfsubjectrulesreviews",
            namespaced=False, verbs=CREATE_ONLY, virtual=True),
        _rt("authentication.k8s.io", "v1", "TokenReview", "tokenreviews", namespaced=False, verbs=CREATE_ONLY,
            virtual=True),
        _rt("authentication.k8s.io", "v1", "SelfSubjectReview", "selfsubjectreviews", namespaced=False,
            verbs=CREATE_ONLY, virtual=True),
        # OpenShift projects: computed per user from Namespaces (auth/projects_api.py), never stored
        _rt("project.openshift.io", "v1", "Project", "projects", namespaced=False, verbs=("get", "list"),
            virtual=True),
        _rt("project.openshift.io", "v1", "ProjectRequest", "projectrequests", namespaced=False,
            verbs=("create", "list"), virtual=True),
        _rt("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions",
            namespaced=False, short=["crd", "crds"], cats=("api-extensions",), sub=["status"]),
        _rt("coordination.k8s.io", "v1", "Lease", "leases"),
    ]


def _version_key(version: str) -> tuple[int, int, int]:
    """Kubernetes version priority: GA > beta > alpha, then higher numbers first (v1 > v1beta2 > v1alpha1)."""
    import re

    m = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", version)
    if not m:
        return (0, 0, 0)
    stage = {"alpha": 1, "beta": 2, None: 3}[m.group(2)]
    return (stage, int(m.group(1)), int(m.group(3) or 0))


class ResourceRegistry:
    """Lookup tables for served resources; CRDs are (un)registered at run time."""

    def __init__(self, types: Iterable[ResourceType] | None = None) -> None:
        self._by_gvk: dict[tuple[str, str, str], ResourceType] = {}
        self._by_gvr: dict[tuple[str, str, str], ResourceType] = {}
        self._crd_types: dict[str, list[ResourceType]] = {}
        self.generation = 0  # bumped on every change, so discovery caches know when to rebuild
        for rt in builtin_types() if types is None else types:
            self.add(rt)

    # ---- changes
    def add(self, rt: ResourceType) -> None:
        self._by_gvk[(rt.group, rt.version, rt.kind)] = rt
        self._by_gvr[(rt.group, rt.version, rt.plural)] = rt
        self.generation += 1

    def remove(self, rt: ResourceType) -> None:
        self._by_gvk.pop((rt.group, rt.version, rt.kind), None)
        self._by_gvr.pop((rt.group, rt.version, rt.plural), None)
        self.generation += 1

    def register_crd(self, crd: dict[str, Any]) -> list[ResourceType]:
        """Serve every ``served`` version of a CRD (replacing what an earlier revision served)."""
        name = crd["metadata"]["name"]
        self.unregister_crd(name)
        spec = crd.get("spec", {})
        names = spec.get("names", {})
        group = spec.get("group", "")
        added = []
        for ver in spec.get("versions", []):
            if not ver.get("served", True):
                continue
            subs = ver.get("subresources") or {}
            scale = None
            if "scale" in subs:
                sc = subs["scale"] or {}
                scale = {
                    "specReplicasPath": sc.get("specReplicasPath", ".spec.replicas"),
                    "statusReplicasPath": sc.get("statusReplicasPath", ".status.replicas"),
                }
                if sc.get("labelSelectorPath"):
                    scale["labelSelectorPath"] = sc["labelSelectorPath"]
            rt = ResourceType(
                group=group,
                version=ver["name"],
                kind=names["kind"],
                plural=names["plural"],
                singular=names.get("singular") or names["kind"].lower(),
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
                subresources=frozenset(k for k in ("status", "scale") if k in subs),
                printer_columns=tuple(ver.get("additionalPrinterColumns") or ()),
                scale=scale,
                crd=name,
                storage=bool(ver.get("storage", False)),
                schema=(ver.get("schema") or {}).get("openAPIV3Schema"),
            )
            self.add(rt)
            added.append(rt)
        self._crd_types[name] = added
        return added

    def unregister_crd(self, name: str) -> list[ResourceType]:
        removed = self._crd_types.pop(name, [])
        for rt in removed:
            self.remove(rt)
        return removed

    # ---- lookups
    def types(self) -> list[ResourceType]:
        return list(self._by_gvk.values())

    def lookup_kind(self, api_version: str, kind: str) -> ResourceType:
        """By ``apiVersion`` + ``kind`` (what an object says it is); 404 when not served."""
        group, _, version = api_version.rpartition("/")
        rt = self._by_gvk.get((group, version, kind))
        if rt is None:
            raise errors.ApiError(
                404,
                "NotFound",
                f'no matches for kind "{kind}" in version "{api_version}" '
                "(is its CustomResourceDefinition installed? `kubectl api-resources` lists what is served)",
            )
        return rt

    def find_kind(self, api_version: str, kind: str) -> ResourceType | None:
        group, _, version = api_version.rpartition("/")
        return self._by_gvk.get((group, version, kind))

    def lookup_resource(self, group: str, version: str, plural: str) -> ResourceType:
        """By URL parts; 404 "the server could not find the requested resource" when not served."""
        rt = self._by_gvr.get((group, version, plural))
        if rt is None:
            raise errors.resource_not_found()
        return rt

    def find_resource(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._by_gvr.get((group, version, plural))

    def versions_of(self, group: str, kind: str) -> list[ResourceType]:
        """Every served version of a group kind, preferred first."""
        found = [rt for rt in self._by_gvk.values() if rt.group == group and rt.kind == kind]
        return sorted(found, key=lambda rt: (rt.storage, _version_key(rt.version)), reverse=True)

    def storage_type(self, group: str, kind: str) -> ResourceType | None:
        found = self.versions_of(group, kind)
        return found[0] if found else None

    def groups(self) -> list[tuple[str, list[str]]]:
        """``[(group, [versions, preferred first])]`` with the core group ``""`` first, then by first seen."""
        seen: dict[str, set[str]] = {}
        for rt in self._by_gvk.values():
            seen.setdefault(rt.group, set()).add(rt.version)
        out = []
        for group, versions in seen.items():
            out.append((group, sorted(versions, key=_version_key, reverse=True)))
        out.sort(key=lambda gv: (gv[0] != "", 0))
        return out

    def resources_in(self, group: str, version: str) -> list[ResourceType]:
        return sorted(
            (rt for (g, v, _), rt in self._by_gvr.items() if g == group and v == version), key=lambda r: r.plural
        )
