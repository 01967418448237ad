"""KServe's data-parallel worker preset in the lab: the LeaderWorkerSet's leader serves the API, the
``--headless`` worker runs its engine and is Ready without an HTTP API (no readiness probe), neither crash-loops."""

from __future__ import annotations

import pytest
import yaml

from llmd_lab.lab.controller.testing import eventually

pytestmark = pytest.mark.anyio
DP = yaml.safe_load("""
apiVersion: serving.kserve.io/v1alpha1
kind: LLMInferenceService
metadata: {name: qwen-dp, namespace: default, annotations: {security.opendatahub.io/enable-auth: "false"}}
spec:
  model: {uri: "hf://Qwen/Qwen3-0.6B", name: Qwen/Qwen3-0.6B}
  parallelism: {data: 2, dataLocal: 1, tensor: 1}
  template:
    tolerations: [{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}]
    containers:
      - name: main
        env: [{name: VLLM_ADDITIONAL_ARGS, value: "--max-model-len=4096"}]
        resources: {limits: {nvidia.com/gpu: "1"}}
  worker:
    tolerations: [{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}]
    containers:
      - name: main
        env: [{name: VLLM_ADDITIONAL_ARGS, value: "--max-model-len=4096"}]
        resources: {limits: {nvidia.com/gpu: "1"}}
""")


@pytest.fixture
async def cluster(start_lab):
    return await start_lab()


async def test_data_parallel_leader_and_headless_worker_become_ready(cluster) -> None:
    ctx, kubelet = cluster
    await ctx.store.create(DP)

    async def both_ready():
        pods, _ = await ctx.store.list("v1", "Pod", "default",
                                       label_selector="leaderworkerset.sigs.k8s.io/name=qwen-dp-kserve-mn")
        ready = [p for p in pods if all(c.get("ready") for c in p["status"].get("containerStatuses") or [{}])]
        return pods if len(pods) == 2 and len(ready) == 2 else None

    pods = await eventually(both_ready, what="leader and worker pods Ready")
    names = sorted(p["metadata"]["name"] for p in pods)
    assert names == ["qwen-dp-kserve-mn-0", "qwen-dp-kserve-mn-0-1"]
    for pod in pods:
        main = next(c for c in pod["status"]["containerStatuses"] if c["name"] == "main")
        assert main["restartCount"] == 0, pod["metadata"]["name"]
    worker_log = "".join([c async for c in kubelet.read_logs("default", names[1], "main", None, False, False)])
    assert "data parallel engine(s) in headless mode, with head node address tcp://qwen-dp-kserve-mn-0." in worker_log
    leader_log = "".join([c async for c in kubelet.read_logs("default", names[0], "main", None, False, False)])
    assert "Starting vLLM API server" in leader_log
