"""The ``vllm serve`` command line, as far as the lab's pods use it.

The kubelet hands over a container's args unchanged (KServe's preset is
``vllm serve /mnt/models --served-model-name X --port 8000 --disable-log-requests ${VLLM_ADDITIONAL_ARGS}
--enable-ssl-refresh --ssl-certfile … --ssl-keyfile …``, with the shell expanding ``VLLM_ADDITIONAL_ARGS``).
Flags the simulation acts on are parsed with their vLLM names and defaults; flags that only tune real kernels
are accepted and ignored. An unknown flag fails the way vLLM's argparse fails: ``vllm: error: unrecognized
arguments: …`` and exit status 2. (``--kv-cache-usage-percentage-metric`` is an EPP flag, not vLLM's: passing
it to ``vllm serve`` is exactly that error.)
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from llmd_lab.sim.vllm.kv_events import KVEventsConfig


class ArgsError(Exception):
    """Bad command line; ``message`` is what vLLM prints, ``exit_code`` what it exits with (2)."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # type: ignore[override]
        raise ArgsError(f"{self.format_usage()}vllm: error: {message}")


def _human_int(text: str) -> int:
    """vLLM accepts ``16000``, ``16k``, ``1M`` for token counts (k = 1000, K = 1024)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgG]?)\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"invalid integer value: {text!r}")
    number, unit = float(m.group(1)), m.group(2)
    scale = {"": 1, "k": 1000, "K": 1024, "m": 10**6, "M": 1 << 20, "g": 10**9, "G": 1 << 30}[unit]
    return int(number * scale)


def _json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("expected a JSON object")
    return value


# Accepted with a value and ignored: they tune kernels, downloads or features the simulation has no model of.
_IGNORED_WITH_VALUE = (
    "--dtype", "--quantization", "-q", "--kv-cache-dtype", "--seed", "--tokenizer", "--revision",
    "--download-dir", "--load-format", "--chat-template", "--generation-config", "--tool-call-parser",
    "--swap-space", "--cpu-offload-gb", "--uvicorn-log-level", "--api-key", "--root-path", "--max-logprobs",
    "--distributed-executor-backend", "--compilation-config", "-O", "--show-hidden-metrics-for-version",
    "--allowed-origins", "--ssl-ca-certs", "--reasoning-parser", "--guided-decoding-backend", "--hf-overrides",
    "--max-num-partial-prefills", "--limit-mm-per-prompt", "--pipeline-parallel-size", "-pp",
    "--override-generation-config", "--middleware", "--config",
    "--max-seq-len-to-capture", "--tokenizer-mode", "--lora-modules", "--max-loras", "--max-lora-rank",
    "--scheduling-policy", "--speculative-config", "--kv-transfer-config", "--data-parallel-backend", "-dpb",
)  # fmt: skip
_IGNORED_FLAGS = (
    "--trust-remote-code", "--enforce-eager", "--disable-log-stats", "--disable-uvicorn-access-log",
    "--disable-fastapi-docs", "--enable-auto-tool-choice", "--enable-lora", "--enable-expert-parallel",
    "--disable-frontend-multiprocessing", "--enable-server-load-tracking",
    "--enable-force-include-usage", "--disable-custom-all-reduce", "--enable-sleep-mode",
    "--data-parallel-external-lb", "-dpe",
)  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    """The ``vllm serve`` parser (prog ``vllm``, so errors read ``vllm: error: …``)."""
    p = _Parser(prog="vllm", usage="vllm serve [model_tag] [options]", add_help=False, allow_abbrev=False)
    p.add_argument("subcommand", choices=["serve"])
    p.add_argument("model_tag", nargs="?", default=None)
    p.add_argument("--model", default=None)
    p.add_argument("--served-model-name", nargs="+", default=None)
    p.add_argument("--host", default=None)
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--max-model-len", type=_human_int, default=None)
    p.add_argument("--gpu-memory-utilization", type=float, default=0.9)
    p.add_argument("--tensor-parallel-size", "-tp", type=int, default=1)
    p.add_argument("--max-num-seqs", type=int, default=None)
    p.add_argument("--max-num-batched-tokens", type=_human_int, default=None)
    p.add_argument("--enable-prefix-caching", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--enable-chunked-prefill", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--long-prefill-token-threshold", type=int, default=0)
    p.add_argument("--block-size", type=int, choices=[1, 8, 16, 32, 64, 128], default=16)
    p.add_argument(
        "--prefix-caching-hash-algo",
        # vLLM 0.10.1's PrefixCachingHashAlgo (vllm/config/cache.py); xxhash came later (unconfirmed per release)
        choices=["builtin", "sha256", "sha256_cbor_64bit"],
        default="sha256",
    )
    p.add_argument("--num-gpu-blocks-override", type=int, default=None)
    # data parallelism across pods (KServe's *-worker-data-parallel presets on a LeaderWorkerSet): the leader
    # serves the API, ``--headless`` workers run engine cores that hand-shake with it at address:rpc-port
    p.add_argument("--headless", action="store_true")
    p.add_argument("--data-parallel-size", "-dp", type=int, default=1)
    p.add_argument("--data-parallel-size-local", "-dpl", type=int, default=None)
    p.add_argument("--data-parallel-start-rank", "-dpr", type=int, default=None)
    p.add_argument("--data-parallel-address", "-dpa", default=None)
    p.add_argument("--data-parallel-rpc-port", "-dpp", type=int, default=None)
    p.add_argument("--data-parallel-hybrid-lb", "-dph", action="store_true")
    p.add_argument("--api-server-count", "-asc", type=int, default=None)
    p.add_argument("--kv-events-config", type=_json_object, default=None)
    p.add_argument("--disable-log-requests", action="store_true")
    p.add_argument("--enable-log-requests", action="store_true")
    p.add_argument("--enable-ssl-refresh", action="store_true")
    p.add_argument("--enable-prompt-tokens-details", action="store_true")
    p.add_argument("--ssl-certfile", default=None)
    p.add_argument("--ssl-keyfile", default=None)
    for flag in _IGNORED_WITH_VALUE:
        p.add_argument(flag, dest=f"ignored_{flag.lstrip('-').replace('-', '_')}", default=None)
    for flag in _IGNORED_FLAGS:
        p.add_argument(flag, dest=f"ignored_{flag.lstrip('-').replace('-', '_')}", action="store_true")
    return p


@dataclass(frozen=True)
class ServeArgs:
    """The parsed command line, with the vLLM names the engine config uses."""

    model: str
    served_model_name: tuple[str, ...]
    host: str | None
    port: int
    max_model_len: int | None
    gpu_memory_utilization: float
    tensor_parallel_size: int
    max_num_seqs: int | None
    max_num_batched_tokens: int | None
    enable_prefix_caching: bool
    enable_chunked_prefill: bool
    long_prefill_token_threshold: int
    block_size: int
    prefix_caching_hash_algo: str
    num_gpu_blocks_override: int | None
    kv_events_config: KVEventsConfig | None
    disable_log_requests: bool
    enable_ssl_refresh: bool
    enable_prompt_tokens_details: bool
    ssl_certfile: str | None
    ssl_keyfile: str | None
    headless: bool
    data_parallel_size: int
    data_parallel_size_local: int
    data_parallel_start_rank: int
    data_parallel_address: str | None
    data_parallel_rpc_port: int
    ignored: dict[str, object]
    non_default: dict[str, object]


def split_argv(argv: Sequence[str] | str) -> list[str]:
    """Accept a list, or one shell-like string (``"vllm serve /mnt/models --port 8000"``)."""
    return shlex.split(argv) if isinstance(argv, str) else list(argv)


def parse_args(argv: Sequence[str] | str) -> ServeArgs:
    """Parse ``[vllm] serve <model> [flags]``; raises :class:`ArgsError` as vLLM would fail."""
    args = split_argv(argv)
    if args and args[0].endswith("vllm"):
        args = args[1:]
    parser = build_parser()
    ns, unknown = parser.parse_known_args(args)
    if unknown:
        raise ArgsError(f"{parser.format_usage()}vllm: error: unrecognized arguments: {' '.join(unknown)}")
    model = ns.model_tag or ns.model
    if not model:
        raise ArgsError(
            f"{parser.format_usage()}vllm: error: the following arguments are required: model_tag"
        )
    if ns.model_tag and ns.model and ns.model_tag != ns.model:
        raise ArgsError(
            "ValueError: With `vllm serve`, you should provide the model as a positional argument or in a config "
            f"file instead of via the `--model` option. (got {ns.model_tag!r} and --model {ns.model!r})",
            exit_code=1,
        )
    if not 0 < ns.gpu_memory_utilization <= 1:
        raise ArgsError(
            f"ValueError: GPU memory utilization must be within (0, 1]. Got {ns.gpu_memory_utilization}.", 1
        )
    if ns.tensor_parallel_size < 1:
        raise ArgsError(f"ValueError: tensor_parallel_size must be >= 1, got {ns.tensor_parallel_size}", 1)
    dp_local = _check_data_parallel(ns)
    kv_events = None
    if ns.kv_events_config is not None:
        try:
            kv_events = KVEventsConfig.from_cli(json.dumps(ns.kv_events_config))
        except (ValueError, TypeError) as exc:
            raise ArgsError(
                f"{parser.format_usage()}vllm: error: argument --kv-events-config: {exc}"
            ) from exc
    defaults = vars(parser.parse_args(["serve", model]))
    values = vars(ns)
    non_default = {k: v for k, v in values.items() if k != "subcommand" and v != defaults.get(k)}
    non_default["model"] = model
    ignored = {k.removeprefix("ignored_"): v for k, v in values.items() if k.startswith("ignored_") and v}
    return ServeArgs(
        model=model,
        served_model_name=tuple(ns.served_model_name or [model]),
        host=ns.host,
        port=ns.port,
        max_model_len=ns.max_model_len,
        gpu_memory_utilization=ns.gpu_memory_utilization,
        tensor_parallel_size=ns.tensor_parallel_size,
        max_num_seqs=ns.max_num_seqs,
        max_num_batched_tokens=ns.max_num_batched_tokens,
        enable_prefix_caching=ns.enable_prefix_caching,
        enable_chunked_prefill=ns.enable_chunked_prefill,
        long_prefill_token_threshold=ns.long_prefill_token_threshold,
        block_size=ns.block_size,
        prefix_caching_hash_algo=ns.prefix_caching_hash_algo,
        num_gpu_blocks_override=ns.num_gpu_blocks_override,
        kv_events_config=kv_events,
        disable_log_requests=ns.disable_log_requests and not ns.enable_log_requests,
        enable_ssl_refresh=ns.enable_ssl_refresh,
        enable_prompt_tokens_details=ns.enable_prompt_tokens_details,
        ssl_certfile=ns.ssl_certfile,
        ssl_keyfile=ns.ssl_keyfile,
        headless=ns.headless,
        data_parallel_size=ns.data_parallel_size,
        data_parallel_size_local=dp_local,
        data_parallel_start_rank=ns.data_parallel_start_rank if ns.data_parallel_start_rank is not None else 0,
        data_parallel_address=ns.data_parallel_address,
        data_parallel_rpc_port=ns.data_parallel_rpc_port if ns.data_parallel_rpc_port is not None else 29550,
        ignored=ignored,
        non_default=non_default,
    )


def _check_data_parallel(ns: argparse.Namespace) -> int:
    """The data-parallel checks vLLM makes before starting (ValueError, exit 1); returns the local engine count."""
    if ns.data_parallel_size < 1:
        raise ArgsError(f"ValueError: data_parallel_size must be >= 1, got {ns.data_parallel_size}", 1)
    local = ns.data_parallel_size if ns.data_parallel_size_local is None else ns.data_parallel_size_local
    if local > ns.data_parallel_size:
        raise ArgsError(
            f"ValueError: data_parallel_size_local ({local}) must be <= data_parallel_size "
            f"({ns.data_parallel_size})", 1)
    start = ns.data_parallel_start_rank or 0
    if not 0 <= start < ns.data_parallel_size:
        raise ArgsError(
            f"ValueError: data_parallel_start_rank ({start}) must be in [0, {ns.data_parallel_size})", 1)
    if ns.headless:
        if ns.api_server_count is not None and ns.api_server_count > 1:
            raise ArgsError("ValueError: api_server_count can't be set in headless mode", 1)
        if ns.data_parallel_hybrid_lb:
            raise ArgsError("ValueError: data_parallel_hybrid_lb is not applicable in headless mode", 1)
        if local <= 0:
            raise ArgsError("ValueError: data_parallel_size_local must be > 0 in headless mode", 1)
    return local
