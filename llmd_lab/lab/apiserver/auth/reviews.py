"""SelfSubjectAccessReview and SelfSubjectRulesReview answered from the real authorizer.

``kubectl auth can-i`` sends an SSAR (``--list`` an SSRR); the answers come from the same chain that guards
requests, so "can-i says yes" and "the request succeeds" never disagree. Shapes follow
``pkg/registry/authorization/selfsubjectaccessreview`` and ``selfsubjectrulesreview``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llmd_lab.lab.apiserver import errors
from llmd_lab.lab.apiserver.auth.attributes import Attributes
from llmd_lab.lab.apiserver.auth.authorizer import Authorizer
from llmd_lab.lab.apiserver.auth.user import UserInfo

_RESOURCE_KEYS = ("verbs", "apiGroups", "resources", "resourceNames")


def _check_access_spec(spec: Mapping[str, Any]) -> None:
    """Exactly one of resourceAttributes / nonResourceAttributes (authorization validation)."""
    resource, non_resource = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    if not resource and not non_resource:
        cause = errors.field_cause("spec.resourceAttributes", "Required value: exactly one of nonResourceAttributes "
                                   "or resourceAttributes must be specified", "FieldValueRequired")
    elif resource and non_resource:
        cause = errors.field_cause("spec.nonResourceAttributes", "Invalid value: cannot be specified in combination "
                                   "with resourceAttributes")
    else:
        return
    raise errors.invalid("SelfSubjectAccessReview", "authorization.k8s.io", "", [cause])


def access_attributes(user: UserInfo, spec: Mapping[str, Any]) -> Attributes:
    """The attributes an SSAR spec asks about."""
    _check_access_spec(spec)
    if spec.get("nonResourceAttributes"):
        nra = spec["nonResourceAttributes"]
        return Attributes(user, nra.get("verb", ""), path=nra.get("path") or "/")
    ra = spec["resourceAttributes"]
    return Attributes(user, ra.get("verb", ""), ra.get("group", ""), ra.get("resource", ""),
                      ra.get("subresource", ""), ra.get("namespace", ""), ra.get("name", ""))


def self_subject_access_review(authorizer: Authorizer, user: UserInfo, obj: dict) -> dict:
    """Fill ``status`` (allowed, reason) for an SSAR body."""
    decision = authorizer.authorize(access_attributes(user, obj.get("spec") or {}))
    status: dict[str, Any] = {"allowed": decision.allowed}
    if decision.reason:
        status["reason"] = decision.reason
    obj["status"] = status
    return obj


def self_subject_rules_review(authorizer: Authorizer, user: UserInfo, obj: dict) -> dict:
    """Fill ``status`` (resourceRules, nonResourceRules, incomplete) for an SSRR body."""
    namespace = (obj.get("spec") or {}).get("namespace")
    if not namespace:
        raise errors.bad_request("no namespace on request")
    resolved = authorizer.rules_for(user, namespace)
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
    obj["status"] = status
    return obj
