"""Every plugin's formula against hand-computed cases, including ties and empty candidate sets."""

from __future__ import annotations

import base64
import hashlib
import random
import struct

import cbor2
import msgpack
import pytest
import xxhash
from epp_helpers import ep, req

from llmd_lab.sim.epp.config import load_config
from llmd_lab.sim.epp.configs import HEAD
from llmd_lab.sim.epp.plugins import REGISTRY, PluginHandle
from llmd_lab.sim.epp.types import (
    CycleState,
    ProfileRunResult,
    SchedulingError,
    SchedulingResult,
    ScoredEndpoint,
)


def make(type_name, params=None, handle=None, name=None):
    return REGISTRY[type_name](name or type_name, params or {}, handle or PluginHandle(rng=random.Random(1)))


def by_name(scores):
    return {e.name: round(v, 6) for e, v in scores.items()}


def result_for(*endpoints, profile="default"):
    return SchedulingResult({profile: ProfileRunResult(list(endpoints))}, profile)


# --- queue / kv / load-aware ---------------------------------------------------------------------------

def test_queue_scorer_min_max_and_ties():
    s = make("queue-scorer")
    assert by_name(s.score(CycleState(), req(), [ep("p0", queue=0), ep("p1", queue=5), ep("p2", queue=10)])) == {
        "p0": 1.0, "p1": 0.5, "p2": 0.0}
    assert by_name(s.score(CycleState(), req(), [ep("p0", queue=3), ep("p1", queue=3)])) == {"p0": 1.0, "p1": 1.0}
    assert s.score(CycleState(), req(), []) == {}


def test_kv_cache_utilization_scorer():
    s = make("kv-cache-utilization-scorer")
    assert by_name(s.score(CycleState(), req(), [ep("p0", kv=0.25), ep("p1", kv=1.0)])) == {"p0": 0.75, "p1": 0.0}


def test_load_aware_scorer_tops_out_at_half():
    s = make("load-aware-scorer")
    assert by_name(s.score(CycleState(), req(), [ep("p0"), ep("p1", queue=64), ep("p2", queue=500)])) == {
        "p0": 0.5, "p1": 0.25, "p2": 0.0}
    s10 = make("load-aware-scorer", {"threshold": 10})
    assert by_name(s10.score(CycleState(), req(), [ep("p1", queue=5)])) == {"p1": 0.25}
    assert make("load-aware-scorer", {"threshold": -1}).threshold == 128


# --- active-request / session-affinity ------------------------------------------------------------------

def test_active_request_scorer_global_max_release_and_ttl():
    now = [100.0]
    s = make("active-request-scorer", {"requestTimeout": "30s"}, PluginHandle(clock=lambda: now[0]))
    a, b, c = ep("p0"), ep("p1"), ep("p2")
    for rid, pod in [("r1", a), ("r2", a), ("r3", b)]:
        s.pre_request(req(rid=rid), result_for(pod), 8000)
    assert by_name(s.score(CycleState(), req(), [a, b, c])) == {"p0": 0.0, "p1": 0.5, "p2": 1.0}
    # the max is global: scoring only b and c still divides by a's count
    assert by_name(s.score(CycleState(), req(), [b, c])) == {"p1": 0.5, "p2": 1.0}
    s.post_response(req(rid="r1"), a, {})
    assert by_name(s.score(CycleState(), req(), [a, b])) == {"p0": 0.0, "p1": 0.0}
    now[0] += 31  # TTL expiry releases the rest
    assert by_name(s.score(CycleState(), req(), [a, b])) == {"p0": 1.0, "p1": 1.0}


def test_session_affinity_scorer_and_token_header():
    s = make("session-affinity-scorer")
    a, b = ep("p0"), ep("p1")
    token = base64.b64encode(b"ns/p1").decode()
    assert by_name(s.score(CycleState(), req(headers={"x-session-token": token}), [a, b])) == {"p0": 0.0, "p1": 1.0}
    assert by_name(s.score(CycleState(), req(headers={"x-session-token": "%%%"}), [a, b])) == {"p0": 0.0, "p1": 0.0}
    assert s.post_response(req(), a, {}) == {"x-session-token": base64.b64encode(b"ns/p0").decode()}


