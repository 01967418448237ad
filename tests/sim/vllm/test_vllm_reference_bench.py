"""``llmd-lab bench reference`` prints the reference repository's table shape and the gap to it."""

from __future__ import annotations

import json

from llmd_lab.bench.reference import METRICS, PUBLISHED
from llmd_lab.cli import main

SMALL = ["bench", "reference", "--conversations", "4", "--turns", "3", "--max-tokens", "16"]


def test_bench_reference_prints_the_reference_table_and_gap(capsys):
    assert main(SMALL) == 0
    out = capsys.readouterr().out
    for metric in METRICS:
        assert metric in out
    assert "llm-d lab" in out and "RR lab" in out and "gap" in out and "Why the lab differs" in out
    assert "P95 TTFT llm-d vs round-robin" in out and "TTFT by turn" in out
    assert main([*SMALL, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data["lab"]) == {"llm-d", "round-robin", "random"}
    for result in data["lab"].values():
        assert result["requests"] == 12 and set(METRICS) <= set(result)
        assert set(result["by_turn"]) == {"1", "2", "3"}  # JSON keys
    assert set(PUBLISHED) == {"llm-d", "round-robin"}


def test_interleaved_turns_round_robin_the_conversations_with_think_time():
    from llmd_lab.sim.des import RoundRobinRouter, SimSession, Simulation
    from llmd_lab.sim.vllm.engine import EngineConfig
    from llmd_lab.sim.vllm.profiles import resolve_gpu, resolve_model

    cfg = EngineConfig(resolve_model("Qwen/Qwen3-0.6B"), resolve_gpu("L4"), max_model_len=64)
    sessions = [SimSession([f"conversation {c} turn {t}" for t in range(3)], max_tokens=4) for c in range(3)]
    sessions.append(SimSession(["word " * 80], max_tokens=4))  # longer than --max-model-len: a 400, not a crash
    records = Simulation(cfg, 2, RoundRobinRouter()).run(sessions, concurrency=2, interleave_turns=True,
                                                        think_time=(0.5, 2.0))  # fmt: skip
    assert len(records) == 10
    assert next(r.error for r in records if r.session == 3).startswith("400 ")
    order = [(r.session, r.turn) for r in sorted(records, key=lambda r: r.arrival)]
    assert order[:2] == [(0, 0), (1, 0)] or order[:2] == [(1, 0), (0, 0)]
    assert order.index((0, 1)) > order.index((2, 0))  # conversation 0 went back to the end of the queue
    assert min(r.arrival for r in records) >= 0.5  # every turn waits a think time first


def test_the_summary_says_why_requests_failed():
    """A conversation that outgrows --max-model-len gets vLLM's 400 on its later turns; the bench names that
    refusal (once per kind, with a count) instead of printing a bare error count."""
    from llmd_lab.bench.reference import summarise
    from llmd_lab.sim.des import RequestRecord

    def record(turn: int, prompt: int, error: str | None = None) -> RequestRecord:
        done = None if error else 1.0
        return RequestRecord(f"r{turn}", 0, turn, "pod-0", 0.0, prompt, first_token=done, finish=done, error=error)

    too_long = "400 The decoder prompt (length {}) is longer than the maximum model length of 16000."
    records = [record(0, 100), record(1, 200), record(2, 16016, too_long.format(16016)),
               record(3, 16034, too_long.format(16034))]  # fmt: skip
    summary = summarise(records, makespan=10.0)
    assert summary["errors"] == 2
    assert summary["error_kinds"] == {
        "400 The decoder prompt (length N) is longer than the maximum model length of N.": 2}


def test_the_simulator_refuses_what_the_pods_api_server_refuses():
    """A prompt that fits but leaves no room for its max_tokens is refused before the engine, as vLLM's API
    server does, so a bench through the simulator never serves a request a pod would answer with a 400."""
    from llmd_lab.sim.des import RoundRobinRouter, SimSession, Simulation
    from llmd_lab.sim.vllm.engine import EngineConfig
    from llmd_lab.sim.vllm.profiles import resolve_gpu, resolve_model

    cfg = EngineConfig(resolve_model("Qwen/Qwen3-0.6B"), resolve_gpu("L4"), max_model_len=128)
    sessions = [SimSession(["word " * 60], max_tokens=8), SimSession(["word " * 60], max_tokens=100)]
    records = Simulation(cfg, 1, RoundRobinRouter()).run(sessions, concurrency=2)
    served, refused = sorted(records, key=lambda r: r.session)
    assert served.error is None and served.output_tokens == 8
    assert refused.error is not None and refused.prompt_tokens < 128
    assert refused.error.startswith("400 This model's maximum context length is 128 tokens. However, you requested")
