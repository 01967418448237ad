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
    p = _parallelism(workload)
    return bool(p.get("data") or p.get("dataLocal"))


def _uses_pp(workload: Mapping[str, Any]) -> bool:
    return bool(_parallelism(workload).get("pipeline"))


def well_known_presets(spec: Mapping[str, Any]) -> list[str]:
    """The presets KServe picks for a spec's shape, in merge order."""
    names: list[str] = []
    router = spec.get("router") or {}
    prefill = spec.get("prefill")
    if prefill is None:
        if spec.get("worker") is None:
            names.append(TEMPLATE)
        elif _uses_dp(spec):
            names.append(WORKER_DP)
        elif _uses_pp(spec):
            names.append(WORKER_PP)
        else:
            names.append(TEMPLATE)
    else:
        if prefill.get("worker") is None:
            names.append(PREFILL_TEMPLATE)
        elif _uses_dp(prefill):
            names.append(PREFILL_WORKER_DP)
        else:
            names.append(PREFILL_WORKER_PP)
        if spec.get("worker") is None:
            names.append(DECODE_TEMPLATE)
        elif _uses_dp(spec):
            names.append(DECODE_WORKER_DP)
        else:
            names.append(DECODE_WORKER_PP)
    scheduler = router.get("scheduler")
    if scheduler is not None and not ((scheduler.get("pool") or {}).get("ref") or {}).get("name"):
        names.append(SCHEDULER)
    route = router.get("route")
    if route is not None and not ((route.get("http") or {}).get("refs")):
        names.append(ROUTER_ROUTE)
    return names


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


def combine(
    llmisvc: Mapping[str, Any], find_config: ConfigLookup, global_config: GlobalConfig | None = None
) -> dict[str, Any]:
    """The effective spec: well-known presets, then ``baseRefs`` (service namespace first, then ``kserve``),
    then the service's own spec. ``find_config(namespace, name)`` returns an LLMInferenceServiceConfig or None.

    Raises PresetError (reason ``CombineBaseError``) when a baseRef does not exist.
    """
    global_config = global_config or GlobalConfig()
    spec = copy.deepcopy(llmisvc.get("spec") or {})
    namespace = llmisvc["metadata"].get("namespace", "")
    ctx = template_context(llmisvc, global_config)
    merged: dict[str, Any] = {}
    for name in well_known_presets(spec):
        config = find_config(namespace, name) or find_config(CONFIG_NAMESPACE, name)
        if config is None:
            continue  # KServe ships no pipeline-parallel presets; the spec then stands on its own
        merged = strategic_merge(merged, render_variables(config.get("spec") or {}, ctx, name))
    for ref in spec.get("baseRefs") or []:
        name = ref.get("name", "")
        config = find_config(namespace, name) or find_config(CONFIG_NAMESPACE, name)
        if config is None:
            raise PresetError(
                "CombineBaseError",
                f'failed to combine base-configurations: LLMInferenceServiceConfig "{name}" not found in '
                f'namespace "{namespace}" or "{CONFIG_NAMESPACE}"',
            )
        merged = strategic_merge(merged, render_variables(config.get("spec") or {}, ctx, name))
    spec.pop("baseRefs", None)
    # KServe executes the whole merged config as one Go template (ReplaceVariables), the service's own spec
    # included: a user's ``{{ ChildName .ObjectMeta.Name `-epp-service` }}`` is filled in like a preset's
    merged = strategic_merge(merged, render_variables(spec, ctx, llmisvc["metadata"]["name"]))
    merged.setdefault("model", {})["name"] = model_name(llmisvc)
    return merged
