"""Data the scheduling framework passes between plugins (GIE ``scheduling/types``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class EndpointMetrics:
    """What the EPP knows about one model server, as scraped from its ``/metrics``.

    ``update_time`` is the clock reading of the last successful scrape (0 = never), so the
    saturation detector can tell fresh from stale numbers.
    """

    waiting_queue_size: int = 0
    running_queue_size: int = 0
    kv_cache_usage_percent: float = 0.0
    active_models: dict[str, int] = field(default_factory=dict)
    waiting_models: dict[str, int] = field(default_factory=dict)
    max_active_models: int = 0
    update_time: float = 0.0


@dataclass
class Endpoint:
    """A candidate pod: ``address`` is the pod IP and ``port`` the pool's target port."""

    name: str
    namespace: str
    address: str
    port: int
    labels: dict[str, str] = field(default_factory=dict)
    metrics: EndpointMetrics = field(default_factory=EndpointMetrics)

    @property
    def namespaced_name(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def hostport(self) -> str:
        return f"{self.address}:{self.port}"

    def __hash__(self) -> int:
        return hash((self.namespace, self.name))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Endpoint) and (self.namespace, self.name) == (other.namespace, other.name)


@dataclass
class LLMRequest:
    """The request as plugins see it: the flattened ``prompt`` and the model it targets."""

    request_id: str
    target_model: str
    prompt: str
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] = field(default_factory=dict)


@dataclass
class ScoredEndpoint:
    endpoint: Endpoint
    score: float


@dataclass
class ProfileRunResult:
    target_endpoints: list[Endpoint]


@dataclass
class SchedulingResult:
    """Results per profile that ran; the primary profile's first target is where the request goes."""

    profile_results: dict[str, ProfileRunResult | None]
    primary_profile_name: str

    @property
    def primary(self) -> ProfileRunResult:
        result = self.profile_results[self.primary_profile_name]
        assert result is not None
        return result


class CycleState(dict):
    """Per-request scratch space shared by the plugins of one scheduling cycle."""


class SchedulingError(Exception):
    """The scheduler could not place the request (no pods, every profile failed)."""
