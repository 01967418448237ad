"""What runs inside a simulated container: the program chosen by its command/args, its argv and its env.

``vllm serve …`` → the simulated vLLM; the EPP's flags (``--pool-name``) → the simulated endpoint picker;
the llm-d routing sidecar (``--vllm-port``) → a small reverse proxy that does the P/D prefill hop; ``guidellm``
and ``python -m llmd_lab.traffic`` (the benchmark Jobs) → the real clients, run by the lab; anything else
idles like a container whose process just waits. Shell wrappers (``/bin/bash -c "vllm serve …
${VLLM_ADDITIONAL_ARGS}"``) are expanded the way the shell would, and ``$(VAR)`` the way the kubelet does.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Mapping
from typing import Any

VLLM = "vllm"
EPP = "epp"
ROUTING_SIDECAR = "routing-sidecar"
STORAGE_INITIALIZER = "storage-initializer"
GUIDELLM = "guidellm"
KIT_RUNNER = "kit-traffic-runner"
IDLE = "idle"
INIT = "init"

_K8S_VAR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)|\$\$")
_SH_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")
_SHELLS = {"sh", "bash", "zsh", "dash"}


def expand_k8s(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes ``$(VAR)`` expansion: defined variables are replaced, undefined ones kept, ``$$`` → ``$``."""

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))

    return _K8S_VAR.sub(sub, text)


def expand_shell(text: str, env: Mapping[str, str]) -> str:
    """``${VAR}`` / ``$VAR`` as the shell expands them (undefined → empty)."""
    return _SH_VAR.sub(lambda m: env.get(m.group(1) or m.group(2), ""), text)


def container_argv(container: Mapping[str, Any], env: Mapping[str, str]) -> list[str]:
    """The process's argv: command + args after kubelet expansion, unwrapped from ``sh -c`` when present."""
    argv = [expand_k8s(str(a), env) for a in [*(container.get("command") or []), *(container.get("args") or [])]]
    if len(argv) >= 3 and os.path.basename(argv[0]) in _SHELLS and argv[1] == "-c":
        return shlex.split(expand_shell(argv[2], env))
    if len(argv) >= 2 and argv[0] == "-c" and not container.get("command"):
        return shlex.split(expand_shell(argv[1], env))
    return argv


def program_for(container: Mapping[str, Any], argv: list[str], *, init: bool = False) -> str:
    """Which simulated program a container runs."""
    if container.get("name") == "llm-d-routing-sidecar" or any(a.startswith("--vllm-port") for a in argv):
        return ROUTING_SIDECAR
    for i, arg in enumerate(argv[:-1]):
        if os.path.basename(arg) == "vllm" and argv[i + 1] == "serve":
            return VLLM
    if "--pool-name" in argv:
        return EPP
    if init and container.get("name") == STORAGE_INITIALIZER:  # KServe's name for it (workload_storage.go)
        return STORAGE_INITIALIZER
    if argv and os.path.basename(argv[0]) == "guidellm":
        return GUIDELLM
    if len(argv) >= 3 and os.path.basename(argv[0]).startswith("python") and argv[1:3] == ["-m", "llmd_lab.traffic"]:
        return KIT_RUNNER
    if init and container.get("restartPolicy") != "Always":
        return INIT
    return IDLE


def model_uri(pod: Mapping[str, Any]) -> str:
    """The model KServe mounted at /mnt/models: the storage-initializer's source or the modelcar image."""
    spec = pod.get("spec") or {}
    for c in spec.get("initContainers") or []:
        if c.get("name") == "storage-initializer" and c.get("args"):
            return str(c["args"][0])
    for c in [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]:
        if c.get("name") in ("modelcar", "modelcar-init") and c.get("image"):
            return "oci://" + c["image"]
    return ""


def gpu_limit(container: Mapping[str, Any]) -> int:
    res = container.get("resources") or {}
    value = (res.get("limits") or {}).get("nvidia.com/gpu") or (res.get("requests") or {}).get("nvidia.com/gpu")
    try:
        return int(str(value)) if value is not None else 0
    except ValueError:
        return 0


