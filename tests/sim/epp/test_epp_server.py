"""The EPP process: flags like Go's flag package, start-up errors, health, metrics names, KV events over ZMQ."""

from __future__ import annotations

import asyncio
import random

import httpx
import pytest

from llmd_lab.sim.epp.configs import HEAD
from llmd_lab.sim.epp.flags import FlagError, parse_flags
from llmd_lab.sim.epp.plugins.base import ConfigError
from llmd_lab.sim.epp.server import serve
from llmd_lab.sim.source import StaticSource
from llmd_lab.sim.vllm.kv_events import BlockStored, KVEventBatch, ZmqEventPublisher
from llmd_lab.sim.vllm.tokenizer import Tokenizer

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


def _host() -> str:
    r = random.Random()
    return f"127.{r.randrange(100, 200)}.{r.randrange(256)}.{r.randrange(2, 250)}"


def test_flags_parse_like_go():
    opts = parse_flags(["--pool-name", "p", "-v=3", "--secure-serving", "--refresh-metrics-interval", "20ms",
                        "--model-server-metrics-https-insecure-skip-verify=false", "--grpc-port=9102"])
    assert (opts.pool_name, opts.v, opts.secure_serving, opts.refresh_metrics_interval, opts.grpc_port) == (
        "p", 3, True, 0.02, 9102)
    assert opts.model_server_metrics_https_insecure_skip_verify is False
    assert opts.kv_cache_usage_percentage_metric == "vllm:gpu_cache_usage_perc"  # the v1.0.0 default
    with pytest.raises(FlagError, match="flag provided but not defined: -total-running-requests-metric"):
        parse_flags(["--pool-name", "p", "--total-running-requests-metric", "x"])
    with pytest.raises(FlagError, match="required flag --pool-name"):
        parse_flags([])
    with pytest.raises(FlagError, match="mutually exclusive"):
        parse_flags(["--pool-name", "p", "--config-text", "a", "--config-file", "b"])
    with pytest.raises(FlagError, match='invalid value "soon" for flag -refresh-metrics-interval'):
        parse_flags(["--pool-name", "p", "--refresh-metrics-interval", "soon"])


async def test_bad_config_fails_start_up_with_the_reason_in_the_log():
    lines: list[str] = []
    with pytest.raises(ConfigError, match="nope-scorer"):
        await serve(["--pool-name", "p", "--config-text", HEAD + "plugins:\n- type: nope-scorer\n"],
                    host=_host(), source=StaticSource(), log=lines.append)
    assert any("nope-scorer" in line for line in lines)


async def test_health_waits_for_the_pool_and_metrics_use_upstream_names():
    source = StaticSource()
    host = _host()
    epp = await serve(["--pool-name", "pool", "--pool-namespace", "ns", "--pool-group", "inference.networking.x-k8s.io",
                       "--grpc-port", "0", "--grpc-health-port", "0", "--metrics-port", "0"],
                      host=host, source=source, log=lambda line: None)
    try:
        async with httpx.AsyncClient() as client:
            assert (await client.get(epp.url("health"))).text == "NOT_SERVING"
            source.put({"apiVersion": "inference.networking.x-k8s.io/v1alpha2", "kind": "InferencePool",
                        "metadata": {"name": "pool", "namespace": "ns"},
                        "spec": {"selector": {"app": "x"}, "targetPortNumber": 8000}})
            for _ in range(200):
                if (await client.get(epp.url("health"))).status_code == 200:
                    break
                await asyncio.sleep(0.01)
            assert (await client.get(epp.url("health"))).text == "SERVING"
            refused = await client.post(f"{epp.url('grpc')}/extproc/request",
                                        json={"headers": {}, "body": {"model": "m", "prompt": "hi"}})
            assert refused.status_code == 503 and refused.headers["x-epp-immediate-response"] == "true"
            text = (await client.get(f"{epp.url('metrics')}/metrics")).text
            for name in ("inference_model_request_total", "inference_model_request_error_total",
                         "inference_pool_ready_pods", "inference_extension_scheduler_e2e_duration_seconds_bucket",
                         "inference_extension_info"):
                assert name in text
            assert 'error_code="ServiceUnavailable"' in text
    finally:
        await epp.stop()


async def test_precise_scorer_learns_from_kv_events_over_zmq():
    host = _host()
    config = HEAD + ("plugins:\n- type: precise-prefix-cache-scorer\n  parameters:\n    indexerConfig:\n"
                     "      tokenProcessorConfig: {blockSize: 16, hashSeed: '42'}\n")
    epp = await serve(["--pool-name", "pool", "--grpc-port", "0", "--grpc-health-port", "0", "--metrics-port", "0",
                       "--config-text", config], host=host, source=StaticSource(), log=lambda line: None)
    publisher = ZmqEventPublisher(f"tcp://{host}:5557", "kv@10.9.9.9@Qwen/Qwen3-0.6B")  # served under its HF id
    try:
        scorer = epp.config.plugins["precise-prefix-cache-scorer"]
        tokens = Tokenizer().encode("word " * 64)
        keys = scorer.processor.block_keys(tokens)
        batch = KVEventBatch(0.0, [BlockStored(keys, None, tokens[: 16 * len(keys)], 16)])
        for _ in range(300):  # ZMQ drops what is published before the connection is up: keep publishing
            publisher.publish(batch)
            if scorer.index.blocks:
                break
            await asyncio.sleep(0.01)
        from llmd_lab.sim.epp.types import LLMRequest
        assert scorer.pod_scores(LLMRequest("r", "Qwen/Qwen3-0.6B", "word " * 64)) == {"10.9.9.9": len(keys)}
    finally:
        publisher.close()
        await epp.stop()
