"""Streaming client, runner and the notebook-safe sync facade, against a local OpenAI-style server."""

from __future__ import annotations

import asyncio

import pytest

from llmd_lab import traffic
from llmd_lab._sync import iterate_sync, run_sync


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.mark.anyio
async def test_client_records_ttft_itl_usage_and_no_pod(openai_server):
    async with traffic.InferenceClient(openai_server.url, "qwen") as client:
        assert await client.models() == ["qwen"]
        first = await client.chat([{"role": "user", "content": "hello " * 40}], max_tokens=5)
        again = await client.chat([{"role": "user", "content": "hello " * 40}], max_tokens=5)
    # the fake sends llm-d-inference-sim's x-inference-pod; vLLM does not, so the kit never reads it
    assert first.ok and first.status == 200 and first.pod is None
    assert first.text == "t0 t1 t2 t3 t4 "
    assert first.output_tokens == 5 and first.prompt_tokens == 40
    assert len(first.itl_s) == 4 and 0 < first.ttft_s <= first.e2e_s
    assert first.cached_tokens == 0 and again.cached_tokens == 32
    sent = openai_server.fake.requests[0]
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    assert openai_server.fake.headers[0]["x-request-id"] == first.request_id


@pytest.mark.anyio
async def test_wrong_model_is_recorded_not_raised(openai_server):
    async with traffic.InferenceClient(openai_server.url, "not-served") as client:
        rec = await client.complete("hi", max_tokens=2)
    assert rec.status == 404 and not rec.ok and "does not exist" in rec.error


@pytest.mark.anyio
async def test_unreachable_target_is_an_error_row():
    async with traffic.InferenceClient("http://127.0.0.1:9", "qwen", timeout=2) as client:
        rec = await client.chat([{"role": "user", "content": "x"}])
    assert rec.status is None and "ConnectError" in rec.error


def test_runner_multi_turn_sends_history_and_bounds(openai_server):
    wl = traffic.multi_turn(4, 3, system_tokens=40, turn_tokens=10, max_tokens=3)
    df = traffic.run(openai_server.url, wl, model="qwen", concurrency=2, progress=False)
    assert len(df) == 12 and df["ok"].all()
    # every later turn carries the earlier turns and replies
    longest = max(openai_server.fake.requests, key=lambda b: len(b["messages"]))
    assert [m["role"] for m in longest["messages"]] == [
        "system",
        "user",
        "assistant",
        "user",
        "assistant",
        "user",
    ]
    assert sorted(df.groupby("session")["turn"].max()) == [2, 2, 2, 2]
    # later turns hit the prefix cache
    assert df[df["turn"] > 0]["cached_tokens"].min() > 0
    bounded = traffic.run(openai_server.url, wl, model="qwen", concurrency=2, max_requests=5, progress=False)
    assert len(bounded) == 5


def test_rate_mode_warmup_and_summary(openai_server):
    wl = traffic.repeated_prompt(12, prompt_tokens=64, max_tokens=2)
    df = traffic.run(
        openai_server.url, wl, model="qwen", rate=200.0, concurrency=None, warmup=2, progress=False, label="x"
    )
    assert len(df) == 10
    s = traffic.summary(df)
    assert s.loc["x", "requests"] == 10 and s.loc["x", "errors"] == 0
    assert s.loc["x", "cache_hit_rate"] == pytest.approx(
        48 / 64
    )  # warm-up primed the cache (last block is recomputed)
    assert s.loc["x", "ttft_p50_ms"] <= s.loc["x", "ttft_p95_ms"]
    with pytest.raises(ValueError, match="not both"):
        traffic.run(openai_server.url, wl, model="qwen", rate=1.0, concurrency=2)


def test_rate_alone_selects_the_open_loop(openai_server):
    """LIBRARY_NEEDS 10: `rate=` implies no closed-loop workers (it used to clash with concurrency=4)."""
    wl = traffic.repeated_prompt(6, prompt_tokens=32, max_tokens=2)
    df = traffic.run(openai_server.url, wl, model="qwen", rate=500.0, progress=False)
    assert len(df) == 6 and df["ok"].all()
    default = traffic.run(openai_server.url, wl, model="qwen", progress=False, max_requests=3)
    assert len(default) == 3  # neither given: 4 closed-loop workers, as before


def test_keepalive_off_opens_a_connection_per_request(openai_server):
    """LIBRARY_NEEDS 9: a Service balances connections, so the round-robin baseline needs fresh ones."""
    wl = traffic.repeated_prompt(5, prompt_tokens=16, max_tokens=2)
    fake = openai_server.fake
    traffic.run(traffic.Target(openai_server.url, "qwen"), wl, concurrency=1, progress=False)
    kept = [h["x-client-port"] for h in fake.headers]
    fake.headers.clear()
    traffic.run(traffic.Target(openai_server.url, "qwen", keepalive=False), wl, concurrency=1, progress=False)
    fresh = [h["x-client-port"] for h in fake.headers]
    assert len(kept) == len(fresh) == 5
    assert len(set(kept)) == 1  # one worker, one reused connection
    assert len(set(fresh)) == 5  # one connection per request


def test_compare_labels_modes_and_pods(two_servers):
    a, b = two_servers
    wl = traffic.shared_system_prompt(6, system_tokens=64, max_tokens=2)
    df = traffic.compare(
        {"llm-d": a.url, "round-robin": b.url}, wl, model="qwen", concurrency=3, progress=False
    )
    assert list(df["mode"].unique()) == ["llm-d", "round-robin"]
    per_pod = traffic.requests_per_pod(df)  # the old signature still works; pods are unknown per request
    assert per_pod["requests"].sum() == len(df) and per_pod["pod"].isna().all()
    assert set(traffic.summary(df).index) == {"llm-d", "round-robin"}


@pytest.mark.anyio
async def test_sync_facade_works_inside_a_running_loop(openai_server):
    # a notebook cell: a loop is running in this thread, and the sync API must still work
    asyncio.get_running_loop()
    df = traffic.run(
        openai_server.url,
        traffic.repeated_prompt(3, prompt_tokens=8, max_tokens=2),
        model="qwen",
        progress=False,
    )
    assert len(df) == 3 and df["ok"].all()

    async def gen():
        for i in range(3):
            yield i

    assert list(iterate_sync(gen())) == [0, 1, 2]
    with pytest.raises(KeyError):
        run_sync(_raise_key())


async def _raise_key():
    raise KeyError("propagates")
