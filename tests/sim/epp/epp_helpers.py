"""Shared helpers for the EPP tests: endpoints with given metrics and a request builder."""

from __future__ import annotations

from pathlib import Path

from llmd_lab.sim.epp.types import Endpoint, EndpointMetrics, LLMRequest

DATA = Path(__file__).resolve().parents[2] / "data" / "epp"


def ep(name: str, *, queue: int = 0, kv: float = 0.0, ip: str | None = None, labels: dict | None = None) -> Endpoint:
    """An endpoint in namespace ``ns`` with the given waiting queue and KV usage."""
    index = int("".join(c for c in name if c.isdigit()) or 0)
    return Endpoint(name=name, namespace="ns", address=ip or f"127.1.0.{index + 10}", port=8000,
                    labels=labels or {}, metrics=EndpointMetrics(waiting_queue_size=queue, kv_cache_usage_percent=kv))


def req(prompt: str = "hello", *, model: str = "m", rid: str = "r1", headers: dict | None = None) -> LLMRequest:
    return LLMRequest(request_id=rid, target_model=model, prompt=prompt, headers=headers or {})
