"""kube-scheduler's filter and score plugins for the resources, selectors and taints a workshop touches.

Each node is tried against the filters in kube-scheduler's order (NodeUnschedulable, TaintToleration,
NodeAffinity, NodeResourcesFit); the first failing filter gives the node's reasons. When no node fits,
``fit_error_message`` phrases the histogram exactly as Kubernetes 1.32 does in the ``FailedScheduling``
event, preemption post-filter included, because that sentence is what the workshop teaches people to read.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from llmd_lab.lab.scheduler.quantity import to_units

AFFINITY_REASON = "node(s) didn't match Pod's node affinity/selector"
UNSCHEDULABLE_REASON = "node(s) were unschedulable"
TOO_MANY_PODS = "Too many pods"
NO_VICTIMS = "No preemption victims found for incoming pod"
NOT_HELPFUL = "Preemption is not helpful for scheduling"


@dataclass(frozen=True)
class Reason:
    """Why one node rejected the pod; ``resolvable`` says whether evicting pods could ever help."""

    message: str
    resolvable: bool


@dataclass(frozen=True)
class ScheduleResult:
    node_name: str | None
    message: str  # "" when bound; the FailedScheduling text otherwise


# ---- requests
def _container_requests(container: Mapping[str, Any]) -> dict[str, int]:
    resources = container.get("resources") or {}
    requests = dict(resources.get("limits") or {})  # a limit without a request defaults the request
    requests.update(resources.get("requests") or {})
    return {name: to_units(name, value) for name, value in requests.items()}


def pod_requests(pod: Mapping[str, Any]) -> dict[str, int]:
    """Effective requests: containers + native sidecars, or the largest init container if larger."""
    spec = pod.get("spec") or {}
    total: Counter[str] = Counter()
    for c in spec.get("containers") or []:
        total.update(_container_requests(c))
    init_peak: Counter[str] = Counter()
    sidecars: Counter[str] = Counter()
    for c in spec.get("initContainers") or []:
        req = _container_requests(c)
        if c.get("restartPolicy") == "Always":
            sidecars.update(req)
            total.update(req)
        else:
            for name, value in req.items():
                init_peak[name] = max(init_peak[name], value + sidecars[name])
    for name, value in init_peak.items():
        total[name] = max(total[name], value)
    return dict(total)


def _counts_on_node(pod: Mapping[str, Any]) -> bool:
    status = pod.get("status") or {}
    return status.get("phase") not in ("Succeeded", "Failed")


def node_usage(node_name: str, pods: Iterable[Mapping[str, Any]]) -> tuple[dict[str, int], int]:
    """Requests already bound to a node, and how many pods are on it."""
    used: Counter[str] = Counter()
    count = 0
    for p in pods:
        if (p.get("spec") or {}).get("nodeName") == node_name and _counts_on_node(p):
            used.update(pod_requests(p))
            count += 1
    return dict(used), count


def _allocatable(node: Mapping[str, Any]) -> dict[str, int]:
    alloc = (node.get("status") or {}).get("allocatable") or {}
    return {name: to_units(name, value) for name, value in alloc.items()}


# ---- filters
def _tolerates(tolerations: list[Mapping[str, Any]], taint: Mapping[str, Any]) -> bool:
    for t in tolerations:
        if t.get("effect") and t["effect"] != taint.get("effect"):
            continue
        op = t.get("operator", "Equal")
        key = t.get("key", "")
        if op == "Exists":
            if not key or key == taint.get("key"):
                return True
        elif key == taint.get("key") and (t.get("value") or "") == (taint.get("value") or ""):
            return True
    return False


def untolerated_taint(pod: Mapping[str, Any], node: Mapping[str, Any]) -> Mapping[str, Any] | None:
    tolerations = (pod.get("spec") or {}).get("tolerations") or []
    for taint in (node.get("spec") or {}).get("taints") or []:
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not _tolerates(tolerations, taint):
            return taint
    return None


def _match_expression(expr: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    key, op, values = expr.get("key"), expr.get("operator"), list(expr.get("values") or [])
    present = key in labels
    if op == "In":
        return present and labels[key] in values
    if op == "NotIn":
        return not present or labels[key] not in values
    if op == "Exists":
        return present
    if op == "DoesNotExist":
        return not present
    if op in ("Gt", "Lt") and present and values:
        try:
            have, want = int(labels[key]), int(values[0])
        except ValueError:
            return False
        return have > want if op == "Gt" else have < want
    return False


def matches_node_affinity(pod: Mapping[str, Any], node: Mapping[str, Any]) -> bool:
    """nodeSelector AND the required node affinity (terms ORed, expressions ANDed)."""
    spec = pod.get("spec") or {}
    meta = node.get("metadata") or {}
    labels = meta.get("labels") or {}
    for key, value in (spec.get("nodeSelector") or {}).items():
        if labels.get(key) != value:
            return False
    required = (
        ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get("requiredDuringSchedulingIgnoredDuringExecution")
    )
    if not required:
        return True
    fields = {"metadata.name": meta.get("name", "")}
    for term in required.get("nodeSelectorTerms") or []:
        exprs = term.get("matchExpressions") or []
        field_exprs = term.get("matchFields") or []
        if not exprs and not field_exprs:
            continue
        if all(_match_expression(e, labels) for e in exprs) and all(
            _match_expression(e, fields) for e in field_exprs
        ):
            return True
    return False


class Snapshot:
    """What is already bound to each node (requests and pod count), computed once per scheduling pass and
    updated as pods are bound — kube-scheduler's cache snapshot of ``NodeInfo`` — so a pass over many
    pending pods costs pods × nodes, not pods × nodes × bound pods."""

    def __init__(self, pods: Iterable[Mapping[str, Any]] = ()) -> None:
        self._used: dict[str, Counter[str]] = {}
        self._count: Counter[str] = Counter()
        for pod in pods:
            self.add(pod)

    def add(self, pod: Mapping[str, Any]) -> None:
        """Count a bound pod on its node (ValueError for requests that do not parse)."""
        node = (pod.get("spec") or {}).get("nodeName")
        if not node or not _counts_on_node(pod):
            return
        self._used.setdefault(node, Counter()).update(pod_requests(pod))
        self._count[node] += 1

    def usage(self, node_name: str) -> tuple[dict[str, int], int]:
        return dict(self._used.get(node_name, {})), self._count[node_name]


def filter_node(
    pod: Mapping[str, Any], node: Mapping[str, Any], bound_pods: Iterable[Mapping[str, Any]] | Snapshot
) -> list[Reason]:
    """Empty when the pod fits the node; otherwise the first failing filter's reasons."""
    if (node.get("spec") or {}).get("unschedulable"):
        return [Reason(UNSCHEDULABLE_REASON, False)]
    taint = untolerated_taint(pod, node)
    if taint is not None:
        return [Reason(f"node(s) had untolerated taint {{{taint.get('key')}: {taint.get('value', '')}}}", False)]
    if not matches_node_affinity(pod, node):
        return [Reason(AFFINITY_REASON, False)]
    alloc = _allocatable(node)
    used, count = _usage(node["metadata"]["name"], bound_pods)
    reasons = []
    if count + 1 > alloc.get("pods", 110):
        reasons.append(Reason(TOO_MANY_PODS, True))
    for name, want in sorted(pod_requests(pod).items()):
        if want <= 0:
            continue
        if want > alloc.get(name, 0) - used.get(name, 0):
            # kube-scheduler marks Insufficient resources as resolvable (preemption is tried) even when
            # the node has none of the resource at all
            reasons.append(Reason(f"Insufficient {name}", True))
    return reasons


