"""The approximate ``prefix-cache-scorer`` (GIE v1.0.0 ``plugins/multi/prefix``).

It never sees the model servers' caches: it hashes the flattened prompt's *characters* in 64-byte
blocks (the model name mixed into the first), remembers which pod it sent each prefix to, and scores
pods by how many leading blocks they were credited with. That guess is what "approximate" means.
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import xxhash

from llmd_lab.sim.epp.plugins.base import PluginHandle, PreRequest, Scorer, decode_parameters, register
from llmd_lab.sim.epp.types import Endpoint, LLMRequest, SchedulingResult

DEFAULT_HASH_BLOCK_SIZE = 64


def hash_prompt(model: str, prompt: str, block_size: int, max_blocks: int) -> list[int]:
    """Chained xxhash64 over full ``block_size``-byte blocks; none if the prompt is shorter than one."""
    data = prompt.encode()
    if len(data) < block_size:
        return []
    data = data[: max_blocks * block_size]
    hashes = [xxhash.xxh64_intdigest(model.encode() + data[:block_size])]
    for start in range(block_size, len(data) - block_size + 1, block_size):
        hashes.append(xxhash.xxh64_intdigest(data[start : start + block_size] + struct.pack("<Q", hashes[-1])))
    return hashes


class PrefixIndexer:
    """hash → servers, with an LRU of ``capacity`` hashes per server whose evictions unlink the hash."""

    def __init__(self, capacity_per_server: int) -> None:
        self.capacity = capacity_per_server
        self.hash_to_servers: dict[int, set[str]] = {}
        self.lru: dict[str, OrderedDict[int, None]] = {}

    def add(self, hashes: list[int], server: str) -> None:
        lru = self.lru.setdefault(server, OrderedDict())
        for h in hashes:
            if h in lru:
                lru.move_to_end(h)
            else:
                lru[h] = None
                self.hash_to_servers.setdefault(h, set()).add(server)
                if len(lru) > self.capacity:
                    old, _ = lru.popitem(last=False)
                    holders = self.hash_to_servers.get(old)
                    if holders is not None:
                        holders.discard(server)
                        if not holders:
                            del self.hash_to_servers[old]

    def get(self, h: int) -> set[str]:
        return self.hash_to_servers.get(h, set())

    def remove_server(self, server: str) -> None:
        for h in self.lru.pop(server, OrderedDict()):
            holders = self.hash_to_servers.get(h)
            if holders is not None:
                holders.discard(server)
                if not holders:
                    del self.hash_to_servers[h]

    def size(self) -> int:
        return sum(len(lru) for lru in self.lru.values())


@dataclass
class PrefixState:
    """Written to the cycle state under ``prefix-cache-scorer/<name>`` (the P/D handler reads it)."""

    hashes: list[int]
    cache_servers: dict[str, int] = field(default_factory=dict)


@register("prefix-cache-scorer")
class PrefixCacheScorer(Scorer, PreRequest):
    """Score = leading blocks credited to the pod ÷ blocks in the prompt; credit the primary pick."""

    PARAMS: ClassVar[dict[str, tuple[str, Any]]] = {
        "hashBlockSize": ("int", DEFAULT_HASH_BLOCK_SIZE),
        "maxPrefixBlocksToMatch": ("int", 256),
        "lruCapacityPerServer": ("int", 31250),
    }

    def __init__(self, name: str, block_size: int, max_blocks: int, capacity: int, handle: PluginHandle) -> None:
        super().__init__(name)
        self.block_size = block_size
        self.max_blocks = max_blocks
        self.indexer = PrefixIndexer(capacity)
        self.observer = handle.observer
        self._pending: OrderedDict[str, PrefixState] = OrderedDict()

    @classmethod
    def from_parameters(cls, name: str, params: Mapping[str, Any], handle: PluginHandle) -> PrefixCacheScorer:
        p = decode_parameters(name, cls.type_name, params, cls.PARAMS)
        block = p["hashBlockSize"] if p["hashBlockSize"] > 0 else DEFAULT_HASH_BLOCK_SIZE
        max_blocks = p["maxPrefixBlocksToMatch"] if p["maxPrefixBlocksToMatch"] > 0 else 256
        capacity = p["lruCapacityPerServer"] if p["lruCapacityPerServer"] > 0 else 31250
        return cls(name, block, max_blocks, capacity, handle)

    @property
    def state_key(self) -> str:
        return f"{self.type_name}/{self.name}"

    def match(self, hashes: list[int]) -> dict[str, int]:
        counts: dict[str, int] = {}
        for h in hashes:
            servers = self.indexer.get(h)
            if not servers:
                break
            for server in servers:
                counts[server] = counts.get(server, 0) + 1
        return counts

    def score(self, state, request: LLMRequest, endpoints: list[Endpoint]) -> dict[Endpoint, float]:
        hashes = hash_prompt(request.target_model, request.prompt, self.block_size, self.max_blocks)
        prefix_state = PrefixState(hashes, self.match(hashes))
        state[self.state_key] = prefix_state
        self._pending[request.request_id] = prefix_state
        while len(self._pending) > 10_000:   # requests that never reached PreRequest
            self._pending.popitem(last=False)
        total = len(hashes)
        return {ep: (prefix_state.cache_servers.get(ep.namespaced_name, 0) / total if total else 0.0)
                for ep in endpoints}

    def pre_request(self, request: LLMRequest, result: SchedulingResult, target_port: int) -> dict[str, str | None]:
        prefix_state = self._pending.pop(request.request_id, None)
        primary = result.profile_results.get(result.primary_profile_name)
        if prefix_state is None or primary is None or not primary.target_endpoints:
            return {}
        server = primary.target_endpoints[0].namespaced_name
        self.indexer.add(prefix_state.hashes, server)
        if self.observer is not None and prefix_state.hashes:
            matched = prefix_state.cache_servers.get(server, 0)
            self.observer.record_prefix_match(matched * self.block_size, len(prefix_state.hashes) * self.block_size)
        return {}
