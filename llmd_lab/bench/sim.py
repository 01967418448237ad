"""``llmd-lab bench sim``: one simulated vLLM replica.

Physics numbers come from the step engine driven in virtual time (closed-loop clients, no sockets), so they
are what a learner would measure on the GPU the profile describes, and the bench takes seconds:

* throughput vs concurrency (1..64 clients, 1,000-token prompts, 200 output tokens, ``ignore_eos``);
* TTFT cold vs warm prefix (a shared 4,000-token system prompt), next to the physics' own expectation;
* simulated seconds per wall second (how much faster than real time the engine runs here).

Then one real replica (``serve()`` + uvicorn on 127.0.0.1, time compressed so the simulated GPU is never the
bottleneck) is loaded with concurrent HTTP requests to show how many requests/s this machine's CPU sustains.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import time
from dataclasses import dataclass

from llmd_lab.sim.vllm import physics
from llmd_lab.sim.vllm.engine import EngineConfig, EngineRequest, LLMEngine
from llmd_lab.sim.vllm.profiles import resolve_gpu, resolve_model
from llmd_lab.sim.vllm.request import SamplingParams

CASES = (("Qwen/Qwen3-0.6B", "L4"), ("meta-llama/Llama-3.1-8B-Instruct", "H100-80GB"))
CONCURRENCY = (1, 2, 4, 8, 16, 32, 64)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--prompt-len", type=int, default=1000, help="prompt tokens per request (default 1000)"
    )
    parser.add_argument("--output-len", type=int, default=200, help="output tokens per request (default 200)")
    parser.add_argument("--rounds", type=int, default=3, help="requests per client in the throughput sweep")
    parser.add_argument(
        "--http-requests", type=int, default=400, help="requests in the HTTP load test (0 skips)"
    )
    parser.add_argument("--http-concurrency", type=int, default=32)


@dataclass
class SweepRow:
    model: str
    gpu: str
    concurrency: int
    output_tokens_per_s: float
    requests_per_s: float
    mean_ttft_ms: float
    mean_itl_ms: float
    sim_s_per_wall_s: float


def _engine(model: str, gpu: str) -> LLMEngine:
    return LLMEngine(EngineConfig(model=resolve_model(model), gpu=resolve_gpu(gpu), python_hash_seed="0"))


def sweep(model: str, gpu: str, concurrency: int, prompt_len: int, output_len: int, rounds: int) -> SweepRow:
    """Closed loop: ``concurrency`` clients each send ``rounds`` requests back to back, in virtual time."""
    engine = _engine(model, gpu)
    params = SamplingParams(max_tokens=output_len, ignore_eos=True)
    sent = 0

    def submit(client: int, now: float) -> None:
        nonlocal sent
        base = 1_000_000 + sent * prompt_len  # distinct prompts: no prefix sharing in this sweep
        engine.add_request(
            EngineRequest(f"c{client}-{sent}", list(range(base, base + prompt_len)), params, now)
        )
        sent += 1

    for c in range(concurrency):
        submit(c, 0.0)
    remaining = {c: rounds - 1 for c in range(concurrency)}
    now, tokens, done, ttfts, itls = 0.0, 0, 0, [], []
    wall0 = time.perf_counter()
    while engine.has_unfinished_requests():
        result = engine.step(now)
        now += result.duration_s
        for out in result.outputs:
            tokens += len(out.new_token_ids)
            if out.prev_token_time is None:
                ttfts.append(out.token_time - out.arrival_time)
            else:
                itls.append(out.token_time - out.prev_token_time)
            if out.finished:
                done += 1
                client = int(out.request_id[1:].split("-")[0])
                if remaining[client] > 0:
                    remaining[client] -= 1
                    submit(client, now)
    wall = time.perf_counter() - wall0
    return SweepRow(
        model, gpu, concurrency, tokens / now, done / now, 1000 * sum(ttfts) / len(ttfts),
        1000 * sum(itls) / max(1, len(itls)), now / wall,
    )  # fmt: skip


def prefix_ttft(model: str, gpu: str, shared_len: int = 4000, question_len: int = 50) -> dict:
    """TTFT of a request with a cold shared prefix, then of one whose prefix is cached."""
    engine = _engine(model, gpu)
    shared = list(range(500_000, 500_000 + shared_len))
    out: dict[str, float] = {}
    now = 0.0
    for name, q0 in (("cold", 0), ("warm", 10_000)):
        engine.add_request(
            EngineRequest(name, [*shared, *range(q0, q0 + question_len)], SamplingParams(max_tokens=1), now)
        )
        while engine.has_unfinished_requests():
            result = engine.step(now)
            now += result.duration_s
            for o in result.outputs:
                if o.finished:
                    out[name] = o.first_token_time - o.arrival_time  # type: ignore[operator]
                    out[f"{name}_cached_tokens"] = o.num_cached_tokens
    m, g = engine.config.model, engine.config.gpu
    out["expected_warm"] = physics.step_time(m, g, 1, [(question_len, shared_len)])
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def http_load(n: int, concurrency: int) -> dict:
    """Requests/s through uvicorn + the OpenAI handlers + AsyncLLM on this machine's CPU."""
    import httpx

    from llmd_lab.sim.vllm.server import serve

    env = {"LLMD_LAB_GPU_PRODUCT": "NVIDIA-L4", "LLMD_LAB_GPU_COUNT": "1", "LLMD_LAB_TIME_SCALE": "10000"}
    argv = "vllm serve Qwen/Qwen3-0.6B --max-model-len 4096 --disable-log-requests"
    replica = await serve(argv, host="127.0.0.1", port=_free_port(), env=env, log=lambda _: None)
    try:
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(base_url=replica.url, limits=limits, timeout=60) as client:
            queue = list(range(n))

            async def worker() -> int:
                ok = 0
                while queue:
                    i = queue.pop()
                    body = {"model": "Qwen/Qwen3-0.6B", "max_tokens": 16, "ignore_eos": True,
                            "messages": [{"role": "user", "content": f"question number {i} about caching"}]}  # fmt: skip
                    r = await client.post("/v1/chat/completions", json=body)
                    ok += r.status_code == 200
                return ok

            t0 = time.perf_counter()
            ok = sum(await asyncio.gather(*(worker() for _ in range(concurrency))))
            wall = time.perf_counter() - t0
    finally:
        await replica.stop()
    return {"requests": n, "ok": ok, "concurrency": concurrency, "wall_s": wall, "requests_per_s": n / wall,
            "output_tokens_per_s": 16 * ok / wall}  # fmt: skip


