"""Node objects for a profile's node groups, labelled and tainted as OpenShift, NFD and the GPU operator do.

kube-scheduler and the kubelet read only what is here (allocatable, labels, taints), so a GPU node is
exactly what ``oc describe node`` would show on AWS: ``nvidia.com/gpu.product: NVIDIA-L4``, a
``nvidia.com/gpu`` extended resource, and the ``nvidia.com/gpu=true:NoSchedule`` taint.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from llmd_lab.lab.scheduler.quantity import format_memory, parse_quantity

# What OpenShift's kubelet keeps for the system, per node: openshift/machine-config-operator's static defaults
# (/etc/node-sizing-enabled.env: NODE_SIZING_ENABLED=false, SYSTEM_RESERVED_CPU=500m, SYSTEM_RESERVED_MEMORY=1Gi)
# plus the kubelet's hard eviction threshold memory.available<100Mi. Capacity is the instance's nominal size
# (AWS instance types); the few hundred MiB the kernel keeps below nominal are not modelled.
SYSTEM_RESERVED_CPU_MILLI = 500
SYSTEM_RESERVED_MEMORY = 1024**3 + 100 * 1024**2
MAX_PODS = 250
GPU_TAINT = {"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}
MASTER_TAINT = {"key": "node-role.kubernetes.io/master", "effect": "NoSchedule"}


def _node_name(zone_index: int, group_index: int, i: int, region: str) -> str:
    return f"ip-10-0-{zone_index * 32 + group_index * 8 + 1}-{10 + i}.{region}.compute.internal"


def _internal_ip(name: str) -> str:
    head = name.split(".", 1)[0]
    return head[3:].replace("-", ".") if head.startswith("ip-") else "10.0.0.1"


def node_objects(
    node_types: dict[str, dict[str, Any]], groups: list[dict[str, Any]], openshift: dict[str, Any]
) -> list[dict[str, Any]]:
    """One Node per member of each group, with names shaped like AWS private DNS names."""
    region = openshift.get("region", "us-east-2")
    kubelet_version = openshift.get("kubernetesVersion", "v1.32.7")
    zones: dict[str, int] = {}
    nodes = []
    for gi, group in enumerate(groups):
        spec = node_types[group["type"]]
        zone = group.get("zone", f"{region}a")
        zi = zones.setdefault(zone, len(zones))
        for i in range(int(group.get("count", 1))):
            name = _node_name(zi, gi, i, region)
            nodes.append(_node(name, group["type"], spec, group, zone, region, kubelet_version))
    return nodes


def _node(
    name: str, instance_type: str, spec: dict[str, Any], group: dict[str, Any], zone: str, region: str, kver: str
) -> dict[str, Any]:
    role = group.get("role", "worker")
    cpu_milli = int(parse_quantity(str(spec["cpu"])) * 1000)
    memory = int(parse_quantity(str(spec["memory"])))
    labels = {
        "beta.kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/os": "linux",
        "kubernetes.io/hostname": name,
        "node.kubernetes.io/instance-type": instance_type,
        "beta.kubernetes.io/instance-type": instance_type,
        "topology.kubernetes.io/region": region,
        "topology.kubernetes.io/zone": zone,
        "node.openshift.io/os_id": "rhcos",
        f"node-role.kubernetes.io/{role}": "",
    }
    if role == "master":
        labels["node-role.kubernetes.io/control-plane"] = ""
    capacity = {
        "cpu": str(cpu_milli // 1000),
        "memory": format_memory(memory),
        "ephemeral-storage": "125293548Ki",
        "pods": str(MAX_PODS),
    }
    allocatable = {
        "cpu": f"{cpu_milli - SYSTEM_RESERVED_CPU_MILLI}m",
        "memory": format_memory(memory - SYSTEM_RESERVED_MEMORY),
        "ephemeral-storage": "114396791822",
        "pods": str(MAX_PODS),
    }
    taints = [dict(t) for t in group.get("taints", [])]
    if role == "master":
        taints.append(dict(MASTER_TAINT))
    gpu = spec.get("gpu")
    if gpu:
        count = int(gpu["count"])
        labels.update({
            "feature.node.kubernetes.io/pci-10de.present": "true",
            "nvidia.com/gpu.present": "true",
            "nvidia.com/gpu.deploy.device-plugin": "true",
            "nvidia.com/gpu.product": gpu["product"],
            "nvidia.com/gpu.count": str(count),
            "nvidia.com/gpu.memory": str(gpu["memoryMiB"]),
            "nvidia.com/gpu.family": gpu.get("family", ""),
            "nvidia.com/gpu.machine": instance_type,
            "nvidia.com/cuda.driver.major": "570",
        })
        capacity["nvidia.com/gpu"] = str(count)
        allocatable["nvidia.com/gpu"] = str(count)
        if group.get("gpuTaint", True):
            taints.append(dict(GPU_TAINT))
    node: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels, "annotations": {"llmd-lab/instance-type": instance_type}},
        "spec": {"providerID": f"aws:///{zone}/i-{hashlib.sha1(name.encode()).hexdigest()[:17]}"},
        "status": {
            "capacity": capacity,
            "allocatable": allocatable,
            "conditions": [
                {"type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory"},
                {"type": "DiskPressure", "status": "False", "reason": "KubeletHasNoDiskPressure"},
                {"type": "PIDPressure", "status": "False", "reason": "KubeletHasSufficientPID"},
                {"type": "Ready", "status": "True", "reason": "KubeletReady",
                 "message": "kubelet is posting ready status"},
            ],
            "addresses": [
                {"type": "InternalIP", "address": _internal_ip(name)},
                {"type": "Hostname", "address": name},
                {"type": "InternalDNS", "address": name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "architecture": "amd64",
                "bootID": str(uuid.uuid5(uuid.NAMESPACE_DNS, "boot." + name)),
                "containerRuntimeVersion": "cri-o://1.32.7-3.rhaos4.19.git5ecde0b.el9",
                "kernelVersion": "5.14.0-570.42.2.el9_6.x86_64",
                "kubeProxyVersion": "",
                "kubeletVersion": kver,
                "machineID": hashlib.md5(name.encode(), usedforsecurity=False).hexdigest(),
                "operatingSystem": "linux",
                "osImage": "Red Hat Enterprise Linux CoreOS 9.6.20250916-0 (Plow)",
                "systemUUID": str(uuid.uuid5(uuid.NAMESPACE_URL, "ec2." + name)),
            },
        },
    }
    if taints:
        node["spec"]["taints"] = taints
    return node
