"""Deployment → ReplicaSet → Pod controllers, as kube-controller-manager runs them.

A Deployment owns one ReplicaSet per pod-template hash; a spec change creates a new ReplicaSet and rolls
pods over within ``maxSurge``/``maxUnavailable`` (25 %/25 % by default). ``Available`` follows Kubernetes:
available replicas ≥ replicas − maxUnavailable — which is what KServe reads for ``MainWorkloadReady``.

The ReplicaSet controller creates pods as kube-controller-manager's does (kubernetes
``pkg/controller/replicaset/replica_set.go``, ``manageReplicas``), through the slow-start batches it shares
with the Job controller (:mod:`llmd_lab.lab.controller.podcontrol`).
Creations and deletions go through the controller client's rate limit (20 QPS, burst 30; see
``ratelimit``), so a runaway ``replicas`` costs bounded work per second and the API server keeps answering.
"""

from __future__ import annotations

import math
from typing import Any

from llmd_lab.lab.controller.base import Reconciler, Watch, owner_keys, self_key
from llmd_lab.lab.controller.conditions import set_condition
from llmd_lab.lab.controller.podcontrol import BURST_REPLICAS, create_owned_pods
from llmd_lab.lab.controller.pods import (
    controller_ref,
    is_active,
    is_ready,
    owned_by,
    selector_string,
    template_hash,
)
from llmd_lab.lab.controller.ratelimit import TokenBucket


def _int_or_percent(value: Any, total: int, round_up: bool) -> int:
    if isinstance(value, str) and value.endswith("%"):
        raw = total * int(value[:-1]) / 100
        return math.ceil(raw) if round_up else math.floor(raw)
    return int(value)


