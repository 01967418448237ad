"""``vllm serve`` command line: the KServe preset, VLLM_ADDITIONAL_ARGS, and vLLM's argparse failures."""

from __future__ import annotations

import pytest

from llmd_lab.sim.vllm.args import ArgsError, parse_args

PRESET = (
    'vllm serve /mnt/models --served-model-name "Qwen/Qwen3-0.6B" --port 8000 --disable-log-requests '
    "{extra} --enable-ssl-refresh --ssl-certfile /var/run/kserve/tls/tls.crt --ssl-keyfile /var/run/kserve/tls/tls.key"
)


def test_kserve_preset_with_additional_args():
    extra = (
        "--disable-uvicorn-access-log --max-model-len=16000 --prefix-caching-hash-algo sha256 --block-size 64 "
        '--kv-events-config \'{"enable_kv_cache_events":true,"publisher":"zmq",'
        '"endpoint":"tcp://qwen-epp-service:5557","topic":"kv@${POD_IP}@Qwen/Qwen3-0.6B"}\''
    )
    args = parse_args(PRESET.format(extra=extra))
    assert args.model == "/mnt/models" and args.served_model_name == ("Qwen/Qwen3-0.6B",)
    assert (args.port, args.max_model_len, args.block_size) == (8000, 16000, 64)
    assert args.disable_log_requests and args.enable_ssl_refresh and args.ssl_keyfile.endswith("tls.key")
    assert args.kv_events_config.enable_kv_cache_events and args.kv_events_config.publisher == "zmq"
    assert args.kv_events_config.endpoint == "tcp://qwen-epp-service:5557"
    assert "disable_uvicorn_access_log" in args.ignored


def test_engine_flags_and_human_readable_lengths():
    args = parse_args(
        ["serve", "Qwen/Qwen3-0.6B", "-tp", "2", "--max-model-len", "32k", "--gpu-memory-utilization", "0.8",
         "--max-num-seqs", "64", "--max-num-batched-tokens", "4096", "--no-enable-prefix-caching",
         "--kv-transfer-config", '{"kv_connector":"NixlConnector","kv_role":"kv_both"}']
    )  # fmt: skip
    assert (args.tensor_parallel_size, args.max_model_len, args.gpu_memory_utilization) == (2, 32000, 0.8)
    assert (args.max_num_seqs, args.max_num_batched_tokens, args.enable_prefix_caching) == (64, 4096, False)
    assert args.non_default["tensor_parallel_size"] == 2 and "port" not in args.non_default


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["serve", "m", "--kv-cache-usage-percentage-metric", "x"], "unrecognized arguments: --kv-cache-usage-percentage-metric x"),
        (["serve", "m", "--max-num-seqs", "many"], "argument --max-num-seqs: invalid int value: 'many'"),
        (["serve", "m", "--block-size", "17"], "argument --block-size: invalid choice: 17"),
        (["serve", "m", "--kv-events-config", "{bad"], "argument --kv-events-config"),
        (["serve", "m", "--kv-events-config", '{"nope": 1}'], "unknown keys ['nope']"),
        (["serve"], "the following arguments are required: model_tag"),
    ],
)  # fmt: skip
def test_bad_command_lines_fail_like_vllm(argv, fragment):
    with pytest.raises(ArgsError) as info:
        parse_args(argv)
    assert info.value.exit_code == 2
    assert "vllm: error:" in info.value.message and fragment in info.value.message


def test_bad_values_are_value_errors_exit_1():
    with pytest.raises(ArgsError) as info:
        parse_args(["serve", "m", "--gpu-memory-utilization", "1.5"])
    assert info.value.exit_code == 1 and "GPU memory utilization must be within (0, 1]" in info.value.message


DP_WORKER = (
    'vllm serve /mnt/models --served-model-name "Qwen/Qwen3-0.6B" --port 8000 --disable-log-requests --headless '
    "--data-parallel-size 4 --data-parallel-size-local 2 --data-parallel-address qwen-kserve-mn-0.qwen-kserve-mn.ns "
    "--data-parallel-rpc-port 5555 --data-parallel-start-rank 2 --tensor-parallel-size 1"
)


def test_kserve_data_parallel_worker_flags():
    args = parse_args(DP_WORKER)
    assert args.headless and (args.data_parallel_size, args.data_parallel_size_local) == (4, 2)
    assert (args.data_parallel_start_rank, args.data_parallel_rpc_port) == (2, 5555)
    assert args.data_parallel_address == "qwen-kserve-mn-0.qwen-kserve-mn.ns"
    leader = parse_args(["serve", "m", "-dp", "4", "-dpl", "2", "-dpa", "10.0.0.1", "-dpp", "5555"])
    assert not leader.headless and (leader.data_parallel_size, leader.data_parallel_size_local) == (4, 2)
    # without --data-parallel-size-local every rank is local, as in vLLM
    assert parse_args(["serve", "m", "--data-parallel-size", "2"]).data_parallel_size_local == 2


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("--data-parallel-size-local 0", "data_parallel_size_local must be > 0 in headless mode"),
        ("--data-parallel-hybrid-lb", "data_parallel_hybrid_lb is not applicable in headless mode"),
        ("--api-server-count 2", "api_server_count can't be set in headless mode"),
        ("--data-parallel-start-rank 4", "data_parallel_start_rank (4) must be in [0, 4)"),
    ],
)
def test_headless_misconfigurations_are_value_errors(extra, message):
    argv = DP_WORKER.replace("--data-parallel-size-local 2", "").replace("--data-parallel-start-rank 2", "")
    with pytest.raises(ArgsError) as info:
        parse_args(f"{argv} {extra}")
    assert info.value.exit_code == 1 and message in info.value.message
