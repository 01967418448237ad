"""The batch/v1 Job controller, as kube-controller-manager runs it (kubernetes 1.32,
``pkg/controller/job/job_controller.go``, ``backoff_utils.go``).

Per sync: the Job's pods (its selector, owned by it) are counted; a terminal pod that still carries the
``batch.kubernetes.io/job-tracking`` finalizer is added to ``status.succeeded``/``failed`` and let go, so
counts survive pod deletion. Then the Job either finishes — ``failed > backoffLimit`` (or, for
``restartPolicy: OnFailure``, container restarts reaching it) → ``BackoffLimitExceeded``, running past
``activeDeadlineSeconds`` (wall-clock seconds: what a Job's container does runs in real time) →
``DeadlineExceeded``, enough successes → complete — or gets pods created up to
``parallelism`` (never more than the completions left), each replacement of a failed pod delayed by the
pod-failure back-off (10 s × 2^(failures−1), at most 10 min). With JobPodReplacementPolicy on (1.32's
default), the terminal condition is delayed: ``FailureTarget``/``SuccessCriteriaMet`` first, then ``Failed``/
``Complete`` once no pod is terminating. Not modelled: Indexed completion, podFailurePolicy, successPolicy,
suspend, managedBy (the API accepts them; the controller treats every Job as NonIndexed and not suspended).
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from llmd_lab.lab.apiserver.errors import ApiError
from llmd_lab.lab.controller.base import Reconciler, Watch, owner_keys, self_key
from llmd_lab.lab.controller.podcontrol import BURST_REPLICAS, create_owned_pods
from llmd_lab.lab.controller.pods import is_ready, owned_by, selector_string
from llmd_lab.lab.controller.ratelimit import TokenBucket

TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking"
DEFAULT_POD_FAILURE_BACKOFF_S = 10.0  # job_controller.go DefaultJobPodFailureBackOff
MAX_POD_FAILURE_BACKOFF_S = 600.0  # MaxJobPodFailureBackOff
TERMINAL = ("Succeeded", "Failed")


def condition(job: dict, type_: str) -> dict | None:
    return next((c for c in (job.get("status") or {}).get("conditions") or []
                 if c.get("type") == type_ and c.get("status") == "True"), None)


def finished(job: dict) -> dict | None:
    """The Job's Complete or Failed condition once it has one (``util.IsJobFinished``)."""
    return condition(job, "Complete") or condition(job, "Failed")


