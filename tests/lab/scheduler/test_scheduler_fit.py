"""kube-scheduler filters and the FailedScheduling sentence, on the rhoai-3.0 profile's nodes."""

from __future__ import annotations

import copy

import pytest

from llmd_lab.lab.profiles import load_profile
from llmd_lab.lab.scheduler.fit import pod_requests, schedule

GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


def gpu_pod(name: str, gpus: int = 1, *, selector: dict | None = None, tolerate: bool = True) -> dict:
    spec: dict = {
        "containers": [{"name": "main", "resources": {"limits": {"nvidia.com/gpu": str(gpus)},
                                                        "requests": {"cpu": "2", "memory": "16Gi"}}}],
    }
    if tolerate:
        spec["tolerations"] = [GPU_TOLERATION]
    if selector:
        spec["nodeSelector"] = selector
    return {"metadata": {"name": name, "namespace": "ns"}, "spec": spec}


@pytest.fixture(scope="module")
def nodes() -> list[dict]:
    return load_profile("rhoai-3.0").node_objects()


def bind_all(pods: list[dict], nodes: list[dict]) -> tuple[list[dict], list[str]]:
    bound, messages = [], []
    for pod in pods:
        result = schedule(pod, nodes, bound)
        if result.node_name:
            pod = copy.deepcopy(pod)
            pod["spec"]["nodeName"] = result.node_name
            bound.append(pod)
        else:
            messages.append(result.message)
    return bound, messages


def test_limits_default_requests_and_sidecars_add_up() -> None:
    pod = gpu_pod("a", 2)
    pod["spec"]["initContainers"] = [
        {"name": "sidecar", "restartPolicy": "Always", "resources": {"requests": {"cpu": "500m"}}},
        {"name": "init", "resources": {"requests": {"memory": "64Gi"}}},
    ]
    req = pod_requests(pod)
    assert req["nvidia.com/gpu"] == 2
    assert req["cpu"] == 2500
    assert req["memory"] == 64 * 1024**3  # the init container's peak dominates


def test_five_one_gpu_replicas_on_the_g6_4xlarge_pool_leave_one_pending(nodes: list[dict]) -> None:
    pods = [gpu_pod(f"r{i}", selector={"node.kubernetes.io/instance-type": "g6.4xlarge"}) for i in range(5)]
    bound, messages = bind_all(pods, nodes)
    assert len({p["spec"]["nodeName"] for p in bound}) == 4  # spread, one per node
    assert messages == [
        "0/10 nodes are available: 3 node(s) didn't match Pod's node affinity/selector, "
        "3 node(s) had untolerated taint {node-role.kubernetes.io/master: }, 4 Insufficient nvidia.com/gpu. "
        "preemption: 0/10 nodes are available: 4 No preemption victims found for incoming pod, "
        "6 Preemption is not helpful for scheduling."
    ]


def test_gpu_pod_without_toleration_names_the_gpu_taint(nodes: list[dict]) -> None:
    result = schedule(gpu_pod("x", tolerate=False), nodes, [])
    assert result.node_name is None
    assert "5 node(s) had untolerated taint {nvidia.com/gpu: true}" in result.message
    assert "2 Insufficient nvidia.com/gpu" in result.message  # the CPU workers


def test_four_gpu_pod_lands_only_on_the_g6_12xlarge(nodes: list[dict]) -> None:
    result = schedule(gpu_pod("tp4", 4), nodes, [])
    node = next(n for n in nodes if n["metadata"]["name"] == result.node_name)
    assert node["metadata"]["labels"]["node.kubernetes.io/instance-type"] == "g6.12xlarge"


def test_required_node_affinity_and_cpu_pods_avoid_gpu_nodes(nodes: list[dict]) -> None:
    pod = {"metadata": {"name": "epp"}, "spec": {"containers": [{"name": "main", "resources": {
        "requests": {"cpu": "256m", "memory": "500Mi"}}}]}}
    node = next(n for n in nodes if n["metadata"]["name"] == schedule(pod, nodes, []).node_name)
    assert "nvidia.com/gpu.product" not in node["metadata"]["labels"]
    pod["spec"]["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [
            {"key": "nvidia.com/gpu.count", "operator": "Gt", "values": ["2"]}]}]}}}
    pod["spec"]["tolerations"] = [GPU_TOLERATION]
    node = next(n for n in nodes if n["metadata"]["name"] == schedule(pod, nodes, []).node_name)
    assert node["metadata"]["labels"]["nvidia.com/gpu.count"] == "4"


def test_finished_pods_free_their_resources(nodes: list[dict]) -> None:
    selector = {"node.kubernetes.io/instance-type": "g6.12xlarge"}
    bound, _ = bind_all([gpu_pod("big", 4, selector=selector)], nodes)
    assert schedule(gpu_pod("next", 1, selector=selector), nodes, bound).node_name is None
    bound[0]["status"] = {"phase": "Failed"}
    assert schedule(gpu_pod("next", 1, selector=selector), nodes, bound).node_name is not None


def test_bad_quantity_is_reported() -> None:
    pod = gpu_pod("bad")
    pod["spec"]["containers"][0]["resources"]["requests"]["cpu"] = "lots"
    with pytest.raises(ValueError, match="invalid resource quantity 'lots'"):
        pod_requests(pod)
