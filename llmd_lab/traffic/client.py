"""A streaming OpenAI-compatible client that times every request the way the workshop measures them.

For each request we record the send time, time to first token (first non-empty content chunk), the
gaps between later chunks (inter-token latencies), end-to-end time, the token counts vLLM reports in
``usage`` (prompt, cached prompt, output) and the HTTP status. ``pod`` stays empty: neither vLLM nor the
gateway names the pod in a response (``x-inference-pod`` is llm-d-inference-sim's); count requests per
pod from the pods' metrics instead (``llmd_lab.metrics.Window`` / ``metrics.requests_per_pod``).

TLS: by default the system trust store plus, in an OpenShift workbench, the service CA; pass
``ca_file`` for a cluster CA, or ``insecure=True`` to skip verification (logged loudly, and shown in
the client's ``repr``). vLLM pods serve HTTPS with KServe's self-signed certificate, which has no DNS or
IP names and verifies against nothing: talking to a pod or the workload Service directly (the
round-robin baseline) needs ``insecure=True``, a choice the notebook states to the learner. The gateway's
``status.url`` is plain HTTP (or HTTPS with the cluster's CA) and needs neither.
"""

from __future__ import annotations

import json
import logging
import os
import ssl
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

log = logging.getLogger(__name__)

SERVICE_CA = "/var/run/secrets/kubernetes.io/serviceaccount/service-ca.crt"


@dataclass
class RequestRecord:
    """What one request did; a row of the runner's DataFrame."""

    request_id: str
    target: str
    send_time: float
    status: int | None = None
    ttft_s: float | None = None
    e2e_s: float | None = None
    itl_s: list[float] = field(default_factory=list)
    prompt_tokens: int | None = None
    cached_tokens: int | None = None
    output_tokens: int | None = None
    pod: str | None = None
    error: str | None = None
    text: str = ""
    tags: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.error is None

    def row(self) -> dict[str, Any]:
        """A flat dict for a DataFrame (tags become columns, the text is dropped)."""
        d = asdict(self)
        d.pop("text")
        tags = d.pop("tags")
        itl = self.itl_s
        d["itl_mean_s"] = sum(itl) / len(itl) if itl else None
        d["ok"] = self.ok
        d.update(tags)
        return d


def tls_verify(*, ca_file: str | None = None, insecure: bool = False) -> ssl.SSLContext | bool:
    """The ``verify`` value for httpx: a context with the cluster CA added, or False when insecure."""
    if insecure:
        log.warning(
            "TLS certificate verification is OFF (insecure=True): fine for a workshop, not for production"
        )
        return False
    ctx = ssl.create_default_context()
    for path in (ca_file, SERVICE_CA if os.path.exists(SERVICE_CA) else None):
        if path:
            ctx.load_verify_locations(cafile=path)
    return ctx


