"""Request attributes for the authorizer: constructors over the API server's ``Attributes`` (access.py).

Mirrors ``k8s.io/apiserver/pkg/authorization/authorizer.AttributesRecord``: a resource request names a verb,
API group, resource, optional subresource, namespace and name; a non-resource request names a verb and a path.
"""

from __future__ import annotations

from llmd_lab.lab.apiserver.access import Attributes, UserInfo

__all__ = ["Attributes", "combined_resource", "non_resource", "resource"]


def combined_resource(attrs: Attributes) -> str:
    """``resource/subresource`` as RBAC rules name it."""
    return f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource


def resource(user: UserInfo, verb: str, group: str, resource_: str, *, namespace: str = "", name: str = "",
             subresource: str = "") -> Attributes:
    """A resource request's attributes."""
    return Attributes(user, verb, group, resource_, subresource, namespace, name)


def non_resource(user: UserInfo, verb: str, path: str) -> Attributes:
    """A non-resource request's attributes (``/healthz``, ``/version``, ``/metrics``)."""
    if not path:
        raise ValueError("a non-resource request needs a path")
    return Attributes(user, verb, path=path)
