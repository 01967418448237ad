"""``llmd-lab bench epp``: endpoint-picker decision latency for 4, 8 and 32 endpoints.

Times :meth:`Director.handle_request` (parse → filters → scorers → picker → PreRequest) in process,
on chat requests whose conversations repeat (so the prefix indexer has real entries), with scraped
metrics that vary per endpoint. Target (issue 4): p50 ≤ 0.3 ms and p99 ≤ 1 ms at 8 endpoints.

CPython's cyclic GC is what sets p99 here (a gen-2 pass over the heap takes milliseconds), so each
size runs twice: with the interpreter's default thresholds, and "tuned" (``gc.freeze()`` after set-up
and thresholds 7000/10/100), which is what a long-running EPP process would use.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import time

import numpy as np

from llmd_lab.sim.epp.config import KSERVE_DEFAULT_CONFIG, load_config
from llmd_lab.sim.epp.configs import COURSE_CONFIG, LOAD_AWARE_CONFIG
from llmd_lab.sim.epp.director import Director
from llmd_lab.sim.epp.plugins.base import PluginHandle
from llmd_lab.sim.epp.types import Endpoint, EndpointMetrics
from llmd_lab.traffic.workloads import words

CONFIGS = {"kserve-default": KSERVE_DEFAULT_CONFIG, "course": COURSE_CONFIG, "load-aware": LOAD_AWARE_CONFIG}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--decisions", type=int, default=3000, help="timed decisions per configuration and size")
    parser.add_argument("--sizes", default="4,8,32")
    parser.add_argument("--seed", type=int, default=0)


def measure(config_text: str, n_endpoints: int, decisions: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    config = load_config(config_text, PluginHandle(rng=random.Random(seed)))
    endpoints = [Endpoint(f"pod-{i}", "bench", f"10.0.{i // 250}.{i % 250 + 1}", 8000,
                          metrics=EndpointMetrics(waiting_queue_size=rng.randrange(0, 8),
                                                  kv_cache_usage_percent=rng.random() * 0.9, update_time=time.monotonic()))
                 for i in range(n_endpoints)]
    director = Director(config, lambda: endpoints, target_port=lambda: 8000)
    systems = [words(rng, 300) for _ in range(40)]
    samples = []
    for i in range(decisions + 200):
        body = {"model": "Qwen/Qwen3-0.6B", "messages": [{"role": "system", "content": rng.choice(systems)},
                                                         {"role": "user", "content": words(rng, 30)}]}
        headers = {"x-request-id": f"r{i}"}
        start = time.perf_counter()
        decision = director.handle_request(headers, body)
        director.handle_response(decision.request.request_id, {})
        elapsed = time.perf_counter() - start
        if i >= 200:  # warm-up first
            samples.append(elapsed)
        ep = endpoints[rng.randrange(n_endpoints)]
        ep.metrics.waiting_queue_size = rng.randrange(0, 8)
    return samples


def run(args: argparse.Namespace) -> int:
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    thresholds = gc.get_threshold()
    for mode in ("default", "tuned"):
        for name, text in CONFIGS.items():
            for n in sizes:
                gc.collect()
                if mode == "tuned":
                    gc.freeze()
                    gc.set_threshold(7000, 10, 100)
                try:
                    samples = np.array(measure(text, n, args.decisions, args.seed)) * 1000
                finally:
                    gc.set_threshold(*thresholds)
                    gc.unfreeze()
                rows.append({"gc": mode, "config": name, "endpoints": n, "decisions": len(samples),
                             "p50_ms": float(np.percentile(samples, 50)), "p99_ms": float(np.percentile(samples, 99)),
                             "mean_ms": float(samples.mean())})
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    print(f"{'gc':8s} {'config':16s} {'endpoints':>9s} {'p50 ms':>8s} {'p99 ms':>8s} {'mean ms':>8s}")
    for r in rows:
        print(f"{r['gc']:8s} {r['config']:16s} {r['endpoints']:9d} {r['p50_ms']:8.3f} {r['p99_ms']:8.3f} "
              f"{r['mean_ms']:8.3f}")
    for mode in ("default", "tuned"):
        at8 = [r for r in rows if r["endpoints"] == 8 and r["gc"] == mode]
        if at8:
            worst50 = max(r["p50_ms"] for r in at8)
            worst99 = max(r["p99_ms"] for r in at8)
            print(f"at 8 endpoints, {mode} GC: worst p50 {worst50:.3f} ms (target ≤ 0.3: "
                  f"{'met' if worst50 <= 0.3 else 'NOT met'}), worst p99 {worst99:.3f} ms (target ≤ 1: "
                  f"{'met' if worst99 <= 1 else 'NOT met'})")
    return 0
