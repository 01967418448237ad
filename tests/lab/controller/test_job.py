"""batch/v1 Job over the real store: API defaults and labels, pods, counting, back-off limit, deadline, TTL.

The tests stand in for the kubelet by writing pod phases (the kubelet's own restartPolicy handling is pinned
in tests/lab/kubelet/test_restart_policy.py).
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from llmd_lab.lab.apiserver.errors import ApiError
from llmd_lab.lab.controller.job import TRACKING_FINALIZER, JobController, failure_backoff_s
from llmd_lab.lab.controller.testing import events_for, eventually, make_ctx, running
from llmd_lab.lab.controller.ttlafterfinished import TTLAfterFinishedController

pytestmark = pytest.mark.anyio

JOB = {
    "apiVersion": "batch/v1",
    "kind": "Job",
    "metadata": {"name": "bench", "namespace": "default"},
    "spec": {"template": {"metadata": {"labels": {"app": "bench"}},
                          "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "x:1"}]}}},
}


def job(**spec) -> dict:
    out = copy.deepcopy(JOB)
    out["spec"].update(spec)
    return out


@pytest.fixture
async def cluster(tmp_path: Path):
    ctx = make_ctx(tmp_path, time_scale=1000.0)  # the 10 s pod-failure back-off is 10 ms here
    async with running(ctx, JobController(), TTLAfterFinishedController()):
        yield ctx.store


async def pods_of(store, name: str = "bench") -> list[dict]:
    items, _ = await store.list("v1", "Pod", "default", label_selector=f"batch.kubernetes.io/job-name={name}")
    return items


async def finish(store, pod: dict, phase: str) -> None:
    """The kubelet's part: the pod's containers exited and it will not restart them."""
    pod = await store.get("v1", "Pod", pod["metadata"]["name"], "default")
    pod["status"] = {"phase": phase, "conditions": [{"type": "Ready", "status": "False"}]}
    await store.update_status(pod)


def cond(obj: dict, type_: str) -> dict | None:
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == type_), None)


async def test_api_defaults_selector_and_labels_as_kube_apiserver_sets_them(cluster) -> None:
    created = await cluster.create(job())
    uid, spec = created["metadata"]["uid"], created["spec"]
    assert (spec["completions"], spec["parallelism"], spec["backoffLimit"]) == (1, 1, 6)
    assert (spec["completionMode"], spec["suspend"], spec["podReplacementPolicy"]) == (
        "NonIndexed", False, "TerminatingOrFailed")
    assert spec["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    assert spec["template"]["metadata"]["labels"] == {
        "app": "bench", "controller-uid": uid, "batch.kubernetes.io/controller-uid": uid,
        "job-name": "bench", "batch.kubernetes.io/job-name": "bench"}
    assert created["status"] == {}


async def test_one_pod_runs_to_complete(cluster) -> None:
    store = cluster
    created = await store.create(job())
    [pod] = await eventually(lambda: pods_of(store), what="the Job's pod")
    meta = pod["metadata"]
    assert meta["name"].startswith("bench-") and meta["finalizers"] == [TRACKING_FINALIZER]
    assert meta["ownerReferences"] == [{"apiVersion": "batch/v1", "kind": "Job", "name": "bench",
                                        "uid": created["metadata"]["uid"], "controller": True,
                                        "blockOwnerDeletion": True}]
    assert pod["spec"]["restartPolicy"] == "Never"

    async def active():
        j = await store.get("batch/v1", "Job", "bench", "default")
        return j if j["status"].get("active") == 1 else None

    running = await eventually(active, what="status.active 1")
    assert running["status"]["startTime"] and running["status"]["ready"] == 0
    await finish(store, pod, "Succeeded")

    async def complete():
        j = await store.get("batch/v1", "Job", "bench", "default")
        return j if cond(j, "Complete") else None

    done = await eventually(complete, what="Complete")
    status = done["status"]
    assert status["succeeded"] == 1 and "active" not in status and "failed" not in status
    assert [c["type"] for c in status["conditions"]] == ["SuccessCriteriaMet", "Complete"]
    assert status["completionTime"] >= status["startTime"]
    [pod] = await pods_of(store)
    assert "finalizers" not in pod["metadata"]  # counted, then let go: the pod stays for its logs
    reasons = {e["reason"]: e["message"] for e in await events_for(store, "bench", "default")}
    assert reasons == {"SuccessfulCreate": f"Created pod: {meta['name']}", "Completed": "Job completed"}


async def test_backoff_limit_replaces_failed_pods_then_fails_the_job(cluster) -> None:
    store = cluster
    await store.create(job(backoffLimit=2))
    seen: set[str] = set()
    for attempt in range(3):
        async def fresh():
            return [p for p in await pods_of(store) if p["metadata"]["name"] not in seen]

        [pod] = await eventually(fresh, what=f"pod #{attempt + 1}")
        seen.add(pod["metadata"]["name"])
        await finish(store, pod, "Failed")

    async def failed():
        j = await store.get("batch/v1", "Job", "bench", "default")
        return j if cond(j, "Failed") else None

    done = await eventually(failed, what="Failed")
    assert done["status"]["failed"] == 3 and "succeeded" not in done["status"]
    target, final = cond(done, "FailureTarget"), cond(done, "Failed")
    assert (target["reason"], final["reason"]) == ("BackoffLimitExceeded", "BackoffLimitExceeded")
    assert final["message"] == "Job has reached the specified backoff limit"
    assert "completionTime" not in done["status"]
    assert len(await pods_of(store)) == 3  # no fourth attempt
    events = await events_for(store, "bench", "default")
    assert any(e["reason"] == "BackoffLimitExceeded" and e["type"] == "Warning" for e in events)


def test_pod_failure_backoff_follows_kube() -> None:
    assert [failure_backoff_s(n) for n in range(0, 4)] == [0.0, 10.0, 20.0, 40.0]
    assert failure_backoff_s(20) == 600.0


async def test_completions_and_parallelism(cluster) -> None:
    store = cluster
    await store.create(job(completions=3, parallelism=2))
    first = await eventually(lambda: pods_of(store), what="pods")
    assert len(first) == 2  # parallelism
    for pod in first:
        await finish(store, pod, "Succeeded")

    async def third():
        pods = await pods_of(store)
        return pods if len(pods) == 3 else None

    pods = await eventually(third, what="one more pod for the last completion")
    [last] = [p for p in pods if p["metadata"]["name"] not in {q["metadata"]["name"] for q in first}]
    await finish(store, last, "Succeeded")

    async def complete():
        j = await store.get("batch/v1", "Job", "bench", "default")
        return j if cond(j, "Complete") else None

    assert (await eventually(complete, what="Complete"))["status"]["succeeded"] == 3
    assert len(await pods_of(store)) == 3


async def test_active_deadline_deletes_running_pods_and_fails(cluster) -> None:
    store = cluster
    await store.create(job(activeDeadlineSeconds=1))  # wall-clock seconds, whatever the time scale

    async def failed():
        j = await store.get("batch/v1", "Job", "bench", "default")
        return j if cond(j, "Failed") else None

    done = await eventually(failed, what="DeadlineExceeded")
    assert cond(done, "Failed")["reason"] == "DeadlineExceeded"
    assert cond(done, "Failed")["message"] == "Job was active longer than specified deadline"
    assert done["status"]["failed"] == 1  # the deleted running pod counts as failed
    assert await pods_of(store) == []  # no kubelet here: deleted with grace, its finalizer released


async def test_ttl_after_finished_deletes_job_and_pods(cluster) -> None:
    store = cluster
    await store.create(job(ttlSecondsAfterFinished=1000))  # 1 s at time scale 1000
    [pod] = await eventually(lambda: pods_of(store), what="pod")
    await finish(store, pod, "Succeeded")

    async def gone():
        try:
            await store.get("batch/v1", "Job", "bench", "default")
        except ApiError as exc:
            return exc.code == 404
        return False

    await eventually(gone, what="the Job deleted by its TTL")

    async def no_pods():
        return await pods_of(store) == []

    await eventually(no_pods, what="its pod deleted with it (foreground)")


async def test_delete_without_propagation_orphans_pods_as_batch_v1_does(cluster) -> None:
    store = cluster
    await store.create(job())
    [pod] = await eventually(lambda: pods_of(store), what="pod")
    await store.delete("batch/v1", "Job", "bench", "default", propagation=None)

    async def released():
        [p] = await pods_of(store)
        return p if not p["metadata"].get("finalizers") and not p["metadata"].get("ownerReferences") else None

    orphan = await eventually(released, what="the pod orphaned and its tracking finalizer released")
    assert orphan["metadata"]["name"] == pod["metadata"]["name"]


async def test_kubectl_get_jobs_columns_follow_kubectl(cluster) -> None:
    from llmd_lab.lab.apiserver.tables import columns_and_row

    store = cluster
    columns, row = columns_and_row(store.registry.lookup_kind("batch/v1", "Job"))
    assert [c["name"] for c in columns] == ["Status", "Completions", "Duration", "Age"]
    await store.create(job())
    [pod] = await eventually(lambda: pods_of(store), what="pod")
    assert row(await store.get("batch/v1", "Job", "bench", "default"))[:2] == ["Running", "0/1"]
    await finish(store, pod, "Succeeded")

    async def complete():
        j = await store.get("batch/v1", "Job", "bench", "default")
        return j if cond(j, "Complete") else None

    cells = row(await eventually(complete, what="Complete"))
    assert cells[:2] == ["Complete", "1/1"] and cells[2].endswith("s")
    unbounded = job(parallelism=3)
    unbounded["metadata"]["name"] = "three"
    assert row(await store.create(unbounded))[:2] == ["Running", "0/1 of 3"]
