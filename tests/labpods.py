"""Pod manifests the kubelet tests share (a module of its own, importable by a name no other file shares)."""

from __future__ import annotations

TOLERATE = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]


def vllm_pod(name: str, model: str, *, gpus: int = 1, extra: str = "") -> dict:
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": {"app": name}},
        "spec": {
            "tolerations": TOLERATE,
            "nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-L4"},
            "containers": [{
                "name": "main", "image": "registry.redhat.io/rhaiis/vllm-cuda-rhel9:3.2.3",
                "command": ["/bin/bash", "-c"],
                "args": [f"vllm serve {model} --port 8000 ${{VLLM_ADDITIONAL_ARGS}}"],
                "env": [{"name": "VLLM_ADDITIONAL_ARGS", "value": extra}],
                "ports": [{"containerPort": 8000}],
                "resources": {"limits": {"nvidia.com/gpu": str(gpus)}},
                "readinessProbe": {"httpGet": {"path": "/health", "port": 8000, "scheme": "HTTP"},
                                   "initialDelaySeconds": 1, "periodSeconds": 1},
            }],
        },
    }
