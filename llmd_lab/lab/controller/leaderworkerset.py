"""LeaderWorkerSet (leaderworkerset.x-k8s.io/v1): ``replicas`` groups of one leader + ``size − 1`` workers.

Pods are named as LWS names them (leader ``<lws>-<group>``, workers ``<lws>-<group>-<index>``) and share a
group's fate: with ``RecreateGroupOnPodRestart`` a container restart or a lost pod recreates the whole group.
The real controller goes through StatefulSets; the lab creates the pods directly (same names and labels).
"""

from __future__ import annotations

import hashlib
from typing import Any

from llmd_lab.lab.apiserver.errors import ApiError
from llmd_lab.lab.controller.base import Reconciler, Watch, owner_keys, self_key
from llmd_lab.lab.controller.conditions import set_condition
from llmd_lab.lab.controller.pods import controller_ref, is_active, is_ready, owned_by, pod_from_template

API = "leaderworkerset.x-k8s.io/v1"
PREFIX = "leaderworkerset.sigs.k8s.io"


def _restarts(pod: dict[str, Any]) -> int:
    return sum(int(c.get("restartCount", 0)) for c in (pod.get("status") or {}).get("containerStatuses") or [])


def _env(pod: dict[str, Any], extra: dict[str, str]) -> None:
    for c in pod["spec"].get("containers", []) + pod["spec"].get("initContainers", []):
        env = [e for e in c.get("env") or [] if e.get("name") not in extra]
        c["env"] = [*({"name": k, "value": v} for k, v in extra.items()), *env]


class LeaderWorkerSetController(Reconciler):
    name = "lws-controller"
    watches = (Watch(API, "LeaderWorkerSet", self_key), Watch("v1", "Pod", owner_keys("LeaderWorkerSet")))

    async def reconcile(self, namespace: str, name: str) -> bool | None:
        lws = await self.get_or_none(API, "LeaderWorkerSet", name, namespace)
        if lws is None:
            return False
        if lws["metadata"].get("deletionTimestamp"):
            return None
        spec = lws["spec"]
        tpl = spec["leaderWorkerTemplate"]
        size = int(tpl.get("size", 1))
        replicas = int(spec.get("replicas", 1))
        pods, _ = await self.store.list("v1", "Pod", namespace, label_selector=f"{PREFIX}/name={name}")
        mine = [p for p in pods if owned_by(p, lws) and is_active(p)]
        groups: dict[int, list[dict]] = {}
        for p in mine:
            groups.setdefault(int(p["metadata"]["labels"].get(f"{PREFIX}/group-index", "0")), []).append(p)
        await self._headless_service(lws)
        ready_groups = 0
        for g in range(replicas):
            members = groups.pop(g, [])
            fate = tpl.get("restartPolicy", "RecreateGroupOnPodRestart") == "RecreateGroupOnPodRestart"
            if fate and members and (len(members) < size or any(_restarts(p) for p in members)) and size > 1:
                for p in members:
                    await self._delete(p)
                await self.event(lws, "Normal", "RecreateGroupOnPodRestart",
                                 f"Recreating group {g}: a pod of the group restarted or went away")
                continue
            have = {int(p["metadata"]["labels"].get(f"{PREFIX}/worker-index", "0")) for p in members}
            for index in range(size):
                if index not in have:
                    await self._create_pod(lws, g, index, size)
            if len(members) == size and all(is_ready(p) for p in members):
                ready_groups += 1
        for extra in groups.values():  # scaled down
            for p in extra:
                await self._delete(p)
        await self._status(lws, replicas, ready_groups)
        return None

    async def _status(self, lws: dict, replicas: int, ready_groups: int) -> None:
        name = lws["metadata"]["name"]
        now = self.now()
        conds = list((lws.get("status") or {}).get("conditions") or [])
        if ready_groups >= replicas:
            conds = set_condition(conds, "Available", "True", "AllGroupsReady", "All replicas are ready", now)
            conds = set_condition(conds, "Progressing", "False", "Ready", "Replicas are ready", now)
        else:
            conds = set_condition(conds, "Available", "False", "AllGroupsNotReady",
                                  f"{ready_groups}/{replicas} groups are ready", now)
            conds = set_condition(conds, "Progressing", "True", "GroupsProgressing",
                                  "Replicas are progressing", now)
        status = {"replicas": replicas, "readyReplicas": ready_groups, "updatedReplicas": replicas,
                  "hpaPodSelector": f"{PREFIX}/name={name},{PREFIX}/worker-index=0", "conditions": conds}
        old = lws.get("status") or {}
        strip = [{k: v for k, v in c.items() if k != "lastTransitionTime"} for c in conds]
        old_strip = [{k: v for k, v in c.items() if k != "lastTransitionTime"} for c in old.get("conditions") or []]
        if strip != old_strip or old.get("readyReplicas") != ready_groups or old.get("replicas") != replicas:
            lws["status"] = status
            await self.store.update_status(lws)

    async def _delete(self, pod: dict) -> None:
        try:
            await self.store.delete("v1", "Pod", pod["metadata"]["name"], pod["metadata"]["namespace"])
        except ApiError as exc:
            if exc.code != 404:
                raise

    async def _headless_service(self, lws: dict) -> None:
        name, ns = lws["metadata"]["name"], lws["metadata"]["namespace"]
        if await self.get_or_none("v1", "Service", name, ns) is not None:
            return
        await self.store.create({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": ns, "ownerReferences": [controller_ref(lws)]},
            "spec": {"clusterIP": "None", "publishNotReadyAddresses": True,
                     "selector": {f"{PREFIX}/name": name}},
        })

    async def _create_pod(self, lws: dict, group: int, index: int, size: int) -> None:
        name, ns = lws["metadata"]["name"], lws["metadata"]["namespace"]
        tpl = lws["spec"]["leaderWorkerTemplate"]
        leader_name = f"{name}-{group}"
        template = tpl.get("leaderTemplate") if index == 0 and tpl.get("leaderTemplate") else tpl["workerTemplate"]
        group_key = hashlib.sha1(f"{ns}/{leader_name}".encode()).hexdigest()
        labels = {f"{PREFIX}/name": name, f"{PREFIX}/group-index": str(group),
                  f"{PREFIX}/worker-index": str(index), f"{PREFIX}/group-key": group_key}
        pod_name = leader_name if index == 0 else f"{leader_name}-{index}"
        pod = pod_from_template(template, namespace=ns, owner=lws, name=pod_name, labels=labels)
        pod["metadata"].setdefault("annotations", {}).update({f"{PREFIX}/size": str(size)})
        if index:
            pod["metadata"]["annotations"][f"{PREFIX}/leader-name"] = leader_name
        pod["spec"]["subdomain"] = name
        pod["spec"]["hostname"] = pod_name
        _env(pod, {"LWS_LEADER_ADDRESS": f"{leader_name}.{name}.{ns}", "LWS_GROUP_SIZE": str(size),
                   "LWS_WORKER_INDEX": str(index)})
        try:
            await self.store.create(pod)
        except ApiError as exc:
            if exc.code != 409:
                raise
            return
        await self.event(lws, "Normal", "CreatedPod", f"Created pod {pod_name} (group {group}, index {index})")
