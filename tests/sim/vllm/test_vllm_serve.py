"""``serve()`` as the kubelet runs it: start-up log and failures, a real uvicorn listener, the openai client,
client disconnects, KV events over ZMQ."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from vllm_helpers import free_port

from llmd_lab.sim.vllm.args import parse_args
from llmd_lab.sim.vllm.kv_cache_utils import hash_request_tokens, init_none_hash
from llmd_lab.sim.vllm.kv_events import BlockStored, decode_batch
from llmd_lab.sim.vllm.profiles import UnknownProfileError, resolve_model
from llmd_lab.sim.vllm.server import StartupError, build_engine_config, check_fits, serve
from llmd_lab.sim.vllm.tokenizer import Tokenizer

pytestmark = pytest.mark.anyio
QWEN = "Qwen/Qwen3-0.6B"
PRESET = [
    "vllm",
    "serve",
    "/mnt/models",
    "--served-model-name",
    QWEN,
    "--port",
    "8000",
    "--disable-log-requests",
]


@pytest.fixture
def anyio_backend():
    return "asyncio"


def _env(**extra: str) -> dict[str, str]:
    return {"LLMD_LAB_GPU_PRODUCT": "NVIDIA-L4", "LLMD_LAB_GPU_COUNT": "1", "LLMD_LAB_TIME_SCALE": "100000",
            "POD_NAME": "qwen-abc", "POD_NAMESPACE": "demo", "POD_IP": "127.0.0.1", **extra}  # fmt: skip


async def _fails(argv, env=None) -> StartupError:
    lines: list[str] = []
    with pytest.raises(StartupError) as info:
        await serve(argv, host="127.0.0.1", port=free_port(), env=env or _env(), log=lines.append)
    assert lines, "a failing start-up still writes its log"
    return info.value


def test_resolve_model_names_the_seeds_use():
    assert resolve_model("hf://Qwen/Qwen3-0.6B").name == QWEN
    assert resolve_model("/mnt/models", served_model_names=["Qwen/Qwen3-0.6B"]).name == QWEN
    w4 = "oci://registry.redhat.io/rhelai1/modelcar-mistral-small-24b-instruct-2501-quantized-w4a16:1.5"
    assert resolve_model(w4).weight_format == "w4a16"
    assert (
        resolve_model("oci://quay.io/redhat-ai-services/modelcar-catalog:llama-3-1-8b").num_hidden_layers
        == 32
    )
    with pytest.raises(UnknownProfileError, match=r"knows: .*Qwen/Qwen3-0\.6B"):
        resolve_model("/mnt/models", served_model_names=["mistral-3-distributed"])


async def test_bad_flag_fails_like_vllm_argparse():
    err = await _fails([*PRESET, "--kv-cache-usage-percentage-metric", "vllm:kv_cache_usage_perc"])
    assert err.exit_code == 2
    assert "vllm: error: unrecognized arguments: --kv-cache-usage-percentage-metric" in err.message


async def test_70b_on_one_l4_is_cuda_oom():
    err = await _fails(["vllm", "serve", "meta-llama/Llama-3.1-70B-Instruct"])
    assert err.exit_code == 1 and "CUDA out of memory" in err.message


async def test_8b_on_l4_default_max_model_len_does_not_fit_kv_cache():
    err = await _fails(["vllm", "serve", "meta-llama/Llama-3.1-8B-Instruct"])
    assert "max seq len (131072)" in err.message and "decreasing `max_model_len`" in err.message


def test_mistral_24b_bf16_needs_four_l4s_and_w4a16_fits_one():
    env4 = _env(LLMD_LAB_GPU_COUNT="4")
    one = build_engine_config(parse_args("vllm serve mistralai/Mistral-Small-24B-Instruct-2501"), _env())
    with pytest.raises(StartupError, match="CUDA out of memory"):
        check_fits(one)
    four = build_engine_config(parse_args("vllm serve mistralai/Mistral-Small-24B-Instruct-2501 -tp 4"), env4)
    assert check_fits(four).num_gpu_blocks > 0
    w4 = "oci://registry.redhat.io/rhelai1/modelcar-mistral-small-24b-instruct-2501-quantized-w4a16:1.5"
    quant = build_engine_config(parse_args(["vllm", "serve", w4]), _env())
    assert check_fits(quant).kv_cache_tokens >= 32768  # the default max_model_len fits
    with pytest.raises(StartupError, match="must be divisible by tensor parallel size"):
        build_engine_config(parse_args("vllm serve mistralai/Mistral-Small-24B-Instruct-2501 -tp 3"), env4)


async def test_mounted_model_resolved_from_model_uri_env():
    argv = "vllm serve /mnt/models --served-model-name mistral-3-distributed"
    err = await _fails(argv)
    assert "set LLMD_LAB_MODEL_URI" in err.message and "Qwen/Qwen3-0.6B" in err.message
    uri = "oci://registry.redhat.io/rhelai1/modelcar-mistral-small-24b-instruct-2501-quantized-w4a16:1.5"
    config = build_engine_config(parse_args(argv), _env(LLMD_LAB_MODEL_URI=uri))
    assert config.model.weight_format == "w4a16" and config.served_model_name == "mistral-3-distributed"


async def test_no_gpu_and_too_few_gpus_fail():
    err = await _fails(PRESET, {**_env(), "LLMD_LAB_GPU_PRODUCT": ""})
    assert "Failed to infer device type" in err.message
    err = await _fails([*PRESET, "--tensor-parallel-size", "2"])
    assert "World size (2)" in err.message


async def test_headless_data_parallel_worker_runs_engines_without_an_api_server():
    lines: list[str] = []
    port = free_port()
    argv = [*PRESET[:6], str(port), "--headless", "--data-parallel-size", "2", "--data-parallel-size-local", "1",
            "--data-parallel-address", "qwen-kserve-mn-0.qwen-kserve-mn.demo", "--data-parallel-rpc-port", "5555",
            "--data-parallel-start-rank", "1"]
    replica = await serve(argv, host="127.0.0.1", port=port, env=_env(), log=lines.append)
    try:
        assert replica.ready.is_set() and replica.app is None
        log = "\n".join(lines)
        assert "Model loading took" in log and "# GPU blocks:" in log
        assert ("Launching 1 data parallel engine(s) in headless mode, with head node address "
                "tcp://qwen-kserve-mn-0.qwen-kserve-mn.demo:5555.") in log
        assert "DP rank 1, PP rank 0, TP rank 0" in log and "Starting vLLM API server" not in log
        with pytest.raises(httpx.ConnectError):
            async with httpx.AsyncClient() as client:
                await client.get(f"http://127.0.0.1:{port}/health")
    finally:
        await replica.stop()
    assert await replica.wait() == 0


async def test_serve_real_uvicorn_openai_client_and_disconnect_aborts():
    from openai import AsyncOpenAI

    lines: list[str] = []
    port = free_port()
    argv = " ".join([*PRESET, "--max-model-len=32768"])
    replica = await serve(
        # ×5, not ×20: the disconnect below must beat 20,000 tokens of simulated decode (~28 s of wall clock here,
        # ~7 s at ×20, which a starved CI machine could spend before the client's goodbye is processed)
        argv, host="127.0.0.1", port=port, env=_env(LLMD_LAB_TIME_SCALE="5"), log=lines.append
    )
    try:
        assert replica.ready.is_set()
        log = "\n".join(lines)
        for expected in ("Model loading took", "# GPU blocks:", "Maximum concurrency for 32,768 tokens",
                         f"Starting vLLM API server 0 on http://127.0.0.1:{port}", "Application startup complete."):  # fmt: skip
            assert expected in log
        oai = AsyncOpenAI(base_url=f"{replica.url}/v1", api_key="unused", max_retries=0)
        chat = await oai.chat.completions.create(
            model=QWEN, messages=[{"role": "user", "content": "hello"}], max_tokens=8
        )
        assert chat.choices[0].message.content and chat.usage.completion_tokens <= 8
        stream = await oai.chat.completions.create(
            model=QWEN, messages=[{"role": "user", "content": "hello"}], max_tokens=8, stream=True,
            stream_options={"include_usage": True},
        )  # fmt: skip
        chunks = [c async for c in stream]
        assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens == chat.usage.prompt_tokens
        await oai.close()

        async with httpx.AsyncClient(base_url=replica.url) as client:
            body = {"model": QWEN, "prompt": "tell me everything", "max_tokens": 20000, "ignore_eos": True,
                    "stream": True}  # fmt: skip
            async with client.stream("POST", "/v1/completions", json=body) as r:
                assert "x-inference-pod" not in r.headers  # vLLM names no pod
                seen = 0
                async for line in r.aiter_lines():
                    seen += line.startswith("data: ")
                    if seen >= 3:
                        break  # leaving the block closes the connection mid-stream
            deadline = asyncio.get_running_loop().time() + 60  # a bound for a hang, not a timing claim
            while True:
                fams = {
                    f.name: f for f in text_string_to_metric_families((await client.get("/metrics")).text)
                }
                running = fams["vllm:num_requests_running"].samples[0].value
                aborted = [s.value for s in fams["vllm:request_success"].samples
                           if s.name.endswith("_total") and s.labels["finished_reason"] == "abort"]  # fmt: skip
                if running == 0 and aborted == [1.0]:
                    break
                assert asyncio.get_running_loop().time() < deadline, f"disconnect did not abort the request {running} {aborted}"
                await asyncio.sleep(0.02)
            assert fams["vllm:kv_cache_usage_perc"].samples[0].value == 0.0
        while not any(
            "Engine 000: Avg prompt throughput" in line for line in lines
        ):  # vLLM logs its stats every 10 simulated s: 2 s here
            assert asyncio.get_running_loop().time() < deadline, "no periodic stats line in the log"
            await asyncio.sleep(0.02)
    finally:
        await replica.stop()
    assert await replica.wait() == 0


async def test_kv_events_published_over_zmq_match_indexer_hashes():
    import zmq
    import zmq.asyncio

    ctx = zmq.asyncio.Context.instance()
    sub = ctx.socket(zmq.SUB)
    zmq_port = free_port()
    sub.bind(f"tcp://127.0.0.1:{zmq_port}")
    sub.setsockopt(zmq.SUBSCRIBE, b"kv@")
    kv_cfg = {"enable_kv_cache_events": True, "publisher": "zmq", "endpoint": f"tcp://127.0.0.1:{zmq_port}",
              "topic": f"kv@${{POD_IP}}@{QWEN}"}  # fmt: skip
    argv = [*PRESET, "--max-model-len", "4096", "--kv-events-config", json.dumps(kv_cfg)]
    replica = await serve(
        argv, host="127.0.0.1", port=free_port(), env=_env(PYTHONHASHSEED="42"), log=lambda _: None
    )
    prompts: list[str] = []
    try:
        async with httpx.AsyncClient(base_url=replica.url) as client:
            deadline = asyncio.get_running_loop().time() + 10
            frames = None
            while frames is None:  # the first batches may go out before the PUB socket has connected
                prompts.append(f"Request {len(prompts)}: the quick brown fox jumps over the lazy dog. " * 8)
                await client.post(
                    "/v1/completions", json={"model": QWEN, "prompt": prompts[-1], "max_tokens": 1}
                )
                try:
                    frames = await asyncio.wait_for(sub.recv_multipart(), timeout=0.2)
                except TimeoutError:
                    assert asyncio.get_running_loop().time() < deadline, "no KV events received"
    finally:
        await replica.stop()
        sub.close(linger=0)
    topic, seq, payload = frames
    assert topic == f"kv@127.0.0.1@{QWEN}".encode() and len(seq) == 8
    stored = [e for e in decode_batch(payload).events if isinstance(e, BlockStored)]
    assert stored and stored[0].parent_block_hash is None
    event = stored[0]
    tokenizer = Tokenizer()
    assert any(tokenizer.encode(p)[: len(event.token_ids)] == event.token_ids for p in prompts)
    # the hashes are the ones llm-d's indexer computes from the same tokens and PYTHONHASHSEED
    assert event.block_hashes == hash_request_tokens(init_none_hash("42"), 16, event.token_ids)


async def _idle_until_closed(host: str, port: int) -> float:
    """One keep-alive request on a raw connection, then the seconds from sending it until the server closes the
    connection (EOF): at least the keep-alive, however late this client reads the response on a busy machine."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        sent = asyncio.get_running_loop().time()
        writer.write(f"GET /health HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200") and b"connection: close" not in head.lower()
        length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
        await reader.readexactly(length)
        assert await asyncio.wait_for(reader.read(1), timeout=60) == b""  # the server hung up on an idle connection
        return asyncio.get_running_loop().time() - sent
    finally:
        writer.close()


