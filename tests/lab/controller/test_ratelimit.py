"""The controller-manager's client limit: ``--kube-api-burst`` requests at once, then ``--kube-api-qps``."""

from __future__ import annotations

import asyncio

import pytest

from llmd_lab.lab.controller import ratelimit
from llmd_lab.lab.controller.job import JobController
from llmd_lab.lab.controller.workloads import ReplicaSetController

pytestmark = pytest.mark.anyio


async def test_burst_passes_at_once_then_each_request_waits_its_share(monkeypatch: pytest.MonkeyPatch) -> None:
    waits: list[float] = []

    async def record(seconds: float) -> None:  # the clock stands still: only the asked waits matter
        waits.append(seconds)

    monkeypatch.setattr(asyncio, "get_running_loop", lambda: _FrozenLoop())
    monkeypatch.setattr(ratelimit.asyncio, "sleep", record)
    bucket = ratelimit.TokenBucket()
    for _ in range(ratelimit.KUBE_API_BURST + 3):
        await bucket.take()
    assert waits == pytest.approx([1 / 20, 2 / 20, 3 / 20])  # queued behind each other at 20 QPS


def test_job_and_replicaset_controllers_each_have_a_limited_client() -> None:
    for controller in (JobController(), ReplicaSetController()):
        assert (controller.client_limit.qps, controller.client_limit.burst) == (20.0, 30)


def test_a_bucket_that_could_never_grant_is_refused() -> None:
    with pytest.raises(ValueError, match="qps > 0"):
        ratelimit.TokenBucket(qps=0)


class _FrozenLoop:
    def time(self) -> float:
        return 100.0
