"""Rate sweeps that straddle a service's capacity, and the knee read from the measured curve.

Why measure first: a sweep of fixed rates shows a knee only if its top rates exceed what the pods can serve,
and that capacity depends on the cluster, the model, vLLM's settings (``--max-num-seqs``: how many requests a
pod runs at once) and, in the lab, on the time scale (``--time-scale 20`` in CI, 1 from ``make lab``). So
:func:`measure_capacity` runs a closed loop with more requests in flight than the pods run at once, and
:func:`rates_around` offers fractions and multiples of what it measured. :func:`find_knee` then reads the
knee from the measured curve, never from a number written in advance.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from llmd_lab.traffic.runner import Target, run
from llmd_lab.traffic.workloads import Workload

#: The knee: the first load where TTFT p95 is this many times its value at the lightest load. Past a service's
#: capacity requests wait for a free sequence slot, which multiplies TTFT (×10 and more); below it a
#: request now and then waits for one slot, which rarely doubles it. Four keeps those two apart.
KNEE_FACTOR = 4.0


def throughput_rps(df: pd.DataFrame) -> float:
    """Requests that finished per second of the client's clock, from the first send to the last finish."""
    ok = df[df["ok"]] if "ok" in df else df
    if ok.empty:
        return 0.0
    span = float((ok["send_time"] + ok["e2e_s"]).max() - ok["send_time"].min())
    return len(ok) / span if span > 0 else 0.0


@dataclass(frozen=True)
class Capacity:
    """What a saturating closed loop measured: requests/s, with how many in flight, over which run."""

    rps: float
    in_flight: int
    run: pd.DataFrame


def measure_capacity(target: Target, workload: Workload, *, in_flight: int, seed: int = 0) -> Capacity:
    """Requests/s the target serves with ``in_flight`` sessions running back to back.

    Give ``in_flight`` above the pods' slots (replicas × ``--max-num-seqs``) so requests queue in the engine
    and the pods, not the client, set the pace.
    """
    df = run(target, workload, concurrency=in_flight, seed=seed, label="capacity", progress=False)
    return Capacity(throughput_rps(df), in_flight, df)


def rates_around(capacity_rps: float, turns: int, factors: Sequence[float]) -> list[float]:
    """Conversation start rates at ``factors`` × capacity: a conversation of ``turns`` turns is ``turns``
    requests, so ``capacity_rps / turns`` conversations per second is the load the pods can just keep up with."""
    if capacity_rps <= 0 or turns < 1:
        raise ValueError(f"need a measured capacity > 0 and turns ≥ 1, got {capacity_rps} and {turns}")
    return [f * capacity_rps / turns for f in factors]


def find_knee(curve: pd.DataFrame, *, x: str = "load", y: str = "engine_ttft_p95_ms",
              factor: float = KNEE_FACTOR) -> float | None:  # fmt: skip
    """The first ``x`` where ``y`` reaches ``factor`` × its value at the lowest ``x``; None if it never does."""
    points = curve[[x, y]].dropna().sort_values(x)
    if len(points) < 2:
        return None
    base = float(points[y].iloc[0])
    rising = points[points[y] >= factor * base]
    return float(rising[x].iloc[0]) if not rising.empty else None


def find_knees(sweep: pd.DataFrame, *, by: str = "mode", x: str = "load", y: str = "engine_ttft_p95_ms",
               factor: float = KNEE_FACTOR) -> dict[str, float | None]:  # fmt: skip
    """:func:`find_knee` for each ``by`` group (each routing mode's own curve)."""
    return {str(key): find_knee(part, x=x, y=y, factor=factor) for key, part in sweep.groupby(by, sort=False)}
