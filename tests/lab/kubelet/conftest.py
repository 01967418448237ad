from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from llmd_lab.lab.controller import controller_manager as controller_components
from llmd_lab.lab.controller.testing import make_ctx
from llmd_lab.lab.kubelet.kubelet import Kubelet
from llmd_lab.lab.network import ServiceNetwork
from llmd_lab.lab.profiles import load_profile
from llmd_lab.lab.scheduler.scheduler import KubeScheduler
from llmd_lab.lab.server import LabPaths, install_profile


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def start_lab(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[tuple[Any, Kubelet]]]]:
    """Start the rhoai-3.0 lab in-process at time scale 200 — controllers, scheduler and a kubelet (and
    kube-proxy's ServiceNetwork with ``services=True``) — returning ``(ctx, kubelet)``; stopped after the test."""
    started: list[Any] = []

    async def start(*, services: bool = False) -> tuple[Any, Kubelet]:
        profile = load_profile("rhoai-3.0")
        ctx = make_ctx(tmp_path, profile, time_scale=200.0)
        await install_profile(ctx.store, profile, LabPaths(tmp_path))
        kubelet = Kubelet(ctx.network)
        parts = [*controller_components(ctx), *([ServiceNetwork(ctx.network)] if services else []),
                 KubeScheduler(interval=0.05), kubelet]
        for part in parts:
            await part.start(ctx)
            started.append(part)
        return ctx, kubelet

    yield start
    for part in reversed(started):
        await part.stop()


@pytest.fixture
async def node_env(tmp_path: Path):
    """The rhoai-3.0 nodes with a scheduler and a kubelet only (graceful pod deletion on): ``(ctx, kubelet)``."""
    profile = load_profile("rhoai-3.0")
    ctx = make_ctx(tmp_path, profile, time_scale=200.0)
    ctx.store.graceful_pod_deletion = True
    await install_profile(ctx.store, profile, LabPaths(tmp_path))
    parts = [KubeScheduler(interval=0.05), Kubelet(ctx.network)]
    for p in parts:
        await p.start(ctx)
    yield ctx, parts[1]
    for p in reversed(parts):
        await p.stop()
