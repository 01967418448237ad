"""kube-scheduler as a lab component: binds pending pods to simulated nodes or records why it cannot.

Every pass looks at all unbound pods (oldest first), so a pod deleted elsewhere frees room for the next
one without any special wiring; Kueue-labelled pods are admitted against their queue's quota first.

One bad pod never stops the pass: a pod whose requests cannot be parsed (``cpu: abc``, stored before the
API server refused such values, or by older state) is marked ``PodScheduled=False`` with a
``FailedScheduling`` event once and skipped, and a bound pod whose requests cannot be parsed is left out of
its node's usage, so every other pod still schedules (kube-scheduler likewise handles one pod per
``scheduleOne`` cycle and records a failure on that pod only).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from llmd_lab._tasks import cancel_and_wait
from llmd_lab.lab.apiserver.errors import ApiError
from llmd_lab.lab.context import LabContext
from llmd_lab.lab.informer import Informer
from llmd_lab.lab.scheduler import kueue, volumebinding
from llmd_lab.lab.scheduler.fit import NOT_HELPFUL, Snapshot, pod_requests, schedule
from llmd_lab.lab.scheduler.volumebinding import get_or_none as _get

log = logging.getLogger("llmd_lab.lab.scheduler")
KUEUE_API = "kueue.x-k8s.io/v1beta1"
YIELD_EVERY = 20  # pods per scheduling pass between two turns of the event loop


def _set_cond(pod: dict, status: str, reason: str, message: str, now: str) -> bool:
    conds = pod.setdefault("status", {}).setdefault("conditions", [])
    old = next((c for c in conds if c.get("type") == "PodScheduled"), None)
    new = {"type": "PodScheduled", "status": status, "lastProbeTime": None,
           "lastTransitionTime": old.get("lastTransitionTime") if old and old.get("status") == status else now}
    if reason:
        new["reason"] = reason
    if message:
        new["message"] = message
    if old and {k: old.get(k) for k in ("status", "reason", "message")} == {
            k: new.get(k) for k in ("status", "reason", "message")}:
        return False
    pod["status"]["conditions"] = [c for c in conds if c.get("type") != "PodScheduled"] + [new]
    return True


class KubeScheduler:
    """The default-scheduler: watches pods and nodes, binds with ``spec.nodeName``."""

    name = "kube-scheduler"
    ctx: LabContext

    def __init__(self, interval: float = 0.5) -> None:
        self.interval = interval
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._unparsable: set[tuple[str, str]] = set()  # (uid, resourceVersion) of bound pods already logged

    async def start(self, ctx: LabContext) -> None:
        self.ctx = ctx
        self._tasks = [asyncio.create_task(self._watch("v1", "Pod")), asyncio.create_task(self._watch("v1", "Node")),
                       asyncio.create_task(self._tick()), asyncio.create_task(self._loop())]

    async def stop(self) -> None:
        await cancel_and_wait(self._tasks, swallow_errors=True)

    async def _watch(self, api_version: str, kind: str) -> None:
        async def wake(_type: str, _obj: dict) -> None:
            self._wake.set()

        await Informer(self.ctx.store, api_version, kind, wake, owner=self.name).run()

    async def _tick(self) -> None:
        # a periodic pass retries pods whose blocker went away without an event (no asyncio.wait_for here:
        # on Python 3.11 it can swallow the cancellation that stops the component)
        while True:
            await asyncio.sleep(self.interval)
            self._wake.set()

    async def _loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self.schedule_pending()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("scheduling pass failed")

    def _now(self) -> str:
        return self.ctx.clock.stamp()

    async def schedule_pending(self) -> None:
        store = self.ctx.store
        pods, _ = await store.list("v1", "Pod")
        pending = [p for p in pods if not p["spec"].get("nodeName") and not p["metadata"].get("deletionTimestamp")
                   and p["spec"].get("schedulerName", "default-scheduler") == "default-scheduler"]
        if not pending:
            return
        nodes, _ = await store.list("v1", "Node")
        nodes = [n for n in nodes if any(c.get("type") == "Ready" and c.get("status") == "True"
                                         for c in (n.get("status") or {}).get("conditions") or [])]
        bound = [p for p in pods if p["spec"].get("nodeName") and self._countable(p)]
        snapshot = Snapshot(bound)
        for i, pod in enumerate(sorted(pending, key=lambda p: p["metadata"].get("creationTimestamp", ""))):
            if i % YIELD_EVERY == YIELD_EVERY - 1:
                await asyncio.sleep(0)  # the store's calls do not suspend: let the API server answer meanwhile
            try:
                pod_requests(pod)
            except ValueError as exc:  # this pod only: the others still schedule
                await self._unschedulable(pod, "Unschedulable", f"invalid resource requests: {exc}",
                                          "FailedScheduling")
                continue
            if not await self._admitted(pod, bound):
                continue
            updated = await self._try_bind(pod, nodes, snapshot)
            if updated is not None:
                bound.append(updated)
                snapshot.add(updated)

    async def _try_bind(self, pod: dict, nodes: list[dict], bound: Snapshot) -> dict | None:
        """Bind ``pod`` to the best node, or record why none fits; the bound pod, or None."""
        volumes = await volumebinding.pre_filter(self.ctx.store, pod)
        if volumes.unschedulable:
            await self._unschedulable(pod, "Unschedulable", f"0/{len(nodes)} nodes are available: "
                                      f"{volumes.unschedulable}. preemption: 0/{len(nodes)} nodes are available: "
                                      f"{len(nodes)} {NOT_HELPFUL}.", "FailedScheduling")
            return None
        result = schedule(pod, nodes, bound, volumes.node_reasons)
        if not result.node_name:
            await self._unschedulable(pod, "Unschedulable", result.message, "FailedScheduling")
            return None
        await volumebinding.pre_bind(self.ctx.store, volumes, result.node_name)
        ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        # recorded as the binding is written, so it is the pod's first event (the kubelet reacts at once)
        await self._event(pod, "Normal", "Scheduled", f"Successfully assigned {ns}/{name} to {result.node_name}")
        pod["spec"]["nodeName"] = result.node_name
        _set_cond(pod, "True", "", "", self._now())
        try:
            return await self.ctx.store.update(pod)
        except ApiError as exc:
            if exc.code in (404, 409):
                return None
            raise

    def _countable(self, pod: dict) -> bool:
        """Whether a bound pod's requests parse; one that does not is logged once and not counted."""
        try:
            pod_requests(pod)
        except ValueError as exc:
            marker = (pod["metadata"].get("uid", ""), pod["metadata"].get("resourceVersion", ""))
            if marker not in self._unparsable:
                self._unparsable.add(marker)
                log.warning("kube-scheduler: bound pod %s/%s has invalid requests (%s); not counting it on node %s",
                            pod["metadata"].get("namespace"), pod["metadata"].get("name"), exc,
                            pod["spec"].get("nodeName"))
            return False
        return True

    async def _unschedulable(self, pod: dict, reason: str, message: str, event_reason: str) -> None:
        if _set_cond(pod, "False", reason, message, self._now()):
            with contextlib.suppress(ApiError):
                await self.ctx.store.update_status(pod)
            await self._event(pod, "Warning", event_reason, message)

    async def _admitted(self, pod: dict, bound: list[dict]) -> bool:
        queue = (pod["metadata"].get("labels") or {}).get(kueue.QUEUE_LABEL)
        store = self.ctx.store
        if not queue or store.registry.find_kind(KUEUE_API, "LocalQueue") is None:
            return True
        ns = pod["metadata"]["namespace"]
        lq = await _get(store, KUEUE_API, "LocalQueue", queue, ns)
        cq_name = ((lq or {}).get("spec") or {}).get("clusterQueue", "")
        cq = await _get(store, KUEUE_API, "ClusterQueue", cq_name, None) if cq_name else None
        same_queue = []
        for p in bound:
            q = (p["metadata"].get("labels") or {}).get(kueue.QUEUE_LABEL)
            if not q:
                continue
            plq = lq if (q, p["metadata"]["namespace"]) == (queue, ns) else await _get(
                store, KUEUE_API, "LocalQueue", q, p["metadata"]["namespace"])
            if ((plq or {}).get("spec") or {}).get("clusterQueue") == cq_name:
                same_queue.append(p)
        decision = kueue.admit(pod, lq, cq, same_queue)
        if not decision.admitted:
            await self._unschedulable(pod, "SchedulingGated", decision.message, "Pending")
        return decision.admitted

    async def _event(self, obj: dict, type_: str, reason: str, message: str) -> None:
        with contextlib.suppress(ApiError):
            await self.ctx.events.record(obj, type_, reason, message, "default-scheduler")

