"""Issue 17 §2/§3: one bad object never blinds a controller for everyone, and nothing a Service or a pod
status asks for makes the lab listen beyond loopback.

Each scenario stores the bad object as older state (the API server may refuse it as a new write) and then
shows that the other objects are still served, that the bad one is marked once, and that nothing is bound
on 0.0.0.0 / ``::``.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from pathlib import Path

import pytest
from olderstate import store_as_older_state

from llmd_lab.lab.apiserver.store import Store
from llmd_lab.lab.context import LabContext
from llmd_lab.lab.controller.testing import events_for, eventually, make_ctx
from llmd_lab.lab.controller.workloads import ReplicaSetController
from llmd_lab.lab.ipam import POD_CIDR
from llmd_lab.lab.kubelet.kubelet import Kubelet
from llmd_lab.lab.network import ServiceNetwork
from llmd_lab.lab.profiles import load_profile
from llmd_lab.lab.scheduler.scheduler import KubeScheduler
from llmd_lab.lab.server import LabPaths, install_profile

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _pod(name: str, cpu: str = "100m") -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
            "spec": {"containers": [{"name": "main", "image": "registry.example/app:1",
                                     "resources": {"requests": {"cpu": cpu}}}]}}


def _service(name: str, port: int = 8080, cluster_ip: str | None = None) -> dict:
    spec: dict = {"selector": {"app": name}, "ports": [{"name": "http", "port": port, "targetPort": port}]}
    if cluster_ip:
        spec["clusterIP"] = cluster_ip
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "default"}, "spec": spec}


async def _lab(tmp_path: Path) -> LabContext:
    profile = load_profile("rhoai-3.0")
    ctx = make_ctx(tmp_path, profile, time_scale=200.0, store=Store(tmp_path / "state.db"))
    await install_profile(ctx.store, profile, LabPaths(tmp_path))
    return ctx


async def _running(ctx: LabContext, *parts):
    for part in parts:
        await part.start(ctx)
    return parts


async def _stop(ctx: LabContext, parts) -> None:
    for part in reversed(parts):
        await part.stop()
    ctx.store.close()


def _set_cpu(value: str):
    def corrupt(pod: dict) -> None:
        pod["spec"]["containers"][0]["resources"]["requests"]["cpu"] = value
    return corrupt


async def test_a_pod_with_cpu_abc_does_not_stop_the_scheduler_for_others(tmp_path: Path, caplog) -> None:
    await store_as_older_state(tmp_path / "state.db", _pod("typo"), _set_cpu("abc"))
    ctx = await _lab(tmp_path)
    parts = await _running(ctx, KubeScheduler(interval=0.05))
    try:
        await ctx.store.create(_pod("good"))

        async def bound():
            return (await ctx.store.get("v1", "Pod", "good", "default"))["spec"].get("nodeName")

        await eventually(bound, what="the good pod to be bound while a pod with cpu 'abc' is stored")

        async def marked():
            pod = await ctx.store.get("v1", "Pod", "typo", "default")
            conds = [c for c in (pod.get("status") or {}).get("conditions") or [] if c["type"] == "PodScheduled"]
            return conds and conds[0]["status"] == "False" and "invalid resource requests" in conds[0]["message"]

        await eventually(marked, what="the bad pod to be marked PodScheduled=False with why")
        for i in range(10):  # each new pod wakes a pass: still one event on the bad pod, no flood
            await ctx.store.create(_pod(f"more-{i}"))

        async def more_bound():
            return all([(await ctx.store.get("v1", "Pod", f"more-{i}", "default"))["spec"].get("nodeName")
                        for i in range(10)])

        await eventually(more_bound, what="scheduling to go on")
        failed = [e for e in await events_for(ctx.store, "typo", "default") if e["reason"] == "FailedScheduling"]
        assert len(failed) == 1 and failed[0]["count"] == 1, failed
        assert "abc" in failed[0]["message"]
    finally:
        await _stop(ctx, parts)


async def test_a_bound_pod_with_a_bad_quantity_is_left_out_of_its_nodes_usage(tmp_path: Path, caplog) -> None:
    def bind_and_break(pod: dict) -> None:
        _set_cpu("abc")(pod)
        pod["spec"]["nodeName"] = "ip-10-0-12-34.us-east-2.compute.internal"

    await store_as_older_state(tmp_path / "state.db", _pod("old-bound"), bind_and_break)
    ctx = await _lab(tmp_path)
    parts = await _running(ctx, KubeScheduler(interval=0.05))
    try:
        with caplog.at_level(logging.WARNING, "llmd_lab.lab.scheduler"):
            for i in range(3):
                await ctx.store.create(_pod(f"new-{i}"))

            async def all_bound():
                return all([(await ctx.store.get("v1", "Pod", f"new-{i}", "default"))["spec"].get("nodeName")
                            for i in range(3)])

            await eventually(all_bound, what="new pods to schedule beside a bound pod with cpu 'abc'")
        logged = [r for r in caplog.records if "old-bound" in r.getMessage()]
        assert len(logged) == 1, [r.getMessage() for r in logged]
    finally:
        await _stop(ctx, parts)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _bindable(host: str, port: int, family: int = socket.AF_INET) -> bool:
    """Whether nobody listens on host:port (we can bind it without SO_REUSEADDR)."""
    with socket.socket(family, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


async def test_a_service_on_port_70000_does_not_stop_kube_proxy_for_others(tmp_path: Path, caplog) -> None:
    def port_70000(svc: dict) -> None:
        svc["spec"]["ports"][0]["port"] = 70000

    await store_as_older_state(tmp_path / "state.db", _service("typo"), port_70000)
    ctx = await _lab(tmp_path)
    parts = await _running(ctx, ServiceNetwork(ctx.network))
    try:
        with caplog.at_level(logging.WARNING, "llmd_lab.lab.informer"):
            await ctx.store.create(_service("good"))

            async def listening():
                svc = await ctx.store.get("v1", "Service", "good", "default")
                ip = svc["spec"].get("clusterIP")
                if not ip:
                    return None
                try:
                    _, writer = await asyncio.open_connection(ip, 8080)
                except OSError:
                    return None
                writer.close()
                return ip

            await eventually(listening, what="the good Service's cluster IP to accept connections")

            async def warned():
                return [e for e in await events_for(ctx.store, "typo", "default") if e["type"] == "Warning"]

            events = await eventually(warned, what="a Warning event on the Service with port 70000")
            assert "65535" in events[0]["message"], events
            await ctx.store.create(_service("later", 8081))  # still serving new Services after the bad one
            later = await eventually(lambda: ctx.store.get("v1", "Service", "later", "default"), what="later")
            await eventually(lambda: _has_ip(ctx, "later"), what="a cluster IP for a Service created afterwards")
        assert later
        logged = [r for r in caplog.records if "typo" in r.getMessage()]
        assert len(logged) == 1, [r.getMessage() for r in logged]
    finally:
        await _stop(ctx, parts)


async def _has_ip(ctx: LabContext, name: str) -> str | None:
    return (await ctx.store.get("v1", "Service", name, "default"))["spec"].get("clusterIP")


@pytest.mark.parametrize(("cluster_ip", "family"), [("0.0.0.0", socket.AF_INET), ("::", socket.AF_INET6)])
async def test_a_service_asking_for_every_interface_is_never_bound(tmp_path: Path, cluster_ip: str,
                                                                   family: int) -> None:
    port = _free_port()

    def every_interface(svc: dict) -> None:
        svc["spec"]["clusterIP"] = cluster_ip
        svc["spec"]["clusterIPs"] = [cluster_ip]

    await store_as_older_state(tmp_path / "state.db", _service("exposed", port, "127.2.0.9"), every_interface)
    ctx = await _lab(tmp_path)
    parts = await _running(ctx, ServiceNetwork(ctx.network))
    try:
        async def refused():
            return [e for e in await events_for(ctx.store, "exposed", "default") if e["reason"] == "InvalidService"]

        events = await eventually(refused, what="kube-proxy to refuse the non-loopback clusterIP")
        assert "loopback" in events[0]["message"]
        assert _bindable(cluster_ip, port, family), f"something listens on {cluster_ip}:{port}"
    finally:
        await _stop(ctx, parts)


async def test_a_pod_status_cannot_choose_a_non_loopback_pod_ip(tmp_path: Path) -> None:
    def wild_ip(pod: dict) -> None:
        pod["spec"]["nodeName"] = "ip-10-0-12-34.us-east-2.compute.internal"
        pod["status"] = {"phase": "Pending", "podIP": "0.0.0.0"}

    await store_as_older_state(tmp_path / "state.db", _pod("wild"), wild_ip)
    ctx = await _lab(tmp_path)
    parts = await _running(ctx, Kubelet(ctx.network))
    try:
        async def pod_ip():
            ip = ((await ctx.store.get("v1", "Pod", "wild", "default")).get("status") or {}).get("podIP")
            return ip if ip != "0.0.0.0" else None

        ip = await eventually(pod_ip, what="the kubelet to give the pod an address of its own")
        import ipaddress

        assert ipaddress.ip_address(ip) in POD_CIDR
    finally:
        await _stop(ctx, parts)


async def test_a_replicaset_that_cannot_be_reconciled_is_logged_once_and_others_go_on(tmp_path: Path,
                                                                                        caplog) -> None:
    def rs(name: str) -> dict:
        labels = {"app": name}
        return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name, "namespace": "default"},
                "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                         "template": {"metadata": {"labels": labels},
                                      "spec": {"containers": [{"name": "c", "image": "registry.example/a:1"}]}}}}

    def replicas_abc(obj: dict) -> None:
        obj["spec"]["replicas"] = "abc"

    await store_as_older_state(tmp_path / "state.db", rs("broken"), replicas_abc)
    ctx = await _lab(tmp_path)
    controller = ReplicaSetController()
    controller.resync_seconds = 0.05  # many resyncs: the broken key must still be logged only once
    parts = await _running(ctx, controller)
    try:
        with caplog.at_level(logging.WARNING, "llmd_lab.lab.controller"):
            await ctx.store.create(rs("fine"))

            async def fine_pods():
                pods, _ = await ctx.store.list("v1", "Pod", "default", label_selector="app=fine")
                return pods

            await eventually(fine_pods, what="the healthy ReplicaSet's pod")

            async def retried():  # the broken key is retried with back-off, again and again
                return controller.failures(("default", "broken")) >= 5

            await eventually(retried, what="the broken ReplicaSet to be retried five times")
        logged = [r for r in caplog.records if "broken" in r.getMessage()]
        assert len(logged) == 1, [r.getMessage() for r in logged]
    finally:
        await _stop(ctx, parts)
