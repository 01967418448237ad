"""Build ``LLMInferenceService`` objects as plain dicts, check them, render them to YAML.

Why dicts: the same object goes to ``kubernetes``'s dynamic client, to ``assets/*.yaml`` and to the
notebook's display, and a dict is what the API server returns. The builder knows the RHOAI 3.0 shape
(KServe ``serving.kserve.io/v1alpha1``): ``replicas`` + ``parallelism`` + ``template`` for the main
(decode) workload, ``worker`` for multi-node (a LeaderWorkerSet), ``prefill`` for P/D disaggregation,
and ``router.scheduler.template`` for the endpoint picker (EPP) with its ``EndpointPickerConfig`` passed
as ``--config-text``.

Two RHOAI 3.0 known issues are worked around by default (``workarounds=True``) and :func:`to_yaml`
writes a comment beside each saying why:

* ``security.opendatahub.io/enable-auth: "false"`` — auth through Connectivity Link is broken in 3.0
  (RHOAIENG-39326); without the annotation KServe tries to use it and the service never becomes Ready.
* ``--kv-cache-usage-percentage-metric vllm:kv_cache_usage_perc`` on the EPP — its default metric name,
  ``vllm:gpu_cache_usage_perc``, is hidden by newer vLLM, so the kv-cache-utilization-scorer sees 0
  (RHOAIENG-41868).

:func:`validate` checks structure and our own rules (tensor ≤ GPUs per node, the model fits in GPU
memory) and raises :class:`ManifestError` listing every problem with what to change.

Why one module of ~600 lines: the builder, its schema subset and its validation rules describe one object and
must change together; the KServe names and labels live in ``llmd_lab.kserve``.
"""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jsonschema
import yaml

from llmd_lab import facts
from llmd_lab.kserve import names
from llmd_lab.kserve.epp import EPP_CONFIG_API_VERSION as EPP_CONFIG_API_VERSION
from llmd_lab.kserve.names import child_name

API_VERSION = names.API_VERSION
KIND = names.KIND
ENABLE_AUTH_ANNOTATION = "security.opendatahub.io/enable-auth"
KUEUE_QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
KV_METRIC_FLAG = "--kv-cache-usage-percentage-metric"
KV_METRIC_NAME = "vllm:kv_cache_usage_perc"
GPU_RESOURCE = "nvidia.com/gpu"

WHY = {
    ENABLE_AUTH_ANNOTATION: "RHOAI 3.0 workaround: auth via Connectivity Link is broken (RHOAIENG-39326)",
    KV_METRIC_FLAG: "RHOAI 3.0 workaround: EPP default vllm:gpu_cache_usage_perc is hidden by vLLM (RHOAIENG-41868)",
    KUEUE_QUEUE_LABEL: "Kueue admits the workload through this LocalQueue",
}


