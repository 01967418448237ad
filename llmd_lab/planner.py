"""Capacity and cost what-ifs: replicas vs tensor parallelism, round-robin vs llm-d routing.

**This is a model, not a measurement.** It runs the lab's discrete-event simulation
(``llmd_lab.sim.des``: the simulated vLLM engine with its roofline step-time physics and paged prefix
cache, behind either kube-proxy round-robin or the real EPP scheduling code) in virtual time, and
reports what that model predicts. Assumptions, stated so they can be challenged:

* step times come from a roofline (compute at ~50 % MFU, memory at ~80 % of HBM bandwidth, a small
  per-step and per-sequence CPU overhead) for the GPU and model profiles in ``llmd_lab/sim/vllm/data``;
  real kernels, drivers and vLLM versions differ by tens of percent;
* tensor parallelism pays two all-reduces per layer on the node's interconnect; no pipeline or
  multi-node layouts are modelled here;
* the workload is the shape you pass (default: step-08's multi-turn conversations), arriving as a
  Poisson process of conversations; think time between turns is zero; no network or gateway latency;
* price = on-demand hourly price × nodes, all the time (no autoscaling, no spot); a replica of
  ``tensor`` GPUs occupies one node of the chosen type and spare GPUs on it are still paid for;
* capacity = the highest request rate (requests/s, all turns) whose P95 TTFT stays within the SLO,
  found by bisection over simulated runs; $ per million output tokens is taken at that rate.

Use it to compare layouts and policies relative to each other, then check the winner on real GPUs.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from llmd_lab.manifests import GPU_TYPES, GpuType
from llmd_lab.sim.des import EppRouter, RoundRobinRouter, SimSession, Simulation
from llmd_lab.sim.epp.config import KSERVE_DEFAULT_CONFIG
from llmd_lab.sim.vllm.engine import EngineConfig
from llmd_lab.sim.vllm.profiles import resolve_gpu, resolve_model
from llmd_lab.traffic.workloads import Workload, multi_turn

ASSUMPTIONS = (
    __doc__.split("Assumptions, stated so they can be challenged:", 1)[1].split("Use it to", 1)[0].strip()
)

POLICIES: dict[str, Callable[[int], object]] = {
    "round-robin": lambda seed: RoundRobinRouter(),
    "llm-d (KServe default)": lambda seed: EppRouter(KSERVE_DEFAULT_CONFIG, seed=seed),
}


@dataclass(frozen=True)
class Layout:
    """``replicas`` vLLM instances of ``tensor`` GPUs each, one per node of ``instance_type``."""

    replicas: int
    tensor: int = 1
    instance_type: str = "g6.4xlarge"

    @property
    def node(self) -> GpuType:
        return GPU_TYPES[self.instance_type]

    @property
    def name(self) -> str:
        return f"{self.replicas}× {self.instance_type} (tensor {self.tensor})"

    @property
    def gpus(self) -> int:
        return self.replicas * self.tensor

    @property
    def nodes(self) -> int:
        per_node = max(1, self.node.gpus_per_node // self.tensor)
        return math.ceil(self.replicas / per_node)

    def hourly_usd(self, prices: dict[str, float] | None = None) -> float:
        """Nodes × the hourly price of ``instance_type`` (``prices`` overrides :data:`PRICES`, whose source
        and date are in ``llmd_lab/data/gpu_prices.yaml``)."""
        price = (prices or {}).get(self.instance_type, PRICES.usd_per_hour.get(self.instance_type))
        if price is None:
            raise ValueError(
                f"no price for {self.instance_type} in {PRICES_FILE.name}: pass prices={{'{self.instance_type}': <$/h>}}"
            )
        return self.nodes * float(price)

    def check(self) -> None:
        if self.tensor > self.node.gpus_per_node:
            raise ValueError(
                f"{self.name}: tensor {self.tensor} > {self.node.gpus_per_node} GPUs per {self.instance_type}"
            )


@dataclass(frozen=True)
class PriceList:
    """Hourly prices as data, with where they come from and when (``llmd_lab/data/gpu_prices.yaml``)."""

    source: str
    as_of: str
    usd_per_hour: dict[str, float]

    def __str__(self) -> str:
        listed = ", ".join(f"{k} ${v:.4f}/h" for k, v in self.usd_per_hour.items())
        return f"{listed} — {self.source}; {self.as_of}"


PRICES_FILE = Path(__file__).parent / "data" / "gpu_prices.yaml"


def load_prices(path: Path = PRICES_FILE) -> PriceList:
    data = yaml.safe_load(path.read_text())
    return PriceList(data["source"], data["as_of"], {k: float(v) for k, v in data["usd_per_hour"].items()})


PRICES = load_prices()

#: Step-08's two node types, both ways round.
DEFAULT_LAYOUTS = (
    Layout(2, 1, "g6.4xlarge"),
    Layout(4, 1, "g6.4xlarge"),
    Layout(1, 4, "g6.12xlarge"),
    Layout(4, 1, "g6.12xlarge"),
)


@dataclass
class Plan:
    """The comparison: one row per (layout, policy), the winner, and the assumptions behind it."""

    table: pd.DataFrame
    slo_p95_ttft_s: float
    workload: str
    model: str
    assumptions: str = ASSUMPTIONS
    notes: list[str] = field(default_factory=list)

    @property
    def winner(self) -> pd.Series | None:
        """Cheapest $ per million output tokens among rows that meet the SLO at some rate."""
        ok = self.table.dropna(subset=["usd_per_m_output_tokens"])
        return None if ok.empty else ok.sort_values("usd_per_m_output_tokens").iloc[0]

    def summary(self) -> str:
        w = self.winner
        head = (f"MODEL (simulation, not a measurement) — {self.model}, workload {self.workload}, "
                f"SLO P95 TTFT ≤ {self.slo_p95_ttft_s * 1000:.0f} ms")  # fmt: skip
        if w is None:
            return head + "\nNo layout met the SLO even at the lowest rate tried."
        return head + (f"\nWinner: {w['layout']} with {w['policy']}: {w['capacity_rps']:.2f} req/s at SLO, "
                       f"${w['usd_per_m_output_tokens']:.2f} per million output tokens (${w['usd_per_hour']:.2f}/h).")  # fmt: skip

    def _repr_html_(self) -> str:
        import html

        return (f"<p><b>{html.escape(self.summary()).replace(chr(10), '<br>')}</b></p>"
                + self.table.to_html(index=False, float_format=lambda v: f"{v:.3g}", na_rep="–")
                + f"<details><summary>Assumptions</summary><pre>{html.escape(self.assumptions)}</pre></details>")  # fmt: skip


def _sessions(workload: Workload, rate_rps: float, duration_s: float, seed: int) -> list[SimSession]:
    """Enough conversations, starting as a Poisson process, for requests to arrive at ~``rate_rps`` for
    ``duration_s``. The workload's sessions are reused in rounds; each round gets its own prefix so
    rounds do not share cache (sessions within a round share exactly what the workload shares)."""
    per_session = max(1.0, len(workload) / max(len(workload.sessions), 1))
    n = max(len(workload.sessions), math.ceil(rate_rps * duration_s / per_session))
    rng = random.Random(seed)
    t, out = 0.0, []
    for i in range(n):
        s = workload.sessions[i % len(workload.sessions)]
        tag = f"[round {i // len(workload.sessions)}] "
        system = tag + s.system if s.system else None
        turns = list(s.turns) if s.system else [tag + s.turns[0], *s.turns[1:]]
        t += rng.expovariate(rate_rps / per_session)
        out.append(SimSession(turns, system, s.max_tokens, start=t, ignore_eos=True))
    return out


def simulate(
    layout: Layout,
    policy: str,
    workload: Workload,
    rate_rps: float,
    *,
    model: str,
    duration_s: float = 30.0,
    seed: int = 0,
) -> dict:
    """One simulated run: P50/P95 TTFT (s), hit rate, output tokens/s, achieved request rate."""
    layout.check()
    gpu = resolve_gpu(layout.node.product)  # the node label names the GPU in llmd_lab/facts/gpus.yaml
    config = EngineConfig(resolve_model(model), gpu, tensor_parallel_size=layout.tensor, python_hash_seed="0")
    sim = Simulation(config, layout.replicas, POLICIES[policy](seed), seed=seed)
    records = sim.run(_sessions(workload, rate_rps, duration_s, seed))
    ok = [r for r in records if r.error is None and r.ttft is not None]
    if not ok:
        return {
            "p50": math.inf,
            "p95": math.inf,
            "hit_rate": 0.0,
            "out_tok_s": 0.0,
            "rps": 0.0,
            "errors": len(records),
        }
    ttft = [r.ttft for r in ok]
    span = max(r.finish or r.arrival for r in ok) - min(r.arrival for r in ok)
    prompt = sum(r.prompt_tokens for r in ok)
    return {
        "p50": float(np.percentile(ttft, 50)),
        "p95": float(np.percentile(ttft, 95)),
        "hit_rate": sum(r.cached_tokens for r in ok) / prompt if prompt else 0.0,
        "out_tok_s": sum(r.output_tokens for r in ok) / span if span > 0 else 0.0,
        "rps": len(ok) / span if span > 0 else 0.0,
        "errors": len(records) - len(ok),
    }


def capacity(
    layout: Layout, policy: str, workload: Workload, slo_p95_ttft_s: float, *, model: str,
    lo: float = 0.25, hi: float = 64.0, iterations: int = 5, duration_s: float = 30.0, seed: int = 0,
) -> tuple[float | None, dict | None]:  # fmt: skip
    """Highest request rate (req/s) whose P95 TTFT ≤ SLO: double from ``lo`` until the SLO breaks
    (at most ``hi``), then bisect ``iterations`` times. (None, None) if even ``lo`` misses the SLO."""

    def run(rate: float) -> dict:
        return simulate(layout, policy, workload, rate, model=model, duration_s=duration_s, seed=seed)

    res = run(lo)
    if res["p95"] > slo_p95_ttft_s:
        return None, None
    good, good_res, bad = lo, res, None
    while good < hi:
        rate = min(good * 2, hi)
        res = run(rate)
        if res["p95"] > slo_p95_ttft_s:
            bad = rate
            break
        good, good_res = rate, res
    if bad is None:
        return good, good_res
    for _ in range(iterations):
        mid = math.sqrt(good * bad)
        res = run(mid)
        if res["p95"] <= slo_p95_ttft_s:
            good, good_res = mid, res
        else:
            bad = mid
    return good, good_res


def plan(
    model: str = "meta-llama/Llama-3.1-8B-Instruct",
    *,
    layouts: Sequence[Layout] = DEFAULT_LAYOUTS,
    policies: Iterable[str] = tuple(POLICIES),
    workload: Workload | None = None,
    slo_p95_ttft_s: float = 0.5,
    prices: dict[str, float] | None = None,
    iterations: int = 4,
    duration_s: float = 30.0,
    seed: int = 0,
) -> Plan:
    """Compare ``layouts`` × ``policies`` for ``model`` under ``workload`` and a P95 TTFT SLO.

    ``prices`` overrides hourly prices per instance type (defaults: step-08's g6.4xlarge $0.85/h,
    g6.12xlarge $3.40/h). ``workload`` defaults to ``traffic.multi_turn(20, 6)``. Returns a
    :class:`Plan`; read ``plan.summary()`` and ``plan.assumptions`` before acting on it.
    """
    workload = workload or multi_turn(20, 6, seed=seed)
    unknown_types = [t for t in (prices or {}) if t not in GPU_TYPES]
    if unknown_types:
        raise ValueError(f"unknown instance type {unknown_types}: use one of {', '.join(GPU_TYPES)}")
    unknown = [p for p in policies if p not in POLICIES]
    if unknown:
        raise ValueError(f"unknown policy {unknown}: use {list(POLICIES)}")
    rows = []
    for layout in layouts:
        layout.check()
        for policy in policies:
            cap, res = capacity(
                layout,
                policy,
                workload,
                slo_p95_ttft_s,
                model=model,
                iterations=iterations,
                duration_s=duration_s,
                seed=seed,
            )
            usd_h = layout.hourly_usd(prices)
            out_tok_h = (res or {}).get("out_tok_s", 0.0) * 3600
            rows.append({
                "layout": layout.name, "policy": policy, "gpus": layout.gpus, "nodes": layout.nodes,
                "usd_per_hour": usd_h, "capacity_rps": cap,
                "p95_ttft_ms_at_capacity": res["p95"] * 1000 if res else None,
                "hit_rate_at_capacity": res["hit_rate"] if res else None,
                "output_tok_per_s": res["out_tok_s"] if res else None,
                "usd_per_m_output_tokens": usd_h / out_tok_h * 1e6 if out_tok_h else None,
            })  # fmt: skip
    return Plan(pd.DataFrame(rows), slo_p95_ttft_s, workload.name, model)
