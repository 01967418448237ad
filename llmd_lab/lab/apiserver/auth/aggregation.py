"""ClusterRole aggregation: fill a role's rules from every ClusterRole its aggregationRule selects.

Follows ``pkg/controller/clusterroleaggregation/clusterroleaggregation_controller.go``: selected roles are
taken in name order (the role itself excluded), their rules appended unless an equal rule is already there,
and the aggregated role's own ``rules`` are replaced by the result. ``aggregate_all`` repeats until nothing
changes, so chains (view → edit → admin) settle as the controller's requeues make them settle.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

from llmd_lab.lab.apiserver.selectors import labels_match, selector_from_match


def aggregated_rules(role: Mapping[str, Any], cluster_roles: Iterable[Mapping[str, Any]]) -> list[dict] | None:
    """The rules ``role`` should hold, or None when it has no aggregationRule."""
    rule = role.get("aggregationRule")
    if not rule:
        return None
    selectors = [selector_from_match(s) for s in rule.get("clusterRoleSelectors") or []]
    name = role["metadata"]["name"]
    out: list[dict] = []
    for other in sorted(cluster_roles, key=lambda r: r["metadata"]["name"]):
        if other["metadata"]["name"] == name:
            continue
        if not any(labels_match(sel, other) for sel in selectors):
            continue
        for policy_rule in other.get("rules") or []:
            if policy_rule not in out:
                out.append(copy.deepcopy(dict(policy_rule)))
    return out


def aggregate_all(cluster_roles: list[dict]) -> list[str]:
    """Aggregate every role in place (to a fixed point); returns the names whose rules changed."""
    changed: list[str] = []
    for _ in range(len(cluster_roles) + 1):
        moved = False
        for role in cluster_roles:
            rules = aggregated_rules(role, cluster_roles)
            if rules is not None and rules != (role.get("rules") or []):
                role["rules"] = rules
                changed.append(role["metadata"]["name"])
                moved = True
        if not moved:
            break
    return list(dict.fromkeys(changed))
