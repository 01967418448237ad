"""Planner: costs per layout, capacity search, and that it says it is a model."""

from __future__ import annotations

import pytest

from llmd_lab import planner
from llmd_lab.traffic import multi_turn

MODEL = "meta-llama/Llama-3.1-8B-Instruct"


def test_layout_costs_use_step08_prices():
    g6_4 = planner.PRICES.usd_per_hour["g6.4xlarge"]
    assert planner.Layout(2, 1, "g6.4xlarge").hourly_usd() == pytest.approx(2 * g6_4)
    assert planner.Layout(1, 4, "g6.12xlarge").hourly_usd() == pytest.approx(planner.PRICES.usd_per_hour["g6.12xlarge"])
    assert planner.Layout(4, 1, "g6.12xlarge").nodes == 1  # four 1-GPU replicas share one 4-GPU node
    assert planner.Layout(2, 1, "g6.4xlarge").hourly_usd({"g6.4xlarge": 1.0}) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="tensor 2 > 1 GPUs"):
        planner.Layout(1, 2, "g6.4xlarge").check()


def test_prefix_aware_routing_hits_the_cache_more_than_round_robin():
    wl = multi_turn(6, 4, system_tokens=300, turn_tokens=60, max_tokens=32)
    layout = planner.Layout(2, 1, "g6.4xlarge")
    rr = planner.simulate(layout, "round-robin", wl, 0.5, model=MODEL, duration_s=10)
    epp = planner.simulate(layout, "llm-d (KServe default)", wl, 0.5, model=MODEL, duration_s=10)
    assert epp["hit_rate"] > rr["hit_rate"]


def test_plan_compares_layouts_and_says_it_is_a_model():
    wl = multi_turn(4, 3, system_tokens=200, turn_tokens=40, max_tokens=32)
    result = planner.plan(
        MODEL,
        layouts=[planner.Layout(1, 1, "g6.4xlarge"), planner.Layout(1, 4, "g6.12xlarge")],
        policies=["round-robin"],
        workload=wl,
        slo_p95_ttft_s=0.3,
        iterations=2,
        duration_s=8,
    )
    table = result.table.set_index("layout")
    assert list(table["usd_per_hour"]) == pytest.approx([planner.PRICES.usd_per_hour["g6.4xlarge"], planner.PRICES.usd_per_hour["g6.12xlarge"]])
    caps = table["capacity_rps"]
    assert caps.notna().all()
    # four GPUs of tensor parallelism serve more at the same SLO than one GPU
    assert caps["1× g6.12xlarge (tensor 4)"] > caps["1× g6.4xlarge (tensor 1)"]
    assert (
        result.winner is not None
        and result.winner["usd_per_m_output_tokens"] == table["usd_per_m_output_tokens"].min()
    )
    assert result.summary().startswith("MODEL (simulation, not a measurement)")
    assert "roofline" in result.assumptions and "Assumptions" in result._repr_html_()
    with pytest.raises(ValueError, match="unknown policy"):
        planner.plan(MODEL, policies=["magic"], workload=wl)


def test_prices_are_data_with_a_source_and_a_date():
    prices = planner.load_prices()
    assert prices.source.startswith("AWS EC2 On-Demand Pricing") and prices.as_of
    assert set(prices.usd_per_hour) >= {"g6.4xlarge", "g6.12xlarge"}
    assert "—" in str(prices) and "g6.4xlarge $" in str(prices)
    with pytest.raises(ValueError, match=r"no price for p5\.48xlarge in gpu_prices\.yaml"):
        planner.Layout(1, 8, "p5.48xlarge").hourly_usd()
