"""Fixtures for the public library's tests.

``openai_server`` is a tiny OpenAI-compatible streaming server (starlette + uvicorn on 127.0.0.1) that
behaves like a vLLM replica (plus llm-d-inference-sim's ``x-inference-pod``, which the kit must ignore): it streams one chunk per output token with a
fixed gap, reports ``usage`` with ``prompt_tokens_details.cached_tokens`` from a whole-prefix memory,
and answers 404 for an unknown model the way vLLM does. It lets the traffic client be tested before
(and independently of) the simulated vLLM.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route


@dataclass
class FakeVllm:
    model: str = "qwen"
    pod: str = "qwen-kserve-0"
    token_gap_s: float = 0.002
    seen_prefixes: set[str] = field(default_factory=set)
    requests: list[dict] = field(default_factory=list)
    headers: list[dict] = field(default_factory=list)

    def app(self) -> Starlette:
        async def chat(request: Request):
            body = await request.json()
            self.requests.append(body)
            # the client's source port tells connections apart (keep-alive vs one per request)
            self.headers.append({**request.headers, "x-client-port": str(request.client.port if request.client else "")})
            if body.get("model") != self.model:
                return JSONResponse(
                    {"object": "error", "message": f"The model `{body.get('model')}` does not exist.",
                     "type": "NotFoundError", "code": 404},
                    status_code=404,
                )  # fmt: skip
            if "messages" in body:
                prompt = "".join(f"{m['role']}:{m['content']}\n" for m in body["messages"])
            else:
                prompt = body["prompt"]
            words = prompt.split()
            # "cached" = longest previously seen word prefix, in 16-word blocks
            cached = 0
            for n in range(16, len(words), 16):
                if " ".join(words[:n]) in self.seen_prefixes:
                    cached = n
            for n in range(16, len(words) + 1, 16):
                self.seen_prefixes.add(" ".join(words[:n]))
            n_out = int(body.get("max_tokens", 16))
            chat_mode = "messages" in body

            async def stream():
                for i in range(n_out):
                    await asyncio.sleep(self.token_gap_s)
                    if chat_mode:
                        choice = {"index": 0, "delta": {"content": f"t{i} "}, "finish_reason": None}
                    else:
                        choice = {"index": 0, "text": f"t{i} ", "finish_reason": None}
                    yield f"data: {json.dumps({'choices': [choice], 'usage': None})}\n\n"
                usage = {
                    "prompt_tokens": len(words),
                    "completion_tokens": n_out,
                    "total_tokens": len(words) + n_out,
                    "prompt_tokens_details": {"cached_tokens": cached},
                }
                yield f"data: {json.dumps({'choices': [], 'usage': usage})}\n\n"
                yield "data: [DONE]\n\n"

            return StreamingResponse(
                stream(), media_type="text/event-stream", headers={"x-inference-pod": self.pod}
            )

        async def models(request: Request):
            return JSONResponse({"object": "list", "data": [{"id": self.model, "object": "model"}]})

        return Starlette(
            routes=[
                Route("/v1/chat/completions", chat, methods=["POST"]),
                Route("/v1/completions", chat, methods=["POST"]),
                Route("/v1/models", models),
            ]
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RunningServer:
    url: str
    fake: FakeVllm
    server: uvicorn.Server
    thread: threading.Thread


def start_server(app, port: int | None = None) -> tuple[uvicorn.Server, threading.Thread, str]:
    port = port or free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.01)
    return server, thread, f"http://127.0.0.1:{port}"


@pytest.fixture
def openai_server() -> Iterator[RunningServer]:
    fake = FakeVllm()
    server, thread, url = start_server(fake.app())
    yield RunningServer(url, fake, server, thread)
    server.should_exit = True
    thread.join(10)


@pytest.fixture
def two_servers() -> Iterator[list[RunningServer]]:
    out = []
    for i in range(2):
        fake = FakeVllm(pod=f"qwen-kserve-{i}")
        server, thread, url = start_server(fake.app())
        out.append(RunningServer(url, fake, server, thread))
    yield out
    for s in out:
        s.server.should_exit = True
        s.thread.join(10)


@pytest.fixture
def serve_app():
    """``serve_app(starlette_app) -> base URL``; every server started is stopped after the test."""
    started: list[tuple[uvicorn.Server, threading.Thread]] = []

    def _serve(app) -> str:
        server, thread, url = start_server(app)
        started.append((server, thread))
        return url

    yield _serve
    for server, thread in started:
        server.should_exit = True
        thread.join(10)
