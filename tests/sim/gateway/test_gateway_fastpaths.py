"""The gateway's shortcuts must not change what a client or the EPP sees: the in-process ext-proc path,
its HTTP fallback, keep-alive upstream connections, and cancellation reaching the pod."""

from __future__ import annotations

import httpx
import pytest
from gw_helpers import LOAD_AWARE, NS, chat, start_cluster

from llmd_lab.sim import extproc

pytestmark = pytest.mark.anyio

EPP_SELECTOR = {"app.kubernetes.io/name": "qwen-epp"}


@pytest.fixture
def anyio_backend():
    return "asyncio"


def _epp_behind_service(cluster, *, ready: bool = True) -> tuple[dict, dict]:
    """Lab topology: the EPP listens on its pod IP and its Service has another cluster IP (nothing listens
    there here, so only the in-process path through the Service's Ready endpoints can reach it)."""
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "qwen-epp-service", "namespace": NS},
               "spec": {"clusterIP": f"{cluster.base}.202", "selector": EPP_SELECTOR,
                        "ports": [{"name": "grpc", "port": 9002, "targetPort": "grpc"}]}}
    epp_pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": "qwen-epp-0", "namespace": NS, "labels": EPP_SELECTOR},
               "spec": {"containers": [{"name": "main", "ports": [{"name": "grpc", "containerPort": 9002}]}]},
               "status": {"podIP": cluster.epp_ip, "phase": "Running",
                          "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}
    return service, epp_pod


async def test_epp_over_http_when_it_is_not_in_this_process_makes_the_same_kind_of_decision():
    cluster = await start_cluster(replicas=2, config=LOAD_AWARE)
    epp = cluster.epp
    try:
        extproc.unregister(epp.host, epp.ports["grpc"], epp.extproc)  # as if the EPP ran in another process
        assert extproc.lookup(epp.host, epp.ports["grpc"]) is None
        async with httpx.AsyncClient(timeout=30) as client:
            before = {p.name: p.engine.num_prompt_tokens_total for p in cluster.pods}
            response, reply, chunks = await chat(client, cluster.url("/v1/chat/completions"),
                                                 [{"role": "user", "content": "over http"}])
            grew = [p.name for p in cluster.pods if p.engine.num_prompt_tokens_total > before[p.name]]
            assert response.status_code == 200 and reply and b"data: [DONE]" in b"".join(chunks)
            assert response.headers["x-went-into-resp-headers"] == "true"  # the response phase ran over HTTP
            trace = (await client.get(f"{epp.url('metrics')}/debug/traces/{response.headers['x-request-id']}")
                     ).json()
            assert [trace["picked"]] == grew  # the pod the EPP picked is the one that computed the prompt
            bad = await client.post(cluster.url("/v1/completions"), json={"prompt": "no model"})
            assert bad.status_code == 400 and "model not found" in bad.json()["error"]["message"]
        assert not epp.director.in_flight
        assert cluster.gateway.stats.epp_failures == 0 and cluster.gateway.stats.extproc_in_process == 0
    finally:
        await cluster.stop()


async def test_in_process_epp_is_reached_through_its_services_ready_endpoints():
    cluster = await start_cluster(replicas=2, config=LOAD_AWARE, failure_mode="FailClose")
    try:
        pool = next(o for o in await cluster.source.list("inference.networking.x-k8s.io/v1alpha2", "InferencePool"))
        pool["spec"]["extensionRef"]["name"] = "qwen-epp-service"
        service, epp_pod = _epp_behind_service(cluster)
        for obj in (service, epp_pod, pool):
            cluster.source.put(obj)
        gw = cluster.gateway
        await cluster.wait_for(lambda: gw.cache.service(NS, "qwen-epp-service") is not None
                               and gw.cache.objects[("v1", "Pod")].get((NS, "qwen-epp-0")) is not None,
                               what="the gateway to see the EPP Service and pod")
        async with httpx.AsyncClient(timeout=30) as client:
            response, _, _ = await chat(client, cluster.url("/v1/chat/completions"), [{"role": "user", "content": "a"}])
            assert response.status_code == 200
            assert cluster.epp.director.traces.get(response.headers["x-request-id"]) is not None
            # kube-proxy forwards only to Ready endpoints: an unready EPP pod is unreachable → FailClose
            cluster.source.put(_epp_behind_service(cluster, ready=False)[1])
            await cluster.wait_for(lambda: not gw.cache.ready_pods(NS, EPP_SELECTOR), what="EPP pod unready")
            response, _, chunks = await chat(client, cluster.url("/v1/chat/completions"),
                                             [{"role": "user", "content": "b"}])
            assert response.status_code == 503 and b"FailClose" in b"".join(chunks)
    finally:
        await cluster.stop()


async def test_upstream_connections_are_kept_alive_and_survive_the_pod_closing_them():
    cluster = await start_cluster(replicas=1, config=LOAD_AWARE)
    try:
        seen: set[int] = set()
        async with httpx.AsyncClient(timeout=30) as client:
            for i in range(3):
                response, _, _ = await chat(client, cluster.url("/v1/chat/completions"),
                                            [{"role": "user", "content": f"turn {i}"}])
                assert response.status_code == 200
                pools = list(cluster.gateway._upstreams.values())
                seen |= {id(conn) for pool in pools for conn in pool._all}
            assert len(pools) == 1 and len(seen) == 1  # three requests, one upstream connection
            # the pod drops its idle connections (keep-alive timeout): the next request still goes through
            for conn in list(cluster.pods[0].server.server.server_state.connections):
                conn.transport.close()
            response, _, _ = await chat(client, cluster.url("/v1/chat/completions"),
                                        [{"role": "user", "content": "after the pod closed it"}])
            assert response.status_code == 200
    finally:
        await cluster.stop()


async def test_a_client_that_goes_away_mid_stream_cancels_the_request_on_the_pod():
    cluster = await start_cluster(replicas=1, config=LOAD_AWARE, time_scale=50.0)
    engine = cluster.pods[0].engine
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            body = {"model": "Qwen/Qwen3-0.6B", "prompt": "long", "max_tokens": 5000, "ignore_eos": True,
                    "stream": True}
            async with client.stream("POST", cluster.url("/v1/completions"), json=body) as response:
                assert response.status_code == 200
                async for chunk in response.aiter_raw():
                    assert chunk  # the first tokens arrive while the request keeps running
                    break
                assert engine.get_num_unfinished_requests() == 1
            await cluster.wait_for(lambda: engine.get_num_unfinished_requests() == 0,
                                   what="the pod to abort the request after the client left")
    finally:
        await cluster.stop()


async def test_idle_client_connections_stay_open_for_envoys_idle_timeout_not_uvicorns_30_s():
    from llmd_lab.sim.gateway.server import DOWNSTREAM_IDLE_TIMEOUT_S

    cluster = await start_cluster(replicas=1, config=LOAD_AWARE)
    try:
        assert DOWNSTREAM_IDLE_TIMEOUT_S == 3600.0  # Envoy's HCM idle_timeout default
        assert cluster.gateway._server.server.config.timeout_keep_alive == DOWNSTREAM_IDLE_TIMEOUT_S
        async with httpx.AsyncClient(timeout=30) as client:
            for i in range(2):  # one kept-alive connection carries both turns
                response, _, _ = await chat(client, cluster.url("/v1/chat/completions"),
                                            [{"role": "user", "content": f"turn {i}"}])
                assert response.status_code == 200
            assert len(cluster.gateway._server.server.server_state.connections) == 1
    finally:
        await cluster.stop()