# --- approximate prefix ---------------------------------------------------------------------------------

def test_prefix_hashes_match_hand_computed_chain():
    from llmd_lab.sim.epp.plugins.prefix import hash_prompt
    prompt = "a" * 64 + "b" * 64 + "c" * 10
    h0 = xxhash.xxh64_intdigest(b"m" + b"a" * 64)
    h1 = xxhash.xxh64_intdigest(b"b" * 64 + struct.pack("<Q", h0))
    assert hash_prompt("m", prompt, 64, 256) == [h0, h1]
    assert hash_prompt("m", "short", 64, 256) == []
    assert len(hash_prompt("m", "x" * 64 * 10, 64, 3)) == 3


def test_prefix_scorer_credits_primary_pick_and_scores_fraction():
    s = make("prefix-cache-scorer")
    a, b = ep("p0"), ep("p1")
    first = "A" * 64 + "B" * 64 + "C" * 64
    state = CycleState()
    assert by_name(s.score(state, req(first, rid="r1"), [a, b])) == {"p0": 0.0, "p1": 0.0}
    s.pre_request(req(first, rid="r1"), result_for(a), 8000)
    second = "A" * 64 + "B" * 64 + "D" * 64
    state = CycleState()
    assert by_name(s.score(state, req(second, rid="r2"), [a, b])) == {"p0": round(2 / 3, 6), "p1": 0.0}
    assert state["prefix-cache-scorer/prefix-cache-scorer"].cache_servers == {"ns/p0": 2}
    # another model never matches: the model name is in the first hash
    assert by_name(s.score(CycleState(), req(first, model="other", rid="r3"), [a])) == {"p0": 0.0}
    # shorter than one block: no hashes, every pod 0
    assert by_name(s.score(CycleState(), req("hi", rid="r4"), [a, b])) == {"p0": 0.0, "p1": 0.0}


def test_prefix_scorer_lru_evicts_oldest_hash_and_greedy_match_stops():
    s = make("prefix-cache-scorer", {"lruCapacityPerServer": 2})
    a = ep("p0")
    prompt = "A" * 64 + "B" * 64 + "C" * 64
    s.score(CycleState(), req(prompt, rid="r1"), [a])
    s.pre_request(req(prompt, rid="r1"), result_for(a), 8000)
    assert s.indexer.size() == 2
    # the first block was evicted, so matching stops at once even though blocks 2 and 3 are known
    assert by_name(s.score(CycleState(), req(prompt, rid="r2"), [a])) == {"p0": 0.0}


# --- pickers --------------------------------------------------------------------------------------------

def test_max_score_picker_best_wins_and_ties_are_uniform():
    p = make("max-score-picker")
    a, b, c = ep("p0"), ep("p1"), ep("p2")
    picked, why = p.pick(CycleState(), [ScoredEndpoint(a, 1.0), ScoredEndpoint(b, 3.0), ScoredEndpoint(c, 2.0)])
    assert picked == [b] and "3" in why
    counts = {"p0": 0, "p1": 0}
    for _ in range(2000):
        picked, why = p.pick(CycleState(), [ScoredEndpoint(a, 2.0), ScoredEndpoint(b, 2.0), ScoredEndpoint(c, 1.0)])
        counts[picked[0].name] += 1
    assert 850 < counts["p0"] < 1150 and counts["p0"] + counts["p1"] == 2000
    assert "broken at random" in why
    assert p.pick(CycleState(), []) == ([], "no candidates")
    two = make("max-score-picker", {"maxNumOfEndpoints": 2})
    picked, _ = two.pick(CycleState(), [ScoredEndpoint(a, 1.0), ScoredEndpoint(b, 3.0), ScoredEndpoint(c, 2.0)])
    assert picked == [b, c]


