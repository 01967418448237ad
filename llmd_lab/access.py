"""Who am I on this cluster, what may I do, and what a 403 means in words.

An attendee is not cluster-admin: they own one project, cannot list nodes or operators, and ask the
instructor for anything cluster-wide. This module asks the API server the questions ``oc whoami`` and
``oc auth can-i`` ask (SelfSubjectReview, SelfSubjectAccessReview) and turns every 403 the library meets
into :class:`PermissionDenied`: which permission is missing, where, and who can grant it with which
command. It never reads or shows a token.

The 403 wording parsed here is kube-apiserver's (``k8s.io/apiserver/pkg/endpoints/handlers/
responsewriters/errors.go``, ``forbiddenMessage``): ``User "u" cannot VERB resource "RES" in API group
"G" in the namespace "NS"`` or ``... at the cluster scope``.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ParamSpec, TypeVar

from kubernetes import client
from kubernetes.client.rest import ApiException

P = ParamSpec("P")
R = TypeVar("R")

_FORBIDDEN = re.compile(
    r'User "(?P<user>[^"]*)" cannot (?P<verb>[\w*-]+) resource "(?P<resource>[^"]+)" in API group "(?P<group>[^"]*)"'
    r'(?: in the namespace "(?P<namespace>[^"]+)"| at the cluster scope)'
)


@dataclass(frozen=True)
class Permission:
    """One ``oc auth can-i`` question: verb on group/resource[/subresource], in a namespace or cluster-wide."""

    verb: str
    resource: str
    group: str = ""
    subresource: str | None = None
    namespaced: bool = True

    @property
    def label(self) -> str:
        res = self.resource + (f"/{self.subresource}" if self.subresource else "")
        return f"{self.verb} {res}" + ("" if self.namespaced else " (cluster-wide)")


#: What the workshop needs (namespaced) and what only the instructor has (cluster-wide): the can-i summary.
SUMMARY = (
    Permission("create", "llminferenceservices", "serving.kserve.io"),
    Permission("get", "pods", "", "log"),
    Permission("get", "pods", "", "proxy"),
    Permission("list", "events"),
    Permission("list", "nodes", namespaced=False),
    Permission("list", "clusterserviceversions", "operators.coreos.com", namespaced=False),
)
#: The question that tells an instructor (cluster-admin: any verb on anything) from an attendee.
CLUSTER_ADMIN = Permission("*", "*", "*", namespaced=False)


@dataclass
class Identity:
    """The user the API server sees (SelfSubjectReview), and what they may do in one namespace."""

    username: str = "?"
    groups: list[str] = field(default_factory=list)
    allowed: dict[str, bool] = field(default_factory=dict)  # Permission.label -> allowed
    cluster_admin: bool = False

    def can_i_summary(self) -> str:
        """One line: what you can and cannot do (``oc auth can-i``), for ``Connection.summary()``."""
        can = [k for k, ok in self.allowed.items() if ok]
        cannot = [k for k, ok in self.allowed.items() if not ok]
        if self.cluster_admin:
            return "cluster-admin (the instructor's view: every check, every namespace)"
        return f"can {', '.join(can) or 'nothing checked'}; cannot {', '.join(cannot) or '-'}"


def self_subject_review(api: client.ApiClient) -> tuple[str, list[str]]:
    """``oc whoami``: the username and groups the API server authenticated (no token involved)."""
    try:
        review = client.AuthenticationV1Api(api).create_self_subject_review(
            {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}, _request_timeout=10
        )
        info = review.status.user_info
        return info.username or "?", list(info.groups or [])
    except (ApiException, AttributeError, ValueError):
        pass
    try:  # OpenShift before SelfSubjectReview: the user.openshift.io "~" user
        me = client.CustomObjectsApi(api).get_cluster_custom_object("user.openshift.io", "v1", "users", "~")
        return me["metadata"]["name"], list(me.get("groups") or [])
    except ApiException:
        return "?", []


def access_review(api: client.ApiClient, perm: Permission, namespace: str | None) -> bool:
    """``oc auth can-i``: one SelfSubjectAccessReview; a refused review counts as "no"."""
    attrs: dict[str, str] = {"verb": perm.verb, "resource": perm.resource, "group": perm.group}
    if perm.namespaced and namespace:
        attrs["namespace"] = namespace
    if perm.subresource:
        attrs["subresource"] = perm.subresource
    body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": attrs}}  # fmt: skip
    try:
        review = client.AuthorizationV1Api(api).create_self_subject_access_review(body, _request_timeout=10)
    except ApiException:
        return False
    return bool(review.status.allowed)


def identity(api: client.ApiClient, namespace: str) -> Identity:
    """Who you are and the can-i summary for ``namespace``."""
    user, groups = self_subject_review(api)
    allowed = {p.label: access_review(api, p, namespace) for p in SUMMARY}
    return Identity(user, groups, allowed, access_review(api, CLUSTER_ADMIN, None))


# ------------------------------------------------------------------------------------------------ 403s
class PermissionDenied(ApiException):
    """A 403 in words: the missing permission, where, and the command that grants it (and who runs it).

    Still an ``ApiException`` with ``status == 403``, so code that handles 403s keeps working.
    """

    def __init__(self, exc: ApiException, *, user: str, verb: str, resource: str, group: str,
                 namespace: str | None) -> None:  # fmt: skip
        super().__init__(status=403, reason="Forbidden")
        self.body, self.headers = exc.body, exc.headers
        self.user, self.verb, self.resource, self.group, self.namespace = user, verb, resource, group, namespace

    @property
    def grant(self) -> str:
        """The exact command that grants the permission, for whoever may run it."""
        res = self.resource.split("/")[0] + (f".{self.group}" if self.group else "")
        if self.namespace:
            return f"oc adm policy add-role-to-user edit {self.user} -n {self.namespace}"
        role = f"llmd-{self.verb}-{self.resource.split('/')[0]}".replace("*", "all")
        return (f"oc create clusterrole {role} --verb={self.verb} --resource={res} && "
                f"oc adm policy add-cluster-role-to-user {role} {self.user}")  # fmt: skip

    @property
    def granted_by(self) -> str:
        if self.namespace:
            return f"an admin of project {self.namespace} (its owner, or your instructor)"
        return "your instructor (a cluster-admin)"

    def __str__(self) -> str:
        where = f"in namespace {self.namespace}" if self.namespace else "cluster-wide"
        group = self.group or "core"
        return (f"403 Forbidden: {self.user} may not {self.verb} {self.resource} ({group} API group) {where}. "
                f"Ask {self.granted_by} to run: {self.grant}")  # fmt: skip


def _status_message(exc: ApiException) -> str:
    """The ``message`` of the Status body a 403 carries (the body is JSON; its quotes are escaped)."""
    body = exc.body.decode(errors="replace") if isinstance(exc.body, bytes) else str(exc.body or "")
    try:
        return str(json.loads(body).get("message", ""))
    except (ValueError, AttributeError):
        return body


def explain(exc: ApiException) -> ApiException:
    """``exc`` as :class:`PermissionDenied` when it is a 403 with kube-apiserver's wording, else ``exc``."""
    if isinstance(exc, PermissionDenied) or exc.status != 403:
        return exc
    found = _FORBIDDEN.search(_status_message(exc)) or _FORBIDDEN.search(str(exc.reason or ""))
    if not found:
        return exc
    g = found.groupdict()
    return PermissionDenied(exc, user=g["user"], verb=g["verb"], resource=g["resource"], group=g["group"],
                            namespace=g["namespace"])  # fmt: skip


def explains_forbidden(fn: Callable[P, R]) -> Callable[P, R]:
    """Decorator: a 403 escaping ``fn`` becomes :class:`PermissionDenied` (same status, a readable message)."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except ApiException as exc:
            better = explain(exc)
            if better is exc:
                raise
            raise better from None

    return wrapper
