"""Cluster DNS for the simulated programs, as CoreDNS answers a pod with ``dnsPolicy: ClusterFirst``.

A pod's resolv.conf searches ``<ns>.svc.cluster.local svc.cluster.local cluster.local``, so a program may name a
Service as ``<svc>``, ``<svc>.<ns>``, ``<svc>.<ns>.svc`` or ``<svc>.<ns>.svc.cluster.local`` (→ its cluster IP),
and a pod with ``hostname``/``subdomain`` as ``<hostname>.<subdomain>.<ns>[.svc[.cluster.local]]`` (→ its pod
IP; what a LeaderWorkerSet's ``LWS_LEADER_ADDRESS`` names). Anything else (IP literals, ``localhost``, outside
names) is not the cluster's business and resolves to ``None``.
"""

from __future__ import annotations

import ipaddress

from llmd_lab.lab.apiserver.errors import ApiError
from llmd_lab.lab.apiserver.store import Store

CLUSTER_DOMAIN = "cluster.local"


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def split_cluster_name(name: str, namespace: str) -> tuple[list[str], str] | None:
    """``(labels before the namespace, namespace)`` for a name the cluster answers, else ``None``."""
    name = name.rstrip(".").lower()
    if not name or name == "localhost" or _is_ip(name) or name == "*":
        return None
    for suffix in (f".svc.{CLUSTER_DOMAIN}", ".svc"):
        if name.endswith(suffix):
            parts = name[: -len(suffix)].split(".")
            return (parts[:-1], parts[-1]) if len(parts) >= 2 else None
    parts = name.split(".")
    if len(parts) == 1:
        return parts, namespace
    if len(parts) in (2, 3):
        return parts[:-1], parts[-1]
    return None


async def resolve(store: Store, name: str, namespace: str) -> str | None:
    """The address ``name`` resolves to from a pod in ``namespace``, or ``None`` (NXDOMAIN or not a cluster name)."""
    split = split_cluster_name(name, namespace)
    if split is None:
        return None
    labels, ns = split
    try:
        if len(labels) == 1:
            svc = await store.get("v1", "Service", labels[0], ns)
            ip = (svc.get("spec") or {}).get("clusterIP")
            return ip if ip and ip != "None" else None
        hostname, subdomain = labels
        pods, _ = await store.list("v1", "Pod", ns)
    except ApiError as exc:
        if exc.code == 404:
            return None
        raise
    for pod in pods:
        spec = pod.get("spec") or {}
        if (spec.get("hostname") or pod["metadata"]["name"]) == hostname and spec.get("subdomain") == subdomain:
            return (pod.get("status") or {}).get("podIP") or None
    return None