class ManifestError(ValueError):
    """A manifest that would be rejected or could never run; ``problems`` lists each fix to make."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("LLMInferenceService is not valid:\n" + "\n".join(f"  - {p}" for p in problems))


# --------------------------------------------------------------------------------------------- hardware
@dataclass(frozen=True)
class GpuType:
    """A GPU node type: what ``nodeSelector``/tolerations pick and how much fits on it."""

    instance_type: str
    product: str
    gpus_per_node: int
    memory_gib: float
    hourly_usd: float | None = None
    cpu: int = 16
    memory: str = "60Gi"


def _gpu_gib(product: str) -> float:
    """GPU memory as the driver reports it (what ``--gpu-memory-utilization`` multiplies), from llmd_lab.facts."""
    return round(facts.gpu_by_product(product)[1]["memory_mib"] / 1024, 1)


#: Node types the workshop uses (step-08 prices: g6.4xlarge $0.85/h, g6.12xlarge $3.40/h); GPU memory per
#: GPU from llmd_lab/facts/gpus.yaml (the simulator's numbers).
GPU_TYPES: dict[str, GpuType] = {
    "g6.4xlarge": GpuType("g6.4xlarge", "NVIDIA-L4", 1, _gpu_gib("NVIDIA-L4"), 0.85, cpu=16, memory="60Gi"),
    "g6.12xlarge": GpuType("g6.12xlarge", "NVIDIA-L4", 4, _gpu_gib("NVIDIA-L4"), 3.40, cpu=48, memory="180Gi"),
    "p4d.24xlarge": GpuType("p4d.24xlarge", "NVIDIA-A100-SXM4-40GB", 8, _gpu_gib("NVIDIA-A100-SXM4-40GB"), None,
                            cpu=96, memory="1000Gi"),
    "p5.48xlarge": GpuType("p5.48xlarge", "NVIDIA-H100-80GB-HBM3", 8, _gpu_gib("NVIDIA-H100-80GB-HBM3"), None,
                           cpu=192, memory="2000Gi"),
}


@dataclass(frozen=True)
class ModelSize:
    """Rough weight footprint of a model, for the "does it fit" check (our table, not the simulator's)."""

    params_b: float
    bytes_per_param: float = 2.0  # bf16
    weight_bytes: int | None = None  # exact, for models in llmd_lab/facts/models.yaml (the simulator's figure)

    @property
    def weights_gib(self) -> float:
        if self.weight_bytes is not None:
            return self.weight_bytes / 2**30
        return self.params_b * 1e9 * self.bytes_per_param / 2**30


def _sizes() -> dict[str, ModelSize]:
    """Every model of llmd_lab/facts/models.yaml, by Hugging Face id and by its aliases (the simulator's table)."""
    out: dict[str, ModelSize] = {}
    for model_id, entry in facts.models().items():
        size = ModelSize(facts.num_parameters(model_id) / 1e9,
                         facts.BYTES_PER_PARAM[entry.get("weight_format", "bf16")], facts.model_weight_bytes(model_id))
        for key in (model_id, *entry.get("aliases", ())):
            out.setdefault(key, size)
    return out


#: Models the workshop and seeds mention, from llmd_lab/facts/models.yaml (add a model there, with its source).
MODEL_SIZES: dict[str, ModelSize] = _sizes()

#: vLLM's default --gpu-memory-utilization, and the share of that we insist stays free for the KV cache.
GPU_MEMORY_UTILIZATION = 0.9
MIN_KV_FRACTION = 0.1


def model_size(model: str) -> ModelSize | None:
    """Look a model up in :data:`MODEL_SIZES` by name, alias or URI tail (an OCI modelcar image names its
    model); None if unknown."""
    key = model.split("://", 1)[-1].lower()
    by_length = sorted(MODEL_SIZES.items(), key=lambda item: -len(item[0]))  # the most specific name wins
    for name, size in by_length:
        if key == name.lower() or key.endswith(name.lower()) or name.lower() in key:
            return size
    return None


# --------------------------------------------------------------------------------------------- EPP config
KSERVE_DEFAULT_WEIGHTS: dict[str, float] = {"prefix-cache-scorer": 2, "load-aware-scorer": 1}
COURSE_WEIGHTS: dict[str, float] = {
    "queue-scorer": 2,
    "kv-cache-utilization-scorer": 2,
    "prefix-cache-scorer": 3,
}
KNOWN_SCORERS = {
    "prefix-cache-scorer",
    "kv-cache-utilization-scorer",
    "queue-scorer",
    "lora-affinity-scorer",
    "load-aware-scorer",
    "active-request-scorer",
    "session-affinity-scorer",
    "precise-prefix-cache-scorer",
}


def scheduler_config(
    weights: Mapping[str, float] | None = None,
    *,
    picker: str = "max-score-picker",
    parameters: Mapping[str, Mapping[str, Any]] | None = None,
    pd_threshold: int | None = None,
) -> dict:
    """An ``EndpointPickerConfig`` as a dict, from scorer weights (default: KServe's prefix 2 / load 1).

    ``parameters`` gives per-plugin parameters (e.g. ``{"prefix-cache-scorer": {"hashBlockSize": 5}}``).
    ``pd_threshold`` builds the P/D shape instead: ``pd-profile-handler`` with prefill and decode
    profiles each filtering by role and scoring with ``weights``.
    """
    weights = dict(KSERVE_DEFAULT_WEIGHTS if weights is None else weights)
    unknown = sorted(set(weights) - KNOWN_SCORERS)
    if unknown:
        raise ManifestError(
            [f"unknown scorer {u!r}: use one of {', '.join(sorted(KNOWN_SCORERS))}" for u in unknown]
        )
    bad = [f"weight of {k} is {v}: weights must be positive numbers" for k, v in weights.items() if v <= 0]
    if bad:
        raise ManifestError(bad)
    params = {k: dict(v) for k, v in (parameters or {}).items()}

    def plugin(t: str) -> dict:
        return {"type": t, "parameters": params[t]} if t in params else {"type": t}

    def refs(extra_first: list[str]) -> list[dict]:
        out: list[dict] = [{"pluginRef": r} for r in extra_first]
        out += [{"pluginRef": k, "weight": _num(v)} for k, v in weights.items()]
        out.append({"pluginRef": picker})
        return out

    if pd_threshold is None:
        plugins = [plugin("single-profile-handler"), *(plugin(k) for k in weights), plugin(picker)]
        profiles = [{"name": "default", "plugins": refs([])}]
    else:
        handler = {"type": "pd-profile-handler", "parameters": {"threshold": int(pd_threshold)}}
        plugins = [
            plugin("prefill-header-handler"),
            plugin("prefill-filter"),
            plugin("decode-filter"),
            *(plugin(k) for k in weights),
            plugin(picker),
            handler,
        ]
        profiles = [
            {"name": "prefill", "plugins": refs(["prefill-filter"])},
            {"name": "decode", "plugins": refs(["decode-filter"])},
        ]
    return {
        "apiVersion": EPP_CONFIG_API_VERSION,
        "kind": "EndpointPickerConfig",
        "plugins": plugins,
        "schedulingProfiles": profiles,
    }


def _num(v: float) -> int | float:
    return int(v) if float(v).is_integer() else float(v)


NAMESPACE_TEMPLATE = "{{ .ObjectMeta.Namespace }}"


def _epp_args(pool: str, namespace: str, config_text: str | None, kv_workaround: bool) -> list[str]:
    """The EPP container's full arg list (args replace the preset's list, so all of them are given)."""
    args = [
        "--pool-group", "inference.networking.x-k8s.io",
        "--pool-name", pool,
        "--pool-namespace", namespace,
        "--zap-encoder", "json",
        "--grpc-port", "9002",
        "--grpc-health-port", "9003",
        "--secure-serving",
        "--model-server-metrics-scheme", "https",
        "--model-server-metrics-https-insecure-skip-verify",
        "--cert-path", "/var/run/kserve/tls",
    ]  # fmt: skip
    if kv_workaround:
        args += [KV_METRIC_FLAG, KV_METRIC_NAME]
    if config_text is not None:
        args += ["--config-text", config_text]
    return args


# --------------------------------------------------------------------------------------------- builder
@dataclass
class Prefill:
    """P/D disaggregation: prefill replicas and their tensor size; NixlConnector moves the KV cache."""

    replicas: int = 1
    tensor: int = 1


@dataclass
class Placement:
    """Where pods go: a GPU node type (selects by instance type, tolerates the GPU taint)."""

    gpu: GpuType | None = None
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: list[dict] = field(default_factory=list)


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

    config = _resolve_scheduler(scheduler, pd=prefill is not None)
    router: dict[str, Any] = {"route": {}, "gateway": {}, "scheduler": {}}
    if config is not None or workarounds:
        text = yaml.safe_dump(config, sort_keys=False) if config is not None else None
        # KServe renders these Go templates after merging; concrete values are what it would render
        # (ChildName is the plain name + suffix for names ≤ 42 chars, which validate() enforces).
        pool = child_name(name, names.INFERENCE_POOL)
        args = _epp_args(pool, namespace or NAMESPACE_TEMPLATE, text, workarounds)
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


def _resolve_scheduler(scheduler: Any, *, pd: bool) -> dict | None:
    if scheduler is None or scheduler == "kserve-default":
        return None  # KServe injects its own default (prefix 2 / load 1, or the P/D one)
    if scheduler == "course":
        return scheduler_config(COURSE_WEIGHTS, pd_threshold=0 if pd else None)
    if isinstance(scheduler, Mapping) and scheduler.get("kind") == "EndpointPickerConfig":
        return copy.deepcopy(dict(scheduler))
    if isinstance(scheduler, Mapping):
        return scheduler_config(scheduler, pd_threshold=0 if pd else None)
    raise ManifestError(
        [f"scheduler {scheduler!r}: use 'kserve-default', 'course', a dict of scorer weights "
         "or an EndpointPickerConfig dict"]
    )  # fmt: skip


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


# --------------------------------------------------------------------------------------------- validation
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
    warnings: list[str] = []
    for err in sorted(jsonschema.Draft202012Validator(SCHEMA).iter_errors(obj), key=lambda e: list(e.path)):
        where = ".".join(str(p) for p in err.absolute_path) or "(top)"
        problems.append(f"{where}: {err.message}")
    if problems:
        raise ManifestError(problems)
    name = obj["metadata"]["name"]
    if not _DNS1123.match(name):
        problems.append(f"metadata.name {name!r}: use lower-case letters, digits and '-' (DNS-1123)")
    if len(name) > 42:
        problems.append(
            f"metadata.name {name!r} is {len(name)} chars: keep it ≤ 42 so child names "
            "(<name>-kserve-workload-svc, <name>-inference-pool) stay readable within 63"
        )
    spec = obj["spec"]
    gpu_type = _gpu_of(spec, gpu)
    size = model_size(spec["model"].get("name", "") or "") or model_size(spec["model"]["uri"])
    workloads = [("spec", spec)] + ([("spec.prefill", spec["prefill"])] if spec.get("prefill") else [])
    for where, wl in workloads:
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
    if size is None:
        warnings.append(
            f"model {spec['model'].get('name') or spec['model']['uri']} is not in MODEL_SIZES: "
            "the fit check was skipped"
        )
    if problems:
        raise ManifestError(problems)
    return warnings


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


# --------------------------------------------------------------------------------------------- rendering
class _Dumper(yaml.SafeDumper):
    """Plain YAML a learner can read and ``oc apply``: block strings, and no ``&id001``/``*id001`` anchors
    where one dict or list appears twice (each place is written out in full)."""

    def ignore_aliases(self, data: object) -> bool:
        return True


def _str_presenter(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str_presenter)


def with_namespace(obj: Mapping, namespace: str) -> dict:
    """A copy placed in ``namespace``, with the ``{{ .ObjectMeta.Namespace }}`` template filled in."""
    out = json.loads(json.dumps(obj).replace(NAMESPACE_TEMPLATE, namespace))
    out["metadata"]["namespace"] = namespace
    return out


def to_yaml(obj: Mapping | Iterable[Mapping]) -> str:
    """Render one object (or several, as a multi-document stream) to YAML, commenting the workarounds."""
    docs = [obj] if isinstance(obj, Mapping) else list(obj)
    out = []
    for doc in docs:
        text = yaml.dump(dict(doc), Dumper=_Dumper, sort_keys=False, width=1000)
        lines = []
        for line in text.splitlines():
            for key, why in WHY.items():
                if line.strip().startswith((key, f"- {key}")):
                    indent = line[: len(line) - len(line.lstrip())]
                    lines.append(f"{indent}# {why}")
            lines.append(line)
        out.append("\n".join(lines) + "\n")
    return "---\n".join(out)


def from_yaml(text: str) -> list[dict]:
    """Parse a YAML stream into dicts (skips empty documents)."""
    return [d for d in yaml.safe_load_all(text) if d]
