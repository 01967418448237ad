"""``vllm serve`` for the lab's pods (vLLM's ``entrypoints/openai/api_server.py`` and ``cli/serve.py``).

:func:`serve` is what the kubelet runs for a ``vllm serve …`` container: parse the args, check the model fits
the GPU like vLLM's memory profiling does (else :class:`StartupError` with vLLM's kind of message), write
vLLM's start-up log, wait the simulated load time, then listen (``llmd_lab.sim.http``) with the OpenAI app of
:mod:`llmd_lab.sim.vllm.serving`. With ``--ssl-certfile/--ssl-keyfile`` it serves HTTPS, as KServe's preset
asks, reading the files through ``read_file`` (the container's view of its mounts); an unreadable or invalid
certificate fails start-up where uvicorn would.
"""

from __future__ import annotations

import asyncio
import os
import re
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

from starlette.applications import Starlette

from llmd_lab._tasks import cancel_and_wait
from llmd_lab.sim.http import BindError, RunningServer, start_server
from llmd_lab.sim.keepalive import VLLM_KEEP_ALIVE_S
from llmd_lab.sim.tls import ssl_context_from_pem
from llmd_lab.sim.vllm import physics
from llmd_lab.sim.vllm.args import ArgsError, ServeArgs, parse_args
from llmd_lab.sim.vllm.async_engine import AsyncLLM, RealClock
from llmd_lab.sim.vllm.engine import EngineConfig, LLMEngine
from llmd_lab.sim.vllm.kv_events import ZmqEventPublisher
from llmd_lab.sim.vllm.profiles import UnknownProfileError, resolve_gpu, resolve_model
from llmd_lab.sim.vllm.serving import create_app

VLLM_VERSION = "0.10.1.1"
ReadFile = Callable[[str], bytes]
"""``read_file(path)`` → the bytes of a file as the container sees it; raises ``OSError`` when absent."""


