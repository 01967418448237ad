"""Pod addresses and listeners: an IP is handed out again only once nothing on the host holds it, and a
program that cannot bind its address ends its container (Error → CrashLoopBackOff), never the lab."""

from __future__ import annotations

import contextlib
import random
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from labpods import vllm_pod
from uvicorn.config import STARTUP_FAILURE

from llmd_lab.lab.controller.testing import eventually
from llmd_lab.lab.ipam import POD_CIDR, IPAllocator, addresses_in_use
from llmd_lab.lab.kubelet import programs, registry
from llmd_lab.lab.kubelet.kubelet import Kubelet

pytestmark = pytest.mark.anyio
MODEL = "Qwen/Qwen3-0.6B"
def _offset() -> int:
    """A random host of the pod CIDR (not .0/.255), so parallel test runs do not pick the same one."""
    while True:
        offset = random.randrange(256, POD_CIDR.num_addresses - 256)
        if offset & 0xFF not in (0, 1, 254, 255):
            return offset


@contextlib.contextmanager
def _listening(ip: str, port: int = 0) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((ip, port))
        sock.listen()
        yield sock
    finally:
        sock.close()


def _accepts(ip: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(1)
        return s.connect_ex((ip, port)) == 0


def test_addresses_in_use_reads_every_socket_but_time_wait(tmp_path: Path) -> None:
    table = tmp_path / "tcp"
    table.write_text(
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
        "   0: 0A00017F:1F40 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1\n"  # LISTEN
        "   1: 0B00017F:1F40 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 2\n"  # ESTABLISHED
        "   2: 0C00017F:1F40 0100007F:9C41 06 00000000:00000000 00:00000000 00000000     0        0 3\n")  # TIME_WAIT
    assert addresses_in_use(table) == {"127.1.0.10", "127.1.0.11"}
    assert addresses_in_use(tmp_path / "absent") == set()


def test_allocator_skips_an_address_a_socket_on_this_host_still_holds() -> None:
    offset = _offset()
    held = str(POD_CIDR.network_address + offset)
    after = str(POD_CIDR.network_address + offset + 1)
    with _listening(held):  # e.g. another lab's pod, or an old pod whose listener is not closed yet
        assert IPAllocator(POD_CIDR, start=offset - 1).allocate() == after
    assert IPAllocator(POD_CIDR, start=offset - 1).allocate() == held  # free again once closed


async def _crash_looping(store, name: str) -> dict | None:
    pod = await store.get("v1", "Pod", name, "default")
    for cs in pod["status"].get("containerStatuses", []):
        if (cs["state"].get("waiting") or {}).get("reason") == "CrashLoopBackOff" and cs["restartCount"] >= 1:
            return cs
    return None


async def _previous_log(kubelet: Kubelet, name: str) -> str:
    return "".join([c async for c in kubelet.read_logs("default", name, "main", None, False, True)])


async def test_vllm_that_cannot_bind_its_pod_ip_crash_loops(node_env) -> None:
    ctx, kubelet = node_env
    offset = _offset()
    ip = str(POD_CIDR.network_address + offset)
    # the kubelet is handed an address something else holds (no host check, as if the IPAM had not seen it)
    ctx.network.pods = IPAllocator(POD_CIDR, start=offset - 1, in_use=set)
    with _listening(ip, 8000):
        await ctx.store.create(vllm_pod("squatted", MODEL, extra="--max-model-len=4096"))
        cs = await eventually(lambda: _crash_looping(ctx.store, "squatted"), what="CrashLoopBackOff")
        assert cs["lastState"]["terminated"]["exitCode"] == 1
        assert cs["lastState"]["terminated"]["reason"] == "Error"
        assert "address already in use" in await _previous_log(kubelet, "squatted")


async def test_a_program_calling_sys_exit_ends_its_container_not_the_lab(node_env, monkeypatch) -> None:
    ctx, kubelet = node_env
    offset = _offset()
    ip = str(POD_CIDR.network_address + offset)
    ctx.network.pods = IPAllocator(POD_CIDR, start=offset - 1, in_use=set)

    async def bare_uvicorn(launch: registry.Launch, started: registry.Started) -> None:
        # uvicorn on its own: it logs the OSError and calls sys.exit(STARTUP_FAILURE) when the address is taken
        config = uvicorn.Config(lambda scope, receive, send: None, host=launch.host, port=8000, lifespan="off",
                                log_level="critical")
        config.load()
        server = uvicorn.Server(config)
        server.lifespan = config.lifespan_class(config)  # what Server.serve sets up before startup()
        await server.startup()

    monkeypatch.setitem(registry.PROGRAMS, programs.VLLM, bare_uvicorn)
    with _listening(ip, 8000):
        await ctx.store.create(vllm_pod("exits", MODEL, extra="--max-model-len=4096"))
        cs = await eventually(lambda: _crash_looping(ctx.store, "exits"), what="CrashLoopBackOff")
    assert cs["lastState"]["terminated"]["exitCode"] == STARTUP_FAILURE  # uvicorn's own exit status
    assert f"process exited with status {STARTUP_FAILURE}" in await _previous_log(kubelet, "exits")
    assert await ctx.store.get("v1", "Pod", "exits", "default")  # the lab's loop is still serving


async def test_a_deleted_pods_ip_is_released_only_after_its_listener_closed(node_env) -> None:
    ctx, _ = node_env
    released: list[tuple[str, bool]] = []
    pods = ctx.network.pods
    release = pods.release

    def record(ip: str) -> None:
        released.append((ip, _accepts(ip, 8000)))
        release(ip)

    pods.release = record  # type: ignore[method-assign]
    await ctx.store.create(vllm_pod("short-lived", MODEL, extra="--max-model-len=4096"))

    async def ready() -> str | None:
        pod = await ctx.store.get("v1", "Pod", "short-lived", "default")
        conds = {c["type"]: c["status"] for c in pod["status"].get("conditions", [])}
        return pod["status"]["podIP"] if conds.get("Ready") == "True" else None

    ip = await eventually(ready, what="vLLM pod Ready (its readiness probe reached the listener)")
    await ctx.store.delete("v1", "Pod", "short-lived", "default")

    async def gone() -> bool:
        items, _ = await ctx.store.list("v1", "Pod", "default")
        return not items and bool(released)

    await eventually(gone, what="pod removed and its IP released")
    assert released == [(ip, False)]  # released once, and nothing listened on it any more
