"""``precise-prefix-cache-scorer`` (llm-d scheduler v0.3.1): score by what the engines *report* caching.

Unlike the approximate scorer it tokenizes the prompt and matches token-block hashes published by
each vLLM over ZMQ (``kv@<pod-ip>@<model>``), so it knows about evictions and about prefixes routed by
somebody else. Pods are matched by IP; scores are min–max normalised over pods holding any block.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llmd_lab.sim.epp.kvblock import KVBlockIndex, TokenProcessor, decode_event_batch, parse_topic
from llmd_lab.sim.epp.plugins.base import ConfigError, PluginHandle, Scorer, decode_parameters, register
from llmd_lab.sim.epp.types import Endpoint, LLMRequest

_INDEXER_SECTIONS: dict[str, dict[str, tuple[str, Any]]] = {
    "prefixStoreConfig": {"cacheSize": ("int", 500_000), "blockSize": ("int", 256)},
    "tokenProcessorConfig": {"blockSize": ("int", 16), "hashSeed": ("str", "")},
    "kvBlockIndexConfig": {
        "inMemoryConfig": ("map", {"size": 100_000_000, "podCacheSize": 10}),
        "enableMetrics": ("bool", False),
        "metricsLoggingInterval": ("duration", 0.0),
    },
    "tokenizersPoolConfig": {
        "workersCount": ("int", 5),
        "minPrefixOverlapRatio": ("float", 0.8),
        "huggingFaceToken": ("str", ""),
        "tokenizersCacheDir": ("str", ""),
    },
}
_EVENTS: dict[str, tuple[str, Any]] = {
    "zmqEndpoint": ("str", "tcp://*:5557"),
    "topicFilter": ("str", "kv@"),
    "concurrency": ("int", 4),
}


@register("precise-prefix-cache-scorer")
class PrecisePrefixCacheScorer(Scorer):
    """Longest run of leading token blocks each pod holds, min–max normalised."""

    def __init__(self, name: str, processor: TokenProcessor, index: KVBlockIndex, events: dict[str, Any],
                 handle: PluginHandle) -> None:
        super().__init__(name)
        self.processor = processor
        self.index = index
        self.zmq_endpoint: str = events["zmqEndpoint"]
        self.topic_filter: str = events["topicFilter"]
        self.tokenizer_for = handle.tokenizer_for
        self.lookups = 0
        self.lookup_hits = 0

    @classmethod
    def from_parameters(cls, name: str, params: Mapping[str, Any], handle: PluginHandle) -> PrecisePrefixCacheScorer:
        p = decode_parameters(name, cls.type_name, params, {"indexerConfig": ("map", {}), "kvEventsConfig": ("map", {})})
        sections = decode_parameters(name, cls.type_name, p["indexerConfig"],
                                     {k: ("map", {}) for k in _INDEXER_SECTIONS})
        decoded = {k: decode_parameters(name, cls.type_name, sections[k], spec) for k, spec in _INDEXER_SECTIONS.items()}
        events = decode_parameters(name, cls.type_name, p["kvEventsConfig"], _EVENTS)
        tp = decoded["tokenProcessorConfig"]
        if tp["blockSize"] <= 0:
            raise ConfigError(f"plugin '{name}' (type {cls.type_name}): bad parameter 'tokenProcessorConfig.blockSize'")
        pod_cache = int(decoded["kvBlockIndexConfig"]["inMemoryConfig"].get("podCacheSize", 10))
        return cls(name, TokenProcessor(tp["blockSize"], tp["hashSeed"]), KVBlockIndex(pod_cache), events, handle)

    # --- KV events -------------------------------------------------------------------------------------
    def handle_message(self, topic: str, payload: bytes) -> None:
        """Apply one ZMQ message (topic ``kv@<pod-id>@<model>``, msgpack EventBatch payload)."""
        pod, model = parse_topic(topic)
        self.apply_events(pod, model, payload)

    def apply_events(self, pod: str, model: str, payload: bytes) -> None:
        for event in decode_event_batch(payload):
            if event.kind == "BlockStored":
                self.index.add(model, event.block_hashes, pod)
            elif event.kind == "BlockRemoved":
                self.index.evict(model, event.block_hashes, pod)
            else:
                self.index.clear_pod(pod, model)

    # --- scoring ---------------------------------------------------------------------------------------
    def tokenize(self, model: str, prompt: str) -> list[int]:
        """The prompt's tokens by the tokenizer of the request's target model, loaded by that name as a Hugging
        Face id. Upstream (kv-cache-manager v0.3.1 pool.go) a tokenizer that cannot load fails the task, which is
        re-queued with backoff while ``Tokenize`` waits: the request is never scheduled."""
        if self.tokenizer_for is None:
            raise RuntimeError("precise-prefix-cache-scorer has no tokenizer (PluginHandle.tokenizer_for is unset)")
        tokenizer = self.tokenizer_for(model)  # TokenizerLoadError: the director refuses the request
        return list(tokenizer.encode(prompt) if hasattr(tokenizer, "encode") else tokenizer(prompt))

    def pod_scores(self, request: LLMRequest) -> dict[str, int]:
        keys = self.processor.block_keys(self.tokenize(request.target_model, request.prompt))
        scores = self.index.longest_prefix_scores(request.target_model, keys)
        self.lookups += 1
        self.lookup_hits += bool(scores)
        return scores

    def score(self, state, request: LLMRequest, endpoints: list[Endpoint]) -> dict[Endpoint, float]:
        if not endpoints:
            return {}
        raw = self.pod_scores(request)
        state[f"{self.type_name}/{self.name}"] = raw
        if not raw:
            return dict.fromkeys(endpoints, 0.0)
        lo, hi = min(raw.values()), max(raw.values())
        out = {}
        for ep in endpoints:
            if ep.address not in raw:
                out[ep] = 0.0
            else:
                out[ep] = 1.0 if hi == lo else (raw[ep.address] - lo) / (hi - lo)
        return out