class InferenceClient:
    """Async client for ``/v1/chat/completions`` and ``/v1/completions`` with per-request timing.

    ``base_url`` is what ``status.url`` gives (``http(s)://<gateway>/<ns>/<name>``) or a workload
    Service URL (``http(s)://<clusterIP>:8000``); ``/v1/...`` is appended. Use as an async context
    manager, or call :meth:`aclose`. ``keepalive=False`` opens one connection per request (see
    :class:`~llmd_lab.traffic.runner.Target`).
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        token: str | None = None,
        ca_file: str | None = None,
        insecure: bool = False,
        timeout: float = 300.0,
        max_connections: int = 256,
        target: str | None = None,
        keepalive: bool = True,
    ):
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.insecure = insecure
        self.target = target or self.base_url
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.AsyncClient(
            headers=headers,
            verify=tls_verify(ca_file=ca_file, insecure=insecure)
            if self.base_url.startswith("https")
            else True,
            timeout=httpx.Timeout(timeout, connect=10.0),
            # keepalive=False opens a new connection per request, so a Service (kube-proxy balances
            # connections, not requests) spreads requests as round-robin rather than per worker.
            # an idle connection is dropped after 4 s: a workload Service's pods (vLLM) close theirs after 5 s
            # (VLLM_HTTP_TIMEOUT_KEEP_ALIVE), and reusing one as it closes cuts the request
            limits=httpx.Limits(
                max_connections=max_connections,
                max_keepalive_connections=max_connections if keepalive else 0,
                keepalive_expiry=4.0,
            ),
        )
        self.keepalive = keepalive

    def __repr__(self) -> str:
        tls = " TLS-VERIFY-OFF" if self.insecure else ""
        return f"<InferenceClient {self.base_url} model={self.model}{tls}>"

    async def __aenter__(self) -> InferenceClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def models(self) -> list[str]:
        """The served model names (``GET /v1/models``)."""
        resp = await self._http.get(f"{self.base_url}/v1/models")
        resp.raise_for_status()
        return [m["id"] for m in resp.json().get("data", [])]

    async def chat(
        self, messages: list[dict], *, max_tokens: int = 64, tags: dict | None = None, **params: Any
    ) -> RequestRecord:
        """Stream one chat completion; never raises for HTTP or connection errors (they are recorded)."""
        body = {"model": self.model, "messages": messages, "max_tokens": max_tokens, **params}
        return await self._stream("/v1/chat/completions", body, tags)

    async def complete(
        self, prompt: str, *, max_tokens: int = 64, tags: dict | None = None, **params: Any
    ) -> RequestRecord:
        """Stream one text completion (``/v1/completions``)."""
        body = {"model": self.model, "prompt": prompt, "max_tokens": max_tokens, **params}
        return await self._stream("/v1/completions", body, tags)

    async def _stream(self, path: str, body: dict, tags: dict | None) -> RequestRecord:
        body = {**body, "stream": True, "stream_options": {"include_usage": True}}
        rec = RequestRecord(
            request_id=str(uuid.uuid4()), target=self.target, send_time=time.time(), tags=dict(tags or {})
        )
        t0 = time.perf_counter()
        last: float | None = None
        parts: list[str] = []
        try:
            async with self._http.stream(
                "POST", self.base_url + path, json=body, headers={"x-request-id": rec.request_id}
            ) as resp:
                rec.status = resp.status_code
                if resp.status_code != 200:
                    detail = (await resp.aread()).decode(errors="replace")[:300]
                    rec.error = f"HTTP {resp.status_code}: {detail}"
                    return rec
                done = False
                async for line in resp.aiter_lines():
                    # after [DONE], read on to the end of the body so the connection goes back to the
                    # pool (httpx closes one whose body was left unread: keep-alive would never happen)
                    if done or not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        done = True
                        continue
                    chunk = json.loads(data)
                    if "error" in chunk:
                        rec.error = str(chunk["error"])
                        break
                    text = _chunk_text(chunk)
                    if text:
                        now = time.perf_counter()
                        if last is None:
                            rec.ttft_s = now - t0
                        else:
                            rec.itl_s.append(now - last)
                        last = now
                        parts.append(text)
                    usage = chunk.get("usage")
                    if usage:
                        rec.prompt_tokens = usage.get("prompt_tokens")
                        rec.output_tokens = usage.get("completion_tokens")
                        details = usage.get(
                            "prompt_tokens_details"
                        )  # only with --enable-prompt-tokens-details
                        rec.cached_tokens = details.get("cached_tokens") if details else None
        except (httpx.HTTPError, json.JSONDecodeError) as exc:
            rec.error = f"{type(exc).__name__}: {exc}"
        finally:
            rec.e2e_s = time.perf_counter() - t0
            rec.text = "".join(parts)
        return rec


def _chunk_text(chunk: dict) -> str:
    out = []
    for choice in chunk.get("choices") or []:
        delta = choice.get("delta")
        if delta is not None:
            out.append(delta.get("content") or "")
        else:
            out.append(choice.get("text") or "")
    return "".join(out)