async def test_an_idle_connection_is_closed_after_vllms_keep_alive():
    """vLLM closes a connection idle for VLLM_HTTP_TIMEOUT_KEEP_ALIVE seconds (default 5), not uvicorn's or the
    lab's own longer default: a client that keeps connections longer must expect the pod to hang up."""
    port = free_port()
    replica = await serve(" ".join(PRESET), host="127.0.0.1", port=port,
                          env=_env(VLLM_HTTP_TIMEOUT_KEEP_ALIVE="1"), log=lambda _: None)  # fmt: skip
    try:
        assert 1.0 <= await _idle_until_closed("127.0.0.1", port) < 30  # not the lab's 30 s default
    finally:
        await replica.stop()
    assert replica._server is not None and replica._server.server.config.timeout_keep_alive == 1
    error = await _fails(" ".join(PRESET), env=_env(VLLM_HTTP_TIMEOUT_KEEP_ALIVE="five"))
    assert "VLLM_HTTP_TIMEOUT_KEEP_ALIVE" in error.message and "invalid literal for int()" in error.message


async def test_vllm_keeps_idle_connections_five_seconds_by_default():
    port = free_port()
    replica = await serve(" ".join(PRESET), host="127.0.0.1", port=port, env=_env(), log=lambda _: None)
    try:
        assert replica._server is not None and replica._server.server.config.timeout_keep_alive == 5
    finally:
        await replica.stop()
