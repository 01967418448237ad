"""What is being asked: the request attributes kube-apiserver's authorizers decide on.

Mirrors ``k8s.io/apiserver/pkg/authorization/authorizer.AttributesRecord``: a resource request names a verb,
API group, resource, optional subresource, namespace and name; a non-resource request names a verb and a path.
"""

from __future__ import annotations

from dataclasses import dataclass

from llmd_lab.lab.apiserver.auth.user import UserInfo

# HTTP method -> request verb for a named object (endpoints/request/requestinfo.go); collections and
# watches are resolved by the HTTP layer (``list``, ``watch``, ``deletecollection``).
HTTP_VERBS = {"GET": "get", "HEAD": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


@dataclass(frozen=True)
class Attributes:
    """One authorization question: may ``user`` do ``verb`` on this resource (or non-resource ``path``)?"""

    user: UserInfo
    verb: str
    api_group: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    path: str = ""  # set only for non-resource requests

    @property
    def is_resource_request(self) -> bool:
        return not self.path

    @property
    def combined_resource(self) -> str:
        """``resource/subresource`` as RBAC rules name it."""
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource


def resource(user: UserInfo, verb: str, group: str, resource_: str, *, namespace: str = "", name: str = "",
             subresource: str = "") -> Attributes:
    """A resource request's attributes."""
    return Attributes(user, verb, group, resource_, subresource, namespace, name)


def non_resource(user: UserInfo, verb: str, path: str) -> Attributes:
    """A non-resource request's attributes (``/healthz``, ``/version``, ``/metrics``)."""
    if not path:
        raise ValueError("a non-resource request needs a path")
    return Attributes(user, verb, path=path)