class StartupError(Exception):
    """vLLM failed to start; ``message`` reads like its error, ``exit_code`` is the process exit status."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


@dataclass
class Replica:
    """A running simulated vLLM server."""

    engine: AsyncLLM
    app: Starlette | None  # None for a ``--headless`` data-parallel worker: engine cores only, no API server
    host: str
    port: int
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    scheme: str = "http"
    _server: RunningServer | None = None
    _publisher: ZmqEventPublisher | None = None
    _stats_task: asyncio.Task | None = None
    _stopped: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    async def stop(self) -> None:
        """SIGTERM: stop listening and let in-flight responses finish (uvicorn's graceful shutdown without a
        timeout, as vLLM runs it); the kubelet calls :meth:`kill` once the pod's termination grace period is
        over, which cuts what is still streaming. Then abort the engine's requests and close the KV-event
        publisher. Idempotent."""
        if self._stopped.is_set():
            return
        self.ready.clear()
        try:
            if self._server is not None:
                await self._server.stop(graceful=True)
        finally:
            await self._finish()

    async def kill(self) -> None:
        """SIGKILL: cut every open connection now (a :meth:`stop` in progress then completes)."""
        if self._server is not None:
            await self._server.stop()

    async def _finish(self) -> None:
        await cancel_and_wait([self._stats_task])
        await self.engine.shutdown()
        if self._publisher is not None:
            self._publisher.close()
        self._stopped.set()

    async def wait(self) -> int:
        """Wait until the replica stops; returns its exit code (0 after ``stop``)."""
        await self._stopped.wait()
        return 0


def _tls_context(args: ServeArgs, read_file: ReadFile | None, log: Callable[[str], None]) -> ssl.SSLContext | None:
    """The server context for ``--ssl-certfile/--ssl-keyfile``; :class:`StartupError` where uvicorn fails."""
    if not (args.ssl_certfile and args.ssl_keyfile):
        return None
    if read_file is None:
        log(f"{_log_prefix()} [api_server.py:1] the lab's kubelet gives this container no mounted certificate: "
            "serving plain HTTP (--ssl-certfile/--ssl-keyfile are not used)")
        return None
    try:
        cert, key = read_file(args.ssl_certfile), read_file(args.ssl_keyfile)
    except OSError as exc:
        raise StartupError(f"FileNotFoundError: [Errno 2] No such file or directory: {exc.filename or ''!r}") from exc
    try:
        return ssl_context_from_pem(cert, key)
    except (ssl.SSLError, ValueError) as exc:
        raise StartupError(f"ssl.SSLError: {exc}") from exc


def _keep_alive_s(env: Mapping[str, str]) -> int:
    """VLLM_HTTP_TIMEOUT_KEEP_ALIVE: vllm/envs.py reads it with ``int(os.getenv(..., "5"))`` as the API server
    starts its HTTP server, so a bad value fails the start-up there."""
    try:
        return int(env.get("VLLM_HTTP_TIMEOUT_KEEP_ALIVE", str(VLLM_KEEP_ALIVE_S)))
    except ValueError as exc:
        raise StartupError(f"ValueError: {exc} (VLLM_HTTP_TIMEOUT_KEEP_ALIVE)") from exc


def _gib(n: float) -> str:
    return f"{n / physics.GiB:.2f} GiB"


def _log_prefix() -> str:
    return "INFO " + time.strftime("%m-%d %H:%M:%S")


def build_engine_config(args: ServeArgs, env: Mapping[str, str]) -> EngineConfig:
    """Resolve model and GPU and build the engine config; raises :class:`StartupError` like vLLM would fail."""
    product = env.get("LLMD_LAB_GPU_PRODUCT", "")
    try:
        count = int(env.get("LLMD_LAB_GPU_COUNT", "1" if product else "0"))
    except ValueError as exc:
        raise StartupError(
            f"LLMD_LAB_GPU_COUNT must be an integer, got {env.get('LLMD_LAB_GPU_COUNT')!r}"
        ) from exc
    if not product or count < 1:
        raise StartupError("RuntimeError: Failed to infer device type (no GPU is visible to this container)")
    try:
        gpu = resolve_gpu(product)
    except UnknownProfileError as exc:
        raise StartupError(f"RuntimeError: {exc}") from exc
    if args.tensor_parallel_size > count:
        raise StartupError(
            f"ValueError: World size ({args.tensor_parallel_size}) is larger than the number of available GPUs "
            f"({count}) in this node. Make sure to set `tensor_parallel_size` to at most {count}."
        )
    mounted = args.model.startswith("/mnt/models")
    model_ref = (env.get("LLMD_LAB_MODEL_URI") or env.get("STORAGE_URI")) if mounted else None
    try:
        model = resolve_model(model_ref or args.model, served_model_names=args.served_model_name)
    except UnknownProfileError as exc:
        hint = (
            " (/mnt/models carries no name: set LLMD_LAB_MODEL_URI to the model's URI, e.g. hf://Qwen/Qwen3-0.6B)"
            if mounted and not model_ref
            else ""
        )
        raise StartupError(f"OSError: {exc}{hint}") from exc
    if model.num_attention_heads % args.tensor_parallel_size:
        raise StartupError(
            f"ValueError: Total number of attention heads ({model.num_attention_heads}) must be divisible by "
            f"tensor parallel size ({args.tensor_parallel_size})."
        )
    return EngineConfig(
        model=model,
        gpu=gpu,
        served_model_name=args.served_model_name[0],
        tensor_parallel_size=args.tensor_parallel_size,
        gpu_memory_utilization=args.gpu_memory_utilization,
        max_model_len=args.max_model_len,
        max_num_seqs=args.max_num_seqs,
        max_num_batched_tokens=args.max_num_batched_tokens,
        block_size=args.block_size,
        enable_prefix_caching=args.enable_prefix_caching,
        enable_chunked_prefill=args.enable_chunked_prefill,
        long_prefill_token_threshold=args.long_prefill_token_threshold,
        num_gpu_blocks_override=args.num_gpu_blocks_override,
        python_hash_seed=env.get("PYTHONHASHSEED"),
        enable_kv_cache_events=bool(args.kv_events_config and args.kv_events_config.enable_kv_cache_events),
    ).resolved()


def check_fits(config: EngineConfig) -> physics.MemoryPlan:
    """vLLM's memory checks: weights must load, something must be left for the KV cache, and one sequence of
    ``max_model_len`` tokens must fit in it. Raises :class:`StartupError` with vLLM's messages."""
    plan = config.memory_plan()
    gpu, model = config.gpu, config.model
    free_for_weights = plan.total_bytes - plan.non_torch_bytes
    if plan.weight_bytes > free_for_weights:
        free = free_for_weights % (1 << 30)  # what is left when the next 1 GiB shard does not fit
        raise StartupError(
            f"torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 1024.00 MiB. GPU 0 has a total capacity "
            f"of {_gib(plan.total_bytes)} of which {_gib(free)} is free. Loading {model.name} needs "
            f"{_gib(plan.weight_bytes)} of weights per GPU (tensor_parallel_size={config.tensor_parallel_size}, "
            f"{gpu.name})."
        )
    if plan.kv_cache_bytes <= 0 or plan.num_gpu_blocks == 0:
        raise StartupError(
            "ValueError: No available memory for the cache blocks. Try increasing `gpu_memory_utilization` when "
            f"initializing the engine. (requested {_gib(plan.requested_bytes)} = {config.gpu_memory_utilization} × "
            f"{_gib(plan.total_bytes)}; weights {_gib(plan.weight_bytes)}, activations {_gib(plan.activation_bytes)}, "
            f"non-torch {_gib(plan.non_torch_bytes)})"
        )
    blocks = config.num_gpu_blocks_override or plan.num_gpu_blocks
    max_tokens = blocks * config.block_size
    assert config.max_model_len is not None
    if config.max_model_len > max_tokens:
        raise StartupError(
            f"ValueError: To serve at least one request with the models's max seq len ({config.max_model_len}), "
            f"({_gib(config.max_model_len * plan.kv_bytes_per_token)} KV cache is needed, which is larger than the "
            f"available KV cache memory ({_gib(plan.kv_cache_bytes)}). Based on the available memory, the estimated "
            f"maximum model length is {max_tokens}. Try increasing `gpu_memory_utilization` or decreasing "
            "`max_model_len` when initializing the engine."
        )
    return plan


