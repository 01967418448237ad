"""Kueue admission for pods labelled ``kueue.x-k8s.io/queue-name``: quota per ClusterQueue, checked before
kube-scheduler may bind. A pod that does not fit stays gated with a condition saying why (``kubectl get pods``
shows ``SchedulingGated``), as Kueue's pod integration does.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from llmd_lab.lab.scheduler.fit import pod_requests
from llmd_lab.lab.scheduler.quantity import to_units

QUEUE_LABEL = "kueue.x-k8s.io/queue-name"


@dataclass(frozen=True)
class Admission:
    admitted: bool
    message: str = ""
    cluster_queue: str = ""


def _quota(cq: Mapping[str, Any]) -> tuple[dict[str, int], str]:
    quota: Counter[str] = Counter()
    flavor_name = ""
    for group in (cq.get("spec") or {}).get("resourceGroups") or []:
        for flavor in group.get("flavors") or []:
            flavor_name = flavor_name or flavor.get("name", "")
            for r in flavor.get("resources") or []:
                quota[r["name"]] += to_units(r["name"], r.get("nominalQuota", 0))
    return dict(quota), flavor_name


def admit(pod: Mapping[str, Any], local_queue: Mapping[str, Any] | None, cluster_queue: Mapping[str, Any] | None,
          admitted_pods: Iterable[Mapping[str, Any]]) -> Admission:
    """Whether ``pod`` fits its ClusterQueue next to ``admitted_pods`` (the bound pods of the same queue)."""
    queue = (pod.get("metadata") or {}).get("labels", {}).get(QUEUE_LABEL)
    ns = (pod.get("metadata") or {}).get("namespace", "")
    if local_queue is None:
        return Admission(False, f"LocalQueue {queue} doesn't exist in namespace {ns}")
    cq_name = (local_queue.get("spec") or {}).get("clusterQueue", "")
    if cluster_queue is None:
        return Admission(False, f"ClusterQueue {cq_name} doesn't exist", cq_name)
    quota, flavor = _quota(cluster_queue)
    used: Counter[str] = Counter()
    for p in admitted_pods:
        used.update(pod_requests(p))
    for name, want in sorted(pod_requests(pod).items()):
        if name not in quota:
            continue
        if used[name] + want > quota[name]:
            return Admission(False, (
                f"couldn't assign flavors to pod set main: insufficient unused quota for {name} in flavor "
                f"{flavor}, {want} more needed (ClusterQueue {cq_name}: {used[name]} of {quota[name]} in use)"
            ), cq_name)
    return Admission(True, "", cq_name)
