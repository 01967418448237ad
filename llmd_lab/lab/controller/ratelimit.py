"""The controller-manager's client-side rate limit: a token bucket per controller client.

kube-controller-manager talks to the API server through clients limited to ``--kube-api-qps`` (20) with
``--kube-api-burst`` (30) (client-go ``flowcontrol.NewTokenBucketRateLimiter``); that limit, not the
controller, is what keeps a runaway ``replicas`` from flooding the API server. The lab applies it to the pod
creations and deletions of its workload controllers, in real seconds (the API's time is never scaled).
"""

from __future__ import annotations

import asyncio

KUBE_API_QPS = 20.0  # kube-controller-manager --kube-api-qps default
KUBE_API_BURST = 30  # kube-controller-manager --kube-api-burst default


class TokenBucket:
    """``await take()`` returns at once while tokens last, then at ``qps`` per second (fair, FIFO)."""

    def __init__(self, qps: float = KUBE_API_QPS, burst: int = KUBE_API_BURST) -> None:
        if qps <= 0 or burst < 1:
            raise ValueError(f"a token bucket needs qps > 0 and burst >= 1 (got {qps}, {burst})")
        self.qps = qps
        self.burst = burst
        self._tokens = float(burst)
        self._stamp: float | None = None

    async def take(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self._stamp is not None:
            self._tokens = min(float(self.burst), self._tokens + (now - self._stamp) * self.qps)
        self._stamp = now
        self._tokens -= 1.0  # reserve now; a negative balance is the wait of everyone queued before us
        if self._tokens < 0:
            await asyncio.sleep(-self._tokens / self.qps)
