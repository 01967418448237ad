"""Escalation prevention: nobody grants through a Role or binding what they cannot do themselves.

Follows ``pkg/registry/rbac/validation/policy_comparator.go`` (Covers: break the new rules into one
verb/group/resource/name each and require an owned rule covering every piece, ``*/sub`` covering a
subresource of any resource) and ``rule.go`` (ConfirmNoEscalation's message). Members of ``system:masters``
and holders of ``escalate`` (roles) or ``bind`` (bindings, on the referenced role's name) skip the check,
as ``pkg/registry/rbac/escalation_check.go`` lets them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from llmd_lab.lab.apiserver.auth.attributes import Attributes
from llmd_lab.lab.apiserver.auth.forbidden import go_quote, new_forbidden
from llmd_lab.lab.apiserver.auth.policy import RBAC_GROUP, PolicySource
from llmd_lab.lab.apiserver.auth.rbac import RuleAuthorizer, RuleResolver
from llmd_lab.lab.apiserver.auth.rules import ALL
from llmd_lab.lab.apiserver.auth.user import SYSTEM_MASTERS, UserInfo

Rule = Mapping[str, Any]


def _l(rule: Rule, key: str) -> list[str]:
    return list(rule.get(key) or [])


def breakdown(rule: Rule) -> list[dict[str, list[str]]]:
    """One rule → simple rules of one verb and one group/resource/name (or one non-resource URL)."""
    out: list[dict[str, list[str]]] = []
    for verb in _l(rule, "verbs"):
        for group in _l(rule, "apiGroups"):
            for resource in _l(rule, "resources"):
                names = _l(rule, "resourceNames")
                for name in names or [None]:
                    simple = {"apiGroups": [group], "resources": [resource], "verbs": [verb]}
                    if name is not None:
                        simple["resourceNames"] = [name]
                    out.append(simple)
        for url in _l(rule, "nonResourceURLs"):
            out.append({"nonResourceURLs": [url], "verbs": [verb]})
    return out


def _resource_covers(owned: list[str], wanted: str) -> bool:
    if ALL in owned or wanted in owned:
        return True
    if "/" not in wanted:
        return False
    return f"*/{wanted.split('/', 1)[1]}" in owned


def _url_covers(owned: list[str], wanted: str) -> bool:
    return any(u == wanted or u == ALL or (u.endswith(ALL) and wanted.startswith(u[:-1])) for u in owned)


def rule_covers(owner: Rule, simple: Rule) -> bool:
    """ruleCovers: does ``owner`` grant everything the simple rule does?"""
    verbs = _l(owner, "verbs")
    if not (ALL in verbs or all(v in verbs for v in _l(simple, "verbs"))):
        return False
    if _l(simple, "nonResourceURLs"):
        return all(_url_covers(_l(owner, "nonResourceURLs"), u) for u in _l(simple, "nonResourceURLs"))
    groups = _l(owner, "apiGroups")
    if not (ALL in groups or all(g in groups for g in _l(simple, "apiGroups"))):
        return False
    if not all(_resource_covers(_l(owner, "resources"), r) for r in _l(simple, "resources")):
        return False
    owned_names, wanted_names = _l(owner, "resourceNames"), _l(simple, "resourceNames")
    if not wanted_names:
        return not owned_names  # an unnamed rule reaches every object: only an unnamed rule covers it
    return not owned_names or all(n in owned_names for n in wanted_names)


def missing_rules(owned: Iterable[Rule], wanted: Iterable[Rule]) -> list[dict[str, list[str]]]:
    """Covers(): the simple rules of ``wanted`` that no owned rule covers."""
    owned = list(owned)
    return [s for rule in wanted for s in breakdown(rule) if not any(rule_covers(o, s) for o in owned)]


def compact(rules: list[dict[str, list[str]]]) -> list[dict[str, list[str]]]:
    """CompactRules: merge simple rules that differ only in their verb."""
    merged: dict[tuple, dict[str, list[str]]] = {}
    for rule in rules:
        key = tuple((k, tuple(v)) for k, v in sorted(rule.items()) if k != "verbs")
        into = merged.setdefault(key, {k: list(v) for k, v in rule.items() if k != "verbs"} | {"verbs": []})
        for verb in rule["verbs"]:
            if verb not in into["verbs"]:
                into["verbs"].append(verb)
    return list(merged.values())


def _go_list(values: list[str]) -> str:
    return "[" + " ".join(go_quote(v) for v in values) + "]"


def compact_string(rule: Mapping[str, list[str]]) -> str:
    """rbacv1helpers.CompactString: ``{APIGroups:[""], Resources:["nodes"], Verbs:["list"]}``."""
    parts = [f"{label}:{_go_list(rule[key])}" for key, label in (
        ("apiGroups", "APIGroups"), ("resources", "Resources"), ("nonResourceURLs", "NonResourceURLs"),
        ("resourceNames", "ResourceNames"), ("verbs", "Verbs")) if rule.get(key)]
    return "{" + ", ".join(parts) + "}"


def escalation_message(user: UserInfo, missing: list[dict[str, list[str]]], resolution_errors: list[str]) -> str:
    """ConfirmNoEscalation's error text (sorted, one missing rule a line)."""
    lines = sorted({compact_string(r) for r in compact(missing)})
    text = (f"user {go_quote(user.name)} (groups={_go_list(list(user.groups))}) is attempting to grant RBAC "
            "permissions not currently held:\n" + "\n".join(lines))
    if resolution_errors:
        text += f"; resolution errors: [{', '.join(resolution_errors)}]"
    return text