async def serve(
    argv: Sequence[str] | str,
    *,
    host: str,
    port: int | None,
    env: Mapping[str, str],
    log: Callable[[str], None],
    resolve_host: ResolveHost | None = None,
    read_file: ReadFile | None = None,
) -> Replica:
    """Start one simulated vLLM replica and return once it listens (``ready`` is set).

    Everything a real ``vllm serve`` would fail on raises :class:`StartupError` (bad flags exit 2, the rest 1),
    after the simulated time vLLM would have spent getting there (weights that do not fit fail part-way
    through loading; a KV cache that is too small fails after loading). ``env`` supplies the hardware
    (``LLMD_LAB_GPU_PRODUCT``, ``LLMD_LAB_GPU_COUNT``), ``LLMD_LAB_TIME_SCALE``, ``POD_NAME``/``POD_NAMESPACE``/
    ``POD_IP``, ``PYTHONHASHSEED``, ``VLLM_HTTP_TIMEOUT_KEEP_ALIVE`` (seconds an idle connection stays open,
    default 5) and optionally ``LLMD_LAB_MODEL_URI`` or ``STORAGE_URI`` (what
    ``/mnt/models`` holds). ``resolve_host`` is the pod's DNS: it turns a name in an endpoint the engine
    connects to (``--kv-events-config``'s ``tcp://<name>-epp-service:5557``) into an address.
    ``read_file`` reads the container's mounted files (``--ssl-certfile``); None: no mounts, plain HTTP.
    """
    try:
        args = parse_args(argv)
    except ArgsError as exc:
        for line in exc.message.splitlines():
            log(line)
        raise StartupError(exc.message, exc.exit_code) from exc
    try:
        time_scale = float(env.get("LLMD_LAB_TIME_SCALE", "1") or 1)
    except ValueError as exc:
        raise StartupError(
            f"LLMD_LAB_TIME_SCALE must be a number, got {env.get('LLMD_LAB_TIME_SCALE')!r}"
        ) from exc
    clock = RealClock(time_scale)
    p = _log_prefix
    log(f"{p()} [__init__.py:241] Automatically detected platform cuda.")
    log(f"{p()} [api_server.py:1805] vLLM API server version {VLLM_VERSION}")
    log(f"{p()} [utils.py:326] non-default args: {args.non_default}")
    if args.ignored:
        log(f"{p()} [arg_utils.py:1] flags accepted but not simulated: {sorted(args.ignored)}")
    try:
        config = build_engine_config(args, env)
    except StartupError as exc:
        log(
            f"ERROR {time.strftime('%m-%d %H:%M:%S')} [core.py:700] EngineCore failed to start. {exc.message}"
        )
        raise
    model = config.model
    log(
        f"{p()} [config.py:1] Resolved architecture for {model.name} ({model.weight_format} weights, {_gib(model.weight_bytes)})"
    )
    log(f"{p()} [config.py:1] Using max model len {config.max_model_len}")
    log(
        f"{p()} [config.py:1] Chunked prefill is enabled with max_num_batched_tokens={config.max_num_batched_tokens}."
        if config.enable_chunked_prefill
        else f"{p()} [config.py:1] Chunked prefill is disabled."
    )
    plan = config.memory_plan()
    load_s = physics.load_time_s(model, config.tensor_parallel_size)
    weight_load_s = load_s - physics.ENGINE_INIT_S
    log(f"{p()} [gpu_model_runner.py:1] Starting to load model {args.model}...")
    if plan.weight_bytes > plan.total_bytes - plan.non_torch_bytes:
        # the allocation fails part-way through loading, once the GPU is full
        await clock.sleep(weight_load_s * (plan.total_bytes - plan.non_torch_bytes) / plan.weight_bytes)
        try:
            check_fits(config)
        except StartupError as exc:
            log(
                f"ERROR {time.strftime('%m-%d %H:%M:%S')} [core.py:700] EngineCore failed to start. {exc.message}"
            )
            raise
    await clock.sleep(weight_load_s)
    log(
        f"{p()} [gpu_model_runner.py:1953] Model loading took {_gib(plan.weight_bytes)} and {weight_load_s:.2f} seconds"
    )
    try:
        plan = check_fits(config)
    except StartupError as exc:
        log(
            f"ERROR {time.strftime('%m-%d %H:%M:%S')} [core.py:700] EngineCore failed to start. {exc.message}"
        )
        raise
    log(f"{p()} [gpu_worker.py:276] Available KV cache memory: {_gib(plan.kv_cache_bytes)}")
    kv_publisher = await _kv_publisher(args, config, env.get("POD_IP", host), resolve_host, log)
    sink = kv_publisher.publish if kv_publisher is not None else None
    engine = LLMEngine(config, seed=0, kv_event_sink=sink)
    await clock.sleep(physics.ENGINE_INIT_S)
    tokens = engine.num_gpu_blocks * config.block_size
    log(f"{p()} [kv_cache_utils.py:849] GPU KV cache size: {tokens:,} tokens")
    log(
        f"{p()} [kv_cache_utils.py:853] Maximum concurrency for {config.max_model_len:,} tokens per request: {tokens / (config.max_model_len or 1):.2f}x"
    )
    log(f"{p()} [block_pool.py:1] # GPU blocks: {engine.num_gpu_blocks}, block size: {config.block_size}")
    log(
        f"{p()} [core.py:214] init engine (profile, create kv cache, warmup model) took {physics.ENGINE_INIT_S:.2f} seconds"
    )
    async_llm = AsyncLLM(engine, clock)
    listen_port = port if port is not None else args.port
    if args.headless:
        return _start_headless(args, async_llm, host, listen_port, kv_publisher, log)
    if args.data_parallel_size > 1:
        log(f"{p()} [core.py:1] Started DP Coordinator process; data parallel size {args.data_parallel_size}, "
            f"{args.data_parallel_size_local} local engine(s), RPC port {args.data_parallel_rpc_port}")
    app = create_app(async_llm, args.served_model_name, log=log, log_requests=not args.disable_log_requests,
                     enable_prompt_tokens_details=args.enable_prompt_tokens_details)
    replica = Replica(engine=async_llm, app=app, host=host, port=listen_port, _publisher=kv_publisher)
    try:
        tls = _tls_context(args, read_file, log)
        keep_alive_s = _keep_alive_s(env)
    except StartupError as exc:
        await replica._finish()
        log(f"ERROR {time.strftime('%m-%d %H:%M:%S')} [api_server.py:1] {exc.message}")
        raise
    await _listen(replica, tls, log, keep_alive_s)
    log(f"{p()} [api_server.py:1880] Starting vLLM API server 0 on {replica.url}")
    log("INFO:     Started server process [" + str(os.getpid()) + "]")
    log("INFO:     Waiting for application startup.")
    log("INFO:     Application startup complete.")
    replica._stats_task = asyncio.get_running_loop().create_task(
        _log_stats(async_llm, log), name="vllm-stats"
    )
    replica.ready.set()
    return replica


