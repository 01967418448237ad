"""The kubelet over the store: pod IPs, container states, readiness from /health, logs, CrashLoopBackOff."""

from __future__ import annotations

import ipaddress

import httpx
import pytest
from labpods import vllm_pod

from llmd_lab.lab.controller.testing import events_for, eventually
from llmd_lab.lab.network import POD_CIDR

pytestmark = pytest.mark.anyio
async def _pod(store, name: str) -> dict:
    return await store.get("v1", "Pod", name, "default")


async def test_vllm_pod_becomes_ready_on_its_own_ip_and_logs(node_env) -> None:
    ctx, kubelet = node_env
    store = ctx.store
    await store.create(vllm_pod("qwen", "Qwen/Qwen3-0.6B", extra="--max-model-len=4096"))

    async def ready():
        pod = await _pod(store, "qwen")
        conds = {c["type"]: c["status"] for c in pod["status"].get("conditions", [])}
        return pod if conds.get("Ready") == "True" else None

    pod = await eventually(ready, what="vLLM pod Ready")
    ip = pod["status"]["podIP"]
    assert ipaddress.ip_address(ip) in POD_CIDR
    assert pod["status"]["phase"] == "Running"
    main = pod["status"]["containerStatuses"][0]
    assert main["ready"] and "running" in main["state"] and main["restartCount"] == 0
    async with httpx.AsyncClient() as client:
        r = await client.get(f"http://{ip}:8000/v1/models")
        assert r.status_code == 200 and r.json()["data"][0]["id"]
    text = "".join([c async for c in kubelet.read_logs("default", "qwen", None, None, False, False)])
    assert "Application startup complete" in text or "Starting vLLM API server" in text
    reasons = [e["reason"] for e in await events_for(store, "qwen", "default")]
    assert {"Scheduled", "Pulling", "Pulled", "Created", "Started"} <= set(reasons)


async def test_model_too_big_for_one_l4_crash_loops_with_oom_in_previous_log(node_env) -> None:
    ctx, kubelet = node_env
    store = ctx.store
    await store.create(vllm_pod("big", "meta-llama/Llama-3.1-70B-Instruct"))

    async def crash_looping():
        pod = await _pod(store, "big")
        for cs in pod["status"].get("containerStatuses", []):
            waiting = cs["state"].get("waiting") or {}
            if waiting.get("reason") == "CrashLoopBackOff" and cs["restartCount"] >= 1:
                return cs
        return None

    cs = await eventually(crash_looping, what="CrashLoopBackOff")
    assert cs["lastState"]["terminated"]["exitCode"] != 0
    assert "back-off 10s restarting failed container=main pod=big_default" in cs["state"]["waiting"]["message"]
    previous = "".join([c async for c in kubelet.read_logs("default", "big", "main", None, False, True)])
    assert "out of memory" in previous.lower()
    reasons = [e["reason"] for e in await events_for(store, "big", "default")]
    assert "BackOff" in reasons


async def test_deleting_a_pod_stops_it_and_removes_it(node_env) -> None:
    ctx, kubelet = node_env
    store = ctx.store
    await store.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "idle", "namespace": "default"},
                        "spec": {"containers": [{"name": "c", "image": "busybox"}]}})

    async def ready():
        pod = await _pod(store, "idle")
        return pod if pod["status"].get("containerStatuses", [{}])[0].get("ready") else None

    await eventually(ready, what="idle pod ready")
    await store.delete("v1", "Pod", "idle", "default")

    async def gone():
        items, _ = await store.list("v1", "Pod", "default")
        return not items
    await eventually(gone, what="pod removed by the kubelet")
    assert not kubelet.workers


async def test_failing_liveness_probe_restarts_the_container(node_env) -> None:
    ctx, _ = node_env
    store = ctx.store
    await store.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "stuck", "namespace": "default"},
                        "spec": {"containers": [{"name": "c", "image": "busybox", "livenessProbe": {
                            "httpGet": {"path": "/health", "port": 8000}, "initialDelaySeconds": 1,
                            "periodSeconds": 1, "failureThreshold": 2}}]}})

    async def restarted():
        pod = await _pod(store, "stuck")
        cs = (pod["status"].get("containerStatuses") or [{}])[0]
        return cs if cs.get("restartCount", 0) >= 1 else None

    cs = await eventually(restarted, what="a liveness restart")
    assert cs["lastState"]["terminated"]["exitCode"] == 137
    messages = [e["message"] for e in await events_for(store, "stuck", "default")]
    assert "Container c failed liveness probe, will be restarted" in messages
    assert any(m.startswith("Liveness probe failed: ") for m in messages)
