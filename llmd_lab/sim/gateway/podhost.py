"""Simulated vLLM pods served from a process of their own, for the mini cluster (``testbed``).

Why: in the cluster the gateway (Envoy) and the vLLM pods run on different nodes, so a pod's streaming work
never competes with the gateway for a CPU. When a benchmark must measure what the gateway itself can relay,
the pods must not share the gateway's event loop (the lab's single process is measured separately). The
parent starts ``python -m llmd_lab.sim.gateway.podhost SPEC``; this process serves the replicas it was given
(HTTPS with its own self-signed certificate, as KServe's), prints one JSON line when every one is listening,
and exits when its stdin closes (the parent stopped or died), so no pod outlives the cluster.
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import dataclass
from typing import Any

from llmd_lab.sim.http import RunningServer, start_server
from llmd_lab.sim.tls import self_signed_pem, ssl_context_from_pem
from llmd_lab.sim.vllm.async_engine import AsyncLLM, RealClock
from llmd_lab.sim.vllm.engine import EngineConfig, LLMEngine
from llmd_lab.sim.vllm.profiles import resolve_gpu, resolve_model
from llmd_lab.sim.vllm.serving import create_app

READY = "podhost-ready"


@dataclass
class PodSpec:
    """One replica: its name, loopback "pod IP" (port 8000) and engine settings."""

    name: str
    ip: str
    model: str
    gpu: str = "L4"
    time_scale: float = 1.0
    max_num_seqs: int | None = None


async def serve_pod(spec: PodSpec, tls: Any) -> tuple[LLMEngine, AsyncLLM, RunningServer]:
    """Start one replica on ``spec.ip:8000``; returns once it accepts connections."""
    engine = LLMEngine(EngineConfig(resolve_model(spec.model), resolve_gpu(spec.gpu), python_hash_seed="42",
                                    max_num_seqs=spec.max_num_seqs))
    llm = AsyncLLM(engine, RealClock(spec.time_scale))
    server = await start_server(create_app(llm, [spec.model]), spec.ip, 8000, name=spec.name, ssl_context=tls)
    return engine, llm, server


async def _main(specs: list[PodSpec]) -> None:
    tls = ssl_context_from_pem(*self_signed_pem())
    running = [await serve_pod(spec, tls) for spec in specs]
    print(json.dumps({READY: [s.name for s in specs]}), flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.buffer.read)  # EOF: the parent is gone or asked us to stop
    for _, llm, server in running:
        await server.stop()
        await llm.shutdown()


if __name__ == "__main__":
    asyncio.run(_main([PodSpec(**s) for s in json.loads(sys.argv[1])]))
