"""Forbidden errors that are not authorization denials (escalation checks, project requests).

``new_forbidden`` is ``apierrors.NewForbidden(groupResource, name, err)``
(staging/src/k8s.io/apimachinery/pkg/api/errors/errors.go); authorization denials use ``access.forbidden``.
"""

from __future__ import annotations

import json

from llmd_lab.lab.apiserver.errors import ApiError


def go_quote(text: str) -> str:
    """Go's ``%q`` for the names that reach these messages (printable text: JSON's quoting agrees)."""
    return json.dumps(text, ensure_ascii=False)


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
