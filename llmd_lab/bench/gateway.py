"""``llmd-lab bench gateway``: what the gateway + EPP hop costs, and how many tokens/s stream through it.

An in-process mini cluster (``llmd_lab.sim.gateway.testbed``: simulated vLLM pods serving HTTPS, the EPP
with KServe's default config and KServe's 50 ms metrics refresh, the gateway originating TLS to the pods).
The client runs in its own process, as a notebook kernel does next to the lab, so its own work (parsing
every SSE event) does not queue in the cluster's loop; it is a lean HTTP/1.1 client (the gateway's own
``UpstreamPool``), because httpx cost as much CPU per token as the gateway it measured.

Phase 1 (simulated clock ×1, so TTFT looks like a GPU's): by default the pods share the gateway's event loop,
as in the lab (``--latency-pod-processes N`` puts them in N processes of their own). 16 streams run
closed-loop (each sends its next request when the previous one ends; output lengths vary around
``--max-tokens`` so the streams do not march in lockstep). Windows go three ways, interleaved ABBA, with the
same prompts and lengths on every path: straight to the pods with each stream pinned to one (an even 8/8 split),
straight to a pod drawn per request, and through the gateway; client-side TTFT (request sent → first content
token) is compared. The gateway's targets are judged against the drawn pod: the EPP, like any per-request
picker, splits the streams unevenly at times, and that placement, not the hop, is what lifts p95 above
the pinned split's (the pinned comparison is printed too). ``--arrivals burst`` instead fires the 16 requests of a round at the same
instant. Phase 2 speeds the clock up ×100000 so the engines are nearly free and, by default, runs the pods
in processes of their own (``--throughput-pod-processes``), as pods on other nodes than the gateway's: the
streamed tokens/s then measure what the gateway relays while the upstream has CPU of its own, on a machine
where client, pods and gateway still share the cores. CPU time per role (the gateway's process with the
EPP, the pod processes, the client; from /proc) is printed for both paths: on a shared machine it is
steadier than latency or rate, and the difference is what the gateway + EPP cost.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from llmd_lab.sim.epp.config import KSERVE_DEFAULT_CONFIG
from llmd_lab.sim.gateway.testbed import QWEN, start_cluster
from llmd_lab.sim.gateway.upstream import UpstreamPool
from llmd_lab.sim.tls import insecure_client_context
from llmd_lab.traffic.workloads import words

CONTENT = re.compile(rb'"content":"(?!")')  # one per streamed token (the role chunk carries an empty one)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--streams", type=int, default=16, help="concurrent streams")
    parser.add_argument("--windows", type=int, default=8, help="measurement windows per path, interleaved ABBA")
    parser.add_argument("--requests-per-stream", type=int, default=3, help="requests each stream sends per window")
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=32, help="mean output tokens per request in phase 1")
    parser.add_argument("--throughput-tokens", type=int, default=256, help="output tokens per request in phase 2")
    parser.add_argument("--arrivals", choices=["closed", "burst"], default="closed",
                        help="closed: each stream sends when its last request ends; burst: rounds of simultaneous "
                             "requests")
    parser.add_argument("--throughput-streams", type=int, default=0,
                        help="concurrent streams in phase 2 (default: --streams)")
    parser.add_argument("--latency-pod-processes", type=int, default=0,
                        help="phase 1: 0 = pods in the gateway's event loop, as in the lab; N = pods in N processes")
    parser.add_argument("--throughput-pod-processes", type=int, default=2,
                        help="phase 2: pods in N processes of their own, as on other nodes (0 = in the gateway's loop)")
    parser.add_argument("--in-process-client", action="store_true",
                        help="run the client in the cluster's event loop (how this bench measured at first)")


# -- the client ---------------------------------------------------------------------------------------------
def _cpu_seconds(pid: int) -> float | None:
    """utime + stime of ``pid`` (Linux /proc), or None where that is not available."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def count_tokens(tail: bytes, chunk: bytes) -> tuple[int, bytes]:
    """Content tokens in the SSE events that ``tail + chunk`` completes, and the incomplete rest (kept for
    the next read, so an event split across reads is counted once, when it is whole)."""
    data = tail + chunk if tail else chunk
    end = data.rfind(b"\n\n") + 2  # complete events end here (1: none yet)
    if end < 2:
        return 0, data
    return len(CONTENT.findall(data, 0, end)), data[end:]


