"""The llm-d routing sidecar (``llm-d-routing-sidecar``) in front of a decode pod's vLLM.

It listens on ``--port`` (8000) and forwards to vLLM on ``--vllm-port`` (8001) on the pod's own IP. When
the EPP chose a prefill pod (header ``x-prefiller-host-port``) it first sends the request there with
``max_tokens: 1`` — the prefill hop of P/D disaggregation — and then lets the decode vLLM answer.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

PREFILL_HEADER = "x-prefiller-host-port"
HOP = {"host", "content-length", "connection", "transfer-encoding", "keep-alive"}


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="llm-d-routing-sidecar", add_help=False)
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--vllm-port", type=int, default=8001)
    parser.add_argument("--connector", default="nixlv2")
    args, _ = parser.parse_known_args([a for a in argv if a.startswith("--")])
    return args


class RoutingSidecar:
    def __init__(self, argv: list[str], host: str, log: Callable[[str], None]) -> None:
        self.args = parse(argv)
        self.host = host
        self.log = log
        self.client = httpx.AsyncClient(timeout=httpx.Timeout(30.0, read=None))
        self.server: Any = None

    async def start(self) -> None:
        from llmd_lab.sim.epp.httpserver import start_server

        app = Starlette(routes=[Route("/{path:path}", self.handle, methods=["GET", "POST", "PUT", "DELETE"])])
        self.server = await start_server(app, self.host, self.args.port, name="routing-sidecar")
        self.log(f"routing sidecar listening on {self.host}:{self.args.port}, decoder on port {self.args.vllm_port}, "
                 f"connector {self.args.connector}")

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()
        await self.client.aclose()

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP}
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        prefiller = request.headers.get(PREFILL_HEADER)
        if prefiller and request.method == "POST" and body:
            try:
                payload = json.loads(body)
                prefill = {**payload, "max_tokens": 1, "stream": False}
                # vLLM rejects stream_options on a non-streaming request (400), as the real sidecar knows
                for key in ("max_completion_tokens", "stream_options"):
                    prefill.pop(key, None)
                r = await self.client.post(f"http://{prefiller}{request.url.path}", json=prefill,
                                           headers={k: v for k, v in headers.items() if k.lower() != PREFILL_HEADER})
                detail = "" if r.status_code < 400 else f": {r.text[:200]}"
                self.log(f"prefill on {prefiller}: HTTP {r.status_code}{detail}")
            except (ValueError, httpx.HTTPError) as exc:
                self.log(f"prefill on {prefiller} failed: {exc}")
                return JSONResponse({"error": {"message": f"prefill failed: {exc}"}}, status_code=502)
        upstream = self.client.build_request(request.method, f"http://{self.host}:{self.args.vllm_port}{path}",
                                             headers=headers, content=body)
        try:
            response = await self.client.send(upstream, stream=True)
        except httpx.HTTPError as exc:
            return JSONResponse({"error": {"message": f"decoder unavailable: {exc}"}}, status_code=503)
        out_headers = {k: v for k, v in response.headers.items() if k.lower() not in HOP}
        return StreamingResponse(response.aiter_raw(), status_code=response.status_code, headers=out_headers,
                                 background=BackgroundTask(response.aclose))
