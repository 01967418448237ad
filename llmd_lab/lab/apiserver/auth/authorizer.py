"""The lab's authorizer chain, as kube-apiserver builds it: system:masters first, then RBAC.

``authorizerfactory.NewPrivilegedGroups(system:masters)`` allows its members everything before RBAC is
asked (``pkg/kubeapiserver/authorizer/config.go``); the union authorizer takes the first allow and joins the
deny reasons with newlines (``staging/src/k8s.io/apiserver/pkg/authorization/union``). :class:`Union`
satisfies the API server's ``Authorizer`` protocol (access.py): ``rules_for`` answers a
SelfSubjectRulesReview status (``pkg/registry/authorization/selfsubjectrulesreview/rest.go``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from llmd_lab.lab.apiserver.access import Access, Attributes, Decision, StaticTokenAuthenticator, UserInfo
from llmd_lab.lab.apiserver.auth.escalation import write_checker
from llmd_lab.lab.apiserver.auth.policy import PolicySource, StoragePolicySource
from llmd_lab.lab.apiserver.auth.rbac import RBACAuthorizer, ResolvedRules, RuleAuthorizer
from llmd_lab.lab.apiserver.auth.user import SYSTEM_MASTERS
from llmd_lab.lab.apiserver.store import Store

ALL_RESOURCES = {"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}
ALL_URLS = {"verbs": ["*"], "nonResourceURLs": ["*"]}
_RESOURCE_KEYS = ("verbs", "apiGroups", "resources", "resourceNames")


class PrivilegedGroups:
    """Members of the privileged groups may do anything (no reason given, as upstream)."""

    def __init__(self, groups: tuple[str, ...] = (SYSTEM_MASTERS,)) -> None:
        self.groups = groups

    def _privileged(self, user: UserInfo) -> bool:
        return any(g in user.groups for g in self.groups)

    def authorize(self, attrs: Attributes) -> Decision:
        return Decision(self._privileged(attrs.user), "")

    def resolve(self, user: UserInfo, namespace: str) -> ResolvedRules:
        return ResolvedRules([ALL_RESOURCES, ALL_URLS] if self._privileged(user) else [])


def rules_review_status(resolved: ResolvedRules) -> dict[str, Any]:
    """A SelfSubjectRulesReview ``status``: resource and non-resource rules, incomplete when a role is missing."""
    resource_rules, non_resource_rules = [], []
    for rule in resolved.rules:
        if rule.get("nonResourceURLs"):
            non_resource_rules.append({"verbs": list(rule.get("verbs") or []),
                                       "nonResourceURLs": list(rule["nonResourceURLs"])})
        else:
            resource_rules.append({k: list(rule[k]) for k in _RESOURCE_KEYS if rule.get(k)})
    status: dict[str, Any] = {"resourceRules": resource_rules, "nonResourceRules": non_resource_rules,
                              "incomplete": bool(resolved.errors)}
    if resolved.errors:
        status["evaluationError"] = ", ".join(resolved.errors)
    return status


class Union:
    """The first allow wins; otherwise the non-empty reasons, one a line."""

    def __init__(self, *authorizers: RuleAuthorizer) -> None:
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

    def resolve(self, user: UserInfo, namespace: str) -> ResolvedRules:
        out = ResolvedRules()
        for authorizer in self.authorizers:
            part = authorizer.resolve(user, namespace)
            out.rules += part.rules
            out.errors += part.errors
        return out

    def rules_for(self, user: UserInfo, namespace: str) -> dict[str, Any]:
        return rules_review_status(self.resolve(user, namespace))


def lab_authorizer(source: PolicySource) -> Union:
    """system:masters, then RBAC over ``source``."""
    return Union(PrivilegedGroups(), RBACAuthorizer(source))


def lab_access(store: Store, identities: Iterable[tuple[str, UserInfo]]) -> Access:
    """The lab's Access: its identities' tokens, system:masters + RBAC over the store, escalation checks and
    OpenShift's per-user Projects."""
    from llmd_lab.lab.apiserver.auth.projects_api import ProjectsAPI

    source = StoragePolicySource(store.storage)
    authorizer = lab_authorizer(source)
    return Access(StaticTokenAuthenticator(dict(identities)), authorizer,
                  write_checker(authorizer, source), ProjectsAPI(store, authorizer))
