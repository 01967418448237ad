"""Where RBAC objects come from: a small read interface over Roles, ClusterRoles and their bindings.

The authorizer, the rules reviews and escalation checks only read through :class:`PolicySource`, so the same
code runs over the lab's store (``StorePolicySource``) and over plain lists of objects in unit tests.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from llmd_lab.lab.apiserver.storage import Storage

RBAC_GROUP = "rbac.authorization.k8s.io"
RBAC_VERSION = f"{RBAC_GROUP}/v1"


class PolicySource(Protocol):
    def cluster_role_bindings(self) -> Iterable[Mapping[str, Any]]: ...
    def role_bindings(self, namespace: str) -> Iterable[Mapping[str, Any]]: ...
    def cluster_role(self, name: str) -> Mapping[str, Any] | None: ...
    def role(self, namespace: str, name: str) -> Mapping[str, Any] | None: ...


class ObjectsPolicySource:
    """RBAC objects held in memory (tests; a snapshot of a store)."""

    def __init__(self, objects: Iterable[Mapping[str, Any]]) -> None:
        self._by_kind: dict[str, list[Mapping[str, Any]]] = {}
        for obj in objects:
            self._by_kind.setdefault(obj["kind"], []).append(obj)

    def of_kind(self, kind: str) -> list[Mapping[str, Any]]:
        return list(self._by_kind.get(kind, []))

    def cluster_role_bindings(self) -> list[Mapping[str, Any]]:
        return self.of_kind("ClusterRoleBinding")

    def role_bindings(self, namespace: str) -> list[Mapping[str, Any]]:
        return [b for b in self.of_kind("RoleBinding") if b["metadata"].get("namespace") == namespace]

    def cluster_role(self, name: str) -> Mapping[str, Any] | None:
        return next((r for r in self.of_kind("ClusterRole") if r["metadata"]["name"] == name), None)

    def role(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        return next((r for r in self.of_kind("Role")
                     if r["metadata"]["name"] == name and r["metadata"].get("namespace") == namespace), None)


class StoragePolicySource:
    """RBAC objects read straight from the API server's storage indexes (no copies: read only)."""

    def __init__(self, storage: Storage) -> None:
        self._storage = storage

    def _in(self, kind: str, namespace: str) -> Iterable[Mapping[str, Any]]:
        return list(self._storage.by_namespace((RBAC_GROUP, kind)).get(namespace, {}).values())

    def cluster_role_bindings(self) -> Iterable[Mapping[str, Any]]:
        return self._in("ClusterRoleBinding", "")

    def role_bindings(self, namespace: str) -> Iterable[Mapping[str, Any]]:
        return self._in("RoleBinding", namespace)

    def cluster_role(self, name: str) -> Mapping[str, Any] | None:
        return self._storage.find((RBAC_GROUP, "ClusterRole", "", name))

    def role(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        return self._storage.find((RBAC_GROUP, "Role", namespace, name))
