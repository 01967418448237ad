"""The lab's authorizer chain, as kube-apiserver builds it: system:masters first, then RBAC.

``authorizerfactory.NewPrivilegedGroups(system:masters)`` allows its members everything before RBAC is
asked (``pkg/kubeapiserver/authorizer/config.go``); the union authorizer takes the first allow and joins the
deny reasons with newlines (``staging/src/k8s.io/apiserver/pkg/authorization/union``).
"""

from __future__ import annotations

from typing import Protocol

from llmd_lab.lab.apiserver.auth.attributes import Attributes
from llmd_lab.lab.apiserver.auth.policy import PolicySource
from llmd_lab.lab.apiserver.auth.rbac import Decision, RBACAuthorizer, ResolvedRules
from llmd_lab.lab.apiserver.auth.user import SYSTEM_MASTERS, UserInfo

ALL_RESOURCES = {"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}
ALL_URLS = {"verbs": ["*"], "nonResourceURLs": ["*"]}


class Authorizer(Protocol):
    def authorize(self, attrs: Attributes) -> Decision: ...
    def rules_for(self, user: UserInfo, namespace: str) -> ResolvedRules: ...


class PrivilegedGroups:
    """Members of the privileged groups may do anything (no reason given, as upstream)."""

    def __init__(self, groups: tuple[str, ...] = (SYSTEM_MASTERS,)) -> None:
        self.groups = groups

    def _privileged(self, user: UserInfo) -> bool:
        return any(g in user.groups for g in self.groups)

    def authorize(self, attrs: Attributes) -> Decision:
        return Decision(self._privileged(attrs.user), "")

    def rules_for(self, user: UserInfo, namespace: str) -> ResolvedRules:
        return ResolvedRules([ALL_RESOURCES, ALL_URLS] if self._privileged(user) else [])


class Union:
    """The first allow wins; otherwise the non-empty reasons, one a line."""

    def __init__(self, *authorizers: Authorizer) -> None:
        self.authorizers = authorizers

    def authorize(self, attrs: Attributes) -> Decision:
        reasons = []
        for authorizer in self.authorizers:
            decision = authorizer.authorize(attrs)
            if decision.allowed:
                return decision
            if decision.reason:
                reasons.append(decision.reason)
        return Decision(False, "\n".join(reasons))

    def rules_for(self, user: UserInfo, namespace: str) -> ResolvedRules:
        out = ResolvedRules()
        for authorizer in self.authorizers:
            part = authorizer.rules_for(user, namespace)
            out.rules += part.rules
            out.errors += part.errors
        return out


def lab_authorizer(source: PolicySource) -> Union:
    """system:masters, then RBAC over ``source``."""
    return Union(PrivilegedGroups(), RBACAuthorizer(source))
