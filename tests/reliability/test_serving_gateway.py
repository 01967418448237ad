"""What a curious attendee can throw at the gateway and the pods behind it (issue 17 §5, §6, §7, §9), on the
in-process mini cluster (``llmd_lab.sim.gateway.testbed``: vLLM over HTTPS, the EPP, kube-proxy, the gateway).

Each test names the upstream behaviour it pins:
* a pod dying mid-stream: Envoy resets the downstream stream, the client sees a broken body, never a clean end;
* JSON nested 50,000 deep: the EPP's JSON parse fails → BadRequest 400 (GIE v1.0.0 ``handlers/request.go``);
  straight to vLLM: FastAPI answers any body it cannot parse with 400 (``fastapi/routing.py``);
* ``%0d%0a`` in the path: refused with 400, never forwarded or a 500;
* bodies beyond the gateway's buffer: 413; prompts beyond ``max-model-len``: vLLM's 400;
* overload: a sheddable request (InferenceObjective priority < 0) gets 429 while the pool is saturated
  (GIE v1.0.0 ``requestcontrol/director.go`` + ``saturationdetector``);
* the EPP's completion phase runs: ``inference_model_request_duration_seconds`` is observed.
"""

from __future__ import annotations

import httpx
import pytest

from llmd_lab.sim.epp.configs import LOAD_AWARE_CONFIG as LOAD_AWARE
from llmd_lab.sim.gateway.testbed import NS, start_cluster
from llmd_lab.sim.gateway.testbed import QWEN as QWEN_MODEL

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
async def cluster():
    c = await start_cluster(replicas=2, config=LOAD_AWARE, time_scale=20.0)
    try:
        yield c
    finally:
        await c.stop()


async def test_a_stream_cut_by_a_dying_pod_reaches_the_client_as_a_reset(cluster):
    body = {"model": QWEN_MODEL, "prompt": "long", "max_tokens": 4000, "ignore_eos": True, "stream": True}
    async with httpx.AsyncClient(timeout=30) as client:
        async with client.stream("POST", cluster.url("/v1/completions"), json=body) as response:
            assert response.status_code == 200
            chunks = response.aiter_raw()
            await chunks.__anext__()  # the stream is flowing
            dying = next(p for p in cluster.pods if p.engine.get_num_unfinished_requests())
            await dying.server.stop()  # the pod is killed: its connections are cut
            with pytest.raises(httpx.RemoteProtocolError):  # an incomplete body, not a clean end
                async for chunk in chunks:
                    assert b"[DONE]" not in chunk
    assert cluster.gateway.stats.upstream_errors >= 1


async def test_json_nested_50000_deep_is_a_400_at_the_gateway_and_at_the_pod(cluster):
    deep = b'{"model": "' + QWEN_MODEL.encode() + b'", "prompt": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    headers = {"content-type": "application/json"}
    async with httpx.AsyncClient(timeout=30, verify=False) as client:  # skip-verify: KServe's self-signed cert
        via_gateway = await client.post(cluster.url("/v1/completions"), content=deep, headers=headers)
        assert via_gateway.status_code == 400
        direct = await client.post(f"https://{cluster.pods[0].ip}:8000/v1/completions", content=deep,
                                   headers=headers)
        assert direct.status_code == 400 and "error parsing the body" in direct.json()["error"]["message"]


async def test_crlf_in_the_path_is_a_400(cluster):
    async with httpx.AsyncClient(timeout=30) as client:
        r = await client.get(f"{cluster.gateway.url}/{NS}/qwen/v1/models%0d%0aX-Injected:%20yes")
        assert r.status_code == 400


async def test_bodies_are_bounded_at_the_gateway_and_prompts_at_max_model_len(cluster):
    big = {"model": QWEN_MODEL, "prompt": "word " * (cluster.gateway.max_request_body // 5 + 10), "max_tokens": 1}
    async with httpx.AsyncClient(timeout=60, verify=False) as client:
        r = await client.post(cluster.url("/v1/completions"), json=big)
        assert r.status_code == 413
        too_long = {"model": QWEN_MODEL, "prompt": "word " * 50_000, "max_tokens": 1}
        direct = await client.post(f"https://{cluster.pods[0].ip}:8000/v1/completions", json=too_long)
        assert direct.status_code == 400 and "maximum context length" in direct.json()["error"]["message"]


async def test_sheddable_requests_get_429_while_the_pool_is_saturated(cluster):
    cluster.source.put({"apiVersion": "inference.networking.x-k8s.io/v1alpha2", "kind": "InferenceObjective",
                        "metadata": {"name": "batch", "namespace": NS},
                        "spec": {"priority": -1, "poolRef": {"name": "qwen-inference-pool"}}})
    epp = cluster.epp
    await cluster.wait_for(lambda: epp.datastore.objective_priority("batch") == -1, what="the EPP to see it")
    await epp.scraper.stop()  # no fresh scrape resets the view below (and stale metrics count as saturated)
    for ep in epp.datastore.candidates():  # every pod reports a long queue: saturated (queue > 5)
        ep.metrics.waiting_queue_size = 50
    async with httpx.AsyncClient(timeout=30) as client:
        body = {"model": QWEN_MODEL, "prompt": "batch job", "max_tokens": 1}
        shed = await client.post(cluster.url("/v1/completions"), json=body,
                                 headers={"x-gateway-inference-objective": "batch"})
        assert shed.status_code == 429
        critical = await client.post(cluster.url("/v1/completions"), json=body)  # no objective: priority 0
        assert critical.status_code != 429


async def test_the_epp_observes_request_duration_at_the_end_of_each_response(cluster):
    def observed() -> float:
        families = cluster.epp.metrics.registry.collect()
        duration = next(f for f in families if f.name == "inference_model_request_duration_seconds")
        return sum(s.value for s in duration.samples if s.name.endswith("_count"))

    assert observed() == 0
    async with httpx.AsyncClient(timeout=30) as client:
        for stream in (False, True):
            body = {"model": QWEN_MODEL, "prompt": "hello", "max_tokens": 3, "stream": stream}
            r = await client.post(cluster.url("/v1/completions"), json=body)
            assert r.status_code == 200
    assert observed() == 2