def test_random_and_weighted_random_pickers():
    rp = make("random-picker", {"maxNumOfEndpoints": 2})
    picked, _ = rp.pick(CycleState(), [ScoredEndpoint(ep(f"p{i}"), 0.0) for i in range(4)])
    assert len(picked) == 2 and len(set(picked)) == 2
    wp = make("weighted-random-picker")
    a, b, c = ep("p0"), ep("p1"), ep("p2")
    counts = {"p0": 0, "p1": 0, "p2": 0}
    for _ in range(3000):
        picked, _ = wp.pick(CycleState(), [ScoredEndpoint(a, 3.0), ScoredEndpoint(b, 1.0), ScoredEndpoint(c, 0.0)])
        counts[picked[0].name] += 1
    assert counts["p2"] == 0                  # a zero score never wins against a positive one
    assert 2000 < counts["p0"] < 2500        # P(a) = 3/4 under A-Res with weights 3:1
    picked, why = wp.pick(CycleState(), [ScoredEndpoint(a, 0.0), ScoredEndpoint(b, 0.0)])
    assert len(picked) == 1 and "random" in why


# --- filters --------------------------------------------------------------------------------------------

def test_role_filters():
    pods = [ep("p0", labels={}), ep("p1", labels={"llm-d.ai/role": "decode"}),
            ep("p2", labels={"llm-d.ai/role": "both"}), ep("p3", labels={"llm-d.ai/role": "prefill"})]
    assert [e.name for e in make("decode-filter").filter(CycleState(), req(), pods)] == ["p0", "p1", "p2"]
    assert [e.name for e in make("prefill-filter").filter(CycleState(), req(), pods)] == ["p3"]
    by = make("by-label", {"label": "zone", "validValues": ["a"], "allowsNoLabel": False})
    assert by.filter(CycleState(), req(), pods) == []
    assert make("decode-filter").filter(CycleState(), req(), []) == []


def test_by_label_selector():
    pods = [ep("p0", labels={"gpu": "l4", "tier": "x"}), ep("p1", labels={"gpu": "h100"}), ep("p2", labels={})]
    sel = make("by-label-selector", {"matchExpressions": [{"key": "gpu", "operator": "In", "values": ["l4", "h100"]},
                                                          {"key": "tier", "operator": "DoesNotExist"}]})
    assert [e.name for e in sel.filter(CycleState(), req(), pods)] == ["p1"]
    sel2 = make("by-label-selector", {"matchLabels": {"gpu": "l4"}})
    assert [e.name for e in sel2.filter(CycleState(), req(), pods)] == ["p0"]


# --- profile handlers and the scheduler -----------------------------------------------------------------



def test_weighted_sum_is_not_normalised_and_trace_explains():
    cfg = load_config(HEAD + """plugins:
- type: queue-scorer
- type: kv-cache-utilization-scorer
- type: decode-filter
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: decode-filter
  - pluginRef: queue-scorer
    weight: 2
  - pluginRef: kv-cache-utilization-scorer
    weight: 2
""", PluginHandle(rng=random.Random(0)))
    pods = [ep("p0", queue=0, kv=0.5), ep("p1", queue=4, kv=0.0),
            ep("p2", queue=0, kv=0.0, labels={"llm-d.ai/role": "prefill"})]
    result, trace = cfg.scheduler.schedule(req(), pods)
    # p0: 2·1 + 2·0.5 = 3.0 ; p1: 2·0 + 2·1 = 2.0
    profile = trace.profiles[0]
    assert profile.totals == {"p0": 3.0, "p1": 2.0}
    assert profile.filters[0].removed == ["p2"]
    assert profile.scorers[1].raw == {"p0": 0.5, "p1": 1.0} and profile.scorers[1].weighted == {"p0": 1.0, "p1": 2.0}
    assert result.primary.target_endpoints[0].name == "p0" and trace.picked == "p0"
    assert trace.destination == "127.1.0.10:8000" and "highest total score 3" in trace.reason


def test_empty_candidates_fail_with_a_trace():
    cfg = load_config(HEAD + "plugins:\n- type: queue-scorer\n")
    with pytest.raises(SchedulingError, match="failed to run scheduler profile 'default'") as info:
        cfg.scheduler.schedule(req(), [])
    assert info.value.trace.profiles[0].reason.startswith("no pods available")


