"""PersistentVolumeClaims on the rhoai-3.0 lab (OpenShift on AWS): the default class gp3-csi is set at
admission, the claim waits for its first consumer, the scheduler names the node, the provisioner creates a
zonal volume and binds it, the kubelet starts the pod once the claim is Bound, a deleted claim's volume goes.
"""

from __future__ import annotations

import pytest

from llmd_lab.lab.apiserver.errors import ApiError
from llmd_lab.lab.controller.testing import events_for, eventually

pytestmark = pytest.mark.anyio

PVC = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "results", "namespace": "default"},
       "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}


def pod(name: str, claim: str = "results") -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
            "spec": {"containers": [{"name": "main", "image": "registry.access.redhat.com/ubi9/ubi:9.5",
                                     "command": ["sleep", "infinity"],
                                     "volumeMounts": [{"name": "data", "mountPath": "/results"}]}],
                     "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}]}}


async def test_claim_waits_for_first_consumer_then_binds_in_the_nodes_zone(start_lab) -> None:
    ctx, _ = await start_lab()
    store = ctx.store
    created = await store.create(PVC)
    assert created["spec"]["storageClassName"] == "gp3-csi"  # DefaultStorageClass admission
    assert created["spec"]["volumeMode"] == "Filesystem" and created["status"] == {"phase": "Pending"}

    async def waiting():
        return [e for e in await events_for(store, "results", "default") if e["reason"] == "WaitForFirstConsumer"]

    [event] = await eventually(waiting, what="WaitForFirstConsumer event")
    assert event["message"] == "waiting for first consumer to be created before binding"
    assert (await store.get("v1", "PersistentVolumeClaim", "results", "default"))["status"]["phase"] == "Pending"

    await store.create(pod("consumer"))

    async def bound():
        claim = await store.get("v1", "PersistentVolumeClaim", "results", "default")
        return claim if claim["status"].get("phase") == "Bound" else None

    claim = await eventually(bound, what="claim Bound")
    node_name = (await store.get("v1", "Pod", "consumer", "default"))["spec"]["nodeName"]
    assert claim["metadata"]["annotations"]["volume.kubernetes.io/selected-node"] == node_name
    assert claim["spec"]["volumeName"] == f"pvc-{created['metadata']['uid']}"
    assert claim["status"]["capacity"] == {"storage": "1Gi"}
    pv = await store.get("v1", "PersistentVolume", claim["spec"]["volumeName"])
    node = await store.get("v1", "Node", node_name)
    zone = node["metadata"]["labels"]["topology.kubernetes.io/zone"]
    assert pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]["values"] == [zone]
    assert pv["status"]["phase"] == "Bound" and pv["spec"]["csi"]["driver"] == "ebs.csi.aws.com"
    assert pv["spec"]["claimRef"]["uid"] == created["metadata"]["uid"]

    async def running():
        p = await store.get("v1", "Pod", "consumer", "default")
        return p if p["status"].get("phase") == "Running" else None

    await eventually(running, what="the pod running with its volume")
    assert (ctx.home / "volumes" / pv["metadata"]["name"]).is_dir()

    await store.delete("v1", "Pod", "consumer", "default", grace_period_seconds=0)
    await store.delete("v1", "PersistentVolumeClaim", "results", "default")

    async def volume_gone():
        try:
            await store.get("v1", "PersistentVolume", pv["metadata"]["name"])
        except ApiError as exc:
            return exc.code == 404
        return False

    await eventually(volume_gone, what="reclaimPolicy Delete")


async def test_pod_with_a_missing_claim_is_unschedulable(start_lab) -> None:
    ctx, _ = await start_lab()
    store = ctx.store
    await store.create(pod("orphan", claim="nope"))

    async def failed():
        p = await store.get("v1", "Pod", "orphan", "default")
        cond = next((c for c in p["status"].get("conditions") or [] if c["type"] == "PodScheduled"), None)
        return cond if cond and cond["status"] == "False" else None

    cond = await eventually(failed, what="PodScheduled False")
    assert 'persistentvolumeclaim "nope" not found' in cond["message"]
    assert cond["message"].startswith("0/")


async def test_kubectl_get_pvc_shows_capacity_once_bound(start_lab) -> None:
    from llmd_lab.lab.apiserver.tables import columns_and_row

    ctx, _ = await start_lab()
    store = ctx.store
    columns, row = columns_and_row(store.registry.lookup_kind("v1", "PersistentVolumeClaim"))
    assert [c["name"] for c in columns][:6] == ["Status", "Volume", "Capacity", "Access Modes", "StorageClass",
                                                "VolumeAttributesClass"]
    pending = await store.create(PVC)
    assert row(pending)[:6] == ["Pending", "", "", "", "gp3-csi", "<unset>"]
    await store.create(pod("consumer"))

    async def bound():
        claim = await store.get("v1", "PersistentVolumeClaim", "results", "default")
        return claim if claim["status"].get("phase") == "Bound" else None

    claim = await eventually(bound, what="claim Bound")
    assert row(claim)[:5] == ["Bound", claim["spec"]["volumeName"], "1Gi", "RWO", "gp3-csi"]
