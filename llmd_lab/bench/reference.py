"""``llmd-lab bench reference``: the course's reference benchmark (rh-aiservices-bu/rhaoi3-llm-d) reproduced.

The reference ran its multi-turn benchmark (``guidellm/multi-turn-benchmark.py``) against 4 Qwen3-0.6B vLLM
replicas behind a plain Service, then behind llm-d (EPP: queue 2, kv-cache 2, prefix 3) and published the summary
in ``benchmarks.md``. This bench sends the same shape (:func:`llmd_lab.traffic.reference_multi_turn`: 11
conversations × 10 turns over code and prose documents, 150 max tokens, 4 workers interleaving turns with
0.5-2 s think time) through the discrete-event simulator with the real EPP code and prints the reference's
table next to the published figures, with the gap.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
from collections import Counter
from typing import Any

from llmd_lab.sim.des import EppRouter, RandomRouter, RequestRecord, RoundRobinRouter, SimSession, Simulation
from llmd_lab.sim.epp.configs import COURSE_CONFIG
from llmd_lab.sim.vllm.engine import EngineConfig
from llmd_lab.sim.vllm.profiles import resolve_gpu, resolve_model
from llmd_lab.traffic.workloads import reference_multi_turn

SOURCE = ("rh-aiservices-bu/rhaoi3-llm-d@891558ab4dc270427c6bf7a8436c6f682d90124b:benchmarks.md (2025-12-11), "
          "https://github.com/rh-aiservices-bu/rhaoi3-llm-d/blob/main/benchmarks.md")  # fmt: skip
# benchmarks.md "BENCHMARK SUMMARY" of each run (ms; speedup = first-turn avg ÷ later-turn avg).
PUBLISHED: dict[str, dict[str, float]] = {
    "llm-d": {"ttft_p50_ms": 92.09, "ttft_p95_ms": 271.60, "ttft_p99_ms": 674.21, "ttft_mean_ms": 120.98,
              "first_turn_ms": 361.79, "later_turns_ms": 94.22, "speedup": 3.84, "requests_per_s": 0.45,
              "request_mean_ms": 7424.42},
    "round-robin": {"ttft_p50_ms": 123.22, "ttft_p95_ms": 744.71, "ttft_p99_ms": 840.95, "ttft_mean_ms": 211.82,
                    "first_turn_ms": 351.64, "later_turns_ms": 196.29, "speedup": 1.79, "requests_per_s": 0.48,
                    "request_mean_ms": 6990.35},
}  # fmt: skip
POLICIES = {
    "llm-d": lambda seed: EppRouter(COURSE_CONFIG, seed=seed),
    "round-robin": lambda seed: RoundRobinRouter(),
    "random": lambda seed: RandomRouter(seed),  # kube-proxy iptables: what a Service does per new connection
}
METRICS = ("ttft_p50_ms", "ttft_p95_ms", "ttft_p99_ms", "ttft_mean_ms", "first_turn_ms", "later_turns_ms",
           "speedup", "requests_per_s", "request_mean_ms")  # fmt: skip
WHY = (
    "Why the lab differs: (1) the reference's GPU is not stated (the lab uses --gpu, L4 by default); (2) its "
    "documents' token counts are estimated from their sizes, not tokenized with Qwen's tokenizer; (3) its replies "
    "are Qwen3 text (often <think> blocks), the lab's are max_tokens words; (4) its TTFT includes HTTP, TLS and "
    "the gateway hop on a shared cluster, the lab adds only the API-server delay calibrated in `bench fidelity`; "
    "(5) its mean request time, ~7.4 s for at most 150 tokens, is ~48 ms per token, several times what a "
    "Qwen3-0.6B decode step costs on a data-center GPU: consistent with the 1-CPU limit of its vLLM pods "
    "(vllm/qwen/inference-service.yaml), and why its requests/s and later-turn TTFT are slower than the lab's; "
    "(6) 110 requests make P95/P99 the 6th and 2nd slowest request, so a few slow first turns decide them; (7) "
    "the baseline Service there spread new connections at random (kube-proxy iptables), shown here as `random`; (8) "
    "turns whose conversation has outgrown the reference's --max-model-len=16000 get vLLM's 400, as its pods would "
    "answer them (listed under each policy), and are left out of the TTFT figures."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gpu", default="L4", help="GPU profile of the 4 replicas (the reference does not say)")
    parser.add_argument("--replicas", type=int, default=4)
    parser.add_argument("--conversations", type=int, default=11,
                        help="11 as in the published table (its command line says 20)")  # fmt: skip
    parser.add_argument("--turns", type=int, default=10)
    parser.add_argument("--max-tokens", type=int, default=150)
    parser.add_argument("--seed", type=int, default=0)


def _pct(values: list[float], q: float) -> float:
    """The reference's percentile: ``sorted(v)[int(n × q)]`` (no interpolation)."""
    ordered = sorted(values)
    return ordered[min(int(len(ordered) * q), len(ordered) - 1)]


def _error_kind(error: str) -> str:
    """An error (``"<status> <message>"``) with the message's numbers as N, so one refusal of different
    requests counts as one kind."""
    status, _, message = error.partition(" ")
    return f"{status} {re.sub(r'[0-9]+', 'N', message)}"


