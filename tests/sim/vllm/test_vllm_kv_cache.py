"""Block pool, hashing, prefix reuse and LRU eviction, against vLLM's rules."""

from __future__ import annotations

import hashlib

import cbor2

from llmd_lab.sim.vllm.kv_cache_manager import KVCacheManager
from llmd_lab.sim.vllm.kv_cache_utils import hash_request_tokens, init_none_hash
from llmd_lab.sim.vllm.kv_events import BlockRemoved, BlockStored, decode_batch
from llmd_lab.sim.vllm.request import Request, SamplingParams

BS = 16


def _req(rid: str, tokens: list[int]) -> Request:
    return Request(rid, tokens, SamplingParams(max_tokens=4), arrival_time=0.0)


def _admit(mgr: KVCacheManager, req: Request) -> int:
    blocks, hit = mgr.get_computed_blocks(req)
    assert mgr.allocate_slots(req, req.num_tokens - hit, hit, blocks) is not None
    req.num_computed_tokens = req.num_tokens
    return hit


def test_block_hash_matches_llm_d_indexer_formula():
    # llm-d kv-cache-manager: init = low64(sha256(cbor(seed))); h_i = low64(sha256(cbor([h_{i-1}, tokens, None])))
    def low64(obj):
        return int.from_bytes(hashlib.sha256(cbor2.dumps(obj, canonical=True)).digest()[-8:], "big")

    root = init_none_hash("42")
    assert root == low64("42")
    tokens = list(range(40))
    hashes = hash_request_tokens(root, BS, tokens)
    assert len(hashes) == 2  # the partial third block is never hashed
    assert hashes[0] == low64([root, tokens[:16], None])
    assert hashes[1] == low64([hashes[0], tokens[16:32], None])


def test_shared_prefix_reuses_full_blocks_only_and_counts_tokens():
    mgr = KVCacheManager(64, BS, none_hash=init_none_hash("0"))
    prefix = list(range(1000, 1040))  # 2.5 blocks
    a = _req("a", [*prefix, 1, 2, 3])
    b = _req("b", [*prefix, 7, 8, 9, 10])
    assert _admit(mgr, a) == 0
    assert _admit(mgr, b) == 32  # two full shared blocks; the half block is recomputed
    assert mgr.req_to_blocks["a"][:2] == mgr.req_to_blocks["b"][:2]
    assert mgr.req_to_blocks["a"][0].ref_cnt == 2
    stats = mgr.prefix_cache_stats
    assert (stats.queries, stats.hits) == (a.num_tokens + b.num_tokens, 32)


def test_fully_cached_prompt_still_recomputes_last_token():
    mgr = KVCacheManager(64, BS, none_hash=1)
    tokens = list(range(32))
    first = _req("a", tokens)
    _admit(mgr, first)
    mgr.free(first)
    assert _admit(mgr, _req("b", tokens)) == 16  # hit capped at num_tokens - 1 -> one block


def test_freed_blocks_stay_cached_until_evicted_in_lru_order():
    mgr = KVCacheManager(7, BS, none_hash=1, enable_kv_cache_events=True)  # 6 usable blocks
    x = _req("x", list(range(100, 132)))  # 2 blocks
    y = _req("y", list(range(200, 232)))  # 2 blocks
    _admit(mgr, x)
    _admit(mgr, y)
    x_blocks = [b.block_id for b in mgr.req_to_blocks["x"]]
    mgr.free(x)
    mgr.free(y)
    assert mgr.usage == 0.0  # cached-but-free counts as free
    # free queue: 2 never-used blocks first, then x's blocks tail-first, then y's tail-first
    order = [b.block_id for b in mgr.block_pool.free_block_queue.get_all_free_blocks()]
    assert order[2:4] == x_blocks[::-1]
    # a cache hit on y takes its blocks out of the free queue; a new request evicts x (LRU), tail first
    assert _admit(mgr, _req("y2", [*list(range(200, 232)), 1])) == 32
    mgr.take_events()
    _admit(mgr, _req("z", list(range(300, 348))))  # 3 blocks: the unused one, then x tail-first
    removed = [e.block_hashes[0] for e in mgr.take_events() if isinstance(e, BlockRemoved)]
    assert removed == [x.block_hashes[1], x.block_hashes[0]]
    assert mgr.get_computed_blocks(_req("x2", [*list(range(100, 132)), 5]))[1] == 0


def test_block_stored_event_carries_chain_and_tokens():
    mgr = KVCacheManager(16, BS, none_hash=1, enable_kv_cache_events=True)
    a = _req("a", list(range(48)))
    _admit(mgr, a)
    stored = [e for e in mgr.take_events() if isinstance(e, BlockStored)]
    assert len(stored) == 1
    ev = stored[0]
    assert ev.block_hashes == a.block_hashes[:3]
    assert ev.parent_block_hash is None
    assert ev.token_ids == a.prompt_token_ids[: len(ev.block_hashes) * BS]
    assert ev.block_size == BS


def test_event_batch_msgpack_layout_round_trips():
    import msgpack

    from llmd_lab.sim.vllm.kv_events import KVEventBatch

    batch = KVEventBatch(1.5, [BlockStored([1, 2], None, list(range(32)), 16), BlockRemoved([3])])
    raw = msgpack.unpackb(batch.encode())
    assert raw[0] == 1.5 and raw[2] is None
    assert raw[1][0][:5] == ["BlockStored", [1, 2], None, list(range(32)), 16]
    assert raw[1][1] == ["BlockRemoved", [3], "GPU"]
    assert decode_batch(batch.encode()).events == batch.events


def test_reset_prefix_cache_only_when_idle():
    mgr = KVCacheManager(16, BS, none_hash=1, enable_kv_cache_events=True)
    a = _req("a", list(range(40)))
    _admit(mgr, a)
    assert not mgr.reset_prefix_cache()
    mgr.free(a)
    assert mgr.reset_prefix_cache()
    assert mgr.get_computed_blocks(_req("b", list(range(40))))[1] == 0