async def _kv_publisher(args: ServeArgs, config: EngineConfig, pod_ip: str, resolve_host: ResolveHost | None,
                        log: Callable[[str], None]) -> ZmqEventPublisher | None:
    """vLLM publishes KV events only when ``--kv-events-config`` enables them (ZMQ publisher)."""
    kv_cfg = args.kv_events_config
    if kv_cfg is None or not kv_cfg.enable_kv_cache_events or kv_cfg.publisher != "zmq":
        return None
    topic = kv_cfg.topic or f"kv@{pod_ip}@{config.served_model_name}"
    topic = topic.replace("${POD_IP}", pod_ip).replace("$POD_IP", pod_ip)
    endpoint = await _resolve_endpoint(kv_cfg.endpoint, resolve_host, log)
    publisher = ZmqEventPublisher(endpoint, topic, hwm=kv_cfg.hwm)
    log(f"{_log_prefix()} [kv_events.py:1] KV events publisher connected to {kv_cfg.endpoint} with topic {topic!r}")
    return publisher


ResolveHost = Callable[[str], Awaitable[str | None]]
"""``resolve_host(name)`` → the address a pod's resolver gives for ``name``, or ``None`` (not found)."""
_DNS_ATTEMPTS = 20
_DNS_RETRY_S = 0.25