def summarise(records: list[RequestRecord], makespan: float) -> dict[str, Any]:
    """The reference's BENCHMARK SUMMARY from simulated request records."""
    ok = [r for r in records if r.ttft is not None and r.error is None]
    ttft = [1000 * r.ttft for r in ok]  # type: ignore[operator]
    first = [1000 * r.ttft for r in ok if r.turn == 0]  # type: ignore[operator]
    later = [1000 * r.ttft for r in ok if r.turn > 0]  # type: ignore[operator]
    by_turn = {t + 1: statistics.fmean([1000 * r.ttft for r in ok if r.turn == t])  # type: ignore[operator]
               for t in sorted({r.turn for r in ok})}  # fmt: skip
    by_kind = {k: statistics.fmean([1000 * r.ttft for r in ok if r.tags.get("kind") == k])  # type: ignore[operator]
               for k in sorted({r.tags.get("kind") for r in ok})}  # fmt: skip
    cached = sum(r.cached_tokens for r in ok) / max(1, sum(r.prompt_tokens for r in ok))
    return {
        "requests": len(records), "errors": len(records) - len(ok), "requests_per_s": len(records) / makespan,
        "ttft_min_ms": min(ttft), "ttft_max_ms": max(ttft), "ttft_mean_ms": statistics.fmean(ttft),
        "ttft_p50_ms": _pct(ttft, 0.50), "ttft_p95_ms": _pct(ttft, 0.95), "ttft_p99_ms": _pct(ttft, 0.99),
        "first_turn_ms": statistics.fmean(first), "later_turns_ms": statistics.fmean(later),
        "speedup": statistics.fmean(first) / statistics.fmean(later), "by_turn": by_turn, "by_kind": by_kind,
        "prefix_hit_rate": cached,
        "error_kinds": dict(Counter(_error_kind(r.error) for r in records if r.error is not None)),
        "request_mean_ms": statistics.fmean(1000 * (r.finish - r.arrival) for r in ok if r.finish is not None),
    }  # fmt: skip


def run_policy(policy: str, args: argparse.Namespace) -> dict[str, Any]:
    """One benchmark run against ``args.replicas`` simulated replicas behind ``policy``."""
    wl = reference_multi_turn(args.conversations, args.turns, max_tokens=args.max_tokens, seed=args.seed)
    cfg = EngineConfig(resolve_model("Qwen/Qwen3-0.6B"), resolve_gpu(args.gpu), python_hash_seed="42",
                       max_model_len=16000)  # the reference's ServingRuntime: --max-model-len=16000  # fmt: skip
    sim = Simulation(cfg, args.replicas, POLICIES[policy](args.seed), seed=args.seed)
    sessions = [SimSession(s.turns, s.system, s.max_tokens, ignore_eos=True, tags=dict(s.tags)) for s in wl]
    records = sim.run(sessions, concurrency=wl.pacing["workers"], interleave_turns=True,
                      think_time=wl.pacing["think_time_s"])  # fmt: skip
    return summarise(records, sim.now)


def _gap(sim: float, pub: float) -> str:
    return f"{100 * (sim - pub) / pub:+.0f}%"


def _print(results: dict[str, dict[str, Any]], args: argparse.Namespace) -> None:
    print(f"Reference benchmark: {args.replicas} × Qwen3-0.6B on {args.gpu} (simulated), {args.conversations} "
          f"conversations × {args.turns} turns, max tokens {args.max_tokens}, 4 workers, 0.5-2 s think time")  # fmt: skip
    print(f"published: {SOURCE}\n")
    print(f"{'':22}{'llm-d lab':>10}{'published':>10}{'gap':>6}   {'RR lab':>8}{'published':>10}{'gap':>6}"
          f"   {'random lab':>10}")  # fmt: skip
    for m in METRICS:
        d, rr, rnd = results["llm-d"][m], results["round-robin"][m], results["random"][m]
        pd_, pr = PUBLISHED["llm-d"][m], PUBLISHED["round-robin"][m]
        print(f"{m:<22}{d:>10.2f}{pd_:>10.2f}{_gap(d, pd_):>6}   {rr:>8.2f}{pr:>10.2f}{_gap(rr, pr):>6}   {rnd:>10.2f}")
    for name in ("llm-d", "round-robin"):
        p95 = 1 - results["llm-d"]["ttft_p95_ms"] / results[name]["ttft_p95_ms"] if name != "llm-d" else None
        if p95 is not None:
            pub = 1 - PUBLISHED["llm-d"]["ttft_p95_ms"] / PUBLISHED["round-robin"]["ttft_p95_ms"]
            print(f"\nP95 TTFT llm-d vs round-robin: {p95:.0%} lower in the lab, {pub:.0%} published")
    for name, r in results.items():
        turns = ", ".join(f"{t}: {v:.0f}" for t, v in r["by_turn"].items())
        kinds = ", ".join(f"{k}: {v:.0f}" for k, v in r["by_kind"].items())
        print(f"{name:>11}: TTFT by turn (ms) {turns}; by document {kinds}; prefix-cache hit rate "
              f"{r['prefix_hit_rate']:.0%}; {r['errors']} errors of {r['requests']}")  # fmt: skip
        for kind, n in r["error_kinds"].items():  # say why: a bare count would read as a lab fault
            print(f"{'':13}{n} × {kind}")
    print(f"\n{WHY}")


def run(args: argparse.Namespace) -> int:
    results = {policy: run_policy(policy, args) for policy in POLICIES}
    if args.json:
        print(json.dumps({"source": SOURCE, "published": PUBLISHED, "lab": results}, indent=2))
        return 0
    _print(results, args)
    return 0
