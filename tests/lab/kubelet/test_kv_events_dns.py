"""Precise prefix routing in the lab: vLLM publishes KV events to ``tcp://<name>-epp-kv-events:5557`` (the
workshop's own Service, assets/gitops/overlays/precise-prefix), the kubelet's DNS resolves it to the Service's
cluster IP, kube-proxy forwards the TCP port to the EPP pod and the EPP's KV-block index fills.

KServe's own precise-prefix sample (red-hat-data-services/kserve@rhoai-3.0
docs/samples/llmisvc/precise-prefix-kv-cache-routing) points vLLM at ``<name>-epp-service:5557``, a port that
Service does not have (pkg/controller/llmisvc/scheduler.go renders grpc, grpc-health, metrics only): the events
go nowhere and the index stays empty. Also the DNS names a pod may use."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
import yaml

from llmd_lab.lab.controller.testing import eventually
from llmd_lab.lab.kubelet import dns
from llmd_lab.lab.kubelet.kubelet import Kubelet
from llmd_lab.sim.epp.plugins.precise_prefix import PrecisePrefixCacheScorer
from llmd_lab.sim.epp.types import LLMRequest
from llmd_lab.sim.tls import insecure_client_context

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parents[3]
PATCH = ROOT / "assets/gitops/overlays/precise-prefix/patch-llminferenceservice.yaml"
FIX = ROOT / "assets/gitops/overlays/precise-prefix/service.yaml"
KSERVE_SAMPLE_ENDPOINT = "tcp://qwen-epp-service:5557"
# the precise scorer loads its tokenizer by the served name (kv-cache-manager v0.3.1 tokenizer.go FromPretrained):
# the model must be served under its Hugging Face id, and vLLM's KV-event topic must carry that name
SERVED = "Qwen/Qwen3-0.6B"


def precise_prefix_llmisvc() -> dict:
    """The workshop's LLMInferenceService with the precise-prefix overlay's containers (as the library renders)."""
    ops = {op["path"]: op["value"] for op in yaml.safe_load(PATCH.read_text())}
    for var in ops["/spec/template/containers"][0]["env"]:
        if var["name"] == "VLLM_ADDITIONAL_ARGS":
            var["value"] = var["value"].replace("@qwen\"", f"@{SERVED}\"")
    return {
        "apiVersion": "serving.kserve.io/v1alpha1", "kind": "LLMInferenceService",
        "metadata": {"name": "qwen", "namespace": "private-ai",
                     "annotations": {"security.opendatahub.io/enable-auth": "false"}},
        "spec": {
            "model": {"uri": "hf://Qwen/Qwen3-0.6B", "name": SERVED},
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


async def _serve_one_prompt(kubelet: Kubelet, endpoint: str):
    """Wait for EPP and vLLM, check vLLM publishes to ``endpoint``; return (scorer, pod IP, a prompt sender)."""
    epp = await eventually(_async(lambda: _running(kubelet, "llminferenceservice-router-scheduler")), timeout=30,
                           what="EPP running")
    scorer = next(p for p in epp[1].config.plugins.values() if isinstance(p, PrecisePrefixCacheScorer))
    vllm = await eventually(_async(lambda: _running(kubelet, "llminferenceservice-workload")), timeout=30, what="vLLM running")
    pod_ip = vllm[0].ip
    log = "".join([c async for c in kubelet.read_logs("private-ai", vllm[0].pod["metadata"]["name"], "main",
                                                      None, False, False)])
    assert f"KV events publisher connected to {endpoint}" in log

    async def send(i: int) -> None:
        prompt = f"{i}: The quick brown fox jumps over the lazy dog. " * 40
        # vLLM serves HTTPS with KServe's SAN-less certificate: skip verification, as the gateway does
        async with httpx.AsyncClient(timeout=30, verify=insecure_client_context()) as client:
            r = await client.post(f"https://{pod_ip}:8000/v1/completions",
                                  json={"model": SERVED, "prompt": prompt, "max_tokens": 4})
            assert r.status_code == 200, r.text

    return scorer, pod_ip, send


async def test_vllm_kv_events_reach_the_epp_through_the_workshop_service(cluster) -> None:
    ctx, kubelet = cluster
    await ctx.store.create(yaml.safe_load(FIX.read_text()))  # kustomize applies Services before custom resources
    await ctx.store.create(precise_prefix_llmisvc())
    svc = await eventually(lambda: _service(ctx.store), what="EPP Service with a cluster IP")
    assert 5557 not in {p["port"] for p in svc["spec"]["ports"]}  # KServe renders no KV-event port
    scorer, pod_ip, send = await _serve_one_prompt(kubelet, "tcp://qwen-epp-kv-events:5557")

    async def indexed():
        return scorer.index.admissions > 0 and any(pod_ip in pods for pods in scorer.index.blocks.values())

    # ZMQ PUB drops what it sends before the subscriber's connection is up (as vLLM's does): keep prompting,
    # one prompt after the other (each waits for its events to be published), until the index holds blocks.
    # The loop stops between prompts, never by cancelling one mid-request (that can leave its socket unclosed).
    done = asyncio.Event()

    async def keep_prompting() -> None:
        for i in range(200):
            if done.is_set():
                return
            await send(i)
            await eventually(_async(lambda sent=i + 1: _published(kubelet) >= sent), timeout=60,
                             what="vLLM to publish")

    prompting = asyncio.create_task(keep_prompting())
    try:
        await eventually(indexed, timeout=120, what="the EPP's KV-block index to hold the vLLM pod's blocks")
    finally:
        done.set()
        await prompting


async def test_kserve_sample_endpoint_leaves_the_index_empty(cluster) -> None:
    """vLLM aimed at ``<name>-epp-service:5557`` as KServe's sample does: nothing listens there, nothing arrives."""
    ctx, kubelet = cluster
    svc = precise_prefix_llmisvc()
    env = svc["spec"]["template"]["containers"][0]["env"]
    for var in env:
        if var["name"] == "VLLM_ADDITIONAL_ARGS":
            var["value"] = var["value"].replace("tcp://qwen-epp-kv-events:5557", KSERVE_SAMPLE_ENDPOINT)
    await ctx.store.create(svc)
    scorer, _pod_ip, send = await _serve_one_prompt(kubelet, KSERVE_SAMPLE_ENDPOINT)
    epp_svc = await eventually(lambda: _service(ctx.store), what="EPP Service with a cluster IP")
    with pytest.raises(OSError):  # kube-proxy has nothing on that port: vLLM's connection is refused, forever
        _reader, writer = await asyncio.open_connection(epp_svc["spec"]["clusterIP"], 5557)
        writer.close()
    for i in range(3):
        await send(i)
    await eventually(_async(lambda: _published(kubelet) >= 3), what="vLLM to publish KV events")
    assert scorer.index.admissions == 0 and not scorer.index.blocks
    prompt = "0: The quick brown fox jumps over the lazy dog. " * 40
    assert scorer.pod_scores(LLMRequest("r-1", SERVED, prompt)) == {}  # the precise scorer scores nothing


async def _service(store):
    try:
        svc = await store.get("v1", "Service", "qwen-epp-service", "private-ai")
    except Exception:
        return None
    return svc if svc["spec"].get("clusterIP") else None


def _published(kubelet: Kubelet) -> int:
    """How many KV-event batches the vLLM pod's publisher has sent."""
    found = _running(kubelet, "llminferenceservice-workload")
    publisher = getattr(found[1], "_publisher", None) if found else None
    return publisher._seq if publisher is not None else 0


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
