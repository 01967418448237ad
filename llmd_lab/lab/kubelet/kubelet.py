"""The kubelet of every simulated node, as one lab component.

It watches pods bound to the profile's nodes, runs a ``PodWorker`` for each, finishes graceful deletions
(the store only marks a bound pod Terminating; the kubelet stops its containers and removes it), and
answers ``pods/log`` and pod addresses for the API server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from llmd_lab.lab.apiserver import errors
from llmd_lab.lab.context import LabContext
from llmd_lab.lab.informer import Informer
from llmd_lab.lab.ipam import Network
from llmd_lab.lab.kubelet.runtime import PodWorker
from llmd_lab.lab.network import StoreSource

log = logging.getLogger("llmd_lab.lab.kubelet")


class Kubelet:
    name = "kubelet"
    ctx: LabContext
    source: StoreSource

    def __init__(self, network: Network) -> None:
        self.network = network
        self.workers: dict[str, PodWorker] = {}  # by pod uid
        self.pulled: set[tuple[str, str]] = set()
        self._task: asyncio.Task | None = None

    async def start(self, ctx: LabContext) -> None:
        self.ctx = ctx
        self.source = StoreSource(ctx.store)
        pods, _ = await ctx.store.list("v1", "Pod")
        for pod in pods:  # keep addresses across down/up (reserve ignores anything outside the pod CIDR)
            self.network.pods.reserve((pod.get("status") or {}).get("podIP", ""))
        self._task = asyncio.create_task(self._run(), name="kubelet")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await asyncio.gather(*(w.stop(events=False) for w in self.workers.values()), return_exceptions=True)
        self.workers.clear()

    async def _run(self) -> None:
        await Informer(self.ctx.store, "v1", "Pod", self._handle, owner=self.name).run()

    async def _handle(self, type_: str, pod: dict) -> None:
        uid = pod["metadata"].get("uid", "")
        if type_ == "DELETED":
            worker = self.workers.pop(uid, None)
            if worker is not None:
                await worker.stop(events=False)
                self.network.pods.release(worker.ip)
            return
        if not pod["spec"].get("nodeName"):
            return
        if pod["metadata"].get("deletionTimestamp"):
            worker = self.workers.pop(uid, None)
            if worker is not None:
                await worker.stop()
                self.network.pods.release(worker.ip)
            with contextlib.suppress(errors.ApiError):
                await self.ctx.store.delete("v1", "Pod", pod["metadata"]["name"], pod["metadata"]["namespace"],
                                            grace_period_seconds=0)
            return
        if uid in self.workers:
            self.workers[uid].pod = pod
            return
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            return
        node = None
        with contextlib.suppress(errors.ApiError):
            node = await self.ctx.store.get("v1", "Node", pod["spec"]["nodeName"])
        ip = (pod.get("status") or {}).get("podIP") or ""
        if not self.network.pods.reserve(ip):  # only addresses of the lab's pod CIDR, never what a status says
            ip = self.network.pods.allocate()
        worker = PodWorker(self, pod, node, ip)
        self.workers[uid] = worker
        await worker.start()

    # ---- API server hooks
    def _worker(self, namespace: str, name: str) -> PodWorker | None:
        return next((w for w in self.workers.values() if (w.namespace, w.name) == (namespace, name)), None)

    async def read_logs(self, namespace: str, pod: str, container: str | None, tail_lines: int | None,
                        follow: bool, previous: bool) -> AsyncIterator[str]:
        worker = self._worker(namespace, pod)
        if worker is None:
            raise errors.bad_request(f'container "{container or ""}" in pod "{pod}" is waiting to start: '
                                     "ContainerCreating")
        names = [r.name for r in worker.mains]
        if not container:
            if len(names) != 1:
                raise errors.bad_request(f"a container name must be specified for pod {pod}, choose one of: "
                                         f"[{' '.join(names)}] or one of the init containers: "
                                         f"[{' '.join(r.name for r in worker.inits)}]")
            container = names[0]
        runner = worker.runner(container)
        if runner is None:
            raise errors.bad_request(f"container {container} is not valid for pod {pod}")
        if previous:
            if runner.previous is None:
                raise errors.bad_request(f'previous terminated container "{container}" in pod "{pod}" not found')
            buffer = runner.previous
        else:
            waiting = runner.state.get("waiting")
            if waiting and not runner.logs.lines and runner.previous is None:
                raise errors.bad_request(f'container "{container}" in pod "{pod}" is waiting to start: '
                                         f"{waiting.get('reason', 'ContainerCreating')}")
            buffer = runner.logs
        async for chunk in buffer.read(tail_lines, follow):
            yield chunk

    def resolve_pod_address(self, pod: dict, port: int) -> tuple[str, int] | None:
        ip = (pod.get("status") or {}).get("podIP")
        return (ip, port) if ip else None
