"""The RBAC authorizer: which rules apply to a user, and does any of them allow the request.

Follows ``plugin/pkg/auth/authorizer/rbac/rbac.go`` and ``pkg/registry/rbac/validation/rule.go``
(DefaultRuleResolver.VisitRulesFor): every ClusterRoleBinding is visited first, then the RoleBindings of the
request's namespace; a binding applies when a subject names the user, one of its groups, or (kind
ServiceAccount) the user ``system:serviceaccount:<ns>:<name>``. RBAC only allows: a request no rule allows
is denied with no opinion, and missing roles become the deny reason (``RBAC: clusterrole... not found``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from llmd_lab.lab.apiserver.access import Decision
from llmd_lab.lab.apiserver.auth.attributes import Attributes
from llmd_lab.lab.apiserver.auth.forbidden import go_quote
from llmd_lab.lab.apiserver.auth.policy import RBAC_GROUP, PolicySource
from llmd_lab.lab.apiserver.auth.rules import rule_allows
from llmd_lab.lab.apiserver.auth.user import UserInfo, service_account_username


@dataclass
class ResolvedRules:
    """The rules that apply to a user in a namespace, and roles that could not be found."""

    rules: list[Mapping[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def applies_to(user: UserInfo, subject: Mapping[str, Any], binding_namespace: str) -> bool:
    """Does one binding subject name this user (appliesToUser in rule.go)?"""
    kind, name = subject.get("kind"), subject.get("name", "")
    if kind == "User":
        return user.name == name
    if kind == "Group":
        return name in user.groups
    if kind == "ServiceAccount":
        namespace = subject.get("namespace") or binding_namespace
        return bool(namespace) and user.name == service_account_username(namespace, name)
    return False


def _not_found(kind: str, name: str) -> str:
    return f'{kind.lower()}.{RBAC_GROUP} "{name}" not found'


class RuleAuthorizer(Protocol):
    """An authorizer that can also say which rules a user holds (for escalation checks and rules reviews)."""

    def authorize(self, attrs: Attributes) -> Decision: ...
    def resolve(self, user: UserInfo, namespace: str) -> ResolvedRules: ...


class RuleResolver:
    """Resolves bindings to rules over a :class:`PolicySource`."""

    def __init__(self, source: PolicySource) -> None:
        self.source = source

    def role_ref_rules(self, role_ref: Mapping[str, Any], namespace: str) -> tuple[list[Mapping[str, Any]], str]:
        """The rules a roleRef points at, or an error string when the role does not exist (GetRoleReferenceRules)."""
        kind, name = role_ref.get("kind"), role_ref.get("name", "")
        if kind == "ClusterRole":
            role = self.source.cluster_role(name)
        elif kind == "Role":
            role = self.source.role(namespace, name)
        else:
            return [], f"unsupported role reference kind: {kind!r}"
        if role is None:
            return [], _not_found(kind, name)
        return list(role.get("rules") or []), ""

    def _bindings(self, namespace: str) -> Iterator[tuple[Mapping[str, Any], str]]:
        for binding in self.source.cluster_role_bindings():
            yield binding, ""
        if namespace:
            for binding in self.source.role_bindings(namespace):
                yield binding, namespace

    def visit(self, user: UserInfo, namespace: str) -> Iterator[tuple[Mapping[str, Any] | None, str, str]]:
        """(rule, "", source) for each rule that applies, (None, error, source) for a binding whose role is missing."""
        for binding, binding_ns in self._bindings(namespace):
            subject = next((s for s in binding.get("subjects") or [] if applies_to(user, s, binding_ns)), None)
            if subject is None:
                continue
            role_ref = binding.get("roleRef") or {}
            rules, error = self.role_ref_rules(role_ref, binding_ns)
            source = describe_binding(binding, role_ref, subject, binding_ns)
            if error:
                yield None, error, source
            for rule in rules:
                yield rule, "", source

    def rules_for(self, user: UserInfo, namespace: str) -> ResolvedRules:
        out = ResolvedRules()
        for rule, error, _ in self.visit(user, namespace):
            if rule is None:
                out.errors.append(error)
            else:
                out.rules.append(rule)
        return out


def _describe_subject(subject: Mapping[str, Any], binding_ns: str) -> str:
    name = subject.get("name", "")
    if subject.get("kind") == "ServiceAccount":
        name = f"{name}/{subject.get('namespace') or binding_ns}"
    return f"{subject.get('kind')} {go_quote(name)}"


def describe_binding(binding: Mapping[str, Any], role_ref: Mapping[str, Any], subject: Mapping[str, Any],
                     binding_ns: str) -> str:
    """The allow reason's source, as rbac.go's clusterRoleBindingDescriber / roleBindingDescriber print it."""
    name = binding["metadata"]["name"]
    kind = "RoleBinding" if binding_ns else "ClusterRoleBinding"
    if binding_ns:
        name = f"{name}/{binding_ns}"
    return (f"{kind} {go_quote(name)} of {role_ref.get('kind')} {go_quote(role_ref.get('name', ''))} to "
            f"{_describe_subject(subject, binding_ns)}")


class RBACAuthorizer:
    """``authorize(attrs) -> Decision`` as kube-apiserver's RBAC authorizer decides."""

    def __init__(self, source: PolicySource) -> None:
        self.resolver = RuleResolver(source)

    def authorize(self, attrs: Attributes) -> Decision:
        errors: list[str] = []
        for rule, error, source in self.resolver.visit(attrs.user, attrs.namespace):
            if rule is None:
                errors.append(error)
            elif rule_allows(attrs, rule):
                return Decision(True, f"RBAC: allowed by {source}")
        return Decision(False, rbac_reason(errors))

    def resolve(self, user: UserInfo, namespace: str) -> ResolvedRules:
        return self.resolver.rules_for(user, namespace)


def rbac_reason(errors: list[str]) -> str:
    """``RBAC: <error>`` or ``RBAC: [<e1>, <e2>]`` (utilerrors.NewAggregate formatting), or empty."""
    if not errors:
        return ""
    unique = list(dict.fromkeys(errors))
    return "RBAC: " + (unique[0] if len(unique) == 1 else "[" + ", ".join(unique) + "]")
