"""Issue 17 §1: a runaway ``replicas`` costs bounded work per pass (kube's ``burstReplicas`` = 500 and
``slowStartBatch``), failures back off, and a lab holding a runaway still comes ``up`` and goes ``down``
without being killed."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest
from labhelpers import run_cli
from olderstate import store_as_older_state

from llmd_lab.lab.apiserver.errors import ApiError
from llmd_lab.lab.controller.podcontrol import BURST_REPLICAS, slow_start_batch
from llmd_lab.lab.controller.testing import events_for, make_ctx
from llmd_lab.lab.controller.workloads import ReplicaSetController
from llmd_lab.lab.home import LabPaths

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _rs(name: str, replicas: int, image: str = "registry.example/a:1") -> dict:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name, "namespace": "default"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "c", "image": image}]}}}}


async def test_slow_start_batches_double_and_stop_at_the_first_failing_batch() -> None:
    sizes: list[int] = []
    calls = 0
    in_flight = 0

    async def create() -> None:
        nonlocal calls, in_flight
        calls += 1
        mine = calls
        in_flight += 1
        sizes.append(in_flight)
        await asyncio.sleep(0)
        in_flight -= 1
        if mine == 12:  # inside the 4th batch (1 + 2 + 4 + 8)
            raise ApiError(403, "Forbidden", "exceeded quota")

    successes, error = await slow_start_batch(100, create)
    assert calls == 15 and successes == 14  # the 4th batch finishes, the rest is skipped
    assert error is not None and error.code == 403
    assert max(sizes) == 8


async def test_one_sync_creates_at_most_burst_replicas(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path)
    controller = ReplicaSetController()
    controller.ctx, controller.store = ctx, ctx.store  # reconcile by hand, one sync at a time
    try:
        await ctx.store.create(_rs("runaway", 2_000_000_000))
        for expected in (BURST_REPLICAS, 2 * BURST_REPLICAS):
            await controller.reconcile("default", "runaway")
            pods, _ = await ctx.store.list("v1", "Pod", "default")
            assert len(pods) == expected
    finally:
        ctx.store.close()


async def test_a_failing_create_is_one_failed_create_event_and_a_growing_back_off(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path)
    controller = ReplicaSetController()
    controller.ctx, controller.store = ctx, ctx.store

    real_create = ctx.store.create

    async def refuse_pods(obj: dict, **kwargs: bool) -> dict:  # a ResourceQuota that is used up
        if obj["kind"] == "Pod":
            raise ApiError(403, "Forbidden", 'pods "x" is forbidden: exceeded quota: compute-resources')
        return await real_create(obj, **kwargs)

    try:
        await ctx.store.create(_rs("quota", 3))
        ctx.store.create = refuse_pods  # type: ignore[method-assign]
        try:
            await controller.reconcile("default", "quota")
            await controller.reconcile("default", "quota")
        finally:
            ctx.store.create = real_create  # type: ignore[method-assign]
        key = ("default", "quota")
        assert controller.failures(key) == 2
        failed = [e for e in await events_for(ctx.store, "quota", "default") if e["reason"] == "FailedCreate"]
        assert len(failed) == 1 and failed[0]["count"] == 2 and "exceeded quota" in failed[0]["message"]
    finally:
        ctx.store.close()


@pytest.mark.slow
async def test_a_lab_holding_a_runaway_comes_up_answers_and_goes_down_without_a_kill(tmp_path: Path) -> None:
    home = tmp_path / "lab"
    home.mkdir()
    await store_as_older_state(home / "state.db", _rs("runaway", 5), lambda rs: rs["spec"].update(replicas=10**23))
    started = time.monotonic()
    up = run_cli(home, "up", "--port", "0", "--profile", "fresh", timeout=120)
    assert up.returncode == 0, up.stderr
    up_s = time.monotonic() - started
    try:
        paths = LabPaths(home)
        url = (home / "lab.json").read_text().split('"url": "')[1].split('"')[0]
        headers = {"Authorization": f"Bearer {paths.token.read_text().strip()}"}
        latencies = []
        async with httpx.AsyncClient(base_url=url, headers=headers, verify=paths.pki.client_context(),
                                     timeout=30) as client:
            for _ in range(20):  # while the controller keeps creating pods
                t0 = time.monotonic()
                assert (await client.get("/healthz")).status_code == 200
                latencies.append(time.monotonic() - t0)
            pods = (await client.get("/api/v1/namespaces/default/pods", params={"limit": 1})).json()
        assert pods["metadata"].get("remainingItemCount", 0) + len(pods["items"]) > 0
        assert max(latencies) < 10, latencies
    finally:
        down = run_cli(home, "down", timeout=120)
    assert down.returncode == 0 and "killed" not in down.stdout + down.stderr, down.stdout + down.stderr
    assert up_s < 60
