"""The step engine: scheduling, preemption, chunked prefill, stops, and latencies that follow the physics."""

from __future__ import annotations

import pytest
from vllm_helpers import final, make_engine, request, run_until_done

from llmd_lab.sim.vllm import physics
from llmd_lab.sim.vllm.profiles import resolve_gpu, resolve_model


def test_same_prompt_same_text_and_deterministic_under_seed():
    texts = []
    for _ in range(2):
        eng = make_engine(seed=7)
        eng.add_request(request("a", list(range(50)), max_tokens=30))
        _, outs = run_until_done(eng)
        texts.append("".join(o.text for o in outs))
    assert texts[0] == texts[1] and texts[0]
    other = make_engine(seed=8)
    other.add_request(request("a", list(range(50)), max_tokens=30))
    _, outs = run_until_done(other)
    assert "".join(o.text for o in outs) != texts[0]


def test_max_tokens_ignore_eos_and_eos_stop():
    eng = make_engine(mean_output_len=5)
    eng.add_request(request("long", list(range(40)), max_tokens=50, ignore_eos=True))
    eng.add_request(request("eos", list(range(100, 140)), max_tokens=50))
    _, outs = run_until_done(eng)
    long = final(outs, "long")
    assert (long.num_output_tokens, long.finish_reason) == (50, "length")
    eos = final(outs, "eos")
    assert eos.finish_reason == "stop" and eos.num_output_tokens < 50
    assert eos.new_token_ids == [eng.tokenizer.eos_token_id] and eos.text == ""


def test_stop_string_truncates_text():
    eng = make_engine()
    eng.add_request(request("a", list(range(40)), max_tokens=60, ignore_eos=True))
    _, outs = run_until_done(eng)
    text = "".join(o.text for o in outs)
    stop = text.split()[5]
    eng2 = make_engine()
    eng2.add_request(request("a", list(range(40)), max_tokens=60, ignore_eos=True, stop=(stop,)))
    _, outs2 = run_until_done(eng2)
    done = final(outs2, "a")
    assert done.finish_reason == "stop" and done.stop_reason == stop
    assert "".join(o.text for o in outs2) == text[: text.find(stop)]


def test_too_long_prompt_rejected_and_max_model_len_caps_generation():
    eng = make_engine(max_model_len=64)
    with pytest.raises(ValueError, match="longer than the maximum model length of 64"):
        eng.add_request(request("x", list(range(64))))
    eng.add_request(request("y", list(range(60)), max_tokens=50, ignore_eos=True))
    _, outs = run_until_done(eng)
    y = final(outs, "y")
    assert y.finish_reason == "length" and y.num_prompt_tokens + y.num_output_tokens == 64


def test_chunked_prefill_splits_a_long_prompt_over_steps():
    eng = make_engine(max_num_batched_tokens=256)
    eng.add_request(request("a", list(range(1000)), max_tokens=2))
    durations = []
    produced_at = None
    for step in range(10):
        r = eng.step(sum(durations))
        durations.append(r.duration_s)
        if r.outputs:
            produced_at = step
            break
    assert produced_at == 3  # ceil(1000 / 256) = 4 prefill steps; the 4th yields the first token
    assert eng.scheduler.requests["a"].num_computed_tokens == 1000


def test_decode_interleaves_with_a_long_prefill():
    eng = make_engine(max_num_batched_tokens=128)
    eng.add_request(request("short", list(range(20)), max_tokens=20, ignore_eos=True))
    now = eng.step(0.0).duration_s  # short prefilled, first token
    eng.add_request(request("long", list(range(5000, 6000)), max_tokens=1, arrival=now))
    r = eng.step(now)
    assert [o.request_id for o in r.outputs] == ["short"]  # decoding continues during the long prefill
    assert r.num_scheduled_tokens == 128


def test_preemption_by_recompute_under_memory_pressure_and_blocks_freed():
    eng = make_engine(num_gpu_blocks_override=1 + 12, max_num_seqs=8)  # 12 usable blocks
    for i in range(4):
        eng.add_request(
            request(f"r{i}", list(range(i * 1000, i * 1000 + 40)), max_tokens=40, ignore_eos=True)
        )
    _, outs = run_until_done(eng)
    stats = eng.stats()
    assert stats.num_preemptions > 0
    assert all(final(outs, f"r{i}").num_output_tokens == 40 for i in range(4))
    assert stats.kv_cache_usage == 0.0 and stats.num_running_reqs == 0
    # recomputed prompts are not counted as prefix-cache queries
    assert stats.prefix_cache_queries == 4 * 40


