"""The EPP's own Prometheus metrics, with GIE v1.0.0's names and labels (one registry per EPP)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from llmd_lab.sim.epp.types import Endpoint

_SCHED_BUCKETS = (0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1)
_RATIO_BUCKETS = tuple(i / 10 for i in range(11))
_BYTES_BUCKETS = (0, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536)
_DURATION_BUCKETS = (0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30,
                     45, 60, 120, 180, 240, 300, 360, 480, 600, 900, 1200, 1800, 2700, 3600)


class EppMetrics:
    """Recorder the director and plugins call; ``render()`` is the ``/metrics`` body."""

    def __init__(self, pool_name: str, endpoints: Callable[[], list[Endpoint]] = list,
                 clock: Callable[[], float] | None = None, staleness_s: float = 2.0) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.pool_name = pool_name
        self.endpoints = endpoints
        self.clock = clock
        self.staleness_s = staleness_s
        self.request_total = Counter("inference_model_request", "Counter of inference model requests.",
                                     ["model_name", "target_model_name"], registry=r)
        self.request_errors = Counter("inference_model_request_error", "Counter of inference model requests errors.",
                                      ["model_name", "target_model_name", "error_code"], registry=r)
        self.request_duration = Histogram("inference_model_request_duration_seconds",
                                          "Inference model response latency distribution in seconds.",
                                          ["model_name", "target_model_name"], buckets=_DURATION_BUCKETS, registry=r)
        self.request_sizes = Histogram("inference_model_request_sizes", "Inference model requests size distribution "
                                       "in bytes.", ["model_name", "target_model_name"],
                                       buckets=(64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536,
                                                131072, 262144, 524288, 1048576), registry=r)
        self.response_sizes = Histogram("inference_model_response_sizes", "Inference model responses size "
                                        "distribution in bytes for each model and target model.",
                                        ["model_name", "target_model_name"],
                                        buckets=(1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384,
                                                 32778, 65536), registry=r)
        self.running = Gauge("inference_model_running_requests", "Inference model number of running requests in each "
                             "model.", ["model_name"], registry=r)
        self.pool_kv = Gauge("inference_pool_average_kv_cache_utilization", "The average kv cache utilization for an "
                             "inference server pool.", ["name"], registry=r)
        self.pool_queue = Gauge("inference_pool_average_queue_size", "The average number of requests pending in the "
                                "model server queue.", ["name"], registry=r)
        self.pool_ready = Gauge("inference_pool_ready_pods", "The number of ready pods in the inference server pool.",
                                ["name"], registry=r)
        self.pool_per_pod_queue = Gauge("inference_pool_per_pod_queue_size", "The total number of requests pending "
                                        "in the model server queue for each underlying pod.",
                                        ["name", "model_server_pod"], registry=r)
        self.scheduler_e2e = Histogram("inference_extension_scheduler_e2e_duration_seconds", "End-to-end scheduling "
                                       "latency distribution in seconds.", buckets=_SCHED_BUCKETS, registry=r)
        self.plugin_duration = Histogram("inference_extension_plugin_duration_seconds", "Plugin processing latency "
                                         "distribution in seconds for each extension point, plugin type and plugin "
                                         "name.", ["extension_point", "plugin_type", "plugin_name"],
                                         buckets=_SCHED_BUCKETS, registry=r)
        self.prefix_size = Gauge("inference_extension_prefix_indexer_size", "Size of the prefix indexer.", registry=r)
        self.prefix_hit_ratio = Histogram("inference_extension_prefix_indexer_hit_ratio", "Ratio of prefix length "
                                          "matched to total prefix length in the cache lookup.",
                                          buckets=_RATIO_BUCKETS, registry=r)
        self.prefix_hit_bytes = Histogram("inference_extension_prefix_indexer_hit_bytes", "Length of the prefix match "
                                          "in number of bytes in the cache lookup.", buckets=_BYTES_BUCKETS, registry=r)
        info = Gauge("inference_extension_info", "General information of the current build of Inference Extension.",
                     ["commit", "build_ref"], registry=r)
        info.labels(commit="llmd-lab-sim", build_ref="v1.0.0").set(1)
        self.prefix_indexers: list[Callable[[], int]] = []

    # -- recorder interface used by the director, scheduler and plugins -------------------------------------
    def record_request(self, model: str, target: str, size: int | None = None) -> None:
        self.request_total.labels(model, target).inc()
        if size is not None:
            self.request_sizes.labels(model, target).observe(size)

    def record_error(self, target: str, code: str) -> None:
        self.request_errors.labels(target, target, code).inc()

    def running_delta(self, model: str, delta: int) -> None:
        self.running.labels(model).inc(delta)

    def record_scheduler_duration(self, seconds: float) -> None:
        self.scheduler_e2e.observe(seconds)

    def record_plugin_duration(self, point: str, plugin_type: str, plugin_name: str, seconds: float) -> None:
        self.plugin_duration.labels(point, plugin_type, plugin_name).observe(seconds)

    def record_prefix_match(self, matched_bytes: int, total_bytes: int) -> None:
        self.prefix_hit_ratio.observe(matched_bytes / total_bytes if total_bytes else 0.0)
        self.prefix_hit_bytes.observe(matched_bytes)

    def record_duration(self, model: str, target: str, seconds: float) -> None:
        self.request_duration.labels(model, target).observe(seconds)

    # -- rendering -----------------------------------------------------------------------------------------
    def refresh_pool_gauges(self) -> None:
        endpoints = self.endpoints()
        now = self.clock() if self.clock else None
        fresh = [ep for ep in endpoints if now is None or now - ep.metrics.update_time <= self.staleness_s]
        self.pool_ready.labels(self.pool_name).set(len(endpoints))
        if fresh:
            self.pool_kv.labels(self.pool_name).set(sum(ep.metrics.kv_cache_usage_percent for ep in fresh) / len(fresh))
            self.pool_queue.labels(self.pool_name).set(sum(ep.metrics.waiting_queue_size for ep in fresh) // len(fresh))
        self.pool_per_pod_queue.clear()
        for ep in endpoints:
            self.pool_per_pod_queue.labels(self.pool_name, ep.name).set(ep.metrics.waiting_queue_size)
        self.prefix_size.set(sum(size() for size in self.prefix_indexers))

    def render(self) -> bytes:
        self.refresh_pool_gauges()
        return generate_latest(self.registry)
