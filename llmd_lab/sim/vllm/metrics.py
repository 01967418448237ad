"""vLLM's Prometheus metrics for one replica (``vllm/v1/metrics/loggers.py`` names, types, labels, buckets).

Each replica gets its own ``CollectorRegistry`` so that many replicas can live in one process. Labels are
``model_name`` (the served model name) and ``engine`` ("0"); counters are declared without ``_total`` and
exposed with it, as prometheus_client does for vLLM. Both ``vllm:kv_cache_usage_perc`` and the deprecated
``vllm:gpu_cache_usage_perc`` are exposed because the RHOAI 3.0 EPP (GIE v1.0) scrapes the old name by default,
and both ``vllm:inter_token_latency_seconds`` and the deprecated ``vllm:time_per_output_token_seconds``.
All latencies are simulated seconds.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from llmd_lab.sim.exposition import ExpositionRenderer
from llmd_lab.sim.vllm.engine import EngineStats, LLMEngine, RequestOutput, StepResult

TTFT_BUCKETS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
                20.0, 40.0, 80.0, 160.0, 640.0, 2560.0]  # fmt: skip
ITL_BUCKETS = [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0,
               40.0, 80.0]  # fmt: skip
REQUEST_LATENCY_BUCKETS = [0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0,
                           120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0]  # fmt: skip
ITERATION_TOKENS_BUCKETS = [1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384]


def build_1_2_5_buckets(max_value: int) -> list[int]:
    """[1, 2, 5, 10, 20, 50, …] up to ``max_value`` (vLLM's token-count buckets)."""
    out, exponent = [], 0
    while True:
        for m in (1, 2, 5):
            value = m * 10**exponent
            if value > max_value:
                return out
            out.append(value)
        exponent += 1


class PrometheusStatLogger:
    """Observes engine steps and renders ``/metrics`` for one replica."""

    def __init__(
        self, engine: LLMEngine, *, model_name: str, prefix_caching_hash_algo: str = "sha256"
    ) -> None:
        self.engine = engine
        self.registry = CollectorRegistry(auto_describe=True)
        cfg = engine.config
        names, values = ["model_name", "engine"], [model_name, "0"]
        r = self.registry

        def gauge(name: str, doc: str) -> Gauge:
            return Gauge(name, doc, names, registry=r).labels(*values)

        def counter(name: str, doc: str) -> Counter:
            return Counter(name, doc, names, registry=r).labels(*values)

        def hist(name: str, doc: str, buckets: list) -> Histogram:
            return Histogram(name, doc, names, buckets=buckets, registry=r).labels(*values)

        self.num_requests_running = gauge(
            "vllm:num_requests_running", "Number of requests in model execution batches."
        )
        self.num_requests_waiting = gauge(
            "vllm:num_requests_waiting", "Number of requests waiting to be processed."
        )
        self.kv_cache_usage = gauge("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.")
        self.gpu_cache_usage = gauge(
            "vllm:gpu_cache_usage_perc",
            "GPU KV-cache usage. 1 means 100 percent usage. DEPRECATED: use vllm:kv_cache_usage_perc.",
        )
        self.prefix_cache_queries = counter(
            "vllm:prefix_cache_queries", "Prefix cache queries, in terms of number of queried tokens."
        )
        self.prefix_cache_hits = counter(
            "vllm:prefix_cache_hits", "Prefix cache hits, in terms of number of cached tokens."
        )
        self.num_preemptions = counter(
            "vllm:num_preemptions", "Cumulative number of preemption from the engine."
        )
        self.prompt_tokens = counter("vllm:prompt_tokens", "Number of prefill tokens processed.")
        self.generation_tokens = counter("vllm:generation_tokens", "Number of generation tokens processed.")
        success = Counter(
            "vllm:request_success",
            "Count of successfully processed requests.",
            [*names, "finished_reason"],
            registry=r,
        )
        self.request_success = {
            reason: success.labels(*values, reason) for reason in ("stop", "length", "abort")
        }
        token_buckets = build_1_2_5_buckets(cfg.max_model_len or 1)
        self.request_prompt_tokens = hist(
            "vllm:request_prompt_tokens", "Number of prefill tokens processed.", token_buckets
        )
        self.request_generation_tokens = hist(
            "vllm:request_generation_tokens", "Number of generation tokens processed.", token_buckets
        )
        self.request_params_max_tokens = hist(
            "vllm:request_params_max_tokens", "Histogram of the max_tokens request parameter.", token_buckets
        )
        self.iteration_tokens = hist(
            "vllm:iteration_tokens_total",
            "Histogram of number of tokens per engine_step.",
            ITERATION_TOKENS_BUCKETS,
        )
        self.ttft = hist(
            "vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.", TTFT_BUCKETS
        )
        self.itl = hist(
            "vllm:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.", ITL_BUCKETS
        )
        self.tpot = hist(
            "vllm:time_per_output_token_seconds",
            "Histogram of time per output token in seconds. DEPRECATED: use vllm:inter_token_latency_seconds.",
            ITL_BUCKETS,
        )
        self.request_tpot = hist(
            "vllm:request_time_per_output_token_seconds",
            "Histogram of time_per_output_token_seconds per request.",
            ITL_BUCKETS,
        )
        self.e2e = hist(
            "vllm:e2e_request_latency_seconds",
            "Histogram of e2e request latency in seconds.",
            REQUEST_LATENCY_BUCKETS,
        )
        self.queue_time = hist(
            "vllm:request_queue_time_seconds",
            "Histogram of time spent in WAITING phase for request.",
            REQUEST_LATENCY_BUCKETS,
        )
        self.inference_time = hist(
            "vllm:request_inference_time_seconds",
            "Histogram of time spent in RUNNING phase for request.",
            REQUEST_LATENCY_BUCKETS,
        )
        self.prefill_time = hist(
            "vllm:request_prefill_time_seconds",
            "Histogram of time spent in PREFILL phase for request.",
            REQUEST_LATENCY_BUCKETS,
        )
        self.decode_time = hist(
            "vllm:request_decode_time_seconds",
            "Histogram of time spent in DECODE phase for request.",
            REQUEST_LATENCY_BUCKETS,
        )
        info = Gauge(
            "vllm:cache_config_info",
            "Information of the LLMEngine CacheConfig",
            ["block_size", "cache_dtype", "enable_prefix_caching", "gpu_memory_utilization", "num_cpu_blocks",
             "num_gpu_blocks", "num_gpu_blocks_override", "prefix_caching_hash_algo", "engine"],
            registry=r,
        )  # fmt: skip
        info.labels(
            str(cfg.block_size), "auto", str(cfg.enable_prefix_caching), str(cfg.gpu_memory_utilization), "None",
            str(engine.num_gpu_blocks), str(cfg.num_gpu_blocks_override), prefix_caching_hash_algo, "0",
        ).set(1)  # fmt: skip
        self._last = engine.stats()
        self._max_tokens: dict[str, int] = {}
        self._observed = 0  # step observations so far: a step can finish a request (an abort) and change no stats
        self._rendered: tuple[tuple[EngineStats, int], bytes] | None = None
        self._renderer = ExpositionRenderer()  # generate_latest's bytes, without re-rendering label sets

    def observe_request(self, request_id: str, max_tokens: int) -> None:
        """Remember a request's ``max_tokens`` (recorded when it finishes, as vLLM does)."""
        self._max_tokens[request_id] = max_tokens

    def __call__(self, result: StepResult, stats: EngineStats) -> None:
        """Step observer for :class:`~llmd_lab.sim.vllm.async_engine.AsyncLLM`."""
        self._observed += 1
        if result.num_scheduled_tokens:
            self.iteration_tokens.observe(result.num_scheduled_tokens)
        for output in result.outputs:
            self._observe_output(output)
        self._update(stats)

    def _observe_output(self, o: RequestOutput) -> None:
        if o.new_token_ids:
            if o.prev_token_time is None:
                self.ttft.observe(o.token_time - o.arrival_time)
            else:
                itl = o.token_time - o.prev_token_time
                self.itl.observe(itl)
                self.tpot.observe(itl)
        if not o.finished:
            return
        reason = o.finish_reason or "abort"
        self.request_success[reason].inc()
        max_tokens = self._max_tokens.pop(o.request_id, None)
        if reason == "abort" and o.first_token_time is None:
            return
        end = o.finish_time if o.finish_time is not None else o.token_time
        self.e2e.observe(end - o.arrival_time)
        self.request_prompt_tokens.observe(o.num_prompt_tokens)
        self.request_generation_tokens.observe(o.num_output_tokens)
        if max_tokens is not None:
            self.request_params_max_tokens.observe(max_tokens)
        if o.scheduled_time is not None:
            self.queue_time.observe(o.scheduled_time - o.arrival_time)
            self.inference_time.observe(end - o.scheduled_time)
            if o.first_token_time is not None:
                self.prefill_time.observe(o.first_token_time - o.scheduled_time)
        if o.first_token_time is not None:
            decode = end - o.first_token_time
            self.decode_time.observe(decode)
            if o.num_output_tokens > 1:
                self.request_tpot.observe(decode / (o.num_output_tokens - 1))

    def _update(self, stats: EngineStats) -> None:
        last = self._last
        self.num_requests_running.set(stats.num_running_reqs)
        self.num_requests_waiting.set(stats.num_waiting_reqs)
        self.kv_cache_usage.set(stats.kv_cache_usage)
        self.gpu_cache_usage.set(stats.kv_cache_usage)
        self.prefix_cache_queries.inc(stats.prefix_cache_queries - last.prefix_cache_queries)
        self.prefix_cache_hits.inc(stats.prefix_cache_hits - last.prefix_cache_hits)
        self.num_preemptions.inc(stats.num_preemptions - last.num_preemptions)
        self.prompt_tokens.inc(stats.num_prompt_tokens - last.num_prompt_tokens)
        self.generation_tokens.inc(stats.num_generation_tokens - last.num_generation_tokens)
        self._last = stats

    def render(self) -> bytes:
        """The exposition text; gauges are refreshed first so an idle replica reports now, not its last step.

        The EPP scrapes every pod every 50 ms and one render costs milliseconds, so the text is reused while
        the engine's stats and the observations are unchanged. Stats alone are not enough: an aborted request
        leaves the running set at once, but its ``finished_reason="abort"`` is observed with the next step,
        which may change no stats, and an idle pod then served the text without the abort forever.
        """
        key = (self.engine.stats(), self._observed)
        if self._rendered is not None and self._rendered[0] == key:
            return self._rendered[1]
        self._update(key[0])
        text = self._renderer.render(self.registry)
        self._rendered = (key, text)
        return text
