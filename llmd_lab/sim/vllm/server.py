"""The simulated vLLM's OpenAI-compatible HTTP server and its start-up (``vllm serve``).

``create_app`` builds the Starlette app for one replica; ``serve`` is what the lab's kubelet runs for a
``vllm serve …`` container: parse the args, check the model fits the GPU like vLLM's memory profiling does
(else :class:`StartupError` with vLLM's kind of message), write vLLM's start-up log, wait the simulated
load time, then listen with uvicorn. Many replicas share one event loop, so request handling avoids heavy
per-request work (plain dicts + ``json.dumps``, no pydantic).

Response bodies and SSE chunks follow vLLM's ``serving_chat.py`` / ``serving_completion.py``; errors use the
OpenAI-style ``{"error": {message, type, param, code}}`` body vLLM returns. Every response carries
``x-inference-pod`` / ``x-inference-namespace`` / ``x-inference-port`` as llm-d-inference-sim sends them, so a
notebook can show which replica answered. ``usage.prompt_tokens_details.cached_tokens`` is always filled
(vLLM needs ``--enable-prompt-tokens-details`` for it; the lab wants it visible).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from llmd_lab.sim.vllm import physics
from llmd_lab.sim.vllm.args import ArgsError, ServeArgs, parse_args
from llmd_lab.sim.vllm.async_engine import AsyncLLM, RealClock
from llmd_lab.sim.vllm.engine import EngineConfig, EngineRequest, LLMEngine, RequestOutput
from llmd_lab.sim.vllm.kv_events import KVEventBatch, ZmqEventPublisher
from llmd_lab.sim.vllm.metrics import PrometheusStatLogger
from llmd_lab.sim.vllm.profiles import UnknownProfileError, resolve_gpu, resolve_model
from llmd_lab.sim.vllm.request import SamplingParams

VLLM_VERSION = "0.10.1.1"


@dataclass(frozen=True)
class PodIdentity:
    """Which pod a response came from (env ``POD_NAME``, ``POD_NAMESPACE``, and the listening port)."""

    name: str = ""
    namespace: str = ""
    port: int = 8000
    ip: str = ""

    def headers(self) -> dict[str, str]:
        return {
            "x-inference-pod": self.name,
            "x-inference-namespace": self.namespace,
            "x-inference-port": str(self.port),
        }


class OpenAIError(Exception):
    def __init__(
        self, status: int, message: str, err_type: str = "BadRequestError", param: str | None = None
    ):
        super().__init__(message)
        self.status, self.message, self.err_type, self.param = status, message, err_type, param

    def response(self, headers: Mapping[str, str]) -> JSONResponse:
        body = {
            "error": {
                "message": self.message,
                "type": self.err_type,
                "param": self.param,
                "code": self.status,
            }
        }
        return JSONResponse(body, status_code=self.status, headers=dict(headers))


def _chat_chunk_choice(out: RequestOutput) -> dict[str, Any]:
    """A chat stream chunk's choice: the text as a delta; ``stop_reason`` only on the last one."""
    choice: dict[str, Any] = {"index": 0, "delta": {"content": out.text}, "logprobs": None,
                              "finish_reason": out.finish_reason}
    if out.finished:
        choice["stop_reason"] = out.stop_reason
    return choice


def _completion_chunk_choice(out: RequestOutput) -> dict[str, Any]:
    """A completions stream chunk's choice: ``stop_reason`` is always present, null until the end."""
    return {"index": 0, "text": out.text, "logprobs": None, "finish_reason": out.finish_reason,
            "stop_reason": out.stop_reason if out.finished else None}


def _sse(obj: object) -> bytes:
    return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"