class _Client:
    """A lean HTTP/1.1 streaming client: keep-alive connections per URL, the body's framing decoded once per
    socket read (the gateway's own ``UpstreamPool``; httpx cost the client ~30-50 µs of CPU per token, as much
    as the gateway, which on 2 cores left less CPU for what is measured). Tokens are counted in complete SSE
    events only, so an event split across reads is counted once."""

    def __init__(self, connections: int) -> None:
        self.connections = connections
        self.pools: dict[str, tuple[UpstreamPool, str]] = {}

    def _pool(self, url: str) -> tuple[UpstreamPool, str]:
        if url not in self.pools:
            parts = urlsplit(url)
            # direct-to-pod is HTTPS with KServe's self-signed certificate, which verifies nowhere
            tls = insecure_client_context() if parts.scheme == "https" else None
            pool = UpstreamPool(parts.hostname or "", parts.port or 80, max_connections=self.connections,
                                pool_timeout=300, keepalive_expiry=3600, ssl=tls)
            self.pools[url] = (pool, parts.path)
        return self.pools[url]

    async def stream(self, url: str, prompt: str, max_tokens: int) -> tuple[float, int]:
        pool, target = self._pool(url)
        body = json.dumps({"model": QWEN, "messages": [{"role": "user", "content": prompt}],
                           "max_tokens": max_tokens, "stream": True, "ignore_eos": True}).encode()
        headers = [("host", f"{pool.host}:{pool.port}"), ("content-type", "application/json"),
                   ("content-length", str(len(body)))]
        start = time.perf_counter()
        ttft = float("nan")
        tokens = 0
        tail = b""
        response = await pool.request("POST", target, headers, body)
        try:
            if response.status_code != 200:
                raise RuntimeError(f"{url}: HTTP {response.status_code}")
            async for chunk in response.chunks():
                found, tail = count_tokens(tail, chunk)
                if found and tokens == 0:
                    ttft = time.perf_counter() - start
                tokens += found
        finally:
            await response.aclose()
        if tokens != max_tokens or tail:
            raise RuntimeError(f"{url}: streamed {tokens} tokens, asked for {max_tokens} with ignore_eos")
        return ttft, tokens

    async def aclose(self) -> None:
        for pool, _ in self.pools.values():
            await pool.aclose()


Plan = list[list[tuple[str, int, int]]]


