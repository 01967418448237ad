"""Through HTTP: gateway → EPP → simulated vLLM pods, and the kube-proxy Service path."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from gw_helpers import COURSE, LOAD_AWARE, NS, chat, pod, served_by, start_cluster

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


async def test_multi_turn_conversation_sticks_to_the_pod_with_its_prefix():
    cluster = await start_cluster(replicas=3, config=COURSE)
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            messages = [{"role": "system", "content": "You are a patient tutor. " * 40}]
            served, rids = [], []
            for turn in range(5):
                messages.append({"role": "user", "content": f"Question {turn}: explain prefix caching again."})
                response, reply, chunks = await chat(client, cluster.url("/v1/chat/completions"), messages)
                assert response.status_code == 200
                assert response.headers["content-type"].startswith("text/event-stream")
                assert b"data: [DONE]" in b"".join(chunks)
                served.append(served_by(cluster, response))
                rids.append(response.headers["x-request-id"])
                messages.append({"role": "assistant", "content": reply})
            assert len(set(served)) == 1, served
            # the routing explainer: the trace of a later turn shows the prefix scorer preferring that pod
            trace = (await client.get(f"{cluster.epp.url('metrics')}/debug/traces/{rids[-1]}")).json()
            prefix = next(s for s in trace["profiles"][0]["scorers"] if s["type"] == "prefix-cache-scorer")
            assert prefix["raw"][served[0]] > 0.5
            assert all(v == 0.0 for pod_name, v in prefix["raw"].items() if pod_name != served[0])
            assert trace["picked"] == served[0] and trace["destination"].endswith(":8000")
            assert sum(c.engine.stats().prefix_cache_hits for c in cluster.pods) > 0
    finally:
        await cluster.stop()


async def test_busy_pod_is_avoided_and_a_burst_spreads():
    cluster = await start_cluster(replicas=3, config=LOAD_AWARE, time_scale=1.0, max_num_seqs=1)
    busy = cluster.pods[0]
    try:
        async with httpx.AsyncClient(timeout=60, verify=False) as client:  # skip-verify: the pods' self-signed cert
            direct = f"https://{busy.ip}:8000/v1/completions"  # KServe's certificate verifies nowhere
            hogs = [asyncio.create_task(client.post(direct, json={"model": "Qwen/Qwen3-0.6B", "prompt": f"hog {i}",
                                                                  "max_tokens": 2000, "ignore_eos": True}))
                    for i in range(3)]
            epp_view = {ep.name: ep for ep in cluster.epp.datastore.candidates()}
            await cluster.wait_for(lambda: epp_view[busy.name].metrics.waiting_queue_size >= 1,
                                   what="the EPP to scrape the busy pod's queue")
            results = await asyncio.gather(*(
                chat(client, cluster.url("/v1/chat/completions"), [{"role": "user", "content": f"burst {i}"}],
                     max_tokens=1) for i in range(9)))
            served = [served_by(cluster, r) for r, _, _ in results]
            assert all(r.status_code == 200 for r, _, _ in results)
            assert busy.name not in served
            assert len(set(served)) == 2  # both idle pods took part of the burst
            for task in hogs:
                task.cancel()
            await asyncio.gather(*hogs, return_exceptions=True)
    finally:
        await cluster.stop()


async def test_failover_when_a_pod_goes_away_and_in_flight_requests_end_cleanly():
    cluster = await start_cluster(replicas=3, config=LOAD_AWARE, time_scale=20.0)
    gone = cluster.pods[1]
    try:
        async with httpx.AsyncClient(timeout=30, verify=False) as client:  # skip-verify: the pods' self-signed cert
            # a long stream straight to the pod that is about to die
            async def long_stream() -> int:
                async with client.stream("POST", f"https://{gone.ip}:8000/v1/completions",
                                         json={"model": "Qwen/Qwen3-0.6B", "prompt": "long", "max_tokens": 4000,
                                               "ignore_eos": True, "stream": True}) as r:
                    n = 0
                    try:
                        async for _ in r.aiter_raw():
                            n += 1
                    except httpx.HTTPError:
                        pass
                    return n
            in_flight = asyncio.create_task(long_stream())
            await cluster.wait_for(lambda: gone.engine.stats().num_running_reqs == 1, what="stream to start")
            cluster.source.put(pod(gone.name, gone.ip, ready=False))  # readiness probe fails, then it is killed
            await cluster.wait_for(lambda: gone.name not in {e.name for e in cluster.epp.datastore.candidates()},
                                   timeout=2, what="the EPP to drop the unready pod")
            await gone.stop()
            await asyncio.wait_for(in_flight, timeout=10)  # no hang
            results = await asyncio.gather(*(
                chat(client, cluster.url("/v1/chat/completions"), [{"role": "user", "content": f"after {i}"}])
                for i in range(8)))
            assert all(r.status_code == 200 for r, _, _ in results)
            assert gone.name not in {served_by(cluster, r) for r, _, _ in results}
            cluster.source.remove(pod(gone.name, gone.ip))
            await cluster.wait_for(lambda: len(cluster.proxy.endpoints()) == 2, what="kube-proxy to drop it")
    finally:
        await cluster.stop()


@pytest.mark.parametrize(("flag", "sees_usage"), [("vllm:kv_cache_usage_perc", True),
                                                  ("vllm:kv_cache_usage_percent", False)])
async def test_kv_metric_name_flag_decides_whether_the_kv_scorer_sees_anything(flag, sees_usage):
    cluster = await start_cluster(replicas=2, config=LOAD_AWARE, time_scale=1.0,
                                  epp_args=["--kv-cache-usage-percentage-metric", flag])
    loaded = cluster.pods[0]
    try:
        async with httpx.AsyncClient(timeout=60, verify=False) as client:  # skip-verify: the pods' self-signed cert
            hog = asyncio.create_task(client.post(
                f"https://{loaded.ip}:8000/v1/completions",
                json={"model": "Qwen/Qwen3-0.6B", "prompt": "cache " * 3000, "max_tokens": 3000, "ignore_eos": True}))
            await cluster.wait_for(lambda: loaded.engine.stats().kv_cache_usage > 0, what="KV usage on the pod")
            scrapes = cluster.epp.scraper.scrapes
            await cluster.wait_for(lambda: cluster.epp.scraper.scrapes >= scrapes + 3, what="a few scrapes")
            response, _, _ = await chat(client, cluster.url("/v1/chat/completions"), [{"role": "user", "content": "hi"}])
            trace = (await client.get(f"{cluster.epp.url('grpc')}/debug/traces/{response.headers['x-request-id']}")
                     ).json()
            kv = next(s for s in trace["profiles"][0]["scorers"] if s["type"] == "kv-cache-utilization-scorer")
            if sees_usage:
                assert kv["raw"][loaded.name] < 1.0
            else:
                assert kv["raw"] == {p.name: 1.0 for p in cluster.pods}
                assert any("metric family vllm:kv_cache_usage_percent not found" in line for line in cluster.epp_logs)
            hog.cancel()
            await asyncio.gather(hog, return_exceptions=True)
    finally:
        await cluster.stop()


@pytest.mark.parametrize(("mode", "status"), [("FailOpen", 200), ("FailClose", 503)])
async def test_failure_mode_when_the_epp_is_down(mode, status):
    cluster = await start_cluster(replicas=2, failure_mode=mode)
    try:
        await cluster.epp.stop()
        async with httpx.AsyncClient(timeout=30) as client:
            response, _, chunks = await chat(client, cluster.url("/v1/chat/completions"),
                                             [{"role": "user", "content": "anyone there?"}])
            assert response.status_code == status
            if status == 503:
                assert b"FailClose" in b"".join(chunks)
    finally:
        await cluster.stop()


async def test_unknown_path_404_service_path_and_bad_request():
    cluster = await start_cluster(replicas=2)
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            missing = await client.get(f"{cluster.gateway.url}/{NS}/other/v1/models")
            assert missing.status_code == 404 and "no HTTPRoute" in missing.json()["error"]["message"]
            models = await client.get(cluster.url("/v1/models"))  # catch-all → workload Service → kube-proxy
            assert models.status_code == 200 and models.json()["data"][0]["id"] == "Qwen/Qwen3-0.6B"
            assert sum(cluster.proxy.connections.values()) >= 1
            bad = await client.post(cluster.url("/v1/completions"), json={"prompt": "no model"})
            assert bad.status_code == 400 and "model not found" in bad.json()["error"]["message"]
    finally:
        await cluster.stop()


async def test_ten_times_capacity_every_request_is_answered_and_state_stays_bounded():
    # capacity: 2 replicas × max_num_seqs 2 = 4 running; send 40 at once
    cluster = await start_cluster(replicas=2, config=COURSE, time_scale=200.0, max_num_seqs=2)
    try:
        limits = httpx.Limits(max_connections=64)
        async with httpx.AsyncClient(timeout=60, limits=limits) as client:
            results = await asyncio.wait_for(asyncio.gather(*(
                chat(client, cluster.url("/v1/chat/completions"), [{"role": "user", "content": f"load {i}"}],
                     max_tokens=16) for i in range(40))), timeout=60)
        statuses = [r.status_code for r, _, _ in results]
        assert all(s in (200, 429, 503) for s in statuses)
        for response, _, chunks in results:
            body = b"".join(chunks)
            assert b"data: [DONE]" in body if response.status_code == 200 else b"error" in body
        assert statuses.count(200) == 40  # the engines queue what they cannot run yet
        assert not cluster.epp.director.in_flight  # PostResponse ran for every request
        assert len(cluster.epp.director.traces.traces) <= cluster.epp.director.traces.capacity
        assert all(p.engine.get_num_unfinished_requests() == 0 for p in cluster.pods)
    finally:
        await cluster.stop()
