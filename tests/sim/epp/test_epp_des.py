"""The discrete-event driver: deterministic under a seed, and the EPP in the loop keeps conversations home."""

from __future__ import annotations

from llmd_lab.sim.des import EppRouter, OracleRouter, RoundRobinRouter, SimSession, Simulation
from llmd_lab.sim.epp.config import KSERVE_DEFAULT_CONFIG
from llmd_lab.sim.vllm.engine import EngineConfig
from llmd_lab.sim.vllm.profiles import resolve_gpu, resolve_model

CFG = EngineConfig(resolve_model("Qwen/Qwen3-0.6B"), resolve_gpu("L4"))


def conversations(n=6, turns=4):
    return [SimSession([f"conversation {c} turn {t} " + "tell me more about caches " * 20 for t in range(turns)],
                       system=f"system prompt {c} " + "you are a helpful assistant " * 60, max_tokens=32)
            for c in range(n)]


def test_same_seed_same_records():
    a = Simulation(CFG, 3, EppRouter(KSERVE_DEFAULT_CONFIG, seed=3), seed=3).run(conversations(), concurrency=3)
    b = Simulation(CFG, 3, EppRouter(KSERVE_DEFAULT_CONFIG, seed=3), seed=3).run(conversations(), concurrency=3)
    assert [(r.request_id, r.replica, r.first_token, r.cached_tokens) for r in a] == [
        (r.request_id, r.replica, r.first_token, r.cached_tokens) for r in b]
    assert len(a) == 24 and all(r.ttft is not None and r.ttft > 0 for r in a)


def test_epp_keeps_each_conversation_on_one_replica_and_hits_cache():
    records = Simulation(CFG, 4, EppRouter(KSERVE_DEFAULT_CONFIG)).run(conversations(8, 4), concurrency=4)
    by_session: dict[int, set[str]] = {}
    for r in records:
        by_session.setdefault(r.session, set()).add(r.replica)
    assert all(len(replicas) == 1 for replicas in by_session.values())
    later = [r for r in records if r.turn > 0]
    assert all(r.cached_tokens > 0.5 * r.prompt_tokens for r in later)
    # and load still spreads: the 8 conversations did not all land on one replica
    assert len({next(iter(v)) for v in by_session.values()}) >= 3


def test_oracle_hits_at_least_as_much_as_round_robin():
    def hit(router):
        recs = Simulation(CFG, 4, router).run(conversations(8, 4), concurrency=4)
        return sum(r.cached_tokens for r in recs) / sum(r.prompt_tokens for r in recs)
    assert hit(OracleRouter()) >= hit(RoundRobinRouter())