def surge_and_unavailable(deployment: dict) -> tuple[int, int]:
    spec = deployment["spec"]
    replicas = int(spec.get("replicas", 1))
    strategy = spec.get("strategy") or {}
    if strategy.get("type") == "Recreate":
        return 0, replicas
    rolling = strategy.get("rollingUpdate") or {}
    surge = _int_or_percent(rolling.get("maxSurge", "25%"), replicas, True)
    unavailable = _int_or_percent(rolling.get("maxUnavailable", "25%"), replicas, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1  # Kubernetes refuses 0/0; it would never progress
    return surge, unavailable


class ReplicaSetController(Reconciler):
    name = "replicaset-controller"
    watches = (
        Watch("apps/v1", "ReplicaSet", self_key),
        Watch("v1", "Pod", owner_keys("ReplicaSet")),
    )

    def __init__(self, client_limit: TokenBucket | None = None) -> None:
        super().__init__()
        self.client_limit = client_limit or TokenBucket()

    async def reconcile(self, namespace: str, name: str) -> bool | None:
        rs = await self.get_or_none("apps/v1", "ReplicaSet", name, namespace)
        if rs is None:
            return False
        match = rs["spec"]["selector"].get("matchLabels") or {}
        pods, _ = await self.store.list("v1", "Pod", namespace, label_selector=selector_string(match))
        mine = [p for p in pods if owned_by(p, rs)]
        active = [p for p in mine if is_active(p)]
        want = int(rs["spec"].get("replicas", 1))
        if not rs["metadata"].get("deletionTimestamp"):
            if want > len(active):
                await create_owned_pods(self, rs, min(want - len(active), BURST_REPLICAS), active,
                                        client_limit=self.client_limit)
            if len(active) > want:
                # delete the least useful first: unscheduled, then not ready, then the newest
                active.sort(key=lambda p: (bool(p["spec"].get("nodeName")), is_ready(p),
                                           p["metadata"].get("creationTimestamp", "")), reverse=False)
                excess = min(len(active) - want, BURST_REPLICAS)
                victims, active = active[:excess], active[excess:]
                for pod in victims:
                    await self.client_limit.take()
                    await self.store.delete("v1", "Pod", pod["metadata"]["name"], namespace)
                    await self.event(rs, "Normal", "SuccessfulDelete", f"Deleted pod: {pod['metadata']['name']}")
        ready = sum(1 for p in active if is_ready(p))
        await self._status(rs, active, ready)
        return None

    async def _status(self, rs: dict, active: list[dict], ready: int) -> None:
        status = {
            "replicas": len(active),
            "fullyLabeledReplicas": len(active),
            "readyReplicas": ready,
            "availableReplicas": ready,
            "observedGeneration": rs["metadata"].get("generation", 1),
        }
        if {k: (rs.get("status") or {}).get(k) for k in status} != status:
            rs["status"] = {**(rs.get("status") or {}), **status}
            await self.store.update_status(rs)


class DeploymentController(Reconciler):
    name = "deployment-controller"
    watches = (
        Watch("apps/v1", "Deployment", self_key),
        Watch("apps/v1", "ReplicaSet", owner_keys("Deployment")),
    )

    async def reconcile(self, namespace: str, name: str) -> bool | None:
        dep = await self.get_or_none("apps/v1", "Deployment", name, namespace)
        if dep is None:
            return False
        if dep["metadata"].get("deletionTimestamp"):
            return None
        spec = dep["spec"]
        desired = int(spec.get("replicas", 1))
        template = spec["template"]
        h = template_hash(template)
        all_rs, _ = await self.store.list("apps/v1", "ReplicaSet", namespace)
        owned = [rs for rs in all_rs if owned_by(rs, dep)]
        new_rs = next((rs for rs in owned if rs["metadata"].get("labels", {}).get("pod-template-hash") == h), None)
        olds = [rs for rs in owned if rs is not new_rs]
        surge, max_unavailable = surge_and_unavailable(dep)
        old_total = sum(int(rs["spec"].get("replicas", 0)) for rs in olds)
        if new_rs is None:
            start = min(desired, max(0, desired + surge - old_total)) if olds else desired
            new_rs = await self._create_rs(dep, h, start)
        else:
            current = int(new_rs["spec"].get("replicas", 0))
            target = desired if not olds else min(desired, max(current, desired + surge - old_total))
            if target != current:
                new_rs = await self._scale(dep, new_rs, target)
        # scale old ReplicaSets down as far as availability allows
        if olds:
            new_ready = int((new_rs.get("status") or {}).get("readyReplicas", 0))
            old_ready = sum(int((rs.get("status") or {}).get("readyReplicas", 0)) for rs in olds)
            min_available = desired - max_unavailable
            budget = max(0, new_ready + old_ready - min_available)
            for rs in sorted(olds, key=lambda r: r["metadata"].get("creationTimestamp", "")):
                replicas = int(rs["spec"].get("replicas", 0))
                unready = max(0, replicas - int((rs.get("status") or {}).get("readyReplicas", 0)))
                down = min(replicas, unready + budget)
                if down:
                    budget = max(0, budget - max(0, down - unready))
                    await self._scale(dep, rs, replicas - down)
        await self._status(dep, new_rs, owned if new_rs in owned else [*owned, new_rs], desired, max_unavailable)
        return None

    async def _create_rs(self, dep: dict, h: str, replicas: int) -> dict:
        template = {**dep["spec"]["template"]}
        labels = {**(template.get("metadata") or {}).get("labels", {}), "pod-template-hash": h}
        template["metadata"] = {**(template.get("metadata") or {}), "labels": labels}
        selector = {**(dep["spec"]["selector"].get("matchLabels") or {}), "pod-template-hash": h}
        rs_name = f"{dep['metadata']['name']}-{h}"
        rs = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": rs_name,
                "namespace": dep["metadata"]["namespace"],
                "labels": labels,
                "annotations": {"deployment.kubernetes.io/desired-replicas": str(dep["spec"].get("replicas", 1)),
                                "deployment.kubernetes.io/max-replicas": str(dep["spec"].get("replicas", 1))},
                "ownerReferences": [controller_ref(dep)],
            },
            "spec": {"replicas": replicas, "selector": {"matchLabels": selector}, "template": template},
        }
        created = await self.store.create(rs)
        await self.event(dep, "Normal", "ScalingReplicaSet", f"Scaled up replica set {rs_name} from 0 to {replicas}")
        return created

    async def _scale(self, dep: dict, rs: dict, replicas: int) -> dict:
        before = int(rs["spec"].get("replicas", 0))
        rs["spec"]["replicas"] = replicas
        updated = await self.store.update(rs)
        verb = "up" if replicas > before else "down"
        await self.event(dep, "Normal", "ScalingReplicaSet",
                         f"Scaled {verb} replica set {rs['metadata']['name']} from {before} to {replicas}")
        return updated

    async def _status(self, dep: dict, new_rs: dict, owned: list[dict], desired: int, max_unavailable: int) -> None:
        def st(rs: dict, key: str) -> int:
            return int((rs.get("status") or {}).get(key, 0))

        replicas = sum(st(rs, "replicas") for rs in owned)
        ready = sum(st(rs, "readyReplicas") for rs in owned)
        updated = st(new_rs, "replicas")
        now = self.now()
        conditions = list((dep.get("status") or {}).get("conditions") or [])
        if ready >= desired - max_unavailable:
            conditions = set_condition(conditions, "Available", "True", "MinimumReplicasAvailable",
                                       "Deployment has minimum availability.", now, lastUpdateTime=now)
        else:
            conditions = set_condition(conditions, "Available", "False", "MinimumReplicasUnavailable",
                                       "Deployment does not have minimum availability.", now, lastUpdateTime=now)
        rs_name = new_rs["metadata"]["name"]
        complete = updated == desired and replicas == desired and st(new_rs, "readyReplicas") == desired
        if complete:
            conditions = set_condition(conditions, "Progressing", "True", "NewReplicaSetAvailable",
                                       f'ReplicaSet "{rs_name}" has successfully progressed.', now, lastUpdateTime=now)
        else:
            conditions = set_condition(conditions, "Progressing", "True", "ReplicaSetUpdated",
                                       f'ReplicaSet "{rs_name}" is progressing.', now, lastUpdateTime=now)
        status = {
            "observedGeneration": dep["metadata"].get("generation", 1),
            "replicas": replicas,
            "updatedReplicas": updated,
            "readyReplicas": ready,
            "availableReplicas": ready,
            "unavailableReplicas": max(0, desired - ready),
            "conditions": conditions,
        }
        old = dep.get("status") or {}

        def strip(s: dict) -> dict:
            return {**s, "conditions": [{k: v for k, v in c.items() if k != "lastUpdateTime"}
                                        for c in s.get("conditions") or []]}

        if strip({k: old.get(k) for k in status}) != strip(status):
            dep["status"] = {**old, **status}
            await self.store.update_status(dep)
