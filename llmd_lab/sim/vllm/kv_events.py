"""KV-cache events in vLLM's wire format, and the ZMQ publisher that sends them.

vLLM (``vllm/distributed/kv_events.py``) encodes events with msgspec as tagged arrays:
``["BlockStored", block_hashes, parent_block_hash, token_ids, block_size, lora_id, medium]``,
``["BlockRemoved", block_hashes, medium]``, ``["AllBlocksCleared"]``, inside an
``EventBatch = [ts, events, data_parallel_rank]``. Its publisher sends three frames
``[topic, seq (8-byte big-endian), payload]`` and *connects* when the endpoint has no ``*`` (the llm-d EPP binds).
llm-d's kv-cache indexer decodes exactly this, so the simulated EPP can be fed in-process or over ZMQ.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

import msgpack


@dataclass(frozen=True)
class BlockStored:
    block_hashes: list[int]
    parent_block_hash: int | None
    token_ids: list[int]
    block_size: int
    lora_id: int | None = None
    medium: str | None = "GPU"

    def to_wire(self) -> list:
        return [
            "BlockStored",
            self.block_hashes,
            self.parent_block_hash,
            self.token_ids,
            self.block_size,
            self.lora_id,
            self.medium,
        ]


@dataclass(frozen=True)
class BlockRemoved:
    block_hashes: list[int]
    medium: str | None = "GPU"

    def to_wire(self) -> list:
        return ["BlockRemoved", self.block_hashes, self.medium]


@dataclass(frozen=True)
class AllBlocksCleared:
    def to_wire(self) -> list:
        return ["AllBlocksCleared"]


KVCacheEvent = BlockStored | BlockRemoved | AllBlocksCleared


@dataclass
class KVEventBatch:
    """Events of one engine step; ``ts`` is the step's simulated time."""

    ts: float
    events: list[KVCacheEvent] = field(default_factory=list)
    data_parallel_rank: int | None = None

    def encode(self) -> bytes:
        """The msgpack payload vLLM sends."""
        return msgpack.packb([self.ts, [e.to_wire() for e in self.events], self.data_parallel_rank])


KVEventSink = Callable[[KVEventBatch], None]


def decode_batch(payload: bytes) -> KVEventBatch:
    """Parse a msgpack EventBatch (for tests and for in-process subscribers)."""
    ts, raw_events, *rest = msgpack.unpackb(payload)
    events: list[KVCacheEvent] = []
    for raw in raw_events:
        tag = raw[0]
        if tag == "BlockStored":
            events.append(BlockStored(*raw[1:]))
        elif tag == "BlockRemoved":
            events.append(BlockRemoved(*raw[1:]))
        elif tag == "AllBlocksCleared":
            events.append(AllBlocksCleared())
        else:
            raise ValueError(f"unknown KV event tag {tag!r}")
    return KVEventBatch(ts=ts, events=events, data_parallel_rank=rest[0] if rest else None)


@dataclass(frozen=True)
class KVEventsConfig:
    """``--kv-events-config`` (vLLM ``KVEventsConfig``)."""

    enable_kv_cache_events: bool = False
    publisher: str = "null"
    endpoint: str = "tcp://*:5557"
    replay_endpoint: str | None = None
    buffer_steps: int = 10_000
    hwm: int = 100_000
    max_queue_size: int = 100_000
    topic: str = ""

    @classmethod
    def from_cli(cls, text: str) -> KVEventsConfig:
        """Parse the JSON value of ``--kv-events-config``; unknown keys are an error, as in vLLM."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"--kv-events-config is not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise ValueError("--kv-events-config must be a JSON object")
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"--kv-events-config: unknown keys {sorted(unknown)}")
        return cls(**data)


class ZmqEventPublisher:
    """PUB socket sending ``[topic, seq, payload]``; connects unless the endpoint binds (``*``)."""

    def __init__(self, endpoint: str, topic: str, *, hwm: int = 100_000) -> None:
        import zmq

        self._ctx = zmq.Context.instance()
        self._socket = self._ctx.socket(zmq.PUB)
        self._socket.setsockopt(zmq.SNDHWM, hwm)
        self._socket.setsockopt(zmq.LINGER, 0)
        if "*" in endpoint or "::" in endpoint:
            self._socket.bind(endpoint)
        else:
            self._socket.connect(endpoint)
        self.endpoint = endpoint
        self.topic = topic
        self._seq = 0
        self._zmq = zmq

    def publish(self, batch: KVEventBatch) -> None:
        """Send one batch without blocking; a full queue drops it (vLLM's publisher also drops)."""
        frames = [self.topic.encode(), self._seq.to_bytes(8, "big"), batch.encode()]
        self._seq += 1
        try:
            self._socket.send_multipart(frames, flags=self._zmq.NOBLOCK)
        except self._zmq.Again:
            pass

    def close(self) -> None:
        self._socket.close(linger=0)
