"""LeaderWorkerSet: leader + workers named as LWS names them, Available when every group is ready,
and RecreateGroupOnPodRestart fate-sharing."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmd_lab.lab.controller.leaderworkerset import LeaderWorkerSetController
from llmd_lab.lab.controller.testing import eventually, make_ctx, running
from llmd_lab.lab.crds import load as load_crds

pytestmark = pytest.mark.anyio
LWS = {
    "apiVersion": "leaderworkerset.x-k8s.io/v1",
    "kind": "LeaderWorkerSet",
    "metadata": {"name": "m-kserve-mn", "namespace": "default"},
    "spec": {"replicas": 1, "leaderWorkerTemplate": {
        "size": 3, "restartPolicy": "RecreateGroupOnPodRestart",
        "leaderTemplate": {"metadata": {"labels": {"role": "leader"}}, "spec": {"containers": [{"name": "main", "image": "vllm"}]}},
        "workerTemplate": {"metadata": {"labels": {"role": "worker"}}, "spec": {"containers": [{"name": "main", "image": "vllm"}]}},
    }},
}


@pytest.fixture
async def store(tmp_path: Path):
    ctx = make_ctx(tmp_path)
    for crd in load_crds(["leaderworkersets.leaderworkerset.x-k8s.io"]):
        await ctx.store.create(crd)
    async with running(ctx, LeaderWorkerSetController()):
        yield ctx.store


async def _pods(store) -> dict[str, dict]:
    items, _ = await store.list("v1", "Pod", "default")
    return {p["metadata"]["name"]: p for p in items}


async def test_group_pods_env_availability_and_fate_sharing(store) -> None:
    await store.create(LWS)
    pods = await eventually(lambda: _three(store), what="leader and 2 workers")
    assert set(pods) == {"m-kserve-mn-0", "m-kserve-mn-0-1", "m-kserve-mn-0-2"}
    assert pods["m-kserve-mn-0"]["metadata"]["labels"]["role"] == "leader"
    env = {e["name"]: e["value"] for e in pods["m-kserve-mn-0-2"]["spec"]["containers"][0]["env"]}
    assert env["LWS_LEADER_ADDRESS"] == "m-kserve-mn-0.m-kserve-mn.default" and env["LWS_WORKER_INDEX"] == "2"
    for pod in pods.values():
        pod["status"] = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
                         "containerStatuses": [{"name": "main", "restartCount": 0, "ready": True}]}
        await store.update_status(pod)

    async def available():
        lws = await store.get("leaderworkerset.x-k8s.io/v1", "LeaderWorkerSet", "m-kserve-mn", "default")
        return any(c["type"] == "Available" and c["status"] == "True"
                   for c in (lws.get("status") or {}).get("conditions", []))

    await eventually(available, what="Available=True")
    old_uids = {p["metadata"]["uid"] for p in pods.values()}
    worker = (await _pods(store))["m-kserve-mn-0-1"]
    worker["status"]["containerStatuses"][0]["restartCount"] = 1
    await store.update_status(worker)

    async def recreated():
        now = await _three(store)
        return now if now and not ({p["metadata"]["uid"] for p in now.values()} & old_uids) else None

    await eventually(recreated, what="the whole group recreated after one worker restarted")


async def _three(store) -> dict | None:
    pods = {n: p for n, p in (await _pods(store)).items() if not p["metadata"].get("deletionTimestamp")}
    return pods if len(pods) == 3 else None