async def _resolve_endpoint(endpoint: str, resolve_host: ResolveHost | None, log: Callable[[str], None]) -> str:
    """``tcp://name:port`` with ``name`` resolved the way the pod's resolver would (retrying while a new
    Service gets its cluster IP); binds (``*``), IP literals and unresolvable names are left as they are."""
    m = re.fullmatch(r"(tcp://)([^:/\[\]]+)(:\d+.*)", endpoint)
    if resolve_host is None or m is None or m.group(2) == "*":
        return endpoint
    for _ in range(_DNS_ATTEMPTS):
        address = await resolve_host(m.group(2))
        if address:
            return f"{m.group(1)}{address}{m.group(3)}"
        await asyncio.sleep(_DNS_RETRY_S)
    log(f"WARNING {time.strftime('%m-%d %H:%M:%S')} [kv_events.py:1] cannot resolve {m.group(2)!r}: KV events "
        f"sent to {endpoint} will not arrive")
    return endpoint


def _start_headless(args: ServeArgs, engine: AsyncLLM, host: str, port: int, publisher: ZmqEventPublisher | None,
                    log: Callable[[str], None]) -> Replica:
    """``vllm serve --headless``: the DP ranks' engine cores run and hand-shake with the leader; no HTTP API
    listens, so the pod has nothing to probe (KServe's worker template has no readiness probe)."""
    address = f"tcp://{args.data_parallel_address or '127.0.0.1'}:{args.data_parallel_rpc_port}"
    log(f"{_log_prefix()} [serve.py:1] Launching {args.data_parallel_size_local} data parallel engine(s) in "
        f"headless mode, with head node address {address}.")
    first = args.data_parallel_start_rank
    for rank in range(first, first + args.data_parallel_size_local):
        log(f"{_log_prefix()} [parallel_state.py:1] DP rank {rank}, PP rank 0, TP rank 0")
    replica = Replica(engine=engine, app=None, host=host, port=port, _publisher=publisher)
    replica.ready.set()
    return replica


async def _log_stats(engine: AsyncLLM, log: Callable[[str], None], interval_s: float = 10.0) -> None:
    """vLLM's periodic ``LoggingStatLogger`` line, every ``interval_s`` simulated seconds while busy."""
    last = engine.engine.stats()
    while True:
        await engine.clock.sleep(interval_s)
        now = engine.engine.stats()
        prompt = now.num_prompt_tokens - last.num_prompt_tokens
        generated = now.num_generation_tokens - last.num_generation_tokens
        queries = now.prefix_cache_queries - last.prefix_cache_queries
        hits = now.prefix_cache_hits - last.prefix_cache_hits
        if prompt or generated or now.num_running_reqs or now.num_waiting_reqs:
            log(
                f"{_log_prefix()} [loggers.py:123] Engine 000: Avg prompt throughput: {prompt / interval_s:.1f} "
                f"tokens/s, Avg generation throughput: {generated / interval_s:.1f} tokens/s, Running: "
                f"{now.num_running_reqs} reqs, Waiting: {now.num_waiting_reqs} reqs, GPU KV cache usage: "
                f"{100 * now.kv_cache_usage:.1f}%, Prefix cache hit rate: {100 * hits / queries if queries else 0:.1f}%"
            )
        last = now


async def _listen(replica: Replica, tls: ssl.SSLContext | None, log: Callable[[str], None],
                  keep_alive_s: float) -> None:
    assert replica.app is not None
    try:
        # vLLM runs uvicorn without a graceful-shutdown timeout (SIGTERM waits for open responses) and closes a
        # connection idle for VLLM_HTTP_TIMEOUT_KEEP_ALIVE seconds (default 5; vllm/entrypoints/openai/api_server.py)
        replica._server = await start_server(replica.app, replica.host, replica.port, name=f"vllm-{replica.port}",
                                             ssl_context=tls, graceful_shutdown_s=None, log_level="critical",
                                             keep_alive_s=keep_alive_s)
    except BindError as exc:
        await replica._finish()
        message = (f"OSError: [Errno 98] error while attempting to bind on address ('{replica.host}', {replica.port}): "
                   "address already in use")
        log(f"ERROR {time.strftime('%m-%d %H:%M:%S')} [api_server.py:1] {message}")
        raise StartupError(message) from exc
    replica.scheme = replica._server.scheme
