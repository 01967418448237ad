"""Shared builders for the simulated-vLLM tests."""

from __future__ import annotations

import socket

from llmd_lab.sim.vllm.engine import EngineConfig, EngineRequest, LLMEngine, RequestOutput
from llmd_lab.sim.vllm.profiles import resolve_gpu, resolve_model
from llmd_lab.sim.vllm.request import SamplingParams


def make_engine(
    model: str = "Qwen/Qwen3-0.6B", gpu: str = "L4", *, seed: int = 0, sink=None, **kw
) -> LLMEngine:
    kw.setdefault("python_hash_seed", "42")
    # Scheduler/physics mechanics tests want requests in the scheduler at once; the API-server delay has its own test.
    kw.setdefault("frontend_request_s", 0.0)
    kw.setdefault("frontend_per_running_seq_s", 0.0)
    cfg = EngineConfig(model=resolve_model(model), gpu=resolve_gpu(gpu), **kw)
    return LLMEngine(cfg, seed=seed, kv_event_sink=sink)


def request(rid: str, tokens: list[int], max_tokens: int = 8, *, arrival: float = 0.0, **sp) -> EngineRequest:
    return EngineRequest(rid, tokens, SamplingParams(max_tokens=max_tokens, **sp), arrival_time=arrival)


def run_until_done(
    engine: LLMEngine, now: float = 0.0, max_steps: int = 100_000
) -> tuple[float, list[RequestOutput]]:
    """Step until idle; returns (end time, all outputs)."""
    outputs: list[RequestOutput] = []
    for _ in range(max_steps):
        if not engine.has_unfinished_requests():
            return now, outputs
        result = engine.step(now)
        now += result.duration_s
        outputs.extend(result.outputs)
    raise AssertionError("engine did not finish")


def final(outputs: list[RequestOutput], rid: str) -> RequestOutput:
    return [o for o in outputs if o.request_id == rid and o.finished][-1]


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
