"""The agreement bench's own arithmetic: the pods' histogram means, the client's CPU, the CPU list syntax."""

from __future__ import annotations

import pytest

from llmd_lab import metrics
from llmd_lab.benchtools import agreement


def _snap(t: float, pods: dict[str, tuple[float, float]]) -> metrics.Snapshot:
    labels = (("model_name", "m"),)
    return metrics.Snapshot(t, {pod: {(metrics.TTFT + "_sum", labels): s, (metrics.TTFT + "_count", labels): c}
                                    for pod, (s, c) in pods.items()})  # fmt: skip


def test_engine_mean_is_delta_sum_over_delta_count_across_pods() -> None:
    before = _snap(0, {"a": (1.0, 10)})
    after = _snap(1, {"a": (1.6, 20), "b": (0.3, 10)})  # b started in between: counts from zero
    assert agreement._engine_mean_ms(before, after, metrics.TTFT) == pytest.approx((0.6 + 0.3) / 20 * 1000)
    assert agreement._engine_mean_ms(before, before, metrics.TTFT) is None  # no request: no mean, not 0
    assert agreement._engine_mean_ms(before, after, agreement.ENGINE_ITL) is None


def test_measured_charges_the_client_its_own_cpu() -> None:
    def busy() -> dict:
        n = 0
        for i in range(3_000_000):
            n += i
        return {"tool": "x", "n": n}

    row = agreement.measured(busy, None, in_process=True)
    assert row["tool"] == "x" and row["client_cpu_s"] > 0.01 and row["wall_s"] > 0
    assert "engine_ttft_mean_ms" not in row  # no pods to scrape: no engine columns
    assert agreement.measured(busy, None, in_process=False)["client_cpu_s"] < row["client_cpu_s"]  # no children


def test_client_cpus_follow_tasksets_list_syntax() -> None:
    assert agreement._cpus("1") == {1}
    assert agreement._cpus("0,2-3") == {0, 2, 3}
