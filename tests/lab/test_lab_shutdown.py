"""Stopping the lab: open watches and ``logs -f`` end cleanly instead of holding the API server's shutdown
open, ``down`` does not wait for init to reap the exited lab process, and each component is listed once."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from llmd_lab.lab import process, server
from llmd_lab.lab.apiserver.store import Store
from llmd_lab.lab.context import LabComponent, LabContext, make_context
from llmd_lab.lab.home import LabPaths
from llmd_lab.lab.profiles import load_profile

NEVER_ENDING = "the container keeps writing\n"


class FakeKubelet:
    """A component that only answers ``pods/log``, with a follow stream that never ends by itself."""

    name = "fake-kubelet"

    async def start(self, ctx: LabContext) -> None:
        ctx.hooks.read_logs = self.read_logs

    async def stop(self) -> None:
        return None

    async def read_logs(self, namespace: str, pod: str, container: str, tail: int | None, follow: bool,
                        previous: bool) -> AsyncIterator[str]:
        yield NEVER_ENDING
        await asyncio.Event().wait()  # a running container: more lines may come at any time
        yield "unreachable\n"


def _make_components(ctx: LabContext) -> list[LabComponent]:
    return [FakeKubelet()]


async def _read_until_closed(response: httpx.Response, got_first: asyncio.Event) -> list[str]:
    lines = []
    async for line in response.aiter_lines():
        lines.append(line)
        got_first.set()
    return lines


def test_stopping_the_lab_ends_open_watches_and_log_streams_cleanly(tmp_path: Path, caplog):
    """A watch and a followed log open at ``down`` end as complete HTTP responses (clients re-list or exit)
    rather than being cut off after uvicorn's graceful-shutdown timeout with a traceback in lab.log."""
    home = tmp_path / "lab"
    results: dict[str, object] = {}

    async def scenario() -> None:
        stop = asyncio.Event()
        opened = asyncio.Event()
        info_box: dict = {}

        async def ready(info: dict) -> None:
            info_box.update(info)
            opened.set()

        lab = asyncio.create_task(server.run_lab(home, 0, profile="fresh", stop=stop, ready=ready,
                                                 components=_make_components))
        await asyncio.wait({lab, asyncio.create_task(opened.wait())}, return_when=asyncio.FIRST_COMPLETED)
        assert opened.is_set(), f"the lab did not start: {lab.exception() if lab.done() else '?'}"
        paths = LabPaths(home)
        headers = {"Authorization": f"Bearer {paths.token.read_text().strip()}"}
        async with httpx.AsyncClient(base_url=info_box["url"], headers=headers, timeout=30,
                                     verify=paths.pki.client_context()) as client:
            pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "writer", "namespace": "default"},
                   "spec": {"containers": [{"name": "main", "image": "registry.example/writer:1"}]}}
            assert (await client.post("/api/v1/namespaces/default/pods", json=pod)).status_code == 201
            watch_first, log_first = asyncio.Event(), asyncio.Event()
            async with client.stream("GET", "/api/v1/namespaces/default/pods", params={"watch": "1"}) as watch, \
                    client.stream("GET", "/api/v1/namespaces/default/pods/writer/log",
                                  params={"follow": "true"}) as logs:
                assert watch.status_code == 200 and logs.status_code == 200
                readers = [asyncio.create_task(_read_until_closed(watch, watch_first)),
                           asyncio.create_task(_read_until_closed(logs, log_first))]
                await asyncio.wait_for(asyncio.gather(watch_first.wait(), log_first.wait()), 10)
                stop.set()
                _, pending = await asyncio.wait({lab, *readers}, timeout=20)
                assert not pending, "the lab or a stream was still open 20 s after stop"
                results["watch"], results["logs"] = readers[0].result(), readers[1].result()
        lab.result()

    with caplog.at_level(logging.INFO):
        asyncio.run(scenario())
    events = [json.loads(line) for line in results["watch"] if line]
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "writer")]
    assert results["logs"] == [NEVER_ENDING.rstrip("\n")]
    messages = [r.getMessage() for r in caplog.records]
    assert not [m for m in messages if "graceful shutdown exceeded" in m or "Exception in ASGI" in m], messages
    assert not (home / "lab.json").exists()


def test_down_does_not_wait_for_init_to_reap_the_exited_lab():
    """The lab runs in its own session, so after ``up`` returns its parent is init, which may reap it late;
    an exited-but-unreaped (zombie) lab process is not running."""
    # a process whose child exits at once and is never reaped (Python installs no SIGCHLD handler): a zombie
    # that is not our child, as the lab is not `down`'s child
    script = "import os, time\npid = os.fork()\nif pid == 0:\n    os._exit(0)\nprint(pid, flush=True)\ntime.sleep(30)"
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        zombie = int(parent.stdout.readline())
        deadline = time.monotonic() + 10
        while Path(f"/proc/{zombie}/stat").read_text().rpartition(")")[2].split()[0] != "Z":
            assert time.monotonic() < deadline, "the child did not exit"
            time.sleep(0.01)
        assert not process.pid_alive(zombie)
        assert process.pid_alive(parent.pid)
    finally:
        parent.kill()
        parent.wait()
        parent.stdout.close()


def test_the_lab_constructs_each_component_once_and_fills_every_api_hook(tmp_path: Path):
    store = Store(tmp_path / "state.db")
    try:
        ctx = make_context(store, tmp_path, load_profile("rhoai-3.0"), 1.0)
        found = server.build_components(ctx)
        names = [c.name for c in found]
        assert len(names) == len(set(names)), names
        assert names.count("gateway") == 1 and {"kubelet", "kube-scheduler", "kube-proxy"} <= set(names)
        assert all(isinstance(c, LabComponent) for c in found)
        assert ctx.hooks.read_logs is not None and ctx.hooks.resolve_pod_address is not None
        assert ctx.hooks.resolve_service_address is not None
        assert store.graceful_pod_deletion  # the kubelet finishes pod deletions
    finally:
        store.close()
