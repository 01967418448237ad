"""``llmd-lab bench gateway``: what the gateway + EPP hop costs, and how many tokens/s stream through it.

An in-process mini cluster (``llmd_lab.sim.gateway.testbed``: simulated vLLM pods, the EPP with
KServe's default config, the gateway) runs on this machine's loopback. Rounds of 16 concurrent
streaming chat requests alternate between going straight to a pod and going through the gateway,
and the client-side TTFT (request sent → first content chunk) is compared. A second phase with the
simulated clock sped up ×100000 makes the engines nearly free, so the streamed tokens/s measure the
gateway's (and this Python process's) relay capacity. Everything shares one event loop, as in the lab.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import httpx
import numpy as np

from llmd_lab.sim.epp.config import KSERVE_DEFAULT_CONFIG
from llmd_lab.sim.gateway.testbed import QWEN, start_cluster
from llmd_lab.traffic.workloads import words


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--streams", type=int, default=16, help="concurrent streams per round")
    parser.add_argument("--rounds", type=int, default=8, help="rounds per path (direct, gateway), interleaved")
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--throughput-tokens", type=int, default=256, help="max_tokens per stream in phase 2")


async def _stream(client: httpx.AsyncClient, url: str, prompt: str, max_tokens: int) -> tuple[float, int]:
    body = {"model": QWEN, "messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens,
            "stream": True, "ignore_eos": True}
    start = time.perf_counter()
    ttft = None
    tokens = 0
    async with client.stream("POST", url, json=body) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            obj = json.loads(line[6:])
            for choice in obj.get("choices") or []:
                if choice.get("delta", {}).get("content"):
                    tokens += 1
                    if ttft is None:
                        ttft = time.perf_counter() - start
    return (ttft if ttft is not None else float("nan")), tokens


async def _round(client, urls: list[str], n: int, max_tokens: int, tag: str, rnd: int) -> list[tuple[float, int]]:
    return await asyncio.gather(*(_stream(client, urls[i % len(urls)], f"{tag} {rnd} {i} " + words_cache[i % 64],
                                          max_tokens) for i in range(n)))


words_cache: list[str] = []


async def _phase(args: argparse.Namespace, time_scale: float, rounds: int, max_tokens: int) -> dict[str, list]:
    cluster = await start_cluster(replicas=args.replicas, config=KSERVE_DEFAULT_CONFIG, time_scale=time_scale)
    try:
        direct = [f"http://{p.ip}:8000/v1/chat/completions" for p in cluster.pods]
        via = [cluster.url("/v1/chat/completions")]
        out: dict[str, list] = {"direct": [], "gateway": [], "direct_wall": [], "gateway_wall": []}
        limits = httpx.Limits(max_connections=args.streams * 2, max_keepalive_connections=args.streams * 2)
        async with httpx.AsyncClient(timeout=120, limits=limits) as client:
            await _round(client, direct, args.streams, 4, "warm", -1)
            await _round(client, via, args.streams, 4, "warm", -1)
            for rnd in range(rounds):
                for path, urls in (("direct", direct), ("gateway", via)) if rnd % 2 == 0 else \
                        (("gateway", via), ("direct", direct)):
                    start = time.perf_counter()
                    results = await _round(client, urls, args.streams, max_tokens, path, rnd)
                    out[f"{path}_wall"].append((time.perf_counter() - start, sum(t for _, t in results)))
                    out[path].extend(results)
        return out
    finally:
        await cluster.stop()


def run(args: argparse.Namespace) -> int:
    import random as _random
    rng = _random.Random(0)
    words_cache[:] = [words(rng, 150) for _ in range(64)]
    latency = asyncio.run(_phase(args, 1.0, args.rounds, args.max_tokens))
    throughput = asyncio.run(_phase(args, 100000.0, max(2, args.rounds // 2), args.throughput_tokens))
    d = np.array([t for t, _ in latency["direct"]]) * 1000
    g = np.array([t for t, _ in latency["gateway"]]) * 1000
    rows = {
        "streams": args.streams,
        "requests_per_path": len(d),
        "direct_ttft_p50_ms": float(np.nanpercentile(d, 50)),
        "gateway_ttft_p50_ms": float(np.nanpercentile(g, 50)),
        "direct_ttft_p95_ms": float(np.nanpercentile(d, 95)),
        "gateway_ttft_p95_ms": float(np.nanpercentile(g, 95)),
    }
    rows["overhead_p50_pct"] = 100 * (rows["gateway_ttft_p50_ms"] / rows["direct_ttft_p50_ms"] - 1)
    rows["overhead_p50_ms"] = rows["gateway_ttft_p50_ms"] - rows["direct_ttft_p50_ms"]
    for path in ("direct", "gateway"):
        wall = sum(w for w, _ in throughput[f"{path}_wall"])
        toks = sum(t for _, t in throughput[f"{path}_wall"])
        rows[f"{path}_tokens_per_s"] = toks / wall if wall else 0.0
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    print(f"{args.streams} concurrent streams, {len(d)} requests per path, {args.replicas} replicas "
          "(client-side TTFT, simulated clock ×1)")
    print(f"  direct to pod : TTFT p50 {rows['direct_ttft_p50_ms']:7.2f} ms   p95 {rows['direct_ttft_p95_ms']:7.2f} ms")
    print(f"  via gateway   : TTFT p50 {rows['gateway_ttft_p50_ms']:7.2f} ms   p95 {rows['gateway_ttft_p95_ms']:7.2f} ms")
    ok = rows["overhead_p50_pct"] <= 5
    print(f"  overhead      : {rows['overhead_p50_ms']:+.2f} ms ({rows['overhead_p50_pct']:+.1f} % at p50; "
          f"target ≤ 5 %: {'met' if ok else 'NOT met'})")
    print(f"streamed tokens/s on this machine (engines sped up ×100000, {args.throughput_tokens} tokens/stream):")
    print(f"  direct {rows['direct_tokens_per_s']:8.0f} tok/s   via gateway {rows['gateway_tokens_per_s']:8.0f} tok/s")
    return 0
