"""The fast exposition renderer writes exactly what prometheus_client's generate_latest writes."""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Enum,
    Gauge,
    Histogram,
    Info,
    Summary,
    generate_latest,
)
from prometheus_client.core import GaugeHistogramMetricFamily

from llmd_lab.sim.exposition import ExpositionRenderer
from llmd_lab.sim.vllm.engine import EngineConfig, LLMEngine
from llmd_lab.sim.vllm.metrics import PrometheusStatLogger
from llmd_lab.sim.vllm.profiles import resolve_gpu, resolve_model


def _odd_registry() -> CollectorRegistry:
    reg = CollectorRegistry()
    c = Counter("jobs", "Jobs\\done\nacross lines", ["kind", "path"], registry=reg)
    c.labels('quote " and \\ back', "line\nbreak").inc(3)
    c.labels("plain", "x").inc(1e21)
    Gauge("temperature_celsius", "Temp", registry=reg).set(float("nan"))
    Gauge("ratio", "A ratio", ["zone"], registry=reg).labels("a").set(float("-inf"))
    Gauge("big", "Big", registry=reg).set(123456789.0)
    h = Histogram("latency_seconds", "Latency", ["model_name"], buckets=(0.001, 0.5, 10), registry=reg)
    for v in (0.0001, 0.3, 7, 100):
        h.labels("Qwen/Qwen3-0.6B").observe(v)
    Summary("size_bytes", "Sizes", registry=reg).observe(12)
    Info("build", "Build info", registry=reg).info({"version": "1.0", "commit": "abc"})
    Enum("state", "State", states=["up", "down"], registry=reg).state("down")
    Gauge("dotted:name", "colons are legacy", registry=reg).set(1)

    class Custom:
        def collect(self):
            fam = GaugeHistogramMetricFamily("queue_depth", "Depth", labels=["q"])
            fam.add_metric(["a"], [("1.0", 4), ("+Inf", 5)], gsum_value=7)
            yield fam

    reg.register(Custom())
    return reg


def test_odd_names_values_and_every_metric_type_render_identically() -> None:
    reg = _odd_registry()
    renderer = ExpositionRenderer()
    assert renderer.render(reg) == generate_latest(reg)
    Counter("late", "registered after the first render", ["x"], registry=reg).labels("y").inc()
    assert renderer.render(reg) == generate_latest(reg)  # the cache of label sets does not go stale


def test_a_busy_vllm_replica_renders_identically() -> None:
    engine = LLMEngine(EngineConfig(resolve_model("Qwen/Qwen3-0.6B"), resolve_gpu("L4")))
    stat_logger = PrometheusStatLogger(engine, model_name="Qwen/Qwen3-0.6B")
    for value in (0.0004, 0.02, 0.31, 2.5, 75.0, 3000.0):  # every histogram and counter of vLLM's set, used
        for child in vars(stat_logger).values():
            if hasattr(child, "observe"):
                child.observe(value)
            elif hasattr(child, "inc"):
                child.inc(value)
    text = stat_logger.render()
    assert text.count(b"\n") > 300 and b'le="+Inf"' in text
    assert text == generate_latest(stat_logger.registry)
