"""Deployment → ReplicaSet → Pods over the real store: scale, availability, rolling update, events."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from llmd_lab.lab.controller.pods import is_ready
from llmd_lab.lab.controller.testing import events_for, eventually, make_ctx, running
from llmd_lab.lab.controller.workloads import DeploymentController, ReplicaSetController

pytestmark = pytest.mark.anyio

DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "default"},
    "spec": {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}},
                     "spec": {"containers": [{"name": "main", "image": "x:1"}]}},
    },
}


async def mark_ready(store, namespace: str = "default") -> None:
    """Stand in for the kubelet: every pod becomes Running and Ready."""
    pods, _ = await store.list("v1", "Pod", namespace)
    for pod in pods:
        if not is_ready(pod) and not pod["metadata"].get("deletionTimestamp"):
            pod["status"] = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
            await store.update_status(pod)


@pytest.fixture
async def cluster(tmp_path: Path):
    ctx = make_ctx(tmp_path)
    async with running(ctx, DeploymentController(), ReplicaSetController()):
        yield ctx.store


async def test_deployment_creates_pods_and_becomes_available(cluster) -> None:
    store = cluster
    await store.create(DEPLOYMENT)

    async def pods():
        items, _ = await store.list("v1", "Pod", "default")
        return items if len(items) == 2 else None

    created = await eventually(pods, what="2 pods")
    rs_name = created[0]["metadata"]["ownerReferences"][0]["name"]
    assert rs_name.startswith("web-") and created[0]["metadata"]["name"].startswith(rs_name + "-")
    assert created[0]["metadata"]["labels"]["pod-template-hash"] == rs_name.removeprefix("web-")
    dep = await store.get("apps/v1", "Deployment", "web", "default")
    available = next(c for c in dep["status"]["conditions"] if c["type"] == "Available")
    assert available["status"] == "False" and available["reason"] == "MinimumReplicasUnavailable"
    await mark_ready(store)

    async def available_now():
        d = await store.get("apps/v1", "Deployment", "web", "default")
        cond = next((c for c in d["status"].get("conditions", []) if c["type"] == "Available"), {})
        return d if cond.get("status") == "True" and d["status"].get("readyReplicas") == 2 else None

    await eventually(available_now, what="Available=True")
    messages = [e["message"] for e in await events_for(store, "web", "default")]
    assert f"Scaled up replica set {rs_name} from 0 to 2" in messages


async def test_template_change_rolls_to_a_new_replica_set(cluster) -> None:
    store = cluster
    await store.create(DEPLOYMENT)
    await eventually(lambda: _count_pods(store, 2), what="first pods")
    await mark_ready(store)
    dep = await store.get("apps/v1", "Deployment", "web", "default")
    dep["spec"]["template"]["spec"]["containers"][0]["image"] = "x:2"
    await store.update(dep)

    async def rolled():
        await mark_ready(store)
        pods, _ = await store.list("v1", "Pod", "default")
        live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        images = {p["spec"]["containers"][0]["image"] for p in live}
        return images == {"x:2"} and len(live) == 2

    await eventually(rolled, what="all pods on the new template")
    rss, _ = await store.list("apps/v1", "ReplicaSet", "default")
    assert sorted(rs["spec"]["replicas"] for rs in rss) == [0, 2]


async def test_scale_down_removes_pods(cluster) -> None:
    store = cluster
    await store.create({**DEPLOYMENT, "spec": {**DEPLOYMENT["spec"], "replicas": 3}})
    await eventually(lambda: _count_pods(store, 3), what="3 pods")
    await store.patch("apps/v1", "Deployment", "web", "default", {"spec": {"replicas": 1}},
                      "application/merge-patch+json")
    await eventually(lambda: _count_pods(store, 1), what="1 pod")
    await asyncio.sleep(0)


async def _count_pods(store, n: int) -> bool:
    pods, _ = await store.list("v1", "Pod", "default")
    return len([p for p in pods if not p["metadata"].get("deletionTimestamp")]) == n
