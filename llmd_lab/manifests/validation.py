"""Check an ``LLMInferenceService`` before it is applied: the CRD schema subset our rules rely on, names that
leave room for KServe's child suffixes, tensor parallelism that fits the node, and weights that fit the GPUs
with room left for the KV cache. Every problem is collected into one :class:`ManifestError`."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

import jsonschema

from llmd_lab.manifests.hardware import (
    GPU_MEMORY_UTILIZATION,
    GPU_TYPES,
    MIN_KV_FRACTION,
    GpuType,
    ModelSize,
    model_size,
)
from llmd_lab.manifests.keys import API_VERSION, GPU_RESOURCE, KIND, ManifestError

_DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_POS_INT = {"type": "integer", "minimum": 1}
_PODSPEC = {"type": "object", "properties": {"containers": {"type": "array"}}}
_WORKLOAD = {
    "replicas": {"type": "integer", "minimum": 0},
    "parallelism": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "tensor": _POS_INT,
            "pipeline": _POS_INT,
            "data": _POS_INT,
            "dataLocal": _POS_INT,
            "dataRPCPort": {"type": "integer", "minimum": 1, "maximum": 65535},
            "expert": {"type": "boolean"},
        },
    },
    "template": _PODSPEC,
    "worker": _PODSPEC,
}
#: The subset of the CRD's OpenAPI schema our rules depend on.
SCHEMA = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": API_VERSION},
        "kind": {"const": KIND},
        "metadata": {"type": "object", "required": ["name"]},
        "spec": {
            "type": "object",
            "required": ["model"],
            "properties": {
                "model": {
                    "type": "object",
                    "required": ["uri"],
                    "properties": {
                        "uri": {"type": "string", "pattern": r"^(hf|oci|pvc|s3|https?)://.+"},
                        "name": {"type": "string"},
                    },
                },
                **_WORKLOAD,
                "prefill": {"type": "object", "properties": _WORKLOAD},
                "router": {"type": "object"},
                "baseRefs": {"type": "array"},
            },
        },
    },
}


def _gpus_requested(template: Mapping | None) -> int:
    total = 0
    for c in (template or {}).get("containers", []) or []:
        res = c.get("resources", {}) or {}
        val = (res.get("limits") or {}).get(GPU_RESOURCE) or (res.get("requests") or {}).get(GPU_RESOURCE)
        if val is not None:
            total += int(val)
    return total


def validate(obj: Mapping, *, gpu: str | GpuType | None = None) -> list[str]:
    """Check an ``LLMInferenceService`` dict; return warnings, raise :class:`ManifestError` on problems.

    Rules: the schema subset above; DNS-1123 name that leaves room for child suffixes; tensor ≤ GPUs
    per node and = GPUs requested per pod; the model's weights fit in ``tensor × nodes`` GPUs with KV
    cache room left. ``gpu`` defaults to the node type in the template's node selector, if known.
    """
    problems: list[str] = []
    for err in sorted(jsonschema.Draft202012Validator(SCHEMA).iter_errors(obj), key=lambda e: list(e.path)):
        where = ".".join(str(p) for p in err.absolute_path) or "(top)"
        problems.append(f"{where}: {err.message}")
    if problems:
        raise ManifestError(problems)
    problems += _name_problems(obj["metadata"]["name"])
    spec = obj["spec"]
    gpu_type = _gpu_of(spec, gpu)
    size = model_size(spec["model"].get("name", "") or "") or model_size(spec["model"]["uri"])
    workloads = [("spec", spec)] + ([("spec.prefill", spec["prefill"])] if spec.get("prefill") else [])
    for where, wl in workloads:
        problems += _workload_problems(where, wl, spec, gpu_type, size)
    if problems:
        raise ManifestError(problems)
    if size is None:
        return [
            f"model {spec['model'].get('name') or spec['model']['uri']} is not in MODEL_SIZES: "
            "the fit check was skipped"
        ]
    return []


def _name_problems(name: str) -> list[str]:
    problems = []
    if not _DNS1123.match(name):
        problems.append(f"metadata.name {name!r}: use lower-case letters, digits and '-' (DNS-1123)")
    if len(name) > 42:
        problems.append(
            f"metadata.name {name!r} is {len(name)} chars: keep it ≤ 42 so child names "
            "(<name>-kserve-workload-svc, <name>-inference-pool) stay readable within 63"
        )
    return problems


def _workload_problems(where: str, wl: Mapping, spec: Mapping, gpu_type: GpuType | None,
                       size: ModelSize | None) -> list[str]:  # fmt: skip
    """The GPU-count and fit problems of one workload (the main one or ``spec.prefill``)."""
    problems = []
    par = wl.get("parallelism") or {}
    tensor = int(par.get("tensor", 1))
    # data parallelism (the multi-node layout RHOAI 3.0 ships) gives each rank a full copy of the model, so
    # the weights must fit in one rank's tensor GPUs; only pipeline parallelism splits them over nodes.
    nodes = int(par.get("pipeline", 1)) if wl.get("worker") or spec.get("worker") else 1
    per_pod = _gpus_requested(wl.get("template") or spec.get("template"))
    if per_pod and per_pod != tensor:
        problems.append(
            f"{where}.parallelism.tensor is {tensor} but each pod requests {per_pod} {GPU_RESOURCE}: "
            f"set the GPU request to {tensor} (or tensor to {per_pod})"
        )
    if gpu_type is not None and tensor > gpu_type.gpus_per_node:
        problems.append(
            f"{where}.parallelism.tensor={tensor} but {gpu_type.instance_type} has "
            f"{gpu_type.gpus_per_node} GPU(s) per node: use a bigger node type (e.g. "
            f"{_bigger_node(tensor)}), lower tensor, or spread over nodes (nodes=…, a LeaderWorkerSet)"
        )
    if gpu_type is not None and size is not None:
        usable = gpu_type.memory_gib * GPU_MEMORY_UTILIZATION * tensor * nodes
        if size.weights_gib > usable * (1 - MIN_KV_FRACTION):
            need = math.ceil(
                size.weights_gib / (gpu_type.memory_gib * GPU_MEMORY_UTILIZATION * (1 - MIN_KV_FRACTION))
            )
            problems.append(
                f"model {spec['model'].get('name')} needs ~{size.weights_gib:.0f} GiB for weights but "
                f"{where} gives {tensor * nodes} × {gpu_type.memory_gib:g} GiB ({gpu_type.product}) at "
                f"{GPU_MEMORY_UTILIZATION:.0%} with {MIN_KV_FRACTION:.0%} left for the KV cache: use "
                f"≥ {need} GPUs per replica (tensor/nodes), a bigger GPU, or a quantized (w4a16) model"
            )
    return problems


def _gpu_of(spec: Mapping, gpu: str | GpuType | None) -> GpuType | None:
    if isinstance(gpu, GpuType):
        return gpu
    if isinstance(gpu, str):
        if gpu not in GPU_TYPES:
            raise ManifestError([f"unknown gpu {gpu!r}: use one of {', '.join(GPU_TYPES)}"])
        return GPU_TYPES[gpu]
    sel = ((spec.get("template") or {}).get("nodeSelector") or {}).get("node.kubernetes.io/instance-type")
    return GPU_TYPES.get(sel) if sel else None


def _bigger_node(tensor: int) -> str:
    fits = [g.instance_type for g in GPU_TYPES.values() if g.gpus_per_node >= tensor]
    return fits[0] if fits else "a node with more GPUs"