def run(args: argparse.Namespace) -> int:
    rows = [
        sweep(m, g, c, args.prompt_len, args.output_len, args.rounds) for m, g in CASES for c in CONCURRENCY
    ]
    prefix = {f"{m} on {g}": prefix_ttft(m, g) for m, g in CASES}
    http = asyncio.run(http_load(args.http_requests, args.http_concurrency)) if args.http_requests else None
    if args.json:
        print(
            json.dumps({"sweep": [r.__dict__ for r in rows], "prefix_ttft": prefix, "http": http}, indent=2)
        )
        return 0
    print(f"Throughput vs concurrency ({args.prompt_len}-token prompts, {args.output_len} output tokens, "
          f"{args.rounds} requests per client; simulated GPU time)")  # fmt: skip
    print(
        f"{'model':<34}{'gpu':<11}{'conc':>5}{'out tok/s':>11}{'req/s':>8}{'TTFT ms':>9}{'ITL ms':>8}{'sim s/wall s':>14}"
    )
    for r in rows:
        print(f"{r.model:<34}{r.gpu:<11}{r.concurrency:>5}{r.output_tokens_per_s:>11.0f}{r.requests_per_s:>8.2f}"
              f"{r.mean_ttft_ms:>9.1f}{r.mean_itl_ms:>8.2f}{r.sim_s_per_wall_s:>14.1f}")  # fmt: skip
    print("\nTTFT with a 4,000-token shared prefix (cold = first request, warm = prefix cached)")
    for name, p in prefix.items():
        print(f"  {name}: cold {1000 * p['cold']:.1f} ms, warm {1000 * p['warm']:.1f} ms "
              f"({p['warm_cached_tokens']:.0f} tokens cached; physics expects {1000 * p['expected_warm']:.1f} ms), "
              f"speed-up {p['cold'] / p['warm']:.1f}x")  # fmt: skip
    if http:
        print(f"\nHTTP load on this machine: {http['requests']} chat requests (16 tokens each), "
              f"{http['concurrency']} concurrent, one replica at time scale 10000: "
              f"{http['requests_per_s']:.0f} requests/s, {http['output_tokens_per_s']:.0f} streamed-equivalent "
              f"tokens/s ({http['ok']} ok)")  # fmt: skip
    return 0
