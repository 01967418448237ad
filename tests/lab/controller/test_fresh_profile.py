"""On the `fresh` profile (no GPU nodes, no Gateway, no RHCL) an LLMInferenceService explains what is missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmd_lab.lab.controller import controller_manager as controller_components
from llmd_lab.lab.controller.testing import events_for, eventually, make_ctx
from llmd_lab.lab.profiles import load_profile
from llmd_lab.lab.scheduler.scheduler import KubeScheduler
from llmd_lab.lab.server import LabPaths, install_profile

pytestmark = pytest.mark.anyio
API = "serving.kserve.io/v1alpha1"


async def test_fresh_cluster_reports_gateway_auth_and_gpu_gaps(tmp_path: Path, step08) -> None:
    profile = load_profile("fresh")
    ctx = make_ctx(tmp_path, profile)
    await install_profile(ctx.store, profile, LabPaths(tmp_path))
    parts = [*controller_components(ctx), KubeScheduler(interval=0.1)]
    for part in parts:
        await part.start(ctx)
    try:
        del step08["metadata"]["uid"]
        del step08["spec"]["template"]["nodeSelector"]
        await ctx.store.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "private-ai"}})
        await ctx.store.create(step08)

        async def conditions():
            svc = await ctx.store.get(API, "LLMInferenceService", "mistral-3-distributed", "private-ai")
            conds = {c["type"]: c for c in (svc.get("status") or {}).get("conditions", [])}
            return conds if "Ready" in conds else None

        conds = await eventually(conditions, what="status conditions")
        assert conds["Ready"]["status"] == "False"
        assert conds["GatewaysReady"]["status"] == "False"
        assert "not found" in conds["GatewaysReady"]["message"]

        async def failed_scheduling():
            pods, _ = await ctx.store.list("v1", "Pod", "private-ai", label_selector="kserve.io/component=workload")
            for p in pods:
                events = [e for e in await events_for(ctx.store, p["metadata"]["name"], "private-ai")
                          if e["reason"] == "FailedScheduling"]
                if events:
                    return events[0]
            return None

        event = await eventually(failed_scheduling, what="FailedScheduling on a cluster without GPUs")
        # the CPU workers (m6i.2xlarge: 8 vCPU, 32 GiB) cannot hold the seed's requests either
        assert event["message"] == (
            "0/6 nodes are available: 3 Insufficient cpu, 3 Insufficient memory, 3 Insufficient nvidia.com/gpu, "
            "3 node(s) had untolerated taint {node-role.kubernetes.io/master: }. preemption: 0/6 nodes are "
            "available: 3 No preemption victims found for incoming pod, 3 Preemption is not helpful for scheduling.")
    finally:
        for part in reversed(parts):
            await part.stop()
