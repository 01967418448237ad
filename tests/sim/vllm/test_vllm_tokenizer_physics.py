"""Tokenizer prefix property and chat template; memory plan and step physics against vLLM-reported shapes."""

from __future__ import annotations

import pytest

from llmd_lab.sim.vllm import physics
from llmd_lab.sim.vllm.profiles import gpus, models, resolve_gpu, resolve_model
from llmd_lab.sim.vllm.tokenizer import SPECIAL_TOKENS, Tokenizer


def test_round_trip_and_stable_ids_across_instances():
    text = "Hello, world!  It's 2026: snake_case + numbers 1234567.\n\nBye"
    ids = Tokenizer().encode(text)
    assert Tokenizer().encode(text) == ids
    tok = Tokenizer()
    assert tok.decode(tok.encode(text)) == text


def test_conversation_turns_are_token_prefixes():
    tok = Tokenizer()
    turn1 = [
        {"role": "system", "content": "You answer briefly."},
        {"role": "user", "content": "What is llm-d?"},
    ]
    p1 = tok.encode(tok.apply_chat_template(turn1))
    turn2 = [*turn1, {"role": "assistant", "content": "A router."}, {"role": "user", "content": "And vLLM?"}]
    p2 = tok.encode(tok.apply_chat_template(turn2))
    assert p2[: len(p1)] == p1
    assert p1[0] == SPECIAL_TOKENS["<|im_start|>"] and SPECIAL_TOKENS["<|im_end|>"] in p1


def test_chat_template_shape():
    text = Tokenizer().apply_chat_template([{"role": "user", "content": [{"type": "text", "text": "hi"}]}])
    assert text == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    with pytest.raises(ValueError, match="role"):
        Tokenizer().apply_chat_template([{"content": "x"}])


def test_profiles_cover_the_lab_and_derive_weights_from_format():
    assert {"L4", "A10G", "A100-80GB", "H100-80GB"} <= set(gpus())
    assert resolve_gpu("NVIDIA-L4").name == "L4"
    bf16 = resolve_model("mistralai/Mistral-Small-24B-Instruct-2501")
    w4 = resolve_model("RedHatAI/Mistral-Small-24B-Instruct-2501-quantized.w4a16")
    fp8 = resolve_model("RedHatAI/Mistral-Small-24B-Instruct-2501-FP8-dynamic")
    assert w4.num_hidden_layers == bf16.num_hidden_layers
    assert w4.weight_bytes < fp8.weight_bytes < bf16.weight_bytes
    assert 11 < w4.weight_bytes / 2**30 < 15  # the seeds' "Mistral INT4 (~12GB)" fits one 24 GB L4
    assert all(m.num_parameters > 0 for m in models().values())


def test_memory_plan_like_vllm_profiling():
    llama, h100 = resolve_model("meta-llama/Llama-3.1-8B-Instruct"), resolve_gpu("H100-80GB")
    plan = physics.plan_memory(llama, h100, max_num_batched_tokens=8192, max_num_seqs=1024)
    assert plan.kv_bytes_per_token == 32 * 8 * 128 * 2 * 2  # 128 KiB per token
    assert 14.5 < plan.weight_bytes / 2**30 < 15.5
    assert 350_000 < plan.kv_cache_tokens < 500_000  # vLLM logs ~400k+ tokens for this setup
    lower = physics.plan_memory(llama, h100, gpu_memory_utilization=0.5, max_num_batched_tokens=8192)
    assert lower.num_gpu_blocks < plan.num_gpu_blocks
    tp2 = physics.plan_memory(llama, h100, tensor_parallel_size=2, max_num_batched_tokens=8192)
    assert (
        tp2.kv_bytes_per_token == plan.kv_bytes_per_token // 2
        and tp2.num_gpu_blocks > 2 * plan.num_gpu_blocks
    )


def test_prefill_compute_bound_decode_memory_bound():
    m, g = resolve_model("meta-llama/Llama-3.1-8B-Instruct"), resolve_gpu("H100-80GB")
    prefill = physics.step_cost(m, g, 1, [(4096, 0)])
    decode = physics.step_cost(m, g, 1, [(1, 4096)])
    assert prefill.compute_s > prefill.memory_s and decode.memory_s > decode.compute_s
    # single-stream decode ≈ weights / effective bandwidth
    assert decode.memory_s == pytest.approx(
        (m.weight_bytes + 4097 * m.kv_bytes_per_token()) / (g.hbm_bandwidth_gbps * 1e9 * 0.8)
    )
    fp8 = resolve_model("RedHatAI/Meta-Llama-3.1-8B-Instruct-FP8")
    assert physics.step_time(fp8, g, 1, [(4096, 0)]) < physics.step_time(m, g, 1, [(4096, 0)]) / 1.5
