"""Preset merging: well-known LLMInferenceServiceConfigs → ``spec.baseRefs`` → the LLMInferenceService spec.

KServe renders each config's Go-template variables against the service, then merges them in order with
Kubernetes strategic-merge semantics (containers, env, volumes… merge by name; other lists are replaced),
the service's own spec last. ``combine`` returns the effective spec the children are rendered from.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from llmd_lab.kserve.names import child_name

TEMPLATE = "kserve-config-llm-template"
DECODE_TEMPLATE = "kserve-config-llm-decode-template"
PREFILL_TEMPLATE = "kserve-config-llm-prefill-template"
WORKER_DP = "kserve-config-llm-worker-data-parallel"
DECODE_WORKER_DP = "kserve-config-llm-decode-worker-data-parallel"
PREFILL_WORKER_DP = "kserve-config-llm-prefill-worker-data-parallel"
WORKER_PP = "kserve-config-llm-worker-pipeline-parallel"
DECODE_WORKER_PP = "kserve-config-llm-decode-worker-pipeline-parallel"
PREFILL_WORKER_PP = "kserve-config-llm-prefill-worker-pipeline-parallel"
SCHEDULER = "kserve-config-llm-scheduler"
ROUTER_ROUTE = "kserve-config-llm-router-route"
CONFIG_NAMESPACE = "kserve"

# strategic-merge keys of the corev1 lists found in a PodSpec (patchMergeKey); other lists are replaced
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "ports": "containerPort",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
}


class PresetError(ValueError):
    """A preset or baseRef that cannot be used; KServe reports it as ``PresetsCombined=False``."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class GlobalConfig:
    """What KServe reads from its ``inferenceservice-config`` ConfigMap (``ingress`` key)."""

    ingress_gateway_name: str = "openshift-ai-inference"
    ingress_gateway_namespace: str = "openshift-ingress"


def _parallelism(spec: Mapping[str, Any]) -> dict[str, Any]:
    return spec.get("parallelism") or {}


def _uses_dp(workload: Mapping[str, Any]) -> bool:
    """ParallelismSpec.IsDataParallel: data > 0 or dataLocal > 0."""
    p = _parallelism(workload)
    return (p.get("data") or 0) > 0 or (p.get("dataLocal") or 0) > 0


def _uses_pp(workload: Mapping[str, Any]) -> bool:
    """ParallelismSpec.IsPipelineParallel: pipeline > 0."""
    return (_parallelism(workload).get("pipeline") or 0) > 0


def _workload_preset(workload: Mapping[str, Any], single: str, dp: str, pp: str) -> list[str]:
    if workload.get("worker") is None:
        return [single]
    if _uses_dp(workload):
        return [dp]
    if _uses_pp(workload):
        return [pp]
    return []  # a worker without parallelism: no case matches (the webhook rejects it before)


def well_known_presets(spec: Mapping[str, Any]) -> list[str]:
    """The presets KServe picks for a (baseRef-resolved) spec's shape, in its order: scheduler, route, then the
    prefill and decode (or single) workload (config_merge.go combineBaseRefsConfig)."""
    names: list[str] = []
    router = spec.get("router") or {}
    scheduler = router.get("scheduler")
    if scheduler is not None and not ((scheduler.get("pool") or {}).get("ref") or {}).get("name"):
        names.append(SCHEDULER)
    route = router.get("route")
    if route is not None and not ((route.get("http") or {}).get("refs")):
        names.append(ROUTER_ROUTE)
    prefill = spec.get("prefill")
    if prefill is None:
        return names + _workload_preset(spec, TEMPLATE, WORKER_DP, WORKER_PP)
    names += _workload_preset(prefill, PREFILL_TEMPLATE, PREFILL_WORKER_DP, PREFILL_WORKER_PP)
    return names + _workload_preset(spec, DECODE_TEMPLATE, DECODE_WORKER_DP, DECODE_WORKER_PP)


# ---- Go-template variables
_EXPR = re.compile(r"\{\{-?\s*(.*?)\s*-?\}\}")
_CHILD = re.compile(r"^ChildName\s+(\.[\w.]+)\s+[`\"]([^`\"]*)[`\"]$")


def _parallelism_vars(p: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "Tensor": p.get("tensor", 1),
        "Pipeline": p.get("pipeline", 1),
        "Data": p.get("data", 1),
        "DataLocal": p.get("dataLocal", 1),
        "DataRPCPort": p.get("dataRPCPort", 5555),
        "Expert": p.get("expert", False),
    }


def template_context(llmisvc: Mapping[str, Any], global_config: GlobalConfig) -> dict[str, Any]:
    meta = llmisvc["metadata"]
    spec = llmisvc.get("spec") or {}
    return {
        "ObjectMeta": {"Name": meta["name"], "Namespace": meta.get("namespace", "")},
        "Spec": {
            "Model": {"Name": model_name(llmisvc), "URI": (spec.get("model") or {}).get("uri", "")},
            "Parallelism": _parallelism_vars(_parallelism(spec)),
            "Prefill": {"Parallelism": _parallelism_vars(_parallelism(spec.get("prefill") or {}))},
            "Replicas": spec.get("replicas", 1),
        },
        "GlobalConfig": {
            "IngressGatewayName": global_config.ingress_gateway_name,
            "IngressGatewayNamespace": global_config.ingress_gateway_namespace,
        },
    }


