"""``llmd-lab bench routing``: routing policies vs round-robin and the oracle, in virtual time.

Every workload × policy runs through :mod:`llmd_lab.sim.des` on the same seed: 4 simulated vLLM
replicas (Qwen3-0.6B on L4 unless told otherwise), the real EPP code for the EPP policies, the
kube-proxy baselines, and an oracle that reads the engines' exact caches. Hit rate is the engines'
own prefix-cache hit rate (cached prompt tokens ÷ prompt tokens), as ``vllm:prefix_cache_hits`` shows.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from llmd_lab.sim.des import (
    EppRouter,
    OracleRouter,
    RandomRouter,
    RequestRecord,
    RoundRobinRouter,
    SimSession,
    Simulation,
)
from llmd_lab.sim.epp.config import KSERVE_DEFAULT_CONFIG
from llmd_lab.sim.epp.configs import COURSE_CONFIG, LOAD_AWARE_CONFIG, precise_prefix_config
from llmd_lab.sim.vllm.engine import EngineConfig
from llmd_lab.sim.vllm.profiles import resolve_gpu, resolve_model
from llmd_lab.traffic.workloads import multi_turn, words

HASH_SEED = "42"  # PYTHONHASHSEED of the engines = hashSeed of the precise scorer, as llm-d deploys it
PRECISE_CONFIG = precise_prefix_config(HASH_SEED)

POLICIES: dict[str, tuple[str, Callable[[int], object]]] = {
    "random": ("kube-proxy random (iptables)", lambda seed: RandomRouter(seed)),
    "round-robin": ("the workload Service (kube-proxy round robin)", lambda seed: RoundRobinRouter()),
    "load-aware": ("EPP: queue + kv-cache-utilization", lambda seed: EppRouter(LOAD_AWARE_CONFIG, seed=seed)),
    "kserve-default": ("EPP: KServe default (prefix 2, load-aware 1)",
                       lambda seed: EppRouter(KSERVE_DEFAULT_CONFIG, seed=seed)),
    "course": ("EPP: queue 2, kv-cache 2, prefix 3", lambda seed: EppRouter(COURSE_CONFIG, seed=seed)),
    "precise-prefix": ("EPP: queue 2, kv-cache 2, precise prefix 3", lambda seed: EppRouter(PRECISE_CONFIG, seed=seed)),
    "oracle": ("knows every cache and queue (benchmark only)", lambda seed: OracleRouter()),
}
EPP_POLICY = "course"


@dataclass
class WorkloadSpec:
    name: str
    description: str
    sessions: list[SimSession]
    concurrency: int | None = None


def _poisson_starts(rng: random.Random, n: int, rate: float) -> list[float]:
    t, out = 0.0, []
    for _ in range(n):
        t += rng.expovariate(rate)
        out.append(t)
    return out


def build_workloads(seed: int, scale: float = 1.0) -> list[WorkloadSpec]:
    """The issue's workloads; ``scale`` < 1 shrinks request counts for a quick look."""
    rng = random.Random(seed)
    out = []
    n_conv = max(4, round(20 * scale))
    mt = multi_turn(n_conv, 6, seed=seed)
    out.append(WorkloadSpec("multi-turn", f"step-08 demo: {n_conv} conversations × 6 turns, 4 workers",
                            [SimSession(s.turns, s.system, s.max_tokens) for s in mt], concurrency=4))

    docs = [f"document {d}: " + words(rng, 4200) for d in range(4)]
    long_sessions = [SimSession([words(rng, 40) for _ in range(10)], system=docs[c % len(docs)], max_tokens=150,
                                ignore_eos=True) for c in range(n_conv)]
    out.append(WorkloadSpec("multi-turn-docs", f"reference repo: {n_conv} conversations × 10 turns over 4 shared "
                            "4,200-token documents, 150 output tokens, 4 workers", long_sessions, concurrency=4))

    groups, users, prefix_tokens, rate = 96, 4, 6000, 12.0
    n_req = max(40, round(480 * scale))
    prefixes = [f"group {g} shared context: " + words(rng, prefix_tokens) for g in range(groups)]
    starts = _poisson_starts(rng, n_req, rate)
    shared = [SimSession([f"user {rng.randrange(users)} asks: " + words(rng, 80)], system=prefixes[rng.randrange(groups)],
                         max_tokens=64, ignore_eos=True, start=t) for t in starts]
    out.append(WorkloadSpec("shared-prefix", f"{groups} groups × {prefix_tokens}-token prefix "
                            f"(≈{groups * prefix_tokens // 1000}k tokens: above one replica's cache, below the pool's), "
                            f"{users} users each, Poisson {rate:g} req/s, {n_req} requests", shared))

    prompt = words(rng, 256)
    n_rep = max(20, round(100 * scale))
    out.append(WorkloadSpec("repeated-prompt", f"one 256-token prompt × {n_rep}, Poisson 5 req/s, 256 out",
                            [SimSession([prompt], max_tokens=256, ignore_eos=True, start=t)
                             for t in _poisson_starts(rng, n_rep, 5.0)]))
    for rate in (1, 5, 10, 20, 50):
        n = max(10, round(min(rate * 10, 300) * scale))
        sessions = [SimSession([f"{i} {rng.getrandbits(64):x} " + words(rng, 250)], max_tokens=256, ignore_eos=True,
                               start=t) for i, t in enumerate(_poisson_starts(rng, n, float(rate)))]
        out.append(WorkloadSpec(f"rate-{rate}", f"unique 256-token prompts at {rate} req/s, 256 out, {n} requests",
                                sessions))
    return out


