"""Load scorers (GIE v1.0.0 ``plugins/scorer`` + llm-d scheduler v0.3.1 ``pkg/plugins/scorer``).

Every score is in [0, 1]; the profile multiplies by the configured weight and sums without normalising.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from llmd_lab.sim.epp.plugins.base import (
    PluginHandle,
    PostResponse,
    PreRequest,
    Scorer,
    decode_parameters,
    register,
)
from llmd_lab.sim.epp.types import Endpoint, SchedulingResult


@register("queue-scorer")
class QueueScorer(Scorer):
    """``(maxQ − q) / (maxQ − minQ)`` over the candidates' waiting queues; 1.0 for all when equal."""

    def score(self, state, request, endpoints: list[Endpoint]) -> dict[Endpoint, float]:
        if not endpoints:
            return {}
        queues = {ep: ep.metrics.waiting_queue_size for ep in endpoints}
        lo, hi = min(queues.values()), max(queues.values())
        if hi == lo:
            return dict.fromkeys(endpoints, 1.0)
        return {ep: (hi - q) / (hi - lo) for ep, q in queues.items()}


@register("kv-cache-utilization-scorer")
class KVCacheUtilizationScorer(Scorer):
    """``1 − kv_cache_usage`` as scraped (so a metric the EPP cannot find scores every pod 1.0)."""

    def score(self, state, request, endpoints: list[Endpoint]) -> dict[Endpoint, float]:
        return {ep: 1.0 - ep.metrics.kv_cache_usage_percent for ep in endpoints}


@register("load-aware-scorer")
class LoadAwareScorer(Scorer):
    """Empty queue → 0.5; else ``0.5·(1 − min(q, threshold)/threshold)``: the score tops out at 0.5."""

    def __init__(self, name: str, threshold: int) -> None:
        super().__init__(name)
        self.threshold = threshold

    @classmethod
    def from_parameters(cls, name: str, params: Mapping[str, Any], handle: PluginHandle) -> LoadAwareScorer:
        p = decode_parameters(name, cls.type_name, params, {"threshold": ("int", 128)})
        return cls(name, p["threshold"] if p["threshold"] > 0 else 128)

    def score(self, state, request, endpoints: list[Endpoint]) -> dict[Endpoint, float]:
        out = {}
        for ep in endpoints:
            q = ep.metrics.waiting_queue_size
            out[ep] = 0.5 if q == 0 else 0.5 * (1.0 - min(q, self.threshold) / self.threshold)
        return out


@register("active-request-scorer")
class ActiveRequestScorer(Scorer, PreRequest, PostResponse):
    """Counts the EPP's own in-flight requests per pod (TTL ``requestTimeout``).

    Score ``(max − count)/max`` where ``max`` is over every tracked pod, not just the candidates;
    untracked pods score 1.0. v1.0.0 decrements when the response *headers* arrive.
    """

    def __init__(self, name: str, timeout_s: float, handle: PluginHandle) -> None:
        super().__init__(name)
        self.timeout_s = timeout_s
        self.clock = handle.clock
        self.requests: dict[str, tuple[list[str], float]] = {}   # request id -> (pods, expiry)
        self.counts: dict[str, int] = {}

    @classmethod
    def from_parameters(cls, name: str, params: Mapping[str, Any], handle: PluginHandle) -> ActiveRequestScorer:
        p = decode_parameters(name, cls.type_name, params, {"requestTimeout": ("duration", 120.0)})
        return cls(name, p["requestTimeout"] if p["requestTimeout"] > 0 else 120.0, handle)

    def _expire(self) -> None:
        now = self.clock()
        for rid in [rid for rid, (_, exp) in self.requests.items() if exp <= now]:
            self._release(rid)

    def _release(self, request_id: str) -> None:
        pods, _ = self.requests.pop(request_id, ([], 0.0))
        for pod in pods:
            self.counts[pod] = self.counts.get(pod, 0) - 1
            if self.counts[pod] <= 0:
                self.counts.pop(pod, None)

    def score(self, state, request, endpoints: list[Endpoint]) -> dict[Endpoint, float]:
        self._expire()
        top = max(self.counts.values(), default=0)
        out = {}
        for ep in endpoints:
            count = self.counts.get(ep.namespaced_name, 0)
            out[ep] = 1.0 if count == 0 or top == 0 else (top - count) / top
        return out

    def pre_request(self, request, result: SchedulingResult, target_port: int) -> dict[str, str | None]:
        pods = [r.target_endpoints[0].namespaced_name for r in result.profile_results.values()
                if r is not None and r.target_endpoints]
        self._release(request.request_id)
        self.requests[request.request_id] = (pods, self.clock() + self.timeout_s)
        for pod in pods:
            self.counts[pod] = self.counts.get(pod, 0) + 1
        return {}

    def post_response(self, request, endpoint, response_headers) -> dict[str, str]:
        self._release(request.request_id)
        return {}


SESSION_TOKEN_HEADER = "x-session-token"


@register("session-affinity-scorer")
class SessionAffinityScorer(Scorer, PostResponse):
    """1.0 for the pod named by ``x-session-token`` (base64 of ``ns/pod``), 0.0 for the others."""

    def score(self, state, request, endpoints: list[Endpoint]) -> dict[Endpoint, float]:
        token = request.headers.get(SESSION_TOKEN_HEADER, "")
        try:
            wanted = base64.b64decode(token, validate=True).decode() if token else ""
        except (binascii.Error, UnicodeDecodeError):
            wanted = ""
        return {ep: 1.0 if wanted and ep.namespaced_name == wanted else 0.0 for ep in endpoints}

    def post_response(self, request, endpoint: Endpoint, response_headers) -> dict[str, str]:
        return {SESSION_TOKEN_HEADER: base64.b64encode(endpoint.namespaced_name.encode()).decode()}
