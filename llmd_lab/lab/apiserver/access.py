"""The authentication/authorization seam between the HTTP layer and the REST verbs.

kube-apiserver authenticates every request to a ``user.Info`` (name, uid, groups), turns the URL into
request attributes (``authorizer.Attributes``: verb, API group, resource, subresource, namespace, name, or a
non-resource path) and asks its authorizer chain before any verb runs. The lab does the same here:
:class:`Authenticator` and :class:`Authorizer` are protocols, and :func:`default_access` is the one place
the lab chooses them. Today that is the lab's single identity (the kubeconfig's bearer token, an admin
in ``system:masters`` like OpenShift's kube:admin) and :class:`MastersAuthorizer`, which allows
``system:masters`` everything, as kube-apiserver's privileged-group authorizer does.

Upstream: kubernetes@v1.32 staging/src/k8s.io/apiserver/pkg/authentication/user/user.go,
staging/src/k8s.io/apiserver/pkg/authorization/authorizer/interfaces.go,
pkg/kubeapiserver/authorizer/config.go (system:masters short-circuit).
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from llmd_lab.lab.apiserver import errors

LAB_USER = "llmd-lab-admin"
MASTERS = "system:masters"
AUTHENTICATED = "system:authenticated"


@dataclass(frozen=True)
class UserInfo:
    """Who made a request (kube's ``user.Info``)."""

    name: str
    groups: tuple[str, ...] = ()
    uid: str = ""
    extra: dict[str, tuple[str, ...]] = field(default_factory=dict, compare=False, hash=False)

    def to_api(self) -> dict:
        """As ``authentication.k8s.io/v1`` UserInfo (TokenReview, SelfSubjectReview)."""
        out: dict = {"username": self.name, "groups": list(self.groups)}
        if self.uid:
            out["uid"] = self.uid
        if self.extra:
            out["extra"] = {k: list(v) for k, v in self.extra.items()}
        return out


@dataclass(frozen=True)
class Attributes:
    """What a request asks to do (kube's ``authorizer.Attributes``); ``path`` is set for non-resource URLs."""

    user: UserInfo
    verb: str
    api_group: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    path: str = ""

    @property
    def is_resource_request(self) -> bool:
        return not self.path


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""


class Authenticator(Protocol):
    def authenticate(self, token: str) -> UserInfo | None:
        """The user a bearer token belongs to, or None (401)."""


class Authorizer(Protocol):
    def authorize(self, attrs: Attributes) -> Decision:
        """Allow or deny one request (deny is the default answer, as with kube's RBAC)."""

    def rules_for(self, user: UserInfo, namespace: str) -> dict:
        """A SelfSubjectRulesReview ``status`` for ``user`` in ``namespace``."""


class StaticTokenAuthenticator:
    """Known bearer tokens and their users (kube-apiserver's ``--token-auth-file``); constant-time compare."""

    def __init__(self, tokens: dict[str, UserInfo]) -> None:
        if not tokens or not all(tokens):
            raise ValueError("the API server needs a non-empty bearer token")
        self._tokens = [(t.encode(), user) for t, user in tokens.items()]

    def authenticate(self, token: str) -> UserInfo | None:
        presented = token.encode()
        found = None
        for known, user in self._tokens:
            if hmac.compare_digest(presented, known):
                found = user
        return found


class MastersAuthorizer:
    """Allows members of ``system:masters`` everything and denies everyone else."""

    def authorize(self, attrs: Attributes) -> Decision:
        if MASTERS in attrs.user.groups:
            return Decision(True, f"the lab's admin user {attrs.user.name!r} (kubeconfig bearer token) is in "
                                  f"group {MASTERS!r}, which may do everything")
        return Decision(False, "")

    def rules_for(self, user: UserInfo, namespace: str) -> dict:
        if MASTERS not in user.groups:
            return {"resourceRules": [], "nonResourceRules": [], "incomplete": False}
        return {"resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
                "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}], "incomplete": False}


@dataclass(frozen=True)
class Access:
    authenticator: Authenticator
    authorizer: Authorizer
    # checks a write with the writer's identity before it is stored (kube's RBAC escalation check lives in the
    # rbac registries' storage, which sees the request's user); raises ApiError to refuse
    check_write: Callable[[UserInfo, dict], None] | None = None
    # resources answered per user instead of from storage (OpenShift's Projects); ``serves(rt)`` and
    # ``async handle(request, rt, target, user) -> Response``, called after authorization
    computed: Any = None


def lab_admin() -> UserInfo:
    return UserInfo(LAB_USER, (MASTERS, AUTHENTICATED))


def default_access(token: str) -> Access:
    """The one place the lab chooses its authenticator and authorizer."""
    return Access(StaticTokenAuthenticator({token: lab_admin()}), MastersAuthorizer())


def check(authorizer: Authorizer, attrs: Attributes) -> None:
    """Raise kube-apiserver's 403 when ``attrs`` is not allowed."""
    decision = authorizer.authorize(attrs)
    if not decision.allowed:
        raise forbidden(attrs, decision.reason)


def forbidden(attrs: Attributes, reason: str = "") -> errors.ApiError:
    """kube-apiserver's wording (staging/src/k8s.io/apiserver/pkg/endpoints/handlers/responsewriters/errors.go):
    the message names ``resource/subresource``; the error, as apierrors.NewForbidden, names only the
    GroupResource (``pods "p" is forbidden: ... resource "pods/log" ...``) and carries it in its details."""
    user = json.dumps(attrs.user.name)
    if not attrs.is_resource_request:
        message = f"User {user} cannot {attrs.verb} path {json.dumps(attrs.path)}"
    else:
        resource = attrs.resource + (f"/{attrs.subresource}" if attrs.subresource else "")
        scope = f" in the namespace {json.dumps(attrs.namespace)}" if attrs.namespace else " at the cluster scope"
        message = (f"User {user} cannot {attrs.verb} resource {json.dumps(resource)} in API group "
                   f"{json.dumps(attrs.api_group)}{scope}")
    message = message.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if reason:
        message += f": {reason}"
    if not attrs.is_resource_request:
        return errors.ApiError(403, "Forbidden", f"forbidden: {message}")
    qualified = attrs.resource + (f".{attrs.api_group}" if attrs.api_group else "")
    named = f" {json.dumps(attrs.name)}" if attrs.name else ""
    details = {"kind": attrs.resource, **({"name": attrs.name} if attrs.name else {}),
               **({"group": attrs.api_group} if attrs.api_group else {})}
    return errors.ApiError(403, "Forbidden", f"{qualified}{named} is forbidden: {message}", details=details)
