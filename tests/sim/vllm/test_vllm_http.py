"""The OpenAI-compatible server over HTTP (in-process ASGI): responses, streaming, errors, headers, metrics."""

from __future__ import annotations

import json

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from vllm_helpers import make_engine

from llmd_lab.sim.vllm.async_engine import AsyncLLM, RealClock
from llmd_lab.sim.vllm.serving import create_app

pytestmark = pytest.mark.anyio
MODEL = "Qwen/Qwen3-0.6B"
SYSTEM = "You are a meticulous assistant for the llm-d workshop. " * 20


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
async def client():
    engine = AsyncLLM(make_engine(MODEL, "L4", max_model_len=2048), RealClock(time_scale=1000))
    app = create_app(engine, [MODEL], enable_prompt_tokens_details=True)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://pod") as c:
        c.engine = engine  # type: ignore[attr-defined]
        yield c
    await engine.shutdown()


def _chat(content: str, **extra) -> dict:
    return {
        "model": MODEL,
        "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": content}],
        **extra,
    }


def _events(body: str) -> list:
    lines = [line for line in body.split("\n\n") if line]
    assert all(line.startswith("data: ") for line in lines)
    assert lines[-1] == "data: [DONE]"
    return [json.loads(line[6:]) for line in lines[:-1]]


async def test_models_and_no_header_names_the_pod(client):
    r = await client.get("/v1/models")
    assert r.status_code == 200
    assert [m["id"] for m in r.json()["data"]] == [MODEL]
    assert r.json()["data"][0]["max_model_len"] == 2048
    assert not [h for h in r.headers if h.startswith("x-inference")]  # vLLM sends none (llm-d-inference-sim does)


async def test_cached_tokens_only_with_enable_prompt_tokens_details():
    engine = AsyncLLM(make_engine(MODEL, "L4", max_model_len=2048), RealClock(time_scale=1000))
    app = create_app(engine, [MODEL])  # vllm serve without --enable-prompt-tokens-details
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://pod") as c:
            for _ in range(2):  # the second one hits the prefix cache
                usage = (await c.post("/v1/chat/completions", json=_chat("hi", max_tokens=2))).json()["usage"]
                assert usage["prompt_tokens_details"] is None and usage["prompt_tokens"] > 0
    finally:
        await engine.shutdown()


async def test_json_nested_50000_deep_is_a_400_not_a_500(client):
    deep = b'{"model": "' + MODEL.encode() + b'", "messages": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    r = await client.post("/v1/chat/completions", content=deep, headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["message"] == "There was an error parsing the body"


