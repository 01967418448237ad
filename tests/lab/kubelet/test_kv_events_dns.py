"""Precise prefix routing in the lab: vLLM publishes KV events to ``tcp://<name>-epp-service:5557`` (a cluster DNS
name), the kubelet's DNS resolves it to the Service's cluster IP, kube-proxy forwards the TCP port to the EPP pod
and the EPP's KV-block index fills. Also the DNS names a pod may use."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import yaml

from llmd_lab.lab.controller.testing import eventually
from llmd_lab.lab.kubelet import dns
from llmd_lab.lab.kubelet.kubelet import Kubelet
from llmd_lab.sim.epp.plugins.precise_prefix import PrecisePrefixCacheScorer

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parents[3]
PATCH = ROOT / "assets/gitops/overlays/precise-prefix/patch-llminferenceservice.yaml"


def precise_prefix_llmisvc() -> dict:
    """The workshop's LLMInferenceService with the precise-prefix overlay's containers (as the library renders)."""
    ops = {op["path"]: op["value"] for op in yaml.safe_load(PATCH.read_text())}
    return {
        "apiVersion": "serving.kserve.io/v1alpha1", "kind": "LLMInferenceService",
        "metadata": {"name": "qwen", "namespace": "private-ai",
                     "annotations": {"security.opendatahub.io/enable-auth": "false"}},
        "spec": {
            "model": {"uri": "hf://Qwen/Qwen3-0.6B", "name": "qwen"},
            "replicas": 1,
            "template": {"tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
                         "containers": ops["/spec/template/containers"]},
            "router": {"route": {}, "scheduler": {"template": {
                "containers": ops["/spec/router/scheduler/template/containers"],
                "volumes": ops["/spec/router/scheduler/template/volumes"]}}},
        },
    }


@pytest.fixture
async def cluster(start_lab):
    return await start_lab(services=True)


def _running(kubelet: Kubelet, component: str, container: str = "main"):
    for worker in kubelet.workers.values():
        if worker.pod["metadata"]["labels"].get("app.kubernetes.io/component") == component:
            runner = worker.runner(container)
            if runner is not None and runner.handle is not None:
                return worker, runner.handle
    return None


async def test_vllm_kv_events_reach_the_epp_through_the_service(cluster) -> None:
    ctx, kubelet = cluster
    await ctx.store.create(precise_prefix_llmisvc())
    svc = await eventually(lambda: _service(ctx.store), what="EPP Service with a cluster IP")
    assert {p["name"]: p["port"] for p in svc["spec"]["ports"]}["zmq"] == 5557
    epp = await eventually(_async(lambda: _running(kubelet, "llminferenceservice-router-scheduler")), timeout=30,
                           what="EPP running")
    scorer = next(p for p in epp[1].config.plugins.values() if isinstance(p, PrecisePrefixCacheScorer))
    vllm = await eventually(_async(lambda: _running(kubelet, "llminferenceservice-workload")), timeout=30, what="vLLM running")
    pod_ip = vllm[0].ip
    log = "".join([c async for c in kubelet.read_logs("private-ai", vllm[0].pod["metadata"]["name"], "main",
                                                      None, False, False)])
    assert "KV events publisher connected to tcp://qwen-epp-service:5557" in log
    prompt = "The quick brown fox jumps over the lazy dog. " * 40
    async with httpx.AsyncClient(timeout=30) as client:
        r = await client.post(f"http://{pod_ip}:8000/v1/completions",
                              json={"model": "qwen", "prompt": prompt, "max_tokens": 4})
        assert r.status_code == 200, r.text

    async def indexed():
        return scorer.index.admissions > 0 and any(pod_ip in pods for pods in scorer.index.blocks.values())

    await eventually(indexed, timeout=15, what="the EPP's KV-block index to hold the vLLM pod's blocks")


async def _service(store):
    try:
        svc = await store.get("v1", "Service", "qwen-epp-service", "private-ai")
    except Exception:
        return None
    return svc if svc["spec"].get("clusterIP") else None


def _async(fn):
    async def call():
        return fn()
    return call


async def test_cluster_dns_names(cluster) -> None:
    ctx, _ = cluster
    await ctx.store.create({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "private-ai"},
                            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}})

    async def cluster_ip():
        svc = await ctx.store.get("v1", "Service", "web", "private-ai")
        return svc["spec"].get("clusterIP")

    ip = await eventually(cluster_ip, what="cluster IP")
    for name in ("web", "web.private-ai", "web.private-ai.svc", "web.private-ai.svc.cluster.local."):
        assert await dns.resolve(ctx.store, name, "private-ai") == ip, name
    assert await dns.resolve(ctx.store, "web", "default") is None  # another namespace's search path
    assert await dns.resolve(ctx.store, "127.0.0.1", "private-ai") is None
    assert await dns.resolve(ctx.store, "localhost", "private-ai") is None
    assert await dns.resolve(ctx.store, "example.com.evil.org.x", "private-ai") is None