def parse_time(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def pod_failed(pod: dict) -> bool:
    """``isPodFailed`` without a podFailurePolicy: Failed, or deleted before it succeeded (an orphan)."""
    phase = (pod.get("status") or {}).get("phase")
    return phase == "Failed" or (bool(pod["metadata"].get("deletionTimestamp")) and phase != "Succeeded")


def terminating(pod: dict) -> bool:
    return bool(pod["metadata"].get("deletionTimestamp")) and (pod.get("status") or {}).get("phase") not in TERMINAL


def restarts(pods: list[dict]) -> int:
    """Container restarts of the running/pending pods (``pastBackoffLimitOnFailure``)."""
    total = 0
    for pod in pods:
        status = pod.get("status") or {}
        if status.get("phase") in ("Running", "Pending", None):
            for c in [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]:
                total += int(c.get("restartCount", 0))
    return total


def failure_backoff_s(failures_since_success: int) -> float:
    """backoff_utils.go getRemainingTime: 10 s doubled per consecutive failure, capped at 10 min (simulated)."""
    if failures_since_success <= 0:
        return 0.0
    return min(MAX_POD_FAILURE_BACKOFF_S, DEFAULT_POD_FAILURE_BACKOFF_S * 2 ** (failures_since_success - 1))


class JobController(Reconciler):
    name = "job-controller"
    watches = (
        Watch("batch/v1", "Job", self_key),
        Watch("v1", "Pod", owner_keys("Job")),
    )

    def __init__(self, client_limit: TokenBucket | None = None) -> None:
        super().__init__()
        # the job controller's own client, limited like every kube-controller-manager client
        self.client_limit = client_limit or TokenBucket()
        # backoff_utils.go backoffRecord: failures since the last success and when the last one was seen
        self._backoff: dict[tuple[str, str], tuple[int, float]] = {}

    async def reconcile(self, namespace: str, name: str) -> bool | None:
        job = await self.get_or_none("batch/v1", "Job", name, namespace)
        if job is None:
            self._backoff.pop((namespace, name), None)
            await self._release_orphans(namespace, name)
            return False
        if finished(job):
            self._backoff.pop((namespace, name), None)
            await self._release(await self._pods(job))  # a pod counted late still lets go of its finalizer
            return None
        pods = await self._pods(job)
        status = dict(job.get("status") or {})
        counted = self._count(pods, status)
        new_succeeded = sum(1 for p in counted if (p.get("status") or {}).get("phase") == "Succeeded")
        new_failed = len(counted) - new_succeeded
        self._record_backoff((namespace, name), new_succeeded, new_failed)
        starting = "startTime" not in status
        status.setdefault("startTime", self.now())
        active = [p for p in pods if p["metadata"].get("deletionTimestamp") is None
                  and (p.get("status") or {}).get("phase") not in TERMINAL]
        failure = self._failure(job, status, active, starting)
        deleted = 0
        if failure is not None:  # a failed Job's running pods are deleted; it is Failed once they are gone
            for pod in active:
                await self._delete_pod(job, pod)
            active, deleted = [], len(active)
        elif not job["metadata"].get("deletionTimestamp"):
            active = await self._manage(job, status, active)
        status.update(active=len(active), ready=sum(1 for p in active if is_ready(p)),
                      terminating=deleted + sum(1 for p in pods if terminating(p)),
                      uncountedTerminatedPods=status.get("uncountedTerminatedPods") or {})
        await self._write(job, status, failure)
        await self._release(counted)  # only once the status holds them: a failed write counts them next time
        return None

    # ---- pods
    async def _pods(self, job: dict) -> list[dict]:
        match = (job["spec"].get("selector") or {}).get("matchLabels") or {}
        pods, _ = await self.store.list("v1", "Pod", job["metadata"]["namespace"],
                                        label_selector=selector_string(match))
        return [p for p in pods if owned_by(p, job)]

    @staticmethod
    def _count(pods: list[dict], status: dict) -> list[dict]:
        """Add the finished pods that still hold the tracking finalizer to the counts; returns them (their
        finalizer goes once the status is written, so each pod is counted exactly once)."""
        counted = []
        for pod in pods:
            if TRACKING_FINALIZER not in (pod["metadata"].get("finalizers") or []):
                continue
            key = "succeeded" if (pod.get("status") or {}).get("phase") == "Succeeded" else \
                "failed" if pod_failed(pod) else None
            if key is not None:
                status[key] = int(status.get(key, 0)) + 1
                counted.append(pod)
        return counted

    async def _release(self, pods: list[dict]) -> None:
        for pod in pods:
            finalizers = pod["metadata"].get("finalizers") or []
            if TRACKING_FINALIZER not in finalizers:
                continue
            keep = [f for f in finalizers if f != TRACKING_FINALIZER]
            try:
                await self.store.patch("v1", "Pod", pod["metadata"]["name"], pod["metadata"]["namespace"],
                                       {"metadata": {"finalizers": keep or None}}, "application/merge-patch+json")
            except ApiError as exc:
                if exc.code != 404:
                    raise

    async def _release_orphans(self, namespace: str, name: str) -> None:
        """The Job is gone: its pods, orphaned or not, must not keep the tracking finalizer (upstream the pod
        handler's ``handleOrphanPod`` does this)."""
        pods, _ = await self.store.list("v1", "Pod", namespace, label_selector=f"batch.kubernetes.io/job-name={name}")
        controllers = [[r for r in p["metadata"].get("ownerReferences") or [] if r.get("controller")] for p in pods]
        await self._release([p for p, refs in zip(pods, controllers, strict=True)
                             if not refs or (refs[0].get("kind"), refs[0].get("name")) == ("Job", name)])

    async def _delete_pod(self, job: dict, pod: dict) -> None:
        try:
            await self.store.delete("v1", "Pod", pod["metadata"]["name"], pod["metadata"]["namespace"])
        except ApiError as exc:
            if exc.code != 404:
                raise
            return
        await self.event(job, "Normal", "SuccessfulDelete", f"Deleted pod: {pod['metadata']['name']}")

    # ---- decisions
    def _failure(self, job: dict, status: dict, active: list[dict], starting: bool) -> tuple[str, str] | None:
        spec = job["spec"]
        limit = int(spec.get("backoffLimit", 6))
        on_failure = (spec.get("template") or {}).get("spec", {}).get("restartPolicy") == "OnFailure"
        restarted = restarts(active) if on_failure else 0
        if int(status.get("failed", 0)) > limit or (on_failure and (restarted > 0 if limit == 0 else restarted >= limit)):
            return "BackoffLimitExceeded", "Job has reached the specified backoff limit"
        deadline = spec.get("activeDeadlineSeconds")
        if deadline is not None:
            # wall-clock seconds, not divided by the time scale: the containers that finish (GuideLLM) run
            # in real time, so a scaled deadline would cut a benchmark a cluster lets finish
            elapsed = 0.0 if starting else (self.ctx.clock.now() - parse_time(status["startTime"])).total_seconds()
            if elapsed >= float(deadline):
                return "DeadlineExceeded", "Job was active longer than specified deadline"
            self._requeue_after(job, float(deadline) - elapsed)
        failure = condition(job, "FailureTarget")
        return (failure["reason"], failure.get("message", "")) if failure else None

    async def _manage(self, job: dict, status: dict, active: list[dict]) -> list[dict]:
        """manageJob: delete pods beyond what is wanted, create the missing ones (after the failure back-off)."""
        spec = job["spec"]
        parallelism = int(spec.get("parallelism", 1))
        succeeded = int(status.get("succeeded", 0))
        if spec.get("completions") is None:
            want = len(active) if succeeded > 0 else parallelism
        else:
            want = max(0, min(int(spec["completions"]) - succeeded, parallelism))
        if len(active) > want:
            active.sort(key=lambda p: (bool(p["spec"].get("nodeName")), is_ready(p)))
            for pod in active[: len(active) - want]:
                await self._delete_pod(job, pod)
            return active[len(active) - want:]
        missing = min(want - len(active), BURST_REPLICAS)
        if missing <= 0:
            return active
        remaining = self._remaining_backoff_s(job)
        if remaining > 0:
            self._requeue_after(job, remaining)
            return active
        await create_owned_pods(self, job, missing, active, finalizers=(TRACKING_FINALIZER,),
                                client_limit=self.client_limit)
        return active

    # ---- back-off and timers
    def _record_backoff(self, key: tuple[str, str], new_succeeded: int, new_failed: int) -> None:
        failures, last = self._backoff.get(key, (0, 0.0))
        if new_succeeded:
            failures = 0
        if new_failed:
            failures, last = failures + new_failed, asyncio.get_running_loop().time()
        self._backoff[key] = (failures, last)

    def _remaining_backoff_s(self, job: dict) -> float:
        """Real seconds before a failed pod may be replaced."""
        failures, last = self._backoff.get((job["metadata"]["namespace"], job["metadata"]["name"]), (0, 0.0))
        delay = self.ctx.clock.real_seconds(failure_backoff_s(failures))
        return last + delay - asyncio.get_running_loop().time()

    def _requeue_after(self, job: dict, real_seconds: float) -> None:
        """Sync again after ``real_seconds`` (``queue.AddAfter``)."""
        key = (job["metadata"]["namespace"], job["metadata"]["name"])
        asyncio.get_running_loop().call_later(max(real_seconds, 0.0), self.enqueue, key)

    # ---- status
    async def _write(self, job: dict, status: dict, failure: tuple[str, str] | None) -> None:
        """Write the counts; a finished Job first gets the interim condition (FailureTarget /
        SuccessCriteriaMet), then — once no pod is terminating — the terminal one and its event."""
        spec = job["spec"]
        succeeded = int(status.get("succeeded", 0))
        complete = failure is None and status["active"] == 0 and (
            succeeded > 0 if spec.get("completions") is None else succeeded >= int(spec["completions"]))
        conditions = list(status.get("conditions") or [])
        now = self.now()
        if failure is not None and not condition(job, "FailureTarget"):
            conditions.append(_condition("FailureTarget", *failure, now))
        if complete and not condition(job, "SuccessCriteriaMet"):
            conditions.append(_condition("SuccessCriteriaMet", "", "", now))
        for key in ("active", "succeeded", "failed"):  # omitempty
            if not status.get(key):
                status.pop(key, None)
        status["conditions"] = conditions
        if not status["conditions"]:
            status.pop("conditions")
        job = await self._update_status(job, status)
        if (failure is None and not complete) or status.get("terminating"):
            return
        final = _condition("Failed", *failure, now) if failure else _condition("Complete", "", "", now)
        status = {**status, "conditions": [*conditions, final]}
        if not failure:
            status["completionTime"] = now
        await self._update_status(job, status)
        if failure:
            await self.event(job, "Warning", failure[0], failure[1])
        else:
            await self.event(job, "Normal", "Completed", "Job completed")

    async def _update_status(self, job: dict, status: dict) -> dict:
        if status == (job.get("status") or {}):
            return job
        job["status"] = status
        return await self.store.update_status(job)


def _condition(type_: str, reason: str, message: str, now: str) -> dict[str, Any]:
    out: dict[str, Any] = {"type": type_, "status": "True", "lastProbeTime": now, "lastTransitionTime": now}
    if reason:
        out["reason"] = reason
    if message:
        out["message"] = message
    return out