async def test_chat_completion_usage_and_cached_tokens_on_repeat(client):
    first = (
        await client.post("/v1/chat/completions", json=_chat("hi", max_tokens=12, ignore_eos=True))
    ).json()
    assert first["object"] == "chat.completion"
    assert first["choices"][0]["finish_reason"] == "length"
    assert first["usage"]["completion_tokens"] == 12
    assert first["usage"]["prompt_tokens_details"] is None  # vLLM: only when some tokens were cached
    second = (await client.post("/v1/chat/completions", json=_chat("another question", max_tokens=5))).json()
    prompt = second["usage"]["prompt_tokens"]
    cached = second["usage"]["prompt_tokens_details"]["cached_tokens"]
    # the shared system prompt is a token prefix: every full block of it is reused
    shared = len(
        client.engine.tokenizer.encode(f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n")
    )
    assert cached == shared // 16 * 16 and cached < prompt


async def test_same_prompt_gives_same_text(client):
    a = (await client.post("/v1/chat/completions", json=_chat("same", max_tokens=20))).json()
    b = (await client.post("/v1/chat/completions", json=_chat("same", max_tokens=20))).json()
    assert a["choices"][0]["message"]["content"] == b["choices"][0]["message"]["content"]


async def test_chat_stream_format_with_usage(client):
    r = await client.post(
        "/v1/chat/completions",
        json=_chat(
            "stream", max_tokens=6, ignore_eos=True, stream=True, stream_options={"include_usage": True}
        ),
    )
    assert r.headers["content-type"].startswith("text/event-stream")
    chunks = _events(r.text)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    content = [c for c in chunks if c["choices"]][1:]
    assert len(content) == 6 and all(c["object"] == "chat.completion.chunk" for c in content)
    assert [c["choices"][0]["finish_reason"] for c in content] == [None] * 5 + ["length"]
    assert all(c["usage"] is None for c in chunks[:-1])
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 6


async def test_completions_stream_and_stop(client):
    body = {"model": MODEL, "prompt": "Once upon a time", "max_tokens": 40, "ignore_eos": True}
    full = (await client.post("/v1/completions", json=body)).json()
    assert full["object"] == "text_completion"
    text = full["choices"][0]["text"]
    stop = text.split()[3]
    r = await client.post("/v1/completions", json={**body, "stop": [stop], "stream": True})
    chunks = _events(r.text)
    assert "".join(c["choices"][0]["text"] for c in chunks) == text[: text.find(stop)]
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"][0]["stop_reason"] == stop


async def test_errors_look_like_vllm(client):
    r = await client.post("/v1/chat/completions", json={**_chat("x"), "model": "nope"})
    assert r.status_code == 404 and r.json()["error"]["message"] == "The model `nope` does not exist."
    r = await client.post("/v1/completions", json={"model": MODEL, "prompt": "word" + " word" * 2999})
    assert r.status_code == 400
    assert "maximum context length is 2048 tokens" in r.json()["error"]["message"]
    assert "3000 input tokens" in r.json()["error"]["message"]
    r = await client.post(
        "/v1/completions", json={"model": MODEL, "prompt": "word" + " word" * 99, "max_tokens": 2000}
    )
    assert (
        r.status_code == 400
        and "(100 in the messages, 2000 in the completion)" in r.json()["error"]["message"]
    )
    r = await client.post(
        "/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 400 and r.json()["error"]["type"] == "BadRequestError"
    r = await client.post("/v1/chat/completions", json={"model": MODEL, "messages": "hello"})
    assert r.status_code == 400
    r = await client.post("/v1/chat/completions", json=_chat("x", max_tokens=0))
    assert r.status_code == 400
    r = await client.post("/v1/chat/completions", json=_chat("x", n=2))
    assert r.status_code == 400


async def test_tokenize_health_version(client):
    r = await client.post("/tokenize", json={"model": MODEL, "prompt": "Hello world"})
    assert r.json()["count"] == 2 and r.json()["max_model_len"] == 2048
    r2 = await client.post("/tokenize", json={"messages": [{"role": "user", "content": "Hello world"}]})
    assert r2.json()["count"] > 2
    assert (await client.get("/health")).status_code == 200
    assert (await client.get("/ready")).status_code == 200
    assert (await client.get("/version")).json()["version"]


def _families(text: str) -> dict:
    return {f.name: f for f in text_string_to_metric_families(text)}


def _value(fams: dict, family: str, sample: str, **labels) -> float:
    return sum(
        s.value
        for s in fams[family].samples
        if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items())
    )


async def test_metrics_names_types_labels_and_consistency(client):
    before = _families((await client.get("/metrics")).text)
    n = 4
    for i in range(n):
        await client.post("/v1/chat/completions", json=_chat(f"q{i}", max_tokens=8, ignore_eos=True))
    r = await client.get("/metrics")
    fams = _families(r.text)
    expected_types = {
        "vllm:num_requests_running": "gauge", "vllm:num_requests_waiting": "gauge",
        "vllm:kv_cache_usage_perc": "gauge", "vllm:gpu_cache_usage_perc": "gauge",
        "vllm:prefix_cache_queries": "counter", "vllm:prefix_cache_hits": "counter",
        "vllm:num_preemptions": "counter", "vllm:prompt_tokens": "counter", "vllm:generation_tokens": "counter",
        "vllm:request_success": "counter", "vllm:time_to_first_token_seconds": "histogram",
        "vllm:inter_token_latency_seconds": "histogram", "vllm:time_per_output_token_seconds": "histogram",
        "vllm:e2e_request_latency_seconds": "histogram", "vllm:request_queue_time_seconds": "histogram",
        "vllm:cache_config_info": "gauge",
    }  # fmt: skip
    for name, kind in expected_types.items():
        assert fams[name].type == kind, name
    ttft = fams["vllm:time_to_first_token_seconds"]
    assert {s.labels["model_name"] for s in ttft.samples} == {MODEL}
    assert {s.labels["engine"] for s in ttft.samples} == {"0"}
    buckets = [float(s.labels["le"]) for s in ttft.samples if s.name.endswith("_bucket")][:-1]
    assert buckets[:3] == [0.001, 0.005, 0.01] and buckets[-1] == 2560.0
    hits = _value(fams, "vllm:prefix_cache_hits", "vllm:prefix_cache_hits_total")
    queries = _value(fams, "vllm:prefix_cache_queries", "vllm:prefix_cache_queries_total")
    assert 0 < hits <= queries
    for counter in ("vllm:prefix_cache_queries", "vllm:generation_tokens", "vllm:prompt_tokens"):
        assert _value(fams, counter, counter + "_total") >= _value(before, counter, counter + "_total")
    assert _value(fams, "vllm:generation_tokens", "vllm:generation_tokens_total") == n * 8
    assert _value(fams, "vllm:request_success", "vllm:request_success_total", finished_reason="length") == n
    for hist in (
        "vllm:time_to_first_token_seconds",
        "vllm:e2e_request_latency_seconds",
        "vllm:request_queue_time_seconds",
    ):
        assert _value(fams, hist, hist + "_count") == n, hist
    assert _value(fams, "vllm:inter_token_latency_seconds", "vllm:inter_token_latency_seconds_count") == n * 7
    info = fams["vllm:cache_config_info"].samples[0].labels
    assert info["block_size"] == "16" and int(info["num_gpu_blocks"]) == client.engine.engine.num_gpu_blocks
    assert (
        _value(fams, "vllm:kv_cache_usage_perc", "vllm:kv_cache_usage_perc") == 0.0
    )  # idle: all blocks free


async def test_non_streaming_client_disconnect_aborts_and_frees_blocks():
    import asyncio

    engine = AsyncLLM(make_engine(MODEL, "L4", max_model_len=4096), RealClock(time_scale=1))
    app = create_app(engine, [MODEL])
    body = json.dumps({"model": MODEL, "prompt": "go on", "max_tokens": 3000, "ignore_eos": True}).encode()
    inbox: asyncio.Queue = asyncio.Queue()
    await inbox.put({"type": "http.request", "body": body, "more_body": False})
    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/v1/completions", "raw_path": b"/v1/completions", "query_string": b"", "root_path": "",
             "headers": [(b"content-type", b"application/json")], "client": ("127.0.0.1", 1), "server": ("pod", 80)}  # fmt: skip
    call = asyncio.ensure_future(app(scope, inbox.get, send))
    deadline = asyncio.get_running_loop().time() + 5
    while engine.engine.stats().num_running_reqs == 0:  # wait until it is generating
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.005)
    assert engine.engine.stats().kv_cache_usage > 0
    await inbox.put({"type": "http.disconnect"})
    await asyncio.wait_for(call, timeout=5)
    stats = engine.engine.stats()
    assert stats.num_running_reqs == 0 and stats.kv_cache_usage == 0.0
    assert sent[0]["status"] == 499
    await engine.shutdown()


async def test_metrics_text_is_reused_only_while_nothing_changed(client):
    """Scrapes of an idle replica are cheap, and the first scrape after a request shows the request."""
    first = await client.get("/metrics")
    again = await client.get("/metrics")
    assert first.content == again.content
    done = await client.post("/v1/chat/completions", json=_chat("one more", max_tokens=3))
    assert done.status_code == 200
    after = await client.get("/metrics")
    assert after.content != first.content
    success = {
        s.labels["finished_reason"]: s.value
        for f in text_string_to_metric_families(after.text)
        if f.name == "vllm:request_success"
        for s in f.samples
        if s.name.endswith("_total")
    }
    assert sum(success.values()) == 1
