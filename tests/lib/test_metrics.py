"""Metrics parsing, per-pod deltas and histogram quantiles, on Prometheus text in vLLM's names."""

from __future__ import annotations

import time

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.applications import Starlette
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from llmd_lab import metrics

TTFT_BUCKETS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10]


class VllmMetrics:
    """The vLLM metric families the helpers read, exposed with prometheus_client like vLLM does."""

    def __init__(self, model: str = "qwen"):
        self.registry = CollectorRegistry()
        lab = ["model_name", "engine"]
        self.labels = {"model_name": model, "engine": "0"}
        self.hits = Counter("vllm:prefix_cache_hits", "", lab, registry=self.registry)
        self.queries = Counter("vllm:prefix_cache_queries", "", lab, registry=self.registry)
        self.success = Counter("vllm:request_success", "", [*lab, "finished_reason"], registry=self.registry)
        self.kv = Gauge("vllm:kv_cache_usage_perc", "", lab, registry=self.registry)
        self.waiting = Gauge("vllm:num_requests_waiting", "", lab, registry=self.registry)
        self.ttft = Histogram(
            "vllm:time_to_first_token_seconds", "", lab, buckets=TTFT_BUCKETS, registry=self.registry
        )

    def serve(self, n: int, hit_tokens: int, query_tokens: int, ttft_s: float) -> None:
        for _ in range(n):
            self.success.labels(**self.labels, finished_reason="stop").inc()
            self.ttft.labels(**self.labels).observe(ttft_s)
        self.hits.labels(**self.labels).inc(hit_tokens)
        self.queries.labels(**self.labels).inc(query_tokens)

    def text(self) -> str:
        return generate_latest(self.registry).decode()


def test_parse_keeps_vllm_names_and_strips_kserve_prefix():
    m = VllmMetrics()
    m.serve(3, 10, 40, 0.03)
    samples = metrics.parse(m.text())
    key = ("vllm:prefix_cache_hits_total", (("engine", "0"), ("model_name", "qwen")))
    assert samples[key] == 10
    assert not any(name.endswith("_created") for name, _ in samples)
    prefixed = '# TYPE kserve_vllm:num_requests_waiting gauge\nkserve_vllm:num_requests_waiting{pod="a"} 3\n'
    assert metrics.parse(prefixed) == {("vllm:num_requests_waiting", (("pod", "a"),)): 3.0}


def test_histogram_quantile_matches_promql_interpolation():
    buckets = [(0.1, 0.0), (0.2, 50.0), (0.4, 100.0), (float("inf"), 100.0)]
    assert metrics.histogram_quantile(0.5, buckets) == pytest.approx(0.2)
    assert metrics.histogram_quantile(0.75, buckets) == pytest.approx(0.3)
    assert metrics.histogram_quantile(0.25, buckets) == pytest.approx(0.15)
    assert metrics.histogram_quantile(0.5, []) is None


def _pods_app(pods: dict[str, VllmMetrics]) -> Starlette:
    def handler(m: VllmMetrics):
        return lambda request: PlainTextResponse(m.text())

    return Starlette(routes=[Route(f"/{name}/metrics", handler(m)) for name, m in pods.items()])


def test_direct_source_deltas_hit_rate_and_ttft(serve_app):
    pods = {"pod-a": VllmMetrics(), "pod-b": VllmMetrics()}
    pods["pod-a"].serve(10, 0, 1000, 0.5)  # history before the window
    url = serve_app(_pods_app(pods))
    src = metrics.DirectSource({p: f"{url}/{p}" for p in pods} | {"gone": "http://127.0.0.1:9"})
    before = metrics.scrape(src)
    assert "gone" in before.errors and set(before.pods) == {"pod-a", "pod-b"}
    pods["pod-a"].serve(20, 900, 1000, 0.03)
    pods["pod-a"].kv.labels(**pods["pod-a"].labels).set(0.42)
    pods["pod-b"].serve(5, 0, 500, 0.3)
    after = metrics.scrape(src)
    df = metrics.deltas(before, after).set_index("pod")
    assert df.loc["pod-a", "requests"] == 20 and df.loc["pod-b", "requests"] == 5
    assert df.loc["pod-a", "hit_rate"] == pytest.approx(0.9) and df.loc["pod-b", "hit_rate"] == 0
    assert df.loc["pod-a", "kv_cache_usage"] == pytest.approx(0.42)
    # only the window's requests count: all 20 were 30 ms, inside (0.02, 0.04]
    assert 0.02 < df.loc["pod-a", "ttft_p95_s"] <= 0.04
    assert 0.25 < df.loc["pod-b", "ttft_p50_s"] <= 0.5