class OpenAIServing:
    """Request handling shared by the completion and chat endpoints."""

    def __init__(
        self,
        engine: AsyncLLM,
        served_model_names: Sequence[str],
        pod: PodIdentity,
        *,
        stat_logger: PrometheusStatLogger | None = None,
        log: Callable[[str], None] | None = None,
        log_requests: bool = False,
        model_path: str | None = None,
    ) -> None:
        self.engine = engine
        self.served_model_names = list(served_model_names)
        self.pod = pod
        self.headers = pod.headers()
        self.stat_logger = stat_logger or PrometheusStatLogger(
            engine.engine, model_name=self.served_model_names[0]
        )
        if self.stat_logger not in engine.observers:
            engine.observers.append(self.stat_logger)
        self.log = log
        self.log_requests = log_requests
        self.created = int(time.time())
        cfg = engine.engine.config
        assert cfg.max_model_len is not None
        self.max_model_len = cfg.max_model_len
        self.root = model_path or cfg.model.name  # vLLM reports the path it loaded, e.g. /mnt/models

    # -- helpers ---------------------------------------------------------------------------------------------
    async def _json_body(self, request: Request) -> dict:
        raw = await request.body()
        try:
            body = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise OpenAIError(400, f"JSON decode error: {exc}") from exc
        if not isinstance(body, dict):
            raise OpenAIError(400, "Input should be a valid dictionary or object to extract fields from")
        return body

    def _check_model(self, body: Mapping) -> str:
        model = body.get("model")
        if model is None:
            return self.served_model_names[0]
        if model not in self.served_model_names:
            raise OpenAIError(404, f"The model `{model}` does not exist.", "NotFoundError", "model")
        return model

    def _sampling_params(
        self, body: Mapping, num_prompt_tokens: int, default_max: int | None
    ) -> SamplingParams:
        for key in ("n", "best_of"):
            if body.get(key, 1) not in (1, None):
                raise OpenAIError(
                    400, f"{key} must be 1 in the simulated vLLM, got {body.get(key)!r}", param=key
                )
        max_tokens = body.get("max_completion_tokens")
        if max_tokens is None:
            max_tokens = body.get("max_tokens")
        if max_tokens is None:
            max_tokens = default_max if default_max is not None else self.max_model_len - num_prompt_tokens
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool):
            raise OpenAIError(400, f"max_tokens must be an integer, got {max_tokens!r}", param="max_tokens")
        if max_tokens < 1:
            raise OpenAIError(400, f"max_tokens must be at least 1, got {max_tokens}.", param="max_tokens")
        if num_prompt_tokens >= self.max_model_len:
            raise OpenAIError(
                400,
                f"This model's maximum context length is {self.max_model_len} tokens. However, your request has "
                f"{num_prompt_tokens} input tokens. Please reduce the length of the input messages.",
                param="messages",
            )
        if num_prompt_tokens + max_tokens > self.max_model_len:
            raise OpenAIError(
                400,
                f"This model's maximum context length is {self.max_model_len} tokens. However, you requested "
                f"{num_prompt_tokens + max_tokens} tokens ({num_prompt_tokens} in the messages, {max_tokens} in the "
                "completion). Please reduce the length of the messages or completion.",
                param="max_tokens",
            )
        stop = body.get("stop") or ()
        if isinstance(stop, str):
            stop = (stop,)
        if not isinstance(stop, list | tuple) or not all(isinstance(s, str) for s in stop):
            raise OpenAIError(400, "stop must be a string or a list of strings", param="stop")
        ignore_eos = body.get("ignore_eos", False)
        min_tokens = body.get("min_tokens", 0)
        if not isinstance(ignore_eos, bool) or not isinstance(min_tokens, int):
            raise OpenAIError(400, "ignore_eos must be a boolean and min_tokens an integer")
        return SamplingParams(
            max_tokens=max_tokens, stop=tuple(stop), ignore_eos=ignore_eos, min_tokens=min_tokens
        )

    @staticmethod
    def _usage(o: RequestOutput) -> dict:
        return {
            "prompt_tokens": o.num_prompt_tokens,
            "total_tokens": o.num_prompt_tokens + o.num_output_tokens,
            "completion_tokens": o.num_output_tokens,
            "prompt_tokens_details": {"cached_tokens": o.num_cached_tokens},
        }

    def _stream_flags(self, body: Mapping) -> tuple[bool, bool]:
        stream = body.get("stream", False)
        if not isinstance(stream, bool):
            raise OpenAIError(400, "stream must be a boolean", param="stream")
        options = body.get("stream_options") or {}
        if not isinstance(options, dict):
            raise OpenAIError(400, "stream_options must be an object", param="stream_options")
        if options and not stream:
            raise OpenAIError(
                400, "Stream options can only be defined when `stream=True`.", param="stream_options"
            )
        return stream, bool(options.get("include_usage", False))

    async def _submit(self, request_id: str, prompt_ids: list[int], params: SamplingParams, body: Mapping):
        if self.log_requests and self.log:
            self.log(
                f"INFO [logger.py:43] Received request {request_id}: prompt tokens: {len(prompt_ids)}, "
                f"params: max_tokens={params.max_tokens}, stop={list(params.stop)}, ignore_eos={params.ignore_eos}"
            )
        self.stat_logger.observe_request(request_id, params.max_tokens)
        salt = body.get("cache_salt")
        try:
            return self.engine.generate(EngineRequest(request_id, prompt_ids, params, cache_salt=salt))
        except ValueError as exc:  # e.g. a prompt that can never fit the KV cache
            raise OpenAIError(400, str(exc)) from exc

    async def _collect(
        self, request: Request, gen: AsyncIterator[RequestOutput]
    ) -> tuple[str, RequestOutput | None]:
        """Run a non-streaming request to the end; a client that disconnects aborts it (vLLM does the same)."""
        parts: list[str] = []
        last: RequestOutput | None = None

        async def consume() -> None:
            nonlocal last
            async for out in gen:
                parts.append(out.text)
                last = out

        consumer = asyncio.ensure_future(consume())
        watcher = asyncio.ensure_future(_wait_disconnect(request))
        try:
            await asyncio.wait({consumer, watcher}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            watcher.cancel()
            if not consumer.done():
                consumer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await consumer
                await gen.aclose()
        if consumer.done() and not consumer.cancelled() and consumer.exception() is not None:
            raise consumer.exception()  # type: ignore[misc]
        return "".join(parts), last

    # -- endpoints -------------------------------------------------------------------------------------------
    async def models(self, request: Request) -> Response:
        data = [
            {
                "id": name,
                "object": "model",
                "created": self.created,
                "owned_by": "vllm",
                "root": self.root,
                "parent": None,
                "max_model_len": self.max_model_len,
                "permission": [],
            }
            for name in self.served_model_names
        ]
        return JSONResponse({"object": "list", "data": data}, headers=self.headers)

    async def chat_completions(self, request: Request) -> Response:
        try:
            body = await self._json_body(request)
            model = self._check_model(body)
            messages = body.get("messages")
            if (
                not isinstance(messages, list)
                or not messages
                or not all(isinstance(m, dict) for m in messages)
            ):
                raise OpenAIError(
                    400, "messages must be a non-empty list of message objects", param="messages"
                )
            try:
                prompt = self.engine.tokenizer.apply_chat_template(messages)
            except ValueError as exc:
                raise OpenAIError(400, str(exc), param="messages") from exc
            prompt_ids = self.engine.tokenizer.encode(prompt)
            stream, include_usage = self._stream_flags(body)
            params = self._sampling_params(body, len(prompt_ids), None)
            request_id = f"chatcmpl-{uuid.uuid4().hex}"
            gen = await self._submit(request_id, prompt_ids, params, body)
        except OpenAIError as err:
            return err.response(self.headers)
        created = int(time.time())
        return await self._reply(
            request, gen, stream, include_usage,
            base={"id": request_id, "object": "chat.completion.chunk", "created": created, "model": model},
            opening={"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None,
                     "finish_reason": None},
            chunk=_chat_chunk_choice,
            full=lambda text, last: {
                "id": request_id,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text, "refusal": None, "tool_calls": [],
                                    "reasoning_content": None},
                        "logprobs": None,
                        "finish_reason": last.finish_reason,
                        "stop_reason": last.stop_reason,
                    }
                ],
                "service_tier": None,
                "system_fingerprint": None,
                "usage": self._usage(last),
                "prompt_logprobs": None,
                "kv_transfer_params": None,
            },
        )  # fmt: skip

    async def _reply(
        self,
        request: Request,
        gen: AsyncIterator[RequestOutput],
        stream: bool,
        include_usage: bool,
        *,
        base: dict[str, Any],
        opening: dict[str, Any] | None,
        chunk: Callable[[RequestOutput], dict[str, Any]],
        full: Callable[[str, RequestOutput], dict[str, Any]],
    ) -> Response:
        """One answer path for both OpenAI endpoints: an SSE stream of ``chunk`` choices, or the whole
        body ``full`` builds once generation ends (499 when the client left first)."""
        if stream:
            return StreamingResponse(
                self._sse_stream(gen, base, include_usage, opening, chunk),
                media_type="text/event-stream",
                headers=self.headers,
            )
        text, last = await self._collect(request, gen)
        if last is None:
            return Response(status_code=499, headers=self.headers)
        return JSONResponse(full(text, last), headers=self.headers)

    async def _sse_stream(
        self,
        gen: AsyncIterator[RequestOutput],
        base: dict[str, Any],
        include_usage: bool,
        opening: dict[str, Any] | None,
        chunk: Callable[[RequestOutput], dict[str, Any]],
    ) -> AsyncIterator[bytes]:
        """vLLM's SSE framing: optional opening chunk, one chunk per output, a usage-only chunk when
        ``stream_options.include_usage`` asked for it, then ``[DONE]``."""
        usage_field = {"usage": None} if include_usage else {}
        try:
            if opening is not None:
                yield _sse({**base, "choices": [opening], **usage_field})
            last: RequestOutput | None = None
            async for out in gen:
                last = out
                yield _sse({**base, "choices": [chunk(out)], **usage_field})
            if include_usage and last is not None:
                yield _sse({**base, "choices": [], "usage": self._usage(last)})
            yield b"data: [DONE]\n\n"
        finally:
            await gen.aclose()  # a disconnected client lands here: aborts the request, frees its blocks

    async def completions(self, request: Request) -> Response:
        try:
            body = await self._json_body(request)
            model = self._check_model(body)
            prompt = body.get("prompt")
            if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str | list):
                prompt = prompt[0]
            if isinstance(prompt, str):
                prompt_ids = self.engine.tokenizer.encode(prompt)
            elif isinstance(prompt, list) and prompt and all(isinstance(t, int) for t in prompt):
                prompt_ids = list(prompt)
            else:
                raise OpenAIError(
                    400, "prompt must be a string, a list of token ids, or a one-element list of either "
                    "(batched prompts are not simulated)", param="prompt",
                )  # fmt: skip
            if not prompt_ids:
                raise OpenAIError(400, "The prompt cannot be empty.", param="prompt")
            stream, include_usage = self._stream_flags(body)
            params = self._sampling_params(body, len(prompt_ids), 16)
            request_id = f"cmpl-{uuid.uuid4().hex}"
            gen = await self._submit(request_id, prompt_ids, params, body)
        except OpenAIError as err:
            return err.response(self.headers)
        created = int(time.time())
        return await self._reply(
            request, gen, stream, include_usage,
            base={"id": request_id, "object": "text_completion", "created": created, "model": model},
            opening=None,
            chunk=_completion_chunk_choice,
            full=lambda text, last: {
                "id": request_id,
                "object": "text_completion",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": last.finish_reason,
                             "stop_reason": last.stop_reason, "prompt_logprobs": None}],
                "service_tier": None,
                "system_fingerprint": None,
                "usage": self._usage(last),
                "kv_transfer_params": None,
            },
        )  # fmt: skip

    async def tokenize(self, request: Request) -> Response:
        try:
            body = await self._json_body(request)
            if "model" in body:
                self._check_model(body)
            tok = self.engine.tokenizer
            if "messages" in body:
                messages = body["messages"]
                if not isinstance(messages, list):
                    raise OpenAIError(400, "messages must be a list", param="messages")
                text = tok.apply_chat_template(
                    messages, add_generation_prompt=body.get("add_generation_prompt", True)
                )
            elif isinstance(body.get("prompt"), str):
                text = body["prompt"]
            else:
                raise OpenAIError(400, "either 'prompt' (a string) or 'messages' is required")
        except (OpenAIError, ValueError) as err:
            if isinstance(err, ValueError):
                err = OpenAIError(400, str(err))
            return err.response(self.headers)
        ids = tok.encode(text)
        return JSONResponse(
            {"count": len(ids), "max_model_len": self.max_model_len, "tokens": ids, "token_strs": None},
            headers=self.headers,
        )

    async def health(self, request: Request) -> Response:
        if self.engine.errored is not None:
            return Response(status_code=503, headers=self.headers)
        return Response(status_code=200, headers=self.headers)

    async def version(self, request: Request) -> Response:
        return JSONResponse({"version": VLLM_VERSION}, headers=self.headers)

    async def metrics(self, request: Request) -> Response:
        return Response(
            self.stat_logger.render(),
            media_type="text/plain; version=0.0.4; charset=utf-8",
            headers=self.headers,
        )


