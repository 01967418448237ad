"""OpenShift's ``project.openshift.io/v1`` Projects and ProjectRequests over Namespaces.

Follows openshift/openshift-apiserver ``pkg/project/apiserver/registry/project/proxy/proxy.go`` (a Project is
its Namespace's metadata with ``spec.finalizers`` and ``status.phase``; a list holds only the namespaces
the user may ``get``, from the project authorization cache) and ``.../projectrequest/delegated/delegated.go``
(a ProjectRequest creates the Namespace annotated with requester, display name and description, and the
default template's RoleBinding ``admin`` for the requester). Who may request projects is RBAC's business:
OpenShift binds ClusterRole ``self-provisioner`` to ``system:authenticated:oauth`` by default.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from llmd_lab.lab.apiserver import errors
from llmd_lab.lab.apiserver.auth.attributes import Attributes
from llmd_lab.lab.apiserver.auth.forbidden import new_forbidden
from llmd_lab.lab.apiserver.auth.rbac import RuleAuthorizer
from llmd_lab.lab.apiserver.auth.user import OAUTH_AUTHENTICATED, UserInfo

GROUP = "project.openshift.io"
VERSION = f"{GROUP}/v1"
RBAC = "rbac.authorization.k8s.io"
REQUESTER = "openshift.io/requester"
DISPLAY_NAME = "openshift.io/display-name"
DESCRIPTION = "openshift.io/description"
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_META_KEYS = ("name", "uid", "resourceVersion", "creationTimestamp", "labels", "annotations", "deletionTimestamp")


def project_of(namespace: Mapping[str, Any]) -> dict[str, Any]:
    """The Project a Namespace shows as (projectutil.ConvertNamespaceFromExternal)."""
    meta = namespace.get("metadata") or {}
    phase = (namespace.get("status") or {}).get("phase") or "Active"
    return {"kind": "Project", "apiVersion": VERSION,
            "metadata": {k: meta[k] for k in _META_KEYS if k in meta},
            "spec": {"finalizers": list((namespace.get("spec") or {}).get("finalizers") or ["kubernetes"])},
            "status": {"phase": phase}}


def can_see(authorizer: RuleAuthorizer, user: UserInfo, namespace: str) -> bool:
    """The project cache's question: may the user ``get`` the namespace?"""
    return authorizer.authorize(Attributes(user, "get", "", "namespaces", namespace=namespace,
                                           name=namespace)).allowed


def visible_projects(authorizer: RuleAuthorizer, user: UserInfo, namespaces: Iterable[Mapping[str, Any]]) -> list[dict]:
    """The Projects a ``list`` returns to ``user``: only namespaces they may get, in name order."""
    out = [project_of(ns) for ns in namespaces if can_see(authorizer, user, ns["metadata"]["name"])]
    return sorted(out, key=lambda p: p["metadata"]["name"])


def project_list(items: list[dict], resource_version: str) -> dict[str, Any]:
    return {"kind": "ProjectList", "apiVersion": VERSION, "metadata": {"resourceVersion": resource_version},
            "items": items}


def _invalid(name: str, message: str) -> errors.ApiError:
    return errors.invalid("ProjectRequest", GROUP, name, [errors.field_cause("metadata.name", message)])


def validate_request(request: Mapping[str, Any]) -> str:
    """The requested project name, or 422 as ValidateProjectRequest answers."""
    name = str((request.get("metadata") or {}).get("name") or "")
    if not name:
        raise errors.invalid("ProjectRequest", GROUP, "", [errors.field_cause(
            "metadata.name", "Required value: name or generateName is required", "FieldValueRequired")])
    if len(name) > 63 or not _DNS_LABEL.match(name):
        raise _invalid(name, f'Invalid value: "{name}": a lowercase RFC 1123 label must consist of lower case '
                             "alphanumeric characters or '-', and must start and end with an alphanumeric "
                             "character (e.g. 'my-name',  or '123-abc', regex used for validation is "
                             "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
    if len(name) < 2:
        raise _invalid(name, f'Invalid value: "{name}": must be at least 2 characters long')
    if name.startswith(("openshift-", "kube-")) or name in ("openshift", "kube", "default"):
        raise new_forbidden("project", GROUP, name,
                            'cannot request a project starting with "openshift-" or "kube-"')
    return name


def request_objects(request: Mapping[str, Any], user: UserInfo) -> tuple[dict[str, Any], dict[str, Any]]:
    """The Namespace and the ``admin`` RoleBinding a ProjectRequest creates for its requester."""
    name = validate_request(request)
    annotations = {REQUESTER: user.name, DISPLAY_NAME: str(request.get("displayName") or ""),
                   DESCRIPTION: str(request.get("description") or "")}
    namespace = {"apiVersion": "v1", "kind": "Namespace",
                 "metadata": {"name": name, "annotations": annotations,
                              "labels": {"kubernetes.io/metadata.name": name}}}
    binding = {"apiVersion": f"{RBAC}/v1", "kind": "RoleBinding",
               "metadata": {"name": "admin", "namespace": name},
               "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "admin"},
               "subjects": [{"apiGroup": RBAC, "kind": "User", "name": user.name}]}
    return namespace, binding


def self_provisioners_binding() -> dict[str, Any]:
    """OpenShift's default ``self-provisioners`` ClusterRoleBinding (absent when a profile turns it off)."""
    return {"apiVersion": f"{RBAC}/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": "self-provisioners",
                         "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"}},
            "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "self-provisioner"},
            "subjects": [{"apiGroup": RBAC, "kind": "Group", "name": OAUTH_AUTHENTICATED}]}