def test_abort_frees_blocks_and_reports_abort():
    eng = make_engine()
    eng.add_request(request("a", list(range(100)), max_tokens=100, ignore_eos=True))
    now = eng.step(0.0).duration_s
    assert eng.stats().kv_cache_usage > 0
    assert eng.abort_request("a")
    assert eng.stats().kv_cache_usage == 0
    r = eng.step(now)
    assert r.outputs[0].finished and r.outputs[0].finish_reason == "abort"
    assert not eng.has_unfinished_requests()


def test_ttft_lower_for_cached_prefix_by_the_prefill_physics():
    model, gpu = resolve_model("meta-llama/Llama-3.1-8B-Instruct"), resolve_gpu("H100-80GB")
    eng = make_engine(model.name, gpu.name)
    shared = list(range(10_000, 14_000))  # 250 blocks of shared system prompt
    eng.add_request(request("cold", [*shared, *range(20)], max_tokens=1))
    t_end, outs = run_until_done(eng)
    cold = final(outs, "cold")
    eng.add_request(request("warm", [*shared, *range(50, 70)], max_tokens=1, arrival=t_end))
    _, outs = run_until_done(eng, t_end)
    warm = final(outs, "warm")
    assert warm.num_cached_tokens == 4000
    cold_ttft = cold.first_token_time - cold.arrival_time
    warm_ttft = warm.first_token_time - warm.arrival_time
    chunk = eng.config.max_num_batched_tokens
    expected_cold = sum(
        physics.step_time(model, gpu, 1, [(min(chunk, 4020 - done), done)]) for done in range(0, 4020, chunk)
    )
    expected_warm = physics.step_time(model, gpu, 1, [(20, 4000)])
    assert cold_ttft == pytest.approx(expected_cold)
    assert warm_ttft == pytest.approx(expected_warm)
    assert warm_ttft < cold_ttft / 5


def test_throughput_saturates_as_batch_grows():
    def throughput(batch: int) -> float:
        eng = make_engine("meta-llama/Llama-3.1-8B-Instruct", "H100-80GB")
        for i in range(batch):
            eng.add_request(
                request(f"r{i}", list(range(i * 1000, i * 1000 + 500)), max_tokens=64, ignore_eos=True)
            )
        end, outs = run_until_done(eng)
        return sum(len(o.new_token_ids) for o in outs) / end

    t1, t8, t64, t256 = (throughput(b) for b in (1, 8, 64, 256))
    assert t8 > 5 * t1  # decode is memory-bound: batching is nearly free at first
    assert t64 > t8
    assert t256 / t64 < 0.6 * (256 / 64)  # ...then compute and KV reads catch up: gains flatten


def test_tp2_faster_per_token_than_tp1():
    model, gpu = resolve_model("meta-llama/Llama-3.1-8B-Instruct"), resolve_gpu("H100-80GB")
    one = physics.step_time(model, gpu, 1, [(1, 2000)] * 16)
    two = physics.step_time(model, gpu, 2, [(1, 2000)] * 16)
    assert two < one
    # and an engine with TP=2 produces its tokens sooner
    ends = []
    for tp in (1, 2):
        eng = make_engine(model.name, gpu.name, tensor_parallel_size=tp)
        eng.add_request(request("a", list(range(2000)), max_tokens=32, ignore_eos=True))
        ends.append(run_until_done(eng)[0])
    assert ends[1] < ends[0]


def test_kv_event_sink_gets_stored_and_removed_batches():
    batches = []
    eng = make_engine(num_gpu_blocks_override=1 + 8, sink=batches.append)
    eng.add_request(request("a", list(range(64)), max_tokens=1))
    end, _ = run_until_done(eng)
    eng.add_request(request("b", list(range(500, 596)), max_tokens=1, arrival=end))
    run_until_done(eng, end)
    kinds = [type(e).__name__ for b in batches for e in b.events]
    assert "BlockStored" in kinds and "BlockRemoved" in kinds
    assert all(b.ts >= 0 for b in batches)