async def _wait_disconnect(request: Request) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


def create_app(
    engine: AsyncLLM,
    served_model_names: Sequence[str],
    pod_identity: PodIdentity | None = None,
    *,
    log: Callable[[str], None] | None = None,
    log_requests: bool = False,
) -> Starlette:
    """The OpenAI-compatible app for one replica (the same routes as vLLM's API server, plus ``/ready``)."""
    serving = OpenAIServing(
        engine, served_model_names, pod_identity or PodIdentity(), log=log, log_requests=log_requests
    )
    routes = [
        Route("/v1/models", serving.models, methods=["GET"]),
        Route("/v1/chat/completions", serving.chat_completions, methods=["POST"]),
        Route("/v1/completions", serving.completions, methods=["POST"]),
        Route("/tokenize", serving.tokenize, methods=["POST"]),
        Route("/health", serving.health, methods=["GET"]),
        Route("/ready", serving.health, methods=["GET"]),
        Route("/version", serving.version, methods=["GET"]),
        Route("/metrics", serving.metrics, methods=["GET"]),
    ]
    app = Starlette(routes=routes)
    app.state.serving = serving
    return app


# -- start-up -----------------------------------------------------------------------------------------------


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
    _server: object | None = None
    _main_loop: asyncio.Task | None = None
    _publisher: ZmqEventPublisher | None = None
    _stats_task: asyncio.Task | None = None
    _stopped: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def stop(self) -> None:
        """Stop listening, abort in-flight requests, close the KV-event publisher. Idempotent."""
        if self._stopped.is_set():
            return
        self.ready.clear()
        server = self._server
        if server is not None:
            server.should_exit = True  # type: ignore[attr-defined]
            if self._main_loop is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await self._main_loop
            await server.shutdown()  # type: ignore[attr-defined]
        if self._stats_task is not None:
            self._stats_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._stats_task
        await self.engine.shutdown()
        if self._publisher is not None:
            self._publisher.close()
        self._stopped.set()

    async def wait(self) -> int:
        """Wait until the replica stops; returns its exit code (0 after ``stop``)."""
        await self._stopped.wait()
        return 0


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
) -> Replica:
    """Start one simulated vLLM replica and return once it listens (``ready`` is set).

    Everything a real ``vllm serve`` would fail on raises :class:`StartupError` (bad flags exit 2, the rest 1),
    after the simulated time vLLM would have spent getting there (weights that do not fit fail part-way
    through loading; a KV cache that is too small fails after loading). ``env`` supplies the hardware
    (``LLMD_LAB_GPU_PRODUCT``, ``LLMD_LAB_GPU_COUNT``), ``LLMD_LAB_TIME_SCALE``, ``POD_NAME``/``POD_NAMESPACE``/
    ``POD_IP``, ``PYTHONHASHSEED`` and optionally ``LLMD_LAB_MODEL_URI`` or ``STORAGE_URI`` (what
    ``/mnt/models`` holds). ``resolve_host`` is the pod's DNS: it turns a name in an endpoint the engine
    connects to (``--kv-events-config``'s ``tcp://<name>-epp-service:5557``) into an address.
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
    if args.ssl_certfile or args.ssl_keyfile or args.enable_ssl_refresh:
        log(
            f"{p()} [api_server.py:1] the lab serves plain HTTP: --ssl-certfile/--ssl-keyfile/--enable-ssl-refresh are accepted and not used"
        )
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
    kv_publisher: ZmqEventPublisher | None = None
    sink = None
    kv_cfg = args.kv_events_config
    if kv_cfg is not None and kv_cfg.enable_kv_cache_events and kv_cfg.publisher == "zmq":
        pod_ip = env.get("POD_IP", host)
        topic = kv_cfg.topic or f"kv@{pod_ip}@{config.served_model_name}"
        topic = topic.replace("${POD_IP}", pod_ip).replace("$POD_IP", pod_ip)
        endpoint = await _resolve_endpoint(kv_cfg.endpoint, resolve_host, log)
        kv_publisher = ZmqEventPublisher(endpoint, topic, hwm=kv_cfg.hwm)

        def sink(batch: KVEventBatch) -> None:
            kv_publisher.publish(batch)  # type: ignore[union-attr]

        log(f"{p()} [kv_events.py:1] KV events publisher connected to {kv_cfg.endpoint} with topic {topic!r}")
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
    pod = PodIdentity(
        env.get("POD_NAME", ""), env.get("POD_NAMESPACE", ""), listen_port, env.get("POD_IP", host)
    )
    app = create_app(
        async_llm, args.served_model_name, pod, log=log, log_requests=not args.disable_log_requests
    )
    replica = Replica(engine=async_llm, app=app, host=host, port=listen_port, _publisher=kv_publisher)
    await _start_uvicorn(replica, log)
    log(f"{p()} [api_server.py:1880] Starting vLLM API server 0 on http://{host}:{listen_port}")
    log("INFO:     Started server process [" + str(os.getpid()) + "]")
    log("INFO:     Waiting for application startup.")
    log("INFO:     Application startup complete.")
    replica._stats_task = asyncio.get_running_loop().create_task(
        _log_stats(async_llm, log), name="vllm-stats"
    )
    replica.ready.set()
    return replica


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


async def _start_uvicorn(replica: Replica, log: Callable[[str], None]) -> None:
    import uvicorn

    config = uvicorn.Config(
        replica.app, host=replica.host, port=replica.port, log_level="warning", access_log=False, lifespan="off",
        timeout_graceful_shutdown=1,
    )  # fmt: skip
    server = uvicorn.Server(config)
    config.load()
    server.lifespan = config.lifespan_class(config)
    try:
        await server.startup()
    except SystemExit as exc:  # uvicorn exits when it cannot bind
        await replica.engine.shutdown()
        if replica._publisher is not None:
            replica._publisher.close()
        message = f"OSError: [Errno 98] error while attempting to bind on address ('{replica.host}', {replica.port}): address already in use"
        log(f"ERROR {time.strftime('%m-%d %H:%M:%S')} [api_server.py:1] {message}")
        raise StartupError(message) from exc
    replica._server = server
    replica._main_loop = asyncio.get_running_loop().create_task(
        server.main_loop(), name=f"vllm-{replica.port}"
    )
