"""Build an ``LLMInferenceService`` as a plain dict in the RHOAI 3.0 shape (KServe ``serving.kserve.io/v1alpha1``).

``replicas`` + ``parallelism`` + ``template`` for the main (decode) workload, ``worker`` for multi-node (a
LeaderWorkerSet), ``prefill`` for P/D disaggregation, and ``router.scheduler.template`` for the endpoint
picker, whose ``EndpointPickerConfig`` (:mod:`llmd_lab.manifests.scheduler`) travels as ``--config-text``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from llmd_lab.kserve import names
from llmd_lab.kserve.names import child_name
from llmd_lab.manifests.hardware import GPU_TYPES, GpuType
from llmd_lab.manifests.keys import (
    API_VERSION,
    ENABLE_AUTH_ANNOTATION,
    GPU_RESOURCE,
    KIND,
    KUEUE_QUEUE_LABEL,
    NAMESPACE_TEMPLATE,
    ManifestError,
)
from llmd_lab.manifests.scheduler import epp_args, resolve_scheduler


@dataclass
class Prefill:
    """P/D disaggregation: prefill replicas and their tensor size; NixlConnector moves the KV cache."""

    replicas: int = 1
    tensor: int = 1


NIXL_KV_TRANSFER = {"kv_connector": "NixlConnector", "kv_role": "kv_both"}


def llm_inference_service(
    name: str,
    model_uri: str,
    *,
    model_name: str | None = None,
    namespace: str | None = None,
    replicas: int = 1,
    tensor: int = 1,
    nodes: int = 1,
    prefill: Prefill | None = None,
    scheduler: str | Mapping[str, float] | dict | None = "kserve-default",
    gpu: str | GpuType | None = None,
    cpu: str | None = None,
    memory: str | None = None,
    queue: str | None = None,
    vllm_args: Iterable[str] = ("--disable-uvicorn-access-log",),
    max_model_len: int | None = None,
    env: Mapping[str, str] | None = None,
    workarounds: bool = True,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
) -> dict:
    """Build an ``LLMInferenceService`` dict.

    Args:
        name: object name (DNS-1123, ≤ 63 chars; children add suffixes such as ``-kserve-workload-svc``).
        model_uri: ``hf://org/model``, ``oci://…``, ``pvc://…`` or ``s3://…``.
        model_name: the name clients send as ``"model"`` (``--served-model-name``); default: ``name``.
        replicas: independent vLLM copies (decode replicas when ``prefill`` is set).
        tensor: GPUs per replica on one node (``parallelism.tensor``, ``--tensor-parallel-size``).
        nodes: > 1 makes a multi-node data-parallel replica (``worker`` ⇒ a LeaderWorkerSet of ``nodes`` pods,
            ``parallelism.data = nodes``, ``dataLocal = 1``): the layout RHOAI 3.0 ships presets for
            (``kserve-config-llm-worker-data-parallel``; the pipeline-parallel presets are not shipped). Each
            node runs a full copy of the model on ``tensor`` GPUs, so it adds throughput, not room.
        prefill: a :class:`Prefill` to split prefill from decode (adds NixlConnector settings).
        scheduler: ``"kserve-default"`` (KServe's prefix 2 / load 1), ``"course"`` (queue 2 / kv 2 /
            prefix 3), a mapping of scorer weights, or a full ``EndpointPickerConfig`` dict.
        gpu: a key of :data:`GPU_TYPES` (e.g. ``"g6.4xlarge"``) or a :class:`GpuType`: sets the node
            selector, GPU toleration and default cpu/memory.
        queue: Kueue LocalQueue name (label ``kueue.x-k8s.io/queue-name``).
        vllm_args: extra vLLM flags (joined into ``VLLM_ADDITIONAL_ARGS``).
        workarounds: apply the RHOAI 3.0 workarounds (see the module docstring).
    """
    gpu_type = GPU_TYPES[gpu] if isinstance(gpu, str) and gpu in GPU_TYPES else gpu
    if isinstance(gpu_type, str):
        raise ManifestError([f"unknown gpu {gpu!r}: use one of {', '.join(GPU_TYPES)} or pass a GpuType"])
    meta = _metadata(name, namespace, queue, labels, annotations, workarounds=workarounds)

    args = list(vllm_args)
    if max_model_len:
        args.append(f"--max-model-len={int(max_model_len)}")
    if prefill is not None:
        args += ["--kv-transfer-config", "'" + json.dumps(NIXL_KV_TRANSFER, separators=(",", ":")) + "'"]

    def pod(t: int, extra_env: list[dict], *, preset_sets_tensor: bool = False) -> dict:
        # The single-node presets ignore parallelism.tensor, so the pod passes --tensor-parallel-size itself;
        # the data-parallel (multi-node) presets render it from parallelism.tensor.
        return _pod_template(t, gpu_type, cpu, memory, args, env, extra_env, tensor_arg=not preset_sets_tensor)

    nixl_env = (
        [{"name": "VLLM_NIXL_SIDE_CHANNEL_HOST", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}]
        if prefill is not None
        else []
    )
    multi = nodes > 1
    spec: dict[str, Any] = {
        "model": {"uri": model_uri, "name": model_name or name},
        "replicas": replicas,
        "parallelism": {"tensor": tensor, **({"data": nodes, "dataLocal": 1} if multi else {})},
        "template": pod(tensor, nixl_env, preset_sets_tensor=multi),
    }
    if multi:
        spec["worker"] = pod(tensor, nixl_env, preset_sets_tensor=True)
    if prefill is not None:
        spec["prefill"] = {
            "replicas": prefill.replicas,
            "parallelism": {"tensor": prefill.tensor},
            "template": pod(prefill.tensor, nixl_env),
        }

    config = resolve_scheduler(scheduler, pd=prefill is not None)
    router: dict[str, Any] = {"route": {}, "gateway": {}, "scheduler": {}}
    if config is not None or workarounds:
        text = yaml.safe_dump(config, sort_keys=False) if config is not None else None
        # KServe renders these Go templates after merging; concrete values are what it would render
        # (ChildName is the plain name + suffix for names ≤ 42 chars, which validate() enforces).
        pool = child_name(name, names.INFERENCE_POOL)
        args = epp_args(pool, namespace or NAMESPACE_TEMPLATE, text, workarounds)
        router["scheduler"] = {"template": {"containers": [{"name": "main", "args": args}]}}
    spec["router"] = router
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": meta, "spec": spec}


def _metadata(name: str, namespace: str | None, queue: str | None, labels: Mapping[str, str] | None,
              annotations: Mapping[str, str] | None, *, workarounds: bool) -> dict[str, Any]:  # fmt: skip
    """``metadata``: the Kueue queue as its label, the auth workaround as its annotation."""
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    meta_labels = dict(labels or {})
    if queue:
        meta_labels[KUEUE_QUEUE_LABEL] = queue
    if meta_labels:
        meta["labels"] = meta_labels
    meta_ann = dict(annotations or {})
    if workarounds:
        meta_ann.setdefault(ENABLE_AUTH_ANNOTATION, "false")
    if meta_ann:
        meta["annotations"] = meta_ann
    return meta


def _pod_template(
    tensor: int,
    gpu: GpuType | None,
    cpu: str | None,
    memory: str | None,
    args: list[str],
    env: Mapping[str, str] | None,
    extra_env: list[dict],
    *,
    tensor_arg: bool = True,
) -> dict:
    args = [*args, f"--tensor-parallel-size={tensor}"] if tensor > 1 and tensor_arg else args
    container_env = [{"name": "VLLM_ADDITIONAL_ARGS", "value": " ".join(args)}] if args else []
    container_env += [{"name": k, "value": v} for k, v in (env or {}).items()]
    container_env += extra_env
    cpu = cpu or (str(max(1, gpu.cpu // max(gpu.gpus_per_node, 1) * tensor // 2)) if gpu else "1")
    memory = memory or (gpu.memory if gpu and gpu.gpus_per_node == 1 else "16Gi")
    res = {"cpu": cpu, "memory": memory, GPU_RESOURCE: str(tensor)}
    container: dict[str, Any] = {"name": "main", "resources": {"limits": dict(res), "requests": dict(res)}}
    if container_env:
        container["env"] = container_env
    template: dict[str, Any] = {
        "containers": [container],
        "tolerations": [{"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}],
    }
    if gpu is not None:
        template["nodeSelector"] = {"node.kubernetes.io/instance-type": gpu.instance_type}
    return template
