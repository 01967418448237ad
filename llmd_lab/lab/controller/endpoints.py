"""Endpoints and EndpointSlices for every Service with a selector, from its pods' IPs and readiness.

kube-proxy (network.py), the EPP and ``kubectl get endpoints`` all read these; a pod counts as ready when
its ``Ready`` condition is True, exactly as the endpoints controller decides.
"""

from __future__ import annotations

from typing import Any

from llmd_lab.lab.apiserver.errors import ApiError
from llmd_lab.lab.apiserver.store import Store
from llmd_lab.lab.controller.base import Key, Reconciler, Watch, self_key
from llmd_lab.lab.controller.pods import controller_ref, is_ready, selector_string


def _target_port(port: dict[str, Any], pod: dict[str, Any]) -> int | None:
    target = port.get("targetPort", port.get("port"))
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    for c in pod["spec"].get("containers", []) + pod["spec"].get("initContainers", []):
        for p in c.get("ports") or []:
            if p.get("name") == target:
                return int(p["containerPort"])
    return None


def endpoint_objects(service: dict[str, Any], pods: list[dict[str, Any]]) -> tuple[dict, dict]:
    """The Endpoints and the EndpointSlice for ``service`` given its selected ``pods``."""
    meta = service["metadata"]
    ns, name = meta["namespace"], meta["name"]
    ports = service["spec"].get("ports") or []
    with_ip = [p for p in pods if (p.get("status") or {}).get("podIP") and not p["metadata"].get("deletionTimestamp")]

    def address(pod: dict) -> dict:
        return {"ip": pod["status"]["podIP"], "nodeName": pod["spec"].get("nodeName"),
                "targetRef": {"kind": "Pod", "name": pod["metadata"]["name"], "namespace": ns,
                              "uid": pod["metadata"]["uid"]}}

    subsets = []
    if with_ip:
        ep_ports = []
        for port in ports:
            tp = _target_port(port, with_ip[0])
            if tp is not None:
                ep_ports.append({k: v for k, v in {"name": port.get("name"), "port": tp,
                                                   "protocol": port.get("protocol", "TCP"),
                                                   "appProtocol": port.get("appProtocol")}.items() if v is not None})
        ready = [address(p) for p in with_ip if is_ready(p)]
        not_ready = [address(p) for p in with_ip if not is_ready(p)]
        subset: dict[str, Any] = {"ports": ep_ports}
        if ready:
            subset["addresses"] = ready
        if not_ready:
            subset["notReadyAddresses"] = not_ready
        subsets.append(subset)
    endpoints = {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": name, "namespace": ns, "labels": dict(meta.get("labels") or {}),
                     "ownerReferences": [controller_ref(service)]},
        "subsets": subsets,
    }
    slice_ports = []
    for port in ports:
        tp = _target_port(port, with_ip[0]) if with_ip else None
        entry = {"name": port.get("name", ""), "protocol": port.get("protocol", "TCP")}
        if tp is not None:
            entry["port"] = tp
        if port.get("appProtocol"):
            entry["appProtocol"] = port["appProtocol"]
        slice_ports.append(entry)
    endpoint_slice = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "addressType": "IPv4",
        "metadata": {
            "name": f"{name}-lab",
            "namespace": ns,
            "labels": {**(meta.get("labels") or {}), "kubernetes.io/service-name": name,
                       "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"},
            "ownerReferences": [controller_ref(service)],
        },
        "endpoints": [
            {"addresses": [p["status"]["podIP"]],
             "conditions": {"ready": is_ready(p), "serving": is_ready(p), "terminating": False},
             "nodeName": p["spec"].get("nodeName"),
             "targetRef": {"kind": "Pod", "name": p["metadata"]["name"], "namespace": ns,
                           "uid": p["metadata"]["uid"]}}
            for p in with_ip
        ],
        "ports": slice_ports,
    }
    return endpoints, endpoint_slice


class EndpointsController(Reconciler):
    name = "endpoint-controller"

    def __init__(self) -> None:
        super().__init__()
        self.watches = (Watch("v1", "Service", self_key), Watch("v1", "Pod", self._services_in_namespace))

    def _services_in_namespace(self, pod: dict) -> list[Key]:
        ns = pod["metadata"].get("namespace", "")
        return [k for k in self._known if k[0] == ns]

    async def reconcile(self, namespace: str, name: str) -> bool | None:
        service = await self.get_or_none("v1", "Service", name, namespace)
        if service is None:
            return False
        selector = (service.get("spec") or {}).get("selector")
        if not selector or service["metadata"].get("deletionTimestamp"):
            return None
        pods, _ = await self.store.list("v1", "Pod", namespace, label_selector=selector_string(selector))
        endpoints, endpoint_slice = endpoint_objects(service, pods)
        await _replace(self.store, endpoints, ("subsets",))
        await _replace(self.store, endpoint_slice, ("endpoints", "ports"))
        return None


async def _replace(store: Store, desired: dict, fields: tuple[str, ...]) -> None:
    meta = desired["metadata"]
    try:
        live = await store.get(desired["apiVersion"], desired["kind"], meta["name"], meta["namespace"])
    except ApiError as exc:
        if exc.code != 404:
            raise
        await store.create(desired)
        return
    if all(live.get(f) == desired.get(f) for f in fields):
        return
    for f in fields:
        live[f] = desired[f]
    await store.update(live)
