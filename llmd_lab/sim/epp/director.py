"""Request control (GIE v1.0.0 ``requestcontrol/director.go``): body → LLMRequest → admit → schedule.

The director is transport-free: the HTTP ext-proc stand-in (``server``) and the discrete-event
simulator both call :meth:`Director.handle_request` and :meth:`Director.handle_response`.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from llmd_lab.sim.epp.config import LoadedConfig
from llmd_lab.sim.epp.metrics import EppMetrics
from llmd_lab.sim.epp.scheduler import DecisionTrace
from llmd_lab.sim.epp.tokenizers import TokenizerLoadError
from llmd_lab.sim.epp.types import Endpoint, LLMRequest, SchedulingError, SchedulingResult

DESTINATION_HEADER = "x-gateway-destination-endpoint"
SUBSET_HEADER = "x-gateway-destination-endpoint-subset"
OBJECTIVE_HEADER = "x-gateway-inference-objective"
FAIRNESS_HEADER = "x-gateway-inference-fairness-id"
MODEL_REWRITE_HEADER = "x-gateway-model-name-rewrite"
REQUEST_ID_HEADER = "x-request-id"

# GIE error codes and the HTTP status the ext-proc server answers with (handlers/server.go buildErrResponse)
ERROR_STATUS = {
    "BadRequest": 400,
    "BadConfiguration": 404,
    "InferencePoolResourceExhausted": 429,
    "Internal": 500,
    "ServiceUnavailable": 503,
}


class EppError(Exception):
    """A request the EPP refuses; ``status`` is the HTTP code the gateway returns."""

    def __init__(self, code: str, message: str, trace: DecisionTrace | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = ERROR_STATUS[code]
        self.message = message
        self.trace = trace

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.status, "type": self.code, "message": f"inference gateway: {self.code} - "
                          f"{self.message}"}}


def extract_prompt(body: Mapping[str, Any]) -> str:
    """GIE v1.0.0 ``util/request/body.go``: chat messages flattened ChatML-style, else ``prompt`` string."""
    messages = body.get("messages")
    if messages is not None:
        if not isinstance(messages, list):
            raise EppError("BadRequest", "messages is not a list")
        parts = []
        for message in messages:
            if isinstance(message, Mapping) and isinstance(message.get("content"), str):
                parts.append(f"<|im_start|>{message.get('role', '')}\n{message['content']}<|im_end|>\n")
        return "".join(parts)
    prompt = body.get("prompt")
    if not isinstance(prompt, str):
        raise EppError("BadRequest", "prompt is not a string")
    return prompt


@dataclass
class SaturationDetector:
    """Saturated ⇔ no endpoint has fresh metrics, a short queue and KV headroom (§1.9 defaults)."""

    queue_depth_threshold: int = 5
    kv_cache_util_threshold: float = 0.8
    metrics_staleness_threshold: float = 0.2

    def is_saturated(self, endpoints: list[Endpoint], now: float) -> bool:
        for ep in endpoints:
            m = ep.metrics
            if (now - m.update_time <= self.metrics_staleness_threshold
                    and m.waiting_queue_size <= self.queue_depth_threshold
                    and m.kv_cache_usage_percent <= self.kv_cache_util_threshold):
                return False
        return True


@dataclass
class Decision:
    """Where to send the request: headers to set on the upstream request, and the trace."""

    request: LLMRequest
    result: SchedulingResult
    endpoint: Endpoint
    headers: dict[str, str]
    remove_headers: list[str]
    trace: DecisionTrace


@dataclass
class TraceStore:
    """Recent decision traces by request id (bounded: the oldest are dropped)."""

    capacity: int = 2000
    traces: OrderedDict[str, DecisionTrace] = field(default_factory=OrderedDict)

    def add(self, trace: DecisionTrace) -> None:
        self.traces[trace.request_id] = trace
        self.traces.move_to_end(trace.request_id)
        while len(self.traces) > self.capacity:
            self.traces.popitem(last=False)

    def get(self, request_id: str) -> DecisionTrace | None:
        return self.traces.get(request_id)

    def recent(self, n: int = 50) -> list[DecisionTrace]:
        return list(self.traces.values())[-n:][::-1]


class Director:
    """Turns requests into routing decisions using the loaded config and the current endpoints."""

    def __init__(
        self,
        config: LoadedConfig,
        candidates: Callable[[], list[Endpoint]],
        *,
        target_port: Callable[[], int],
        clock: Callable[[], float] = time.monotonic,
        objective_priority: Callable[[str], int | None] = lambda name: None,
        saturation: SaturationDetector | None = None,
        observer: EppMetrics | None = None,
        traces: TraceStore | None = None,
    ) -> None:
        self.config = config
        self.candidates = candidates
        self.target_port = target_port
        self.clock = clock
        self.objective_priority = objective_priority
        self.saturation = saturation or SaturationDetector()
        self.observer = observer
        self.traces = traces or TraceStore()
        self.in_flight: OrderedDict[str, tuple[LLMRequest, Endpoint]] = OrderedDict()

    def parse(self, headers: Mapping[str, str], body: Mapping[str, Any] | bytes | str) -> LLMRequest:
        if isinstance(body, bytes | str):
            try:
                body = json.loads(body)
            except ValueError as exc:
                raise EppError("BadRequest", f"request body is not JSON: {exc}") from None
        if not isinstance(body, Mapping):
            raise EppError("BadRequest", "request body must be a JSON object")
        headers = {k.lower(): v for k, v in headers.items()}
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise EppError("BadRequest", "model not found in request body")
        target = headers.get(MODEL_REWRITE_HEADER) or model
        request_id = headers.get(REQUEST_ID_HEADER) or str(uuid.uuid4())
        return LLMRequest(request_id, target, extract_prompt(body), headers, dict(body))

    def handle_request(self, headers: Mapping[str, str], body: Mapping[str, Any] | bytes | str) -> Decision:
        """Schedule one request or raise :class:`EppError` with the status the gateway should return."""
        request = self.parse(headers, body)
        if self.observer is not None:
            self.observer.record_request(body.get("model") if isinstance(body, Mapping) else request.target_model,
                                         request.target_model)
        try:
            return self._schedule(request)
        except EppError as exc:
            if self.observer is not None:
                self.observer.record_error(request.target_model, exc.code)
            if exc.trace is not None:
                self.traces.add(exc.trace)
            raise

    def _schedule(self, request: LLMRequest) -> Decision:
        candidates = self.candidates()
        subset = request.headers.get(SUBSET_HEADER)
        if subset is not None:
            allowed = {s.strip() for s in subset.split(",") if s.strip()}
            candidates = [ep for ep in candidates if ep.hostport in allowed]
        trace = DecisionTrace(request.request_id, request.target_model, [ep.name for ep in candidates])
        if not candidates:
            trace.error = "no candidate pods (none Ready in the pool)"
            raise EppError("ServiceUnavailable", "failed to find candidate pods for serving the request", trace)
        objective = request.headers.get(OBJECTIVE_HEADER)
        priority = self.objective_priority(objective) if objective else None
        priority = 0 if priority is None else priority
        if priority < 0 and self.saturation.is_saturated(candidates, self.clock()):
            trace.error = "system saturated and the request is sheddable (priority < 0)"
            raise EppError("InferencePoolResourceExhausted", "system saturated, sheddable request dropped", trace)
        try:
            result, trace = self.config.scheduler.schedule(request, candidates, trace)
        except SchedulingError as exc:
            raise EppError("InferencePoolResourceExhausted", f"failed to find target pod: {exc}",
                           getattr(exc, "trace", trace)) from None
        except TokenizerLoadError as exc:  # upstream the request waits for ever; the lab refuses it (fidelity.md)
            trace.error = f"precise-prefix-cache-scorer: {exc}"
            raise EppError("ServiceUnavailable", f"request not scheduled: the precise-prefix-cache-scorer cannot "
                           f"tokenize: {exc} (serve the model under its Hugging Face id: spec.model.name)",
                           trace) from None
        port = self.target_port()
        headers: dict[str, str] = {}
        removed: list[str] = [OBJECTIVE_HEADER, FAIRNESS_HEADER, MODEL_REWRITE_HEADER]
        for plugin in self.config.pre_request:
            start = time.perf_counter()
            for key, value in plugin.pre_request(request, result, port).items():
                if value is None:
                    headers.pop(key, None)
                    removed.append(key)
                else:
                    headers[key] = value
            if self.observer is not None:
                self.observer.record_plugin_duration("PreRequest", plugin.type_name, plugin.name,
                                                     time.perf_counter() - start)
        targets = result.primary.target_endpoints
        endpoint = targets[0]
        destination = ",".join(f"{ep.address}:{port}" for ep in targets)
        headers[DESTINATION_HEADER] = destination
        headers[REQUEST_ID_HEADER] = request.request_id
        trace.destination = destination
        self.traces.add(trace)
        self.in_flight[request.request_id] = (request, endpoint)
        while len(self.in_flight) > 10_000:
            self.in_flight.popitem(last=False)
        if self.observer is not None:
            self.observer.running_delta(request.target_model, +1)
        return Decision(request, result, endpoint, headers, removed, trace)

    def handle_response(self, request_id: str, response_headers: Mapping[str, str] | None = None) -> dict[str, str]:
        """Response headers arrived from the model server: run PostResponse plugins (v1.0.0 timing)."""
        entry = self.in_flight.pop(request_id, None)
        out = {"x-went-into-resp-headers": "true"}
        if entry is None:
            return out
        request, endpoint = entry
        for plugin in self.config.post_response:
            out.update(plugin.post_response(request, endpoint, dict(response_headers or {})))
        if self.observer is not None:
            self.observer.running_delta(request.target_model, -1)
        return out
