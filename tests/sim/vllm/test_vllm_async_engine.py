"""AsyncLLM: scaled real-time clock, simulated timestamps, engine failures surface instead of hanging."""

from __future__ import annotations

import asyncio

import pytest
from vllm_helpers import make_engine, request

from llmd_lab.sim.vllm import physics
from llmd_lab.sim.vllm.async_engine import AsyncLLM, RealClock

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


async def test_time_scale_compresses_wall_time_but_reports_simulated_seconds():
    engine = make_engine()
    llm = AsyncLLM(engine, RealClock(time_scale=500))
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    outs = [o async for o in llm.generate(request("a", list(range(2000)), max_tokens=400, ignore_eos=True))]
    wall = loop.time() - t0
    last = outs[-1]
    simulated_e2e = last.finish_time - last.arrival_time
    cfg = engine.config
    expected_prefill = physics.step_time(cfg.model, cfg.gpu, 1, [(2000, 0)])
    assert last.first_token_time - last.arrival_time >= expected_prefill
    assert simulated_e2e > 400 * physics.step_time(cfg.model, cfg.gpu, 1, [(1, 2000)]) * 0.99
    assert wall < simulated_e2e / 10  # ~1/500 of it when the machine keeps up
    assert wall > simulated_e2e / 500 * 0.5  # but it does wait: time is compressed, not skipped
    await llm.shutdown()


async def test_engine_failure_ends_streams_with_an_error():
    engine = make_engine()
    llm = AsyncLLM(engine, RealClock(time_scale=1000))

    def broken_step(now: float):
        raise RuntimeError("simulated engine bug")

    engine.step = broken_step  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="engine has stopped after an error"):
        async for _ in llm.generate(request("a", list(range(10)))):
            pass
    with pytest.raises(RuntimeError, match="simulated engine bug"):
        llm.generate(request("b", list(range(10))))
    await llm.shutdown()  # does not raise again; the error stays visible
    assert isinstance(llm.errored, RuntimeError)
