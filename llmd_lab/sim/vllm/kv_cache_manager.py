"""Per-request view of the block pool (vLLM ``vllm/v1/core/kv_cache_manager.py``).

The scheduler asks two questions: :meth:`KVCacheManager.get_computed_blocks` (how much of this prompt is
already in the cache?) and :meth:`KVCacheManager.allocate_slots` (give me room for N more tokens, or say no,
so that I can preempt). Two vLLM rules worth knowing: only full blocks are ever cached, and a prompt that is
entirely cached still recomputes its last token (the model needs logits to sample from), so the hit length is
capped at ``num_tokens - 1``.
"""

from __future__ import annotations

from collections.abc import Sequence

from llmd_lab.sim.vllm.block_pool import BlockPool
from llmd_lab.sim.vllm.kv_cache_utils import (
    BlockHash,
    KVCacheBlock,
    PrefixCacheStats,
    hash_block_tokens,
)
from llmd_lab.sim.vllm.kv_events import KVCacheEvent
from llmd_lab.sim.vllm.request import Request


def cdiv(a: int, b: int) -> int:
    return -(-a // b)


class KVCacheManager:
    """Allocates blocks to requests, finds cached prefixes, frees blocks in eviction order."""

    def __init__(
        self,
        num_gpu_blocks: int,
        block_size: int,
        *,
        enable_caching: bool = True,
        none_hash: BlockHash = 0,
        enable_kv_cache_events: bool = False,
    ) -> None:
        self.block_size = block_size
        self.enable_caching = enable_caching
        self.none_hash = none_hash
        self.block_pool = BlockPool(num_gpu_blocks, enable_caching, enable_kv_cache_events)
        self.req_to_blocks: dict[str, list[KVCacheBlock]] = {}
        self.num_cached_block: dict[str, int] = {}
        self.prefix_cache_stats = PrefixCacheStats()

    @property
    def usage(self) -> float:
        """KV-cache usage 0..1 (``vllm:kv_cache_usage_perc``)."""
        return self.block_pool.get_usage()

    def _update_block_hashes(self, request: Request) -> list[BlockHash]:
        """Extend ``request.block_hashes`` to cover every full block of its tokens (prompt + output)."""
        hashes = request.block_hashes
        num_full = request.num_tokens // self.block_size
        if len(hashes) < num_full:
            tokens = request.all_token_ids
            parent = hashes[-1] if hashes else self.none_hash
            for i in range(len(hashes), num_full):
                extra = (request.cache_salt,) if i == 0 and request.cache_salt else None
                parent = hash_block_tokens(
                    parent, tokens[i * self.block_size : (i + 1) * self.block_size], extra
                )
                hashes.append(parent)
        return hashes

    def get_computed_blocks(self, request: Request) -> tuple[list[KVCacheBlock], int]:
        """The longest cached prefix of ``request`` as (blocks, number of tokens), and count the lookup."""
        if not self.enable_caching:
            return [], 0
        hashes = self._update_block_hashes(request)
        max_cache_hit_length = request.num_tokens - 1
        blocks: list[KVCacheBlock] = []
        for block_hash in hashes[: max_cache_hit_length // self.block_size]:
            block = self.block_pool.get_cached_block(block_hash)
            if block is None:
                break
            blocks.append(block)
        num_computed_tokens = len(blocks) * self.block_size
        self.prefix_cache_stats.record(request.num_tokens, num_computed_tokens, request.num_preemptions > 0)
        return blocks, num_computed_tokens

    def allocate_slots(
        self,
        request: Request,
        num_new_tokens: int,
        num_new_computed_tokens: int = 0,
        new_computed_blocks: Sequence[KVCacheBlock] = (),
    ) -> list[KVCacheBlock] | None:
        """Make room for ``num_new_tokens`` more tokens of ``request``; ``None`` if the pool is too full.

        ``new_computed_blocks`` are prefix-cache hits found by :meth:`get_computed_blocks` for a request being
        scheduled for the first time; they are taken (touched) here, not there, so a refusal changes nothing.
        """
        if num_new_tokens <= 0:
            raise ValueError("num_new_tokens must be positive")
        num_computed_tokens = request.num_computed_tokens + num_new_computed_tokens
        num_required_blocks = cdiv(num_computed_tokens + num_new_tokens, self.block_size)
        req_blocks = self.req_to_blocks.setdefault(request.request_id, [])
        num_new_blocks = num_required_blocks - len(req_blocks) - len(new_computed_blocks)
        # hit blocks that sit in the free queue are not free for this request: it is about to take them
        num_evictable_computed_blocks = sum(1 for b in new_computed_blocks if b.ref_cnt == 0)
        if num_new_blocks > self.block_pool.get_num_free_blocks() - num_evictable_computed_blocks:
            if not req_blocks:
                del self.req_to_blocks[request.request_id]
            return None
        if new_computed_blocks:
            self.block_pool.touch(new_computed_blocks)
            req_blocks.extend(new_computed_blocks)
            self.num_cached_block[request.request_id] = len(req_blocks)
        new_blocks = self.block_pool.get_new_blocks(num_new_blocks) if num_new_blocks > 0 else []
        req_blocks.extend(new_blocks)
        if self.enable_caching:
            num_tokens_to_cache = min(num_computed_tokens + num_new_tokens, request.num_tokens)
            num_full_blocks = num_tokens_to_cache // self.block_size
            num_cached = self.num_cached_block.get(request.request_id, 0)
            if num_full_blocks > num_cached:
                hashes = self._update_block_hashes(request)
                self.block_pool.cache_full_blocks(
                    req_blocks, hashes, num_cached, num_full_blocks, self.block_size, request.all_token_ids
                )
                self.num_cached_block[request.request_id] = num_full_blocks
        return new_blocks

    def cache_blocks(self, request: Request, num_computed_tokens: int) -> None:
        """Cache blocks that became full when generated tokens were appended to ``request``."""
        if not self.enable_caching or request.request_id not in self.req_to_blocks:
            return
        num_full_blocks = min(num_computed_tokens, request.num_tokens) // self.block_size
        num_cached = self.num_cached_block.get(request.request_id, 0)
        if num_full_blocks > num_cached:
            hashes = self._update_block_hashes(request)
            self.block_pool.cache_full_blocks(
                self.req_to_blocks[request.request_id],
                hashes,
                num_cached,
                num_full_blocks,
                self.block_size,
                request.all_token_ids,
            )
            self.num_cached_block[request.request_id] = num_full_blocks

    def free(self, request: Request) -> None:
        """Release a request's blocks, tail first, so its unshared tail is evicted before its prefix."""
        blocks = self.req_to_blocks.pop(request.request_id, [])
        self.num_cached_block.pop(request.request_id, None)
        self.block_pool.free_blocks(reversed(blocks))

    def get_block_ids(self, request_id: str) -> list[int]:
        return [b.block_id for b in self.req_to_blocks.get(request_id, [])]

    def reset_prefix_cache(self) -> bool:
        return self.block_pool.reset_prefix_cache()

    def take_events(self) -> list[KVCacheEvent]:
        return self.block_pool.take_events()
