"""The traffic client and metrics helpers against the simulated vLLM over real HTTP (uvicorn on 127.0.0.1).

The library never imports the simulator; the test does, to have a faithful server to talk to.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator

import pytest

from llmd_lab import metrics, traffic, viz
from llmd_lab.sim.vllm.server import serve

MODEL = "Qwen/Qwen3-0.6B"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def vllm_pods() -> Iterator[dict[str, str]]:
    """Two simulated vLLM replicas (pods qwen-0, qwen-1), each on its own loopback port."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    replicas, urls = [], {}
    for i in range(2):
        env = {"LLMD_LAB_GPU_PRODUCT": "NVIDIA-L4", "LLMD_LAB_GPU_COUNT": "1", "LLMD_LAB_TIME_SCALE": "1000",
               "POD_NAME": f"qwen-{i}", "POD_NAMESPACE": "demo", "POD_IP": "127.0.0.1"}  # fmt: skip
        argv = ["vllm", "serve", "/mnt/models", "--served-model-name", MODEL, "--max-model-len", "4096",
                "--enable-prompt-tokens-details"]
        fut = asyncio.run_coroutine_threadsafe(
            serve(argv, host="127.0.0.1", port=_free_port(), env=env, log=lambda line: None), loop
        )
        replica = fut.result(60)
        replicas.append(replica)
        urls[f"qwen-{i}"] = replica.url
    yield urls
    for replica in replicas:
        asyncio.run_coroutine_threadsafe(replica.stop(), loop).result(30)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


def test_traffic_and_metrics_agree_on_the_sim(vllm_pods):
    source = metrics.DirectSource(vllm_pods)
    before = metrics.scrape(source)
    assert not before.errors
    wl = traffic.shared_system_prompt(6, system_tokens=400, question_tokens=20, max_tokens=8)
    df = traffic.compare(vllm_pods, wl, model=MODEL, concurrency=1, progress=False)
    after = metrics.scrape(source)

    assert df["ok"].all() and df["pod"].isna().all()  # vLLM names no pod in its responses
    by_url = {url: pod for pod, url in vllm_pods.items()}
    df["served_by"] = df["target"].map(by_url)  # each run went straight to one pod: its URL says which
    assert set(df["served_by"]) == {"qwen-0", "qwen-1"}
    assert (df["output_tokens"] > 0).all() and (df["ttft_s"] > 0).all()
    # with --enable-prompt-tokens-details vLLM reports cached_tokens whenever some were cached
    assert df["cached_tokens"].notna().sum() >= 10 and df["cached_tokens"].isna().sum() <= 2

    d = metrics.deltas(before, after).set_index("pod")
    # each pod served one run of 6 requests; its counters say the same
    assert d.loc["qwen-0", "requests"] == 6 and d.loc["qwen-1", "requests"] == 6
    for pod in ("qwen-0", "qwen-1"):
        served = df[df["served_by"] == pod]
        assert d.loc[pod, "prompt_tokens"] == served["prompt_tokens"].sum()
        assert d.loc[pod, "prefix_cache_hits"] == served["cached_tokens"].fillna(0).sum()
        assert 0 < d.loc[pod, "hit_rate"] < 1  # the shared system prompt hits after the first request
        assert d.loc[pod, "ttft_p95_s"] is not None
    assert metrics.requests_per_pod(before, after).set_index("pod")["requests"].to_dict() == {"qwen-0": 6,
                                                                                               "qwen-1": 6}
    chart = viz.hit_rate_per_pod(d.reset_index())
    assert viz.to_svg(chart).startswith("<svg")
