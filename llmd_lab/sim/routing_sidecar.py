"""The llm-d routing sidecar (``llm-d-routing-sidecar``) in front of a decode pod's vLLM.

It listens on ``--port`` (8000) and forwards to vLLM on ``--vllm-port`` (8001) on the pod's own IP. When
the EPP chose a prefill pod (header ``x-prefiller-host-port``) it first sends the request there with
``max_tokens: 1`` — the prefill hop of P/D disaggregation — and then lets the decode vLLM answer.

TLS as llm-d-routing-sidecar's flags say (``cmd/llm-d-routing-sidecar/main.go``): ``--secure-proxy`` (default
true) serves HTTPS with ``tls.crt``/``tls.key`` from ``--cert-path`` (KServe mounts its workload certificate
there), ``--decoder-use-tls``/``--prefiller-use-tls`` make the two hops HTTPS. Neither hop verifies the
certificate: KServe's has no SANs, so a verifying client would refuse it (upstream's skip-verify flags are
not set by KServe's preset; what the rhoai-3.0 image does there is unconfirmed, see docs/fidelity.md).
"""

from __future__ import annotations

import argparse
import json
import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING

import httpx
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from llmd_lab.sim.headers import NOT_FORWARDED, forwardable
from llmd_lab.sim.keepalive import POD_CLIENT_KEEPALIVE_EXPIRY_S
from llmd_lab.sim.tls import insecure_client_context, ssl_context_from_pem

if TYPE_CHECKING:
    from llmd_lab.sim.http import RunningServer

PREFILL_HEADER = "x-prefiller-host-port"


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="llm-d-routing-sidecar", add_help=False)
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--vllm-port", type=int, default=8001)
    parser.add_argument("--connector", default="nixlv2")
    for flag, default in (("--secure-proxy", True), ("--decoder-use-tls", False), ("--prefiller-use-tls", False)):
        parser.add_argument(flag, type=_go_bool, nargs="?", const=True, default=default)
    parser.add_argument("--cert-path", default="")
    args, _ = parser.parse_known_args([a for a in argv if a.startswith("--")])
    return args


def _go_bool(value: str) -> bool:
    """Go's ``flag.Bool`` values (``--x``, ``--x=true``, ``--x=false``, ``1``/``0``)."""
    lowered = value.lower()
    if lowered in ("1", "t", "true"):
        return True
    if lowered in ("0", "f", "false"):
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean value {value!r}")


class RoutingSidecar:
    def __init__(self, argv: list[str], host: str, log: Callable[[str], None],
                 read_file: Callable[[str], bytes] | None = None) -> None:
        self.args = parse(argv)
        self.host = host
        self.log = log
        self.read_file = read_file
        self.client = httpx.AsyncClient(timeout=httpx.Timeout(30.0, read=None), verify=insecure_client_context(),
                                        limits=httpx.Limits(keepalive_expiry=POD_CLIENT_KEEPALIVE_EXPIRY_S))
        self.server: RunningServer | None = None

    def _server_tls(self) -> ssl.SSLContext | None:
        """``--secure-proxy``: the mounted ``--cert-path`` certificate (upstream self-signs one when unset)."""
        if not self.args.secure_proxy:
            return None
        if self.args.cert_path and self.read_file is not None:
            base = self.args.cert_path.rstrip("/")
            return ssl_context_from_pem(self.read_file(f"{base}/tls.crt"), self.read_file(f"{base}/tls.key"))
        from llmd_lab.sim.tls import self_signed_pem

        return ssl_context_from_pem(*self_signed_pem())

    async def start(self) -> None:
        from llmd_lab.sim.http import start_server

        app = Starlette(routes=[Route("/{path:path}", self.handle, methods=["GET", "POST", "PUT", "DELETE"])])
        self.server = await start_server(app, self.host, self.args.port, name="routing-sidecar",
                                         ssl_context=self._server_tls())
        self.log(f"routing sidecar listening on {self.host}:{self.args.port}, decoder on port {self.args.vllm_port}, "
                 f"connector {self.args.connector}, secure proxy {self.args.secure_proxy}")

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()
        await self.client.aclose()

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        headers = dict(forwardable(request.headers.items(), NOT_FORWARDED))
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        prefiller = request.headers.get(PREFILL_HEADER)
        if prefiller and request.method == "POST" and body:
            try:
                payload = json.loads(body)
                prefill = {**payload, "max_tokens": 1, "stream": False}
                # vLLM rejects stream_options on a non-streaming request (400), as the real sidecar knows
                for key in ("max_completion_tokens", "stream_options"):
                    prefill.pop(key, None)
                prefill_scheme = "https" if self.args.prefiller_use_tls else "http"
                r = await self.client.post(f"{prefill_scheme}://{prefiller}{request.url.path}", json=prefill,
                                           headers={k: v for k, v in headers.items() if k.lower() != PREFILL_HEADER})
                detail = "" if r.status_code < 400 else f": {r.text[:200]}"
                self.log(f"prefill on {prefiller}: HTTP {r.status_code}{detail}")
            except (ValueError, httpx.HTTPError) as exc:
                self.log(f"prefill on {prefiller} failed: {exc}")
                return JSONResponse({"error": {"message": f"prefill failed: {exc}"}}, status_code=502)
        upstream = self.client.build_request(request.method, f"{'https' if self.args.decoder_use_tls else 'http'}://{self.host}:{self.args.vllm_port}{path}",
                                             headers=headers, content=body)
        try:
            response = await self.client.send(upstream, stream=True)
        except httpx.HTTPError as exc:
            return JSONResponse({"error": {"message": f"decoder unavailable: {exc}"}}, status_code=503)
        out_headers = dict(forwardable(response.headers.items(), NOT_FORWARDED))
        return StreamingResponse(response.aiter_raw(), status_code=response.status_code, headers=out_headers,
                                 background=BackgroundTask(response.aclose))