def test_counter_reset_counts_from_zero():
    a, b = VllmMetrics(), VllmMetrics()
    a.serve(50, 0, 10, 0.01)
    b.serve(3, 0, 10, 0.01)
    before = metrics.Snapshot(0.0, {"p": metrics.parse(a.text())})
    after = metrics.Snapshot(10.0, {"p": metrics.parse(b.text())})
    row = metrics.deltas(before, after).iloc[0]
    assert row["requests"] == 3 and row["requests_per_s"] == pytest.approx(0.3)


def test_promql_source_reads_kserve_prefixed_series(serve_app):
    seen = {}

    async def query(request):
        seen.update(request.query_params)
        seen["auth"] = request.headers.get("authorization")
        result = [
            {"metric": {"__name__": "kserve_vllm:num_requests_waiting", "pod": "qwen-kserve-abc", "llm_isvc_name": "qwen"},
             "value": [time.time(), "4"]},
            {"metric": {"__name__": "kserve_vllm:prefix_cache_hits_total", "pod": "qwen-kserve-abc", "llm_isvc_name": "qwen"},
             "value": [time.time(), "120"]},
        ]  # fmt: skip
        return JSONResponse({"status": "success", "data": {"resultType": "vector", "result": result}})

    url = serve_app(Starlette(routes=[Route("/api/v1/query", query)]))
    src = metrics.PromQLSource("tok", {"llm_isvc_name": "qwen"}, url=url, namespace="demo")
    snap = metrics.scrape(src)
    assert (
        seen["query"] == '{__name__=~"kserve_vllm:.*",llm_isvc_name="qwen"}' and seen["namespace"] == "demo"
    )
    assert seen["auth"] == "Bearer tok"
    assert snap.value("qwen-kserve-abc", "vllm:num_requests_waiting") == 4
    assert snap.value("qwen-kserve-abc", metrics.HITS) == 120


def test_poller_builds_a_timeline(serve_app):
    m = VllmMetrics()
    url = serve_app(_pods_app({"pod-a": m}))
    updates = []
    source = metrics.DirectSource({"pod-a": f"{url}/pod-a"})
    with metrics.Poller(source, interval_s=0.05, on_update=lambda f, s: updates.append(f)) as poller:
        deadline = time.monotonic() + 10
        while len(updates) < 2 and time.monotonic() < deadline:
            m.serve(1, 0, 1, 0.01)
            time.sleep(0.02)  # drive traffic while the poller samples; the loop ends on updates
    frame = poller.frame()
    assert len(updates) >= 2 and set(frame["pod"]) == {"pod-a"}
    assert frame["requests"].sum() >= 1


def _snap(t: float, pods: dict[str, VllmMetrics]) -> metrics.Snapshot:
    return metrics.Snapshot(t, {pod: metrics.parse(generate_latest(m.registry).decode()) for pod, m in pods.items()})


def test_pool_quantiles_sum_the_delta_buckets_over_pods():
    """LIBRARY_NEEDS 11: engine-side TTFT over the pool = histogram_quantile of Σ per-pod Δ buckets."""
    a, b_old = VllmMetrics(), VllmMetrics()
    a.serve(20, 0, 0, ttft_s=0.015)  # before the window: must not count
    b_old.serve(50, 0, 0, ttft_s=5.0)  # pod b before it restarted
    before = _snap(0.0, {"a": a, "b": b_old})
    a.serve(90, 0, 0, ttft_s=0.015)  # 90 fast requests in (0.01, 0.02]
    b_new = VllmMetrics()
    b_new.serve(10, 0, 0, ttft_s=0.3)  # b restarted: its counters start again from zero; 10 slow ones
    c = VllmMetrics()
    c.serve(0, 0, 0, ttft_s=0.0)  # a pod with no requests adds nothing
    after = _snap(10.0, {"a": a, "b": b_new, "c": c})

    q = metrics.pool_quantiles(before, after)
    assert set(q) == {0.5, 0.95, 0.99}
    assert q[0.5] == pytest.approx(0.01 + 0.01 * 50 / 90)  # rank 50 of 100 within the fast bucket
    assert q[0.95] == pytest.approx(0.25 + 0.25 * 5 / 10)  # rank 95: half-way through the slow bucket
    assert q[0.99] == pytest.approx(0.25 + 0.25 * 9 / 10)
    assert metrics.pool_buckets(before, after)[-1] == (float("inf"), 100.0)
    assert metrics.pool_quantiles(before, after, q=0.5) == {0.5: q[0.5]}
    assert metrics.pool_quantiles(after, after) == {0.5: None, 0.95: None, 0.99: None}  # nothing observed
    with pytest.raises(ValueError, match="between 0 and 1"):
        metrics.pool_quantiles(before, after, q=(50,))
