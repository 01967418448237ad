"""KV block index fed by vLLM KV-cache events (after llm-d-kv-cache-manager v0.3.1).

Block keys are vLLM's ``sha256_cbor_64bit`` chain over *token* blocks: ``h_i = low64(sha256(
CBOR([h_{i-1}, tokens_i, None])))`` starting from ``low64(sha256(CBOR(hash_seed)))``. The engines
publish the hashes of the blocks they store and evict; the index remembers which pod holds which
block, and a lookup walks the request's keys for the longest prefix each pod holds.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import cbor2
import msgpack


def _low64(data: bytes) -> int:
    return int.from_bytes(hashlib.sha256(data).digest()[24:32], "big")


class TokenProcessor:
    """Token ids → block keys, exactly as the engine hashes its full blocks (partial blocks dropped)."""

    def __init__(self, block_size: int = 16, hash_seed: str = "") -> None:
        self.block_size = block_size
        self.hash_seed = hash_seed
        self.init_hash = _low64(cbor2.dumps(hash_seed, canonical=True))

    def block_keys(self, tokens: Sequence[int]) -> list[int]:
        keys, parent = [], self.init_hash
        for start in range(0, len(tokens) - self.block_size + 1, self.block_size):
            chunk = [int(t) for t in tokens[start : start + self.block_size]]
            parent = _low64(cbor2.dumps([parent, chunk, None], canonical=True))
            keys.append(parent)
        return keys


class KVBlockIndex:
    """(model, block hash) → pods holding it. ``pod_cache_size`` bounds pods remembered per key."""

    def __init__(self, pod_cache_size: int = 10) -> None:
        self.pod_cache_size = pod_cache_size
        self.blocks: dict[tuple[str, int], dict[str, None]] = {}
        self.admissions = 0
        self.evictions = 0

    def add(self, model: str, hashes: Iterable[int], pod: str) -> None:
        for h in hashes:
            pods = self.blocks.setdefault((model, int(h)), {})
            pods.pop(pod, None)
            pods[pod] = None
            if len(pods) > self.pod_cache_size:
                pods.pop(next(iter(pods)))
            self.admissions += 1

    def evict(self, model: str, hashes: Iterable[int], pod: str) -> None:
        for h in hashes:
            pods = self.blocks.get((model, int(h)))
            if pods is not None and pod in pods:
                del pods[pod]
                self.evictions += 1
                if not pods:
                    del self.blocks[(model, int(h))]

    def clear_pod(self, pod: str, model: str | None = None) -> None:
        for key in [k for k, pods in self.blocks.items() if pod in pods and (model is None or k[0] == model)]:
            self.evict(key[0], [key[1]], pod)

    def longest_prefix_scores(self, model: str, keys: Sequence[int]) -> dict[str, int]:
        """Pods holding key[0] score 1, +1 per following key while they still hold it."""
        if not keys:
            return {}
        first = self.blocks.get((model, keys[0]))
        if not first:
            return {}
        active = set(first)
        scores = dict.fromkeys(active, 1)
        for key in keys[1:]:
            active &= set(self.blocks.get((model, key), ()))
            if not active:
                break
            for pod in active:
                scores[pod] += 1
        return scores


@dataclass
class KVEvent:
    kind: str               # BlockStored | BlockRemoved | AllBlocksCleared
    block_hashes: list[int]


def decode_event_batch(payload: bytes) -> list[KVEvent]:
    """Decode vLLM's msgpack ``EventBatch`` (``[ts, [event…], dp_rank?]``, events as tagged arrays)."""
    batch = msgpack.unpackb(payload, raw=False, strict_map_key=False)
    if not isinstance(batch, list | tuple) or len(batch) < 2:
        raise ValueError("KV event batch must be an array [ts, events, data_parallel_rank?]")
    out = []
    for raw in batch[1]:
        tag = raw[0]
        if tag == "BlockStored":
            out.append(KVEvent(tag, [_as_int(h) for h in raw[1]]))
        elif tag == "BlockRemoved":
            out.append(KVEvent(tag, [_as_int(h) for h in raw[1]]))
        elif tag == "AllBlocksCleared":
            out.append(KVEvent(tag, []))
        else:
            raise ValueError(f"unknown KV event tag {tag!r}")
    return out


def _as_int(h: object) -> int:
    # vLLM ≥0.11 may send 32-byte hashes; the 64-bit index key is their low 8 bytes.
    if isinstance(h, bytes | bytearray):
        return int.from_bytes(bytes(h)[-8:], "big")
    return int(h)  # type: ignore[call-overload]


def parse_topic(topic: str) -> tuple[str, str]:
    """``kv@<pod-id>@<model>`` → (pod id, model)."""
    parts = topic.split("@", 2)
    if len(parts) != 3 or parts[0] != "kv":
        raise ValueError(f"KV event topic {topic!r} is not kv@<pod-id>@<model>")
    return parts[1], parts[2]