def _plan(spec: dict[str, Any], pair: int, max_tokens: int) -> Plan:
    """Per stream, the (prompt, max_tokens, random draw) it sends in this window; identical for every path of
    a pair. The draw picks the pod on the ``direct-random`` path."""
    rng = random.Random(1000 + pair)
    vary = spec["vary"]
    out = []
    for s in range(spec["streams"]):
        reqs = []
        for r in range(spec["requests_per_stream"]):
            n = rng.randint(max(1, max_tokens // 2), max_tokens * 3 // 2) if vary else max_tokens
            reqs.append((f"pair {pair} stream {s} request {r}: " + words(rng, 150), n, rng.randrange(1 << 30)))
        out.append(reqs)
    return out


def _url(path: str, urls: list[str], stream: int, draw: int) -> str:
    """``direct``: stream s always on pod s mod N (an even split no per-request picker keeps);
    ``direct-random``: a pod drawn per request (a load balancer's placement, without its hop)."""
    return urls[(draw if path == "direct-random" else stream) % len(urls)]


async def _window(client: _Client, path: str, urls: list[str], plan: Plan, arrivals: str) -> list[tuple[float, int]]:
    async def closed(s: int) -> list[tuple[float, int]]:
        return [await client.stream(_url(path, urls, s, d), f"{path} {prompt}", n) for prompt, n, d in plan[s]]

    if arrivals == "closed":
        per_stream = await asyncio.gather(*(closed(s) for s in range(len(plan))))
        return [r for rs in per_stream for r in rs]
    results: list[tuple[float, int]] = []
    for r in range(len(plan[0])):
        results += await asyncio.gather(*(client.stream(_url(path, urls, s, plan[s][r][2]),
                                                       f"{path} {plan[s][r][0]}", plan[s][r][1])
                                          for s in range(len(plan))))
    return results


def _cpu_all(spec: dict[str, Any]) -> dict[str, float | None]:
    """CPU seconds so far of each role: the gateway's process (EPP and, unless they run apart, the pods),
    the pod host processes, and this client."""
    pods = [_cpu_seconds(pid) for pid in spec["pod_pids"]]
    return {"cluster": _cpu_seconds(spec["server_pid"]),
            "pods": None if not pods or any(c is None for c in pods) else sum(c for c in pods if c is not None),
            # in the cluster's own process (--in-process-client) the client's CPU is inside "cluster"
            "client": None if spec["server_pid"] == os.getpid() else time.process_time()}


async def _client_main(spec: dict[str, Any]) -> dict[str, Any]:
    """Run the windows of one phase against ``spec['urls']``; return TTFTs, tokens, wall and CPU per role."""
    paths = {path: spec["gateway" if path == "gateway" else "direct"] for path in spec["paths"]}
    out: dict[str, Any] = {p: {"ttft": [], "window_p50": [], "tokens": 0, "wall": 0.0, "requests": 0,
                               "cpu": {"cluster": 0.0, "pods": 0.0, "client": 0.0}} for p in paths}
    client = _Client(spec["streams"] * 2)
    try:
        # one unmeasured window per path, the same shape as the measured ones: connection pools (the client's
        # and the gateway's to each pod, which grow with the EPP's spread) reach their steady size first
        warm = _plan(spec, -1, spec["tokens"])
        for path, urls in paths.items():
            await _window(client, path, urls, warm, spec["arrivals"])
        for pair in range(spec["windows"]):
            plan = _plan(spec, pair, spec["tokens"])
            # ABBA (with three paths A G B, B G A): drift cancels, and the gateway's windows are never more
            # than two windows apart, so its pods' connections do not sit idle past the keep-alive between them
            order = list(paths) if pair % 2 == 0 else list(paths)[::-1]
            for path in order:
                cpu0, start = _cpu_all(spec), time.perf_counter()
                results = await _window(client, path, paths[path], plan, spec["arrivals"])
                wall, cpu1 = time.perf_counter() - start, _cpu_all(spec)
                row = out[path]
                row["ttft"] += [t for t, _ in results]
                row["window_p50"].append(float(np.nanmedian([t for t, _ in results])))
                row["tokens"] += sum(n for _, n in results)
                row["wall"] += wall
                row["requests"] += len(results)
                for role, used in row["cpu"].items():
                    a, b = cpu0[role], cpu1[role]
                    row["cpu"][role] = None if a is None or b is None or used is None else used + b - a
    finally:
        await client.aclose()
    return out


async def _phase(args: argparse.Namespace, time_scale: float, tokens: int, pod_processes: int) -> dict[str, Any]:
    cluster = await start_cluster(replicas=args.replicas, config=KSERVE_DEFAULT_CONFIG, time_scale=time_scale,
                                  refresh_metrics_interval="50ms", pod_processes=pod_processes)
    try:
        assert cluster.gateway is not None
        spec = {"direct": [f"https://{ip}:8000/v1/chat/completions" for ip in cluster.pod_ips],
                "gateway": [cluster.url("/v1/chat/completions")],
                "streams": args.streams if time_scale == 1.0 else (args.throughput_streams or args.streams),
                "windows": args.windows, "requests_per_stream": args.requests_per_stream,
                "tokens": tokens, "arrivals": args.arrivals,
                "vary": args.arrivals == "closed" and time_scale == 1.0,
                "server_pid": os.getpid(), "pod_pids": [h.pid for h in cluster.hosts],
                # phase 1 also sends each window to a pod drawn per request: the gateway's TTFT tail is
                # placement (where requests land), which that path shares without the hop
                "paths": ["direct", "gateway", "direct-random"] if time_scale == 1.0 else ["direct", "gateway"]}
        if args.in_process_client:
            result = await _client_main(spec)
        else:
            child = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "llmd_lab.bench.gateway", json.dumps(spec), stdout=asyncio.subprocess.PIPE)
            stdout, _ = await asyncio.wait_for(child.communicate(), timeout=1800)
            if child.returncode != 0:
                raise RuntimeError(f"the benchmark client exited with {child.returncode}")
            result = json.loads(stdout.decode().strip().splitlines()[-1])
        result["extproc"] = {"in_process": cluster.gateway.stats.extproc_in_process,
                             "http": cluster.gateway.stats.extproc_http}
        result["upstream_connections"] = cluster.gateway.upstream_connections_opened
        return result
    finally:
        await cluster.stop()


def _rows(args: argparse.Namespace, latency: dict[str, Any], throughput: dict[str, Any]) -> dict[str, Any]:
    d = np.array(latency["direct"]["ttft"]) * 1000
    g = np.array(latency["gateway"]["ttft"]) * 1000
    rnd = np.array(latency["direct-random"]["ttft"]) * 1000
    rows: dict[str, Any] = {
        "streams": args.streams, "throughput_streams": args.throughput_streams or args.streams,
        "arrivals": args.arrivals,
        "client": "in-process" if args.in_process_client else "own process",
        "requests_per_path": len(d), "latency_pod_processes": args.latency_pod_processes,
        "throughput_pod_processes": args.throughput_pod_processes,
        "direct_ttft_p50_ms": float(np.nanpercentile(d, 50)), "gateway_ttft_p50_ms": float(np.nanpercentile(g, 50)),
        "direct_ttft_p95_ms": float(np.nanpercentile(d, 95)), "gateway_ttft_p95_ms": float(np.nanpercentile(g, 95)),
        "direct_random_ttft_p50_ms": float(np.nanpercentile(rnd, 50)),
        "direct_random_ttft_p95_ms": float(np.nanpercentile(rnd, 95)),
    }
    # per ABBA pair (the two windows ran back to back), so a burst of load from elsewhere on the machine
    # shifts one pair, not the result
    pairs = [g / d - 1 for d, g in zip(latency["direct"]["window_p50"], latency["gateway"]["window_p50"],
                                       strict=True)]
    rows["overhead_p50_pct_pooled"] = 100 * (rows["gateway_ttft_p50_ms"] / rows["direct_ttft_p50_ms"] - 1)
    rows["overhead_p50_pct"] = 100 * float(np.median(pairs))
    rows["overhead_p50_ms"] = rows["direct_ttft_p50_ms"] * rows["overhead_p50_pct"] / 100
    rows["overhead_p95_pct"] = 100 * (rows["gateway_ttft_p95_ms"] / rows["direct_ttft_p95_ms"] - 1)
    # the hop alone: against the same kind of placement (a pod per request), not against a fixed even split
    pairs = [g / r - 1 for r, g in zip(latency["direct-random"]["window_p50"], latency["gateway"]["window_p50"],
                                       strict=True)]
    rows["hop_overhead_p50_pct"] = 100 * float(np.median(pairs))
    rows["hop_overhead_p95_pct"] = 100 * (rows["gateway_ttft_p95_ms"] / rows["direct_random_ttft_p95_ms"] - 1)
    for path in ("direct", "gateway"):
        lat, thr = latency[path], throughput[path]
        cluster = lat["cpu"]["cluster"]
        rows[f"{path}_cluster_cpu_ms_per_request"] = None if cluster is None else 1000 * cluster / lat["requests"]
        rows[f"{path}_tokens_per_s"] = thr["tokens"] / thr["wall"] if thr["wall"] else 0.0
        for role, used in thr["cpu"].items():
            # None: not measured (no /proc, no such process); CPU ticks are 10 ms, so a tiny run may read 0
            rows[f"{path}_{role}_cpu_us_per_token"] = None if used is None else 1e6 * used / max(1, thr["tokens"])
    per_token = rows["gateway_cluster_cpu_us_per_token"]
    # what one core could relay if the gateway's process did nothing else: an estimate from CPU time, only
    # meaningful when the pods run apart (else the pods' CPU is in the same process)
    rows["gateway_process_tokens_per_cpu_s"] = (1e6 / per_token if per_token and args.throughput_pod_processes
                                                and not args.in_process_client else None)
    rows["gateway_upstream_connections"] = latency["upstream_connections"]
    rows["extproc_in_process"] = latency["extproc"]["in_process"] + throughput["extproc"]["in_process"]
    rows["extproc_http"] = latency["extproc"]["http"] + throughput["extproc"]["http"]
    return rows


def _load() -> str:
    try:
        return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "load average unknown"


def _where(pod_processes: int) -> str:
    if pod_processes:
        return f"pods in {pod_processes} process(es) of their own, gateway + EPP in this one"
    return "pods, EPP and gateway in one event loop, as in the lab"


def run(args: argparse.Namespace) -> int:
    load_before = _load()
    latency = asyncio.run(_phase(args, 1.0, args.max_tokens, args.latency_pod_processes))
    throughput = asyncio.run(_phase(args, 100000.0, args.throughput_tokens, args.throughput_pod_processes))
    rows = _rows(args, latency, throughput)
    rows["load_before"], rows["load_after"] = load_before, _load()
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    how = ("closed loop" if args.arrivals == "closed" else "bursts of simultaneous requests")
    print(f"machine: {os.cpu_count()} CPUs, {rows['load_before']} before, {rows['load_after']} after")
    print(f"{args.streams} concurrent streams ({how}, client in {rows['client']}), {args.replicas} replicas "
          f"({_where(args.latency_pod_processes)}), {rows['requests_per_path']} requests per path, "
          f"~{args.max_tokens} output tokens, simulated clock ×1")
    for label, key in (("direct, stream pinned to a pod", "direct"), ("direct, a pod drawn per request", "direct_random"),
                       ("via the gateway (the EPP picks)", "gateway")):
        print(f"  {label:32}: TTFT p50 {rows[f'{key}_ttft_p50_ms']:7.2f} ms   p95 {rows[f'{key}_ttft_p95_ms']:7.2f} ms")
    ok50, ok95 = rows["hop_overhead_p50_pct"] <= 5, rows["hop_overhead_p95_pct"] <= 10
    print(f"  the gateway hop (against a pod drawn per request): {rows['hop_overhead_p50_pct']:+.1f} % at p50 (median "
          f"of {args.windows} back-to-back window pairs; target ≤ 5 %: {'met' if ok50 else 'NOT met'}), "
          f"{rows['hop_overhead_p95_pct']:+.1f} % at p95 (pooled; target ≤ 10 %: {'met' if ok95 else 'NOT met'})")
    print(f"  against streams pinned to pods (an even split no per-request picker keeps): "
          f"{rows['overhead_p50_pct']:+.1f} % at p50 (≈{rows['overhead_p50_ms']:+.2f} ms, median of pairs), pooled "
          f"{rows['overhead_p50_pct_pooled']:+.1f} % at p50 and {rows['overhead_p95_pct']:+.1f} % at p95")
    if rows["direct_cluster_cpu_ms_per_request"] is not None:
        print(f"  cluster CPU   : {rows['direct_cluster_cpu_ms_per_request']:.2f} ms/request direct, "
              f"{rows['gateway_cluster_cpu_ms_per_request']:.2f} ms/request via gateway (this process)")
    print(f"  ext-proc      : {rows['extproc_in_process']} in-process calls, {rows['extproc_http']} over HTTP; the "
          f"gateway opened {rows['gateway_upstream_connections']} TLS connections to the pods (warm-up included)")
    print(f"streamed tokens/s on this machine ({rows['throughput_streams']} streams, engines sped up ×100000, "
          f"{args.throughput_tokens} tokens/request, "
          f"{_where(args.throughput_pod_processes)}):")
    ok = rows["gateway_tokens_per_s"] >= 15000
    print(f"  direct {rows['direct_tokens_per_s']:8.0f} tok/s   via gateway {rows['gateway_tokens_per_s']:8.0f} tok/s "
          f"(target ≥ 15,000 via gateway: {'met' if ok else 'NOT met'})")
    for path in ("direct", "gateway"):
        cpu = {role: rows[f"{path}_{role}_cpu_us_per_token"] for role in ("cluster", "pods", "client")}
        print(f"  CPU µs/token {path:8}: " + ", ".join(f"{role} {'-' if v is None else f'{v:.0f}'}"
                                                      for role, v in cpu.items()))
    if rows["gateway_process_tokens_per_cpu_s"]:
        print(f"  the gateway's process (relay + EPP) used {rows['gateway_cluster_cpu_us_per_token']:.0f} µs of CPU "
              f"per relayed token: ≈{rows['gateway_process_tokens_per_cpu_s']:,.0f} tok/s per core if it had one to "
              "itself (an estimate from CPU time, not a measured rate)")
    return 0


if __name__ == "__main__":  # the client process (see _phase)
    print(json.dumps(asyncio.run(_client_main(json.loads(sys.argv[1])))))