def escalation_allowed(user: UserInfo) -> bool:
    """EscalationAllowed: system:masters may write any role or binding."""
    return SYSTEM_MASTERS in user.groups


def _verb_allowed(authorizer: RuleAuthorizer, user: UserInfo, verb: str, resource: str, namespace: str, name: str) -> bool:
    attrs = Attributes(user, verb, RBAC_GROUP, resource, namespace=namespace, name=name)
    return authorizer.authorize(attrs).allowed


def _confirm(authorizer: RuleAuthorizer, user: UserInfo, namespace: str, rules: list[Rule], plural: str, name: str) -> None:
    resolved = authorizer.resolve(user, namespace)
    missing = missing_rules(resolved.rules, rules)
    if missing:
        raise new_forbidden(plural, RBAC_GROUP, name, escalation_message(user, missing, resolved.errors))


def check_role_write(authorizer: RuleAuthorizer, user: UserInfo, role: Mapping[str, Any]) -> None:
    """Creating or updating a Role/ClusterRole (pkg/registry/rbac/role/policybased/storage.go): 403 when the
    writer lacks any rule it grants, unless in system:masters or holding ``escalate`` on it."""
    meta = role.get("metadata") or {}
    namespace, name = meta.get("namespace") or "", meta.get("name") or ""
    plural = "roles" if role.get("kind") == "Role" else "clusterroles"
    if escalation_allowed(user) or _verb_allowed(authorizer, user, "escalate", plural, namespace, name):
        return
    _confirm(authorizer, user, namespace, list(role.get("rules") or []), plural, name)


def check_binding_write(authorizer: RuleAuthorizer, user: UserInfo, binding: Mapping[str, Any],
                        role_rules: Callable[[Mapping[str, Any], str], tuple[list[Rule], str]]) -> None:
    """Creating or updating a RoleBinding/ClusterRoleBinding (rolebinding/policybased/storage.go): allowed for
    system:masters, for holders of ``bind`` on the referenced role, or when the writer holds every rule of it."""
    meta = binding.get("metadata") or {}
    namespace, name = meta.get("namespace") or "", meta.get("name") or ""
    plural = "rolebindings" if binding.get("kind") == "RoleBinding" else "clusterrolebindings"
    role_ref = binding.get("roleRef") or {}
    ref_plural = "roles" if role_ref.get("kind") == "Role" else "clusterroles"
    if escalation_allowed(user) or _verb_allowed(authorizer, user, "bind", ref_plural, namespace,
                                                 role_ref.get("name", "")):
        return
    rules, error = role_rules(role_ref, namespace)
    if error:
        raise new_forbidden(plural, RBAC_GROUP, name, error)
    _confirm(authorizer, user, namespace, rules, plural, name)


def write_checker(authorizer: RuleAuthorizer, source: PolicySource) -> Callable[[UserInfo, dict], None]:
    """``Access.check_write``: the escalation checks of the rbac registries, for any object written over
    ``source`` (a PolicySource). A Role update that leaves the rules as they are is not re-checked, as the
    role registry's update skips it when the rules are semantically equal."""
    role_rules = RuleResolver(source).role_ref_rules

    def check(user: UserInfo, obj: dict) -> None:
        if (obj.get("apiVersion") or "").rpartition("/")[0] != RBAC_GROUP:
            return
        kind, meta = obj.get("kind"), obj.get("metadata") or {}
        if kind in ("Role", "ClusterRole"):
            old = source.role(meta.get("namespace") or "", meta.get("name") or "") if kind == "Role" \
                else source.cluster_role(meta.get("name") or "")
            if old is None or (old.get("rules") or []) != (obj.get("rules") or []):
                check_role_write(authorizer, user, obj)
        elif kind in ("RoleBinding", "ClusterRoleBinding"):
            check_binding_write(authorizer, user, obj, role_rules)
    return check
