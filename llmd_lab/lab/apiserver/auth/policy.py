"""Where RBAC objects come from: a small read interface over Roles, ClusterRoles and their bindings.

The authorizer, the rules reviews and escalation checks only read through :class:`PolicySource`, so the same
code runs over the lab's store (``StorePolicySource``) and over plain lists of objects in unit tests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

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


class ListingPolicySource:
    """RBAC objects read on demand through ``list_kind(kind, namespace) -> objects`` (the lab's store)."""

    def __init__(self, list_kind: Callable[[str, str | None], Iterable[Mapping[str, Any]]]) -> None:
        self._list = list_kind

    def cluster_role_bindings(self) -> Iterable[Mapping[str, Any]]:
        return self._list("ClusterRoleBinding", None)

    def role_bindings(self, namespace: str) -> Iterable[Mapping[str, Any]]:
        return self._list("RoleBinding", namespace)

    def cluster_role(self, name: str) -> Mapping[str, Any] | None:
        return next((r for r in self._list("ClusterRole", None) if r["metadata"]["name"] == name), None)

    def role(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        return next((r for r in self._list("Role", namespace) if r["metadata"]["name"] == name), None)
