"""Notebook 05's rate sweep: capacity measured first, rates chosen around it, the knee read from the curve.

The integration test runs the sweep's own recipe against a simulated vLLM pod with ``--max-num-seqs 4`` at the
lab's two time scales — 1 (``make lab``) and 20 (CI) — and asserts the knee is found past capacity and not below.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator

import pandas as pd
import pytest

from llmd_lab import metrics, traffic
from llmd_lab.sim.vllm.server import serve
from llmd_lab.traffic import sweep

MODEL = "Qwen/Qwen3-0.6B"


def test_find_knee_is_the_first_load_at_four_times_the_lightest() -> None:
    curve = pd.DataFrame({"load": [4.0, 0.25, 1.0, 0.5, 2.0], "engine_ttft_p95_ms": [2500, 90, 300, 150, 900]})
    assert sweep.find_knee(curve) == 2.0  # 300 < 4 × 90 ≤ 900; rows need not be sorted
    assert sweep.find_knee(curve, factor=3.0) == 1.0


def test_a_flat_curve_has_no_knee() -> None:
    flat = pd.DataFrame({"load": [0.25, 1.0, 4.0], "engine_ttft_p95_ms": [90, 110, 200]})
    assert sweep.find_knee(flat) is None
    assert sweep.find_knee(flat.head(1)) is None  # one point is no curve


def test_find_knees_reads_each_mode_on_its_own_curve() -> None:
    table = pd.DataFrame({"mode": ["llm-d"] * 3 + ["round-robin"] * 3, "load": [0.25, 1, 4] * 2,
                          "engine_ttft_p95_ms": [80, 100, 900, 100, 500, 2000]})  # fmt: skip
    assert sweep.find_knees(table) == {"llm-d": 4.0, "round-robin": 1.0}


def test_rates_are_conversations_per_second_around_the_measured_capacity() -> None:
    assert sweep.rates_around(12.0, 3, [0.5, 1, 4]) == pytest.approx([2.0, 4.0, 16.0])
    with pytest.raises(ValueError, match="capacity"):
        sweep.rates_around(0.0, 3, [1])


def test_throughput_counts_finished_requests_over_the_run_span() -> None:
    df = pd.DataFrame({"ok": [True, True, False], "send_time": [10.0, 10.5, 10.2], "e2e_s": [1.0, 1.5, 0.1]})
    assert sweep.throughput_rps(df) == pytest.approx(2 / 2.0)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(params=[1, 20], ids=["time-scale-1", "time-scale-20"])
def small_pod(request: pytest.FixtureRequest) -> Iterator[str]:
    """One simulated vLLM pod on an L4 that runs at most four requests at once, at the lab's time scale."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    env = {"LLMD_LAB_GPU_PRODUCT": "NVIDIA-L4", "LLMD_LAB_GPU_COUNT": "1", "LLMD_LAB_TIME_SCALE": str(request.param),
           "POD_NAME": "qwen-sweep-0", "POD_NAMESPACE": "demo", "POD_IP": "127.0.0.1"}  # fmt: skip
    argv = ["vllm", "serve", "/mnt/models", "--served-model-name", MODEL, "--max-model-len", "4096",
            "--max-num-seqs", "4"]
    replica = asyncio.run_coroutine_threadsafe(
        serve(argv, host="127.0.0.1", port=_free_port(), env=env, log=lambda line: None), loop
    ).result(60)
    try:
        yield replica.url
    finally:
        asyncio.run_coroutine_threadsafe(replica.stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def test_the_sweep_finds_the_knee_past_capacity_at_either_time_scale(small_pod: str) -> None:
    source = metrics.DirectSource({"qwen-sweep-0": small_pod})
    target = traffic.Target(small_pod, MODEL, name="pod")
    slots, turns = 4, 3

    def workload(seed: int) -> traffic.Workload:
        return traffic.multi_turn(2 * slots, turns, system_tokens=500, turn_tokens=120, max_tokens=32, seed=seed)

    capacity = sweep.measure_capacity(target, workload(1), in_flight=2 * slots)
    assert capacity.rps > 0 and capacity.run["ok"].all()
    rows = []
    for load, rate in zip((0.25, 4.0), sweep.rates_around(capacity.rps, turns, (0.25, 4.0)), strict=True):
        before = metrics.scrape(source)
        part = traffic.run(target, workload(int(load * 100)), rate=rate, progress=False)
        assert part["ok"].all()
        p95 = metrics.pool_quantiles(before, metrics.scrape(source), histogram=metrics.TTFT, q=(0.95,))[0.95]
        rows.append({"load": load, "engine_ttft_p95_ms": p95 * 1000})
    curve = pd.DataFrame(rows)
    assert sweep.find_knee(curve) == 4.0, f"no knee at 4× the measured capacity:\n{curve}"
