"""KV-cache building blocks, named after vLLM's ``vllm/v1/core/kv_cache_utils.py``.

* :class:`KVCacheBlock` — one physical block: id, reference count, the hash of its tokens once full.
* :class:`FreeKVCacheBlockQueue` — the free blocks in eviction order as an intrusive doubly linked list, so a
  cache hit can take a block out of the middle in O(1) (a ``deque`` cannot).
* Block hashing: each full block's hash chains its parent's, ``sha256(CBOR([parent, tokens, extra]))``
  truncated to its low 64 bits (vLLM's ``sha256_cbor_64bit``; llm-d's kv-cache indexer computes the same keys,
  which is what lets the precise prefix scorer match). The root parent (``NONE_HASH``) comes from
  ``PYTHONHASHSEED`` exactly as vLLM derives it; unset, vLLM uses a random root, so two replicas never share
  hashes — we draw it from the engine's seed instead so runs stay reproducible.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

import cbor2

BlockHash = int


def sha256_cbor_64bit(obj: object) -> int:
    """Low 64 bits (big-endian tail) of sha256 over the canonical CBOR encoding of ``obj``."""
    digest = hashlib.sha256(cbor2.dumps(obj, canonical=True)).digest()
    return int.from_bytes(digest[24:32], "big")


def init_none_hash(python_hash_seed: str | None, *, seed: int = 0) -> BlockHash:
    """The parent hash of a request's first block: from ``PYTHONHASHSEED`` if set, else from ``seed``."""
    if python_hash_seed is None:
        return random.Random(f"none-hash-{seed}").getrandbits(64)
    return sha256_cbor_64bit(python_hash_seed)


def hash_block_tokens(
    parent_block_hash: BlockHash, block_token_ids: Sequence[int], extra_keys: tuple | None = None
) -> BlockHash:
    """Hash of one full block, chained to its parent's (vLLM ``hash_block_tokens``)."""
    return sha256_cbor_64bit(
        [parent_block_hash, list(block_token_ids), list(extra_keys) if extra_keys else None]
    )


def hash_request_tokens(
    none_hash: BlockHash, block_size: int, token_ids: Sequence[int], extra_keys: tuple | None = None
) -> list[BlockHash]:
    """Hashes of every full block of ``token_ids`` (partial tail blocks are never hashed or cached).

    ``extra_keys`` (e.g. a ``cache_salt``) is mixed into the first block only, as vLLM does for salts.
    """
    hashes: list[BlockHash] = []
    parent = none_hash
    for start in range(0, len(token_ids) - block_size + 1, block_size):
        parent = hash_block_tokens(
            parent, token_ids[start : start + block_size], extra_keys if start == 0 else None
        )
        hashes.append(parent)
    return hashes


@dataclass(eq=False)
class KVCacheBlock:
    """One KV-cache block. ``block_hash`` is set once the block is full and cached."""

    block_id: int
    ref_cnt: int = 0
    block_hash: BlockHash | None = None
    is_null: bool = False
    prev_free_block: KVCacheBlock | None = field(default=None, repr=False)
    next_free_block: KVCacheBlock | None = field(default=None, repr=False)

    def reset_hash(self) -> None:
        self.block_hash = None


class FreeKVCacheBlockQueue:
    """Free blocks as a doubly linked list in eviction order (LRU first).

    The head is evicted first. Freed blocks are appended at the tail; the KV cache manager frees a request's
    blocks in reverse order so that, among blocks freed together, the tail of a sequence (least likely to be
    shared) is evicted before its prefix. A cache hit removes a block from wherever it sits.
    """

    def __init__(self, blocks: list[KVCacheBlock]) -> None:
        self.num_free_blocks = len(blocks)
        self._head = KVCacheBlock(-1)
        self._tail = KVCacheBlock(-1)
        prev = self._head
        for block in blocks:
            prev.next_free_block = block
            block.prev_free_block = prev
            prev = block
        prev.next_free_block = self._tail
        self._tail.prev_free_block = prev

    def popleft(self) -> KVCacheBlock:
        """Take the block to evict next."""
        block = self._head.next_free_block
        if block is None or block is self._tail:
            raise ValueError("no free blocks left")
        self.remove(block)
        return block

    def popleft_n(self, n: int) -> list[KVCacheBlock]:
        """Take the ``n`` blocks to evict next."""
        return [self.popleft() for _ in range(n)]

    def remove(self, block: KVCacheBlock) -> None:
        """Take ``block`` out of the queue (a cache hit on a free block)."""
        prev, nxt = block.prev_free_block, block.next_free_block
        if prev is None or nxt is None:
            raise RuntimeError(f"block {block.block_id} is not in the free queue")
        prev.next_free_block = nxt
        nxt.prev_free_block = prev
        block.prev_free_block = block.next_free_block = None
        self.num_free_blocks -= 1

    def append(self, block: KVCacheBlock) -> None:
        """Put ``block`` at the tail (evicted last)."""
        last = self._tail.prev_free_block
        assert last is not None
        last.next_free_block = block
        block.prev_free_block = last
        block.next_free_block = self._tail
        self._tail.prev_free_block = block
        self.num_free_blocks += 1

    def append_n(self, blocks: Sequence[KVCacheBlock]) -> None:
        for block in blocks:
            self.append(block)

    def get_all_free_blocks(self) -> list[KVCacheBlock]:
        """The free blocks, head (next evicted) first."""
        out = []
        block = self._head.next_free_block
        while block is not None and block is not self._tail:
            out.append(block)
            block = block.next_free_block
        return out


@dataclass
class PrefixCacheStats:
    """Prefix-cache lookups in tokens (vLLM counts queries = prompt tokens, hits = tokens found cached).

    Lookups made again for a preempted request are counted apart, as vLLM does, so that recomputation does
    not inflate the hit rate.
    """

    requests: int = 0
    queries: int = 0
    hits: int = 0
    preempted_requests: int = 0
    preempted_queries: int = 0
    preempted_hits: int = 0

    def record(self, num_tokens: int, num_hits: int, preempted: bool) -> None:
        if preempted:
            self.preempted_requests += 1
            self.preempted_queries += num_tokens
            self.preempted_hits += num_hits
        else:
            self.requests += 1
            self.queries += num_tokens
            self.hits += num_hits
