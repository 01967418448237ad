"""403 bodies in kube-apiserver's exact wording.

``forbidden_message`` follows ``forbiddenMessage`` in
``staging/src/k8s.io/apiserver/pkg/endpoints/handlers/responsewriters/errors.go``; ``forbidden_error`` wraps it
as ``apierrors.NewForbidden(groupResource, name, err)`` does, so kubectl prints e.g.
``nodes is forbidden: User "user1" cannot list resource "nodes" in API group "" at the cluster scope``.
"""

from __future__ import annotations

import json

from llmd_lab.lab.apiserver.auth.attributes import Attributes
from llmd_lab.lab.apiserver.errors import ApiError


def go_quote(text: str) -> str:
    """Go's ``%q`` for the names that reach these messages (printable text: JSON's quoting agrees)."""
    return json.dumps(text, ensure_ascii=False)


def _sanitize(text: str) -> str:
    # errors.go: "Avoid emitting errors that look like valid HTML"
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def forbidden_message(attrs: Attributes) -> str:
    user = go_quote(attrs.user.name)
    if not attrs.is_resource_request:
        return f"User {user} cannot {attrs.verb} path {go_quote(attrs.path)}"
    what = f"User {user} cannot {attrs.verb} resource {go_quote(attrs.combined_resource)} in API group " \
           f"{go_quote(attrs.api_group)}"
    if attrs.namespace:
        return f"{what} in the namespace {go_quote(attrs.namespace)}"
    return f"{what} at the cluster scope"


def qualified_resource(resource: str, group: str) -> str:
    """schema.GroupResource.String(): ``nodes`` / ``llminferenceservices.serving.kserve.io``."""
    return f"{resource}.{group}" if group else resource


def new_forbidden(resource: str, group: str, name: str, message: str) -> ApiError:
    """apierrors.NewForbidden: ``<resource>[.<group>] ["<name>"] is forbidden: <message>``."""
    if not resource and not group:
        text = f"forbidden: {message}"
    elif not name:
        text = f"{qualified_resource(resource, group)} is forbidden: {message}"
    else:
        text = f"{qualified_resource(resource, group)} {go_quote(name)} is forbidden: {message}"
    details: dict = {"kind": resource}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    return ApiError(403, "Forbidden", text, details=details if resource or group else {})


def forbidden_error(attrs: Attributes, reason: str = "") -> ApiError:
    """The 403 an authorization denial produces (responsewriters.Forbidden)."""
    message = _sanitize(forbidden_message(attrs))
    if reason:
        message = f"{message}: {reason}"
    resource = attrs.resource if attrs.is_resource_request else ""
    group = attrs.api_group if attrs.is_resource_request else ""
    return new_forbidden(resource, group, attrs.name, message)
