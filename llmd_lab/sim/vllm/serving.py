"""The simulated vLLM's OpenAI serving layer (vLLM's ``entrypoints/openai/serving_*.py``): one Starlette
app per replica over its engine. Start-up (``vllm serve``) lives in :mod:`llmd_lab.sim.vllm.server`.

Many replicas share one event loop, so request handling avoids heavy per-request work (plain dicts +
``json.dumps``, no pydantic). Response bodies and SSE chunks follow vLLM's ``serving_chat.py`` /
``serving_completion.py``; errors use the OpenAI-style ``{"error": {message, type, param, code}}`` body.
As vLLM does, no response header names the pod (``x-inference-pod`` is llm-d-inference-sim's, not vLLM's):
which pod served what is read from per-pod metrics (``llmd_lab.metrics``). ``usage.prompt_tokens_details``
is filled only with ``--enable-prompt-tokens-details`` (vLLM 0.10 ``serving_chat.py``: ``if
self.enable_prompt_tokens_details and num_cached_tokens``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any, NamedTuple

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from llmd_lab.sim.vllm.async_engine import AsyncLLM
from llmd_lab.sim.vllm.engine import EngineRequest, RequestOutput
from llmd_lab.sim.vllm.metrics import PrometheusStatLogger
from llmd_lab.sim.vllm.request import SamplingParams

VLLM_VERSION = "0.10.1.1"


class OpenAIError(Exception):
    def __init__(
        self, status: int, message: str, err_type: str = "BadRequestError", param: str | None = None
    ):
        super().__init__(message)
        self.status, self.message, self.err_type, self.param = status, message, err_type, param

    def response(self, headers: Mapping[str, str]) -> JSONResponse:
        body = {"error": {"message": self.message, "type": self.err_type, "param": self.param, "code": self.status}}
        return JSONResponse(body, status_code=self.status, headers=dict(headers))


def check_context_length(max_model_len: int, num_prompt_tokens: int, max_tokens: int) -> None:
    """vLLM's API server refuses, before the engine sees it, a prompt that with its ``max_tokens`` does not fit
    in ``--max-model-len`` (``serving_engine.py`` ``_validate_input``); shared with the discrete-event
    simulator so its benches refuse the same requests as a pod."""
    if num_prompt_tokens >= max_model_len:
        raise OpenAIError(
            400,
            f"This model's maximum context length is {max_model_len} tokens. However, your request has "
            f"{num_prompt_tokens} input tokens. Please reduce the length of the input messages.",
            param="messages",
        )
    if num_prompt_tokens + max_tokens > max_model_len:
        raise OpenAIError(
            400,
            f"This model's maximum context length is {max_model_len} tokens. However, you requested "
            f"{num_prompt_tokens + max_tokens} tokens ({num_prompt_tokens} in the messages, {max_tokens} in the "
            "completion). Please reduce the length of the messages or completion.",
            param="max_tokens",
        )


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


class _SSEResponse(StreamingResponse):
    """A stream whose generator is closed as soon as the response ends, also when the client went away
    (Starlette leaves it to the garbage collector then): closing it aborts the engine request, as vLLM's
    disconnect handling does."""

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self.body_iterator.aclose()  # type: ignore[attr-defined]


_ENCODE = json.JSONEncoder(separators=(",", ":")).encode  # json.dumps(obj, separators=(",", ":")), made once


def _sse(obj: object) -> bytes:
    return b"data: " + _ENCODE(obj).encode() + b"\n\n"


class _ChunkFrames:
    """The SSE frames of one stream's chunks, byte for byte ``_sse({**base, "choices": [choice], **usage})``:
    the head (id, object, created, model) is the same in every chunk, so it is encoded once per stream and
    only the choice once per token (the stream path runs once per token per replica, all in one loop)."""

    __slots__ = ("prefix", "suffix")

    def __init__(self, base: Mapping[str, Any], include_usage: bool) -> None:
        head = _ENCODE(dict(base)) if base else "{}"
        self.prefix = ("data: " + head[:-1] + ("," if base else "") + '"choices":[').encode()
        self.suffix = ("]" + (',"usage":null' if include_usage else "") + "}\n\n").encode()

    def __call__(self, choice: Mapping[str, Any]) -> bytes:
        return self.prefix + _ENCODE(choice).encode() + self.suffix


class _Accepted(NamedTuple):
    """A request that passed validation and was submitted to the engine."""

    request_id: str
    model: str
    gen: AsyncIterator[RequestOutput]
    stream: bool
    include_usage: bool


class OpenAIServing:
    """Request handling shared by the completion and chat endpoints."""

    def __init__(
        self,
        engine: AsyncLLM,
        served_model_names: Sequence[str],
        *,
        stat_logger: PrometheusStatLogger | None = None,
        log: Callable[[str], None] | None = None,
        log_requests: bool = False,
        model_path: str | None = None,
        enable_prompt_tokens_details: bool = False,
    ) -> None:
        self.engine = engine
        self.served_model_names = list(served_model_names)
        self.enable_prompt_tokens_details = enable_prompt_tokens_details
        self.headers: dict[str, str] = {}  # vLLM names no pod in its responses
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
        except RecursionError as exc:  # FastAPI (routing.py) answers any other parse failure with this 400
            raise OpenAIError(400, "There was an error parsing the body") from exc
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
        check_context_length(self.max_model_len, num_prompt_tokens, max_tokens)
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

    def _usage(self, o: RequestOutput) -> dict:
        usage: dict[str, Any] = {
            "prompt_tokens": o.num_prompt_tokens,
            "total_tokens": o.num_prompt_tokens + o.num_output_tokens,
            "completion_tokens": o.num_output_tokens,
            "prompt_tokens_details": None,
        }
        if self.enable_prompt_tokens_details and o.num_cached_tokens:
            usage["prompt_tokens_details"] = {"cached_tokens": o.num_cached_tokens}
        return usage

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
        left = False
        try:
            await asyncio.wait({consumer, watcher}, return_when=asyncio.FIRST_COMPLETED)
            left = not consumer.done()  # the client went away first: the request is aborted, not answered
        finally:
            watcher.cancel()
            if not consumer.done():
                consumer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await consumer
                await gen.aclose()
        if consumer.done() and not consumer.cancelled() and consumer.exception() is not None:
            raise consumer.exception()  # type: ignore[misc]
        return "".join(parts), None if left else last

    async def _accept(self, request: Request, prompt_ids_of: Callable[[dict], list[int]], *,
                      default_max: int | None, id_prefix: str) -> _Accepted:  # fmt: skip
        """What both generating endpoints do before answering, in vLLM's order: parse the body, check the
        model, tokenize the prompt, check the stream and sampling options, then submit to the engine."""
        body = await self._json_body(request)
        model = self._check_model(body)
        prompt_ids = prompt_ids_of(body)
        stream, include_usage = self._stream_flags(body)
        params = self._sampling_params(body, len(prompt_ids), default_max)
        request_id = f"{id_prefix}-{uuid.uuid4().hex}"
        gen = await self._submit(request_id, prompt_ids, params, body)
        return _Accepted(request_id, model, gen, stream, include_usage)

    def _chat_prompt_ids(self, body: Mapping) -> list[int]:
        """``messages`` through the chat template, then tokenized."""
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
            raise OpenAIError(400, "messages must be a non-empty list of message objects", param="messages")
        try:
            prompt = self.engine.tokenizer.apply_chat_template(messages)
        except ValueError as exc:
            raise OpenAIError(400, str(exc), param="messages") from exc
        return self.engine.tokenizer.encode(prompt)

    def _completion_prompt_ids(self, body: Mapping) -> list[int]:
        """``prompt`` as text or token ids (a one-element batch of either; larger batches are not simulated)."""
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
        return prompt_ids

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
        return await self._generate(
            request, self._chat_prompt_ids, default_max=None, id_prefix="chatcmpl",
            chunk_object="chat.completion.chunk",
            opening={"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None,
                     "finish_reason": None},
            chunk=_chat_chunk_choice,
            full=lambda head, text, last: {
                **head,
                "object": "chat.completion",
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

    async def completions(self, request: Request) -> Response:
        return await self._generate(
            request, self._completion_prompt_ids, default_max=16, id_prefix="cmpl",
            chunk_object="text_completion",
            opening=None,
            chunk=_completion_chunk_choice,
            full=lambda head, text, last: {
                **head,
                "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": last.finish_reason,
                             "stop_reason": last.stop_reason, "prompt_logprobs": None}],
                "service_tier": None,
                "system_fingerprint": None,
                "usage": self._usage(last),
                "kv_transfer_params": None,
            },
        )  # fmt: skip

    async def _generate(
        self,
        request: Request,
        prompt_ids_of: Callable[[dict], list[int]],
        *,
        default_max: int | None,
        id_prefix: str,
        chunk_object: str,
        opening: dict[str, Any] | None,
        chunk: Callable[[RequestOutput], dict[str, Any]],
        full: Callable[[dict[str, Any], str, RequestOutput], dict[str, Any]],
    ) -> Response:
        """One path for both OpenAI generating endpoints: accept the request, then answer with an SSE stream
        of ``chunk`` choices, or with the whole body ``full`` builds from the shared head (id, object,
        created, model) once generation ends (499 when the client left first)."""
        try:
            req = await self._accept(request, prompt_ids_of, default_max=default_max, id_prefix=id_prefix)
        except OpenAIError as err:
            return err.response(self.headers)
        head = {"id": req.request_id, "object": chunk_object, "created": int(time.time()), "model": req.model}
        if req.stream:
            return _SSEResponse(
                self._sse_stream(req.gen, head, req.include_usage, opening, chunk),
                media_type="text/event-stream",
                headers=self.headers,
            )
        text, last = await self._collect(request, req.gen)
        if last is None:
            return Response(status_code=499, headers=self.headers)
        return JSONResponse(full(head, text, last), headers=self.headers)

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
        frame = _ChunkFrames(base, include_usage)
        try:
            if opening is not None:
                yield frame(opening)
            last: RequestOutput | None = None
            async for out in gen:
                last = out
                yield frame(chunk(out))
            if include_usage and last is not None:
                yield _sse({**base, "choices": [], "usage": self._usage(last)})
            yield b"data: [DONE]\n\n"
        finally:
            await gen.aclose()  # a disconnected client lands here: aborts the request, frees its blocks

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
    *,
    log: Callable[[str], None] | None = None,
    log_requests: bool = False,
    enable_prompt_tokens_details: bool = False,
) -> Starlette:
    """The OpenAI-compatible app for one replica (the same routes as vLLM's API server, plus ``/ready``)."""
    serving = OpenAIServing(engine, served_model_names, log=log, log_requests=log_requests,
                            enable_prompt_tokens_details=enable_prompt_tokens_details)
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
