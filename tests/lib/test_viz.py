"""Charts render to PNG/SVG without a browser; the routing explainer reads the EPP's trace shape."""

from __future__ import annotations

import json
from types import SimpleNamespace

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


# ----------------------------------------------------------------------------------- LIBRARY_NEEDS 2, 7, 12
class _FakeCore:
    """The two CoreV1Api calls doctor.route_trace makes, with pods as the API returns them (attribute objects)."""

    def __init__(self, traces_by_pod: dict[str, dict], phases: dict[str, str]):
        self.traces_by_pod, self.asked, self.selectors = traces_by_pod, [], []
        self.pods = [
            SimpleNamespace(metadata=SimpleNamespace(name=name, creation_timestamp=f"2026-01-01T00:00:0{i}Z"), status=SimpleNamespace(phase=phase))
            for i, (name, phase) in enumerate(phases.items())
        ]

    def list_namespaced_pod(self, namespace, label_selector=None):
        self.selectors.append((namespace, label_selector))
        return SimpleNamespace(items=self.pods)

    def connect_get_namespaced_pod_proxy_with_path(self, name, namespace, path, _preload_content=True):
        from kubernetes.client.rest import ApiException

        pod, port = name.split(":")
        self.asked.append((pod, port, path))
        request_id = path.rsplit("/", 1)[-1]
        trace = self.traces_by_pod.get(pod, {}).get(request_id)
        if trace is None:
            raise ApiException(status=404, reason="Not Found")
        return SimpleNamespace(data=json.dumps(trace).encode())


def test_route_trace_asks_each_epp_pod_through_the_pod_proxy():
    from llmd_lab import doctor

    trace = {"request_id": "r1", "picked": "qwen-kserve-1", "profiles": []}
    core = _FakeCore({"epp-new": {"r1": trace}}, {"epp-old": "Succeeded", "epp-new": "Running"})
    conn = SimpleNamespace(core=core, namespace="private-ai")
    assert doctor.route_trace(conn, "qwen", "r1") == trace
    assert core.selectors == [("private-ai", doctor.scheduler_selector("qwen"))]
    assert core.asked == [("epp-new", "9090", "debug/traces/r1")]  # the running EPP first, on its metrics port
    # a request no EPP remembers (or an EPP without /debug/traces, as on OpenShift AI): None, not an error
    core.asked.clear()
    assert doctor.route_trace(conn, "qwen", "gone") is None
    assert [a[0] for a in core.asked] == ["epp-new", "epp-old"]
    assert viz.explain_route(None, on_cluster=True) == viz.TRACES_LAB_ONLY


def test_predicted_vs_measured_draws_bars_and_prediction_ticks():
    table = pd.DataFrame(
        {"pattern": ["repeated", "shared", "random"], "predicted": [0.9, 0.5, 0.0], "measured": [0.85, None, 0.02]}
    )
    chart = viz.predicted_vs_measured(table)
    spec = chart.to_dict()
    marks = [layer["mark"]["type"] for layer in spec["layer"]]
    assert marks == ["bar", "tick"]
    assert spec["layer"][0]["encoding"]["y"]["field"] == "measured"
    assert spec["layer"][1]["encoding"]["y"]["field"] == "predicted"
    data = spec["datasets"][next(iter(spec["datasets"]))]
    assert [row["pattern"] for row in data] == ["repeated", "random"]  # the row without a measurement is left out
    assert viz.to_svg(chart).startswith("<svg")
    with pytest.raises(ValueError, match="no column"):
        viz.predicted_vs_measured(table, x="layout")


