"""Pods served from processes of their own (``podhost``), and ``bench gateway``'s streaming client."""

from __future__ import annotations

import httpx
import pytest
from gw_helpers import chat, served_by, start_cluster

from llmd_lab.bench.gateway import _Client, count_tokens

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


async def test_pods_in_host_processes_serve_https_through_the_gateway_and_exit_with_the_cluster():
    cluster = await start_cluster(replicas=2, pod_processes=2)
    hosts = list(cluster.hosts)
    try:
        assert len(hosts) == 2 and not cluster.pods and len(cluster.pod_ips) == 2
        async with httpx.AsyncClient(timeout=30, verify=False) as client:  # KServe's cert verifies nowhere
            picked = set()
            for i in range(6):
                response, reply, _ = await chat(client, cluster.url("/v1/chat/completions"),
                                                [{"role": "user", "content": f"hello {i}"}], max_tokens=4)
                assert response.status_code == 200 and reply
                picked.add(served_by(cluster, response))
            assert picked <= {f"qwen-kserve-{i}" for i in range(2)}
            for ip in cluster.pod_ips:  # each pod is HTTPS on its own IP, in another process
                assert (await client.get(f"https://{ip}:8000/health")).status_code == 200
                with pytest.raises(httpx.HTTPError):
                    await client.get(f"http://{ip}:8000/health")
    finally:
        await cluster.stop()
    assert [h.returncode for h in hosts] == [0, 0]  # stopped by closing stdin, not killed


async def test_the_bench_client_counts_every_token_direct_and_through_the_gateway():
    cluster = await start_cluster(replicas=2, pod_processes=1)
    client = _Client(4)
    try:
        for url in (cluster.url("/v1/chat/completions"), f"https://{cluster.pod_ips[0]}:8000/v1/chat/completions"):
            for n in (1, 37):
                ttft, tokens = await client.stream(url, f"count to {n}", n)
                assert tokens == n and ttft > 0
    finally:
        await client.aclose()
        await cluster.stop()


def test_token_counting_waits_for_whole_events():
    event = b'data: {"choices":[{"delta":{"content":"a"}}]}\n\n'
    role = b'data: {"choices":[{"delta":{"role":"assistant","content":""}}]}\n\n'
    stream = role + event * 3 + b"data: [DONE]\n\n"
    for cut in range(1, len(stream)):  # every split point of one read into two
        found1, tail = count_tokens(b"", stream[:cut])
        found2, tail = count_tokens(tail, stream[cut:])
        assert (found1 + found2, tail) == (3, b"")
    assert count_tokens(b"", event[:-1]) == (0, event[:-1])