def test_pd_profile_handler_threshold():
    text = (HEAD + """plugins:
- type: pd-profile-handler
  parameters: {threshold: THRESHOLD, hashBlockSize: 64}
- type: prefill-filter
- type: decode-filter
- type: prefix-cache-scorer
- type: prefill-header-handler
schedulingProfiles:
- name: prefill
  plugins: [{pluginRef: prefill-filter}]
- name: decode
  plugins: [{pluginRef: decode-filter}, {pluginRef: prefix-cache-scorer}]
""")
    pods = [ep("p0", labels={"llm-d.ai/role": "decode"}), ep("p1", labels={"llm-d.ai/role": "prefill"})]
    always = load_config(text.replace("THRESHOLD", "0"))
    result, trace = always.scheduler.schedule(req("x" * 100), pods)
    assert set(result.profile_results) == {"decode", "prefill"} and result.primary_profile_name == "decode"
    headers = always.plugins["prefill-header-handler"].pre_request(req(), result, 8000)
    assert headers == {"x-prefiller-host-port": "127.1.0.11:8000"}
    high = load_config(text.replace("THRESHOLD", "500"))
    result, trace = high.scheduler.schedule(req("x" * 100), pods)   # 100 uncached chars < 500 → decode only
    assert set(result.profile_results) == {"decode"} and "decode only" in trace.notes[0]
    assert high.plugins["prefill-header-handler"].pre_request(req(), result, 8000) == {"x-prefiller-host-port": None}
    result, _ = high.scheduler.schedule(req("x" * 600, rid="r2"), pods)
    assert set(result.profile_results) == {"decode", "prefill"}


# --- precise prefix -------------------------------------------------------------------------------------

class WordTokenizer:
    def encode(self, text):
        return [int(w) for w in text.split()]


def batch(*events):
    return msgpack.packb([1.0, list(events)])


def test_token_processor_matches_vllm_sha256_cbor_64bit():
    from llmd_lab.sim.epp.kvblock import TokenProcessor
    tp = TokenProcessor(block_size=2, hash_seed="42")
    root = int.from_bytes(hashlib.sha256(cbor2.dumps("42", canonical=True)).digest()[-8:], "big")
    k0 = int.from_bytes(hashlib.sha256(cbor2.dumps([root, [1, 2], None], canonical=True)).digest()[-8:], "big")
    k1 = int.from_bytes(hashlib.sha256(cbor2.dumps([k0, [3, 4], None], canonical=True)).digest()[-8:], "big")
    assert tp.block_keys([1, 2, 3, 4, 5]) == [k0, k1]


def test_precise_prefix_scorer_from_kv_events():
    handle = PluginHandle(tokenizer_for=lambda model: WordTokenizer())
    s = make("precise-prefix-cache-scorer", {"indexerConfig": {"tokenProcessorConfig": {"blockSize": 2}}}, handle)
    keys = s.processor.block_keys([1, 2, 3, 4, 5, 6])
    a, b, c = ep("p0", ip="10.0.0.1"), ep("p1", ip="10.0.0.2"), ep("p2", ip="10.0.0.3")
    s.handle_message("kv@10.0.0.1@m", batch(["BlockStored", keys, None, [1, 2, 3, 4, 5, 6], 2, None, None]))
    s.handle_message("kv@10.0.0.2@m", batch(["BlockStored", keys[:1], None, [1, 2], 2, None, None]))
    prompt = "1 2 3 4 5 6 7"
    assert s.pod_scores(req(prompt)) == {"10.0.0.1": 3, "10.0.0.2": 1}
    assert by_name(s.score(CycleState(), req(prompt), [a, b, c])) == {"p0": 1.0, "p1": 0.0, "p2": 0.0}
    s.handle_message("kv@10.0.0.1@m", batch(["BlockRemoved", keys[1:], None]))
    assert by_name(s.score(CycleState(), req(prompt), [a, b, c])) == {"p0": 1.0, "p1": 1.0, "p2": 0.0}  # tie → 1.0
    s.handle_message("kv@10.0.0.1@m", batch(["AllBlocksCleared"]))
    s.handle_message("kv@10.0.0.2@m", batch(["AllBlocksCleared"]))
    assert by_name(s.score(CycleState(), req(prompt), [a, b])) == {"p0": 0.0, "p1": 0.0}
    assert s.score(CycleState(), req(prompt), []) == {}
    with pytest.raises(ValueError, match="kv@<pod-id>@<model>"):
        s.handle_message("kv-10.0.0.1", batch())
