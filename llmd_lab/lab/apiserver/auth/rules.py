"""Matching one RBAC ``PolicyRule`` (a dict, as stored) against a request, as kube-apiserver does.

``rule_allows`` follows ``plugin/pkg/auth/authorizer/rbac/rbac.go`` (RuleAllows) and the matchers of
``pkg/apis/rbac/v1/evaluation_helpers.go``: ``*`` matches everything, ``*/status`` matches that subresource
of every resource, resourceNames restrict to named objects (so an unnamed ``list`` never matches them), and a
nonResourceURL ending in ``*`` matches by prefix.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llmd_lab.lab.apiserver.auth.attributes import Attributes, combined_resource

ALL = "*"


def _list(rule: Mapping[str, Any], key: str) -> list[str]:
    return list(rule.get(key) or [])


def verb_matches(rule: Mapping[str, Any], verb: str) -> bool:
    verbs = _list(rule, "verbs")
    return ALL in verbs or verb in verbs


def api_group_matches(rule: Mapping[str, Any], group: str) -> bool:
    groups = _list(rule, "apiGroups")
    return ALL in groups or group in groups


def resource_matches(rule: Mapping[str, Any], combined: str, subresource: str) -> bool:
    for res in _list(rule, "resources"):
        if res == ALL or res == combined:
            return True
        if subresource and res == f"*/{subresource}":
            return True
    return False


def resource_name_matches(rule: Mapping[str, Any], name: str) -> bool:
    names = _list(rule, "resourceNames")
    return not names or name in names


def non_resource_url_matches(rule: Mapping[str, Any], path: str) -> bool:
    for url in _list(rule, "nonResourceURLs"):
        if url == ALL or url == path:
            return True
        if url.endswith(ALL) and path.startswith(url[:-1]):
            return True
    return False


def rule_allows(attrs: Attributes, rule: Mapping[str, Any]) -> bool:
    """Does this one rule grant the request?"""
    if not verb_matches(rule, attrs.verb):
        return False
    if attrs.is_resource_request:
        return (api_group_matches(rule, attrs.api_group)
                and resource_matches(rule, combined_resource(attrs), attrs.subresource)
                and resource_name_matches(rule, attrs.name))
    return non_resource_url_matches(rule, attrs.path)
