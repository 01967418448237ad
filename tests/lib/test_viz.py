"""Charts render to PNG/SVG without a browser; the routing explainer reads the EPP's trace shape."""

from __future__ import annotations

import pandas as pd
import pytest

from llmd_lab import viz
from llmd_lab.sim.epp.scheduler import DecisionTrace, ProfileTrace, ScorerTrace


@pytest.fixture
def runs() -> pd.DataFrame:
    rows = []
    for mode, base, pods in (("llm-d", 0.05, ["a"]), ("round-robin", 0.2, ["a", "b"])):
        for i in range(20):
            rows.append({"mode": mode, "ok": True, "ttft_s": base * (1 + i / 10), "pod": pods[i % len(pods)],
                         "t_s": i * 0.1, "request_id": f"{mode}-{i}"})  # fmt: skip
    return pd.DataFrame(rows)


def test_charts_export_png_and_svg(runs, tmp_path):
    charts = [
        viz.ttft_distribution(runs),
        viz.ttft_percentiles(runs),
        viz.requests_per_pod(runs),
        viz.timeline(runs),
        viz.rate_sweep(
            pd.DataFrame({"rate": [1, 2, 4], "ttft_p95_ms": [50, 80, 400], "mode": "llm-d"}), slo_ms=200
        ),
        viz.hit_rate_per_pod(pd.DataFrame({"pod": ["a", "b"], "hit_rate": [0.9, 0.1], "requests": [10, 10]})),
    ]
    for i, chart in enumerate(charts):
        png = viz.save(chart, tmp_path / f"c{i}.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
    svg = viz.to_svg(charts[1])
    assert svg.startswith("<svg") and "TTFT percentiles" in svg
    with pytest.raises(ValueError, match=r"\.png, \.svg or \.json"):
        viz.save(charts[0], tmp_path / "c.gif")


def test_percentiles_are_computed_per_mode(runs):
    spec = viz.ttft_percentiles(runs).to_dict()
    values = (
        spec["layer"][0]["data"]["values"]
        if "data" in spec["layer"][0]
        else next(iter(spec["datasets"].values()))
    )
    table = pd.DataFrame(values).set_index(["mode", "percentile"])["ttft_ms"]
    assert table["llm-d", "p50"] == pytest.approx(
        runs[runs["mode"] == "llm-d"]["ttft_s"].quantile(0.5) * 1000
    )
    assert table["round-robin", "p99"] > table["llm-d", "p99"]


def test_explain_route_from_epp_trace_shape():
    prof = ProfileTrace("default", ["pod-a", "pod-b"])
    prof.scorers.append(ScorerTrace("prefix-cache-scorer", "prefix-cache-scorer", 2, {"pod-a": 0.9, "pod-b": 0.0},
                                    {"pod-a": 1.8, "pod-b": 0.0}))  # fmt: skip
    prof.scorers.append(ScorerTrace("load-aware-scorer", "load-aware-scorer", 1, {"pod-a": 0.3, "pod-b": 0.5},
                                    {"pod-a": 0.3, "pod-b": 0.5}))  # fmt: skip
    prof.totals = {"pod-a": 2.1, "pod-b": 0.5}
    prof.picked = ["pod-a"]
    trace = DecisionTrace("req-1", "qwen", ["pod-a", "pod-b"], profiles=[prof], picked="pod-a").to_dict()
    frame = viz.trace_frame(trace)
    assert set(frame["scorer"]) == {"prefix-cache-scorer", "load-aware-scorer"}
    assert frame[frame["picked"]]["pod"].unique().tolist() == ["pod-a"]
    chart = viz.explain_route(trace)
    assert viz.to_png(chart)[:4] == b"\x89PNG"
    text = viz.explain_route_text(trace)
    assert "→ pod-a" in text and "pod-a 2.10, pod-b 0.50" in text
    assert "lab" in viz.explain_route(None, on_cluster=True)


def test_live_panel_updates_in_place():
    panel = viz.LivePanel(chart_metric=None)
    frame = pd.DataFrame({"pod": ["a"], "requests_per_s": [2.0], "hit_rate": [0.5], "kv_cache_usage": [0.1]})
    panel.update(frame)
    panel.update(frame.assign(hit_rate=0.75))
    assert panel.updates == 2 and "0.75" in panel.table.value and "update 2" in panel.header.value
