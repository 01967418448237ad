"""The simulated nodes' kubelet: lifecycle stages as data (``stages.yaml``), programs chosen by a container's
command (``programs``), the container runtime (``runtime``) and the component (``kubelet``)."""

from __future__ import annotations

from typing import Any


def components(ctx: Any) -> list:
    from llmd_lab.lab.kubelet.kubelet import Kubelet
    from llmd_lab.lab.network import Network

    if ctx.network is None:
        ctx.network = Network()
    kubelet = Kubelet(ctx.network)
    ctx.hooks["read_logs"] = kubelet.read_logs
    ctx.hooks["resolve_pod_address"] = kubelet.resolve_pod_address
    return [kubelet]
