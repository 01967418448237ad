"""The pool of KV-cache blocks with automatic prefix caching (vLLM ``vllm/v1/core/block_pool.py``).

Data structures, as in vLLM: ``blocks`` (all physical blocks; block 0 is the null placeholder and is never
handed out), ``free_block_queue`` (free blocks in eviction order; free blocks that still carry a hash are the
reusable prefix cache), ``cached_block_hash_to_block`` (hash → blocks holding those tokens). A block stays
findable by its hash until it is reallocated for something else: that is the LRU eviction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from llmd_lab.sim.vllm.kv_cache_utils import BlockHash, FreeKVCacheBlockQueue, KVCacheBlock
from llmd_lab.sim.vllm.kv_events import AllBlocksCleared, BlockRemoved, BlockStored, KVCacheEvent


class BlockPool:
    """Allocates, frees, caches and evicts KV-cache blocks; records KV events when asked to."""

    def __init__(
        self, num_gpu_blocks: int, enable_caching: bool, enable_kv_cache_events: bool = False
    ) -> None:
        if num_gpu_blocks < 2:
            raise ValueError(
                f"num_gpu_blocks must be at least 2 (one is the null block), got {num_gpu_blocks}"
            )
        self.num_gpu_blocks = num_gpu_blocks
        self.enable_caching = enable_caching
        self.enable_kv_cache_events = enable_kv_cache_events
        self.blocks = [KVCacheBlock(i) for i in range(num_gpu_blocks)]
        self.free_block_queue = FreeKVCacheBlockQueue(self.blocks)
        self.cached_block_hash_to_block: dict[BlockHash, dict[int, KVCacheBlock]] = {}
        self.null_block = self.free_block_queue.popleft()
        self.null_block.is_null = True
        self.kv_event_queue: list[KVCacheEvent] = []

    def get_cached_block(self, block_hash: BlockHash) -> KVCacheBlock | None:
        """A block holding the tokens with this hash, if one is still cached."""
        found = self.cached_block_hash_to_block.get(block_hash)
        return next(iter(found.values())) if found else None

    def cache_full_blocks(
        self,
        blocks: Sequence[KVCacheBlock],
        block_hashes: Sequence[BlockHash],
        num_cached_blocks: int,
        num_full_blocks: int,
        block_size: int,
        token_ids: Sequence[int],
    ) -> None:
        """Give blocks ``num_cached_blocks..num_full_blocks-1`` of a request their hashes and index them."""
        if num_cached_blocks >= num_full_blocks:
            return
        new_hashes: list[int] = []
        for i in range(num_cached_blocks, num_full_blocks):
            block = blocks[i]
            if block.block_hash is not None:  # shared block that another request already cached
                continue
            block.block_hash = block_hashes[i]
            self.cached_block_hash_to_block.setdefault(block_hashes[i], {})[block.block_id] = block
            new_hashes.append(block_hashes[i])
        if self.enable_kv_cache_events and new_hashes:
            self.kv_event_queue.append(
                BlockStored(
                    block_hashes=list(block_hashes[num_cached_blocks:num_full_blocks]),
                    parent_block_hash=block_hashes[num_cached_blocks - 1] if num_cached_blocks else None,
                    token_ids=list(token_ids[num_cached_blocks * block_size : num_full_blocks * block_size]),
                    block_size=block_size,
                )
            )

    def get_new_blocks(self, num_blocks: int) -> list[KVCacheBlock]:
        """Take ``num_blocks`` from the head of the free queue, evicting their cached contents."""
        if num_blocks > self.get_num_free_blocks():
            raise ValueError(f"cannot get {num_blocks} free blocks from the pool")
        out = self.free_block_queue.popleft_n(num_blocks)
        for block in out:
            if self.enable_caching:
                self._maybe_evict_cached_block(block)
            block.ref_cnt += 1
        return out

    def _maybe_evict_cached_block(self, block: KVCacheBlock) -> bool:
        block_hash = block.block_hash
        if block_hash is None:
            return False
        holders = self.cached_block_hash_to_block.get(block_hash)
        if holders is not None:
            holders.pop(block.block_id, None)
            if not holders:
                del self.cached_block_hash_to_block[block_hash]
        block.reset_hash()
        if self.enable_kv_cache_events:
            self.kv_event_queue.append(BlockRemoved(block_hashes=[block_hash]))
        return True

    def touch(self, blocks: Iterable[KVCacheBlock]) -> None:
        """Take a reference on cache-hit blocks; free ones leave the free queue (no longer evictable)."""
        for block in blocks:
            if block.ref_cnt == 0 and not block.is_null:
                self.free_block_queue.remove(block)
            block.ref_cnt += 1

    def free_blocks(self, ordered_blocks: Iterable[KVCacheBlock]) -> None:
        """Drop a reference on each block; those no longer used go to the tail of the free queue, in order."""
        for block in ordered_blocks:
            block.ref_cnt -= 1
            if block.ref_cnt < 0:
                raise RuntimeError(f"block {block.block_id} freed more often than allocated")
            if block.ref_cnt == 0 and not block.is_null:
                self.free_block_queue.append(block)

    def reset_prefix_cache(self) -> bool:
        """Forget every cached hash; only possible when no request holds blocks (vLLM's rule)."""
        if self.get_num_free_blocks() != self.num_gpu_blocks - 1:
            return False
        self.cached_block_hash_to_block.clear()
        for block in self.blocks:
            block.reset_hash()
        if self.enable_kv_cache_events:
            self.kv_event_queue.append(AllBlocksCleared())
        return True

    def get_num_free_blocks(self) -> int:
        return self.free_block_queue.num_free_blocks

    def get_usage(self) -> float:
        """Fraction of usable blocks held by requests (cached-but-free blocks count as free, as in vLLM)."""
        total = self.num_gpu_blocks - 1
        return 1.0 - self.get_num_free_blocks() / total

    def take_events(self) -> list[KVCacheEvent]:
        events, self.kv_event_queue = self.kv_event_queue, []
        return events
