"""RHOAI 3.0 known issues switched on by profile data: the Gateway's TLS origination to HTTPS backends fails
with HTTP 500 (the seeds' step-08 symptom)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from llmd_lab.lab.controller import controller_manager as controller_components
from llmd_lab.lab.controller.testing import eventually, make_ctx
from llmd_lab.lab.network import GatewayComponent, ServiceNetwork
from llmd_lab.lab.profiles import load_profile
from llmd_lab.lab.server import LabPaths, install_profile
from llmd_lab.sim.gateway.filters import ENVOY_TLS_ERROR

pytestmark = pytest.mark.anyio


async def test_https_origination_issue_answers_500(tmp_path: Path, step08) -> None:
    profile = load_profile("rhoai-3.0")
    profile.known_issues["gatewayTlsOriginationFails"] = True
    ctx = make_ctx(tmp_path, profile)
    await install_profile(ctx.store, profile, LabPaths(tmp_path))
    parts = [ServiceNetwork(ctx.network), GatewayComponent(), *controller_components(ctx)]
    for part in parts:
        await part.start(ctx)
    try:
        del step08["metadata"]["uid"]
        await ctx.store.create(step08)

        async def answer():
            async with httpx.AsyncClient() as client:
                r = await client.post(f"http://127.0.0.1:{ctx.gateway_port}/private-ai/mistral-3-distributed/v1/"
                                      "chat/completions", json={"model": "m", "messages": []})
            return r if r.status_code != 404 else None

        r = await eventually(answer, timeout=60, what="the route to reach the gateway")  # a bound, not a budget
        assert r.status_code == 500 and r.text == ENVOY_TLS_ERROR
    finally:
        for part in reversed(parts):
            await part.stop()