def test_importing_viz_makes_charts_render_offline_as_svg():
    import subprocess
    import sys

    code = """
import altair as alt, pandas as pd
import llmd_lab.viz as viz
assert alt.renderers.active == "svg", alt.renderers.active
bundle = alt.Chart(pd.DataFrame({"x": [1, 2]})).mark_bar().encode(x="x:Q")._repr_mimebundle_()
bundle = bundle[0] if isinstance(bundle, tuple) else bundle
assert list(bundle) == ["image/svg+xml"], list(bundle)
assert "cdn" not in bundle["image/svg+xml"].lower()
assert viz.setup("default") == "default"
try:
    viz.setup("nope")
except ValueError as exc:
    assert "svg" in str(exc)
else:
    raise AssertionError("an unknown renderer was accepted")
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    # a renderer the user chose before importing the library is left alone
    kept = "import altair as alt\nalt.renderers.enable('html')\nimport llmd_lab.viz\nassert alt.renderers.active == 'html'"
    proc = subprocess.run([sys.executable, "-c", kept], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def _plotted(chart) -> tuple[list[dict], dict]:
    """The rows a single chart draws and its y encoding, from the Vega-Lite spec altair emits."""
    spec = chart.to_dict()
    return next(iter(spec["datasets"].values())), spec["encoding"]["y"]


def test_requests_per_second_are_drawn_as_measured_not_as_milliseconds():
    """Two readings 1.5 s apart, 3 more finished requests: the chart shows 2 requests per second (a suffix rule
    once read ``requests_per_s`` as seconds and drew it ×1000: notebook 04 showed ~5,500 req/s for a few)."""
    from llmd_lab import metrics

    def snap(t: float, done: float) -> metrics.Snapshot:
        return metrics.Snapshot(t, pods={"a": {("vllm:request_success_total", (("finished_reason", "stop"),)): done}})

    frame = metrics.deltas(snap(100.0, 10), snap(101.5, 13)).assign(time=pd.Timestamp(101.5, unit="s"))
    rows, y = _plotted(viz.metric_timeline(frame, "requests_per_s"))
    assert [r[y["field"]] for r in rows] == [pytest.approx(2.0)] and y["title"] == "requests per second"


@pytest.mark.parametrize("column", ["hit_rate", "kv_cache_usage"])
def test_rates_are_drawn_in_percent_with_the_unit_in_the_title(column):
    """One unit for rates on every chart: % (the shipped Grafana dashboard's ``percentunit`` and the course text)."""
    frame = pd.DataFrame({"time": pd.to_datetime([1, 2], unit="s"), "pod": "a", column: [0.25, 0.5]})
    rows, y = _plotted(viz.metric_timeline(frame, column))
    assert [r[y["field"]] for r in rows] == [25.0, 50.0] and y["title"].endswith("(%)")


def test_timelines_count_seconds_from_the_first_reading():
    frame = pd.DataFrame({"time": pd.to_datetime([100.0, 100.4, 101.5], unit="s"), "pod": "a", "waiting": [0, 1, 2]})
    spec = viz.metric_timeline(frame, "waiting").to_dict()
    rows = next(iter(spec["datasets"].values()))
    assert [r["t_s"] for r in rows] == [0.0, pytest.approx(0.4), pytest.approx(1.5)]
    assert spec["encoding"]["x"]["title"] == "time since the first reading (s)"


def test_seconds_columns_are_drawn_in_milliseconds():
    frame = pd.DataFrame({"time": pd.to_datetime([1], unit="s"), "pod": "a", "ttft_p95_s": [0.25]})
    rows, y = _plotted(viz.metric_timeline(frame, "ttft_p95_s"))
    assert [r[y["field"]] for r in rows] == [250.0] and y["title"] == "TTFT p95 (ms)"


def test_predicted_vs_measured_in_percent():
    table = pd.DataFrame({"pattern": ["repeat"], "predicted": [0.5], "measured": [0.25]})
    spec = viz.predicted_vs_measured(table, y_title="hit rate", percent=True).to_dict()
    row = spec["datasets"][next(iter(spec["datasets"]))][0]
    assert (row["predicted"], row["measured"]) == (50.0, 25.0)
    assert spec["layer"][0]["encoding"]["y"]["title"] == "hit rate (%)"


def test_a_guidellm_sweep_has_human_titles_and_whole_stream_ticks():
    """GuideLLM's report columns get the course's titles, and a sweep over 1, 2, 4 streams has no 1.5-stream tick."""
    frame = pd.DataFrame({"concurrency": [1, 2, 4], "ttft_p50_ms": [4.0, 8.0, 12.0], "strategy": "concurrent"})
    spec = viz.rate_sweep(frame, x="concurrency", y="ttft_p50_ms", by="strategy").to_dict()
    enc = spec["encoding"]
    assert (enc["x"]["title"], enc["y"]["title"], enc["color"]["title"]) == (
        "concurrent streams", "TTFT p50 (ms)", "GuideLLM profile")
    assert enc["x"]["axis"] == {"format": "d", "values": [1, 2, 4]}
