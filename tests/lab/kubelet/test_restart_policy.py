"""The kubelet honours ``restartPolicy`` (kubelet ``ShouldContainerBeRestarted`` and ``getPhase``): Never keeps
an exited container down and the pod ends Succeeded/Failed, OnFailure restarts only failures, Always restarts
even a clean exit. The containers run the real ``guidellm`` CLI (``--version`` exits 0, a bad command 2)."""

from __future__ import annotations

import pytest

from llmd_lab.lab.controller.testing import eventually
from llmd_lab.lab.kubelet.runtime import restarts

pytestmark = pytest.mark.anyio


def pod(name: str, policy: str, args: list[str]) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
            "spec": {"restartPolicy": policy, "containers": [
                {"name": "main", "image": "ghcr.io/vllm-project/guidellm:v0.8.1", "command": ["guidellm", *args]}]}}


@pytest.fixture
async def node_env(start_lab):
    ctx, _ = await start_lab()
    return ctx.store


async def status_when(store, name: str, check) -> dict:
    async def probe():
        status = (await store.get("v1", "Pod", name, "default")).get("status") or {}
        return status if check(status) else None

    return await eventually(probe, 120, f"pod {name}")


def test_restart_decision() -> None:
    assert [restarts("Always", 0), restarts("Always", 1)] == [True, True]
    assert [restarts("OnFailure", 0), restarts("OnFailure", 1)] == [False, True]
    assert [restarts("Never", 0), restarts("Never", 1)] == [False, False]


async def test_never_exit_0_is_succeeded_and_not_restarted(node_env) -> None:
    store = node_env
    await store.create(pod("ok", "Never", ["--version"]))
    status = await status_when(store, "ok", lambda s: s.get("phase") == "Succeeded")
    [cs] = status["containerStatuses"]
    assert cs["restartCount"] == 0 and not cs["ready"] and cs["lastState"] == {}
    assert (cs["state"]["terminated"]["reason"], cs["state"]["terminated"]["exitCode"]) == ("Completed", 0)
    ready = {c["type"]: c for c in status["conditions"]}["Ready"]
    assert (ready["status"], ready["reason"]) == ("False", "PodCompleted")


async def test_never_nonzero_exit_is_failed(node_env) -> None:
    store = node_env
    await store.create(pod("bad", "Never", ["no-such-command"]))
    status = await status_when(store, "bad", lambda s: s.get("phase") == "Failed")
    [cs] = status["containerStatuses"]
    assert cs["restartCount"] == 0
    assert (cs["state"]["terminated"]["reason"], cs["state"]["terminated"]["exitCode"]) == ("Error", 2)
    assert {c["type"]: c for c in status["conditions"]}["Ready"]["reason"] == "PodFailed"


async def test_on_failure_restarts_a_failed_container(node_env) -> None:
    store = node_env
    await store.create(pod("retry", "OnFailure", ["no-such-command"]))
    status = await status_when(store, "retry", lambda s: any(
        c["restartCount"] >= 1 for c in s.get("containerStatuses") or []))
    assert status["phase"] == "Running"
    assert status["containerStatuses"][0]["lastState"]["terminated"]["exitCode"] == 2


async def test_always_restarts_even_a_clean_exit(node_env) -> None:
    store = node_env
    await store.create(pod("again", "Always", ["--version"]))
    status = await status_when(store, "again", lambda s: any(
        c["restartCount"] >= 1 for c in s.get("containerStatuses") or []))
    assert status["phase"] == "Running"
    assert status["containerStatuses"][0]["lastState"]["terminated"]["reason"] == "Completed"