def _pct(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def summarise(workload: str, policy: str, records: list[RequestRecord], makespan: float) -> dict:
    ok = [r for r in records if r.error is None and r.ttft is not None]
    ttft = [r.ttft * 1000 for r in ok]  # type: ignore[operator]
    itl = [x * 1000 for r in ok for x in r.itl]
    prompt = sum(r.prompt_tokens for r in ok)
    first = [r.ttft for r in ok if r.turn == 0]
    later = [r.ttft for r in ok if r.turn > 0]
    return {
        "workload": workload,
        "policy": policy,
        "requests": len(records),
        "errors": len(records) - len(ok),
        "hit_rate": sum(r.cached_tokens for r in ok) / prompt if prompt else 0.0,
        "ttft_p50_ms": _pct(ttft, 50),
        "ttft_p95_ms": _pct(ttft, 95),
        "ttft_p99_ms": _pct(ttft, 99),
        "itl_p50_ms": _pct(itl, 50),
        "throughput_tok_s": sum(r.output_tokens for r in ok) / makespan if makespan > 0 else 0.0,
        "cache_speedup": (float(np.mean(first)) / float(np.mean(later))) if first and later else None,
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--replicas", type=int, default=4)
    parser.add_argument("--model", default="Qwen/Qwen3-0.6B")
    parser.add_argument("--gpu", default="L4")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scale", type=float, default=1.0, help="shrink request counts (e.g. 0.25 for a quick look)")
    parser.add_argument("--workloads", default="", help="comma-separated subset of workload names")
    parser.add_argument("--policies", default="", help=f"comma-separated subset of {', '.join(POLICIES)}")


def run_matrix(args: argparse.Namespace, progress: Callable[[str], None] = lambda s: None) -> list[dict]:
    engine_config = EngineConfig(resolve_model(args.model), resolve_gpu(args.gpu), python_hash_seed=HASH_SEED)
    workloads = build_workloads(args.seed, args.scale)
    if args.workloads:
        wanted = set(args.workloads.split(","))
        unknown = wanted - {w.name for w in workloads}
        if unknown:
            raise SystemExit(f"unknown workload(s) {sorted(unknown)}; choose from {[w.name for w in workloads]}")
        workloads = [w for w in workloads if w.name in wanted]
    policies = args.policies.split(",") if args.policies else list(POLICIES)
    unknown_p = set(policies) - set(POLICIES)
    if unknown_p:
        raise SystemExit(f"unknown policy(ies) {sorted(unknown_p)}; choose from {list(POLICIES)}")
    rows = []
    for w in workloads:
        by_policy = {}
        for policy in policies:
            start = time.perf_counter()
            sim = Simulation(engine_config, args.replicas, POLICIES[policy][1](args.seed), seed=args.seed)
            records = sim.run(w.sessions, concurrency=w.concurrency)
            row = summarise(w.name, policy, records, sim.now)
            row["wall_s"] = round(time.perf_counter() - start, 2)
            by_policy[policy] = row
            progress(f"{w.name:16s} {policy:15s} done in {row['wall_s']:.1f}s")
        rr, oracle = by_policy.get("round-robin"), by_policy.get("oracle")
        for row in by_policy.values():
            row["p95_vs_round_robin"] = _ratio(row["ttft_p95_ms"], rr["ttft_p95_ms"]) if rr else None
            row["hit_vs_round_robin"] = _ratio(row["hit_rate"], rr["hit_rate"]) if rr else None
            row["hit_vs_oracle"] = _ratio(row["hit_rate"], oracle["hit_rate"]) if oracle else None
            row["p95_vs_oracle"] = _ratio(row["ttft_p95_ms"], oracle["ttft_p95_ms"]) if oracle else None
            rows.append(row)
    return rows


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def _fmt(v: float | None, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def targets(rows: list[dict]) -> list[str]:
    """The issue's targets, checked on the rows that carry them."""
    def get(w, p):
        return next((r for r in rows if r["workload"] == w and r["policy"] == p), None)
    lines = []
    for w in ("multi-turn", "multi-turn-docs", "shared-prefix"):
        rr, epp = get(w, "round-robin"), get(w, EPP_POLICY)
        if rr:
            lines.append(f"{w}: round-robin hit rate {rr['hit_rate']:.0%} (target ≤ 35%): "
                         f"{'met' if rr['hit_rate'] <= 0.35 else 'NOT met'}")
        if epp and epp["hit_vs_oracle"] is not None:
            lines.append(f"{w}: EPP ({EPP_POLICY}) hit rate {epp['hit_vs_oracle']:.0%} of oracle (target ≥ 95%): "
                         f"{'met' if epp['hit_vs_oracle'] >= 0.95 else 'NOT met'}")
        if w.startswith("multi-turn") and epp and epp["p95_vs_round_robin"] is not None:
            cut = 1 - epp["p95_vs_round_robin"]
            lines.append(f"{w}: EPP P95 TTFT {cut:.0%} lower than round-robin (target ≥ 60%): "
                         f"{'met' if cut >= 0.60 else 'NOT met'}")
    return lines


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    rows = run_matrix(args, progress=(lambda s: None) if args.json else print)
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    header = (f"{'workload':16s} {'policy':15s} {'hit':>5s} {'p50ms':>8s} {'p95ms':>8s} {'p99ms':>8s} {'itl50':>6s} "
              f"{'tok/s':>7s} {'speedup':>7s} {'p95÷RR':>7s} {'hit÷orc':>7s} {'err':>4s}")
    print(f"\n{args.replicas} × {args.model} on {args.gpu}, seed {args.seed} (simulated time; TTFT/ITL in ms)")
    print(header)
    print("-" * len(header))
    last = None
    for r in rows:
        if last and r["workload"] != last:
            print()
        last = r["workload"]
        print(f"{r['workload']:16s} {r['policy']:15s} {r['hit_rate']:5.0%} {_fmt(r['ttft_p50_ms'], '8.1f')} "
              f"{_fmt(r['ttft_p95_ms'], '8.1f')} {_fmt(r['ttft_p99_ms'], '8.1f')} {_fmt(r['itl_p50_ms'], '6.1f')} "
              f"{r['throughput_tok_s']:7.0f} {_fmt(r['cache_speedup'], '7.2f')} {_fmt(r['p95_vs_round_robin'], '7.2f')} "
              f"{_fmt(r['hit_vs_oracle'], '7.2f')} {r['errors']:4d}")
    print("\nTargets:")
    for line in targets(rows):
        print("  " + line)
    print(f"\nwall time {time.perf_counter() - started:.0f}s")
    return 0