def _lookup(ctx: Mapping[str, Any], path: str, config: str) -> Any:
    value: Any = ctx
    for part in path.lstrip(".").split("."):
        if not isinstance(value, Mapping) or part not in value:
            raise PresetError("CombineBaseError", f"config {config}: template: can't evaluate field {part} in {path}")
        value = value[part]
    return value


def _render_string(text: str, ctx: Mapping[str, Any], config: str) -> str:
    def replace(m: re.Match[str]) -> str:
        expr = m.group(1)
        child = _CHILD.match(expr)
        if child:
            return child_name(str(_lookup(ctx, child.group(1), config)), child.group(2))
        if expr.startswith("."):
            return str(_lookup(ctx, expr, config))
        raise PresetError("CombineBaseError", f"config {config}: template: unsupported expression {{{{ {expr} }}}}")

    return _EXPR.sub(replace, text)


def render_variables(obj: Any, ctx: Mapping[str, Any], config: str = "") -> Any:
    """A copy of ``obj`` with every ``{{ … }}`` in its strings filled in."""
    if isinstance(obj, str):
        return _render_string(obj, ctx, config) if "{{" in obj else obj
    if isinstance(obj, list):
        return [render_variables(v, ctx, config) for v in obj]
    if isinstance(obj, dict):
        return {k: render_variables(v, ctx, config) for k, v in obj.items()}
    return obj


# ---- strategic merge
def strategic_merge(base: Any, patch: Any, field: str = "") -> Any:
    """Merge ``patch`` onto ``base``: maps recursively, keyed lists by merge key, anything else replaced."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = copy.deepcopy(base)
        for key, value in patch.items():
            if value is None:
                out.pop(key, None)
            elif key in out:
                out[key] = strategic_merge(out[key], value, key)
            else:
                out[key] = copy.deepcopy(value)
        return out
    key = MERGE_KEYS.get(field)
    if key and isinstance(base, list) and isinstance(patch, list):
        out_list = [copy.deepcopy(item) for item in base]
        index = {item.get(key): i for i, item in enumerate(out_list) if isinstance(item, dict)}
        for item in patch:
            if isinstance(item, dict) and item.get(key) in index:
                i = index[item[key]]
                out_list[i] = strategic_merge(out_list[i], item, "")
            else:
                out_list.append(copy.deepcopy(item))
        return out_list
    return copy.deepcopy(patch)


def model_name(llmisvc: Mapping[str, Any]) -> str:
    """``spec.model.name``, defaulted to the service's name (KServe's defaulting webhook)."""
    return ((llmisvc.get("spec") or {}).get("model") or {}).get("name") or llmisvc["metadata"]["name"]


ConfigLookup = Callable[[str, str], "dict | None"]


def not_found(name: str, namespace: str) -> PresetError:
    """config_merge.go getConfig's error when a config is in neither the service's namespace nor ``kserve``."""
    return PresetError(
        "CombineBaseError",
        f'failed to get LLMInferenceServiceConfig "{name}" from namespaces ["{namespace}", "{CONFIG_NAMESPACE}"]: '
        f'llminferenceserviceconfigs.serving.kserve.io "{name}" not found',
    )


def combine(
    llmisvc: Mapping[str, Any], find_config: ConfigLookup, global_config: GlobalConfig | None = None
) -> dict[str, Any]:
    """The effective spec: well-known presets, then ``baseRefs`` (service namespace first, then ``kserve``),
    then the service's own spec. ``find_config(namespace, name)`` returns an LLMInferenceServiceConfig or None.

    The presets are chosen from the spec with its baseRefs merged in (a baseRef may add a worker or a
    router). Any config not found — a baseRef, or a well-known preset RHOAI 3.0 does not ship, such as the
    pipeline-parallel ones a ``worker`` with ``parallelism.pipeline`` needs — raises PresetError
    (reason ``CombineBaseError``), as config_merge.go does: the service then gets no children.
    """
    global_config = global_config or GlobalConfig()
    spec = copy.deepcopy(llmisvc.get("spec") or {})
    namespace = llmisvc["metadata"].get("namespace", "")
    ctx = template_context(llmisvc, global_config)

    def lookup(name: str) -> dict:
        config = find_config(namespace, name) or find_config(CONFIG_NAMESPACE, name)
        if config is None:
            raise not_found(name, namespace)
        return config

    base_refs = [ref.get("name", "") for ref in spec.get("baseRefs") or []]
    resolved = spec
    for name in base_refs:
        resolved = strategic_merge(resolved, lookup(name).get("spec") or {})
    merged: dict[str, Any] = {}
    for name in [*well_known_presets(resolved), *base_refs]:
        merged = strategic_merge(merged, render_variables(lookup(name).get("spec") or {}, ctx, name))
    spec.pop("baseRefs", None)
    # KServe executes the whole merged config as one Go template (ReplaceVariables), the service's own spec
    # included: a user's ``{{ ChildName .ObjectMeta.Name `-epp-service` }}`` is filled in like a preset's
    merged = strategic_merge(merged, render_variables(spec, ctx, llmisvc["metadata"]["name"]))
    merged.setdefault("model", {})["name"] = model_name(llmisvc)
    return merged