def _field_ref(path: str, pod: Mapping[str, Any], pod_ip: str) -> str:
    meta = pod.get("metadata") or {}
    simple = {
        "metadata.name": meta.get("name", ""),
        "metadata.namespace": meta.get("namespace", ""),
        "metadata.uid": meta.get("uid", ""),
        "spec.nodeName": (pod.get("spec") or {}).get("nodeName", ""),
        "spec.serviceAccountName": (pod.get("spec") or {}).get("serviceAccountName", ""),
        "status.podIP": pod_ip,
        "status.hostIP": pod_ip,
    }
    if path in simple:
        return simple[path]
    m = re.fullmatch(r"metadata\.(labels|annotations)\['([^']+)'\]", path)
    if m:
        return (meta.get(m.group(1)) or {}).get(m.group(2), "")
    return ""


def container_env(pod: Mapping[str, Any], container: Mapping[str, Any], *, pod_ip: str, node: Mapping[str, Any] | None,
                  time_scale: float, secrets: Mapping[tuple[str, str], str] | None = None,
                  download_mbps: float = 0.0) -> dict[str, str]:
    """The container's environment: its ``env`` (values, fieldRefs and the ``secretKeyRef`` values in
    ``secrets``, keyed by (Secret name, key), in order, with ``$(VAR)`` expansion) plus what the simulators read
    to know their hardware, identity and the profile's model download bandwidth."""
    meta = pod.get("metadata") or {}
    labels = ((node or {}).get("metadata") or {}).get("labels") or {}
    gpus = gpu_limit(container)
    env: dict[str, str] = {
        "HOSTNAME": meta.get("name", ""),
        "POD_NAME": meta.get("name", ""),
        "POD_NAMESPACE": meta.get("namespace", ""),
        "POD_IP": pod_ip,
        "LLMD_LAB_TIME_SCALE": repr(float(time_scale)),
        "LLMD_LAB_GPU_COUNT": str(gpus),
        "LLMD_LAB_MODEL_DOWNLOAD_MBPS": repr(float(download_mbps)),
    }
    if gpus and labels.get("nvidia.com/gpu.product"):
        env["LLMD_LAB_GPU_PRODUCT"] = labels["nvidia.com/gpu.product"]
        env["NVIDIA_VISIBLE_DEVICES"] = ",".join(str(i) for i in range(gpus))
    uri = model_uri(pod)
    if uri:
        env["LLMD_LAB_MODEL_URI"] = uri
    for item in container.get("env") or []:
        name = item.get("name")
        if not name:
            continue
        if "value" in item:
            env[name] = expand_k8s(str(item["value"]), env)
        elif (item.get("valueFrom") or {}).get("fieldRef"):
            env[name] = _field_ref(item["valueFrom"]["fieldRef"].get("fieldPath", ""), pod, pod_ip)
        elif (ref := (item.get("valueFrom") or {}).get("secretKeyRef")) and secrets is not None:
            env[name] = secrets.get((ref.get("name", ""), ref.get("key", "")), "")
        else:
            env.setdefault(name, "")  # configMapKeyRef: not simulated
    return env


def secret_key_refs(container: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The (Secret name, key) pairs a container's env reads, for the kubelet to fetch before it starts."""
    refs = [((i.get("valueFrom") or {}).get("secretKeyRef") or {}) for i in container.get("env") or []]
    return [(r.get("name", ""), r.get("key", "")) for r in refs if r.get("name")]


def container_port(container: Mapping[str, Any], argv: list[str], default: int = 8000) -> int:
    """The port a program listens on: ``--port`` in its argv, else its first containerPort."""
    for i, arg in enumerate(argv):
        if arg == "--port" and i + 1 < len(argv):
            return int(argv[i + 1])
        if arg.startswith("--port="):
            return int(arg.split("=", 1)[1])
    ports = container.get("ports") or []
    return int(ports[0]["containerPort"]) if ports else default