# ---- scoring (NodeResourcesFit LeastAllocated): spread pods to the emptiest node
def _usage(node_name: str, bound: Iterable[Mapping[str, Any]] | Snapshot) -> tuple[dict[str, int], int]:
    return bound.usage(node_name) if isinstance(bound, Snapshot) else node_usage(node_name, bound)


def _score(pod: Mapping[str, Any], node: Mapping[str, Any], bound_pods: Snapshot) -> float:
    alloc = _allocatable(node)
    used, _ = bound_pods.usage(node["metadata"]["name"])
    req = pod_requests(pod)
    weights = {"cpu": 1, "memory": 1, "nvidia.com/gpu": 1}
    score = 0.0
    for name, w in weights.items():
        cap = alloc.get(name, 0)
        if cap <= 0:
            continue
        score += w * (cap - used.get(name, 0) - req.get(name, 0)) / cap
    # a pod that needs no GPU should not take a GPU node's room when a CPU node fits
    if not req.get("nvidia.com/gpu") and alloc.get("nvidia.com/gpu"):
        score -= 10
    return score


def fit_error_message(num_nodes: int, reasons_by_node: Mapping[str, list[Reason]]) -> str:
    """``0/10 nodes are available: 4 Insufficient nvidia.com/gpu, … preemption: 0/10 nodes are available: …``."""
    histogram: Counter[str] = Counter()
    resolvable_nodes = 0
    for reasons in reasons_by_node.values():
        for r in reasons:
            histogram[r.message] += 1
        if reasons and all(r.resolvable for r in reasons):
            resolvable_nodes += 1
    parts = sorted(f"{n} {msg}" for msg, n in histogram.items())
    message = f"0/{num_nodes} nodes are available: " + ", ".join(parts) + "."
    preemption = Counter()
    if resolvable_nodes:
        preemption[NO_VICTIMS] = resolvable_nodes
    if num_nodes - resolvable_nodes:
        preemption[NOT_HELPFUL] = num_nodes - resolvable_nodes
    pre_parts = sorted(f"{n} {msg}" for msg, n in preemption.items())
    return f"{message} preemption: 0/{num_nodes} nodes are available: " + ", ".join(pre_parts) + "."


def schedule(
    pod: Mapping[str, Any], nodes: list[Mapping[str, Any]], pods: Iterable[Mapping[str, Any]] | Snapshot,
    volume_filter: Callable[[Mapping[str, Any]], list[Reason]] | None = None,
) -> ScheduleResult:
    """Pick a node for ``pod`` among ``nodes`` given the pods already bound (a list or a :class:`Snapshot`),
    or say why none fits; ``volume_filter`` is the VolumeBinding plugin's Filter, run after the others."""
    bound = pods if isinstance(pods, Snapshot) else Snapshot(pods)
    if not nodes:
        return ScheduleResult(None, "no nodes available to schedule pods")
    reasons_by_node: dict[str, list[Reason]] = {}
    feasible = []
    for node in nodes:
        reasons = filter_node(pod, node, bound) or (volume_filter(node) if volume_filter else [])
        if reasons:
            reasons_by_node[node["metadata"]["name"]] = reasons
        else:
            feasible.append(node)
    if not feasible:
        return ScheduleResult(None, fit_error_message(len(nodes), reasons_by_node))
    best = max(feasible, key=lambda n: (_score(pod, n, bound), [-ord(c) for c in n["metadata"]["name"]]))
    return ScheduleResult(best["metadata"]["name"], "")
